/**
 * The matrix product (shaders/matmul.wgsl): a register-tiled kernel with
 * 128×128 output tiles (128×32 when n ≤ 32), specialised by WGSL override
 * constants for the four transpose combinations and for vec4 loads where the
 * layout allows them.
 *
 * When the output has few tiles but `k` is long (the weight gradient
 * `Xᵀ·dY` of a layer over many rows is 128×65536×128: one tile), the k range
 * is split across workgroups (split-K) into partial products that a second
 * pass sums down (deterministically, `Reducer.rows`).
 *
 * @module
 */

import type { Storage } from "../backend.ts";
import type { KernelContext, KernelMethods } from "./backend.ts";
import { isSoftwareAdapter } from "./device.ts";
import { operand } from "./kernel_util.ts";
import { reducer } from "./kernels_reduce.ts";

/** Rows of the output tile of one workgroup (tm in matmul.wgsl). */
const TILE_M = 128;
/** Columns of the output tile: 128, or 32 for narrow outputs (tn in matmul.wgsl). */
const TILE_N = 128, TILE_N_NARROW = 32;
/** The k slab (BK in matmul.wgsl); split-K chunks are multiples of it. */
const BK = 16;
/** Split k when the output has fewer tiles than this. */
const SPLIT_BELOW_TILES = 64;
/** Each split-K slice covers at least this many k values. */
const MIN_SPLIT_K = 256;

/**
 * Thread grid of the kernel: `t8` (16×16 threads, 8×8 outputs each) suits
 * GPUs; `t16` (8×8 threads, 16×16 outputs each) suits CPU adapters such as
 * lavapipe, where loads are per-lane scalar loops and a larger register tile
 * is what keeps the FMA units busy. `auto` picks `t16` on software adapters
 * (`isSoftwareAdapter`).
 */
export type MatmulVariant = "auto" | "t8" | "t16";

/** Options of `matmulKernel`. */
export interface MatmulOptions {
  /** Thread grid (default `auto`). */
  variant?: MatmulVariant;
}

/** Output tile columns for an output of `n` columns. */
export function tileCols(n: number): number {
  return n <= TILE_N_NARROW ? TILE_N_NARROW : TILE_N;
}

/** How a product of the given sizes is split along k: slices and k per slice. */
export function splitK(m: number, k: number, n: number): { split: number; kChunk: number } {
  const tiles = Math.ceil(m / TILE_M) * Math.ceil(n / tileCols(n));
  const want = Math.min(Math.ceil(SPLIT_BELOW_TILES / tiles), Math.floor(k / MIN_SPLIT_K));
  if (tiles >= SPLIT_BELOW_TILES || want < 2) return { split: 1, kChunk: Math.max(k, 1) };
  const kChunk = Math.ceil(Math.ceil(k / want) / BK) * BK;
  return { split: Math.ceil(k / kChunk), kChunk };
}

/** The matmul kernel method. */
export function matmulKernel(
  ctx: KernelContext,
  opts: MatmulOptions = {},
): Pick<KernelMethods, "matmul"> {
  const { rt } = ctx;
  const red = reducer(ctx);
  const maxGroups = rt.device.limits.maxComputeWorkgroupsPerDimension;
  const variant = opts.variant ?? "auto";
  const grid = variant === "t8"
    ? "t8"
    : variant === "t16" || isSoftwareAdapter(rt.gpu.info)
    ? "t16"
    : "t8";
  return {
    matmul(
      a: Storage,
      b: Storage,
      attrs: { m: number; k: number; n: number; transA: boolean; transB: boolean },
    ): Storage {
      const { m, k, n, transA, transB } = attrs;
      const A = operand("matmul", a, m * k, "a");
      const B = operand("matmul", b, k * n, "b");
      const out = ctx.out(m * n);
      if (m === 0 || n === 0) return out;
      const tn = tileCols(n);
      // Narrow outputs use the 2×2-block grid on every adapter (measured
      // faster than 4×4 blocks for 128×32 tiles on lavapipe as well).
      const entry = tn === TILE_N ? `matmul_${grid}` : "matmul_t8_n32";
      const pipeline = rt.pipeline("matmul.wgsl", entry, {
        TRANS_A: transA ? 1 : 0,
        TRANS_B: transB ? 1 : 0,
        VEC_A: (transA ? m : k) % 4 === 0 ? 1 : 0,
        VEC_B: (transB ? k : n) % 4 === 0 ? 1 : 0,
      });
      const gx = Math.ceil(n / tn), rowTiles = Math.ceil(m / TILE_M);
      const { split, kChunk } = splitK(m, k, n);
      if (split === 1) {
        // Row tiles beyond the per-dimension limit fold into z.
        const gy = Math.min(rowTiles, maxGroups), gz = Math.ceil(rowTiles / gy);
        rt.dispatch(pipeline, [A.buffer, B.buffer, out.buffer], {
          u: [m, k, n, kChunk, 1],
        }, [gx, gy, gz]);
        return out;
      }
      const partial = ctx.out(split * m * n);
      rt.dispatch(pipeline, [A.buffer, B.buffer, partial.buffer], {
        u: [m, k, n, kChunk, split],
      }, [gx, rowTiles, split]);
      red.rows(partial.buffer, split, m * n, out);
      ctx.backend.release(partial);
      return out;
    },
  };
}
