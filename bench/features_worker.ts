/**
 * Baseline worker of bench/features.ts: a plain FFI `pread` loop (no sort,
 * no cache, no checksum) over the offsets it is sent, writing each read into
 * its slot of a SharedArrayBuffer, as a `GatherPool` worker does.
 *
 * In: `{ path }` (open), then `{ starts: Int32Array, bytes, rowBytes,
 * buffer, byteOffset }`, or `{ drop: true }`. Out: `{ ok: true, value }` or
 * `{ error }`.
 *
 * @module
 */

import { openRawFile, type RawFile } from "../store/features/pread.ts";

/** A plain loop: `bytes` bytes at `starts[i] * rowBytes` into slot `i` of the output. */
export function plainLoop(
  file: RawFile,
  starts: Int32Array,
  bytes: number,
  rowBytes: number,
  out: Uint8Array,
): void {
  for (let i = 0; i < starts.length; i++) {
    file.readExact(out.subarray(i * bytes, (i + 1) * bytes), starts[i] * rowBytes);
  }
}

let file: RawFile | null = null;
const w = self as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(m: unknown): void;
};
w.onmessage = (e: MessageEvent) => {
  const m = e.data;
  try {
    let value: unknown = null;
    if (m.path) file = openRawFile(m.path);
    else if (m.drop) value = file!.dropCache();
    else {
      const out = new Uint8Array(m.buffer, m.byteOffset, m.starts.length * m.bytes);
      plainLoop(file!, m.starts, m.bytes, m.rowBytes, out);
    }
    w.postMessage({ ok: true, value });
  } catch (err) {
    w.postMessage({ error: (err as Error).message });
  }
};
