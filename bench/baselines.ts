/**
 * Plain TypeScript versions of benchmarked computations: the baselines that
 * each WebGPU figure is printed beside.
 *
 * @module
 */

/**
 * `c[m×n] = a[m×k] · b[k×n]` in f32: i-k-j order with four rows of `a` per
 * pass over `b` (2.2 GFLOP/s here, against 1.5 for the plain i-k-j loop).
 */
export function matmulTs(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
): Float32Array {
  const c = new Float32Array(m * n);
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const c0 = i * n, c1 = c0 + n, c2 = c1 + n, c3 = c2 + n;
    for (let p = 0; p < k; p++) {
      const a0 = a[i * k + p], a1 = a[(i + 1) * k + p];
      const a2 = a[(i + 2) * k + p], a3 = a[(i + 3) * k + p];
      const bp = p * n;
      for (let j = 0; j < n; j++) {
        const bv = b[bp + j];
        c[c0 + j] += a0 * bv;
        c[c1 + j] += a1 * bv;
        c[c2 + j] += a2 * bv;
        c[c3 + j] += a3 * bv;
      }
    }
  }
  for (; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      for (let j = 0; j < n; j++) c[i * n + j] += av * b[p * n + j];
    }
  }
  return c;
}

/** `c[k×n] = aᵀ · b` for `a[m×k]`, `b[m×n]` (weight gradients), f32. */
export function matmulTnTs(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
): Float32Array {
  const c = new Float32Array(k * n);
  for (let r = 0; r < m; r++) {
    const ar = r * k, br = r * n;
    for (let i = 0; i < k; i++) {
      const av = a[ar + i];
      if (av === 0) continue;
      const ci = i * n;
      for (let j = 0; j < n; j++) c[ci + j] += av * b[br + j];
    }
  }
  return c;
}

function transposeTs(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

/**
 * A plain TypeScript f32 training step of the MLP `[width, width, width, 1]`
 * with ReLU, mean squared error and AdamW (lr 1e-3, β 0.9/0.999, ε 1e-8,
 * decay 0.01): the same computation as the benchmarked WebGPU step.
 */
export class MlpStepTs {
  readonly #w: Float32Array[] = []; // stored [in, out]
  readonly #b: Float32Array[] = [];
  readonly #m: Float32Array[] = [];
  readonly #v: Float32Array[] = [];
  #t = 0;

  /** Random weights for `dims` (e.g. `[128, 128, 128, 1]`). */
  constructor(readonly dims: number[], rand: () => number) {
    for (let l = 0; l + 1 < dims.length; l++) {
      const bound = 1 / Math.sqrt(dims[l]);
      this.#w.push(
        Float32Array.from({ length: dims[l] * dims[l + 1] }, () => (rand() * 2 - 1) * bound),
      );
      this.#b.push(new Float32Array(dims[l + 1]));
    }
    for (const p of [...this.#w, ...this.#b]) {
      this.#m.push(new Float32Array(p.length));
      this.#v.push(new Float32Array(p.length));
    }
  }

  /** One step on `x[rows × dims[0]]` against `y[rows]`; returns the loss. */
  step(x: Float32Array, y: Float32Array, rows: number): number {
    const L = this.#w.length, dims = this.dims;
    const acts: Float32Array[] = [x], pre: Float32Array[] = [];
    for (let l = 0; l < L; l++) {
      const z = matmulTs(acts[l], this.#w[l], rows, dims[l], dims[l + 1]);
      const b = this.#b[l], n = dims[l + 1];
      for (let i = 0; i < z.length; i++) z[i] += b[i % n];
      pre.push(z);
      acts.push(l + 1 < L ? z.map((v) => (v > 0 ? v : 0)) : z);
    }
    const out = acts[L];
    let loss = 0;
    let g: Float32Array = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      const d = out[r] - y[r];
      loss += (d * d) / rows;
      g[r] = (2 * d) / rows;
    }
    const gw: Float32Array[] = new Array(L), gb: Float32Array[] = new Array(L);
    for (let l = L - 1; l >= 0; l--) {
      const n = dims[l + 1];
      if (l + 1 < L) { for (let i = 0; i < g.length; i++) if (pre[l][i] <= 0) g[i] = 0; }
      gw[l] = matmulTnTs(acts[l], g, rows, dims[l], n);
      gb[l] = new Float32Array(n);
      for (let i = 0; i < g.length; i++) gb[l][i % n] += g[i];
      if (l > 0) g = matmulTs(g, transposeTs(this.#w[l], dims[l], n), rows, n, dims[l]);
    }
    this.#t++;
    const lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
    const c1 = 1 - b1 ** this.#t, c2 = 1 - b2 ** this.#t;
    [...this.#w, ...this.#b].forEach((p, k) => {
      const grad = [...gw, ...gb][k], m = this.#m[k], v = this.#v[k];
      for (let i = 0; i < p.length; i++) {
        p[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * grad[i];
        v[i] = b2 * v[i] + (1 - b2) * grad[i] * grad[i];
        p[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
      }
    });
    return loss;
  }
}

/** Sums the rows of each segment of a `rows × cols` f32 matrix. */
export function segmentSumTs(x: Float32Array, offsets: Int32Array, cols: number): Float32Array {
  const segs = offsets.length - 1;
  const out = new Float32Array(segs * cols);
  for (let s = 0; s < segs; s++) {
    const o = s * cols;
    for (let r = offsets[s]; r < offsets[s + 1]; r++) {
      const xr = r * cols;
      for (let c = 0; c < cols; c++) out[o + c] += x[xr + c];
    }
  }
  return out;
}
