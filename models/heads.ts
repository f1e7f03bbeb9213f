/**
 * What follows from the task type between the model's last layer and its metrics: the
 * output width, the loss (mapped onto core ops), label preparation, and turning raw outputs
 * into the predictions metrics take.
 *
 * - binary: output width 1 (a logit); loss `bceWithLogits`; labels Float32Array 0/1;
 *   predictions are sigmoid probabilities (`sigmoidProbs`).
 * - regression: width 1; loss `l1Loss` (default) or `mseLoss`; labels Float32Array and their
 *   training range; predictions clamped to that range (`clampToRange`).
 * - multiclass: width = classes (logits); loss `crossEntropy`; labels Int32Array class ids;
 *   predictions are the logits (metrics take the arg max) or `softmaxRows` probabilities.
 * - link: width = embedding width (entity embeddings scored against target embeddings by dot
 *   product); loss `bceWithLogits` on entity–target pair scores (true pairs 1, sampled
 *   negatives 0); labels CSR target sets (`selectLinkRows`); predictions the top-k targets
 *   per entity (`rankTopK`).
 *
 * @module
 */

import type { TaskType } from "../store/types.ts";
import type { Tensor } from "../core/tensor.ts";
import { bceWithLogits, crossEntropy, l1Loss, mseLoss } from "../core/ops.ts";
import type { Csr, NumArray } from "./metrics.ts";

function fail(fn: string, msg: string): never {
  throw new Error(`fanout: ${fn}: ${msg}`);
}

const TASKS: readonly TaskType[] = ["binary", "regression", "multiclass", "link"];

function checkTask(fn: string, task: TaskType): void {
  if (!TASKS.includes(task)) fail(fn, `unknown task "${task}"; valid: ${TASKS.join(", ")}`);
}

// ---- output width and loss ------------------------------------------------------------

/** Options of `outputWidth`. */
export interface OutputWidthOptions {
  /** Multiclass: number of classes (at least 2). */
  classes?: number;
  /** Link: width of the entity embedding scored against target embeddings by dot product. */
  embeddingDim?: number;
}

/**
 * Columns of the head's output: 1 for binary and regression (a logit, a value), the number
 * of classes for multiclass (logits), and the embedding width for link prediction, where an
 * entity's output is scored against each target's embedding by dot product.
 */
export function outputWidth(task: TaskType, opts: OutputWidthOptions = {}): number {
  checkTask("outputWidth", task);
  if (task === "multiclass") {
    const c = opts.classes;
    if (c === undefined || !Number.isInteger(c) || c < 2) {
      fail("outputWidth", `multiclass needs classes >= 2, got ${c}`);
    }
    return c;
  }
  if (task === "link") {
    const d = opts.embeddingDim;
    if (d === undefined || !Number.isInteger(d) || d < 1) {
      fail("outputWidth", `link needs a positive embeddingDim, got ${d}`);
    }
    return d;
  }
  return 1;
}

/** Loss of a regression task. */
export type RegressionLoss = "l1" | "mse";

/** A loss: mean over rows of `[rows, width]` predictions against targets, a scalar tensor. */
export type LossFn = (pred: Tensor, target: Tensor) => Tensor;

/** The loss of a task and the target tensor it expects. */
export interface LossSpec {
  /** Name, as logged. */
  name: "bce_logits" | "l1" | "mse" | "cross_entropy";
  /** The core op. */
  fn: LossFn;
  /** Element type of the target tensor: f32 values/0-1 labels, or i32 class ids. */
  targetDtype: "f32" | "i32";
}

/**
 * The loss for a task: binary cross-entropy on logits (binary; link on entity–target pair
 * scores against 1 for true pairs and 0 for sampled negatives), L1 or MSE (regression,
 * `regressionLoss`, default L1: the primary metric is MAE), cross-entropy on logits against
 * class ids (multiclass).
 */
export function lossFor(task: TaskType, regressionLoss: RegressionLoss = "l1"): LossSpec {
  checkTask("lossFor", task);
  switch (task) {
    case "binary":
    case "link":
      return { name: "bce_logits", fn: bceWithLogits, targetDtype: "f32" };
    case "multiclass":
      return { name: "cross_entropy", fn: crossEntropy, targetDtype: "i32" };
    case "regression":
      if (regressionLoss === "l1") return { name: "l1", fn: l1Loss, targetDtype: "f32" };
      if (regressionLoss === "mse") return { name: "mse", fn: mseLoss, targetDtype: "f32" };
      return fail("lossFor", `regression loss must be "l1" or "mse", got "${regressionLoss}"`);
  }
}

// ---- labels -----------------------------------------------------------------------------

