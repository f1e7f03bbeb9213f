/**
 * The differentiable op set. Each function checks shapes once, calls one
 * backend kernel, and records a tape node; the gradient of every op named in
 * `OpAttrs` lives in the single table of `grad_rules.ts`.
 *
 * @module
 */

import type {
  Backend,
  BinaryOp,
  Broadcast,
  DType,
  LossKind,
  ReduceAxis,
  SegmentReduce,
  UnaryOp,
} from "./backend.ts";
import { record } from "./autograd.ts";
import { installHooks, numel, Tensor } from "./tensor.ts";
import type { Index, Segments } from "./index.ts";
import { nextSeed } from "./random.ts";
import "./grad_rules.ts";

/** Attributes each op records for its gradient rule; the keys are the op set. */
export interface OpAttrs {
  /** Shape before the view. */
  reshape: { from: readonly number[] };
  /** Element type before the cast. */
  cast: { from: DType };
  /** Which operands were transposed. */
  matmul: { transA: boolean; transB: boolean };
  /** The operator and how each operand broadcast. */
  binary: { op: BinaryOp; aMode: Broadcast; bMode: Broadcast };
  /** The function and its parameters. */
  unary: { op: UnaryOp; alpha: number; beta: number };
  /** Drop probability and the mask seed (the gradient reuses the mask). */
  dropout: { p: number; seed: number };
  /** Axis summed over. */
  reduceSum: { axis: ReduceAxis };
  /** The rows gathered (its transpose routes the gradient). */
  gather: { index: Index };
  /** The column block taken. */
  sliceCols: { start: number; len: number };
  /** Width of each part. */
  concatCols: { cols: number[] };
  /** The segments and the reduction. */
  segmentReduce: { segments: Segments; reduce: SegmentReduce };
  /** The segments. */
  segmentSoftmax: { segments: Segments };
  /** Nothing: mean and 1/std are saved tensors of the node. */
  layerNorm: Record<never, never>;
  /** Which loss. */
  loss: { kind: LossKind };
}

/** Name of a differentiable op. */
export type OpName = keyof OpAttrs;

function fail(op: string, msg: string): never {
  throw new Error(`fanout: ${op}: ${msg}`);
}

function sameBackend(op: string, ts: readonly Tensor[]): Backend {
  const b = ts[0].backend;
  for (const t of ts) {
    t.assertLive();
    if (t.backend !== b) {
      fail(op, `tensors live on different backends (${b.name}, ${t.backend.name})`);
    }
  }
  return b;
}

function requireFloat(op: string, t: Tensor): void {
  if (t.dtype !== "f32") {
    fail(op, `needs f32 tensors, got ${t.dtype} (use cast() for f16 storage)`);
  }
}

function require2d(op: string, t: Tensor, what = "input"): [number, number] {
  if (t.shape.length !== 2) fail(op, `${what} must be 2-D [rows, cols], got [${t.shape}]`);
  return [t.shape[0], t.shape[1]];
}

// ---- shape ----------------------------------------------------------------------

/** A view with a new shape over the same storage (same element count). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  x.assertLive();
  if (numel(shape) !== x.size) fail("reshape", `cannot view [${x.shape}] as [${shape}]`);
  x.backend.retain(x.storage);
  return record(new Tensor(x.storage, shape), "reshape", [x], { from: x.shape });
}
installHooks({ reshape });

/** Converts between f32 and f16 storage (f16 needs the `shader-f16` feature on WebGPU). */
export function cast(x: Tensor, dtype: DType): Tensor {
  x.assertLive();
  if (dtype === "i32" || x.dtype === "i32") fail("cast", "only f32 <-> f16 is supported");
  if (dtype === x.dtype) return x;
  if (!x.backend.supportsF16) fail("cast", `backend ${x.backend.name} has no f16 support`);
  return record(new Tensor(x.backend.cast(x.storage, dtype), x.shape), "cast", [x], {
    from: x.dtype,
  });
}

// ---- dense ----------------------------------------------------------------------

/** Options of `matmul`. */
export interface MatmulOptions {
  /** Use the transpose of `a`. */
  transA?: boolean;
  /** Use the transpose of `b` (as a Linear layer does with `[out, in]` weights). */
  transB?: boolean;
}

