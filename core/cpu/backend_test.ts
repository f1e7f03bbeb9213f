/**
 * Exact outputs of every CPU reference kernel on tiny hand-computed inputs,
 * plus the f16 rounding and the dropout hash.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { DType, OptimizerAttrs, Storage } from "../backend.ts";
import { cpuBackend } from "./backend.ts";
import { dropoutHash, dropoutKeep } from "./hash.ts";
import type { CpuStorage } from "./storage.ts";
import { roundF16 } from "../half.ts";
import { assertClose, values } from "./testing.ts";

const B = cpuBackend();
const f = (data: number[], dtype: DType = "f32"): Storage => B.fromArray(data, dtype);
const i32 = (data: number[]): Storage => B.fromArray(data, "i32");
const v = (s: Storage): Float64Array | Int32Array => values(s as CpuStorage);
const near = (s: Storage, expected: number[], tol = 1e-12, what = "out") =>
  assertClose(v(s), expected, tol, what);

// ---- memory -------------------------------------------------------------------

Deno.test("cpu: backend identity", () => {
  assert.equal(B.name, "cpu");
  assert.equal(B.supportsF16, true);
  assert.equal(cpuBackend(), B);
});

Deno.test("cpu: fromArray / full / read / write per dtype", async () => {
  const a = f([0.1, -2.5, 1e-30]);
  assert.equal(a.dtype, "f32");
  assert.equal(a.size, 3);
  const r = await B.read(a);
  assert.ok(r instanceof Float64Array);
  assert.deepEqual(Array.from(r), [0.1, -2.5, 1e-30]); // f32 storage keeps float64 values
  r[0] = 99;
  assert.equal((await B.read(a))[0], 0.1, "read returns a copy");

  const h = f([0.1, 65519, 65520, 1e-8], "f16");
  assert.deepEqual(Array.from(await B.read(h)), [0.0999755859375, 65504, Infinity, 0]);

  const n = i32([1.9, -2.7, 3, 2 ** 31]);
  const ni = await B.read(n);
  assert.ok(ni instanceof Int32Array);
  assert.deepEqual(Array.from(ni), [1, -2, 3, -(2 ** 31)]);

  assert.deepEqual(Array.from(await B.read(B.full(3, 2.5, "i32"))), [2, 2, 2]);
  assert.deepEqual(Array.from(await B.read(B.full(2, 0.1, "f16"))), [
    0.0999755859375,
    0.0999755859375,
  ]);
  assert.deepEqual(Array.from(await B.read(B.full(2, -7.25, "f32"))), [-7.25, -7.25]);
  assert.equal(B.full(0, 1, "f32").size, 0);

  B.write(a, [4, 5, 6]);
  assert.deepEqual(Array.from(await B.read(a)), [4, 5, 6]);
  B.write(n, [7.9, 8, 9, -1.5]);
  assert.deepEqual(Array.from(await B.read(n)), [7, 8, 9, -1]);
  B.write(h, [1 + 2 ** -11, 3, 4, 5]);
  assert.deepEqual(Array.from(await B.read(h)), [1, 3, 4, 5]);
  assert.throws(() => B.write(a, [1, 2]), /2 values for a storage of 3 elements/);
  B.flush();
  await B.sync();
});

Deno.test("cpu: retain / release and use after free", async () => {
  const s = f([1, 2]);
  B.retain(s);
  B.release(s);
  assert.deepEqual(Array.from(await B.read(s)), [1, 2]);
  B.release(s);
  assert.equal((s as CpuStorage).released, true);
  await assert.rejects(() => B.read(s), /released/);
  assert.throws(() => B.unary("neg", s, { n: 2, alpha: 0, beta: 0 }), /released/);
  assert.throws(() => B.release(s), /released/);
  assert.throws(() => (s as CpuStorage).data, /released f32 storage of 2 elements/);
});

Deno.test("cpu: storages of another backend are refused", () => {
  const foreign = { size: 1, dtype: "f32", backend: { name: "webgpu" } } as unknown as Storage;
  assert.throws(
    () => B.unary("neg", foreign, { n: 1, alpha: 0, beta: 0 }),
    /not a storage of the cpu backend/,
  );
});

Deno.test("cpu: roundF16 hand-computed cases", () => {
  const cases: [number, number][] = [
    [1, 1],
    [0.1, 0.0999755859375],
    [65504, 65504],
    [65519.99, 65504],
    [65520, Infinity],
    [-65520, -Infinity],
    [2 ** -24, 2 ** -24], // smallest subnormal
    [2 ** -25, 0], // tie between 0 and 2^-24: to even (0)
    [3 * 2 ** -25, 2 ** -23], // tie between 1 and 2 quanta: to even (2)
    [2 ** -14, 2 ** -14], // smallest normal
    [1 + 2 ** -11, 1], // tie: to even
    [1 + 3 * 2 ** -11, 1 + 2 ** -9], // tie: to even
    [1 + 2 ** -11 + 2 ** -30, 1 + 2 ** -10], // above the tie
    [-3.14159, -3.140625],
    [2048 + 1, 2048], // spacing is 2 above 2048
    [2048 + 3, 2052],
  ];
  for (const [x, want] of cases) assert.equal(roundF16(x), want, `roundF16(${x})`);
  assert.ok(Object.is(roundF16(-0), -0));
  assert.ok(Object.is(roundF16(-(2 ** -26)), -0));
  assert.ok(Number.isNaN(roundF16(NaN)));
  assert.equal(roundF16(-Infinity), -Infinity);
});

Deno.test("cpu: roundF16 agrees with Math.f16round where the runtime has it", () => {
  const f16round = (Math as unknown as { f16round?: (x: number) => number }).f16round;
  if (!f16round) return;
  fc.assert(
    fc.property(fc.double({ noNaN: true, min: -70000, max: 70000 }), (x) => {
      assert.ok(Object.is(roundF16(x), f16round(x)), `x = ${x}`);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.double({ noNaN: true, min: -1e-3, max: 1e-3 }), (x) => {
      assert.ok(Object.is(roundF16(x), f16round(x)), `x = ${x}`);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("cpu: cast f32 <-> f16", () => {
  const x = f([0.1, 70000, -1.5, 1 + 2 ** -12]);
  const h = B.cast(x, "f16");
  assert.equal(h.dtype, "f16");
  near(h, [0.0999755859375, Infinity, -1.5, 1], 0);
  const back = B.cast(h, "f32");
  assert.equal(back.dtype, "f32");
  near(back, [0.0999755859375, Infinity, -1.5, 1], 0);
  assert.throws(() => B.cast(x, "i32"), /only f32 <-> f16/);
  assert.throws(() => B.cast(i32([1]), "f32"), /only f32 <-> f16/);
});

// ---- dense ----------------------------------------------------------------------

Deno.test("cpu: matmul with every transpose combination", () => {
  const a = [1, 2, 3, 4, 5, 6]; // 2x3
  const aT = [1, 4, 2, 5, 3, 6]; // stored 3x2
  const b = [7, 8, 9, 10, 11, 12]; // 3x2
  const bT = [7, 9, 11, 8, 10, 12]; // stored 2x3
  const want = [58, 64, 139, 154];
  const dims = { m: 2, k: 3, n: 2 };
  near(B.matmul(f(a), f(b), { ...dims, transA: false, transB: false }), want, 0);
  near(B.matmul(f(aT), f(b), { ...dims, transA: true, transB: false }), want, 0);
  near(B.matmul(f(a), f(bT), { ...dims, transA: false, transB: true }), want, 0);
  near(B.matmul(f(aT), f(bT), { ...dims, transA: true, transB: true }), want, 0);
  near(B.matmul(f([]), f([]), { m: 2, k: 0, n: 2, transA: false, transB: false }), [0, 0, 0, 0]);
  assert.throws(
    () => B.matmul(f(a), f([1, 2]), { ...dims, transA: false, transB: false }),
    /cpu.matmul: b \(3x2\) has 2 elements, expected 6/,
  );
});

Deno.test("cpu: binary ops with every broadcast mode", () => {
  const full = f([1, 2, 3, 4, 5, 6]); // 2x3
  const rc = { rows: 2, cols: 3 };
  near(B.binary("add", full, f([10, 20, 30]), { ...rc, aMode: "full", bMode: "row" }), [
    11,
    22,
    33,
    14,
    25,
    36,
  ]);
  near(B.binary("sub", full, f([10, 20]), { ...rc, aMode: "full", bMode: "col" }), [
    -9,
    -8,
    -7,
    -16,
    -15,
    -14,
  ]);
  near(B.binary("mul", full, f([2]), { ...rc, aMode: "full", bMode: "scalar" }), [
    2,
    4,
    6,
    8,
    10,
    12,
  ]);
  near(B.binary("div", full, f([1, 2, 4, 8, 10, 12]), { ...rc, aMode: "full", bMode: "full" }), [
    1,
    1,
    0.75,
    0.5,
    0.5,
    0.5,
  ]);
  near(B.binary("add", f([1, 2, 3]), f([10, 20]), { ...rc, aMode: "row", bMode: "col" }), [
    11,
    12,
    13,
    21,
    22,
    23,
  ]);
  near(B.binary("div", f([1]), f([1, 2, 4, 5, 8, 10]), { ...rc, aMode: "scalar", bMode: "full" }), [
    1,
    0.5,
    0.25,
    0.2,
    0.125,
    0.1,
  ]);
  near(B.binary("sub", f([5, 6]), f([1, 2, 3]), { ...rc, aMode: "col", bMode: "row" }), [
    4,
    3,
    2,
    5,
    4,
    3,
  ]);
  near(B.binary("mul", f([3]), f([-2]), { rows: 1, cols: 1, aMode: "scalar", bMode: "scalar" }), [
    -6,
  ]);
  assert.throws(
    () => B.binary("add", full, f([1, 2]), { ...rc, aMode: "full", bMode: "row" }),
    /b \(row\) has 2 elements, expected 3/,
  );
});

Deno.test("cpu: unary ops", () => {
  const x = f([-2, -0.5, 0, 0.5, 2]);
  const u = (op: Parameters<typeof B.unary>[0], alpha = 0, beta = 0) =>
    B.unary(op, x, { n: 5, alpha, beta });
  near(u("relu"), [0, 0, 0, 0.5, 2]);
  near(u("leaky_relu", 0.1), [-0.2, -0.05, 0, 0.5, 2]);
  near(u("neg"), [2, 0.5, -0, -0.5, -2]);
  near(u("abs"), [2, 0.5, 0, 0.5, 2]);
  near(u("affine", 2, 1), [-3, 0, 1, 2, 5]);
  const one = (op: Parameters<typeof B.unary>[0], xs: number[]) =>
    v(B.unary(op, f(xs), { n: xs.length, alpha: 0, beta: 0 }));
  assertClose(one("gelu", [1, -1, 2, 0]), [
    0.8411919906082768,
    -0.15880800939172324,
    1.954597694087775,
    0,
  ], 1e-15);
  assertClose(
    one("sigmoid", [0, Math.log(3), -Math.log(3), 1000, -1000]),
    [0.5, 0.75, 0.25, 1, 0],
    1e-15,
  );
  assertClose(one("tanh", [Math.log(2), 0]), [0.6, 0], 1e-15);
  assertClose(one("exp", [Math.log(2), 0]), [2, 1], 1e-15);
  assertClose(one("log", [1, Math.E, 0]), [0, 1, -Infinity], 1e-15);
  assertClose(one("sqrt", [4, 2.25, 0]), [2, 1.5, 0], 0);
  assert.throws(
    () => B.unary("relu", x, { n: 4, alpha: 0, beta: 0 }),
    /x has 5 elements, expected 4/,
  );
});

Deno.test("cpu: unaryGrad", () => {
  const x = f([-2, 0, 3]), dy = f([1, 2, 3]);
  const g = (op: Parameters<typeof B.unary>[0], alpha = 0) =>
    B.unaryGrad(op, x, B.unary(op, x, { n: 3, alpha, beta: 0 }), dy, { n: 3, alpha, beta: 0 });
  near(g("relu"), [0, 0, 3]);
  near(g("leaky_relu", 0.1), [0.1, 0.2, 3]);
  near(g("abs"), [-1, 0, 3]);
  near(g("neg"), [-1, -2, -3]);
  near(g("affine", 2), [2, 4, 6]);
  const one = (op: Parameters<typeof B.unary>[0], xv: number, yv: number, d: number) =>
    v(B.unaryGrad(op, f([xv]), f([yv]), f([d]), { n: 1, alpha: 0, beta: 0 }))[0];
  // The derivative is taken from y where the rule says so (y need not be f(x) here).
  assert.equal(one("sigmoid", 0, 0.5, 4), 1);
  assert.equal(one("tanh", 0, 0.6, 2), 2 * 0.64);
  assert.equal(one("exp", 0, 2, 3), 6);
  assert.equal(one("log", 4, 0, 2), 0.5);
  assert.equal(one("sqrt", 0, 2, 2), 0.5);
  assertClose([one("gelu", 0, 0, 1), one("gelu", 1, 0, 1), one("gelu", -2, 0, 2)], [
    0.5,
    1.0829640838457826,
    2 * -0.08609925662361825,
  ], 1e-15);
});

Deno.test("cpu: dropout hash golden values", () => {
  // Computed independently (Python, arbitrary precision, masked to 32 bits).
  assert.deepEqual([0, 1, 2, 3].map((i) => dropoutHash(0, i)), [
    0,
    301794027,
    3140136926,
    3601063660,
  ]);
  assert.deepEqual([0, 1, 2, 3].map((i) => dropoutHash(42, i)), [
    142593372,
    862081050,
    2860932040,
    404444327,
  ]);
  assert.equal(dropoutHash(0xdeadbeef, 123456789), 2168924131);
  assert.equal(dropoutKeep(0, 0, 0), true);
  assert.equal(dropoutKeep(0, 0, 1e-9), false); // hash 0 is dropped for any p > 0
  assert.equal(dropoutKeep(42, 0, 142593372 / 2 ** 32), true); // boundary: >= p keeps
  assert.equal(dropoutKeep(42, 0, (142593372 + 0.5) / 2 ** 32), false);
});

Deno.test("cpu: dropout hash matches a BigInt u32 reference", () => {
  const M = 0xffffffffn;
  const ref = (seed: number, i: number): number => {
    let h = ((BigInt(i) * 0x9e3779b1n) & M) ^ BigInt(seed >>> 0);
    h ^= h >> 16n;
    h = (h * 0x85ebca6bn) & M;
    h ^= h >> 13n;
    h = (h * 0xc2b2ae35n) & M;
    h ^= h >> 16n;
    return Number(h);
  };
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.nat({ max: 2 ** 31 - 1 }), (s, i) => {
      assert.equal(dropoutHash(s, i), ref(s, i));
    }),
    { numRuns: 3000 },
  );
});

Deno.test("cpu: dropout kernel follows the mask and scales by 1/(1-p)", () => {
  const n = 20000, p = 0.3, seed = 12345;
  const x = Array.from({ length: n }, (_, i) => (i % 7) - 3);
  const out = v(B.dropout(f(x), { n, p, seed }));
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const keep = dropoutKeep(seed, i, p);
    if (keep) kept++;
    assert.equal(out[i], keep ? x[i] * (1 / (1 - p)) : 0);
  }
  // 1-p = 0.7 with binomial sd √(n·p·(1-p))/n ≈ 0.0032; allow 5 sd.
  assert.ok(Math.abs(kept / n - 0.7) < 0.016, `kept fraction ${kept / n}`);
  near(B.dropout(f([1, 2]), { n: 2, p: 0, seed: 9 }), [1, 2], 0);
  assert.throws(() => B.dropout(f([1]), { n: 1, p: 1, seed: 0 }), /p must be in \[0, 1\)/);
});

Deno.test("cpu: reduceSum on every axis", () => {
  const x = f([1, 2, 3, 4, 5, 6]);
  near(B.reduceSum(x, { rows: 2, cols: 3, axis: "all" }), [21]);
  near(B.reduceSum(x, { rows: 2, cols: 3, axis: "rows" }), [5, 7, 9]);
  near(B.reduceSum(x, { rows: 2, cols: 3, axis: "cols" }), [6, 15]);
  near(B.reduceSum(f([]), { rows: 0, cols: 3, axis: "rows" }), [0, 0, 0]);
});

Deno.test("cpu: sumSquares adds the squares of every storage", () => {
  // 3² + 4² + 0 + 12² + (-0.5)² = 169.25, exact in float64.
  const xs = [f([3, 4]), f([]), f([12, -0.5])];
  near(B.sumSquares(xs, { sizes: [2, 0, 2] }), [169.25], 0);
  near(B.sumSquares([], { sizes: [] }), [0], 0);
  near(B.sumSquares([f([0.25])], { sizes: [1] }), [0.0625], 0);
  assert.throws(() => B.sumSquares(xs, { sizes: [2, 0] }), /3 storages but 2 sizes/);
  assert.throws(() => B.sumSquares(xs, { sizes: [2, 1, 2] }), /xs\[1\] has 0 elements, expected 1/);
  assert.throws(() => B.sumSquares([f([1], "i32")], { sizes: [1] }), /must be a float storage/);
});

// ---- indexing -------------------------------------------------------------------

Deno.test("cpu: gather / sliceCols / concatCols", () => {
  const x = f([1, 2, 3, 4, 5, 6]); // 3x2
  near(B.gather(x, i32([2, 0, 2]), { srcRows: 3, cols: 2 }), [5, 6, 1, 2, 5, 6]);
  near(B.gather(x, i32([]), { srcRows: 3, cols: 2 }), []);
  assert.throws(
    () => B.gather(x, i32([0, 3]), { srcRows: 3, cols: 2 }),
    (e: Error) =>
      e instanceof RangeError && /index 3 at position 1 is outside \[0, 3\)/.test(e.message),
  );
  assert.throws(() => B.gather(x, f([0]), { srcRows: 3, cols: 2 }), /idx must be an i32 storage/);

  const y = f([1, 2, 3, 4, 5, 6]); // 2x3
  near(B.sliceCols(y, { rows: 2, cols: 3, start: 1, len: 2 }), [2, 3, 5, 6]);
  near(B.sliceCols(y, { rows: 2, cols: 3, start: 0, len: 1 }), [1, 4]);
  near(B.sliceCols(y, { rows: 2, cols: 3, start: 3, len: 0 }), []);
  assert.throws(
    () => B.sliceCols(y, { rows: 2, cols: 3, start: 2, len: 2 }),
    /columns \[2, 4\) exceed 3/,
  );

  near(B.concatCols([f([1, 2]), f([3, 4, 5, 6]), f([7, 8])], { rows: 2, cols: [1, 2, 1] }), [
    1,
    3,
    4,
    7,
    2,
    5,
    6,
    8,
  ]);
  assert.throws(() => B.concatCols([f([1, 2]), f([3])], { rows: 2, cols: [1, 1] }), /part 1/);
});

// ---- segments -------------------------------------------------------------------

Deno.test("cpu: segmentReduce sum / mean / max with an empty segment", () => {
  const x = f([1, 8, 3, 2, 5, 5, 0, 7]); // 4x2
  const off = i32([0, 2, 2, 4]);
  const at = { segments: 3, cols: 2 };
  const s = B.segmentReduce(x, off, { ...at, reduce: "sum" });
  near(s.out, [4, 10, 0, 0, 5, 12]);
  assert.equal(s.argmax, undefined);
  near(B.segmentReduce(x, off, { ...at, reduce: "mean" }).out, [2, 5, 0, 0, 2.5, 6]);
  const m = B.segmentReduce(x, off, { ...at, reduce: "max" });
  near(m.out, [3, 8, 0, 0, 5, 7]);
  assert.equal(m.argmax!.dtype, "i32");
  assert.deepEqual(Array.from(v(m.argmax!)), [1, 0, -1, -1, 2, 3]);
  // Ties go to the first row; negative maxima are kept (not clamped at 0).
  const t = B.segmentReduce(f([2, -3, 2, -1]), i32([0, 2]), {
    segments: 1,
    cols: 2,
    reduce: "max",
  });
  near(t.out, [2, -1]);
  assert.deepEqual(Array.from(v(t.argmax!)), [0, 1]);
  assert.throws(
    () => B.segmentReduce(x, i32([0, 3, 2]), { segments: 2, cols: 2, reduce: "sum" }),
    /offsets\[2\] = 2/,
  );
  assert.throws(
    () => B.segmentReduce(x, i32([0, 5]), { segments: 1, cols: 2, reduce: "sum" }),
    /offsets\[1\] = 5/,
  );
});

Deno.test("cpu: segmentMaxGrad", () => {
  const dy = f([10, 20, 30, 40, 50, 60]); // 3 segments x 2
  const argmax = i32([1, 0, -1, -1, 2, 3]);
  const rowSeg = i32([0, 0, 2, 2]);
  near(B.segmentMaxGrad(dy, argmax, rowSeg, { rows: 4, cols: 2 }), [0, 20, 10, 0, 50, 0, 0, 60]);
});

Deno.test("cpu: segmentSoftmax and its gradient", () => {
  // Column 0: [0, ln 3 | (empty) | 5]; column 1 checks max subtraction.
  const x = f([0, 1000, Math.log(3), 1000, 5, -1000]);
  const off = i32([0, 2, 2, 3]);
  const at = { segments: 3, rows: 3, cols: 2 };
  const y = B.segmentSoftmax(x, off, at);
  near(y, [0.25, 0.5, 0.75, 0.5, 1, 1], 1e-15);
  const dy = f([1, 0, 2, 0, 3, 7]);
  // Segment 0, column 0: Σ dy·y = 0.25 + 1.5 = 1.75.
  near(
    B.segmentSoftmaxGrad(y, dy, off, at),
    [0.25 * (1 - 1.75), 0, 0.75 * (2 - 1.75), 0, 0, 0],
    1e-15,
  );
});

// ---- normalisation --------------------------------------------------------------

Deno.test("cpu: layerNorm forward", () => {
  const x = f([1, 2, 3, 2, 2, 2]);
  const r = B.layerNorm(x, f([1, 1, 2]), f([0, 1, 0]), { rows: 2, cols: 3, eps: 0.25 });
  const s0 = Math.sqrt(1 / (2 / 3 + 0.25)); // biased variance 2/3
  near(r.mean, [2, 2]);
  near(r.rstd, [s0, 2], 1e-15);
  assert.equal(r.mean.dtype, "f32");
  assert.equal(r.rstd.dtype, "f32");
  near(r.y, [-s0, 1, 2 * s0, 0, 1, 0], 1e-15);
});

Deno.test("cpu: layerNormGrad", () => {
  const x = f([1, 2, 3]);
  const fw = B.layerNorm(x, f([1, 1, 1]), f([0, 0, 0]), { rows: 1, cols: 3, eps: 0 });
  const s = Math.sqrt(1.5);
  const g = B.layerNormGrad(x, f([1, 1, 1]), fw.mean, fw.rstd, f([1, 0, 0]), { rows: 1, cols: 3 });
  // g = dy; mean(g) = 1/3; mean(g·xhat) = -s/3; dx = s·(g − 1/3 + xhat·s/3) with xhat·s = [-1.5, 0, 1.5].
  near(g.dx, [s / 6, -s / 3, s / 6], 1e-15);
  near(g.dgamma, [-s, 0, 0], 1e-15);
  near(g.dbeta, [1, 0, 0]);
  // Two rows: dgamma and dbeta sum over rows; a constant dy with gamma = 1 gives dx = 0.
  const x2 = f([1, 2, 3, 0, 4, 8]);
  const fw2 = B.layerNorm(x2, f([1, 1, 1]), f([0, 0, 0]), { rows: 2, cols: 3, eps: 0 });
  const g2 = B.layerNormGrad(x2, f([1, 1, 1]), fw2.mean, fw2.rstd, f([1, 1, 1, 2, 2, 2]), {
    rows: 2,
    cols: 3,
  });
  near(g2.dx, [0, 0, 0, 0, 0, 0], 1e-15);
  near(g2.dgamma, [-s - 2 * s, 0, s + 2 * s], 1e-14);
  near(g2.dbeta, [3, 3, 3]);
});

// ---- losses ---------------------------------------------------------------------

Deno.test("cpu: loss values", () => {
  const one = (
    k: Parameters<typeof B.loss>[0],
    p: number[],
    t: Storage,
    rows: number,
    cols: number,
  ) => v(B.loss(k, f(p), t, { rows, cols }))[0];
  assert.equal(one("mse", [1, 2, 3], f([1, 0, 5]), 3, 1), 8 / 3);
  assert.equal(one("l1", [1, 2, 3], f([1, 0, 5]), 1, 3), 4 / 3);
  assertClose(
    [one("bce_logits", [0, 1000, -1000], f([0.5, 1, 0]), 3, 1)],
    [Math.log(2) / 3],
    1e-15,
  );
  assertClose([one("bce_logits", [Math.log(3)], f([0]), 1, 1)], [Math.log(4)], 1e-15);
  assertClose([one("bce_logits", [-Math.log(3)], f([1]), 1, 1)], [Math.log(4)], 1e-15);
  const ce = one("cross_entropy", [0, 0, 0, 0, Math.log(2), Math.log(5)], i32([2, 1]), 2, 3);
  assertClose([ce], [(Math.log(3) + Math.log(4)) / 2], 1e-15);
  assertClose(
    [one("cross_entropy", [1000, 0], i32([0]), 1, 2)],
    [Math.log1p(Math.exp(-1000))],
    1e-15,
  );
  assert.throws(
    () => one("cross_entropy", [0, 0, 0, 0], i32([0, 2]), 2, 2),
    (e: Error) =>
      e instanceof RangeError && /class id 2 of row 1 is outside \[0, 2\)/.test(e.message),
  );
  assert.throws(
    () => one("cross_entropy", [0, 0], f([0]), 1, 2),
    /target \(class ids\) must be an i32/,
  );
});

Deno.test("cpu: lossGrad scales by dy and divides by the count", () => {
  const g = (
    k: Parameters<typeof B.loss>[0],
    p: number[],
    t: Storage,
    dy: number,
    rows: number,
    cols: number,
  ) => B.lossGrad(k, f(p), t, f([dy]), { rows, cols });
  near(g("mse", [1, 2, 3], f([1, 0, 5]), 3, 3, 1), [0, 4, -4]);
  near(g("l1", [1, 2, 3], f([1, 0, 5]), 3, 3, 1), [0, 1, -1]);
  near(g("bce_logits", [0, 1000, -1000, Math.log(3)], f([0.5, 1, 0, 0]), 2, 2, 2), [
    0,
    0,
    0,
    0.75 / 2,
  ], 1e-15);
  near(g("cross_entropy", [0, 0, 0, 0, Math.log(2), Math.log(5)], i32([2, 1]), 2, 2, 3), [
    1 / 3,
    1 / 3,
    1 / 3 - 1,
    1 / 8,
    2 / 8 - 1,
    5 / 8,
  ], 1e-15);
  assert.throws(() => g("cross_entropy", [0, 0], i32([-1]), 1, 1, 2), /class id -1 of row 0/);
});

// ---- optimisation ---------------------------------------------------------------

const base: OptimizerAttrs & { n: number; maxNorm: number } = {
  kind: "sgd",
  lr: 0.1,
  momentum: 0,
  nesterov: false,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
  step: 1,
  n: 1,
  maxNorm: 0,
};

Deno.test("cpu: optimizerStep sgd (plain, weight decay, momentum, nesterov, clipping)", () => {
  let p = f([1, 2]);
  B.optimizerStep(p, f([0.5, -1]), f([0, 0]), f([0, 0]), null, { ...base, n: 2 });
  near(p, [0.95, 2.1], 1e-15);
  p = f([1, 2]);
  B.optimizerStep(p, f([0.5, -1]), f([0, 0]), f([0, 0]), null, { ...base, n: 2, weightDecay: 0.1 });
  near(p, [0.94, 2.08], 1e-15);

  p = f([1]);
  const buf = f([123]); // step 1 overwrites the buffer with g
  B.optimizerStep(p, f([0.5]), buf, f([0]), null, { ...base, momentum: 0.9 });
  near(p, [0.95], 1e-15);
  near(buf, [0.5]);
  B.optimizerStep(p, f([0.5]), buf, f([0]), null, { ...base, momentum: 0.9, step: 2 });
  near(buf, [0.95], 1e-15);
  near(p, [0.855], 1e-15);

  p = f([1]);
  const nb = f([0]);
  B.optimizerStep(p, f([0.5]), nb, f([0]), null, { ...base, momentum: 0.9, nesterov: true });
  near(p, [1 - 0.1 * (0.5 + 0.9 * 0.5)], 1e-15);
  B.optimizerStep(p, f([1]), nb, f([0]), null, { ...base, momentum: 0.9, nesterov: true, step: 2 });
  near(nb, [0.9 * 0.5 + 1], 1e-15);
  near(p, [1 - 0.1 * 0.95 - 0.1 * (1 + 0.9 * 1.45)], 1e-15);

  // Clipping: |g| = 5 > maxNorm = 1.
  p = f([0, 0]);
  const clip = { ...base, n: 2, lr: 1, maxNorm: 1 };
  B.optimizerStep(p, f([3, 4]), f([0, 0]), f([0, 0]), f([25]), clip);
  near(p, [-3 / (5 + 1e-6), -4 / (5 + 1e-6)], 1e-15);
  p = f([0, 0]);
  B.optimizerStep(p, f([3, 4]), f([0, 0]), f([0, 0]), f([25]), { ...clip, maxNorm: 10 });
  near(p, [-3, -4]);
  p = f([0, 0]);
  B.optimizerStep(p, f([3, 4]), f([0, 0]), f([0, 0]), f([25]), { ...clip, maxNorm: 0 });
  near(p, [-3, -4]);
  // Without momentum the state storages are not touched (and may be empty).
  p = f([1]);
  B.optimizerStep(p, f([1]), f([]), f([]), null, base);
  near(p, [0.9], 1e-15);
});

Deno.test("cpu: optimizerStep adam / adamw", () => {
  const p = f([1]), m = f([0]), s = f([0]);
  const adam = { ...base, kind: "adam" as const };
  B.optimizerStep(p, f([0.5]), m, s, null, adam);
  near(m, [0.05], 1e-16);
  near(s, [0.00025], 1e-18);
  const p1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8); // m̂ = 0.5, v̂ = 0.25
  near(p, [p1], 1e-15);
  B.optimizerStep(p, f([-0.5]), m, s, null, { ...adam, step: 2 });
  // m = -0.005, v = 0.00049975, m̂ = -0.005/0.19, v̂ = 0.00049975/0.001999 = 0.25.
  near(m, [-0.005], 1e-16);
  near(s, [0.00049975], 1e-18);
  near(p, [p1 + 0.1 * (0.005 / 0.19) / (0.5 + 1e-8)], 1e-14);

  const pl2 = f([1]);
  B.optimizerStep(pl2, f([0.5]), f([0]), f([0]), null, { ...adam, weightDecay: 0.1 });
  near(pl2, [1 - 0.1 * 0.6 / (0.6 + 1e-8)], 1e-15); // L2: g = 0.5 + 0.1·1

  const pw = f([1]), mw = f([0]);
  B.optimizerStep(pw, f([0.5]), mw, f([0]), null, { ...adam, kind: "adamw", weightDecay: 0.1 });
  near(pw, [0.99 - 0.1 * 0.5 / (0.5 + 1e-8)], 1e-15); // decoupled: p·(1 − lr·wd) first
  near(mw, [0.05], 1e-16); // no L2 term in the moments

  const pc = f([0]);
  B.optimizerStep(pc, f([3]), f([0]), f([0]), f([36]), { ...adam, maxNorm: 2 });
  near(pc, [-0.1 * 1 / (1 + 1e-8 / (3 * 2 / (6 + 1e-6)))], 1e-12); // clipping scales g; Adam is scale-free
  assert.throws(
    () => B.optimizerStep(pc, f([1]), f([0]), f([0]), null, { ...adam, step: 0 }),
    /step/,
  );
  assert.throws(
    () => B.optimizerStep(pc, f([1]), f([0]), f([]), null, adam),
    /state2 has 0 elements/,
  );
});
