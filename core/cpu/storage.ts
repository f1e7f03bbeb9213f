/**
 * Storage of the CPU reference backend: a reference-counted typed array, plus
 * the float16 rounding that emulates `f16` storage.
 *
 * @module
 */

import type { Backend, DType, Storage } from "../backend.ts";

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
 * Rounds a number to the nearest IEEE 754 half-precision value (ties to even),
 * with overflow to ±Infinity and gradual underflow: what storing a value as
 * `f16` keeps. NaN stays NaN, and the sign of zero is kept.
 */
export function roundF16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  // Halfway between the largest half (65504) and 2^16 rounds to even: overflow.
  if (a >= 65520) return x > 0 ? Infinity : -Infinity;
  let quantum: number;
  if (a < 2 ** -14) {
    quantum = 2 ** -24; // subnormal spacing
  } else {
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e--;
    else if (2 ** (e + 1) <= a) e++;
    quantum = 2 ** (e - 10); // 10 fraction bits
  }
  const r = roundHalfEven(a / quantum) * quantum;
  return x < 0 ? -r : r;
}

function roundHalfEven(y: number): number {
  const f = Math.floor(y);
  const d = y - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
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
