/**
 * Storage on the GPU: a pooled buffer, its element count and type, and a
 * reference count so that views share one buffer.
 *
 * @module
 */

import type { Backend, DType, Storage } from "../backend.ts";

/** Bytes per element of a dtype. */
export function bytesPer(dtype: DType): number {
  return dtype === "f16" ? 2 : 4;
}

/** A GPU storage. */
export class GpuStorage implements Storage {
  /** The pooled buffer (may be larger than needed). */
  buffer: GPUBuffer;
  /** Element count. */
  readonly size: number;
  /** Element type. */
  readonly dtype: DType;
  /** The owner. */
  readonly backend: Backend;
  /** Reference count; the buffer returns to the pool at zero. */
  refs = 1;

  /** Wraps a pooled buffer. */
  constructor(backend: Backend, buffer: GPUBuffer, size: number, dtype: DType) {
    this.backend = backend;
    this.buffer = buffer;
    this.size = size;
    this.dtype = dtype;
  }

  /** Bytes of data. */
  get bytes(): number {
    return this.size * bytesPer(this.dtype);
  }
}

/** Narrows a storage to a GPU storage, with a clear error for a foreign or freed one. */
export function gpu(s: Storage): GpuStorage {
  if (!(s instanceof GpuStorage)) {
    throw new Error(
      `fanout: expected a WebGPU storage, got one from the ${s.backend.name} backend`,
    );
  }
  if (s.refs <= 0) throw new Error("fanout: use of a released GPU storage");
  return s;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE half-precision bits of `v`, rounded to nearest even. */
export function f32ToF16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  e = h >>> 10;
  return sign | h;
}

/** The value of IEEE half-precision bits. */
export function f16BitsToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
