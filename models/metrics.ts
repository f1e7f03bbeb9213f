/**
 * Evaluation metrics per task type, as pure functions on typed arrays (float64
 * arithmetic whatever the input element type).
 *
 * - binary: `auroc`, `averagePrecision`, `accuracy`, `f1` on scores or probabilities;
 * - regression: `mae`, `rmse`, `r2`;
 * - multiclass: `multiclassAccuracy`, `macroF1` on a row-major `rows × classes` score matrix
 *   (logits or probabilities: only the arg max of each row matters);
 * - link prediction: `mapAtK`, `precisionAtK`, `recallAtK` on per-entity ranked target lists
 *   against per-entity true target sets, both as CSR.
 *
 * `evaluate` returns a task's whole set; `primaryMetric` and `isBetter` pick the
 * model-selection metric and its direction.
 *
 * Conventions, the same in every function:
 * - **Errors** (thrown, `fanout: <metric>: ...`): inputs of different lengths, empty inputs,
 *   NaN anywhere in predictions or truth, binary labels other than 0 and 1, class ids that are
 *   not integers in `[0, classes)`, malformed CSR.
 * - **Undefined values are NaN**, not errors, so one degenerate split does not abort a run:
 *   AUROC when the labels hold only one class (no positives or no negatives), average
 *   precision when there are no positives, link metrics when no entity has a true target.
 * - **Zero divisions that sklearn resolves** are resolved as sklearn does: F1 with no predicted
 *   and no true positives is 0; R² with constant truth is 1 for perfect predictions, else 0.
 *
 * @module
 */

import type { TaskType } from "../store/types.ts";

/** Any indexable numeric array: typed arrays or plain number arrays. */
export type NumArray = ArrayLike<number>;

/** Per-entity target lists in CSR form: row `r` holds `targets[offsets[r] .. offsets[r + 1])`
 * (the shape of `TrainingTable.link`, which can be passed as is). */
export interface Csr {
  /** `rows + 1` non-decreasing offsets, starting at 0 and ending at `targets.length`. */
  offsets: NumArray;
  /** The concatenated row lists (target ids, non-negative integers). */
  targets: NumArray;
}

/** The k of link metrics when none is given (RelBench's usual cut-off). */
export const DEFAULT_K = 10;

function fail(metric: string, msg: string): never {
  throw new Error(`fanout: ${metric}: ${msg}`);
}

function checkPair(metric: string, a: NumArray, b: NumArray, aName: string, bName: string) {
  if (a.length !== b.length) fail(metric, `${a.length} ${aName} for ${b.length} ${bName}`);
  if (a.length === 0) fail(metric, `no ${aName} (empty input)`);
}

function checkNoNaN(metric: string, a: NumArray, name: string): void {
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i])) fail(metric, `${name}[${i}] is NaN`);
  }
}

/** Number of positives; throws unless every label is exactly 0 or 1. */
function countPositives(metric: string, labels: NumArray): number {
  let pos = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y === 1) pos++;
    else if (y !== 0) fail(metric, `labels must be 0 or 1, labels[${i}] is ${y}`);
  }
  return pos;
}

