/**
 * Building a feature store (format.ts) from a loaded database: encoders are
 * fitted per table on the rows at or before the training cutoff (fit.ts),
 * then each table is streamed in `__row` order, a bounded chunk at a time
 * (a `__row` range query), encoded (encoders.ts), packed into fixed-width rows
 * (encoded_rows.ts) and appended to `<table>.rows`, with the XXH32 of every
 * completed page appended to `<table>.sums` on the way. Memory stays bounded
 * by the chunk size (about 8 MiB of rows by default) whatever the table size.
 *
 * The time column is not stored: ages relative to the seed are computed at
 * batch time from the graph store's node times.
 *
 * Atomicity: everything is written into a fresh sibling `<dir>.tmp-<random>`;
 * files are fsynced, `manifest.json` is written last, and only then is the
 * directory renamed onto `<dir>`. An older complete store at `<dir>` is moved
 * aside (`<dir>.old-<random>`) just before and deleted just after, so `<dir>`
 * holds a complete store or nothing at every moment. A build that fails
 * removes its temporary directory; one killed outright leaves a
 * `<dir>.tmp-<random>`, never read (readers open `<dir>` only) and deleted by
 * the next build of `<dir>`. A `<dir>` that exists but is neither an empty
 * directory nor a feature store is never replaced.
 *
 * ```ts
 * const m = await buildFeatureStore(db, "out/f1-features", { cutoff: trainCutoff });
 * ```
 *
 * @module
 */

import { quoteIdent } from "../duck.ts";
import { xxh32 } from "../checksum.ts";
import { ROW_COLUMN } from "../types.ts";
import {
  FEATURE_FORMAT,
  FEATURE_FORMAT_VERSION,
  type FeatureManifest,
  type FeatureTableManifest,
  PAGE_BYTES,
} from "./format.ts";
import { type FeatureSource, type FitOptions, fitTable, type FittedTable } from "./fit.ts";
import { encodeColumns, prepareEncoder } from "./encoders.ts";
import { packRows, rowBytesFor } from "./encoded_rows.ts";
import { FeatureStoreError, MANIFEST_FILE, storePath } from "./manifest.ts";
import { parentOf, randomTag, replaceDir, syncDir } from "../atomic_dir.ts";

/** Progress of a build, reported after each step. */
export interface BuildProgress {
  /** "fit": a table's encoders are fitted; "rows": a chunk is written; "manifest": about to write it. */
  stage: "fit" | "rows" | "manifest";
  /** The table concerned (absent for "manifest"). */
  table?: string;
  /** Rows of the table written so far ("rows"). */
  rowsDone: number;
  /** Rows of the table. */
  rows: number;
}

/** Options of {@link buildFeatureStore}. */
export interface BuildOptions extends FitOptions {
  /** Training cutoff (epoch seconds or a Date): statistics use rows at or before it only. */
  cutoff: number | Date;
  /** Storage of the numerical block (default "f32"). */
  numDtype?: "f32" | "f16";
  /** Rows per streamed chunk (default: about 8 MiB of rows, at most 65,536). */
  chunkRows?: number;
  /**
   * Called after each step; an exception thrown here aborts the build (as
   * any failure does: the temporary directory is removed and `dir` is left
   * as it was).
   */
  onProgress?: (p: BuildProgress) => void;
  /** Keep the temporary directory when the build fails (to inspect it; default false). */
  keepTempOnError?: boolean;
}

const CHUNK_BYTES = 8 << 20;
const MAX_CHUNK_ROWS = 65_536;

/**
 * Builds the feature store of every table of `db` into `dir` (see the module
 * doc for the steps and the guarantees) and returns its manifest.
 */
