/**
 * Operand checks shared by the dense kernel modules.
 *
 * @module
 */

import type { DType, Storage } from "../backend.ts";
import { gpu, type GpuStorage } from "./storage.ts";

/**
 * Narrows `s` to a live GPU storage of `dtype` holding at least `size`
 * elements, with an error naming the kernel and operand otherwise.
 */
export function operand(
  kernel: string,
  s: Storage,
  size: number,
  what: string,
  dtype: DType = "f32",
): GpuStorage {
  const g = gpu(s);
  if (g.dtype !== dtype) {
    throw new Error(`fanout: webgpu ${kernel}: ${what} must be ${dtype}, got ${g.dtype}`);
  }
  if (g.size < size) {
    throw new Error(
      `fanout: webgpu ${kernel}: ${what} holds ${g.size} elements, needs ${size}`,
    );
  }
  return g;
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