/** Indices ordered by score (descending when `desc`); order within ties is irrelevant here. */
function orderBy(scores: NumArray, desc: boolean): Uint32Array {
  const order = new Uint32Array(scores.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  const sign = desc ? -1 : 1;
  return order.sort((a, b) => {
    const sa = scores[a], sb = scores[b];
    return sa < sb ? -sign : sa > sb ? sign : 0;
  });
}

function checkBinary(metric: string, scores: NumArray, labels: NumArray): number {
  checkPair(metric, scores, labels, "scores", "labels");
  checkNoNaN(metric, scores, "scores");
  return countPositives(metric, labels);
}

// ---- binary ------------------------------------------------------------------------

/**
 * Area under the ROC curve, exact: the Mann–Whitney U statistic of the positives' scores over
 * the negatives' divided by `n₊·n₋`, ties counted ½ (average ranks). O(n log n).
 * NaN when the labels hold only one class.
 */
export function auroc(scores: NumArray, labels: NumArray): number {
  const pos = checkBinary("auroc", scores, labels);
  const n = labels.length, neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  const order = orderBy(scores, false);
  let rankSumPos = 0;
  for (let i = 0; i < n;) {
    const s = scores[order[i]];
    let j = i, p = 0;
    while (j < n && scores[order[j]] === s) p += labels[order[j++]];
    rankSumPos += p * (i + 1 + j) / 2; // ranks i+1 .. j share their average
    i = j;
  }
  return (rankSumPos - pos * (pos + 1) / 2) / (pos * neg);
}

/**
 * Average precision as sklearn defines it: `Σₙ (Rₙ − Rₙ₋₁)·Pₙ` over the distinct score
 * thresholds taken in descending order, tied scores entering together (no interpolation).
 * NaN when there are no positives.
 */
export function averagePrecision(scores: NumArray, labels: NumArray): number {
  const pos = checkBinary("averagePrecision", scores, labels);
  if (pos === 0) return NaN;
  const n = labels.length;
  const order = orderBy(scores, true);
  let tp = 0, seen = 0, prevRecall = 0, ap = 0;
  for (let i = 0; i < n;) {
    const s = scores[order[i]];
    while (i < n && scores[order[i]] === s) {
      tp += labels[order[i++]];
      seen++;
    }
    const recall = tp / pos;
    ap += (recall - prevRecall) * (tp / seen);
    prevRecall = recall;
  }
  return ap;
}

/** Confusion counts of `probs[i] >= threshold` against 0/1 labels. */
function confusion(metric: string, probs: NumArray, labels: NumArray, threshold: number) {
  checkBinary(metric, probs, labels);
  if (Number.isNaN(threshold)) fail(metric, "threshold is NaN");
  let tp = 0, fp = 0, fn = 0, tn = 0;
  for (let i = 0; i < labels.length; i++) {
    const hit = probs[i] >= threshold;
    if (labels[i] === 1) hit ? tp++ : fn++;
    else hit ? fp++ : tn++;
  }
  return { tp, fp, fn, tn };
}

/**
 * Fraction of rows whose predicted class (`probs[i] >= threshold` → 1) equals the label.
 * `threshold` is 0.5 for probabilities; pass 0 to score logits directly.
 */
export function accuracy(probs: NumArray, labels: NumArray, threshold = 0.5): number {
  const c = confusion("accuracy", probs, labels, threshold);
  return (c.tp + c.tn) / labels.length;
}

/**
 * F1 of the positive class, `2·TP / (2·TP + FP + FN)`, predicting 1 where
 * `probs[i] >= threshold` (0.5 for probabilities, 0 for logits). 0 when there are neither
 * true nor predicted positives (sklearn's `zero_division=0`).
 */
export function f1(probs: NumArray, labels: NumArray, threshold = 0.5): number {
  const c = confusion("f1", probs, labels, threshold);
  const denom = 2 * c.tp + c.fp + c.fn;
  return denom === 0 ? 0 : 2 * c.tp / denom;
}

// ---- regression ----------------------------------------------------------------------

function checkRegression(metric: string, preds: NumArray, truth: NumArray): void {
  checkPair(metric, preds, truth, "predictions", "targets");
  checkNoNaN(metric, preds, "predictions");
  checkNoNaN(metric, truth, "targets");
}

/** Mean absolute error. */
export function mae(preds: NumArray, truth: NumArray): number {
  checkRegression("mae", preds, truth);
  let s = 0;
  for (let i = 0; i < preds.length; i++) s += Math.abs(preds[i] - truth[i]);
  return s / preds.length;
}

/** Root mean squared error. */
export function rmse(preds: NumArray, truth: NumArray): number {
  checkRegression("rmse", preds, truth);
  let s = 0;
  for (let i = 0; i < preds.length; i++) s += (preds[i] - truth[i]) ** 2;
  return Math.sqrt(s / preds.length);
}

/**
 * Coefficient of determination `1 − SS_res / SS_tot` (SS_tot about the mean of `truth`):
 * 1 for perfect predictions, 0 for predicting the mean, negative when worse. Constant truth
 * (SS_tot = 0) gives 1 if the predictions are perfect, else 0, as sklearn does.
 */
export function r2(preds: NumArray, truth: NumArray): number {
  checkRegression("r2", preds, truth);
  const n = truth.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += truth[i];
  mean /= n;
  let res = 0, tot = 0;
  for (let i = 0; i < n; i++) {
    res += (truth[i] - preds[i]) ** 2;
    tot += (truth[i] - mean) ** 2;
  }
  if (tot === 0) return res === 0 ? 1 : 0;
  return 1 - res / tot;
}

// ---- multiclass ----------------------------------------------------------------------

/**
 * Arg max of each row of a row-major `rows × classes` score matrix; ties go to the lowest
 * class id. Throws on NaN scores or a length that is not a multiple of `classes`.
 */
export function argmaxRows(scores: NumArray, classes: number): Int32Array {
  if (!Number.isInteger(classes) || classes < 1) {
    fail("argmaxRows", `classes must be a positive integer, got ${classes}`);
  }
  if (scores.length % classes !== 0) {
    fail("argmaxRows", `${scores.length} scores is not a multiple of ${classes} classes`);
  }
  checkNoNaN("argmaxRows", scores, "scores");
  const rows = scores.length / classes;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * classes;
    let best = 0, bestScore = scores[base];
    for (let c = 1; c < classes; c++) {
      if (scores[base + c] > bestScore) [best, bestScore] = [c, scores[base + c]];
    }
    out[r] = best;
  }
  return out;
}

