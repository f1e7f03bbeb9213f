/**
 * Storage of the CPU reference backend: a reference-counted typed array, plus
 * `f16` storage emulated by rounding with `core/half.ts`.
 *
 * @module
 */

import type { Backend, DType, Storage } from "../backend.ts";
import { roundF16 } from "../half.ts";

const EMPTY_F64 = new Float64Array(0);
const EMPTY_I32 = new Int32Array(0);

/**
 * A flat buffer of the CPU backend. Float dtypes (`f32`, `f16`) hold float64
 * values (`f16` ones already rounded to half precision); `i32` holds integers.
 * It starts with one reference; when `release` drops the last one the data is
 * dropped and any later use throws.
 */
export class CpuStorage implements Storage {
  /** Number of elements. */
  readonly size: number;
  /** Element type. */
  readonly dtype: DType;
  /** The owning backend. */
  readonly backend: Backend;
  /** Live references (see `Backend.retain` / `Backend.release`). */
  refCount = 1;
  #data: Float64Array | Int32Array;

  /** Wraps `data` (taken, not copied); its type must match `dtype`. */
  constructor(backend: Backend, data: Float64Array | Int32Array, dtype: DType) {
    if ((dtype === "i32") !== (data instanceof Int32Array)) {
      throw new Error(`fanout: cpu: ${dtype} storage cannot hold a ${data.constructor.name}`);
    }
    this.backend = backend;
    this.dtype = dtype;
    this.size = data.length;
    this.#data = data;
  }

  /** Whether the last reference was released. */
  get released(): boolean {
    return this.refCount <= 0;
  }

  /** The elements (not a copy). Throws once the storage was released. */
  get data(): Float64Array | Int32Array {
    if (this.refCount <= 0) {
      throw new Error(
        `fanout: cpu: use of a released ${this.dtype} storage of ${this.size} elements`,
      );
    }
    return this.#data;
  }

  /** Drops the data (called by the backend when the last reference goes). */
  drop(): void {
    this.#data = this.dtype === "i32" ? EMPTY_I32 : EMPTY_F64;
  }
}

/**
 * A typed array of `dtype` holding `data`: float64 copies for `f32`, values
 * rounded to half precision for `f16`, and integers truncated toward zero
 * (then wrapped to 32 bits, as `Int32Array` does) for `i32`.
 */
export function convert(data: ArrayLike<number>, dtype: DType): Float64Array | Int32Array {
  if (dtype === "i32") return Int32Array.from(data);
  const out = Float64Array.from(data);
  if (dtype === "f16") { for (let i = 0; i < out.length; i++) out[i] = roundF16(out[i]); }
  return out;
}