/** Matrix product `op(a) · op(b)`. */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const backend = sameBackend("matmul", [a, b]);
  requireFloat("matmul", a);
  requireFloat("matmul", b);
  const transA = opts.transA ?? false, transB = opts.transB ?? false;
  const [ar, ac] = require2d("matmul", a, "a");
  const [br, bc] = require2d("matmul", b, "b");
  const [m, k] = transA ? [ac, ar] : [ar, ac];
  const [k2, n] = transB ? [bc, br] : [br, bc];
  if (k !== k2) {
    fail(
      "matmul",
      `inner sizes differ: a${transA ? "ᵀ" : ""} is [${m}, ${k}], b${
        transB ? "ᵀ" : ""
      } is [${k2}, ${n}]`,
    );
  }
  const s = backend.matmul(a.storage, b.storage, { m, k, n, transA, transB });
  return record(new Tensor(s, [m, n]), "matmul", [a, b], { transA, transB });
}

function as2d(shape: readonly number[]): [number, number] {
  if (shape.length === 0) return [1, 1];
  if (shape.length === 1) return [1, shape[0]];
  return [shape[0], shape[1]];
}

/** The broadcast extent of two sizes (a 1 stretches to the other, even to 0), or -1. */
function broadcastDim(a: number, b: number): number {
  return a === b ? a : a === 1 ? b : b === 1 ? a : -1;
}

function modeOf(r: number, c: number, rows: number, cols: number): Broadcast | null {
  if (r === rows && c === cols) return "full";
  if (r === 1 && c === 1) return "scalar";
  if (r === 1 && c === cols) return "row";
  if (r === rows && c === 1) return "col";
  return null;
}

/** Element-wise binary op with row/column/scalar broadcasting over 2-D shapes. */
export function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const backend = sameBackend(op, [a, b]);
  requireFloat(op, a);
  requireFloat(op, b);
  const [ar, ac] = as2d(a.shape), [br, bc] = as2d(b.shape);
  const rows = broadcastDim(ar, br), cols = broadcastDim(ac, bc);
  const aMode = modeOf(ar, ac, rows, cols), bMode = modeOf(br, bc, rows, cols);
  if (rows < 0 || cols < 0 || !aMode || !bMode) {
    fail(op, `shapes [${a.shape}] and [${b.shape}] do not broadcast`);
  }
  const rank = Math.max(a.shape.length, b.shape.length);
  const shape = rank === 2 ? [rows, cols] : rank === 1 ? [cols] : [];
  const s = backend.binary(op, a.storage, b.storage, { rows, cols, aMode, bMode });
  return record(new Tensor(s, shape), "binary", [a, b], { op, aMode, bMode });
}

/** `a + b` (broadcasting). */
export const add = (a: Tensor, b: Tensor): Tensor => binary("add", a, b);
/** `a - b` (broadcasting). */
export const sub = (a: Tensor, b: Tensor): Tensor => binary("sub", a, b);
/** `a * b` element-wise (broadcasting). */
export const mul = (a: Tensor, b: Tensor): Tensor => binary("mul", a, b);
/** `a / b` element-wise (broadcasting). */
export const div = (a: Tensor, b: Tensor): Tensor => binary("div", a, b);

/** Element-wise unary function; see `UnaryOp`. */
export function unary(op: UnaryOp, x: Tensor, alpha = 0, beta = 0): Tensor {
  const backend = sameBackend(op, [x]);
  requireFloat(op, x);
  const s = backend.unary(op, x.storage, { n: x.size, alpha, beta });
  return record(new Tensor(s, x.shape), "unary", [x], { op, alpha, beta });
}

/** max(x, 0). */
export const relu = (x: Tensor): Tensor => unary("relu", x);
/** x for x > 0, slope·x otherwise. */
export const leakyRelu = (x: Tensor, slope = 0.01): Tensor => unary("leaky_relu", x, slope);
/** GELU, tanh approximation (as PyTorch's `approximate="tanh"`). */
export const gelu = (x: Tensor): Tensor => unary("gelu", x);
/** Logistic sigmoid. */
export const sigmoid = (x: Tensor): Tensor => unary("sigmoid", x);
/** Hyperbolic tangent. */
export const tanh = (x: Tensor): Tensor => unary("tanh", x);
/** eˣ. */
export const exp = (x: Tensor): Tensor => unary("exp", x);
/** Natural logarithm. */
export const log = (x: Tensor): Tensor => unary("log", x);
/** −x. */
export const neg = (x: Tensor): Tensor => unary("neg", x);
/** |x|. */
export const abs = (x: Tensor): Tensor => unary("abs", x);
/** √x. */
export const sqrt = (x: Tensor): Tensor => unary("sqrt", x);
/** `alpha·x + beta`. */
export const scale = (x: Tensor, alpha: number, beta = 0): Tensor =>
  unary("affine", x, alpha, beta);

