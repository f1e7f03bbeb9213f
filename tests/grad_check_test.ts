/**
 * Gradients of every differentiable op of core/ops.ts, checked against
 * central finite differences on the CPU float64 backend (see `gradCheck` for
 * the tolerance), plus autograd accumulation and error-message checks.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { cpuBackend } from "../core/cpu/mod.ts";
import {
  assertClose,
  gradCheck,
  gradCheckStats,
  type GradInput,
  values,
} from "../core/cpu/testing.ts";
import { roundF16 } from "../core/half.ts";
import { Index, Segments } from "../core/index.ts";
import * as ops from "../core/ops.ts";
import { setDefaultBackend, type Tensor, tensor } from "../core/tensor.ts";
import type { UnaryOp } from "../core/backend.ts";

const backend = cpuBackend();
setDefaultBackend(backend);

const RUNS = 25;
const run = <T>(arb: fc.Arbitrary<T>, check: (v: T) => void, numRuns = RUNS): void =>
  fc.assert(fc.property(arb, check), { numRuns });

// ---- generators -------------------------------------------------------------------

const dim = (max = 4, min = 1) => fc.integer({ min, max });
const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });
/** `n` doubles in [lo, hi]. */
const vals = (n: number, lo = -2, hi = 2) =>
  fc.array(fc.double({ min: lo, max: hi, noNaN: true }), { minLength: n, maxLength: n });
/** `n` doubles with |x| in [min, max], either sign (away from a kink at 0). */
const away = (n: number, min = 0.05, max = 2) =>
  fc.array(
    fc.tuple(fc.boolean(), fc.double({ min, max, noNaN: true })).map(([s, x]) => (s ? x : -x)),
    { minLength: n, maxLength: n },
  );
/** `n` pairwise distinct values at least 0.1 apart (no ties for max). */
const distinct = (n: number) =>
  fc.uniqueArray(fc.integer({ min: -40, max: 40 }), { minLength: n, maxLength: n })
    .map((a) => a.map((k) => k / 10));
/** Segment sizes (0..3 each, so empty segments occur) covering at least one row. */
const segmentSizes = fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 4 })
  .filter((s) => s.reduce((a, b) => a + b, 0) > 0);
const offsetsOf = (sizes: number[]): number[] => {
  const o = [0];
  for (const s of sizes) o.push(o[o.length - 1] + s);
  return o;
};
const input = (data: ArrayLike<number>, shape: readonly number[], grad = true): GradInput => ({
  data,
  shape,
  grad,
});

// ---- dense --------------------------------------------------------------------------

for (const transA of [false, true]) {
  for (const transB of [false, true]) {
    Deno.test(`grad: matmul transA=${transA} transB=${transB}`, () => {
      const arb = fc.tuple(dim(), dim(), dim()).chain(([m, k, n]) =>
        fc.record({
          m: fc.constant(m),
          k: fc.constant(k),
          n: fc.constant(n),
          a: vals(m * k),
          b: vals(k * n),
          seed: seedArb,
        })
      );
      run(arb, ({ m, k, n, a, b, seed }) => {
        gradCheck(
          ([x, y]) => ops.matmul(x, y, { transA, transB }),
          [input(a, transA ? [k, m] : [m, k]), input(b, transB ? [n, k] : [k, n])],
          { seed },
        );
      });
    });
  }
}

type Kind = "full" | "row" | "col" | "scalar" | "vec" | "one" | "0d";
const KINDS: Kind[] = ["full", "row", "col", "scalar", "vec", "one", "0d"];
const shapeOf = (kind: Kind, r: number, c: number): number[] =>
  ({ full: [r, c], row: [1, c], col: [r, 1], scalar: [1, 1], vec: [c], one: [1], "0d": [] })[kind];
