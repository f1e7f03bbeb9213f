/**
 * Baselines the trainer reports beside the model, computed on the CPU in float64 and fully
 * deterministic (fixed iteration order, no randomness):
 *
 * - `constantBaseline`: the same prediction for every row, from the training labels: the
 *   global mean (regression), the positive rate as a probability (binary: thresholded at 0.5
 *   it is the majority class, and its AUROC is 0.5), class frequencies as scores (multiclass:
 *   the arg max is the majority class), the most popular targets (link).
 * - `fitLinearBaseline`: a linear model on a dense per-entity feature matrix (e.g. the
 *   entity's own history features): ridge regression by its normal equations (Cholesky),
 *   L2-penalised logistic regression by Newton's method with backtracking (binary), and
 *   multinomial logistic regression by L-BFGS gradient descent preconditioned with
 *   Böhning's curvature bound (multiclass). Features are standardised inside; NaN features
 *   are treated as missing and imputed with the training mean; the intercept is never
 *   penalised. Cost: ridge O(n·d²); logistic O(iters·n·d²); multinomial O(iters·n·d·classes).
 *
 * @module
 */

import type { TaskType } from "../store/types.ts";
import type { Csr, NumArray } from "./metrics.ts";
import { clampToRange, prepareLabels, rankTopK, sigmoidProbs, softmaxRows } from "./heads.ts";
import { DEFAULT_K } from "./metrics.ts";
import { factorSpd, gram, lbfgs, solveFactored, solveSpd } from "./linalg.ts";

function fail(fn: string, msg: string): never {
  throw new Error(`fanout: ${fn}: ${msg}`);
}

// ---- constant baselines ------------------------------------------------------------------

/** A baseline that predicts the same thing for every row. */
export interface ConstantBaseline<P> {
  /** Task predicted for. */
  task: TaskType;
  /** One line for logs, e.g. `global mean 3.25`. */
  description: string;
  /**
   * The constant: `[mean]` (regression), `[positive rate]` (binary), class frequencies
   * (multiclass), the popular target ids best first (link).
   */
  values: Float64Array;
  /** Predictions for `rows` rows, in the form `evaluate` takes for the task. */
  predict(rows: number): P;
}

/** Options of `constantBaseline`. */
export interface ConstantBaselineOptions {
  /** Multiclass: number of classes (required). */
  classes?: number;
  /** Link: how many popular targets each row gets (default `DEFAULT_K`). */
  k?: number;
}

function checkRows(rows: number): void {
  if (!Number.isInteger(rows) || rows < 0) fail("predict", `rows must be a count, got ${rows}`);
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(6);
}

/**
 * The constant baseline of a task from its training labels (binary 0/1, regression values,
 * multiclass class ids, or link target sets as CSR): predictions are the global mean, the
 * positive rate (a probability), class frequencies as `rows × classes` scores, or the k targets
 * that occur most often in the training sets (ties to the lower id) for every entity.
 */