/** Options of `dropout`. */
export interface DropoutOptions {
  /** Apply dropout (true in training); identity otherwise. */
  training?: boolean;
  /** Mask seed; drawn from the global stream (`manualSeed`) when omitted. */
  seed?: number;
}

/** Inverted dropout with probability `p`. */
export function dropout(x: Tensor, p: number, opts: DropoutOptions = {}): Tensor {
  if (!(p >= 0 && p < 1)) fail("dropout", `p must be in [0, 1), got ${p}`);
  if (opts.training === false || p === 0) return x;
  const backend = sameBackend("dropout", [x]);
  requireFloat("dropout", x);
  const seed = (opts.seed ?? nextSeed()) >>> 0;
  const s = backend.dropout(x.storage, { n: x.size, p, seed });
  return record(new Tensor(s, x.shape), "dropout", [x], { p, seed });
}

/** Sum over all elements (`[]`), down the rows (`[cols]`, axis 0) or across columns (`[rows]`, axis 1). */
export function sum(x: Tensor, axis?: 0 | 1): Tensor {
  const backend = sameBackend("sum", [x]);
  requireFloat("sum", x);
  const [rows, cols] = as2d(x.shape);
  const ax: ReduceAxis = axis === undefined ? "all" : axis === 0 ? "rows" : "cols";
  if (axis !== undefined) require2d("sum", x);
  const shape = ax === "all" ? [] : ax === "rows" ? [cols] : [rows];
  const s = backend.reduceSum(x.storage, { rows, cols, axis: ax });
  return record(new Tensor(s, shape), "reduceSum", [x], { axis: ax });
}

/** Mean over all elements or along an axis (see `sum`). */
export function mean(x: Tensor, axis?: 0 | 1): Tensor {
  const [rows, cols] = as2d(x.shape);
  const n = axis === undefined ? rows * cols : axis === 0 ? rows : cols;
  return scale(sum(x, axis), 1 / n);
}

// ---- indexing -------------------------------------------------------------------

/** Rows of `x` at `index` (`[index.length, cols]`); the gradient is a segment sum. */
export function gather(x: Tensor, index: Index): Tensor {
  const backend = sameBackend("gather", [x]);
  requireFloat("gather", x);
  const [rows, cols] = require2d("gather", x);
  if (index.range !== rows) {
    fail("gather", `index addresses ${index.range} rows but the tensor has ${rows}`);
  }
  const s = backend.gather(x.storage, index.storage(backend), { srcRows: rows, cols });
  return record(new Tensor(s, [index.length, cols]), "gather", [x], { index });
}

/** Embedding lookup: rows of `weight` for each code (the same op as `gather`). */
export const embedding = (weight: Tensor, codes: Index): Tensor => gather(weight, codes);

/** Columns `[start, start+len)` of a 2-D tensor. */
export function sliceCols(x: Tensor, start: number, len: number): Tensor {
  const backend = sameBackend("sliceCols", [x]);
  requireFloat("sliceCols", x);
  const [rows, cols] = require2d("sliceCols", x);
  if (start < 0 || len < 0 || start + len > cols) {
    fail("sliceCols", `columns [${start}, ${start + len}) are outside [0, ${cols})`);
  }
  const s = backend.sliceCols(x.storage, { rows, cols, start, len });
  return record(new Tensor(s, [rows, len]), "sliceCols", [x], { start, len });
}

/** Concatenation of 2-D tensors along columns. */
export function concatCols(parts: readonly Tensor[]): Tensor {
  if (parts.length === 0) fail("concatCols", "needs at least one tensor");
  const backend = sameBackend("concatCols", parts);
  const rows = require2d("concatCols", parts[0])[0];
  const cols = parts.map((p, i) => {
    requireFloat("concatCols", p);
    const [r, c] = require2d("concatCols", p, `part ${i}`);
    if (r !== rows) fail("concatCols", `part ${i} has ${r} rows, part 0 has ${rows}`);
    return c;
  });
  const s = backend.concatCols(parts.map((p) => p.storage), { rows, cols });
  const total = cols.reduce((a, b) => a + b, 0);
  return record(new Tensor(s, [rows, total]), "concatCols", parts, { cols });
}

// ---- segments -------------------------------------------------------------------

