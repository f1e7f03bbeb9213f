import fc from "fast-check";
import assert from "node:assert/strict";
import {
  accuracy,
  argmaxRows,
  auroc,
  averagePrecision,
  evaluate,
  f1,
  isBetter,
  linkMetrics,
  macroF1,
  mae,
  mapAtK,
  multiclassAccuracy,
  precisionAtK,
  primaryMetric,
  r2,
  recallAtK,
  rmse,
} from "./metrics.ts";

function close(actual: number, expected: number, tol = 1e-12): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} != ${expected}`);
}

// ---- binary -------------------------------------------------------------------------------

Deno.test("auroc and AP: sklearn's doc example", () => {
  const y = [0, 0, 1, 1], s = [0.1, 0.4, 0.35, 0.8];
  // (pos, neg) pairs: 0.35>0.1 ✓, 0.35<0.4 ✗, 0.8>0.1 ✓, 0.8>0.4 ✓  →  3/4.
  close(auroc(s, y), 0.75);
  // Descending: 0.8(+) R=1/2 P=1 → 1/2;  0.4(−) R stays;  0.35(+) R=1 P=2/3 → 1/2·2/3 = 1/3;
  // 0.1(−) R stays.  AP = 1/2 + 1/3 = 5/6.
  close(averagePrecision(s, y), 5 / 6);
});

Deno.test("auroc and AP: tied scores count half / enter together", () => {
  const y = [1, 0, 1, 0, 1], s = [0.5, 0.5, 0.9, 0.1, 0.5];
  // pos {0.5, 0.9, 0.5} × neg {0.5, 0.1}: 0.5=0.5 → ½, 0.5>0.1 → 1, 0.9 beats both → 2,
  // 0.5=0.5 → ½, 0.5>0.1 → 1.  Sum 5 over 6 pairs.
  close(auroc(Float32Array.from(s), Uint8Array.from(y)), 5 / 6);
  // Groups descending: {0.9: +} R=1/3 P=1/1 → 1/3;  {0.5: +,−,+} R=1 P=3/4 → 2/3·3/4 = 1/2;
  // {0.1: −} R stays.  AP = 1/3 + 1/2 = 5/6.
  close(averagePrecision(s, y), 5 / 6);
  // All scores tied: AUROC ½; AP is one step to R=1 at precision = positive rate 3/5.
  close(auroc([1, 1, 1, 1, 1], y), 0.5);
  close(averagePrecision([1, 1, 1, 1, 1], y), 3 / 5);
});

Deno.test("auroc is NaN with one class, AP NaN without positives; bad input throws", () => {
  assert.ok(Number.isNaN(auroc([0.1, 0.2], [1, 1])));
  assert.ok(Number.isNaN(auroc([0.1, 0.2], [0, 0])));
  assert.ok(Number.isNaN(averagePrecision([0.1, 0.2], [0, 0])));
  close(averagePrecision([0.1, 0.2], [1, 1]), 1);
  assert.throws(() => auroc([0.1, 0.2], [1]), /auroc: 2 scores for 1 labels/);
  assert.throws(() => auroc([0.1, NaN], [1, 0]), /scores\[1\] is NaN/);
  assert.throws(() => averagePrecision([0.1, 0.2], [1, 2]), /labels must be 0 or 1/);
  assert.throws(() => auroc([], []), /empty/);
});

Deno.test("accuracy and f1 at a threshold", () => {
  const y = [0, 1, 0, 1];
  // probs ≥ 0.5 → preds [0, 1, 1, 0]: TP=1 (row 1), FP=1 (row 2), FN=1 (row 3), TN=1 (row 0).
  const probs = [0.2, 0.5, 0.7, 0.4];
  close(accuracy(probs, y), 2 / 4);
  close(f1(probs, y), 2 * 1 / (2 * 1 + 1 + 1)); // 0.5
  // The same predictions from logits at threshold 0.
  const logits = [-1, 0, 2, -0.5];
  close(accuracy(logits, y, 0), 0.5);
  close(f1(logits, y, 0), 0.5);
  // All positive, two found: TP=2, FN=1 → F1 = 4/5, accuracy 2/3.
  close(f1([0.9, 0.8, 0.1], [1, 1, 1]), 4 / 5);
  close(accuracy([0.9, 0.8, 0.1], [1, 1, 1]), 2 / 3);
  // No true and no predicted positives: F1 = 0 (sklearn's zero_division=0), accuracy 1.
  close(f1([0.1, 0.2], [0, 0]), 0);
  close(accuracy([0.1, 0.2], [0, 0]), 1);
});

/** Brute-force AUROC: Mann–Whitney U over all (positive, negative) pairs / (n₊ n₋). */
function bruteAuroc(s: number[], y: number[]): number {
  let u = 0, pairs = 0;
  for (let i = 0; i < s.length; i++) {
    for (let j = 0; j < s.length; j++) {
      if (y[i] !== 1 || y[j] !== 0) continue;
      pairs++;
      u += s[i] > s[j] ? 1 : s[i] === s[j] ? 0.5 : 0;
    }
  }
  return pairs === 0 ? NaN : u / pairs;
}

/** Brute-force AP: Σ over distinct thresholds t of (positives at t / P) · precision(score ≥ t). */
function bruteAp(s: number[], y: number[]): number {
  const P = y.reduce((a, b) => a + b, 0);
  if (P === 0) return NaN;
  let ap = 0;
  for (const t of new Set(s)) {
    let posAt = 0, above = 0, posAbove = 0;
    for (let i = 0; i < s.length; i++) {
      if (s[i] === t) posAt += y[i];
      if (s[i] >= t) [above, posAbove] = [above + 1, posAbove + y[i]];
    }
    ap += (posAt / P) * (posAbove / above);
  }
  return ap;
}

const binaryCase = fc.array(fc.tuple(fc.integer({ min: -4, max: 4 }), fc.constantFrom(0, 1)), {
  minLength: 1,
  maxLength: 40,
}).map((rows) => ({ s: rows.map((r) => r[0] / 2), y: rows.map((r) => r[1]) }));

Deno.test("auroc equals Mann–Whitney U / (n₊ n₋) on random tied inputs", () => {
  fc.assert(
    fc.property(binaryCase, ({ s, y }) => {
      const a = auroc(s, y), b = bruteAuroc(s, y);
      if (Number.isNaN(b)) return Number.isNaN(a);
      close(a, b, 1e-12);
      close(auroc(s.map((v) => -v), y), 1 - b, 1e-12); // reversing the scores mirrors it
      return true;
    }),
    { numRuns: 200 },
  );
});

Deno.test("average precision equals the brute-force definition on random tied inputs", () => {
  fc.assert(
    fc.property(binaryCase, ({ s, y }) => {
      const a = averagePrecision(s, y), b = bruteAp(s, y);
      if (Number.isNaN(b)) return Number.isNaN(a);
      close(a, b, 1e-12);
      return true;
    }),
    { numRuns: 200 },
  );
});

// ---- regression ---------------------------------------------------------------------------

Deno.test("mae, rmse, r2 by hand", () => {
  const preds = [1, 2, 3], truth = [1, 3, 5];
  // |errors| = 0, 1, 2.
  close(mae(preds, truth), 1); // 3/3
  close(rmse(preds, truth), Math.sqrt(5 / 3)); // (0 + 1 + 4)/3
  // mean(truth) = 3, SS_tot = 4 + 0 + 4 = 8, SS_res = 5 → 1 − 5/8.
  close(r2(preds, truth), 0.375);
  close(r2(truth, truth), 1); // perfect
  close(r2([3, 3, 3], truth), 0); // the mean
  close(r2(Float32Array.of(7, 7), Float32Array.of(7, 7)), 1); // constant truth, perfect
  close(r2([6, 8], [7, 7]), 0); // constant truth, imperfect (sklearn)
  assert.throws(() => mae([1], [1, 2]), /mae: 1 predictions for 2 targets/);
  assert.throws(() => rmse([1, NaN], [1, 2]), /predictions\[1\] is NaN/);
  assert.throws(() => r2([1, 2], [NaN, 2]), /targets\[0\] is NaN/);
});

// ---- multiclass ---------------------------------------------------------------------------

Deno.test("multiclass accuracy and macro F1 by hand, ties to the lowest class", () => {
  // rows × 3 scores → arg max: [2,1,0]→0, [0,3,3]→1 (tie), [1,1,1]→0 (tie), [0,0,5]→2.
  const scores = Float32Array.of(2, 1, 0, 0, 3, 3, 1, 1, 1, 0, 0, 5);
  const labels = Int32Array.of(0, 2, 0, 1);
  assert.deepEqual(Array.from(argmaxRows(scores, 3)), [0, 1, 0, 2]);
  close(multiclassAccuracy(scores, 3, labels), 2 / 4);
  // class 0: TP=2 → F1 1;  class 1: TP=0 FP=1 FN=1 → 0;  class 2: TP=0 FP=1 FN=1 → 0.  Mean 1/3.
  close(macroF1(scores, 3, labels), 1 / 3);
  // A fourth class absent from labels and predictions is left out of the mean (sklearn).
  const wide = new Float32Array(16);
  for (let r = 0; r < 4; r++) {
    wide.set(scores.subarray(r * 3, r * 3 + 3), r * 4);
    wide[r * 4 + 3] = -9;
  }
  close(macroF1(wide, 4, labels), 1 / 3);
  assert.throws(() => macroF1(scores, 3, [0, 1, 3, 0]), /labels\[2\] is 3/);
  assert.throws(() => multiclassAccuracy(scores, 5, labels), /not a multiple of 5/);
  assert.throws(() => multiclassAccuracy(scores, 3, [0, 1]), /4 score rows for 2 labels/);
});

// ---- link ---------------------------------------------------------------------------------

Deno.test("MAP@k, precision@k, recall@k by hand", () => {
  const ranked = {
    offsets: Int32Array.of(0, 4, 6, 7, 11),
    targets: Int32Array.of(3, 1, 4, 2, 5, 6, 7, 0, 0, 9, 8),
  };
  const truth = {
    offsets: Int32Array.of(0, 2, 3, 3, 7),
    targets: Int32Array.of(1, 2, 5, 0, 8, 9, 10),
  };
  // k = 3.
  // row 0: top [3,1,4] vs {1,2}: hit at 2 → AP = (1/2)/min(3,2) = 1/4; P = 1/3; R = 1/2.
  // row 1: top [5,6] vs {5}: hit at 1 → AP = 1/min(3,1) = 1; P = 1/3 (÷k); R = 1.
  // row 2: no true targets → skipped.
  // row 3: top [0,0,9] vs {0,8,9,10}: hit at 1 (1/1), repeat of 0 no, hit at 3 (2/3)
  //        → AP = (1 + 2/3)/min(3,4) = 5/9; P = 2/3; R = 2/4.
  // MAP = (1/4 + 1 + 5/9)/3 = 65/108; P@3 = (1/3 + 1/3 + 2/3)/3 = 4/9; R@3 = (1/2 + 1 + 1/2)/3.
  close(mapAtK(ranked, truth, 3), 65 / 108);
  close(precisionAtK(ranked, truth, 3), 4 / 9);
  close(recallAtK(ranked, truth, 3), 2 / 3);
  assert.equal(linkMetrics(ranked, truth, 3).entities, 3);
  // k = 1: row 0 misses (3), row 1 hits, row 3 hits → MAP = P = 2/3, R = (0 + 1 + 1/4)/3.
  close(mapAtK(ranked, truth, 1), 2 / 3);
  close(recallAtK(ranked, truth, 1), 1.25 / 3);
  const none = { offsets: Int32Array.of(0, 0), targets: new Int32Array(0) };
  assert.ok(Number.isNaN(mapAtK({ offsets: [0, 1], targets: [4] }, none, 3)));
  assert.throws(() => mapAtK(ranked, none, 3), /4 ranked rows for 1 truth rows/);
  assert.throws(
    () => mapAtK({ offsets: [0, 2], targets: [1] }, none),
    /ranked.offsets end at 2, but there are 1 targets/,
  );
  assert.throws(() => mapAtK(ranked, truth, 0), /k must be a positive integer/);
});

// ---- per task -----------------------------------------------------------------------------

Deno.test("evaluate returns each task's metrics by name", () => {
  const bin = evaluate("binary", [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]);
  assert.deepEqual(Object.keys(bin), ["auroc", "ap", "accuracy", "f1"]);
  close(bin.auroc, 0.75);
  close(bin.accuracy, 0.75); // preds ≥ 0.5: [0,0,0,1]
  const reg = evaluate("regression", [1, 2, 3], [1, 3, 5]);
  assert.deepEqual(Object.keys(reg), ["mae", "rmse", "r2"]);
  close(reg.r2, 0.375);
  const mc = evaluate("multiclass", [2, 1, 0, 0, 3, 3], [0, 2], { classes: 3 });
  assert.deepEqual(mc, { accuracy: 0.5, macro_f1: 1 / 3 });
  const link = evaluate("link", { offsets: [0, 2], targets: [1, 2] }, {
    offsets: [0, 1],
    targets: [2],
  }, { k: 5 });
  assert.deepEqual(link, { "map@5": 0.5, "precision@5": 0.2, "recall@5": 1 });
  assert.throws(() => evaluate("multiclass", [1, 2], [0]), /needs opts.classes/);
});

Deno.test("primary metric and its direction", () => {
  assert.equal(primaryMetric("binary"), "auroc");
  assert.equal(primaryMetric("regression"), "mae");
  assert.equal(primaryMetric("multiclass"), "accuracy");
  assert.equal(primaryMetric("link"), "map@10");
  assert.equal(primaryMetric("link", 5), "map@5");
  assert.ok(isBetter("binary", 0.8, 0.7));
  assert.ok(!isBetter("binary", 0.7, 0.7));
  assert.ok(isBetter("regression", 1.5, 2));
  assert.ok(!isBetter("regression", 2, 1.5));
  assert.ok(isBetter("link", 0.1, NaN));
  assert.ok(!isBetter("link", NaN, 0.1));
});