export function constantBaseline(
  task: "binary" | "regression",
  trainLabels: NumArray,
  opts?: ConstantBaselineOptions,
): ConstantBaseline<Float32Array>;
/** Multiclass: class frequencies as scores (`opts.classes` required). */
export function constantBaseline(
  task: "multiclass",
  trainLabels: NumArray,
  opts: ConstantBaselineOptions & { classes: number },
): ConstantBaseline<Float32Array>;
/** Link: the most popular targets. */
export function constantBaseline(
  task: "link",
  trainLabels: Csr,
  opts?: ConstantBaselineOptions,
): ConstantBaseline<Csr>;
export function constantBaseline(
  task: TaskType,
  trainLabels: NumArray | Csr,
  opts: ConstantBaselineOptions = {},
): ConstantBaseline<Float32Array> | ConstantBaseline<Csr> {
  if (task === "link") {
    if (!("offsets" in trainLabels)) fail("constantBaseline", "link labels are CSR target sets");
    const k = opts.k ?? DEFAULT_K;
    let max = -1;
    for (let i = 0; i < trainLabels.targets.length; i++) {
      const t = trainLabels.targets[i];
      if (!Number.isInteger(t) || t < 0) fail("constantBaseline", `target ${i} is ${t}`);
      max = Math.max(max, t);
    }
    if (max < 0) fail("constantBaseline", "no training targets");
    const counts = new Float64Array(max + 1).fill(NaN); // NaN: never seen, never ranked
    for (let i = 0; i < trainLabels.targets.length; i++) {
      const t = trainLabels.targets[i];
      counts[t] = Number.isNaN(counts[t]) ? 1 : counts[t] + 1;
    }
    const top = rankTopK(counts, counts.length, k).targets;
    return {
      task,
      description: `${top.length} most popular targets`,
      values: Float64Array.from(top),
      predict(rows: number): Csr {
        checkRows(rows);
        const offsets = new Int32Array(rows + 1), targets = new Int32Array(rows * top.length);
        for (let r = 0; r < rows; r++) {
          offsets[r + 1] = (r + 1) * top.length;
          targets.set(top, r * top.length);
        }
        return { offsets, targets };
      },
    };
  }
  if ("offsets" in trainLabels) fail("constantBaseline", `${task} labels are an array`);
  if (task === "multiclass") {
    const p = prepareLabels(task, trainLabels, { classes: opts.classes });
    const freq = p.counts.map((c) => c / p.targets.length);
    let major = 0;
    for (let c = 1; c < p.classes; c++) if (freq[c] > freq[major]) major = c;
    const row = Float32Array.from(freq);
    return {
      task,
      description: `majority class ${major} (${fmt(freq[major])} of rows)`,
      values: freq,
      predict(rows: number): Float32Array {
        checkRows(rows);
        const out = new Float32Array(rows * p.classes);
        for (let r = 0; r < rows; r++) out.set(row, r * p.classes);
        return out;
      },
    };
  }
  let value: number, description: string;
  if (task === "binary") {
    value = prepareLabels(task, trainLabels).positiveRate;
    description = `positive rate ${fmt(value)}`;
  } else if (task === "regression") {
    value = prepareLabels(task, trainLabels).mean;
    description = `global mean ${fmt(value)}`;
  } else {
    return fail("constantBaseline", `unknown task "${task as string}"`);
  }
  return {
    task,
    description,
    values: Float64Array.of(value),
    predict(rows: number): Float32Array {
      checkRows(rows);
      return new Float32Array(rows).fill(value);
    },
  };
}

// ---- linear baselines --------------------------------------------------------------------

/** A dense row-major float64 feature matrix. */
export interface FeatureMatrix {
  /** `rows × cols` values, row-major; NaN marks a missing value. */
  data: Float64Array;
  /** Number of rows. */
  rows: number;
  /** Number of columns (features). */
  cols: number;
}

/** Options of `fitLinearBaseline`. */
export interface LinearBaselineOptions {
  /** L2 penalty on the standardised weights, `l2/2 · ‖w‖²` added to the summed loss (default 1). */
  l2?: number;
  /** Iteration cap: Newton steps (binary, default 50) or L-BFGS steps (multiclass, default 100). */
  iters?: number;
  /** Multiclass: number of classes (default: largest label + 1). */
  classes?: number;
  /** Regression: clamp predictions to the training range (default true). */
  clamp?: boolean;
}

/** A fitted linear baseline. */
export interface LinearBaseline {
  /** Task fitted for. */
  task: "binary" | "regression" | "multiclass";
  /** Feature columns expected. */
  cols: number;
  /** Outputs per row: 1, or the number of classes. */
  outputs: number;
  /** Weights in the original feature units, `cols × outputs` row-major. */
  coef: Float64Array;
  /** Intercept per output, in the original units. */
  intercept: Float64Array;
  /** Iterations run (0 for the closed-form ridge). */
  iterations: number;
  /**
   * Predictions for rows of features: values (regression, clamped to the training range
   * unless `clamp: false`), probabilities (binary), or `rows × classes` probabilities
   * (multiclass): the forms `evaluate` takes.
   */
  predict(x: FeatureMatrix): Float32Array;
}