/** Reduces the rows of each segment: `[segments.count, cols]`; empty segments give 0. */
export function segmentReduce(x: Tensor, segments: Segments, reduce: SegmentReduce): Tensor {
  const backend = sameBackend("segmentReduce", [x]);
  requireFloat("segmentReduce", x);
  const [rows, cols] = require2d("segmentReduce", x);
  if (segments.rows !== rows) {
    fail("segmentReduce", `segments cover ${segments.rows} rows but the tensor has ${rows}`);
  }
  const { out, argmax } = backend.segmentReduce(x.storage, segments.storage(backend), {
    segments: segments.count,
    cols,
    reduce,
  });
  const saved = argmax ? [new Tensor(argmax, [segments.count, cols])] : [];
  return record(
    new Tensor(out, [segments.count, cols]),
    "segmentReduce",
    [x],
    { segments, reduce },
    saved,
  );
}

/** Sum per segment. */
export const segmentSum = (x: Tensor, s: Segments): Tensor => segmentReduce(x, s, "sum");
/** Mean per segment. */
export const segmentMean = (x: Tensor, s: Segments): Tensor => segmentReduce(x, s, "mean");
/** Max per segment. */
export const segmentMax = (x: Tensor, s: Segments): Tensor => segmentReduce(x, s, "max");

/** Softmax over the rows of each segment, per column (attention over incoming edges). */
export function segmentSoftmax(x: Tensor, segments: Segments): Tensor {
  const backend = sameBackend("segmentSoftmax", [x]);
  requireFloat("segmentSoftmax", x);
  const [rows, cols] = require2d("segmentSoftmax", x);
  if (segments.rows !== rows) {
    fail("segmentSoftmax", `segments cover ${segments.rows} rows but the tensor has ${rows}`);
  }
  const s = backend.segmentSoftmax(x.storage, segments.storage(backend), {
    segments: segments.count,
    rows,
    cols,
  });
  return record(new Tensor(s, [rows, cols]), "segmentSoftmax", [x], { segments });
}

// ---- normalisation ----------------------------------------------------------------

/** Layer norm over each row with per-column scale `gamma` and shift `beta` (`[cols]`). */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  const backend = sameBackend("layerNorm", [x, gamma, beta]);
  requireFloat("layerNorm", x);
  const [rows, cols] = require2d("layerNorm", x);
  for (const [t, name] of [[gamma, "gamma"], [beta, "beta"]] as const) {
    requireFloat("layerNorm", t);
    if (t.size !== cols) fail("layerNorm", `${name} has ${t.size} elements, expected ${cols}`);
  }
  const r = backend.layerNorm(x.storage, gamma.storage, beta.storage, { rows, cols, eps });
  const saved = [new Tensor(r.mean, [rows]), new Tensor(r.rstd, [rows])];
  return record(new Tensor(r.y, [rows, cols]), "layerNorm", [x, gamma, beta], {}, saved);
}

// ---- losses -----------------------------------------------------------------------

function lossOp(kind: LossKind, pred: Tensor, target: Tensor): Tensor {
  const backend = sameBackend(kind, [pred, target]);
  requireFloat(kind, pred);
  const [rows, cols] = as2d(pred.shape.length === 1 ? [pred.shape[0], 1] : pred.shape);
  if (kind === "cross_entropy") {
    require2d(kind, pred, "logits");
    if (target.dtype !== "i32") fail(kind, `targets must be i32 class ids, got ${target.dtype}`);
    if (target.size !== rows) fail(kind, `${target.size} targets for ${rows} rows`);
  } else {
    requireFloat(kind, target);
    if (target.size !== pred.size) {
      fail(kind, `prediction [${pred.shape}] and target [${target.shape}] differ in size`);
    }
  }
  const s = backend.loss(kind, pred.storage, target.storage, { rows, cols });
  // The target is an input too: regression targets may come from the model.
  return record(new Tensor(s, []), "loss", [pred, target], { kind });
}

/** Mean binary cross-entropy on logits (numerically stable). */
export const bceWithLogits = (logits: Tensor, target: Tensor): Tensor =>
  lossOp("bce_logits", logits, target);
/** Mean squared error. */
export const mseLoss = (pred: Tensor, target: Tensor): Tensor => lossOp("mse", pred, target);
/** Mean absolute error. */
export const l1Loss = (pred: Tensor, target: Tensor): Tensor => lossOp("l1", pred, target);
/** Mean cross-entropy of `[rows, classes]` logits against i32 class ids. */
export const crossEntropy = (logits: Tensor, classes: Tensor): Tensor =>
  lossOp("cross_entropy", logits, classes);
