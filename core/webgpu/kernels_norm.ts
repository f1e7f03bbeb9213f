/**
 * Layer norm kernels (WGSL in shaders/norm.wgsl): a workgroup reduction per
 * row for the forward pass and for `dx`, and block-wise column sums for
 * `dgamma` / `dbeta`.
 *
 * @module
 */

import type { Storage } from "../backend.ts";
import type { KernelContext, KernelMethods } from "./backend.ts";
import type { GpuStorage } from "./storage.ts";
import { isSoftwareAdapter } from "./device.ts";
import { checkCount, operand, vecWidth } from "./kernel_util.ts";

/** Rows summed per thread at each level of the dgamma / dbeta column sums. */
const BLOCK_ROWS = 64;
/** Workgroup size of the column-sum kernels. */
const SUM_WG = 64;

/**
 * Threads per row (a power of two) and the workgroup size for rows of
 * `units` column units; narrow rows share a workgroup (at least 64 threads).
 *
 * On a GPU: about four units per thread, at most 256 threads per row. On a
 * software adapter (lavapipe / llvmpipe: `software` true), each workgroup barrier
 * costs far more than a longer per-thread loop (65536×128 forward: 29 ms at
 * 1–4 threads per row, 53 ms at 8, 190 ms at 32), so rows get at most 4
 * threads, one per 16 units.
 */
export function rowLayout(units: number, software: boolean): { tpr: number; wg: number } {
  const perThread = software ? 16 : 4, maxTpr = software ? 4 : 256;
  let tpr = 1;
  while (tpr < maxTpr && tpr * perThread < units) tpr *= 2;
  return { tpr, wg: Math.max(64, tpr) };
}

let forcedLayout: "gpu" | "software" | null = null;

/**
 * Forces the row layout of the layer norm kernels (`null`: pick by adapter),
 * so that tests on a software adapter also run the wide GPU layout.
 */
export function forceRowLayout(kind: "gpu" | "software" | null): void {
  forcedLayout = kind;
}

/** The layer norm kernel methods. */
export function normKernels(
  ctx: KernelContext,
): Pick<KernelMethods, "layerNorm" | "layerNormGrad"> {
  const { rt } = ctx;
  const software = isSoftwareAdapter(rt.gpu.info);

  /** Dispatches a row kernel of norm.wgsl over `rows` rows of `cols` columns. */
  const rowDispatch = (
    entry: string,
    buffers: GPUBuffer[],
    rows: number,
    cols: number,
    eps: number,
  ): void => {
    const v = vecWidth(cols);
    const { tpr, wg } = rowLayout(
      cols / v,
      forcedLayout === null ? software : forcedLayout === "software",
    );
    const p = rt.pipeline("norm.wgsl", `${entry}${v}`, { WG: wg, TPR: tpr });
    const groups = Math.ceil(rows / (wg / tpr));
    rt.dispatch1d(p, buffers, { u: [rows, cols / v, cols], f: [eps] }, groups * wg, wg);
  };

  /**
   * Records column sums of a `rows × cols` storage, `BLOCK_ROWS` rows per
   * thread and level, until one row is left; returns that `1 × cols` storage
   * (`src` itself when it has one row; the caller releases what it gets).
   */
  const columnSums = (src: GpuStorage, rows: number, cols: number): GpuStorage => {
    let cur = src;
    while (rows > 1) {
      const blocks = Math.ceil(rows / BLOCK_ROWS);
      const next = ctx.out(blocks * cols);
      const v = vecWidth(cols);
      const p = rt.pipeline("norm.wgsl", `col_sum${v}`, { WG: SUM_WG });
      rt.dispatch1d(
        p,
        [cur.buffer, next.buffer],
        { u: [rows, cols / v, BLOCK_ROWS, blocks] },
        (blocks * cols) / v,
        SUM_WG,
      );
      if (cur !== src) ctx.backend.release(cur);
      cur = next;
      rows = blocks;
    }
    return cur;
  };

  return {
    layerNorm(
      x: Storage,
      gamma: Storage,
      beta: Storage,
      attrs: { rows: number; cols: number; eps: number },
    ): { y: Storage; mean: Storage; rstd: Storage } {
      const { rows, cols, eps } = attrs;
      checkCount("layerNorm", "rows", rows);
      checkCount("layerNorm", "cols", cols);
      const X = operand("layerNorm", x, rows * cols, "x");
      const G = operand("layerNorm", gamma, cols, "gamma");
      const B = operand("layerNorm", beta, cols, "beta");
      const y = ctx.out(rows * cols), mean = ctx.out(rows), rstd = ctx.out(rows);
      if (rows > 0) {
        rowDispatch(
          "layer_norm",
          [X.buffer, G.buffer, B.buffer, y.buffer, mean.buffer, rstd.buffer],
          rows,
          cols,
          eps,
        );
      }
      return { y, mean, rstd };
    },

    layerNormGrad(
      x: Storage,
      gamma: Storage,
      mean: Storage,
      rstd: Storage,
      dy: Storage,
      attrs: { rows: number; cols: number },
    ): { dx: Storage; dgamma: Storage; dbeta: Storage } {
      const { rows, cols } = attrs;
      checkCount("layerNormGrad", "rows", rows);
      checkCount("layerNormGrad", "cols", cols);
      const X = operand("layerNormGrad", x, rows * cols, "x");
      const G = operand("layerNormGrad", gamma, cols, "gamma");
      const M = operand("layerNormGrad", mean, rows, "mean");
      const R = operand("layerNormGrad", rstd, rows, "rstd");
      const DY = operand("layerNormGrad", dy, rows * cols, "dy");
      const dx = ctx.out(rows * cols);
      if (rows === 0 || cols === 0) {
        return {
          dx,
          dgamma: ctx.backend.full(cols, 0, "f32"),
          dbeta: ctx.backend.full(cols, 0, "f32"),
        };
      }
      rowDispatch(
        "layer_norm_dx",
        [X.buffer, G.buffer, M.buffer, R.buffer, DY.buffer, dx.buffer],
        rows,
        cols,
        0,
      );

      // Per block of rows: Σ dy·xhat (first `cols` columns) and Σ dy (next `cols`).
      const blocks = Math.ceil(rows / BLOCK_ROWS);
      const partial = ctx.out(blocks * 2 * cols);
      const v = vecWidth(cols);
      const p = rt.pipeline("norm.wgsl", `ln_param_partial${v}`, { WG: SUM_WG });
      rt.dispatch1d(
        p,
        [X.buffer, M.buffer, R.buffer, DY.buffer, partial.buffer],
        { u: [rows, cols / v, BLOCK_ROWS, blocks] },
        (blocks * cols) / v,
        SUM_WG,
      );
      const sums = columnSums(partial, blocks, 2 * cols);
      if (sums !== partial) ctx.backend.release(partial);
      const dgamma = ctx.out(cols), dbeta = ctx.out(cols);
      rt.copy(sums.buffer, 0, dgamma.buffer, 0, cols * 4);
      rt.copy(sums.buffer, cols * 4, dbeta.buffer, 0, cols * 4);
      ctx.backend.release(sums);
      return { dx, dgamma, dbeta };
    },
  };
}