function checkBinary(op: "add" | "sub" | "mul" | "div", ka: Kind, kb: Kind, runs: number): void {
  // Rows and columns ≥ 2 so that every kind is a distinct broadcast.
  const arb = fc.tuple(dim(3, 2), dim(3, 2)).chain(([r, c]) => {
    const sa = shapeOf(ka, r, c), sb = shapeOf(kb, r, c);
    const na = sa.reduce((x, y) => x * y, 1), nb = sb.reduce((x, y) => x * y, 1);
    return fc.record({
      sa: fc.constant(sa),
      sb: fc.constant(sb),
      a: vals(na),
      b: op === "div" ? away(nb, 0.3) : vals(nb),
      seed: seedArb,
    });
  });
  run(arb, ({ sa, sb, a, b, seed }) => {
    gradCheck(([x, y]) => ops.binary(op, x, y), [input(a, sa), input(b, sb)], { seed });
  }, runs);
}

for (const op of ["add", "sub", "mul", "div"] as const) {
  Deno.test(`grad: ${op} with every pair of broadcast shapes`, () => {
    for (const ka of KINDS) {
      for (const kb of KINDS) checkBinary(op, ka, kb, 3);
    }
  });
}

const UNARY: { op: UnaryOp; arb: (n: number) => fc.Arbitrary<number[]> }[] = [
  { op: "relu", arb: (n) => away(n) },
  { op: "leaky_relu", arb: (n) => away(n) },
  { op: "gelu", arb: (n) => vals(n, -3, 3) },
  { op: "sigmoid", arb: (n) => vals(n, -4, 4) },
  { op: "tanh", arb: (n) => vals(n, -3, 3) },
  { op: "exp", arb: (n) => vals(n, -2, 2) },
  { op: "log", arb: (n) => vals(n, 0.2, 3) },
  { op: "neg", arb: (n) => vals(n) },
  { op: "abs", arb: (n) => away(n) },
  { op: "sqrt", arb: (n) => vals(n, 0.2, 3) },
  { op: "affine", arb: (n) => vals(n) },
];

for (const { op, arb: xs } of UNARY) {
  Deno.test(`grad: unary ${op}`, () => {
    const arb = fc.tuple(dim(), dim()).chain(([r, c]) =>
      fc.record({
        shape: fc.constant([r, c]),
        x: xs(r * c),
        alpha: fc.double({ min: -2, max: 2, noNaN: true }),
        beta: fc.double({ min: -2, max: 2, noNaN: true }),
        seed: seedArb,
      })
    );
    run(arb, ({ shape, x, alpha, beta, seed }) => {
      const slope = Math.abs(alpha) / 4 + 0.01;
      const f = ([t]: Tensor[]): Tensor =>
        op === "leaky_relu"
          ? ops.leakyRelu(t, slope)
          : op === "affine"
          ? ops.scale(t, alpha, beta)
          : ops.unary(op, t);
      gradCheck(f, [input(x, shape)], { seed });
    });
  });
}

Deno.test("grad: named unary wrappers agree with unary()", () => {
  const x = tensor([-1.5, -0.2, 0.3, 2], [2, 2]);
  const wrappers: [(t: Tensor) => Tensor, UnaryOp][] = [
    [ops.relu, "relu"],
    [ops.gelu, "gelu"],
    [ops.sigmoid, "sigmoid"],
    [ops.tanh, "tanh"],
    [ops.exp, "exp"],
    [ops.neg, "neg"],
    [ops.abs, "abs"],
  ];
  for (const [w, op] of wrappers) assertClose(values(w(x)), values(ops.unary(op, x)), 0, op);
  assertClose(values(ops.leakyRelu(x)), [-0.015, -0.002, 0.3, 2], 1e-15, "leakyRelu default slope");
});

Deno.test("grad: dropout", () => {
  const arb = fc.tuple(dim(), dim()).chain(([r, c]) =>
    fc.record({
      shape: fc.constant([r, c]),
      x: vals(r * c),
      p: fc.double({ min: 0.1, max: 0.9, noNaN: true }),
      mask: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      seed: seedArb,
    })
  );
  run(arb, ({ shape, x, p, mask, seed }) => {
    gradCheck(([t]) => ops.dropout(t, p, { seed: mask }), [input(x, shape)], { seed });
  });
});

