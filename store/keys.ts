/**
 * Primary-key values ↔ dense node ids without a JavaScript object per node.
 *
 * - Integer keys: the values in id order (`Int32Array` when they all fit,
 *   else `Float64Array`), plus `order`, the ids sorted by key (null when the
 *   keys already ascend with the id): key → id is a binary search over
 *   `keys[order[k]]`, id → key is `keys[id]`.
 * - String keys: UTF-8 bytes packed in id order with `offsets` (n+1), plus
 *   `order` sorted by bytes (code-point order): key → id encodes the key and
 *   binary-searches; id → key decodes one slice.
 *
 * All arrays lie over SharedArrayBuffers. Keys of rows appended later live
 * in the node type's delta (graph_append.ts), not here.
 *
 * @module
 */

import { sortPermutationAny } from "./radix.ts";
import { sharedFloat64, sharedInt32, sharedUint8, toShared } from "./shared.ts";

/** Integer (or other numeric) primary keys. */
export interface NumericKeyIndex {
  /** Discriminant. */
  kind: "int32" | "float64";
  /** Key of each id. */
  keys: Int32Array | Float64Array;
  /** Ids in ascending key order; null when that is 0..n-1. */
  order: Int32Array | null;
}

/** String primary keys. */
export interface StringKeyIndex {
  /** Discriminant. */
  kind: "string";
  /** UTF-8 bytes of all keys, in id order. */
  bytes: Uint8Array;
  /** Key of id i is `bytes[offsets[i] .. offsets[i+1])`. */
  offsets: Int32Array;
  /** Ids in ascending byte order of their keys; null when that is 0..n-1. */
  order: Int32Array | null;
}

/** A primary-key index of one node type. */
export type KeyIndex = NumericKeyIndex | StringKeyIndex;

/**
 * A key column as given to `buildKeyIndex`: a typed array for numeric keys,
 * a plain array for string keys (a plain array of numbers only is numeric;
 * an empty plain array gives an empty string index).
 */
export type KeyColumn = Int32Array | Float64Array | readonly (string | number | null)[];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Builds the index of a primary-key column (values in id order). Throws on a
 * null or duplicate key, naming `table.column`.
 */
export function buildKeyIndex(values: KeyColumn, what = "primary key"): KeyIndex {
  if (values instanceof Int32Array || values instanceof Float64Array) {
    return buildNumeric(values, what);
  }
  let numeric = values.length > 0;
  for (const v of values) {
    if (v === null || v === undefined) throw new Error(`${what}: null key`);
    if (typeof v !== "number") numeric = false;
  }
  if (numeric) return buildNumeric(Float64Array.from(values as number[]), what);
  return buildString(values.map((v) => String(v)), what);
}

function buildNumeric(values: Int32Array | Float64Array, what: string): NumericKeyIndex {
  let int32 = values instanceof Int32Array;
  if (!int32) {
    int32 = true;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (Number.isNaN(v)) throw new Error(`${what}: null key at row ${i}`);
      if (int32 && (v | 0) !== v) int32 = false;
    }
  }
  let keys: Int32Array | Float64Array;
  if (int32) {
    keys = values instanceof Int32Array ? toShared(values) : sharedInt32(values.length);
    if (!(values instanceof Int32Array)) keys.set(values);
  } else keys = toShared(values as Float64Array);
  const order = sortPermutationAny(keys);
  const at = (k: number) => keys[order ? order[k] : k];
  for (let k = 1; k < keys.length; k++) {
    if (at(k) === at(k - 1)) throw new Error(`${what}: duplicate key ${at(k)}`);
  }
  return { kind: int32 ? "int32" : "float64", keys, order: order && toShared(order) };
}

function compareBytes(
  a: Uint8Array,
  aStart: number,
  aEnd: number,
  b: Uint8Array,
  bStart: number,
  bEnd: number,
): number {
  const n = Math.min(aEnd - aStart, bEnd - bStart);
  for (let i = 0; i < n; i++) {
    const d = a[aStart + i] - b[bStart + i];
    if (d !== 0) return d;
  }
  return (aEnd - aStart) - (bEnd - bStart);
}

function buildString(values: readonly string[], what: string): StringKeyIndex {
  const n = values.length;
  const offsets = sharedInt32(n + 1);
  const parts: Uint8Array[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const b = encoder.encode(values[i]);
    parts.push(b);
    total += b.length;
    offsets[i + 1] = total;
  }
  const bytes = sharedUint8(total);
  for (let i = 0; i < n; i++) bytes.set(parts[i], offsets[i]);
  return stringIndexFromBytes(bytes, offsets, what);
}

