/**
 * The fixed-width row layout of the feature store (format.ts) both ways:
 * packing dense blocks of encoded values into row bytes, and decoding row
 * bytes (from `<table>.rows`, or a page cache) back into
 * `{ num: Float32Array, cat: Uint32Array }`.
 *
 * A row is `numWidth` numerical values (f32, or f16), then `catWidth` u32
 * codes, then zero padding to `rowBytes`, all little-endian. With f16 and an
 * odd `numWidth` the codes start 2 bytes past a 4-byte boundary; both
 * directions handle that (as two u16 halves), so callers need not care.
 *
 * @module
 */

import type { FeatureTableManifest } from "./format.ts";

/** What packing and decoding need of a table's manifest. */
export type RowShape = Pick<
  FeatureTableManifest,
  "numDtype" | "numWidth" | "catWidth" | "rowBytes"
>;

/** Bytes per numerical value of a dtype. */
export function numBytes(dtype: "f32" | "f16"): number {
  return dtype === "f16" ? 2 : 4;
}

/** Bytes per row: the two blocks rounded up to a multiple of 4. */
export function rowBytesFor(numDtype: "f32" | "f16", numWidth: number, catWidth: number): number {
  const raw = numWidth * numBytes(numDtype) + catWidth * 4;
  return Math.ceil(raw / 4) * 4;
}

/** Decoded rows: `num` is `rows * numWidth` values, `cat` is `rows * catWidth` codes, row-major. */
export interface DecodedRows {
  /** Numerical values (f16 widened to f32). */
  num: Float32Array;
  /** Categorical codes. */
  cat: Uint32Array;
}

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error("the feature store's row format needs a little-endian machine");
}

/**
 * Packs `rows` rows from dense blocks (`num`: `rows * numWidth`, `cat`:
 * `rows * catWidth`) into `out` (at least `rows * rowBytes` bytes, 4-byte
 * aligned), padding included (zeroed).
 */
export function packRows(
  t: RowShape,
  num: Float32Array,
  cat: Uint32Array,
  rows: number,
  out: Uint8Array,
): void {
  const { numWidth: nw, catWidth: cw, rowBytes } = t;
  if (out.byteOffset % 4 !== 0) throw new Error("packRows: out must be 4-byte aligned");
  if (out.byteLength < rows * rowBytes) throw new Error("packRows: out is too small");
  if (rowBytes === 0) return;
  const words = rowBytes >> 2;
  const catByte = nw * numBytes(t.numDtype);
  const padStart = catByte + 4 * cw;
  if (padStart < rowBytes) {
    for (let r = 0; r < rows; r++) out.fill(0, r * rowBytes + padStart, (r + 1) * rowBytes);
  }
  if (t.numDtype === "f32") {
    const f = new Float32Array(out.buffer, out.byteOffset, rows * words);
    const u = new Uint32Array(out.buffer, out.byteOffset, rows * words);
    for (let r = 0; r < rows; r++) {
      const o = r * words;
      for (let k = 0; k < nw; k++) f[o + k] = num[r * nw + k];
      for (let k = 0; k < cw; k++) u[o + nw + k] = cat[r * cw + k];
    }
    return;
  }
  const halves = rowBytes >> 1;
  const h = new Float16Array(out.buffer, out.byteOffset, rows * halves);
  const u16 = new Uint16Array(out.buffer, out.byteOffset, rows * halves);
  const catHalf = catByte >> 1;
  for (let r = 0; r < rows; r++) {
    const o = r * halves;
    for (let k = 0; k < nw; k++) h[o + k] = num[r * nw + k];
    for (let k = 0; k < cw; k++) {
      const code = cat[r * cw + k];
      u16[o + catHalf + 2 * k] = code & 0xffff;
      u16[o + catHalf + 2 * k + 1] = code >>> 16;
    }
  }
}

/**
 * Decodes `rows` rows (default: as many as `bytes` holds) of a table's row
 * bytes. Writes into `out` when given (each block at least `rows * width`
 * long), else allocates. `bytes` need not be aligned.
 */
export function decodeRows(
  t: RowShape,
  bytes: Uint8Array,
  rows?: number,
  out?: DecodedRows,
): DecodedRows {
  const { numWidth: nw, catWidth: cw, rowBytes } = t;
  const n = rows ?? (rowBytes === 0 ? 0 : Math.floor(bytes.byteLength / rowBytes));
  if (n * rowBytes > bytes.byteLength) {
    throw new Error(
      `decodeRows: ${n} rows of ${rowBytes} bytes need more than ${bytes.byteLength}`,
    );
  }
  const res = out ?? { num: new Float32Array(n * nw), cat: new Uint32Array(n * cw) };
  if (n === 0 || rowBytes === 0) return res;
  let src = bytes;
  if (src.byteOffset % 4 !== 0) src = bytes.slice(0, n * rowBytes);
  const { num, cat } = res;
  const catByte = nw * numBytes(t.numDtype);
  if (t.numDtype === "f32") {
    const words = rowBytes >> 2;
    const f = new Float32Array(src.buffer, src.byteOffset, n * words);
    const u = new Uint32Array(src.buffer, src.byteOffset, n * words);
    for (let r = 0; r < n; r++) {
      const o = r * words;
      for (let k = 0; k < nw; k++) num[r * nw + k] = f[o + k];
      for (let k = 0; k < cw; k++) cat[r * cw + k] = u[o + nw + k];
    }
    return res;
  }
  const halves = rowBytes >> 1;
  const h = new Float16Array(src.buffer, src.byteOffset, n * halves);
  const u16 = new Uint16Array(src.buffer, src.byteOffset, n * halves);
  const catHalf = catByte >> 1;
  for (let r = 0; r < n; r++) {
    const o = r * halves;
    for (let k = 0; k < nw; k++) num[r * nw + k] = h[o + k];
    for (let k = 0; k < cw; k++) {
      cat[r * cw + k] = (u16[o + catHalf + 2 * k] | (u16[o + catHalf + 2 * k + 1] << 16)) >>> 0;
    }
  }
  return res;
}
