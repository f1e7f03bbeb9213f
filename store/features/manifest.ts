/**
 * Opening and checking a feature store directory: the manifest (format,
 * version, fields), the length of every rows and checksum file, and the page
 * checksums of a rows file. Every error is a {@link FeatureStoreError} whose
 * message names the file and what is wrong with it.
 *
 * @module
 */

import { xxh32 } from "../checksum.ts";
import {
  FEATURE_FORMAT,
  FEATURE_FORMAT_VERSION,
  type FeatureManifest,
  type FeatureTableManifest,
  PAGE_BYTES,
} from "./format.ts";
import { numBytes } from "./encoded_rows.ts";

/** A feature store that is missing, incomplete, of another format, truncated or corrupt. */
export class FeatureStoreError extends Error {
  /** The file concerned. */
  readonly path: string;

  /** `message` is prefixed with `path`. */
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = "FeatureStoreError";
    this.path = path;
  }
}

/** The name of the manifest file in a store directory. */
export const MANIFEST_FILE = "manifest.json";

/** Pages (of {@link PAGE_BYTES}) in a file of `bytes` bytes; the last may be partial. */
export function pageCount(bytes: number): number {
  return Math.ceil(bytes / PAGE_BYTES);
}

/** `dir/name`, without doubled slashes. */
export function storePath(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, "")}/${name}`;
}

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function checkTable(path: string, name: string, t: FeatureTableManifest): void {
  const bad = (what: string) => new FeatureStoreError(path, `table "${name}": ${what}`);
  const ints = ["rows", "rowBytes", "numWidth", "catWidth"] as const;
  for (const k of ints) {
    if (!Number.isSafeInteger(t?.[k]) || t[k] < 0) throw bad(`"${k}" is not a count`);
  }
  if (t.numDtype !== "f32" && t.numDtype !== "f16") throw bad(`numDtype "${t.numDtype}"`);
  if (t.rowBytes % 4 !== 0 || t.rowBytes < t.numWidth * numBytes(t.numDtype) + 4 * t.catWidth) {
    throw bad(`rowBytes ${t.rowBytes} does not fit the blocks or is not a multiple of 4`);
  }
  if (!Array.isArray(t.columns) || !Array.isArray(t.cardinality)) throw bad("no column layout");
  if (t.cardinality.length !== t.catWidth) throw bad("cardinality does not match catWidth");
  for (const f of [t.rowsFile, t.sumsFile]) {
    if (typeof f !== "string" || f.includes("/") || f.startsWith(".")) {
      throw bad(`file name ${JSON.stringify(f)} is not a plain name`);
    }
  }
}

/**
 * Reads and validates the manifest of the store in `dir`: format tag,
 * version, table fields, and that each rows file is exactly `rows *
 * rowBytes` bytes and each checksum file holds one u32 per page. A directory
 * without `manifest.json` (an interrupted build never leaves one) is
 * reported as not a complete store.
 */
export async function openManifest(dir: string): Promise<FeatureManifest> {
  const path = storePath(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    const exists = (await fileSize(dir)) !== null;
    throw new FeatureStoreError(
      path,
      exists
        ? "missing: not a complete feature store (a build writes its manifest last)"
        : "no feature store here (the directory does not exist)",
    );
  }
  let m: FeatureManifest;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new FeatureStoreError(path, `not valid JSON (${(e as Error).message})`);
  }
  if (m?.format !== FEATURE_FORMAT) {
    throw new FeatureStoreError(path, `format "${m?.format}" is not "${FEATURE_FORMAT}"`);
  }
  if (m.version !== FEATURE_FORMAT_VERSION) {
    throw new FeatureStoreError(
      path,
      `format version ${m.version}; this build reads version ${FEATURE_FORMAT_VERSION}: rebuild ` +
        `the store`,
    );
  }
  if (typeof m.cutoff !== "number" || typeof m.tables !== "object" || m.tables === null) {
    throw new FeatureStoreError(path, "no cutoff or no tables");
  }
  for (const [name, t] of Object.entries(m.tables)) {
    checkTable(path, name, t);
    const rowsPath = storePath(dir, t.rowsFile);
    const want = t.rows * t.rowBytes;
    const size = await fileSize(rowsPath);
    if (size === null) throw new FeatureStoreError(rowsPath, `missing (table "${name}")`);
    if (size !== want) {
      throw new FeatureStoreError(
        rowsPath,
        `${size} bytes, expected ${want} (${t.rows} rows of ${t.rowBytes} bytes, table ` +
          `"${name}"): the file is ${size < want ? "truncated" : "too long"}`,
      );
    }
    const sumsPath = storePath(dir, t.sumsFile);
    const sums = await fileSize(sumsPath);
    const wantSums = 4 * pageCount(want);
    if (sums === null) throw new FeatureStoreError(sumsPath, `missing (table "${name}")`);
    if (sums !== wantSums) {
      throw new FeatureStoreError(
        sumsPath,
        `${sums} bytes, expected ${wantSums} (one checksum per page of ${t.rowsFile}): the ` +
          `file is truncated or altered`,
      );
    }
  }
  return m;
}

/** Reads a table's page checksums (one XXH32 per page of its rows file). */
export async function readSums(dir: string, t: FeatureTableManifest): Promise<Uint32Array> {
  const bytes = await Deno.readFile(storePath(dir, t.sumsFile));
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Uint32Array(copy.buffer);
}

/**
 * Checks page `page` of a rows file against its checksum; `bytes` is the
 * page's content (`PAGE_BYTES` long, shorter for the last page). Throws a
 * {@link FeatureStoreError} naming `path`, the page and its byte range.
 */
export function checkPage(path: string, page: number, bytes: Uint8Array, sums: Uint32Array): void {
  const got = xxh32(bytes);
  if (got !== sums[page]) {
    const a = page * PAGE_BYTES;
    throw new FeatureStoreError(
      path,
      `page ${page} (bytes ${a}..${a + bytes.byteLength}) fails its checksum (stored ` +
        `${hex(sums[page])}, computed ${hex(got)}): the file is corrupt; rebuild the store`,
    );
  }
}

function hex(x: number | undefined): string {
  return x === undefined ? "none" : `0x${x.toString(16).padStart(8, "0")}`;
}

/**
 * Verifies every page of `table`'s rows file against its checksums, reading
 * 1 MiB at a time; returns the number of pages checked. Opens (and so
 * validates) the manifest unless one is given.
 */
export async function verifyPages(
  dir: string,
  table: string,
  manifest?: FeatureManifest,
): Promise<number> {
  const m = manifest ?? await openManifest(dir);
  const t = m.tables[table];
  if (!t) {
    throw new FeatureStoreError(
      storePath(dir, MANIFEST_FILE),
      `no table "${table}"; tables: ${Object.keys(m.tables).join(", ")}`,
    );
  }
  const path = storePath(dir, t.rowsFile);
  const sums = await readSums(dir, t);
  const total = t.rows * t.rowBytes;
  const pages = pageCount(total);
  const block = new Uint8Array(256 * PAGE_BYTES);
  using file = await Deno.open(path, { read: true });
  for (let p = 0; p < pages; p += 256) {
    const want = Math.min(block.byteLength, total - p * PAGE_BYTES);
    let got = 0;
    while (got < want) {
      const n = await file.read(block.subarray(got, want));
      if (n === null) throw new FeatureStoreError(path, `ends at byte ${p * PAGE_BYTES + got}`);
      got += n;
    }
    for (let k = 0; k * PAGE_BYTES < want; k++) {
      const a = k * PAGE_BYTES;
      checkPage(path, p + k, block.subarray(a, Math.min(want, a + PAGE_BYTES)), sums);
    }
  }
  return pages;
}
