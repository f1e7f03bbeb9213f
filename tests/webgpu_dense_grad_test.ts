/**
 * Gradients through the tensor API (`tensor(…, {requiresGrad: true})`, the
 * ops of core/ops.ts, `.backward()`) on the WebGPU backend against the same
 * graph on the CPU float64 reference, on shapes and values drawn by
 * fast-check. The tolerance model is described in dense_util.ts.
 *
 * @module
 */

import fc from "fast-check";
import type { Backend, BinaryOp, Broadcast, UnaryOp } from "../core/backend.ts";
import { unaryDerivative, unaryValue } from "../core/cpu/dense.ts";
import * as ops from "../core/ops.ts";
import { Rng } from "../core/random.ts";
import { tensor } from "../core/tensor.ts";
import {
  check,
  cpu,
  dimArb,
  f32Values,
  gpuBackend,
  gpuTest,
  gradsBoth,
  LOSSES,
  maxAbs,
  modeArb,
  operandSize,
  RUNS,
  seedArb,
} from "./dense_util.ts";

gpuTest("matmul gradients match the CPU for every transpose combination", async () => {
  await fc.assert(
    fc.asyncProperty(
      dimArb,
      fc.integer({ min: 1, max: 150 }),
      dimArb,
      fc.boolean(),
      fc.boolean(),
      seedArb,
      async (m, k, n, transA, transB, seed) => {
        const rng = new Rng(seed);
        const a = f32Values(rng, m * k), b = f32Values(rng, k * n);
        const r = await gradsBoth(
          ([x, y]) => ops.matmul(x, y, { transA, transB }),
          [
            { data: a, shape: transA ? [k, m] : [m, k] },
            { data: b, shape: transB ? [n, k] : [k, n] },
          ],
          seed,
        );
        // dA = w·op(B)ᵀ sums n terms bounded by max|b| (|w| < 1); dB sums m.
        check(r.gpu[0], r.cpu[0], () => Math.sqrt(n) * maxAbs(b), "d matmul / da");
        check(r.gpu[1], r.cpu[1], () => Math.sqrt(m) * maxAbs(a), "d matmul / db");
      },
    ),
    { numRuns: RUNS },
  );
});

gpuTest("gradients of broadcast binary ops, sums and unary functions match the CPU", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<BinaryOp>("add", "sub", "mul", "div"),
      modeArb,
      fc.constantFrom<UnaryOp>("gelu", "tanh", "sigmoid", "relu", "exp", "leaky_relu"),
      fc.integer({ min: 1, max: 60 }),
      fc.integer({ min: 1, max: 60 }),
      fc.constantFrom<0 | 1 | undefined>(0, 1, undefined),
      seedArb,
      async (op, bMode, fn, rows, cols, axis, seed) => {
        const rng = new Rng(seed);
        const a = f32Values(rng, rows * cols);
        const bShape = bMode === "full"
          ? [rows, cols]
          : bMode === "row"
          ? [1, cols]
          : bMode === "col"
          ? [rows, 1]
          : [1, 1];
        const b = f32Values(rng, operandSize(bMode, rows, cols), 0.5, 2);
        const r = await gradsBoth(
          ([x, y]) => {
            const z = ops.unary(fn, ops.binary(op, x, y), 0.1);
            return axis === undefined ? ops.sum(z) : ops.sum(z, axis);
          },
          [{ data: a, shape: [rows, cols] }, { data: b, shape: bShape }],
          seed,
        );
        const count = operandSize("full", rows, cols) / operandSize(bMode, rows, cols);
        const { sa, sb } = unaryChainScales(op, bMode, fn, rows, cols, axis, a, b, r.w, count);
        check(r.gpu[0], r.cpu[0], (i) => sa[i], `d ${fn}(${op}) / da`);
        check(r.gpu[1], r.cpu[1], (i) => sb[i], `d ${fn}(${op}) / db (${bMode})`);
      },
    ),
    { numRuns: RUNS },
  );
});

