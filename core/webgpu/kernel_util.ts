/**
 * Operand checks and small helpers shared by every kernel module (dense and
 * graph alike), so that all WebGPU kernels validate their operands by one
 * rule and report errors in one format: `fanout: webgpu.<kernel>: …`.
 *
 * @module
 */

import type { DType, Storage } from "../backend.ts";
import { gpu, type GpuStorage } from "./storage.ts";

/** Throws a `fanout: webgpu.<kernel>: …` error. */
export function fail(kernel: string, msg: string): never {
  throw new Error(`fanout: webgpu.${kernel}: ${msg}`);
}

/** Throws unless `n` is a non-negative integer. */
export function checkCount(kernel: string, what: string, n: number): void {
  if (!(Number.isInteger(n) && n >= 0)) {
    fail(kernel, `${what} must be a non-negative integer, got ${n}`);
  }
}

/**
 * Narrows `s` to a live GPU operand of one of `dtypes` (float kernels keep
 * the default, `f32` only) holding exactly `size` elements, as the Backend
 * contract requires; errors name the kernel and the operand. `size` is null
 * only where the attributes do not imply one (the caller checks it).
 */
export function operand(
  kernel: string,
  s: Storage,
  size: number | null,
  what: string,
  dtypes: readonly DType[] = ["f32"],
): GpuStorage {
  const g = gpu(s);
  if (!dtypes.includes(g.dtype)) {
    fail(kernel, `${what} must be ${dtypes.join(" or ")}, got ${g.dtype}`);
  }
  if (size !== null && g.size !== size) {
    fail(kernel, `${what} has ${g.size} elements, expected ${size}`);
  }
  return g;
}

/** 4 when every count is a multiple of 4 (the vec4 kernels apply), else 1. */
export function vecWidth(...counts: number[]): 1 | 4 {
  return counts.every((c) => c % 4 === 0) ? 4 : 1;
}

/** Smallest power of two ≥ `x` (x ≥ 1). */
export function nextPow2(x: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, x)));
}

/**
 * Whether every buffer holds whole vec4s (its size is a multiple of 16
 * bytes), so that vec4 kernels may touch the last, partly used vec4 of each.
 * True for every pooled buffer except one clipped to a binding limit that is
 * not a multiple of 16.
 */
export function wholeVec4(buffers: readonly GPUBuffer[]): boolean {
  return buffers.every((b) => b.size % 16 === 0);
}