function checkMatrix(fn: string, x: FeatureMatrix, cols?: number): void {
  const { data, rows, cols: d } = x;
  if (!Number.isInteger(rows) || !Number.isInteger(d) || rows < 0 || d < 0) {
    fail(fn, `bad shape ${rows} × ${d}`);
  }
  if (data.length !== rows * d) fail(fn, `${data.length} values for ${rows} × ${d} features`);
  if (cols !== undefined && d !== cols) fail(fn, `${d} feature columns, the model has ${cols}`);
  for (let i = 0; i < data.length; i++) {
    if (data[i] === Infinity || data[i] === -Infinity) {
      fail(fn, `feature [${Math.floor(i / d)}, ${i % d}] is infinite`);
    }
  }
}

/** Per-column mean and standard deviation over the non-missing values (1 when constant). */
function columnStats(x: FeatureMatrix): { mean: Float64Array; scale: Float64Array } {
  const { data, rows, cols } = x;
  const mean = new Float64Array(cols), scale = new Float64Array(cols);
  const count = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      const v = data[r * cols + j];
      if (Number.isNaN(v)) continue;
      mean[j] += v;
      count[j]++;
    }
  }
  for (let j = 0; j < cols; j++) mean[j] = count[j] > 0 ? mean[j] / count[j] : 0;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      const v = data[r * cols + j];
      if (!Number.isNaN(v)) scale[j] += (v - mean[j]) ** 2;
    }
  }
  for (let j = 0; j < cols; j++) {
    const sd = count[j] > 0 ? Math.sqrt(scale[j] / count[j]) : 0;
    scale[j] = sd > 1e-12 * Math.max(1, Math.abs(mean[j])) ? sd : 1;
  }
  return { mean, scale };
}

/** Standardised rows with a trailing 1 column: `rows × (cols + 1)`; missing values become 0. */
function design(x: FeatureMatrix, mean: Float64Array, scale: Float64Array): Float64Array {
  const { data, rows, cols } = x, w = cols + 1;
  const z = new Float64Array(rows * w);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      const v = data[r * cols + j];
      z[r * w + j] = Number.isNaN(v) ? 0 : (v - mean[j]) / scale[j];
    }
    z[r * w + cols] = 1;
  }
  return z;
}

/** `rows × k` linear outputs `Z Θ` of a design matrix (width `w`) and `w × k` parameters. */
function linear(z: Float64Array, rows: number, w: number, theta: Float64Array, k: number) {
  const out = new Float64Array(rows * k);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < w; j++) {
      const zj = z[r * w + j];
      if (zj === 0) continue;
      for (let c = 0; c < k; c++) out[r * k + c] += zj * theta[j * k + c];
    }
  }
  return out;
}

const softplus = (x: number): number =>
  x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));

/** Ridge on the design matrix: closed form, intercept = mean of y (columns are centred). */
function fitRidge(z: Float64Array, n: number, d: number, y: Float32Array, l2: number) {
  const w = d + 1;
  let ybar = 0;
  for (let i = 0; i < n; i++) ybar += y[i];
  ybar /= n;
  const a = new Float64Array(d * d), b = new Float64Array(d);
  const g = gram(z, n, w);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) a[i * d + j] = g[i * w + j];
    a[i * d + i] += l2;
  }
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < d; j++) b[j] += z[r * w + j] * (y[r] - ybar);
  }
  const theta = new Float64Array(w);
  if (d > 0) theta.set(solveSpd(a, d, b, 1));
  theta[d] = ybar;
  return { theta, iterations: 0 };
}