function predictClasses(metric: string, scores: NumArray, classes: number, labels: NumArray) {
  const pred = argmaxRows(scores, classes);
  checkPair(metric, pred, labels, "score rows", "labels");
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) {
      fail(metric, `labels[${i}] is ${y}, not a class id in [0, ${classes})`);
    }
  }
  return pred;
}

/** Fraction of rows whose arg max class (of `rows × classes` scores) equals the label. */
export function multiclassAccuracy(scores: NumArray, classes: number, labels: NumArray): number {
  const pred = predictClasses("multiclassAccuracy", scores, classes, labels);
  let hits = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) hits++;
  return hits / pred.length;
}

/**
 * Unweighted mean over classes of the per-class F1 `2·TP / (2·TP + FP + FN)` of the arg max
 * predictions. Like sklearn's `f1_score(average="macro")`, the mean runs over the classes
 * present in the labels or the predictions; classes in neither are left out.
 */
export function macroF1(scores: NumArray, classes: number, labels: NumArray): number {
  const pred = predictClasses("macroF1", scores, classes, labels);
  const tp = new Float64Array(classes), fp = new Float64Array(classes);
  const fn = new Float64Array(classes);
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i], y = labels[i];
    if (p === y) tp[p]++;
    else {
      fp[p]++;
      fn[y]++;
    }
  }
  let sum = 0, present = 0;
  for (let c = 0; c < classes; c++) {
    const denom = 2 * tp[c] + fp[c] + fn[c];
    if (denom === 0) continue;
    sum += 2 * tp[c] / denom;
    present++;
  }
  return sum / present;
}

// ---- link prediction -------------------------------------------------------------------

function checkCsr(metric: string, csr: Csr, name: string): number {
  const { offsets, targets: values } = csr;
  if (offsets.length < 1 || offsets[0] !== 0) fail(metric, `${name}.offsets must start at 0`);
  const rows = offsets.length - 1;
  for (let r = 0; r < rows; r++) {
    if (!(offsets[r + 1] >= offsets[r])) fail(metric, `${name}.offsets decrease at row ${r}`);
  }
  if (offsets[rows] !== values.length) {
    fail(metric, `${name}.offsets end at ${offsets[rows]}, but there are ${values.length} targets`);
  }
  let max = -1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isInteger(v) || v < 0) fail(metric, `${name}.targets[${i}] is ${v}, not an id`);
    if (v > max) max = v;
  }
  return max;
}

