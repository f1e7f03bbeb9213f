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
