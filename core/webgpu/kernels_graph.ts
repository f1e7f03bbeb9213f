/**
 * Graph kernels: gathers, column slices and concatenation, segment
 * reductions and softmax (this file), layer norm (`kernels_norm.ts`).
 *
 * WGSL lives in shaders/gather.wgsl, segment.wgsl and norm.wgsl. Every kernel
 * has a scalar and a vec4 entry point; the vec4 one is used whenever the
 * column counts involved are multiples of 4 (see `vecWidth`). Segment
 * kernels give one thread to each (segment, column) pair over
 * destination-sorted rows, so no atomics are needed and results are
 * deterministic.
 *
 * @module
 */

import type { DType, SegmentReduce, Storage } from "../backend.ts";
import type { KernelContext, KernelMethods } from "./backend.ts";
import type { GpuStorage } from "./storage.ts";
import { normKernels } from "./kernels_norm.ts";
import { isSoftwareAdapter } from "./device.ts";
import { checkCount, fail, operand, vecWidth } from "./kernel_util.ts";

/** Shader files these kernels use. */
export const GRAPH_SHADERS: string[] = ["gather.wgsl", "segment.wgsl", "norm.wgsl"];

/** Workgroup size of the element-wise copy kernels (gather, column copies). */
const COPY_WG = 256;
/** Workgroup size of the segment kernels (one thread per segment × column unit). */
const SEG_WG = 64;

/** Copy kernels move 32-bit words, so they take f32 and i32 alike. */
const WORDS: readonly DType[] = ["f32", "i32"];

/** The graph kernel methods. */
export function graphKernels(ctx: KernelContext): Pick<
  KernelMethods,
  | "gather"
  | "sliceCols"
  | "concatCols"
  | "segmentReduce"
  | "segmentMaxGrad"
  | "segmentSoftmax"
  | "segmentSoftmaxGrad"
  | "layerNorm"
  | "layerNormGrad"
