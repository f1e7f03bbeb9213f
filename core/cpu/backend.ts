/**
 * The CPU float64 reference backend: every `Backend` kernel written as plainly
 * as possible, computing in float64. It is the executable specification the
 * WebGPU kernels are tested against, and a slow but exact backend for tests.
 *
 * Storages hold `Float64Array`s for `f32` and `f16` (the latter rounded to half
 * precision whenever values are stored), `Int32Array`s for `i32`. Every kernel
 * checks that its operands are live storages of this backend with the sizes
 * its attributes imply, and throws a descriptive error otherwise.
 *
 * @module
 */

import type {
  Backend,
  BinaryOp,
  Broadcast,
  DType,
  LossKind,
  OptimizerAttrs,
  ReduceAxis,
  SegmentReduce,
  Storage,
  UnaryOp,
} from "../backend.ts";
import { operandSize } from "../broadcast.ts";
import * as dense from "./dense.ts";
import * as graph from "./graph.ts";
import { convert, CpuStorage } from "./storage.ts";
import { roundF16 } from "../half.ts";

function fail(kernel: string, msg: string): never {
  throw new Error(`fanout: cpu.${kernel}: ${msg}`);
}

function checkCount(kernel: string, what: string, n: number): void {
  if (!(Number.isInteger(n) && n >= 0)) {
    fail(kernel, `${what} must be a non-negative integer, got ${n}`);
  }
}

class CpuBackend implements Backend {
  readonly name = "cpu" as const;
  readonly supportsF16 = true;

  // ---- operand checks -----------------------------------------------------------

