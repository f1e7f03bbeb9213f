/**
 * Dense float64 kernels of the CPU reference backend, on plain typed arrays.
 * `backend.ts` validates sizes and wraps these into storages; the formulas
 * here are the specification the WGSL kernels are tested against.
 *
 * @module
 */

import type {
  BinaryOp,
  Broadcast,
  LossKind,
  OptimizerAttrs,
  ReduceAxis,
  UnaryOp,
} from "../backend.ts";
import { dropoutKeep } from "./hash.ts";

/** Float data as kernels read it. */
export type F64 = Float64Array;

/** `out[m×n] = op(a)·op(b)`; `a` is stored `k×m` when `transA`, `b` is stored `n×k` when `transB`. */
export function matmul(
  a: F64,
  b: F64,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): F64 {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[p * m + i] : a[i * k + p];
        const bv = transB ? b[j * k + p] : b[p * n + j];
        s += av * bv;
      }
      out[i * n + j] = s;
    }
  }
  return out;
}

function operandIndex(mode: Broadcast, r: number, c: number, cols: number): number {
  return mode === "full" ? r * cols + c : mode === "row" ? c : mode === "col" ? r : 0;
}

/** `out[r,c] = a[ia] op b[ib]`, `ia`/`ib` = full: `r·cols+c`, row: `c`, col: `r`, scalar: `0`. */
export function binary(
  op: BinaryOp,
  a: F64,
  b: F64,
  rows: number,
  cols: number,
  aMode: Broadcast,
  bMode: Broadcast,
): F64 {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const x = a[operandIndex(aMode, r, c, cols)], y = b[operandIndex(bMode, r, c, cols)];
      out[r * cols + c] = op === "add"
        ? x + y
        : op === "sub"
        ? x - y
        : op === "mul"
        ? x * y
        : x / y;
    }
  }
  return out;
}

/** √(2/π), the GELU tanh-approximation constant. */
const GELU_C = Math.sqrt(2 / Math.PI);
/** The cubic coefficient of the GELU tanh approximation. */
const GELU_K = 0.044715;

/** Numerically stable logistic sigmoid. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** The value of unary `op` at `x` (`alpha`, `beta` as in `Backend.unary`). */
export function unaryValue(op: UnaryOp, x: number, alpha: number, beta: number): number {
  switch (op) {
    case "relu":
      return x > 0 ? x : 0;
    case "leaky_relu":
      return x > 0 ? x : alpha * x;
    case "gelu":
      return 0.5 * x * (1 + Math.tanh(GELU_C * (x + GELU_K * x * x * x)));
    case "sigmoid":
      return sigmoid(x);
    case "tanh":
      return Math.tanh(x);
    case "exp":
      return Math.exp(x);
    case "log":
      return Math.log(x);
    case "neg":
      return -x;
    case "abs":
      return Math.abs(x);
    case "sqrt":
      return Math.sqrt(x);
    case "affine":
      return alpha * x + beta;
  }
}

/**
 * `f'(x)` given the input `x` and output `y`: relu'(0) = abs'(0) = 0,
 * leaky_relu'(x ≤ 0) = alpha, sigmoid' = y(1−y), tanh' = 1−y², exp' = y,
 * log' = 1/x, sqrt' = 0.5/y, affine' = alpha.
 */
export function unaryDerivative(op: UnaryOp, x: number, y: number, alpha: number): number {
  switch (op) {
    case "relu":
      return x > 0 ? 1 : 0;
    case "leaky_relu":
      return x > 0 ? 1 : alpha;
    case "gelu": {
      const t = Math.tanh(GELU_C * (x + GELU_K * x * x * x));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * GELU_K * x * x);
    }
    case "sigmoid":
      return y * (1 - y);
    case "tanh":
      return 1 - y * y;
    case "exp":
      return y;
    case "log":
      return 1 / x;
    case "neg":
      return -1;
    case "abs":
      return x > 0 ? 1 : x < 0 ? -1 : 0;
    case "sqrt":
      return 0.5 / y;
    case "affine":
      return alpha;
  }
}

/** Element-wise `op` over `x`. */
export function unary(op: UnaryOp, x: F64, alpha: number, beta: number): F64 {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = unaryValue(op, x[i], alpha, beta);
  return out;
}

/** `dx = dy · f'(x)` element-wise. */
export function unaryGrad(op: UnaryOp, x: F64, y: F64, dy: F64, alpha: number): F64 {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = dy[i] * unaryDerivative(op, x[i], y[i], alpha);
  return out;
}