/** Link metrics at one cut-off, averaged over the entities that have a true target. */
export interface LinkMetrics {
  /** Mean average precision at k. */
  map: number;
  /** Mean precision at k. */
  precision: number;
  /** Mean recall at k. */
  recall: number;
  /** Entities averaged over (those with at least one true target). */
  entities: number;
}

/**
 * MAP@k, precision@k and recall@k in one pass. Row `r` of `ranked` lists entity r's predicted
 * targets best first; row `r` of `truth` its true targets (a set: duplicates count once).
 * Per entity with `t ≥ 1` true targets and hits `relᵢ` among its first k predictions:
 * `AP@k = Σᵢ≤k Precision@i · relᵢ / min(k, t)`, `precision@k = hits / k` (a list shorter than
 * k still divides by k), `recall@k = hits / t`. A target repeated in a ranked list counts
 * once. Entities without true targets are skipped; NaN when none has any.
 */
export function linkMetrics(ranked: Csr, truth: Csr, k = DEFAULT_K): LinkMetrics {
  const metric = "linkMetrics";
  if (!Number.isInteger(k) || k < 1) fail(metric, `k must be a positive integer, got ${k}`);
  const maxRanked = checkCsr(metric, ranked, "ranked");
  const maxTruth = checkCsr(metric, truth, "truth");
  const rows = truth.offsets.length - 1;
  if (ranked.offsets.length - 1 !== rows) {
    fail(metric, `${ranked.offsets.length - 1} ranked rows for ${rows} truth rows`);
  }
  // stamp[id] = r + 1 while id is an unmatched true target of row r, -(r + 1) once matched.
  const stamp = new Int32Array(Math.max(maxRanked, maxTruth) + 1);
  let sumAp = 0, sumP = 0, sumR = 0, entities = 0;
  for (let r = 0; r < rows; r++) {
    const mark = r + 1;
    let t = 0;
    for (let i = truth.offsets[r]; i < truth.offsets[r + 1]; i++) {
      const id = truth.targets[i];
      if (stamp[id] !== mark) [stamp[id], t] = [mark, t + 1];
    }
    if (t === 0) continue;
    const start = ranked.offsets[r];
    const end = Math.min(ranked.offsets[r + 1], start + k);
    let hits = 0, ap = 0;
    for (let i = start; i < end; i++) {
      const id = ranked.targets[i];
      if (stamp[id] !== mark) continue;
      stamp[id] = -mark;
      hits++;
      ap += hits / (i - start + 1);
    }
    sumAp += ap / Math.min(k, t);
    sumP += hits / k;
    sumR += hits / t;
    entities++;
  }
  if (entities === 0) return { map: NaN, precision: NaN, recall: NaN, entities };
  return { map: sumAp / entities, precision: sumP / entities, recall: sumR / entities, entities };
}

/** Mean average precision at k (see `linkMetrics` for the definition). */
export function mapAtK(ranked: Csr, truth: Csr, k = DEFAULT_K): number {
  return linkMetrics(ranked, truth, k).map;
}

/** Mean over entities of (true targets among the first k predictions) / k. */
export function precisionAtK(ranked: Csr, truth: Csr, k = DEFAULT_K): number {
  return linkMetrics(ranked, truth, k).precision;
}

/** Mean over entities of (true targets among the first k predictions) / (true targets). */
export function recallAtK(ranked: Csr, truth: Csr, k = DEFAULT_K): number {
  return linkMetrics(ranked, truth, k).recall;
}

// ---- per task --------------------------------------------------------------------------

/** Options of `evaluate`. */
export interface EvaluateOptions {
  /** Binary: predict 1 where the prediction is at or above this (default 0.5: probabilities). */
  threshold?: number;
  /** Multiclass: columns of the score matrix (required). */
  classes?: number;
  /** Link: the cut-off k (default `DEFAULT_K`). */
  k?: number;
}

