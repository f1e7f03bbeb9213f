/**
 * Small dense float64 linear algebra for the CPU baselines: Cholesky factorisation and
 * solves of symmetric positive definite systems, and weighted Gram matrices. Matrices are
 * row-major `Float64Array`s.
 *
 * @module
 */

/** Cholesky factor L (lower triangular, row-major) of an n × n SPD matrix; null if not SPD. */
export function cholesky(a: Float64Array, n: number): Float64Array | null {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let k = 0; k < j; k++) d -= l[j * n + k] ** 2;
    if (!(d > 0)) return null;
    const ljj = Math.sqrt(d);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = s / ljj;
    }
  }
  return l;
}

/** Cholesky factor of SPD A (n × n), adding a growing ridge if A is numerically singular. */
export function factorSpd(a: Float64Array, n: number): Float64Array {
  let l = cholesky(a, n);
  let trace = 0;
  for (let i = 0; i < n; i++) trace += a[i * n + i];
  for (let jitter = 1e-12 * Math.max(trace / n, 1); !l; jitter *= 10) {
    if (jitter > 1e6) throw new Error("fanout: linalg: the normal equations cannot be solved");
    const aj = a.slice();
    for (let i = 0; i < n; i++) aj[i * n + i] += jitter;
    l = cholesky(aj, n);
  }
  return l;
}

/** Solves L Lᵀ X = B for a Cholesky factor L (n × n) and B (n × m). */
export function solveFactored(
  l: Float64Array,
  n: number,
  b: Float64Array,
  m: number,
): Float64Array {
  const x = b.slice();
  for (let c = 0; c < m; c++) {
    for (let i = 0; i < n; i++) { // forward: L y = b
      let s = x[i * m + c];
      for (let k = 0; k < i; k++) s -= l[i * n + k] * x[k * m + c];
      x[i * m + c] = s / l[i * n + i];
    }
    for (let i = n - 1; i >= 0; i--) { // backward: Lᵀ x = y
      let s = x[i * m + c];
      for (let k = i + 1; k < n; k++) s -= l[k * n + i] * x[k * m + c];
      x[i * m + c] = s / l[i * n + i];
    }
  }
  return x;
}

/** Solves A X = B for SPD A (n × n) and B (n × m). */
export function solveSpd(a: Float64Array, n: number, b: Float64Array, m: number): Float64Array {
  return solveFactored(factorSpd(a, n), n, b, m);
}

/** Gram matrix Zᵀ diag(w) Z of row-major n × d Z (w = 1 when omitted). */
export function gram(z: Float64Array, n: number, d: number, w?: Float64Array): Float64Array {
  const g = new Float64Array(d * d);
  for (let r = 0; r < n; r++) {
    const base = r * d, wr = w ? w[r] : 1;
    if (wr === 0) continue;
    for (let i = 0; i < d; i++) {
      const zi = z[base + i] * wr;
      if (zi === 0) continue;
      for (let j = 0; j <= i; j++) g[i * d + j] += zi * z[base + j];
    }
  }
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) g[j * d + i] = g[i * d + j];
  return g;
}

/** Objective for `lbfgs`: writes the gradient at `x` into `grad` and returns the value. */
export type Objective = (x: Float64Array, grad: Float64Array) => number;

/** Result of `lbfgs`. */
export interface LbfgsResult {
  /** The minimiser found. */
  x: Float64Array;
  /** Objective value there. */
  value: number;
  /** Iterations run. */
  iterations: number;
}

/**
 * Minimises a smooth convex function by L-BFGS (memory `memory`) with Armijo backtracking,
 * starting from `x0`. `precondition(g)` applies the initial inverse-Hessian approximation
 * (an SPD map; a curvature upper bound's inverse makes the first step a monotone MM step).
 * Stops after `iters` iterations, when the gradient's largest entry falls below `gradTol`, or
 * when a step no longer decreases the value (relatively, by more than 1e-13). Deterministic.
 */
export function lbfgs(
  f: Objective,
  x0: Float64Array,
  precondition: (g: Float64Array) => Float64Array,
  iters: number,
  gradTol: number,
  memory = 8,
): LbfgsResult {
  const n = x0.length;
  let x = x0.slice(), g = new Float64Array(n);
  let value = f(x, g);
  const ss: Float64Array[] = [], ys: Float64Array[] = [], rhos: number[] = [];
  const dot = (a: Float64Array, b: Float64Array) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += a[i] * b[i];
    return s;
  };
  let it = 0;
  for (; it < iters; it++) {
    let gmax = 0;
    for (let i = 0; i < n; i++) gmax = Math.max(gmax, Math.abs(g[i]));
    if (gmax <= gradTol) break;
    // Two-loop recursion: dir = H g.
    const q = g.slice(), alphas = new Float64Array(ss.length);
    for (let m = ss.length - 1; m >= 0; m--) {
      alphas[m] = rhos[m] * dot(ss[m], q);
      for (let i = 0; i < n; i++) q[i] -= alphas[m] * ys[m][i];
    }
    const dir = precondition(q);
    for (let m = 0; m < ss.length; m++) {
      const beta = rhos[m] * dot(ys[m], dir);
      for (let i = 0; i < n; i++) dir[i] += (alphas[m] - beta) * ss[m][i];
    }
    let slope = dot(g, dir);
    if (!(slope > 0)) { // not a descent direction: restart from the preconditioner alone
      ss.length = ys.length = rhos.length = 0;
      dir.set(precondition(g));
      slope = dot(g, dir);
      if (!(slope > 0)) break;
    }
    let t = 1, accepted = false;
    const xn = new Float64Array(n), gn = new Float64Array(n);
    let vn = value;
    for (let tries = 0; tries < 30; tries++, t /= 2) {
      for (let i = 0; i < n; i++) xn[i] = x[i] - t * dir[i];
      vn = f(xn, gn);
      if (vn <= value - 1e-4 * t * slope) {
        accepted = true;
        break;
      }
    }
    if (!accepted || !(vn < value)) break;
    const done = value - vn <= 1e-13 * Math.abs(value); // no progress left to make
    const s = new Float64Array(n), y = new Float64Array(n);
    for (let i = 0; i < n; i++) [s[i], y[i]] = [xn[i] - x[i], gn[i] - g[i]];
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y))) {
      if (ss.length === memory) [ss.shift(), ys.shift(), rhos.shift()];
      ss.push(s), ys.push(y), rhos.push(1 / sy);
    }
    [x, g, value] = [xn, gn, vn];
    if (done) {
      it++;
      break;
    }
  }
  return { x, value, iterations: it };
}