/** Inverted dropout: `x[i] · 1/(1−p)` where `dropoutKeep(seed, i, p)`, else 0. */
export function dropout(x: F64, p: number, seed: number): F64 {
  const out = new Float64Array(x.length);
  const scale = 1 / (1 - p);
  for (let i = 0; i < x.length; i++) out[i] = dropoutKeep(seed, i, p) ? x[i] * scale : 0;
  return out;
}

/** Sum of all elements (`all`), per column (`rows`, `cols` values) or per row (`cols`, `rows` values). */
export function reduceSum(x: F64, rows: number, cols: number, axis: ReduceAxis): F64 {
  const out = new Float64Array(axis === "all" ? 1 : axis === "rows" ? cols : rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      out[axis === "all" ? 0 : axis === "rows" ? c : r] += x[r * cols + c];
    }
  }
  return out;
}

/** `Σ_i Σ_j xs[i][j]²`, accumulated in float64. */
export function sumSquares(xs: readonly F64[]): number {
  let s = 0;
  for (const x of xs) {
    for (let j = 0; j < x.length; j++) s += x[j] * x[j];
  }
  return s;
}

/**
 * Layer norm of each row: `mean`, biased variance, `rstd = 1/√(var+eps)`,
 * `y = (x−mean)·rstd·gamma + beta`.
 */
export function layerNorm(
  x: F64,
  gamma: F64,
  beta: F64,
  rows: number,
  cols: number,
  eps: number,
): { y: F64; mean: F64; rstd: F64 } {
  const y = new Float64Array(rows * cols), mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[o + c];
    const mu = s / cols;
    let v = 0;
    for (let c = 0; c < cols; c++) v += (x[o + c] - mu) ** 2;
    const rs = 1 / Math.sqrt(v / cols + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let c = 0; c < cols; c++) y[o + c] = (x[o + c] - mu) * rs * gamma[c] + beta[c];
  }
  return { y, mean, rstd };
}

/**
 * Layer norm gradients with `xhat = (x−mean)·rstd` and `g = dy·gamma`:
 * `dx = rstd·(g − mean_row(g) − xhat·mean_row(g·xhat))`,
 * `dgamma = Σ_rows dy·xhat`, `dbeta = Σ_rows dy`.
 */
export function layerNormGrad(
  x: F64,
  gamma: F64,
  mean: F64,
  rstd: F64,
  dy: F64,
  rows: number,
  cols: number,
): { dx: F64; dgamma: F64; dbeta: F64 } {
  const dx = new Float64Array(rows * cols), dgamma = new Float64Array(cols);
  const dbeta = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols, mu = mean[r], rs = rstd[r];
    let sg = 0, sgx = 0;
    for (let c = 0; c < cols; c++) {
      const xhat = (x[o + c] - mu) * rs, g = dy[o + c] * gamma[c];
      sg += g;
      sgx += g * xhat;
      dgamma[c] += dy[o + c] * xhat;
      dbeta[c] += dy[o + c];
    }
    const mg = sg / cols, mgx = sgx / cols;
    for (let c = 0; c < cols; c++) {
      const xhat = (x[o + c] - mu) * rs;
      dx[o + c] = rs * (dy[o + c] * gamma[c] - mg - xhat * mgx);
    }
  }
  return { dx, dgamma, dbeta };
}

/** Checks that `t[r]` is an integer class id in `[0, cols)` (throws a RangeError otherwise). */
function classId(t: ArrayLike<number>, r: number, cols: number): number {
  const k = t[r];
  if (!(Number.isInteger(k) && k >= 0 && k < cols)) {
    throw new RangeError(
      `fanout: cross_entropy: class id ${k} of row ${r} is outside [0, ${cols})`,
    );
  }
  return k;
}

/** log Σ_c exp(x[o+c]) over one row, with max subtraction. */
function logSumExp(x: F64, o: number, cols: number): number {
  let m = -Infinity;
  for (let c = 0; c < cols; c++) m = Math.max(m, x[o + c]);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let c = 0; c < cols; c++) s += Math.exp(x[o + c] - m);
  return m + Math.log(s);
}

/**
 * Mean loss. bce_logits: `max(x,0) − x·t + log1p(exp(−|x|))`; mse: `(x−t)²`;
 * l1: `|x−t|`, each averaged over the `rows·cols` elements; cross_entropy:
 * `logsumexp(row) − row[t]` averaged over rows, with `t` class ids.
 */