/** Penalised logistic regression by Newton's method with Armijo backtracking. */
function fitLogistic(
  z: Float64Array,
  n: number,
  d: number,
  y: Float32Array,
  rate: number,
  l2: number,
  iters: number,
) {
  const w = d + 1;
  const theta = new Float64Array(w);
  const r0 = Math.min(Math.max(rate, 1e-6), 1 - 1e-6);
  theta[d] = Math.log(r0 / (1 - r0));
  const objective = (t: Float64Array): number => {
    const eta = linear(z, n, w, t, 1);
    let f = 0;
    for (let i = 0; i < n; i++) f += softplus(eta[i]) - y[i] * eta[i];
    for (let j = 0; j < d; j++) f += 0.5 * l2 * t[j] * t[j];
    return f;
  };
  let f = objective(theta), it = 0;
  for (; it < iters; it++) {
    const eta = linear(z, n, w, theta, 1);
    const g = new Float64Array(w), h = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const p = 1 / (1 + Math.exp(-eta[i]));
      h[i] = p * (1 - p);
      for (let j = 0; j < w; j++) g[j] += z[i * w + j] * (p - y[i]);
    }
    for (let j = 0; j < d; j++) g[j] += l2 * theta[j];
    const hess = gram(z, n, w, h);
    for (let j = 0; j < d; j++) hess[j * w + j] += l2;
    const step = solveSpd(hess, w, g, 1);
    let slope = 0, size = 0;
    for (let j = 0; j < w; j++) slope += g[j] * step[j];
    if (!(slope > 1e-12 * Math.max(1, Math.abs(f)))) break; // Newton decrement ~ 0: converged
    let t = 1, cand = theta, fc = f;
    for (let tries = 0; tries < 40; tries++, t /= 2) {
      cand = theta.map((v, j) => v - t * step[j]);
      fc = objective(cand);
      if (fc <= f - 1e-4 * t * slope) break;
    }
    if (!(fc < f)) break;
    for (let j = 0; j < w; j++) size = Math.max(size, Math.abs(cand[j] - theta[j]));
    theta.set(cand);
    f = fc;
    if (size < 1e-10) {
      it++;
      break;
    }
  }
  return { theta, iterations: it };
}

/**
 * Multinomial logistic regression by L-BFGS, preconditioned with Böhning's bound: the Hessian
 * of the summed softmax loss is at most `½ ZᵀZ ⊗ I`, so `(½ ZᵀZ + l2·D)⁻¹` (one Cholesky
 * factorisation per fit) makes the first step a monotone MM step and later ones quasi-Newton.
 */
function fitMultinomial(
  z: Float64Array,
  n: number,
  d: number,
  y: Int32Array,
  counts: Float64Array,
  l2: number,
  iters: number,
) {
  const w = d + 1, k = counts.length;
  // Parameters class-major here (k × w: contiguous per class); returned as w × k.
  const theta0 = new Float64Array(k * w);
  for (let c = 0; c < k; c++) theta0[c * w + d] = Math.log((counts[c] + 1) / (n + k));
  const bound = gram(z, n, w).map((v) => 0.5 * v);
  for (let j = 0; j < d; j++) bound[j * w + j] += l2;
  const factor = factorSpd(bound, w); // once for the whole fit
  const precondition = (g: Float64Array) => {
    const out = new Float64Array(k * w);
    for (let c = 0; c < k; c++) {
      out.set(solveFactored(factor, w, g.subarray(c * w, c * w + w), 1), c * w);
    }
    return out;
  };
  const eta = new Float64Array(k);
  const objective = (theta: Float64Array, g: Float64Array): number => {
    g.fill(0);
    let f = 0;
    for (let i = 0; i < n; i++) {
      const row = i * w;
      let m = -Infinity, sum = 0;
      for (let c = 0; c < k; c++) {
        let e = 0;
        for (let j = 0, t = c * w; j < w; j++) e += z[row + j] * theta[t + j];
        eta[c] = e;
        if (e > m) m = e;
      }
      for (let c = 0; c < k; c++) sum += eta[c] = Math.exp(eta[c] - m);
      f += Math.log(sum) - Math.log(eta[y[i]]); // −log softmax(η)_y
      for (let c = 0; c < k; c++) {
        const e = eta[c] / sum - (y[i] === c ? 1 : 0);
        for (let j = 0, t = c * w; j < w; j++) g[t + j] += z[row + j] * e;
      }
    }
    for (let c = 0; c < k; c++) {
      for (let j = 0; j < d; j++) {
        const t = theta[c * w + j];
        f += 0.5 * l2 * t * t;
        g[c * w + j] += l2 * t;
      }
    }
    return f;
  };
  const r = lbfgs(objective, theta0, precondition, iters, 1e-7 * n);
  const theta = new Float64Array(w * k);
  for (let c = 0; c < k; c++) for (let j = 0; j < w; j++) theta[j * k + c] = r.x[c * w + j];
  return { theta, iterations: r.iterations };
}