Deno.test("grad: sum and mean over all elements and each axis", () => {
  const arb = fc.tuple(dim(), dim()).chain(([r, c]) =>
    fc.record({ shape: fc.constant([r, c]), x: vals(r * c), seed: seedArb })
  );
  const fns: ((t: Tensor) => Tensor)[] = [
    (t) => ops.sum(t),
    (t) => ops.sum(t, 0),
    (t) => ops.sum(t, 1),
    (t) => ops.mean(t),
    (t) => ops.mean(t, 0),
    (t) => ops.mean(t, 1),
    (t) => ops.sum(ops.reshape(t, [t.size])), // 1-D
    (t) => ops.mean(ops.reshape(t, [t.size])),
  ];
  for (const fn of fns) {
    run(arb, ({ shape, x, seed }) => gradCheck(([t]) => fn(t), [input(x, shape)], { seed }), 6);
  }
});

// ---- indexing -------------------------------------------------------------------------

const gatherArb = fc.tuple(dim(), dim(), dim(8)).chain(([rows, cols, len]) =>
  fc.record({
    rows: fc.constant(rows),
    cols: fc.constant(cols),
    x: vals(rows * cols),
    idx: fc.array(fc.nat(rows - 1), { minLength: len, maxLength: len }),
    seed: seedArb,
  })
);

Deno.test("grad: gather (repeated indices) and embedding", () => {
  run(gatherArb, ({ rows, cols, x, idx, seed }) => {
    const index = new Index(idx, rows);
    gradCheck(([t]) => ops.gather(t, index), [input(x, [rows, cols])], { seed });
    gradCheck(([t]) => ops.embedding(t, index), [input(x, [rows, cols])], { seed: seed + 1 });
  });
  // A fixed case with repeats and an untouched row: grad row r = Σ of w over positions reading r.
  const x = tensor([1, 2, 3, 4, 5, 6], [3, 2], { requiresGrad: true });
  const w = tensor([1, 10, 100, 1000, 2, 20, 4, 40], [4, 2]);
  ops.sum(ops.mul(ops.gather(x, new Index([2, 0, 2, 2], 3)), w)).backward();
  assertClose(values(x.grad!), [100, 1000, 0, 0, 7, 70], 0, "gather grad");
});

Deno.test("grad: sliceCols and concatCols", () => {
  const sliceArb = fc.tuple(dim(), dim(5)).chain(([r, c]) =>
    fc.record({
      shape: fc.constant([r, c]),
      x: vals(r * c),
      ends: fc.tuple(fc.nat(c - 1), fc.nat(c - 1)),
      seed: seedArb,
    }).map(({ ends: [a, b], ...o }) => ({ ...o, start: Math.min(a, b), len: Math.abs(a - b) + 1 }))
  );
  run(sliceArb, ({ shape, x, start, len, seed }) => {
    gradCheck(([t]) => ops.sliceCols(t, start, len), [input(x, shape)], { seed });
  });
  const concatArb = fc.tuple(dim(), fc.array(dim(3), { minLength: 1, maxLength: 3 })).chain((
    [r, cs],
  ) =>
    fc.record({
      r: fc.constant(r),
      cs: fc.constant(cs),
      parts: fc.tuple(...cs.map((c) => vals(r * c))),
      seed: seedArb,
    })
  );
  run(concatArb, ({ r, cs, parts, seed }) => {
    gradCheck(
      (ts) => ops.concatCols(ts),
      parts.map((p, i) => input(p, [r, cs[i]])),
      { seed },
    );
  });
});

// ---- segments -------------------------------------------------------------------------

const segArb = (distinctValues: boolean) =>
  fc.tuple(segmentSizes, dim(3)).chain(([sizes, cols]) => {
    const rows = sizes.reduce((a, b) => a + b, 0);
    return fc.record({
      offsets: fc.constant(offsetsOf(sizes)),
      rows: fc.constant(rows),
      cols: fc.constant(cols),
      x: distinctValues ? distinct(rows * cols) : vals(rows * cols),
      seed: seedArb,
    });
  });

for (const reduce of ["sum", "mean", "max"] as const) {
  Deno.test(`grad: segment ${reduce} (with empty segments)`, () => {
    const fn = reduce === "sum"
      ? ops.segmentSum
      : reduce === "mean"
      ? ops.segmentMean
      : ops.segmentMax;
    run(segArb(reduce === "max"), ({ offsets, rows, cols, x, seed }) => {
      const segs = new Segments(offsets);
      gradCheck(([t]) => fn(t, segs), [input(x, [rows, cols])], { seed });
    }, 20);
    // Always include empty first, middle and last segments.
    const fixed = new Segments([0, 0, 2, 2, 5, 5]);
    const x = [0.3, -1.2, 1.7, 0.4, -0.8, 2.1, -0.1, 0.9, -1.9, 1.1];
    gradCheck(([t]) => fn(t, fixed), [input(x, [5, 2])]);
  });
}