export function loss(
  kind: LossKind,
  pred: F64,
  target: ArrayLike<number>,
  rows: number,
  cols: number,
): number {
  let s = 0;
  if (kind === "cross_entropy") {
    for (let r = 0; r < rows; r++) {
      const k = classId(target, r, cols);
      s += logSumExp(pred, r * cols, cols) - pred[r * cols + k];
    }
    return s / rows;
  }
  const n = rows * cols;
  for (let i = 0; i < n; i++) {
    const x = pred[i], t = target[i];
    if (kind === "bce_logits") s += Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));
    else if (kind === "mse") s += (x - t) * (x - t);
    else s += Math.abs(x - t);
  }
  return s / n;
}

/**
 * Gradient of `loss` with respect to `pred`, times the upstream scalar `dy`:
 * bce_logits `sigmoid(x)−t`, mse `2(x−t)`, l1 `sign(x−t)` (sign(0) = 0), each
 * divided by the element count; cross_entropy `softmax(row) − onehot(t)`
 * divided by the row count.
 */
export function lossGrad(
  kind: LossKind,
  pred: F64,
  target: ArrayLike<number>,
  dy: number,
  rows: number,
  cols: number,
): F64 {
  const n = rows * cols;
  const out = new Float64Array(n);
  if (kind === "cross_entropy") {
    const scale = dy / rows;
    for (let r = 0; r < rows; r++) {
      const o = r * cols, k = classId(target, r, cols);
      const lse = logSumExp(pred, o, cols);
      for (let c = 0; c < cols; c++) {
        out[o + c] = (Math.exp(pred[o + c] - lse) - (c === k ? 1 : 0)) * scale;
      }
    }
    return out;
  }
  const scale = dy / n;
  for (let i = 0; i < n; i++) {
    const x = pred[i], t = target[i];
    const g = kind === "bce_logits"
      ? sigmoid(x) - t
      : kind === "mse"
      ? 2 * (x - t)
      : Math.sign(x - t);
    out[i] = g * scale;
  }
  return out;
}

/**
 * The clip factor `min(1, maxNorm / (√normSq + 1e-6))` when `normSq` is given
 * and `maxNorm > 0`, else 1.
 */
export function clipScale(normSq: number | null, maxNorm: number): number {
  if (normSq === null || !(maxNorm > 0)) return 1;
  return Math.min(1, maxNorm / (Math.sqrt(normSq) + 1e-6));
}

/**
 * One optimizer update, in place on `param`, `state1` and `state2`, with
 * `g = grad·clip`:
 *
 * - sgd: `g += wd·p`; with momentum `buf = g` on step 1, else `buf = μ·buf + g`
 *   (kept in `state1`), update `= nesterov ? g + μ·buf : buf`; without
 *   momentum update `= g`; `p −= lr·update`.
 * - adam: `g += wd·p`; `m = β1·m + (1−β1)·g`, `v = β2·v + (1−β2)·g²` (in
 *   `state1`, `state2`); `p −= lr·m̂/(√v̂ + ε)` with `m̂ = m/(1−β1^step)`,
 *   `v̂ = v/(1−β2^step)`.
 * - adamw: `p *= 1 − lr·wd` first, then adam without the L2 term.
 */
export function optimizerStep(
  param: F64,
  grad: F64,
  state1: F64,
  state2: F64,
  clip: number,
  a: OptimizerAttrs,
): void {
  const n = param.length;
  const { lr, momentum: mu, weightDecay: wd, beta1: b1, beta2: b2, eps, step } = a;
  if (a.kind === "sgd") {
    for (let i = 0; i < n; i++) {
      let g = grad[i] * clip;
      if (wd !== 0) g += wd * param[i];
      let update = g;
      if (mu > 0) {
        const buf = step === 1 ? g : mu * state1[i] + g;
        state1[i] = buf;
        update = a.nesterov ? g + mu * buf : buf;
      }
      param[i] -= lr * update;
    }
    return;
  }
  const c1 = 1 - b1 ** step, c2 = 1 - b2 ** step;
  for (let i = 0; i < n; i++) {
    let g = grad[i] * clip;
    if (a.kind === "adamw") param[i] *= 1 - lr * wd;
    else if (wd !== 0) g += wd * param[i];
    const m = b1 * state1[i] + (1 - b1) * g;
    const v = b2 * state2[i] + (1 - b2) * g * g;
    state1[i] = m;
    state2[i] = v;
    param[i] -= lr * (m / c1) / (Math.sqrt(v / c2) + eps);
  }
}
