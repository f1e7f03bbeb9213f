/**
 * Atomic directory replacement, shared by every writer of a directory-shaped
 * artefact (feature stores, checkpoints): build into `<dir>.tmp-<tag>`,
 * fsync, then `replaceDir` moves any older `<dir>` aside, renames the new one
 * in and deletes the old. A crash between the two renames leaves a complete
 * `<dir>.old-<tag>` and never half a directory.
 *
 * @module
 */

/** Fsyncs a directory (its entries), where the platform allows it. */
export async function syncDir(path: string): Promise<void> {
  try {
    using d = await Deno.open(path, { read: true });
    await d.sync();
  } catch {
    // Not every platform can open or fsync a directory; the rename is still atomic.
  }
}

/** The directory containing `path`. */
export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/** 12 random hex digits, for temporary and old directory names. */
export function randomTag(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Renames the finished `tmp` onto `dir`, moving an older `dir` aside first and deleting it after. */
export async function replaceDir(tmp: string, dir: string): Promise<void> {
  let old: string | null = null;
  try {
    await Deno.stat(dir);
    old = `${dir}.old-${randomTag()}`;
    await Deno.rename(dir, old);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  try {
    await Deno.rename(tmp, dir);
  } catch (e) {
    if (old) await Deno.rename(old, dir);
    throw e;
  }
  await syncDir(parentOf(dir));
  if (old) await Deno.remove(old, { recursive: true });
}
