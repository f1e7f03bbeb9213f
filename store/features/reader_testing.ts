/**
 * Test and benchmark helper: writes a feature store in the on-disk format
 * (format.ts) without a database, with row values that are a pure function of
 * (table, id, slot), so that tests can check any gathered row without keeping
 * the file in memory. Rows are written a bounded chunk at a time.
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
import { packRows, rowBytesFor } from "./encoded_rows.ts";

/** One table to write. */
export interface TestTableSpec {
  /** Table name. */
  name: string;
  /** Row count. */
  rows: number;
  /** Numerical values per row. */
  numWidth: number;
  /** Categorical codes per row. */
  catWidth: number;
  /** Storage of the numerical block (default f32). */
  numDtype?: "f32" | "f16";
  /** Extra zero bytes per row (a multiple of 4; default 0). */
  pad?: number;
  /**
   * "pattern" (default): values from `testValue` / `testCode`. "random": raw
   * pseudo-random row bytes (fast, for benchmarks; values are meaningless).
   */
  fill?: "pattern" | "random";
}

/** Vocabulary size (code 0 included) of every categorical slot of test tables. */
export const TEST_CARDINALITY = 50;

function mix(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 15) ^ Math.imul(c + 1, 0x27d4eb2f), 0x165667b1);
  return (h ^ (h >>> 13)) >>> 0;
}

function tableSeed(name: string): number {
  let h = 7;
  for (let i = 0; i < name.length; i++) h = Math.imul(h, 31) + name.charCodeAt(i) | 0;
  return h;
}

/** Numerical value `k` of row `id` of `table`: a multiple of 1/64 in [-8, 8), exact in f16. */
export function testValue(table: string, id: number, k: number): number {
  return ((mix(tableSeed(table), id, k) % 1024) - 512) / 64;
}

/** Categorical code `k` of row `id` of `table`, in [0, TEST_CARDINALITY). */
export function testCode(table: string, id: number, k: number): number {
  return mix(tableSeed(table) ^ 0x5bd1e995, id, k) % TEST_CARDINALITY;
}

/** The manifest entry `writeTestStore` writes for a spec. */
export function testTableManifest(s: TestTableSpec): FeatureTableManifest {
  const numDtype = s.numDtype ?? "f32";
  return {
    table: s.name,
    rows: s.rows,
    rowBytes: rowBytesFor(numDtype, s.numWidth, s.catWidth) + (s.pad ?? 0),
    numDtype,
    numWidth: s.numWidth,
    catWidth: s.catWidth,
    cardinality: Array(s.catWidth).fill(TEST_CARDINALITY),
    columns: [],
    rowsFile: `${s.name}.rows`,
    sumsFile: `${s.name}.sums`,
  };
}

/** The packed bytes of rows [from, from + count) of a pattern table. */
export function testRows(t: FeatureTableManifest, from: number, count: number): Uint8Array {
  const num = new Float32Array(count * t.numWidth);
  const cat = new Uint32Array(count * t.catWidth);
  for (let r = 0; r < count; r++) {
    for (let k = 0; k < t.numWidth; k++) num[r * t.numWidth + k] = testValue(t.table, from + r, k);
    for (let k = 0; k < t.catWidth; k++) cat[r * t.catWidth + k] = testCode(t.table, from + r, k);
  }
  const out = new Uint8Array(count * t.rowBytes);
  packRows(t, num, cat, count, out);
  return out;
}

function randomRows(words: Uint32Array, state: number): number {
  let x = state | 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return x;
}

/**
 * Writes a store of `tables` into `dir` (created; files replaced) and returns
 * its manifest. Memory: about 4 MiB whatever the sizes.
 */
export async function writeTestStore(
  dir: string,
  tables: readonly TestTableSpec[],
): Promise<FeatureManifest> {
  await Deno.mkdir(dir, { recursive: true });
  const manifest: FeatureManifest = {
    format: FEATURE_FORMAT,
    version: FEATURE_FORMAT_VERSION,
    cutoff: 0,
    tables: {},
  };
  for (const spec of tables) {
    const t = testTableManifest(spec);
    manifest.tables[t.table] = t;
    const total = t.rows * t.rowBytes;
    const sums = new Uint32Array(Math.ceil(total / PAGE_BYTES));
    using rows = await Deno.open(`${dir}/${t.rowsFile}`, {
      write: true,
      create: true,
      truncate: true,
    });
    const chunk = new Uint8Array(4 << 20); // a multiple of PAGE_BYTES
    const words = new Uint32Array(chunk.buffer);
    let filled = 0, written = 0, nextRow = 0, state = tableSeed(t.table);
    const flush = async (final: boolean) => {
      const len = final ? filled : filled - (filled % PAGE_BYTES);
      for (let o = 0; o < len; o += PAGE_BYTES) {
        sums[(written + o) / PAGE_BYTES] = xxh32(chunk.subarray(o, Math.min(len, o + PAGE_BYTES)));
      }
      for (let o = 0; o < len;) o += await rows.write(chunk.subarray(o, len));
      chunk.copyWithin(0, len, filled);
      written += len;
      filled -= len;
    };
    if (spec.fill === "random") {
      while (written + filled < total) {
        state = randomRows(words, state);
        filled = Math.min(chunk.length, total - written);
        await flush(written + filled === total);
      }
    } else {
      const per = Math.max(1, Math.floor((chunk.length / 2) / Math.max(1, t.rowBytes)));
      while (nextRow < t.rows) {
        const n = Math.min(per, t.rows - nextRow);
        chunk.set(testRows(t, nextRow, n), filled);
        filled += n * t.rowBytes;
        nextRow += n;
        await flush(nextRow === t.rows);
      }
    }
    await Deno.writeFile(`${dir}/${t.sumsFile}`, new Uint8Array(sums.buffer));
  }
  await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(manifest, null, 1));
  return manifest;
}
