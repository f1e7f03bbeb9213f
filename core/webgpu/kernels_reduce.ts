/**
 * Reductions (shaders/reduce.wgsl) and losses (shaders/loss.wgsl).
 *
 * Sums are deterministic trees and chains of partial sums, never atomics:
 * `all` is one pass of per-workgroup partials plus one single-workgroup pass,
 * `rows` (per-column sums) is a chain of passes each summing chunks of rows
 * into partial rows, and `cols` (per-row sums) has a power-of-two group of
 * threads share each row and reduce it in workgroup memory. `sumSquares`
 * runs one `all`-style first pass per storage into slots of one partials
 * buffer and one reduction of them.
 *
 * @module
 */

import type { LossKind, ReduceAxis, Storage } from "../backend.ts";
import type { KernelContext, KernelMethods } from "./backend.ts";
import type { GpuStorage } from "./storage.ts";
import { checkCount, fail, nextPow2, operand } from "./kernel_util.ts";

/** Threads per workgroup of every reduction kernel (WG in the shaders). */
const WG = 256;
/** At most this many partial sums (workgroups) in the first pass of `all`. */
const MAX_PARTIALS = 1024;
/** Elements each thread of `all`'s first pass sums at least. */
const PER_THREAD = 8;
/** Rows a single `sum_rows` pass reduces at once; taller inputs go through partial rows. */
const ROWS_ONE_PASS = 256;
/** Threads the first passes of `sum_rows` aim for (for parallelism over few columns). */
const ROWS_THREADS = 16384;

/** Reduction building blocks, also used by matmul (split-K) and the losses. */
export interface Reducer {
  /**
   * `dst[0] = scale · Σ src[0..n)`: one workgroup-partial pass, then one
   * single-workgroup pass when there is more than one partial. `first`
   * replaces the first pass (the losses compute their terms in it); it must
   * write `groups` partials into `into`, each already scaled, taking at
   * least `perThread` of the `n` items per thread.
   */
  all(
    src: GPUBuffer,
    n: number,
    dst: GpuStorage,
    scale?: number,
    first?: (into: GPUBuffer, groups: number) => void,
    perThread?: number,
  ): void;
  /** `dst[c] = Σ_r src[r·cols + c]` (per-column sums of a rows × cols buffer). */
  rows(src: GPUBuffer, rows: number, cols: number, dst: GpuStorage): void;
  /** `dst[r] = Σ_c src[r·cols + c]` (per-row sums). */
  cols(src: GPUBuffer, rows: number, cols: number, dst: GpuStorage): void;
}

/** Builds the reduction helpers on a kernel context. */
export function reducer(ctx: KernelContext): Reducer {
  const { rt } = ctx;
  const zero = (dst: GpuStorage, size: number) => {
    rt.upload(dst.buffer, new Float32Array(size));
  };
  return {
    all(src, n, dst, scale = 1, first, perThread = PER_THREAD) {
      const p = rt.pipeline("reduce.wgsl", "sum_all");
      const groups = Math.max(1, Math.min(MAX_PARTIALS, Math.ceil(n / (WG * perThread))));
      if (!first) {
        first = (into, g) => rt.dispatch(p, [src, into], { u: [n], f: [scale] }, [g]);
      }
      if (groups === 1) {
        first(dst.buffer, 1);
        return;
      }
      const partials = ctx.out(groups);
      first(partials.buffer, groups);
      rt.dispatch(p, [partials.buffer, dst.buffer], { u: [groups], f: [1] }, [1]);
      ctx.backend.release(partials);
    },
    rows(src, rows, cols, dst) {
      if (cols === 0) return;
      if (rows === 0) return zero(dst, cols);
      const p = rt.pipeline("reduce.wgsl", "sum_rows");
      let cur = src, curRows = rows;
      let temp: GpuStorage | null = null;
      for (;;) {
        const target = curRows <= ROWS_ONE_PASS
          ? 1
          : Math.min(Math.ceil(curRows / 16), Math.max(2, Math.ceil(ROWS_THREADS / cols)));
        const chunk = Math.ceil(curRows / target);
        const outRows = Math.ceil(curRows / chunk);
        const into = outRows === 1 ? dst : ctx.out(outRows * cols);
        const total = outRows * cols;
        rt.dispatch1d(p, [cur, into.buffer], { u: [curRows, cols, chunk, total] }, total);
        // Recorded work keeps its buffers: releasing right away is safe.
        if (temp) ctx.backend.release(temp);
        if (outRows === 1) return;
        temp = into;
        cur = into.buffer;
        curRows = outRows;
      }
    },
    cols(src, rows, cols, dst) {
      if (rows === 0) return;
      if (cols === 0) return zero(dst, rows);
      const p = rt.pipeline("reduce.wgsl", "sum_cols");
      const tpr = Math.min(WG, nextPow2(Math.ceil(cols / 4)));
      const groups = Math.ceil(rows / (WG / tpr));
      rt.dispatch1d(p, [src, dst.buffer], { u: [rows, cols, tpr] }, groups * WG);
    },
  };
}

