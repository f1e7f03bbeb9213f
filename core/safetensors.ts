/**
 * The safetensors checkpoint format, read and written byte for byte:
 *
 * ```
 * u64 little-endian N | N bytes of JSON header, space-padded | raw data
 * ```
 *
 * The header maps each tensor name to `{"dtype", "shape", "data_offsets":
 * [begin, end]}` (byte offsets into the data section) and may hold a
 * `"__metadata__"` map of strings. Data is little-endian and contiguous: the
 * tensors cover the data section exactly, without gaps or overlaps. Writing
 * pads the header with spaces so that the data starts at a multiple of 8,
 * lays data out by decreasing element size (4-byte types before F16, in
 * insertion order otherwise), and lists the header keys in data order after
 * `__metadata__`.
 *
 * Supported dtypes: F32, F16 (kept as raw bits in a `Uint16Array`), I32.
 *
 * @module
 */

import { Tensor } from "./tensor.ts";
import { f32ToF16 } from "./half.ts";

export { f16BitsToF32, f16BitsToNumber, f32ToF16, f32ToF16Bits } from "./half.ts";

/** Element types of a safetensors file that fanout reads and writes. */
export type SafetensorsDType = "F32" | "F16" | "I32";

/** One tensor of a safetensors file, on the host. */
export interface SafetensorEntry {
  /** Element type. */
  dtype: SafetensorsDType;
  /** Dimensions (`[]` for a scalar). */
  shape: number[];
  /** Elements, row-major: `Float32Array` (F32), `Uint16Array` of half bits (F16), `Int32Array` (I32). */
  data: Float32Array | Uint16Array | Int32Array;
}

/** A decoded file: tensors in header order and the `__metadata__` strings. */
export interface Safetensors {
  /** Tensors by name. */
  tensors: Map<string, SafetensorEntry>;
  /** The `__metadata__` map (empty when absent). */
  metadata: Record<string, string>;
}

/**
 * A tensor to encode: `dtype` and `shape` as in `SafetensorEntry`; `data`
 * may be any numbers, converted to the dtype (for F16 a `Uint16Array` is
 * taken as raw half bits, anything else as values to round).
 */
export interface SafetensorInput {
  /** Element type. */
  dtype: SafetensorsDType;
  /** Dimensions. */
  shape: readonly number[];
  /** Elements, row-major. */
  data: ArrayLike<number>;
}

const SIZE: Record<SafetensorsDType, number> = { F32: 4, F16: 2, I32: 4 };
const MAX_HEADER = 100_000_000;