Deno.test("grad: exact float64 segment mean gradient (1/count kept in float64)", () => {
  const x = tensor([1, 2, 3, 4], [4, 1], { requiresGrad: true });
  ops.sum(ops.segmentMean(x, new Segments([0, 3, 4]))).backward();
  assertClose(values(x.grad!), [1 / 3, 1 / 3, 1 / 3, 1], 0, "d mean / dx");
});

Deno.test("grad: segmentSoftmax (with empty segments)", () => {
  run(segArb(false), ({ offsets, rows, cols, x, seed }) => {
    const segs = new Segments(offsets);
    gradCheck(([t]) => ops.segmentSoftmax(t, segs), [input(x, [rows, cols])], { seed });
  }, 20);
  const fixed = new Segments([0, 0, 3, 3, 4]);
  gradCheck(([t]) => ops.segmentSoftmax(t, fixed), [input([0.5, -1, 2, 0.1], [4, 1])]);
});

// ---- normalisation and losses ------------------------------------------------------------

Deno.test("grad: layerNorm with respect to x, gamma and beta", () => {
  const arb = fc.tuple(dim(), dim(5)).chain(([r, c]) =>
    fc.record({
      r: fc.constant(r),
      c: fc.constant(c),
      x: vals(r * c),
      gamma: vals(c),
      beta: vals(c),
      eps: fc.constantFrom(1e-5, 0.1),
      seed: seedArb,
    })
  );
  run(arb, ({ r, c, x, gamma, beta, eps, seed }) => {
    // Zero-variance rows are kept on purpose. Near one, the central difference's
    // relative truncation error is about eps_fd² / (var + eps) ≤ 1e-12 / eps, so
    // rtol is widened to 10× that bound (1e-6 for eps = 1e-5).
    gradCheck(
      ([t, g, b]) => ops.layerNorm(t, g, b, eps),
      [input(x, [r, c]), input(gamma, [c]), input(beta, [c])],
      { seed, rtol: Math.max(1e-7, 1e-11 / eps) },
    );
  }, 20);
});

Deno.test("grad: bce_logits, mse and l1 losses (2-D and 1-D predictions)", () => {
  const arb = fc.tuple(dim(), dim(), fc.boolean()).chain(([r, c, flat]) =>
    fc.record({
      shape: fc.constant(flat ? [r * c] : [r, c]),
      x: vals(r * c, -3, 3),
      t01: vals(r * c, 0, 1),
      delta: away(r * c, 0.05, 2),
      seed: seedArb,
    })
  );
  run(arb, ({ shape, x, t01, delta, seed }) => {
    const target = (d: number[]) => tensor(d, shape);
    gradCheck(([p]) => ops.bceWithLogits(p, target(t01)), [input(x, shape)], { seed });
    gradCheck(([p]) => ops.mseLoss(p, target(t01)), [input(x, shape)], { seed });
    // l1 away from its kink: the target sits `delta` (|delta| ≥ 0.05) from the prediction.
    const t = x.map((v, i) => v - delta[i]);
    gradCheck(([p]) => ops.l1Loss(p, target(t)), [input(x, shape)], { seed });
  }, 20);
});

Deno.test("grad: cross_entropy loss", () => {
  const arb = fc.tuple(dim(), dim(5, 2)).chain(([r, c]) =>
    fc.record({
      r: fc.constant(r),
      c: fc.constant(c),
      x: vals(r * c, -3, 3),
      classes: fc.array(fc.nat(c - 1), { minLength: r, maxLength: r }),
      seed: seedArb,
    })
  );
  run(arb, ({ r, c, x, classes, seed }) => {
    const target = tensor(classes, [r], { dtype: "i32" });
    gradCheck(([p]) => ops.crossEntropy(p, target), [input(x, [r, c])], { seed });
  }, 20);
});

// ---- shape ops and composites ------------------------------------------------------------

