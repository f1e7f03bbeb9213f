/**
 * Gradients through the tensor API (`tensor(…, {requiresGrad: true})`, the
 * ops of core/ops.ts, `.backward()`) on the WebGPU backend against the same
 * graph on the CPU float64 reference, on shapes and values drawn by
 * fast-check. The tolerance model is described in dense_util.ts.
 *
 * @module
 */

import fc from "fast-check";
import type { Backend, BinaryOp, UnaryOp } from "../core/backend.ts";
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
        // Chains of a few element-wise factors, each bounded by ~4 for these
        // inputs (|a| ≤ 2, b ∈ [0.5, 2), exp(≤ 4) ≈ 55 for exp): the
        // gradient of an operand broadcast over `c` elements sums c terms.
        const bound = fn === "exp" ? 64 * 55 : 64;
        const count = operandSize("full", rows, cols) / operandSize(bMode, rows, cols);
        check(r.gpu[0], r.cpu[0], () => bound, `d ${fn}(${op}) / da`);
        check(r.gpu[1], r.cpu[1], () => Math.sqrt(count) * bound, `d ${fn}(${op}) / db (${bMode})`);
      },
    ),
    { numRuns: RUNS },
  );
});

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
