/**
 * Plain TypeScript versions of benchmarked computations: the baselines that
 * each WebGPU figure is printed beside.
 *
 * @module
 */

/** `c[m×n] = a[m×k] · b[k×n]`, f32, cache-friendly i-k-j loop order. */
export function matmulTs(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
): Float32Array {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      const bp = p * n;
      for (let j = 0; j < n; j++) c[ci + j] += av * b[bp + j];
    }
  }
  return c;
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