Deno.test("grad: reshape", () => {
  const arb = fc.tuple(dim(), dim()).chain(([r, c]) =>
    fc.record({
      r: fc.constant(r),
      c: fc.constant(c),
      x: vals(r * c),
      y: vals(r * 2),
      seed: seedArb,
    })
  );
  run(arb, ({ r, c, x, y, seed }) => {
    // [r, c] viewed as [c, r] then multiplied: the view's layout matters.
    gradCheck(
      ([t, u]) => ops.matmul(ops.reshape(t, [c, r]), u),
      [input(x, [r, c]), input(y, [r, 2])],
      { seed },
    );
    gradCheck(([t]) => ops.tanh(t.reshape([r * c])).reshape([r * c, 1]), [input(x, [r, c])], {
      seed,
    });
  });
});

Deno.test("grad: composite GCN-style layer (matmul, bias, gather, segment mean, layer norm, CE)", () => {
  const edges = { src: [0, 1, 2, 2, 3, 0, 1], dst: [0, 0, 1, 1, 1, 3, 3] }; // node 2 has no in-edges
  const srcIndex = new Index(edges.src, 4);
  const segs = Segments.fromSortedIds(edges.dst, 4);
  const labels = tensor([1, 0, 2, 1], [4], { dtype: "i32" });
  const lnOffset = tensor([3, -3, 0, -3, 0, 3, 0, 3, -3, 3, 0, -3], [4, 3]);
  const arb = fc.record({
    x: vals(4 * 3),
    w: vals(3 * 3, -1, 1),
    b: vals(3, -1, 1),
    gamma: vals(3),
    beta: vals(3),
    seed: seedArb,
  });
  run(arb, ({ x, w, b, gamma, beta, seed }) => {
    gradCheck(
      ([X, W, Bb, G, Be]) => {
        const h = ops.gelu(ops.add(ops.matmul(X, W), Bb));
        const agg = ops.segmentMean(ops.gather(h, srcIndex), segs);
        // The fixed offset keeps each layer-norm row's variance away from 0, where
        // rstd = 1/√eps makes the function too curved for finite differences.
        const z = ops.layerNorm(ops.add(ops.add(agg, X), lnOffset), G, Be);
        return ops.crossEntropy(z, labels);
      },
      [input(x, [4, 3]), input(w, [3, 3]), input(b, [3]), input(gamma, [3]), input(beta, [3])],
      { seed },
    );
  });
});

Deno.test("grad: composite attention (segment softmax weights, concat, slice, dropout, bce)", () => {
  const src = new Index([1, 2, 0, 2, 3, 0], 4);
  const dst = new Index([0, 0, 1, 1, 1, 2], 4);
  const segs = Segments.fromSortedIds([0, 0, 1, 1, 1, 2], 4); // node 3: no in-edges
  const target = tensor([1, 0, 0.5, 1], [4, 1]);
  const arb = fc.record({
    h: vals(4 * 2),
    a: vals(4 * 1),
    wo: vals(4 * 1, -1, 1),
    seed: seedArb,
  });
  run(arb, ({ h, a, wo, seed }) => {
    gradCheck(
      ([H, A, Wo]) => {
        const pair = ops.concatCols([ops.gather(H, src), ops.gather(H, dst)]); // [6, 4]
        const score = ops.tanh(ops.matmul(pair, A)); // [6, 1]
        const att = ops.segmentSoftmax(score, segs);
        const msg = ops.mul(ops.gather(H, src), att); // column broadcast
        const out = ops.concatCols([
          ops.segmentSum(msg, segs),
          ops.sliceCols(H, 1, 1),
          ops.sliceCols(H, 0, 1),
        ]);
        const logits = ops.matmul(ops.dropout(out, 0.25, { seed: 77 }), Wo);
        return ops.bceWithLogits(logits, target);
      },
      [input(h, [4, 2]), input(a, [4, 1]), input(wo, [4, 1])],
      { seed },
    );
  });
});

// ---- autograd accumulation -------------------------------------------------------------------