/** Labels ready for a loss, per task (link targets stay CSR: see `selectLinkRows`). */
export type PreparedLabels =
  | {
    /** Binary task. */
    task: "binary";
    /** 0/1 labels. */
    targets: Float32Array;
    /** Fraction of ones. */
    positiveRate: number;
  }
  | {
    /** Regression task. */
    task: "regression";
    /** Target values. */
    targets: Float32Array;
    /** Smallest target (predictions are clamped to [min, max]). */
    min: number;
    /** Largest target. */
    max: number;
    /** Mean target. */
    mean: number;
  }
  | {
    /** Multiclass task. */
    task: "multiclass";
    /** Class ids. */
    targets: Int32Array;
    /** Number of classes. */
    classes: number;
    /** Rows per class. */
    counts: Float64Array;
  };

/** Options of `prepareLabels`. */
export interface PrepareLabelsOptions {
  /** Take only these rows of `labels`, in this order (e.g. a split's rows); default all. */
  rows?: NumArray;
  /** Multiclass: number of classes (e.g. `TrainingTable.classes.length`); required. */
  classes?: number;
}

/**
 * Checks and converts a training table's labels (`TrainingTable.label`) for the task's loss:
 * binary labels must be 0 or 1, regression targets finite, multiclass labels integer class
 * ids below `opts.classes`. Throws naming the first bad row.
 */
export function prepareLabels<T extends Exclude<TaskType, "link">>(
  task: T,
  labels: NumArray,
  opts?: PrepareLabelsOptions,
): Extract<PreparedLabels, { task: T }>;
export function prepareLabels(
  task: Exclude<TaskType, "link">,
  labels: NumArray,
  opts: PrepareLabelsOptions = {},
): PreparedLabels {
  const fn = "prepareLabels";
  if ((task as TaskType) === "link") fail(fn, "link labels are target sets: use selectLinkRows");
  checkTask(fn, task);
  const rows = opts.rows;
  const n = rows ? rows.length : labels.length;
  const at = (i: number): number => {
    if (!rows) return labels[i];
    const r = rows[i];
    if (!Number.isInteger(r) || r < 0 || r >= labels.length) {
      fail(fn, `rows[${i}] is ${r}, outside [0, ${labels.length})`);
    }
    return labels[r];
  };
  if (n === 0) fail(fn, "no labels");
  if (task === "multiclass") {
    const c = opts.classes;
    if (c === undefined || !Number.isInteger(c) || c < 2) {
      fail(fn, `multiclass needs classes >= 2, got ${c}`);
    }
    const targets = new Int32Array(n), counts = new Float64Array(c);
    for (let i = 0; i < n; i++) {
      const y = at(i);
      if (!Number.isInteger(y) || y < 0 || y >= c) {
        fail(fn, `label ${i} is ${y}, not a class id in [0, ${c})`);
      }
      targets[i] = y;
      counts[y]++;
    }
    return { task, targets, classes: c, counts };
  }
  const targets = new Float32Array(n);
  if (task === "binary") {
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const y = at(i);
      if (y !== 0 && y !== 1) fail(fn, `binary label ${i} is ${y}, not 0 or 1`);
      targets[i] = y;
      pos += y;
    }
    return { task, targets, positiveRate: pos / n };
  }
  let min = Infinity, max = -Infinity, sum = 0;
  for (let i = 0; i < n; i++) {
    const y = at(i);
    if (!Number.isFinite(y)) fail(fn, `regression target ${i} is ${y}`);
    targets[i] = y;
    if (y < min) min = y;
    if (y > max) max = y;
    sum += y;
  }
  return { task, targets, min, max, mean: sum / n };
}

/** Smallest and largest finite value of regression targets (the range predictions keep to). */
export function regressionRange(targets: NumArray): { min: number; max: number } {
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < targets.length; i++) {
    const y = targets[i];
    if (!Number.isFinite(y)) fail("regressionRange", `target ${i} is ${y}`);
    if (y < min) min = y;
    if (y > max) max = y;
  }
  if (targets.length === 0) fail("regressionRange", "no targets");
  return { min, max };
}

/**
 * The CSR target sets of the given rows of a link training table (`TrainingTable.link`),
 * in the order of `rows`, offsets rebased to 0.
 */