/**
 * Fits a linear baseline on standardised features: ridge regression (closed form), logistic
 * regression (Newton, at most `iters` steps) or multinomial logistic regression (L-BFGS, at
 * most `iters` steps). `y` holds regression targets, 0/1 labels or class ids, one per row
 * of `x`. Deterministic: the same inputs give bit-identical models.
 */
export function fitLinearBaseline(
  task: TaskType,
  x: FeatureMatrix,
  y: NumArray,
  opts: LinearBaselineOptions = {},
): LinearBaseline {
  const fn = "fitLinearBaseline";
  if (task === "link") fail(fn, "link tasks have no linear baseline (use constantBaseline)");
  checkMatrix(fn, x);
  const n = x.rows, d = x.cols;
  if (y.length !== n) fail(fn, `${y.length} labels for ${n} feature rows`);
  const l2 = opts.l2 ?? 1;
  if (!(l2 >= 0)) fail(fn, `l2 must be >= 0, got ${l2}`);
  const { mean, scale } = columnStats(x);
  const z = design(x, mean, scale);
  let fit: { theta: Float64Array; iterations: number }, outputs = 1;
  let range = { min: -Infinity, max: Infinity };
  if (task === "regression") {
    const p = prepareLabels(task, y);
    fit = fitRidge(z, n, d, p.targets, l2);
    if (opts.clamp ?? true) range = { min: p.min, max: p.max };
  } else if (task === "binary") {
    const p = prepareLabels(task, y);
    fit = fitLogistic(z, n, d, p.targets, p.positiveRate, l2, opts.iters ?? 50);
  } else if (task === "multiclass") {
    let classes = opts.classes;
    if (classes === undefined) {
      classes = 2;
      for (let i = 0; i < n; i++) if (Number.isInteger(y[i])) classes = Math.max(classes, y[i] + 1);
    }
    const p = prepareLabels(task, y, { classes });
    outputs = classes;
    fit = fitMultinomial(z, n, d, p.targets, p.counts, l2, opts.iters ?? 100);
  } else {
    return fail(fn, `unknown task "${task as string}"`);
  }
  const { theta, iterations } = fit;
  const coef = new Float64Array(d * outputs), intercept = new Float64Array(outputs);
  for (let c = 0; c < outputs; c++) {
    let b = theta[d * outputs + c];
    for (let j = 0; j < d; j++) {
      coef[j * outputs + c] = theta[j * outputs + c] / scale[j];
      b -= theta[j * outputs + c] * mean[j] / scale[j];
    }
    intercept[c] = b;
  }
  return {
    task,
    cols: d,
    outputs,
    coef,
    intercept,
    iterations,
    predict(xs: FeatureMatrix): Float32Array {
      checkMatrix("predict", xs, d);
      const out = linear(design(xs, mean, scale), xs.rows, d + 1, theta, outputs);
      if (task === "binary") return sigmoidProbs(out);
      if (task === "multiclass") return softmaxRows(out, outputs);
      return clampToRange(out, range.min, range.max);
    },
  };
}