export async function buildFeatureStore(
  db: FeatureSource,
  dir: string,
  opts: BuildOptions,
): Promise<FeatureManifest> {
  const cutoff = opts.cutoff instanceof Date ? opts.cutoff.getTime() / 1000 : opts.cutoff;
  if (!Number.isFinite(cutoff)) throw new Error(`cutoff must be a finite time, not ${cutoff}`);
  const numDtype = opts.numDtype ?? "f32";
  if (numDtype !== "f32" && numDtype !== "f16") {
    throw new Error(`numDtype must be "f32" or "f16", not "${numDtype}"`);
  }
  for (const name of Object.keys(opts.exclude ?? {})) {
    if (!db.schema.tables.some((t) => t.name === name)) {
      throw new Error(`exclude: no table "${name}"`);
    }
  }
  dir = dir.replace(/(.)\/+$/, "$1");
  await assertReplaceable(dir);
  await removeStaleTemps(dir);
  const tmp = `${dir}.tmp-${randomTag()}`;
  await Deno.mkdir(tmp);
  try {
    const fitted: FittedTable[] = [];
    for (const t of db.schema.tables) {
      fitted.push(await fitTable(db, t.name, cutoff, opts));
      const rows = db.rowCount(t.name);
      opts.onProgress?.({ stage: "fit", table: t.name, rowsDone: 0, rows });
    }
    const tables: Record<string, FeatureTableManifest> = {};
    const used = new Set<string>();
    for (const f of fitted) {
      const base = fileBase(f.table, used);
      const t: FeatureTableManifest = {
        table: f.table,
        rows: db.rowCount(f.table),
        rowBytes: rowBytesFor(numDtype, f.numWidth, f.catWidth),
        numDtype,
        numWidth: f.numWidth,
        catWidth: f.catWidth,
        cardinality: f.cardinality,
        columns: f.columns,
        rowsFile: `${base}.rows`,
        sumsFile: `${base}.sums`,
      };
      await writeTable(db, tmp, f, t, opts);
      tables[f.table] = t;
    }
    const manifest: FeatureManifest = {
      format: FEATURE_FORMAT,
      version: FEATURE_FORMAT_VERSION,
      cutoff,
      tables,
    };
    opts.onProgress?.({ stage: "manifest", rowsDone: 0, rows: 0 });
    const text = new TextEncoder().encode(JSON.stringify(manifest, null, 1) + "\n");
    await writeFileSynced(storePath(tmp, MANIFEST_FILE), [text]);
    await syncDir(tmp);
    await replaceDir(tmp, dir);
    return manifest;
  } catch (e) {
    if (!opts.keepTempOnError) await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** Streams one table into `<tmp>/<rowsFile>` and its page checksums into `<sumsFile>`. */
async function writeTable(
  db: FeatureSource,
  tmp: string,
  f: FittedTable,
  t: FeatureTableManifest,
  opts: BuildOptions,
): Promise<void> {
  const { rows, rowBytes, numWidth, catWidth } = t;
  using rowsFile = await Deno.open(storePath(tmp, t.rowsFile), { write: true, createNew: true });
  using sumsFile = await Deno.open(storePath(tmp, t.sumsFile), { write: true, createNew: true });
  if (rows > 0 && rowBytes > 0) {
    const chunk = Math.max(
      1,
      Math.floor(opts.chunkRows ?? Math.min(MAX_CHUNK_ROWS, CHUNK_BYTES / rowBytes)),
    );
    const buf = new Uint8Array(chunk * rowBytes + PAGE_BYTES);
    const num = new Float32Array(chunk * numWidth);
    const cat = new Uint32Array(chunk * catWidth);
    const encoders = f.columns.map((c) => prepareEncoder(c.encoder));
    const select = `SELECT ${quoteIdent(ROW_COLUMN)} AS r, ` +
      `${f.sources.map((s, i) => `${s} AS c${i}`).join(", ")} FROM ${quoteIdent(t.table)}`;
    let order = ""; // tables are stored in __row order; ORDER BY only if one is not
    const fetch = async (a: number, n: number) => {
      const range = `${select} WHERE ${quoteIdent(ROW_COLUMN)} >= ${a} AND ` +
        `${quoteIdent(ROW_COLUMN)} < ${a + n}`;
      let cols = await db.columns(range + order);
      if (!order && !inOrder(cols.r, a, n)) {
        order = ` ORDER BY ${quoteIdent(ROW_COLUMN)}`;
        cols = await db.columns(range + order);
      }
      if (!inOrder(cols.r, a, n)) {
        throw new Error(
          `table "${t.table}": rows ${a}..${a + n - 1} by ${ROW_COLUMN} came back as ` +
            `${cols.r.length} rows; is ${ROW_COLUMN} dense?`,
        );
      }
      return cols;
    };
    // The next chunk is fetched while this one is encoded and written (two chunks at most);
    // a failure waits for the fetch in flight, so the database is idle when the build throws.
    const prefetch = (a: number) => {
      const p = fetch(a, Math.min(chunk, rows - a));
      p.catch(() => {});
      return p;
    };
    let carry = 0;
    let next = prefetch(0);
    try {
      for (let a = 0; a < rows; a += chunk) {
        const n = Math.min(chunk, rows - a);
        const cols = await next;
        if (a + n < rows) next = prefetch(a + n);
        const values = f.sources.map((_, i) => cols[`c${i}`]);
        encodeColumns(f.columns, encoders, values, n, num, numWidth, cat, catWidth);
        const len = carry + n * rowBytes;
        packRows(t, num, cat, n, buf.subarray(carry, len));
        const last = a + n === rows;
        const done = last ? len : len - (len % PAGE_BYTES);
        const sums = new Uint32Array(Math.ceil(done / PAGE_BYTES));
        for (let p = 0; p < sums.length; p++) {
          sums[p] = xxh32(buf.subarray(p * PAGE_BYTES, Math.min(done, (p + 1) * PAGE_BYTES)));
        }
        await writeAll(rowsFile, buf.subarray(0, done));
        await writeAll(sumsFile, new Uint8Array(sums.buffer));
        buf.copyWithin(0, done, len);
        carry = len - done;
        opts.onProgress?.({ stage: "rows", table: t.table, rowsDone: a + n, rows });
      }
    } finally {
      await next.catch(() => {});
    }
  }
  await rowsFile.sync();
  await sumsFile.sync();
}

/** Whether `ids` is exactly a, a + 1, ..., a + n - 1. */
function inOrder(ids: ArrayLike<unknown>, a: number, n: number): boolean {
  if (ids.length !== n) return false;
  for (let i = 0; i < n; i++) if (ids[i] !== a + i) return false;
  return true;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.byteLength) at += await file.write(bytes.subarray(at));
}

async function writeFileSynced(path: string, parts: Uint8Array[]): Promise<void> {
  using file = await Deno.open(path, { write: true, createNew: true });
  for (const p of parts) await writeAll(file, p);
  await file.sync();
}

/** A file name base for a table: its name when plain, else `table<k>`; unique. */
function fileBase(table: string, used: Set<string>): string {
  let base = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}$/.test(table) ? table : `table${used.size}`;
  while (used.has(base.toLowerCase())) base = `${base}_`;
  used.add(base.toLowerCase());
  return base;
}