  #own(kernel: string, s: Storage, what: string): CpuStorage {
    if (!(s instanceof CpuStorage) || s.backend !== this) {
      fail(
        kernel,
        `${what} is not a storage of the cpu backend (it belongs to ${s?.backend?.name})`,
      );
    }
    if (s.released) fail(kernel, `${what} was released (use after free)`);
    return s;
  }

  /** A float operand of exactly `size` elements. */
  #f(kernel: string, s: Storage, size: number, what: string): Float64Array {
    const st = this.#own(kernel, s, what);
    if (st.dtype === "i32") fail(kernel, `${what} must be a float storage, got i32`);
    if (st.size !== size) fail(kernel, `${what} has ${st.size} elements, expected ${size}`);
    return st.data as Float64Array;
  }

  /** An i32 operand of exactly `size` elements. */
  #i(kernel: string, s: Storage, size: number, what: string): Int32Array {
    const st = this.#own(kernel, s, what);
    if (st.dtype !== "i32") fail(kernel, `${what} must be an i32 storage, got ${st.dtype}`);
    if (st.size !== size) fail(kernel, `${what} has ${st.size} elements, expected ${size}`);
    return st.data as Int32Array;
  }

  /** CSR offsets: `segments+1` non-decreasing entries within `[0, rows]`. */
  #offsets(kernel: string, s: Storage, segments: number, rows: number): Int32Array {
    checkCount(kernel, "segments", segments);
    const o = this.#i(kernel, s, segments + 1, "offsets");
    for (let i = 0; i <= segments; i++) {
      if (o[i] < 0 || o[i] > rows || (i > 0 && o[i] < o[i - 1])) {
        fail(kernel, `offsets[${i}] = ${o[i]} breaks 0 <= offsets non-decreasing <= ${rows}`);
      }
    }
    return o;
  }

  #out(data: Float64Array | Int32Array, dtype: DType = "f32"): CpuStorage {
    return new CpuStorage(this, data, dtype);
  }

  // ---- memory -------------------------------------------------------------------

  fromArray(data: ArrayLike<number>, dtype: DType): Storage {
    return this.#out(convert(data, dtype), dtype);
  }

  full(size: number, value: number, dtype: DType): Storage {
    checkCount("full", "size", size);
    const v = convert([value], dtype)[0];
    const data = dtype === "i32" ? new Int32Array(size) : new Float64Array(size);
    return this.#out(data.fill(v), dtype);
  }

  read(s: Storage): Promise<Float64Array | Int32Array> {
    try {
      return Promise.resolve(this.#own("read", s, "storage").data.slice());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  write(s: Storage, data: ArrayLike<number>): void {
    const st = this.#own("write", s, "storage");
    if (data.length !== st.size) {
      fail("write", `${data.length} values for a storage of ${st.size} elements`);
    }
    st.data.set(convert(data, st.dtype));
  }

  retain(s: Storage): void {
    this.#own("retain", s, "storage").refCount++;
  }

  release(s: Storage): void {
    const st = this.#own("release", s, "storage");
    if (--st.refCount === 0) st.drop();
  }

  flush(): void {}

  sync(): Promise<void> {
    return Promise.resolve();
  }

  cast(x: Storage, dtype: DType): Storage {
    const st = this.#own("cast", x, "x");
    if (st.dtype === "i32" || dtype === "i32") {
      fail("cast", `only f32 <-> f16 is supported, got ${st.dtype} -> ${dtype}`);
    }
    return this.#out(convert(st.data, dtype), dtype);
  }

  // ---- dense math ---------------------------------------------------------------

  matmul(
    a: Storage,
    b: Storage,
    attrs: { m: number; k: number; n: number; transA: boolean; transB: boolean },
  ): Storage {
    const { m, k, n, transA, transB } = attrs;
    for (const [w, v] of [["m", m], ["k", k], ["n", n]] as const) checkCount("matmul", w, v);
    const A = this.#f("matmul", a, m * k, `a (${transA ? `${k}x${m}, transposed` : `${m}x${k}`})`);
    const B = this.#f("matmul", b, k * n, `b (${transB ? `${n}x${k}, transposed` : `${k}x${n}`})`);
    return this.#out(dense.matmul(A, B, m, k, n, transA, transB));
  }

  binary(
    op: BinaryOp,
    a: Storage,
    b: Storage,
    attrs: { rows: number; cols: number; aMode: Broadcast; bMode: Broadcast },
  ): Storage {
    const { rows, cols, aMode, bMode } = attrs;
    checkCount(op, "rows", rows);
    checkCount(op, "cols", cols);
    const A = this.#f(op, a, operandSize(aMode, rows, cols), `a (${aMode})`);
    const B = this.#f(op, b, operandSize(bMode, rows, cols), `b (${bMode})`);
    return this.#out(dense.binary(op, A, B, rows, cols, aMode, bMode));
  }

  unary(op: UnaryOp, x: Storage, attrs: { n: number; alpha: number; beta: number }): Storage {
    const X = this.#f(op, x, attrs.n, "x");
    return this.#out(dense.unary(op, X, attrs.alpha, attrs.beta));
  }

  unaryGrad(
    op: UnaryOp,
    x: Storage,
    y: Storage,
    dy: Storage,
    attrs: { n: number; alpha: number; beta: number },
  ): Storage {
    const kernel = `${op}Grad`;
    const X = this.#f(kernel, x, attrs.n, "x"), Y = this.#f(kernel, y, attrs.n, "y");
    const DY = this.#f(kernel, dy, attrs.n, "dy");
    return this.#out(dense.unaryGrad(op, X, Y, DY, attrs.alpha));
  }

  dropout(x: Storage, attrs: { n: number; p: number; seed: number }): Storage {
    if (!(attrs.p >= 0 && attrs.p < 1)) fail("dropout", `p must be in [0, 1), got ${attrs.p}`);
    const X = this.#f("dropout", x, attrs.n, "x");
    return this.#out(dense.dropout(X, attrs.p, attrs.seed >>> 0));
  }

  reduceSum(x: Storage, attrs: { rows: number; cols: number; axis: ReduceAxis }): Storage {
    const { rows, cols, axis } = attrs;
    checkCount("reduceSum", "rows", rows);
    checkCount("reduceSum", "cols", cols);
    const X = this.#f("reduceSum", x, rows * cols, "x");
    return this.#out(dense.reduceSum(X, rows, cols, axis));
  }

  sumSquares(xs: readonly Storage[], attrs: { sizes: readonly number[] }): Storage {
    const { sizes } = attrs;
    if (xs.length !== sizes.length) {
      fail("sumSquares", `${xs.length} storages but ${sizes.length} sizes`);
    }
    const X = xs.map((x, i) => {
      checkCount("sumSquares", `sizes[${i}]`, sizes[i]);
      return this.#f("sumSquares", x, sizes[i], `xs[${i}]`);
    });
    return this.#out(Float64Array.of(dense.sumSquares(X)));
  }

  // ---- indexing -----------------------------------------------------------------

  gather(x: Storage, idx: Storage, attrs: { srcRows: number; cols: number }): Storage {
    const { srcRows, cols } = attrs;
    checkCount("gather", "srcRows", srcRows);
    checkCount("gather", "cols", cols);
    const X = this.#f("gather", x, srcRows * cols, "x");
    const I = this.#i("gather", idx, idx.size, "idx");
    for (let i = 0; i < I.length; i++) {
      if (I[i] < 0 || I[i] >= srcRows) {
        throw new RangeError(
          `fanout: cpu.gather: index ${I[i]} at position ${i} is outside [0, ${srcRows})`,
        );
      }
    }
    return this.#out(graph.gather(X, I, cols));
  }

  sliceCols(
    x: Storage,
    attrs: { rows: number; cols: number; start: number; len: number },
  ): Storage {
    const { rows, cols, start, len } = attrs;
    for (
      const [w, v] of [["rows", rows], ["cols", cols], ["start", start], ["len", len]] as const
    ) {
      checkCount("sliceCols", w, v);
    }
    if (start + len > cols) fail("sliceCols", `columns [${start}, ${start + len}) exceed ${cols}`);
    const X = this.#f("sliceCols", x, rows * cols, "x");
    return this.#out(graph.sliceCols(X, rows, cols, start, len));
  }

  concatCols(parts: Storage[], attrs: { rows: number; cols: number[] }): Storage {
    const { rows, cols } = attrs;
    checkCount("concatCols", "rows", rows);
    if (parts.length !== cols.length) {
      fail("concatCols", `${parts.length} parts but ${cols.length} column counts`);
    }
    const P = parts.map((p, i) => {
      checkCount("concatCols", `cols[${i}]`, cols[i]);
      return this.#f("concatCols", p, rows * cols[i], `part ${i} (${rows}x${cols[i]})`);
    });
    return this.#out(graph.concatCols(P, rows, cols));
  }

  // ---- segments -----------------------------------------------------------------

  segmentReduce(
    x: Storage,
    offsets: Storage,
    attrs: { segments: number; cols: number; reduce: SegmentReduce },
  ): { out: Storage; argmax?: Storage } {
    const { segments, cols, reduce } = attrs;
    checkCount("segmentReduce", "cols", cols);
    const xs = this.#own("segmentReduce", x, "x");
    if (cols === 0 ? xs.size !== 0 : xs.size % cols !== 0) {
      fail("segmentReduce", `x has ${xs.size} elements, not a whole number of ${cols}-column rows`);
    }
    const rows = cols === 0 ? 0 : xs.size / cols;
    const X = this.#f("segmentReduce", x, xs.size, "x");
    const O = this.#offsets("segmentReduce", offsets, segments, rows);
    const r = graph.segmentReduce(X, O, segments, cols, reduce);
    const out = this.#out(r.out);
    return r.argmax ? { out, argmax: this.#out(r.argmax, "i32") } : { out };
  }

  segmentMaxGrad(
    dy: Storage,
    argmax: Storage,
    rowSegment: Storage,
    attrs: { rows: number; cols: number },
  ): Storage {
    const { rows, cols } = attrs;
    checkCount("segmentMaxGrad", "rows", rows);
    checkCount("segmentMaxGrad", "cols", cols);
    const RS = this.#i("segmentMaxGrad", rowSegment, rows, "rowSegment");
    const dys = this.#own("segmentMaxGrad", dy, "dy");
    const segments = cols === 0 ? 0 : dys.size / cols;
    if (!Number.isInteger(segments)) {
      fail(
        "segmentMaxGrad",
        `dy has ${dys.size} elements, not a whole number of ${cols}-column rows`,
      );
    }
    const DY = this.#f("segmentMaxGrad", dy, dys.size, "dy");
    const AM = this.#i("segmentMaxGrad", argmax, dys.size, "argmax");
    for (let r = 0; r < rows; r++) {
      if (RS[r] < 0 || (RS[r] >= segments && cols > 0)) {
        fail("segmentMaxGrad", `rowSegment[${r}] = ${RS[r]} is outside [0, ${segments})`);
      }
    }
    return this.#out(graph.segmentMaxGrad(DY, AM, RS, rows, cols));
  }

  segmentSoftmax(
    x: Storage,
    offsets: Storage,
    attrs: { segments: number; rows: number; cols: number },
  ): Storage {
    const { segments, rows, cols } = attrs;
    checkCount("segmentSoftmax", "rows", rows);
    checkCount("segmentSoftmax", "cols", cols);
    const X = this.#f("segmentSoftmax", x, rows * cols, "x");
    const O = this.#offsets("segmentSoftmax", offsets, segments, rows);
    return this.#out(graph.segmentSoftmax(X, O, segments, cols, rows));
  }

  segmentSoftmaxGrad(
    y: Storage,
    dy: Storage,
    offsets: Storage,
    attrs: { segments: number; rows: number; cols: number },
  ): Storage {
    const { segments, rows, cols } = attrs;
    checkCount("segmentSoftmaxGrad", "rows", rows);
    checkCount("segmentSoftmaxGrad", "cols", cols);
    const Y = this.#f("segmentSoftmaxGrad", y, rows * cols, "y");
    const DY = this.#f("segmentSoftmaxGrad", dy, rows * cols, "dy");
    const O = this.#offsets("segmentSoftmaxGrad", offsets, segments, rows);
    return this.#out(graph.segmentSoftmaxGrad(Y, DY, O, segments, cols, rows));
  }

  // ---- normalisation ------------------------------------------------------------

  layerNorm(
    x: Storage,
    gamma: Storage,
    beta: Storage,
    attrs: { rows: number; cols: number; eps: number },
  ): { y: Storage; mean: Storage; rstd: Storage } {
    const { rows, cols, eps } = attrs;
    checkCount("layerNorm", "rows", rows);
    checkCount("layerNorm", "cols", cols);
    const X = this.#f("layerNorm", x, rows * cols, "x");
    const G = this.#f("layerNorm", gamma, cols, "gamma"),
      B = this.#f("layerNorm", beta, cols, "beta");
    const r = dense.layerNorm(X, G, B, rows, cols, eps);
    return { y: this.#out(r.y), mean: this.#out(r.mean), rstd: this.#out(r.rstd) };
  }

  layerNormGrad(
    x: Storage,
    gamma: Storage,
    mean: Storage,
    rstd: Storage,
    dy: Storage,
    attrs: { rows: number; cols: number },
  ): { dx: Storage; dgamma: Storage; dbeta: Storage } {
    const { rows, cols } = attrs;
    checkCount("layerNormGrad", "rows", rows);
    checkCount("layerNormGrad", "cols", cols);
    const k = "layerNormGrad";
    const X = this.#f(k, x, rows * cols, "x"), G = this.#f(k, gamma, cols, "gamma");
    const M = this.#f(k, mean, rows, "mean"), R = this.#f(k, rstd, rows, "rstd");
    const DY = this.#f(k, dy, rows * cols, "dy");
    const r = dense.layerNormGrad(X, G, M, R, DY, rows, cols);
    return { dx: this.#out(r.dx), dgamma: this.#out(r.dgamma), dbeta: this.#out(r.dbeta) };
  }

  // ---- losses -------------------------------------------------------------------

  #lossOperands(
    kernel: string,
    kind: LossKind,
    pred: Storage,
    target: Storage,
    rows: number,
    cols: number,
  ): [Float64Array, Float64Array | Int32Array] {
    checkCount(kernel, "rows", rows);
    checkCount(kernel, "cols", cols);
    const P = this.#f(kernel, pred, rows * cols, "pred");
    const T = kind === "cross_entropy"
      ? this.#i(kernel, target, rows, "target (class ids)")
      : this.#f(kernel, target, rows * cols, "target");
    return [P, T];
  }

  loss(
    kind: LossKind,
    pred: Storage,
    target: Storage,
    attrs: { rows: number; cols: number },
  ): Storage {
    const [P, T] = this.#lossOperands(kind, kind, pred, target, attrs.rows, attrs.cols);
    return this.#out(Float64Array.of(dense.loss(kind, P, T, attrs.rows, attrs.cols)));
  }

  lossGrad(
    kind: LossKind,
    pred: Storage,
    target: Storage,
    dy: Storage,
    attrs: { rows: number; cols: number },
  ): Storage {
    const k = `${kind}Grad`;
    const [P, T] = this.#lossOperands(k, kind, pred, target, attrs.rows, attrs.cols);
    const DY = this.#f(k, dy, 1, "dy");
    return this.#out(dense.lossGrad(kind, P, T, DY[0], attrs.rows, attrs.cols));
  }

  // ---- optimisation -------------------------------------------------------------

  optimizerStep(
    param: Storage,
    grad: Storage,
    state1: Storage,
    state2: Storage,
    gradNormSq: Storage | null,
    attrs: OptimizerAttrs & { n: number; maxNorm: number },
  ): void {
    const k = `optimizerStep(${attrs.kind})`;
    const { n } = attrs;
    checkCount(k, "n", n);
    if (attrs.kind !== "sgd" && !(Number.isInteger(attrs.step) && attrs.step >= 1)) {
      fail(k, `step must be a positive integer (1-based), got ${attrs.step}`);
    }
    const P = this.#f(k, param, n, "param"), G = this.#f(k, grad, n, "grad");
    const usesS1 = attrs.kind !== "sgd" || attrs.momentum > 0, usesS2 = attrs.kind !== "sgd";
    const S1 = usesS1 ? this.#f(k, state1, n, "state1") : new Float64Array(0);
    const S2 = usesS2 ? this.#f(k, state2, n, "state2") : new Float64Array(0);
    const norm = gradNormSq ? this.#f(k, gradNormSq, 1, "gradNormSq")[0] : null;
    dense.optimizerStep(P, G, S1, S2, dense.clipScale(norm, attrs.maxNorm), attrs);
    for (const [s, a] of [[param, P], [state1, S1], [state2, S2]] as const) {
      if (s.dtype === "f16") { for (let i = 0; i < a.length; i++) a[i] = roundF16(a[i]); }
    }
  }
}

let instance: CpuBackend | null = null;

/**
 * The CPU float64 reference backend (one shared instance). Slow, exact, and
 * the specification every WebGPU kernel is tested against.
 *
 * @example
 * ```ts
 * import { cpuBackend } from "./mod.ts";
 * import { setDefaultBackend } from "../tensor.ts";
 * setDefaultBackend(cpuBackend());
 * ```
 */
export function cpuBackend(): Backend {
  instance ??= new CpuBackend();
  return instance;
}
