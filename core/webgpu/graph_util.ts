/**
 * Operand checks and small helpers shared by the graph kernel modules.
 *
 * @module
 */

import type { DType, Storage } from "../backend.ts";
import type { GpuInfo } from "./device.ts";
import { gpu, type GpuStorage } from "./storage.ts";

/** 4 when every count is a multiple of 4 (the vec4 kernels apply), else 1. */
export function vecWidth(...counts: number[]): 1 | 4 {
  return counts.every((c) => c % 4 === 0) ? 4 : 1;
}

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
 * A live GPU operand of one of `dtypes`, with exactly `size` elements
 * (any size when `size` is null).
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

/**
 * Whether the adapter is a CPU implementation (lavapipe / llvmpipe,
 * SwiftShader), where some kernels pick layouts that suit SIMD lanes on CPU
 * cores rather than GPU warps.
 */
export function isSoftwareAdapter(info: GpuInfo): boolean {
  return info.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(info.description);
}