Deno.test("autograd: a tensor used several times accumulates every path", () => {
  const x = tensor([1, -2, 3], [3], { requiresGrad: true });
  ops.sum(ops.mul(x, x)).backward();
  assertClose(values(x.grad!), [2, -4, 6], 0, "d/dx Σx²");

  const y = tensor([0.5, -1], [1, 2], { requiresGrad: true });
  // L = Σ (y + y·y + concat(y, y)) = Σ (2y + y² + y) per element → dL/dy = 3 + 2y.
  const cat = ops.concatCols([y, y]);
  ops.sum(
    ops.add(ops.add(ops.add(y, ops.mul(y, y)), ops.sliceCols(cat, 0, 2)), ops.sliceCols(cat, 2, 2)),
  )
    .backward();
  assertClose(values(y.grad!), [4, 1], 1e-15, "diamond");

  run(fc.record({ x: vals(6), seed: seedArb }), ({ x, seed }) => {
    gradCheck(
      ([t]) => {
        const e = ops.exp(t);
        return ops.add(ops.mul(e, e), ops.div(e, ops.add(t, ops.scale(t, 0, 5))));
      },
      [input(x, [2, 3])],
      { seed },
    );
  });
});

Deno.test("autograd: .grad accumulates across backward calls", () => {
  const x = tensor([1, 2, 3, 4], [2, 2], { requiresGrad: true });
  const w = tensor([0.5, -1, 2, 0.25], [2, 2]);
  ops.sum(ops.mul(x, w)).backward();
  assertClose(values(x.grad!), [0.5, -1, 2, 0.25], 0, "first backward");
  ops.sum(ops.mul(ops.tanh(x), w)).backward();
  const th = [1, 2, 3, 4].map((v) => 1 - Math.tanh(v) ** 2);
  assertClose(
    values(x.grad!),
    [0.5, -1, 2, 0.25].map((wv, i) => wv + wv * th[i]),
    1e-15,
    "accumulated",
  );
  assert.deepEqual(x.grad!.shape, [2, 2]);
});

Deno.test("autograd: cast f32 -> f16 -> f32 passes the gradient straight through, rounded to f16", () => {
  const x = tensor([0.1, -2, 3, 70000], [4], { requiresGrad: true });
  const y = ops.cast(ops.cast(x, "f16"), "f32");
  assertClose(values(y), [0.0999755859375, -2, 3, Infinity], 0, "forward");
  ops.sum(ops.mul(y, tensor([0.1, 0.5, -3, 1], [4]))).backward();
  assertClose(values(x.grad!), [roundF16(0.1), 0.5, -3, 1], 0, "grad");
});

// ---- errors ---------------------------------------------------------------------------------

Deno.test("errors: matmul shape mismatch names the shapes", () => {
  const a = tensor(new Array(6).fill(1), [2, 3]), b = tensor(new Array(20).fill(1), [4, 5]);
  assert.throws(
    () => ops.matmul(a, b),
    (e: Error) => /\[2, 3\]/.test(e.message) && /\[4, 5\]/.test(e.message),
  );
  const bt = tensor(new Array(20).fill(1), [5, 4]);
  assert.throws(() => ops.matmul(a, bt, { transB: true }), /a is \[2, 3\], bᵀ is \[4, 5\]/);
});

Deno.test("errors: out-of-range indices", () => {
  assert.throws(
    () => new Index([0, 3], 3),
    (e: Error) =>
      e instanceof RangeError && /index 3 at position 1 is outside \[0, 3\)/.test(e.message),
  );
  assert.throws(() => new Index([-1], 3), /index -1 at position 0/);
  const x = tensor([1, 2, 3, 4], [2, 2]);
  assert.throws(
    () => ops.gather(x, new Index([0], 3)),
    /index addresses 3 rows but the tensor has 2/,
  );
  const logits = tensor([0, 0, 0, 0], [2, 2]);
  assert.throws(
    () => ops.crossEntropy(logits, tensor([1, 2], [2], { dtype: "i32" })),
    /class id 2 of row 1 is outside \[0, 2\)/,
  );
});

// How close the worst check came to its allowance: a report, not a test.
globalThis.addEventListener("unload", () => {
  console.log(
    `gradCheck: ${gradCheckStats.checks} partials, worst |err|/allowance = ${
      gradCheckStats.worstRatio.toExponential(2)
    } at ${gradCheckStats.worst}`,
  );
});
