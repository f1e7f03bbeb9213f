/**
 * Indexing and segment kernels of the CPU reference backend, on plain typed
 * arrays (float64 values, int32 indices). `backend.ts` validates the indices
 * and sizes before calling these.
 *
 * @module
 */

import type { SegmentReduce } from "../backend.ts";
import type { F64 } from "./dense.ts";

/** `out[i,:] = x[idx[i],:]`. */
export function gather(x: F64, idx: Int32Array, cols: number): F64 {
  const out = new Float64Array(idx.length * cols);
  for (let i = 0; i < idx.length; i++) {
    out.set(x.subarray(idx[i] * cols, idx[i] * cols + cols), i * cols);
  }
  return out;
}

/** Columns `[start, start+len)` of a `rows × cols` array. */
export function sliceCols(x: F64, rows: number, cols: number, start: number, len: number): F64 {
  const out = new Float64Array(rows * len);
  for (let r = 0; r < rows; r++) {
    out.set(x.subarray(r * cols + start, r * cols + start + len), r * len);
  }
  return out;
}

/** Concatenation along columns; part `i` is `rows × cols[i]`. */
export function concatCols(parts: F64[], rows: number, cols: readonly number[]): F64 {
  const total = cols.reduce((a, b) => a + b, 0);
  const out = new Float64Array(rows * total);
  let start = 0;
  parts.forEach((p, i) => {
    const w = cols[i];
    for (let r = 0; r < rows; r++) out.set(p.subarray(r * w, r * w + w), r * total + start);
    start += w;
  });
  return out;
}

/**
 * Reduces the rows `offsets[s] .. offsets[s+1]` of each segment, per column.
 * Empty segments give 0. For `max`, `argmax` holds the first row reaching the
 * maximum (-1 for an empty segment).
 */
export function segmentReduce(
  x: F64,
  offsets: Int32Array,
  segments: number,
  cols: number,
  reduce: SegmentReduce,
): { out: F64; argmax?: Int32Array } {
  const out = new Float64Array(segments * cols);
  const argmax = reduce === "max" ? new Int32Array(segments * cols).fill(-1) : undefined;
  for (let s = 0; s < segments; s++) {
    const lo = offsets[s], hi = offsets[s + 1];
    if (hi <= lo) continue;
    for (let c = 0; c < cols; c++) {
      if (argmax) {
        let best = lo;
        for (let r = lo + 1; r < hi; r++) if (x[r * cols + c] > x[best * cols + c]) best = r;
        out[s * cols + c] = x[best * cols + c];
        argmax[s * cols + c] = best;
      } else {
        let acc = 0;
        for (let r = lo; r < hi; r++) acc += x[r * cols + c];
        out[s * cols + c] = reduce === "mean" ? acc / (hi - lo) : acc;
      }
    }
  }
  return argmax ? { out, argmax } : { out };
}

/** `dx[r,c] = dy[seg(r),c]` where `argmax[seg(r),c] == r`, else 0. */
export function segmentMaxGrad(
  dy: F64,
  argmax: Int32Array,
  rowSegment: Int32Array,
  rows: number,
  cols: number,
): F64 {
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const s = rowSegment[r];
    for (let c = 0; c < cols; c++) {
      if (argmax[s * cols + c] === r) dx[r * cols + c] = dy[s * cols + c];
    }
  }
  return dx;
}

/**
 * Softmax over the rows of each segment, per column, with the segment's
 * maximum subtracted first. Rows outside every segment are 0.
 */
export function segmentSoftmax(
  x: F64,
  offsets: Int32Array,
  segments: number,
  cols: number,
  rows: number,
): F64 {
  const y = new Float64Array(rows * cols);
  for (let s = 0; s < segments; s++) {
    const lo = offsets[s], hi = offsets[s + 1];
    for (let c = 0; c < cols; c++) {
      let m = -Infinity;
      for (let r = lo; r < hi; r++) m = Math.max(m, x[r * cols + c]);
      let sum = 0;
      for (let r = lo; r < hi; r++) {
        const e = Math.exp(x[r * cols + c] - m);
        y[r * cols + c] = e;
        sum += e;
      }
      for (let r = lo; r < hi; r++) y[r * cols + c] /= sum;
    }
  }
  return y;
}

/** `dx = y ⊙ (dy − Σ_segment(dy ⊙ y))`, per column. Rows outside every segment are 0. */
export function segmentSoftmaxGrad(
  y: F64,
  dy: F64,
  offsets: Int32Array,
  segments: number,
  cols: number,
  rows: number,
): F64 {
  const dx = new Float64Array(rows * cols);
  for (let s = 0; s < segments; s++) {
    const lo = offsets[s], hi = offsets[s + 1];
    for (let c = 0; c < cols; c++) {
      let dot = 0;
      for (let r = lo; r < hi; r++) dot += dy[r * cols + c] * y[r * cols + c];
      for (let r = lo; r < hi; r++) dx[r * cols + c] = y[r * cols + c] * (dy[r * cols + c] - dot);
    }
  }
  return dx;
}