/** A string index over packed UTF-8 `bytes` and `offsets` (n+1) in id order; sorts and checks. */
export function stringIndexFromBytes(
  bytes: Uint8Array,
  offsets: Int32Array,
  what = "primary key",
): StringKeyIndex {
  const n = offsets.length - 1;
  const cmp = (a: number, b: number) =>
    compareBytes(bytes, offsets[a], offsets[a + 1], bytes, offsets[b], offsets[b + 1]);
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) if (cmp(i - 1, i) > 0) sorted = false;
  let order: Int32Array | null = null;
  if (!sorted) {
    order = sharedInt32(n);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort(cmp);
  }
  for (let k = 1; k < n; k++) {
    const a = order ? order[k - 1] : k - 1, b = order ? order[k] : k;
    if (cmp(a, b) === 0) {
      throw new Error(`${what}: duplicate key ${
        JSON.stringify(keyAt(
          { kind: "string", bytes, offsets, order },
          b,
        ))
      }`);
    }
  }
  return { kind: "string", bytes: toShared(bytes), offsets: toShared(offsets), order };
}

/** Number of keys in the index. */
export function keyCount(index: KeyIndex): number {
  return index.kind === "string" ? index.offsets.length - 1 : index.keys.length;
}

/** The key of dense id `id`. */
export function keyAt(index: KeyIndex, id: number): number | string {
  if (index.kind !== "string") return index.keys[id];
  return decoder.decode(index.bytes.slice(index.offsets[id], index.offsets[id + 1]));
}

/**
 * The dense id of `key`, or -1 when absent. Numeric indexes accept numbers
 * and numeric strings; string indexes accept strings and numbers (as text).
 */
export function lookupKey(index: KeyIndex, key: number | string | bigint): number {
  const n = keyCount(index);
  const order = index.order;
  if (index.kind !== "string") {
    const k = typeof key === "number" ? key : Number(key);
    if (Number.isNaN(k)) return -1;
    const keys = index.keys;
    let lo = 0, hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[order ? order[mid] : mid] < k) lo = mid + 1;
      else hi = mid;
    }
    if (lo < n) {
      const id = order ? order[lo] : lo;
      if (keys[id] === k) return id;
    }
    return -1;
  }
  const q = encoder.encode(String(key));
  const { bytes, offsets } = index;
  let lo = 0, hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const id = order ? order[mid] : mid;
    if (compareBytes(bytes, offsets[id], offsets[id + 1], q, 0, q.length) < 0) lo = mid + 1;
    else hi = mid;
  }
  if (lo < n) {
    const id = order ? order[lo] : lo;
    if (compareBytes(bytes, offsets[id], offsets[id + 1], q, 0, q.length) === 0) return id;
  }
  return -1;
}

/** Bytes held by the index's arrays. */
export function keyIndexBytes(index: KeyIndex): number {
  const order = index.order ? index.order.byteLength : 0;
  if (index.kind === "string") return index.bytes.byteLength + index.offsets.byteLength + order;
  return index.keys.byteLength + order;
}

/** The arrays of an index by role (for saving). */
export function keyIndexArrays(
  index: KeyIndex,
): Record<string, Int32Array | Float64Array | Uint8Array> {
  const out: Record<string, Int32Array | Float64Array | Uint8Array> = {};
  if (index.kind === "string") {
    out.keyBytes = index.bytes;
    out.keyOffsets = index.offsets;
  } else out.keys = index.keys;
  if (index.order) out.keyOrder = index.order;
  return out;
}

/** Concatenates the keys of `index` with `extra` keys (appended rows) into a new index. */
export function extendKeyIndex(
  index: KeyIndex,
  extra: readonly (number | string)[],
  what = "primary key",
): KeyIndex {
  if (index.kind === "string") {
    const enc = extra.map((k) => encoder.encode(String(k)));
    const n = index.offsets.length - 1;
    const total = index.bytes.length + enc.reduce((s, b) => s + b.length, 0);
    const bytes = sharedUint8(total);
    bytes.set(index.bytes);
    const offsets = sharedInt32(n + extra.length + 1);
    offsets.set(index.offsets);
    let at = index.bytes.length;
    enc.forEach((b, i) => {
      bytes.set(b, at);
      at += b.length;
      offsets[n + i + 1] = at;
    });
    return stringIndexFromBytes(bytes, offsets, what);
  }
  const all = sharedFloat64(index.keys.length + extra.length);
  all.set(index.keys);
  extra.forEach((k, i) => (all[index.keys.length + i] = Number(k)));
  return buildNumeric(all, what);
}