> {
  const { rt } = ctx;
  const software = isSoftwareAdapter(rt.gpu.info);

  /**
   * Records `dst[r, dOff + c] = src[r, sOff + c]` for `r < rows`, `c < len`
   * (row lengths `sCols` and `dCols`). A block that is contiguous in both
   * storages becomes one buffer copy.
   */
  const copyCols = (
    src: GpuStorage,
    sCols: number,
    sOff: number,
    dst: GpuStorage,
    dCols: number,
    dOff: number,
    rows: number,
    len: number,
  ): void => {
    if (rows === 0 || len === 0) return;
    if (rows === 1 || (len === sCols && len === dCols)) {
      rt.copy(src.buffer, sOff * 4, dst.buffer, dOff * 4, rows * len * 4);
      return;
    }
    const v = vecWidth(len, sCols, sOff, dCols, dOff);
    const p = rt.pipeline("gather.wgsl", `copy_cols${v}`, { WG: COPY_WG });
    rt.dispatch1d(
      p,
      [src.buffer, dst.buffer],
      { u: [rows, len / v, sCols / v, sOff / v, dCols / v, dOff / v] },
      (rows * len) / v,
      COPY_WG,
    );
  };

  /** Offsets of `segments` segments: i32, `segments + 1` entries. */
  const offsetsOf = (kernel: string, offsets: Storage, segments: number): GpuStorage => {
    checkCount(kernel, "segments", segments);
    return operand(kernel, offsets, segments + 1, "offsets", ["i32"]);
  };

  /**
   * Dispatches a segment kernel: one thread per (segment, column unit), a
   * unit being 1 or 4 columns (`vecWidth`), or 16 for sums on a software
   * adapter (see `seg_sum16` in segment.wgsl).
   */
  const segDispatch = (
    entry: string,
    constants: Record<string, number>,
    buffers: GPUBuffer[],
    segments: number,
    cols: number,
    rows: number,
  ): void => {
    const v = vecWidth(cols);
    const wide = entry === "seg_sum" && software && cols % 16 === 0;
    const name = wide ? "seg_sum16" : `${entry}${v}`;
    const p = rt.pipeline("segment.wgsl", name, { WG: SEG_WG, ...constants });
    const threads = (segments * cols) / (wide ? 16 : v);
    rt.dispatch1d(p, buffers, { u: [segments, cols / v, rows] }, threads, SEG_WG);
  };

  return {
    gather(x: Storage, idx: Storage, attrs: { srcRows: number; cols: number }): Storage {
      const { srcRows, cols } = attrs;
      checkCount("gather", "srcRows", srcRows);
      checkCount("gather", "cols", cols);
      const X = operand("gather", x, srcRows * cols, "x", WORDS);
      const I = operand("gather", idx, null, "idx", ["i32"]);
      const out = ctx.out(I.size * cols, X.dtype);
      const v = vecWidth(cols);
      const p = rt.pipeline("gather.wgsl", `gather${v}`, { WG: COPY_WG });
      rt.dispatch1d(
        p,
        [X.buffer, I.buffer, out.buffer],
        { u: [I.size, cols / v] },
        (I.size * cols) / v,
        COPY_WG,
      );
      return out;
    },

    sliceCols(
      x: Storage,
      attrs: { rows: number; cols: number; start: number; len: number },
    ): Storage {
      const { rows, cols, start, len } = attrs;
      for (const [k, n] of Object.entries(attrs)) checkCount("sliceCols", k, n);
      if (start + len > cols) {
        fail("sliceCols", `columns [${start}, ${start + len}) exceed ${cols}`);
      }
      const X = operand("sliceCols", x, rows * cols, "x", WORDS);
      const out = ctx.out(rows * len, X.dtype);
      copyCols(X, cols, start, out, len, 0, rows, len);
      return out;
    },

    concatCols(parts: Storage[], attrs: { rows: number; cols: number[] }): Storage {
      const { rows, cols } = attrs;
      checkCount("concatCols", "rows", rows);
      if (parts.length !== cols.length) {
        fail("concatCols", `${parts.length} parts but ${cols.length} column counts`);
      }
      if (parts.length === 0) fail("concatCols", "needs at least one part");
      const P = parts.map((p, i) => {
        checkCount("concatCols", `cols[${i}]`, cols[i]);
        return operand("concatCols", p, rows * cols[i], `part ${i} (${rows}x${cols[i]})`, WORDS);
      });
      const dtype = P[0].dtype;
      if (P.some((p) => p.dtype !== dtype)) fail("concatCols", "parts differ in dtype");
      const total = cols.reduce((a, b) => a + b, 0);
      const out = ctx.out(rows * total, dtype);
      let start = 0;
      P.forEach((p, i) => {
        copyCols(p, cols[i], 0, out, total, start, rows, cols[i]);
        start += cols[i];
      });
      return out;
    },

    segmentReduce(
      x: Storage,
      offsets: Storage,
      attrs: { segments: number; cols: number; reduce: SegmentReduce },
    ): { out: Storage; argmax?: Storage } {
      const { segments, cols, reduce } = attrs;
      checkCount("segmentReduce", "cols", cols);
      if (!["sum", "mean", "max"].includes(reduce)) {
        fail("segmentReduce", `unknown reduction ${reduce}`);
      }
      const X = operand("segmentReduce", x, null, "x");
      if (cols === 0 ? X.size !== 0 : X.size % cols !== 0) {
        fail(
          "segmentReduce",
          `x has ${X.size} elements, not a whole number of ${cols}-column rows`,
        );
      }
      const O = offsetsOf("segmentReduce", offsets, segments);
      const out = ctx.out(segments * cols);
      const rows = cols === 0 ? 0 : X.size / cols;
      if (reduce === "max") {
        const argmax = ctx.out(segments * cols, "i32");
        segDispatch(
          "seg_max",
          {},
          [X.buffer, O.buffer, out.buffer, argmax.buffer],
          segments,
          cols,
          rows,
        );
        return { out, argmax };
      }
      segDispatch(
        "seg_sum",
        { MEAN: reduce === "mean" ? 1 : 0 },
        [X.buffer, O.buffer, out.buffer],
        segments,
        cols,
        rows,
      );
      return { out };
    },

    segmentMaxGrad(
      dy: Storage,
      argmax: Storage,
      rowSegment: Storage,
      attrs: { rows: number; cols: number },
    ): Storage {
      const { rows, cols } = attrs;
      checkCount("segmentMaxGrad", "rows", rows);
      checkCount("segmentMaxGrad", "cols", cols);
      const DY = operand("segmentMaxGrad", dy, null, "dy");
      if (cols === 0 ? DY.size !== 0 : DY.size % cols !== 0) {
        fail(
          "segmentMaxGrad",
          `dy has ${DY.size} elements, not a whole number of ${cols}-column rows`,
        );
      }
      const AM = operand("segmentMaxGrad", argmax, DY.size, "argmax", ["i32"]);
      const RS = operand("segmentMaxGrad", rowSegment, rows, "rowSegment", ["i32"]);
      const dx = ctx.out(rows * cols);
      const v = vecWidth(cols);
      const p = rt.pipeline("segment.wgsl", `seg_max_grad${v}`, { WG: SEG_WG });
      rt.dispatch1d(
        p,
        [DY.buffer, AM.buffer, RS.buffer, dx.buffer],
        { u: [rows, cols / v] },
        (rows * cols) / v,
        SEG_WG,
      );
      return dx;
    },

    segmentSoftmax(
      x: Storage,
      offsets: Storage,
      attrs: { segments: number; rows: number; cols: number },
    ): Storage {
      const { segments, rows, cols } = attrs;
      checkCount("segmentSoftmax", "rows", rows);
      checkCount("segmentSoftmax", "cols", cols);
      const X = operand("segmentSoftmax", x, rows * cols, "x");
      const O = offsetsOf("segmentSoftmax", offsets, segments);
      // With no segments every row lies outside them: all zeros.
      if (segments === 0) return ctx.backend.full(rows * cols, 0, "f32");
      const y = ctx.out(rows * cols);
      segDispatch("seg_softmax", {}, [X.buffer, O.buffer, y.buffer], segments, cols, rows);
      return y;
    },

    segmentSoftmaxGrad(
      y: Storage,
      dy: Storage,
      offsets: Storage,
      attrs: { segments: number; rows: number; cols: number },
    ): Storage {
      const { segments, rows, cols } = attrs;
      checkCount("segmentSoftmaxGrad", "rows", rows);
      checkCount("segmentSoftmaxGrad", "cols", cols);
      const Y = operand("segmentSoftmaxGrad", y, rows * cols, "y");
      const DY = operand("segmentSoftmaxGrad", dy, rows * cols, "dy");
      const O = offsetsOf("segmentSoftmaxGrad", offsets, segments);
      if (segments === 0) return ctx.backend.full(rows * cols, 0, "f32");
      const dx = ctx.out(rows * cols);
      segDispatch(
        "seg_softmax_grad",
        {},
        [Y.buffer, DY.buffer, O.buffer, dx.buffer],
        segments,
        cols,
        rows,
      );
      return dx;
    },

    ...normKernels(ctx),
  };
}
