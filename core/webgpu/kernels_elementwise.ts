/**
 * Element-wise kernels (shaders/elementwise.wgsl): binary ops with
 * broadcasting, unary functions and their gradients, inverted dropout, via
 * `dispatch1d`, so any element count works; the op and broadcast modes are
 * WGSL override constants (one pipeline each). Each kernel runs four
 * elements per thread with vec4 loads and stores (twice as fast on lavapipe,
 * and the natural width on GPUs) whenever every buffer involved holds whole
 * vec4s, and one element per thread otherwise.
 *
 * @module
 */

import type { BinaryOp, Broadcast, Storage, UnaryOp } from "../backend.ts";
import { operandSize } from "../broadcast.ts";
import type { KernelContext, KernelMethods } from "./backend.ts";
import { fail, operand, wholeVec4 } from "./kernel_util.ts";

const BINARY_OP: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3 };

const UNARY_OP: Record<UnaryOp, number> = {
  relu: 0,
  leaky_relu: 1,
  gelu: 2,
  sigmoid: 3,
  tanh: 4,
  exp: 5,
  log: 6,
  neg: 7,
  abs: 8,
  sqrt: 9,
  affine: 10,
};

const MODE: Record<Broadcast, number> = { full: 0, row: 1, col: 2, scalar: 3 };

/**
 * `dropout`'s integer keep threshold: element `i` is kept iff
 * `hash(seed, i) >= threshold`, the exact form of `hash / 2^32 >= p`
 * (`p · 2^32` is exact in float64). `null` when nothing is kept.
 */
export function dropoutThreshold(p: number): number | null {
  const t = Math.ceil(p * 4294967296);
  return t > 0xffffffff ? null : Math.max(0, t);
}

/** The element-wise kernel methods. */
export function elementwiseKernels(
  ctx: KernelContext,
): Pick<KernelMethods, "binary" | "unary" | "unaryGrad" | "dropout"> {
  const { rt } = ctx;
  return {
    binary(
      op: BinaryOp,
      a: Storage,
      b: Storage,
      attrs: { rows: number; cols: number; aMode: Broadcast; bMode: Broadcast },
    ): Storage {
      const { rows, cols, aMode, bMode } = attrs;
      const A = operand(op, a, operandSize(aMode, rows, cols), `a (${aMode})`);
      const B = operand(op, b, operandSize(bMode, rows, cols), `b (${bMode})`);
      const n = rows * cols;
      const out = ctx.out(n);
      const bufs = [A.buffer, B.buffer, out.buffer];
      // Four consecutive elements share a row when cols % 4 == 0; full and
      // scalar operands do not care.
      const rowsAligned = cols % 4 === 0 ||
        ((aMode === "full" || aMode === "scalar") && (bMode === "full" || bMode === "scalar"));
      const vec = rowsAligned && wholeVec4(bufs);
      const p = rt.pipeline("elementwise.wgsl", vec ? "binary4" : "binary", {
        OP: BINARY_OP[op],
        A_MODE: MODE[aMode],
        B_MODE: MODE[bMode],
      });
      rt.dispatch1d(p, bufs, { u: [n, cols] }, vec ? Math.ceil(n / 4) : n);
      return out;
    },

    unary(op: UnaryOp, x: Storage, attrs: { n: number; alpha: number; beta: number }): Storage {
      const { n, alpha, beta } = attrs;
      const X = operand(op, x, n, "x");
      const out = ctx.out(n);
      const bufs = [X.buffer, out.buffer];
      const vec = wholeVec4(bufs);
      const p = rt.pipeline("elementwise.wgsl", vec ? "unary4" : "unary", { OP: UNARY_OP[op] });
      rt.dispatch1d(p, bufs, { u: [n], f: [alpha, beta] }, vec ? Math.ceil(n / 4) : n);
      return out;
    },

    unaryGrad(
      op: UnaryOp,
      x: Storage,
      y: Storage,
      dy: Storage,
      attrs: { n: number; alpha: number; beta: number },
    ): Storage {
      const { n, alpha, beta } = attrs;
      const kernel = `${op} gradient`;
      const X = operand(kernel, x, n, "x");
      const Y = operand(kernel, y, n, "y");
      const DY = operand(kernel, dy, n, "dy");
      const out = ctx.out(n);
      const bufs = [X.buffer, Y.buffer, DY.buffer, out.buffer];
      const vec = wholeVec4(bufs);
      const p = rt.pipeline("elementwise.wgsl", vec ? "unary_grad4" : "unary_grad", {
        OP: UNARY_OP[op],
      });
      rt.dispatch1d(p, bufs, { u: [n], f: [alpha, beta] }, vec ? Math.ceil(n / 4) : n);
      return out;
    },

    dropout(x: Storage, attrs: { n: number; p: number; seed: number }): Storage {
      const { n, p, seed } = attrs;
      if (!(p >= 0 && p < 1)) {
        fail("dropout", `p must be in [0, 1), got ${p}`);
      }
      const X = operand("dropout", x, n, "x");
      const out = ctx.out(n);
      const threshold = dropoutThreshold(p);
      const bufs = [X.buffer, out.buffer];
      const vec = wholeVec4(bufs);
      const pipeline = rt.pipeline("elementwise.wgsl", vec ? "dropout4" : "dropout");
      rt.dispatch1d(pipeline, bufs, {
        u: [n, seed >>> 0, threshold ?? 0xffffffff],
        f: [threshold === null ? 0 : 1 / (1 - p)],
      }, vec ? Math.ceil(n / 4) : n);
      return out;
    },
  };
}
