import assert from "node:assert/strict";
import { Rng } from "../core/random.ts";
import { constantBaseline, type FeatureMatrix, fitLinearBaseline } from "./baselines.ts";
import { evaluate, multiclassAccuracy } from "./metrics.ts";

function close(actual: number, expected: number, tol = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} != ${expected} (tol ${tol})`);
}

function matrix(rows: number[][]): FeatureMatrix {
  return { data: Float64Array.from(rows.flat()), rows: rows.length, cols: rows[0]?.length ?? 0 };
}

// ---- constant baselines ------------------------------------------------------------------

Deno.test("constant baselines: mean, positive rate, majority class, popular targets", () => {
  const reg = constantBaseline("regression", [1, 2, 6]);
  assert.deepEqual(Array.from(reg.predict(2)), [3, 3]);
  assert.equal(reg.description, "global mean 3");
  close(evaluate("regression", reg.predict(3), [1, 2, 6]).r2, 0); // the mean has R² 0

  const bin = constantBaseline("binary", Float32Array.of(0, 1, 0, 0));
  close(bin.values[0], 0.25);
  const m = evaluate("binary", bin.predict(4), [0, 1, 0, 0]);
  close(m.auroc, 0.5); // all scores tied
  close(m.accuracy, 0.75); // 0.25 < 0.5 → predicts the majority class 0

  const mc = constantBaseline("multiclass", [2, 0, 2, 1, 2], { classes: 4 });
  assert.deepEqual(Array.from(mc.values), [0.2, 0.2, 0.6, 0]);
  const scores = mc.predict(2);
  assert.equal(scores.length, 8);
  close(multiclassAccuracy(scores, 4, [2, 0]), 0.5); // always class 2
  assert.match(mc.description, /majority class 2/);

  // Target counts: 7 ×3, 4 ×2, 9 ×2, 1 ×1 → top 3 = [7, 4, 9] (4 before 9: lower id).
  const link = constantBaseline("link", {
    offsets: Int32Array.of(0, 3, 5, 8),
    targets: Int32Array.of(7, 4, 1, 7, 9, 7, 9, 4),
  }, { k: 3 });
  assert.deepEqual(Array.from(link.values), [7, 4, 9]);
  const ranked = link.predict(2);
  assert.deepEqual(Array.from(ranked.offsets), [0, 3, 6]);
  assert.deepEqual(Array.from(ranked.targets), [7, 4, 9, 7, 4, 9]);
  // Fewer distinct targets than k: only the seen ones.
  const few = constantBaseline("link", { offsets: [0, 2], targets: [5, 5] }, { k: 3 });
  assert.deepEqual(Array.from(few.values), [5]);

  assert.throws(() => constantBaseline("binary", [0, 2]), /not 0 or 1/);
  assert.throws(() => constantBaseline("regression", []), /no labels/);
});

// ---- ridge ---------------------------------------------------------------------------------

Deno.test("ridge matches the closed form on a 1-feature problem", () => {
  // x = 1..4, y = [2, 3, 5, 8]. x̄ = 2.5, population sd s = √(5/4), z = (x − 2.5)/s, Σz² = 4.
  // ȳ = 4.5, Σ (x − x̄)(y − ȳ) = 3.75 + 0.75 + 0.25 + 5.25 = 10, so Σ z (y − ȳ) = 10/s.
  // Standardised weight w = (10/s)/(Σz² + l2); original slope = w/s; intercept = ȳ − slope·x̄.
  // l2 = 1: w = 2/s, slope = 2/s² = 1.6, intercept = 4.5 − 4 = 0.5.
  // l2 = 0 (OLS): slope = Sxy/Sxx = 10/5 = 2, intercept = −0.5.
  const x = matrix([[1], [2], [3], [4]]), y = [2, 3, 5, 8];
  const ridge = fitLinearBaseline("regression", x, y, { l2: 1 });
  close(ridge.coef[0], 1.6, 1e-12);
  close(ridge.intercept[0], 0.5, 1e-12);
  assert.equal(ridge.iterations, 0);
  const p = ridge.predict(matrix([[0], [2], [10]]));
  // 0.5 + 1.6·2 = 3.7; x = 0 and x = 10 fall outside [2, 8] and are clamped.
  assert.deepEqual(Array.from(p), [2, Math.fround(3.7), 8]);
  const open = fitLinearBaseline("regression", x, y, { l2: 1, clamp: false });
  close(open.predict(matrix([[10]]))[0], 16.5, 1e-5);
  const ols = fitLinearBaseline("regression", x, y, { l2: 0 });
  close(ols.coef[0], 2, 1e-12);
  close(ols.intercept[0], -0.5, 1e-12);
});

Deno.test("ridge matches the normal equations on a 2-feature problem", () => {
  const rows = [[1, 0], [2, 1], [3, 1], [4, 3], [0, 2]], y = [1, 3, 2, 7, 0.5];
  const l2 = 0.7, n = rows.length;
  // Standardise by hand, then solve (ZᵀZ + l2 I) w = Zᵀ(y − ȳ) with Cramer's rule.
  const mean = [0, 1].map((j) => rows.reduce((s, r) => s + r[j], 0) / n);
  const sd = [0, 1].map((j) => Math.sqrt(rows.reduce((s, r) => s + (r[j] - mean[j]) ** 2, 0) / n));
  const z = rows.map((r) => r.map((v, j) => (v - mean[j]) / sd[j]));
  const ybar = y.reduce((a, b) => a + b, 0) / n;
  const dot = (f: (i: number) => number) => z.reduce((s, _, i) => s + f(i), 0);
  const a = dot((i) => z[i][0] ** 2) + l2, b = dot((i) => z[i][0] * z[i][1]);
  const d = dot((i) => z[i][1] ** 2) + l2;
  const r0 = dot((i) => z[i][0] * (y[i] - ybar)), r1 = dot((i) => z[i][1] * (y[i] - ybar));
  const det = a * d - b * b;
  const w = [(d * r0 - b * r1) / det, (a * r1 - b * r0) / det];
  const fit = fitLinearBaseline("regression", matrix(rows), y, { l2 });
  close(fit.coef[0], w[0] / sd[0], 1e-12);
  close(fit.coef[1], w[1] / sd[1], 1e-12);
  close(fit.intercept[0], ybar - w[0] * mean[0] / sd[0] - w[1] * mean[1] / sd[1], 1e-12);
});

Deno.test("linear baseline: missing features take the mean, constant columns are harmless", () => {
  // Column 1 is constant; row 2 misses column 0, whose mean over the others is 2.
  const x = matrix([[1, 5], [3, 5], [NaN, 5]]);
  const fit = fitLinearBaseline("regression", x, [1, 3, 2], { l2: 0, clamp: false });
  close(fit.coef[1], 0);
  const p = fit.predict(matrix([[NaN, 5], [1, 5]]));
  close(p[0], 2, 1e-6); // imputed to the mean → predicts ȳ = 2
  close(p[1], 1, 1e-6);
  assert.throws(() => fitLinearBaseline("regression", x, [1, 2]), /2 labels for 3 feature rows/);
  assert.throws(
    () => fitLinearBaseline("regression", matrix([[Infinity]]), [1]),
    /feature \[0, 0\] is infinite/,
  );
  assert.throws(() => fit.predict(matrix([[1]])), /1 feature columns, the model has 2/);
  assert.throws(() => fitLinearBaseline("link", x, [1, 2, 3]), /no linear baseline/);
});

// ---- logistic ------------------------------------------------------------------------------

/** Gaussian features; label = [2x₀ − x₁ + 0.5x₂ + 0.5ε > 0]: nearly separable. */
function binaryProblem(n: number, seed: number) {
  const rng = new Rng(seed);
  const data = new Float64Array(n * 3), y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 3; j++) data[i * 3 + j] = rng.normal() * (j + 1) + j;
    const x = data.subarray(i * 3, i * 3 + 3);
    y[i] = 2 * x[0] - x[1] + 0.5 * x[2] + 0.5 * rng.normal() > 0.5 ? 1 : 0;
  }
  return { x: { data, rows: n, cols: 3 }, y };
}

Deno.test("logistic regression recovers a nearly separable problem, deterministically", () => {
  const train = binaryProblem(400, 1), test = binaryProblem(400, 2);
  const fit = fitLinearBaseline("binary", train.x, train.y, { l2: 1 });
  assert.ok(fit.iterations < 50, `Newton took ${fit.iterations} steps`);
  const m = evaluate("binary", fit.predict(test.x), test.y);
  assert.ok(m.accuracy > 0.9, `accuracy ${m.accuracy}`);
  assert.ok(m.auroc > 0.97, `auroc ${m.auroc}`);
  // Signs of the generating direction (2, −1, 0.5).
  assert.ok(fit.coef[0] > 0 && fit.coef[1] < 0 && fit.coef[2] > 0);
  // Optimality for the unpenalised intercept: mean predicted probability = positive rate.
  const p = fit.predict(train.x);
  close(p.reduce((a, b) => a + b, 0) / 400, train.y.reduce((a, b) => a + b, 0) / 400, 1e-5);
  const again = fitLinearBaseline("binary", train.x, train.y, { l2: 1 });
  assert.deepEqual(again.coef, fit.coef);
  assert.deepEqual(again.intercept, fit.intercept);
  // One class only: the intercept saturates and nothing breaks.
  const ones = fitLinearBaseline("binary", train.x, new Float32Array(400).fill(1));
  assert.ok(ones.predict(test.x).every((v) => Number.isFinite(v) && v > 0.99));
});

// ---- multinomial ---------------------------------------------------------------------------

/** Three Gaussian blobs in 2-D around (0, 3), (3, −2), (−3, −2), plus a noise column. */
function blobs(n: number, seed: number) {
  const rng = new Rng(seed);
  const centres = [[0, 3], [3, -2], [-3, -2]];
  const data = new Float64Array(n * 3), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y[i] = c;
    data[i * 3] = centres[c][0] + rng.normal();
    data[i * 3 + 1] = centres[c][1] + rng.normal();
    data[i * 3 + 2] = 10 * rng.normal();
  }
  return { x: { data, rows: n, cols: 3 }, y };
}

Deno.test("multinomial logistic regression separates three blobs, deterministically", () => {
  const train = blobs(300, 3), test = blobs(300, 4);
  const fit = fitLinearBaseline("multiclass", train.x, train.y, { l2: 1, iters: 300 });
  assert.equal(fit.outputs, 3);
  const probs = fit.predict(test.x);
  for (let r = 0; r < 300; r++) {
    close(probs[3 * r] + probs[3 * r + 1] + probs[3 * r + 2], 1, 1e-5);
  }
  const m = evaluate("multiclass", probs, test.y, { classes: 3 });
  assert.ok(m.accuracy > 0.9, `accuracy ${m.accuracy}`);
  assert.ok(m.macro_f1 > 0.9, `macro F1 ${m.macro_f1}`);
  // Near the optimum the unpenalised intercepts make mean probabilities = class frequencies.
  const p = fit.predict(train.x);
  for (let c = 0; c < 3; c++) {
    let s = 0;
    for (let r = 0; r < 300; r++) s += p[3 * r + c];
    close(s / 300, 1 / 3, 2e-3);
  }
  const again = fitLinearBaseline("multiclass", train.x, train.y, { l2: 1, iters: 300 });
  assert.deepEqual(again.coef, fit.coef);
  // classes defaults to the largest label + 1; an explicit larger count adds unseen classes.
  const wide = fitLinearBaseline("multiclass", train.x, train.y, { classes: 4, iters: 50 });
  assert.equal(wide.outputs, 4);
  assert.ok(wide.predict(test.x).every((v, i) => i % 4 !== 3 || v < 0.05));
});
