/**
 * Typed arrays over `SharedArrayBuffer`s, so that sampler workers read one
 * copy of the graph store.
 *
 * @module
 */

/** An Int32Array of `n` zeros over a new SharedArrayBuffer. */
export function sharedInt32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * n));
}

/** A Float64Array of `n` zeros over a new SharedArrayBuffer. */
export function sharedFloat64(n: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(8 * n));
}

/** A Uint8Array of `n` zeros over a new SharedArrayBuffer. */
export function sharedUint8(n: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(n));
}

/** A copy of `a` over a new SharedArrayBuffer, or `a` itself when it is already shared and exact. */
export function toShared<T extends Int32Array | Float64Array | Uint8Array>(a: T): T {
  if (
    a.buffer instanceof SharedArrayBuffer && a.byteOffset === 0 &&
    a.byteLength === a.buffer.byteLength
  ) {
    return a;
  }
  const ctor = a.constructor as new (b: SharedArrayBuffer) => T;
  const out = new ctor(new SharedArrayBuffer(a.byteLength));
  out.set(a);
  return out;
}

/** True when `a` lies over a SharedArrayBuffer. */
export function isShared(a: ArrayBufferView): boolean {
  return a.buffer instanceof SharedArrayBuffer;
}