/** Throws unless `dir` is absent, an empty directory or a feature store (of any version). */
async function assertReplaceable(dir: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  if (!info.isDirectory) throw new FeatureStoreError(dir, "exists and is not a directory");
  let format: unknown;
  try {
    format = JSON.parse(await Deno.readTextFile(storePath(dir, MANIFEST_FILE)))?.format;
  } catch {
    format = undefined;
  }
  if (format === FEATURE_FORMAT) return;
  for await (const _ of Deno.readDir(dir)) {
    throw new FeatureStoreError(
      dir,
      "exists and is not a feature store (no valid manifest.json); refusing to replace it",
    );
  }
}

/** Deletes temporary directories (`<dir>.tmp-*`) that earlier, killed builds of `dir` left. */
async function removeStaleTemps(dir: string): Promise<void> {
  const parent = parentOf(dir);
  const prefix = `${dir.slice(dir.lastIndexOf("/") + 1)}.tmp-`;
  try {
    for await (const e of Deno.readDir(parent)) {
      if (
        e.isDirectory && e.name.startsWith(prefix) &&
        /^[0-9a-f]{12}$/.test(e.name.slice(prefix.length))
      ) {
        await Deno.remove(storePath(parent, e.name), { recursive: true }).catch(() => {});
      }
    }
  } catch {
    // An unreadable parent: nothing to clean.
  }
}