const LOSS_KIND: Record<Exclude<LossKind, "cross_entropy">, number> = {
  bce_logits: 0,
  mse: 1,
  l1: 2,
};

/** The reduction and loss kernel methods. */
export function reduceKernels(
  ctx: KernelContext,
): Pick<KernelMethods, "reduceSum" | "sumSquares" | "loss" | "lossGrad"> {
  const { rt } = ctx;
  const red = reducer(ctx);
  return {
    reduceSum(x: Storage, attrs: { rows: number; cols: number; axis: ReduceAxis }): Storage {
      const { rows, cols, axis } = attrs;
      const X = operand("reduceSum", x, rows * cols, "x");
      const out = ctx.out(axis === "all" ? 1 : axis === "rows" ? cols : rows);
      if (axis === "all") red.all(X.buffer, rows * cols, out);
      else if (axis === "rows") red.rows(X.buffer, rows, cols, out);
      else red.cols(X.buffer, rows, cols, out);
      return out;
    },

    sumSquares(xs: readonly Storage[], attrs: { sizes: readonly number[] }): Storage {
      const { sizes } = attrs;
      if (xs.length !== sizes.length) {
        fail("sumSquares", `${xs.length} storages but ${sizes.length} sizes`);
      }
      const X = xs.map((x, i) => {
        checkCount("sumSquares", `sizes[${i}]`, sizes[i]);
        return operand("sumSquares", x, sizes[i], `xs[${i}]`);
      });
      // One sum_sq pass per storage, as many workgroup partials as `all`'s
      // first pass would use, each into its own slots of one buffer; then
      // one reduction of all the partials (written straight to `out` when
      // there is a single one).
      const groups = sizes.map((n) => Math.min(MAX_PARTIALS, Math.ceil(n / (WG * PER_THREAD))));
      const total = groups.reduce((a, b) => a + b, 0);
      const out = ctx.out(1);
      if (total === 0) {
        rt.upload(out.buffer, new Float32Array(1));
        return out;
      }
      const partials = total === 1 ? out : ctx.out(total);
      const p = rt.pipeline("reduce.wgsl", "sum_sq");
      let offset = 0;
      X.forEach((x, i) => {
        if (groups[i] === 0) return;
        rt.dispatch(p, [x.buffer, partials.buffer], { u: [sizes[i], offset] }, [groups[i]]);
        offset += groups[i];
      });
      if (partials !== out) {
        red.all(partials.buffer, total, out);
        ctx.backend.release(partials);
      }
      return out;
    },

    loss(
      kind: LossKind,
      pred: Storage,
      target: Storage,
      attrs: { rows: number; cols: number },
    ): Storage {
      const { rows, cols } = attrs;
      const P = operand(kind, pred, rows * cols, "pred");
      const out = ctx.out(1);
      if (kind === "cross_entropy") {
        const T = operand(kind, target, rows, "target", ["i32"]);
        const p = rt.pipeline("loss.wgsl", "ce_partial");
        // One row (cols terms) per thread and step.
        red.all(P.buffer, rows, out, 1, (into, g) => {
          rt.dispatch(p, [P.buffer, T.buffer, into], { u: [rows, cols], f: [1 / rows] }, [g]);
        }, 1);
        return out;
      }
      const n = rows * cols;
      const T = operand(kind, target, n, "target");
      const p = rt.pipeline("loss.wgsl", "loss_partial", { KIND: LOSS_KIND[kind] });
      red.all(P.buffer, n, out, 1, (into, g) => {
        rt.dispatch(p, [P.buffer, T.buffer, into], { u: [n, cols], f: [1 / n] }, [g]);
      });
      return out;
    },

    lossGrad(
      kind: LossKind,
      pred: Storage,
      target: Storage,
      dy: Storage,
      attrs: { rows: number; cols: number },
    ): Storage {
      const { rows, cols } = attrs;
      const n = rows * cols;
      const P = operand(`${kind} gradient`, pred, n, "pred");
      const DY = operand(`${kind} gradient`, dy, 1, "dy");
      const out = ctx.out(n);
      if (kind === "cross_entropy") {
        const T = operand(`${kind} gradient`, target, rows, "target", ["i32"]);
        const p = rt.pipeline("loss.wgsl", "ce_grad");
        rt.dispatch1d(p, [P.buffer, T.buffer, DY.buffer, out.buffer], {
          u: [rows, cols],
          f: [1 / rows],
        }, rows);
        return out;
      }
      const T = operand(`${kind} gradient`, target, n, "target");
      const p = rt.pipeline("loss.wgsl", "loss_grad", { KIND: LOSS_KIND[kind] });
      rt.dispatch1d(p, [P.buffer, T.buffer, DY.buffer, out.buffer], {
        u: [n, cols],
        f: [1 / n],
      }, n);
      return out;
    },
  };
}
