/**
 * Test helpers built on the CPU reference backend: synchronous readback,
 * closeness assertions and a central finite-difference gradient checker.
 *
 * @module
 */

import { noGrad } from "../autograd.ts";
import { mul, sum } from "../ops.ts";
import { Rng } from "../random.ts";
import { scope, type Tensor, tensor } from "../tensor.ts";
import { cpuBackend } from "./backend.ts";
import { CpuStorage } from "./storage.ts";

/** A copy of a CPU tensor's (or storage's) values, read synchronously. */
export function values(t: Tensor | CpuStorage): Float64Array | Int32Array {
  const s = t instanceof CpuStorage ? t : t.storage;
  if (!(s instanceof CpuStorage)) throw new Error("values(): not a cpu storage");
  return s.data.slice();
}

/**
 * Asserts `actual` equals `expected` element-wise within `tol` absolute
 * (default 1e-12: exact up to float64 rounding of hand-written constants).
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol = 1e-12,
  what = "value",
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  }
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const ok = Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)) || Math.abs(a - e) <= tol;
    if (!ok) {
      throw new Error(
        `${what}[${i}] = ${a}, expected ${e} (|diff| ${Math.abs(a - e)} > ${tol})\n` +
          `actual:   [${Array.from(actual)}]\nexpected: [${Array.from(expected)}]`,
      );
    }
  }
}

/** One input of `gradCheck`: values, shape, and whether its gradient is checked (default true). */
export interface GradInput {
  /** Row-major values. */
  data: ArrayLike<number>;
  /** Tensor shape. */
  shape: readonly number[];
  /** Whether the input requires (and gets checked for) a gradient; default true. */
  grad?: boolean;
}

/** Options of `gradCheck`. */
export interface GradCheckOptions {
  /** Seed of the random output weights. */
  seed?: number;
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Relative tolerance (default 1e-7). */
  rtol?: number;
}

/** The worst error seen by `gradCheck` calls, relative to its allowance (for tuning reports). */
export const gradCheckStats = { worstRatio: 0, checks: 0, worst: "" };

/**
 * Checks the autograd gradients of `f` against central finite differences on
 * the CPU float64 backend. The scalar objective is `L = Σ w ⊙ f(xs)` with
 * random weights `w ∈ [-1, 1]`, so that every output element contributes.
 *
 * Each partial derivative must satisfy `|analytic − numeric| ≤ rtol·max(|a|,|n|) + atol`
 * with `atol = 1e-9·max(1, S)` and `S = Σ|w ⊙ f(xs)|`: the central difference's
 * truncation error is `eps²/6·|L'''|` (≈ 2e-13·|L'''| at eps = 1e-6, covered by
 * `rtol`), and its rounding error is about `k·u·S/eps` for float64 unit
 * roundoff `u ≈ 1.1e-16` and `k` rounding steps along the computation
 * (`atol` allows k ≈ 9).
 */
export function gradCheck(
  f: (xs: Tensor[]) => Tensor,
  inputs: readonly GradInput[],
  opts: GradCheckOptions = {},
): void {
  const backend = cpuBackend();
  const eps = opts.eps ?? 1e-6, rtol = opts.rtol ?? 1e-7;
  const rng = new Rng(opts.seed ?? 1234);
  let w: Float64Array | null = null;
  let magnitude = 0;

  // Analytic gradients through autograd.
  const analytic = scope(() => {
    const xs = inputs.map((x) =>
      tensor(x.data, x.shape, { backend, requiresGrad: x.grad ?? true })
    );
    const out = f(xs);
    w = new Float64Array(out.size);
    for (let i = 0; i < w.length; i++) w[i] = 2 * rng.next() - 1;
    const ov = values(out);
    for (let i = 0; i < w.length; i++) magnitude += Math.abs(w[i] * ov[i]);
    const loss = sum(mul(out, tensor(w, out.shape, { backend })));
    loss.backward();
    return xs.map((x, i) => {
      if (!(inputs[i].grad ?? true)) return null;
      if (!x.grad) throw new Error(`gradCheck: input ${i} got no gradient`);
      if (x.grad.shape.join() !== x.shape.join()) {
        throw new Error(`gradCheck: input ${i} has shape [${x.shape}], grad [${x.grad.shape}]`);
      }
      return values(x.grad);
    });
  });

  const objective = (datas: ArrayLike<number>[]): number =>
    noGrad(() =>
      scope(() => {
        const xs = datas.map((d, i) => tensor(d, inputs[i].shape, { backend }));
        const out = f(xs);
        const loss = sum(mul(out, tensor(w!, out.shape, { backend })));
        return values(loss)[0];
      })
    );

  const atol = 1e-9 * Math.max(1, magnitude);
  const datas = inputs.map((x) => Float64Array.from(x.data));
  inputs.forEach((_, k) => {
    const a = analytic[k];
    if (!a) return;
    for (let j = 0; j < datas[k].length; j++) {
      const x0 = datas[k][j];
      datas[k][j] = x0 + eps;
      const fp = objective(datas);
      datas[k][j] = x0 - eps;
      const fm = objective(datas);
      datas[k][j] = x0;
      const num = (fp - fm) / (2 * eps);
      const allowed = rtol * Math.max(Math.abs(a[j]), Math.abs(num)) + atol;
      const err = Math.abs(a[j] - num);
      gradCheckStats.checks++;
      if (err / allowed > gradCheckStats.worstRatio) {
        gradCheckStats.worstRatio = err / allowed;
        gradCheckStats.worst = `input ${k} element ${j}: autograd ${a[j]}, numeric ${num}, ` +
          `atol ${atol}, inputs ${JSON.stringify(inputs.map((x) => Array.from(x.data)))}`;
      }
      if (!(err <= allowed)) {
        throw new Error(
          `gradient mismatch: input ${k} [${inputs[k].shape}] element ${j}: ` +
            `autograd ${a[j]}, finite difference ${num} (|diff| ${err} > ${allowed})\n` +
            `inputs: ${JSON.stringify(inputs.map((x) => Array.from(x.data)))}`,
        );
      }
    }
  });
}
