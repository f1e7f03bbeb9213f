/**
 * Seeded randomness: a small fast generator for initialisation and data, and
 * a global seed stream for kernels that draw per call (dropout).
 *
 * @module
 */

import { type Tensor, tensor, type TensorOptions } from "./tensor.ts";

/** A seeded generator (mulberry32 state stepping; 32-bit, fast, reproducible). */
export class Rng {
  #s: number;
  /** Starts the stream at `seed`. */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A uniform integer in [0, 2^32). */
  nextU32(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** A uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }
  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** A standard normal draw (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

let global = new Rng(0x5eed);

/** Reseeds the global stream (initialisation and dropout seeds). */
export function manualSeed(seed: number): void {
  global = new Rng(seed);
}

/** The next 32-bit seed of the global stream. */
export function nextSeed(): number {
  return global.nextU32();
}

/** Options for random tensors. */
export interface RandomOptions extends TensorOptions {
  /** Generator to draw from; the global stream when omitted. */
  rng?: Rng;
}

/** A tensor of standard normal values times `std`. */
export function randn(
  shape: readonly number[],
  opts: RandomOptions & { std?: number } = {},
): Tensor {
  const rng = opts.rng ?? global;
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  const std = opts.std ?? 1;
  for (let i = 0; i < n; i++) d[i] = rng.normal() * std;
  return tensor(d, shape, opts);
}

/** A tensor of uniform values in [lo, hi). */
export function rand(
  shape: readonly number[],
  opts: RandomOptions & { lo?: number; hi?: number } = {},
): Tensor {
  const rng = opts.rng ?? global;
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  const lo = opts.lo ?? 0, hi = opts.hi ?? 1;
  for (let i = 0; i < n; i++) d[i] = lo + (hi - lo) * rng.next();
  return tensor(d, shape, opts);
}