export function selectLinkRows(
  link: Csr,
  rows: NumArray,
): { offsets: Int32Array; targets: Int32Array } {
  const n = link.offsets.length - 1;
  const offsets = new Int32Array(rows.length + 1);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (!Number.isInteger(r) || r < 0 || r >= n) {
      fail("selectLinkRows", `rows[${i}] is ${r}, outside [0, ${n})`);
    }
    offsets[i + 1] = offsets[i] + (link.offsets[r + 1] - link.offsets[r]);
  }
  const targets = new Int32Array(offsets[rows.length]);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    for (let j = link.offsets[r], o = offsets[i]; j < link.offsets[r + 1]; j++, o++) {
      targets[o] = link.targets[j];
    }
  }
  return { offsets, targets };
}

// ---- predictions ------------------------------------------------------------------------

/**
 * Regression predictions clamped to `[min, max]` (the training range), as a new Float32Array
 * (or into `out`, which may be `preds` itself). NaN predictions stay NaN, so metrics reject
 * them rather than hide them.
 */
export function clampToRange(
  preds: NumArray,
  min: number,
  max: number,
  out: Float32Array = new Float32Array(preds.length),
): Float32Array {
  if (!(min <= max)) fail("clampToRange", `empty range [${min}, ${max}]`);
  if (out.length !== preds.length) {
    fail("clampToRange", `out has ${out.length} slots for ${preds.length} predictions`);
  }
  for (let i = 0; i < preds.length; i++) {
    const p = preds[i];
    out[i] = p < min ? min : p > max ? max : p;
  }
  return out;
}

/** Binary logits to probabilities, `1 / (1 + e^−x)`, computed without overflow. */
export function sigmoidProbs(logits: NumArray): Float32Array {
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i];
    out[i] = x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
  }
  return out;
}

/** Row-wise softmax of a row-major `rows × classes` logit matrix (max-subtracted). */
export function softmaxRows(logits: NumArray, classes: number): Float32Array {
  if (!Number.isInteger(classes) || classes < 1 || logits.length % classes !== 0) {
    fail("softmaxRows", `${logits.length} logits do not make rows of ${classes} classes`);
  }
  const out = new Float32Array(logits.length);
  for (let base = 0; base < logits.length; base += classes) {
    let m = -Infinity;
    for (let c = 0; c < classes; c++) m = Math.max(m, logits[base + c]);
    let s = 0;
    for (let c = 0; c < classes; c++) s += Math.exp(logits[base + c] - m);
    for (let c = 0; c < classes; c++) out[base + c] = Math.exp(logits[base + c] - m) / s;
  }
  return out;
}

/**
 * Each row's k best targets, best first, from a row-major `rows × targets` matrix of
 * entity–target scores: the ranked lists the link metrics take. Ties go to the lower target
 * id; NaN scores are never ranked. O(rows · targets · log k) with a heap per row.
 */
export function rankTopK(
  scores: NumArray,
  targets: number,
  k: number,
): { offsets: Int32Array; targets: Int32Array } {
  if (!Number.isInteger(targets) || targets < 1 || scores.length % targets !== 0) {
    fail("rankTopK", `${scores.length} scores do not make rows of ${targets} targets`);
  }
  if (!Number.isInteger(k) || k < 1) fail("rankTopK", `k must be a positive integer, got ${k}`);
  const rows = scores.length / targets;
  const keep = Math.min(k, targets);
  const offsets = new Int32Array(rows + 1);
  const out = new Int32Array(rows * keep);
  const heap = new Int32Array(keep); // min-heap of target ids, worst on top
  let o = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * targets;
    // a is worse than b: lower score, or equal score and higher id.
    const worse = (a: number, b: number) => {
      const sa = scores[base + a], sb = scores[base + b];
      return sa < sb || (sa === sb && a > b);
    };
    const siftDown = (size: number, i: number) => {
      for (;;) {
        const l = 2 * i + 1, rr = l + 1;
        let m = i;
        if (l < size && worse(heap[l], heap[m])) m = l;
        if (rr < size && worse(heap[rr], heap[m])) m = rr;
        if (m === i) return;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    };
    let size = 0;
    for (let t = 0; t < targets; t++) {
      if (Number.isNaN(scores[base + t])) continue;
      if (size < keep) {
        let i = size++;
        heap[i] = t;
        while (i > 0) {
          const p = (i - 1) >> 1;
          if (!worse(heap[i], heap[p])) break;
          [heap[i], heap[p]] = [heap[p], heap[i]];
          i = p;
        }
      } else if (worse(heap[0], t)) {
        heap[0] = t;
        siftDown(size, 0);
      }
    }
    // Pop worst first into the back of the row.
    for (let end = size; end > 0; end--) {
      out[o + end - 1] = heap[0];
      heap[0] = heap[end - 1];
      siftDown(end - 1, 0);
    }
    o += size;
    offsets[r + 1] = o;
  }
  return { offsets, targets: out.slice(0, o) };
}