function fail(file: string, msg: string): never {
  throw new Error(`safetensors: ${file}: ${msg}`);
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function bytesOf(e: SafetensorInput): Uint8Array {
  const n = e.data.length;
  const buf = new ArrayBuffer(n * SIZE[e.dtype]);
  const view = new DataView(buf);
  if (e.dtype === "F32") {
    for (let i = 0; i < n; i++) view.setFloat32(i * 4, e.data[i], true);
  } else if (e.dtype === "I32") {
    for (let i = 0; i < n; i++) view.setInt32(i * 4, e.data[i], true);
  } else {
    const bits = e.data instanceof Uint16Array ? e.data : f32ToF16(e.data);
    for (let i = 0; i < n; i++) view.setUint16(i * 2, bits[i], true);
  }
  return new Uint8Array(buf);
}

/**
 * Encodes tensors (and optional string metadata) as a safetensors file
 * image. Throws on an unsupported dtype, a bad shape or a data length that
 * does not fill its shape.
 */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, SafetensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const entries = [...tensors];
  for (const [name, e] of entries) {
    if (name === "__metadata__") fail("encode", `"__metadata__" cannot name a tensor`);
    if (!(e.dtype in SIZE)) fail("encode", `tensor "${name}" has unsupported dtype ${e.dtype}`);
    if (!e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail("encode", `tensor "${name}" has a bad shape [${e.shape}]`);
    }
    if (e.data.length !== numel(e.shape)) {
      fail("encode", `tensor "${name}" has ${e.data.length} values for shape [${e.shape}]`);
    }
  }
  // Stable sort by decreasing element size keeps every tensor aligned to its element size.
  entries.sort((a, b) => SIZE[b[1].dtype] - SIZE[a[1].dtype]);
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") fail("encode", `metadata "${k}" is not a string`);
    }
    header.__metadata__ = metadata;
  }
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, e] of entries) {
    const bytes = bytesOf(e);
    header[name] = {
      dtype: e.dtype,
      shape: [...e.shape],
      data_offsets: [offset, offset + bytes.length],
    };
    blobs.push(bytes);
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let at = 8 + padded;
  for (const b of blobs) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Decodes a safetensors file image. `file` names the source in errors. The
 * header, every tensor's dtype, shape and `data_offsets`, and the coverage of
 * the data section are validated; each error names the file and the tensor.
 * The returned arrays are copies (aligned, independent of `bytes`).
 */
export function decodeSafetensors(bytes: Uint8Array, file = "<bytes>"): Safetensors {
  if (bytes.length < 8) {
    fail(file, `file is truncated: ${bytes.length} bytes, fewer than the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) fail(file, `bad header: header length ${n64} is implausible`);
  const n = Number(n64);
  if (8 + n > bytes.length) {
    fail(
      file,
      `file is truncated: the header length says ${n} bytes but only ${bytes.length - 8} follow`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(file, `bad header: not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isRecord(header)) fail(file, "bad header: the JSON is not an object");
  const dataLen = bytes.length - 8 - n;
  const data = bytes.subarray(8 + n);
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorEntry>();
  const spans: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isRecord(raw)) fail(file, `bad header: "__metadata__" is not an object`);
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== "string") fail(file, `bad header: metadata "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (!isRecord(raw)) fail(file, `bad header: ${where} is not an object`);
    const { dtype, shape, data_offsets: off } = raw;
    if (typeof dtype !== "string" || !(dtype in SIZE)) {
      fail(file, `${where} has unsupported dtype ${JSON.stringify(dtype)} (F32, F16, I32 only)`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      fail(file, `bad header: ${where} has a bad shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount)) {
      fail(file, `bad header: ${where} has bad data_offsets ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as [number, number];
    const dt = dtype as SafetensorsDType;
    const need = numel(shape as number[]) * SIZE[dt];
    if (begin > end) fail(file, `${where} has data_offsets [${begin}, ${end}] with begin > end`);
    const span = end - begin;
    if (span !== need) {
      fail(
        file,
        `${where} has data_offsets [${begin}, ${end}] (${span} bytes) but ${dt} [${shape}] needs ${need} bytes`,
      );
    }
    if (end > dataLen) {
      fail(
        file,
        `${where} data_offsets [${begin}, ${end}] are out of range: the data section has ${dataLen} bytes (file truncated?)`,
      );
    }
    spans.push([begin, end, name]);
    const copy = data.slice(begin, end).buffer;
    const arr = dt === "F32"
      ? new Float32Array(copy)
      : dt === "I32"
      ? new Int32Array(copy)
      : new Uint16Array(copy);
    if (!littleEndianHost) swapBytes(arr);
    tensors.set(name, { dtype: dt, shape: shape as number[], data: arr });
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let covered = 0;
  for (const [begin, end, name] of spans) {
    if (begin !== covered) {
      fail(
        file,
        begin < covered
          ? `tensor "${name}" data_offsets [${begin}, ${end}] overlap another tensor's data (which ends at ${covered})`
          : `tensor "${name}" data_offsets [${begin}, ${end}] leave a gap after byte ${covered}`,
      );
    }
    covered = end;
  }
  if (covered !== dataLen) {
    fail(file, `${dataLen - covered} trailing bytes after the last tensor's data`);
  }
  return { tensors, metadata };
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapBytes(arr: Float32Array | Int32Array | Uint16Array): void {
  const b = new Uint8Array(arr.buffer);
  const k = arr.BYTES_PER_ELEMENT;
  for (let i = 0; i < b.length; i += k) b.subarray(i, i + k).reverse();
}

/** The safetensors dtype for a tensor's storage type. */
function dtypeOf(t: Tensor): SafetensorsDType {
  return t.dtype === "f32" ? "F32" : t.dtype === "f16" ? "F16" : "I32";
}

/**
 * Reads tensors back (one await each; do it at checkpoint time, not per
 * step) and converts them to entries: f32 → F32, f16 → F16, i32 → I32.
 * Entries pass through as they are.
 */
export async function toEntries(
  map: ReadonlyMap<string, Tensor | SafetensorInput>,
): Promise<Map<string, SafetensorInput>> {
  const out = new Map<string, SafetensorInput>();
  for (const [name, v] of map) {
    if (v instanceof Tensor) {
      const data = await v.data();
      out.set(name, { dtype: dtypeOf(v), shape: [...v.shape], data });
    } else {
      out.set(name, v);
    }
  }
  return out;
}

/**
 * Writes `map` to `path` as safetensors, atomically: the bytes go to a
 * temporary file in the same directory, which is flushed to disk and then
 * renamed over `path`. A failure leaves `path` as it was.
 */
export async function saveSafetensors(
  path: string,
  map: ReadonlyMap<string, Tensor | SafetensorInput>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = encodeSafetensors(await toEntries(map), metadata);
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  const dir = slash >= 0 ? path.slice(0, slash + 1) : "";
  const base = path.slice(slash + 1);
  const tmp = `${dir}.${base}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true });
    try {
      let at = 0;
      while (at < bytes.length) at += await f.write(bytes.subarray(at));
      await f.syncData();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Reads and validates a safetensors file (see `decodeSafetensors`). */
export async function loadSafetensors(path: string): Promise<Safetensors> {
  return decodeSafetensors(await Deno.readFile(path), path);
}