/**
 * The task's metrics by name:
 * - binary (`preds` probabilities, `truth` 0/1): `auroc`, `ap`, `accuracy`, `f1`;
 * - regression (`preds` values): `mae`, `rmse`, `r2`;
 * - multiclass (`preds` a `rows × classes` score matrix, `truth` class ids): `accuracy`,
 *   `macro_f1`;
 * - link (`preds` ranked target lists, `truth` true target sets, both CSR): `map@k`,
 *   `precision@k`, `recall@k` with k written out (`map@10`).
 */
export function evaluate(
  task: "binary" | "regression",
  preds: NumArray,
  truth: NumArray,
  opts?: EvaluateOptions,
): Record<string, number>;
/** Multiclass metrics of a score matrix (`opts.classes` required). */
export function evaluate(
  task: "multiclass",
  preds: NumArray,
  truth: NumArray,
  opts: EvaluateOptions & { classes: number },
): Record<string, number>;
/** Link metrics of ranked target lists. */
export function evaluate(
  task: "link",
  preds: Csr,
  truth: Csr,
  opts?: EvaluateOptions,
): Record<string, number>;
/** Any task, checked at run time. */
export function evaluate(
  task: TaskType,
  preds: NumArray | Csr,
  truth: NumArray | Csr,
  opts?: EvaluateOptions,
): Record<string, number>;
export function evaluate(
  task: TaskType,
  preds: NumArray | Csr,
  truth: NumArray | Csr,
  opts: EvaluateOptions = {},
): Record<string, number> {
  const isCsr = (x: NumArray | Csr): x is Csr => "offsets" in x && "targets" in x;
  if (task === "link") {
    if (!isCsr(preds) || !isCsr(truth)) fail("evaluate", "link predictions and truth are CSR");
    const k = opts.k ?? DEFAULT_K;
    const m = linkMetrics(preds, truth, k);
    return { [`map@${k}`]: m.map, [`precision@${k}`]: m.precision, [`recall@${k}`]: m.recall };
  }
  if (isCsr(preds) || isCsr(truth)) fail("evaluate", `${task} predictions and truth are arrays`);
  switch (task) {
    case "binary": {
      const t = opts.threshold ?? 0.5;
      return {
        auroc: auroc(preds, truth),
        ap: averagePrecision(preds, truth),
        accuracy: accuracy(preds, truth, t),
        f1: f1(preds, truth, t),
      };
    }
    case "regression":
      return { mae: mae(preds, truth), rmse: rmse(preds, truth), r2: r2(preds, truth) };
    case "multiclass": {
      const c = opts.classes;
      if (c === undefined) fail("evaluate", "multiclass needs opts.classes");
      return { accuracy: multiclassAccuracy(preds, c, truth), macro_f1: macroF1(preds, c, truth) };
    }
    default:
      return fail("evaluate", `unknown task "${task as string}"`);
  }
}

/**
 * The metric models are selected on: `auroc` (binary), `mae` (regression, lower is better),
 * `accuracy` (multiclass), `map@k` with k written out (link).
 */
export function primaryMetric(task: TaskType, k = DEFAULT_K): string {
  switch (task) {
    case "binary":
      return "auroc";
    case "regression":
      return "mae";
    case "multiclass":
      return "accuracy";
    case "link":
      return `map@${k}`;
    default:
      return fail("primaryMetric", `unknown task "${task as string}"`);
  }
}

/** Whether a smaller primary metric is better for the task (regression only). */
export function lowerIsBetter(task: TaskType): boolean {
  primaryMetric(task);
  return task === "regression";
}

/**
 * Whether primary-metric value `a` is strictly better than `b` for the task. A number beats
 * NaN (an undefined metric); NaN beats nothing.
 */
export function isBetter(task: TaskType, a: number, b: number): boolean {
  if (Number.isNaN(a)) return false;
  if (Number.isNaN(b)) return true;
  return lowerIsBetter(task) ? a < b : a > b;
}
