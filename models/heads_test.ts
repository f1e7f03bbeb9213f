import fc from "fast-check";
import assert from "node:assert/strict";
import { cpuBackend } from "../core/cpu/mod.ts";
import { tensor } from "../core/tensor.ts";
import {
  clampToRange,
  lossFor,
  outputWidth,
  prepareLabels,
  rankTopK,
  regressionRange,
  selectLinkRows,
  sigmoidProbs,
  softmaxRows,
} from "./heads.ts";

const cpu = cpuBackend();

function close(actual: number, expected: number, tol = 1e-6): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} != ${expected}`);
}

Deno.test("output width and loss follow the task", async () => {
  assert.equal(outputWidth("binary"), 1);
  assert.equal(outputWidth("regression"), 1);
  assert.equal(outputWidth("multiclass", { classes: 5 }), 5);
  assert.equal(outputWidth("link", { embeddingDim: 64 }), 64);
  assert.throws(() => outputWidth("multiclass"), /classes >= 2/);
  assert.throws(() => outputWidth("link"), /embeddingDim/);
  assert.equal(lossFor("binary").name, "bce_logits");
  assert.equal(lossFor("link").name, "bce_logits");
  assert.equal(lossFor("regression").name, "l1");
  assert.equal(lossFor("regression", "mse").name, "mse");
  assert.equal(lossFor("multiclass").targetDtype, "i32");
  assert.throws(() => lossFor("regression", "huber" as "l1"), /"l1" or "mse"/);
  // The losses run: pred [1, 2, 4] vs target [1, 3, 2] → L1 (0+1+2)/3 = 1, MSE (0+1+4)/3.
  const pred = tensor([1, 2, 4], [3, 1], { backend: cpu });
  const target = tensor([1, 3, 2], [3, 1], { backend: cpu });
  close(await lossFor("regression").fn(pred, target).item(), 1);
  close(await lossFor("regression", "mse").fn(pred, target).item(), 5 / 3);
  // BCE of logit 0 against anything is log 2.
  const zero = tensor([0, 0], [2, 1], { backend: cpu });
  close(
    await lossFor("binary").fn(zero, tensor([0, 1], [2, 1], { backend: cpu })).item(),
    Math.LN2,
  );
  // Cross-entropy of equal logits over 4 classes is log 4.
  const logits = tensor(new Float32Array(8), [2, 4], { backend: cpu });
  const ids = tensor([3, 0], [2], { backend: cpu, dtype: "i32" });
  close(await lossFor("multiclass").fn(logits, ids).item(), Math.log(4));
});

Deno.test("labels are checked and converted per task", () => {
  const bin = prepareLabels("binary", Float32Array.of(0, 1, 1, 0), { rows: [1, 2, 3] });
  assert.deepEqual(Array.from(bin.targets), [1, 1, 0]);
  close(bin.positiveRate, 2 / 3);
  const reg = prepareLabels("regression", [3, -1, 2.5]);
  assert.deepEqual([reg.min, reg.max, reg.mean], [-1, 3, 1.5]);
  const mc = prepareLabels("multiclass", [2, 0, 2], { classes: 3 });
  assert.ok(mc.targets instanceof Int32Array);
  assert.deepEqual(Array.from(mc.counts), [1, 0, 2]);
  assert.throws(() => prepareLabels("binary", [0, 0.5]), /binary label 1 is 0.5/);
  assert.throws(() => prepareLabels("regression", [1, NaN]), /regression target 1 is NaN/);
  assert.throws(() => prepareLabels("multiclass", [0, 3], { classes: 3 }), /label 1 is 3/);
  assert.throws(() => prepareLabels("multiclass", [0]), /classes >= 2/);
  assert.throws(() => prepareLabels("binary", [0, 1], { rows: [2] }), /rows\[0\] is 2/);
  assert.deepEqual(regressionRange([4, -2, 7]), { min: -2, max: 7 });
});

Deno.test("link rows are selected from CSR target sets", () => {
  const link = { offsets: Int32Array.of(0, 2, 2, 5), targets: Int32Array.of(4, 5, 1, 2, 3) };
  const sel = selectLinkRows(link, [2, 0, 1]);
  assert.deepEqual(Array.from(sel.offsets), [0, 3, 5, 5]);
  assert.deepEqual(Array.from(sel.targets), [1, 2, 3, 4, 5]);
  assert.throws(() => selectLinkRows(link, [3]), /rows\[0\] is 3/);
});

Deno.test("predictions: clamping, sigmoid, softmax", () => {
  assert.deepEqual(Array.from(clampToRange([-5, 0.5, 9], 0, 2)), [0, 0.5, 2]);
  const p = Float32Array.of(-1, 3);
  assert.equal(clampToRange(p, 0, 1, p), p); // in place
  assert.deepEqual(Array.from(p), [0, 1]);
  assert.ok(Number.isNaN(clampToRange([NaN], 0, 1)[0]));
  assert.throws(() => clampToRange([1], 2, 1), /empty range/);
  const s = sigmoidProbs([0, 1000, -1000, Math.log(3)]);
  assert.deepEqual(Array.from(s.subarray(0, 3)), [0.5, 1, 0]);
  close(s[3], 0.75);
  const sm = softmaxRows([0, Math.log(3), 1000, 1000], 2);
  close(sm[0], 0.25);
  close(sm[1], 0.75);
  close(sm[2], 0.5);
});

Deno.test("rankTopK: best first, ties to the lower id, NaN never ranked", () => {
  // row 0: scores [0.1, 0.9, 0.5, 0.9] → 1, 3 (tie, higher id), 2.  row 1: [NaN, 2, NaN, 1].
  const r = rankTopK([0.1, 0.9, 0.5, 0.9, NaN, 2, NaN, 1], 4, 3);
  assert.deepEqual(Array.from(r.offsets), [0, 3, 5]);
  assert.deepEqual(Array.from(r.targets), [1, 3, 2, 1, 3]);
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 24, maxLength: 24 }),
      (targets, k, raw) => {
        const rows = Math.floor(24 / targets);
        const scores = raw.slice(0, rows * targets);
        const got = rankTopK(scores, targets, k);
        for (let row = 0; row < rows; row++) {
          const ids = Array.from({ length: targets }, (_, t) => t);
          const s = (t: number) => scores[row * targets + t];
          ids.sort((a, b) => s(b) - s(a) || a - b);
          assert.deepEqual(
            Array.from(got.targets.subarray(got.offsets[row], got.offsets[row + 1])),
            ids.slice(0, k),
          );
        }
      },
    ),
    { numRuns: 100 },
  );
});