/**
 * Per-element scales `S` (dense_util.ts) for the gradients of
 * `L = Σ w ⊙ sum(f(a op b), axis)`. Element `i` of the full grid has
 * `z_i = a_i op b_i`, upstream gradient `w_e` (the weight of the output
 * element `i` is summed into: exact, the sum's rule only broadcasts), and
 *
 *   da_i = w_e · f'(z_i) · ∂z/∂a_i,   db_k = Σ_{i → k} w_e · f'(z_i) · ∂z/∂b_i.
 *
 * Every factor is computed with a relative error of a few ulps (+ − × ÷ are
 * correctly rounded; exp and our tanh/sigmoid are accurate to a few ulps;
 * z's own rounding moves f'(z) by |f''(z)·z|·2⁻²⁴ ≤ 16·2⁻²⁴·|f'(z)| for
 * |z| ≤ 4), which the `|ref|` part of the bound covers, except where f'
 * itself is a difference of terms that cancel. `cancel(z)` is the magnitude
 * of those terms (the absolute error of f' is ~2⁻²⁴ of it):
 *
 * - relu, leaky_relu, exp: none (f' is 0, 1, α or y = exp(z)): 0.
 * - sigmoid' = y(1 − y) and tanh' = 1 − y²: `1 − y` and `1 − y²` lose the
 *   absolute error of y (or y²), ~2⁻²⁴·y (or y²), so `cancel = y²`.
 * - gelu' = ½(1 + t) + ½z(1 − t²)·c(1 + 3kz²), t = tanh(c(z + kz³)): the
 *   sums 1 + t, 1 − t² and the outer sum can each cancel (gelu' = 0 near
 *   z ≈ −0.75), so `cancel = ½(1 + |t|) + ½|z|(1 + t²)·c(1 + 3kz²)`.
 *
 * So `S(da_i) = |w_e|·cancel(z_i)·|∂z/∂a_i|`. `db_k` sums `count` terms
 * (one when b is full): by the accumulation rule its scale is
 * `√count · max_{i → k} |w_e|·|∂z/∂b_i|·(cancel(z_i) + |f'(z_i)|)`, where
 * the term size `|f'|` is included only when count > 1 (a lone term's
 * relative error is covered by `|ref|`).
 */
function unaryChainScales(
  op: BinaryOp,
  bMode: Broadcast,
  fn: UnaryOp,
  rows: number,
  cols: number,
  axis: 0 | 1 | undefined,
  a: Float32Array,
  b: Float32Array,
  w: Float32Array,
  count: number,
): { sa: Float64Array; sb: Float64Array } {
  const C = Math.sqrt(2 / Math.PI), K = 0.044715;
  const sa = new Float64Array(rows * cols);
  const termMax = new Float64Array(b.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const k = bMode === "full" ? i : bMode === "row" ? c : bMode === "col" ? r : 0;
      const x = a[i], y = b[k];
      const z = op === "add" ? x + y : op === "sub" ? x - y : op === "mul" ? x * y : x / y;
      const dzda = op === "mul" ? y : op === "div" ? 1 / y : 1;
      const dzdb = op === "mul" ? x : op === "div" ? x / (y * y) : 1;
      const we = Math.abs(w[axis === undefined ? 0 : axis === 0 ? c : r]);
      const v = unaryValue(fn, z, 0.1, 0);
      const d = Math.abs(unaryDerivative(fn, z, v, 0.1));
      let cancel = 0;
      if (fn === "sigmoid" || fn === "tanh") cancel = v * v;
      else if (fn === "gelu") {
        const t = Math.tanh(C * (z + K * z * z * z));
        cancel = 0.5 * (1 + Math.abs(t)) +
          0.5 * Math.abs(z) * (1 + t * t) * C * (1 + 3 * K * z * z);
      }
      sa[i] = we * cancel * Math.abs(dzda);
      const term = we * Math.abs(dzdb) * (cancel + (count > 1 ? d : 0));
      termMax[k] = Math.max(termMax[k], term);
    }
  }
  return { sa, sb: termMax.map((m) => Math.sqrt(count) * m) };
}

gpuTest("gradients of losses and dropout match the CPU", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...LOSSES),
      fc.integer({ min: 1, max: 100 }),
      fc.integer({ min: 1, max: 20 }),
      fc.double({ min: 0, max: 0.9, noNaN: true }),
      seedArb,
      async (kind, rows, cols, p, seed) => {
        const rng = new Rng(seed);
        const x = f32Values(rng, rows * cols, -3, 3);
        const ce = kind === "cross_entropy";
        const t = ce
          ? Int32Array.from({ length: rows }, () => rng.int(cols))
          : Float32Array.from({ length: rows * cols }, () => rng.int(2));
        const dseed = rng.nextU32();
        const run = async (backend: Backend) => {
          const xt = tensor(x, [rows, cols], { backend, requiresGrad: true });
          const tt = tensor(t, ce ? [rows] : [rows, cols], { backend, dtype: ce ? "i32" : "f32" });
          const d = ops.dropout(xt, p, { seed: dseed });
          const l = kind === "bce_logits"
            ? ops.bceWithLogits(d, tt)
            : kind === "mse"
            ? ops.mseLoss(d, tt)
            : kind === "l1"
            ? ops.l1Loss(d, tt)
            : ops.crossEntropy(d, tt);
          // Scale the loss so that its upstream gradient dy is not 1.
          const s = ops.scale(l, 1.75);
          s.backward();
          const g = Float64Array.from(await xt.grad!.data());
          for (const u of [xt.grad!, xt, tt, d, l, s]) u.dispose();
          return g;
        };
        const gc = await run(cpu), gg = await run(gpuBackend!);
        // Each element: a dropout scale times one loss-gradient term over the
        // count (see the loss test); the parts are ≤ 1 + |x|·(1/(1−p)) + 1.
        const count = ce ? rows : rows * cols;
        const s = 1.75 * 2 * (2 + 3 / (1 - p)) / (1 - p) / count;
        check(gg, gc, () => s, `d ${kind}(dropout) / dx`);
      },
    ),
    { numRuns: RUNS },
  );
});
