/**
 * Link prediction (models/link.ts, models/link_model.ts) on the CPU float64 backend: epoch
 * layout and logQ, batch labels, losses against a float64 reference, pair-score gradients
 * against finite differences, exact top-k ranking against brute force, and the entity's own
 * past links (`PastLinks`, `historyPath`, `historyRanking`) on a hand-made graph.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { noGrad } from "../core/autograd.ts";
import { cpuBackend } from "../core/cpu/mod.ts";
import { assertClose, gradCheck, values } from "../core/cpu/testing.ts";
import { Module } from "../core/module.ts";
import { scope, type Tensor, tensor } from "../core/tensor.ts";
import { buildGraph } from "../store/graph_build.ts";
import type { GraphStore } from "../store/graph.ts";
import { tinySpec } from "./gnn_testing.ts";
import {
  historyPath,
  historyRanking,
  linkBatchLabels,
  type LinkEpoch,
  linkEpoch,
  linkLoss,
  metricK,
  PastLinks,
  rankLinks,
  TargetCandidates,
} from "./link.ts";
import { HISTORY_FEATURES, LinkModel } from "./link_model.ts";
import type { Csr } from "./metrics.ts";
import type { GraphModel, ModelSpec } from "./types.ts";

const cpu = cpuBackend();
const T0 = 1_700_000_000, DAY = 86400, MASKED = -1e4;

function csr(sets: number[][]): Csr {
  const offsets = new Int32Array(sets.length + 1);
  sets.forEach((s, i) => offsets[i + 1] = offsets[i] + s.length);
  return { offsets, targets: Int32Array.from(sets.flat()) };
}

function rowsOf(c: Csr): number[][] {
  return Array.from(
    { length: c.offsets.length - 1 },
    (_, i) => Array.from(c.targets).slice(c.offsets[i], c.offsets[i + 1]),
  );
}

/** A graph of one temporal node type `item` (times in epoch seconds). */
function itemsGraph(times: number[]): GraphStore {
  return buildGraph({
    nodes: [{
      name: "item",
      count: times.length,
      times: Float64Array.from(times),
      timeColumn: "ts",
      primaryKey: "id",
      keys: Float64Array.from(times, (_, i) => i),
    }],
    foreignKeys: [],
  });
}

/** users (static) ← txn (user, item, time) → items (times); follow (dst, src) → users. */
function shopGraph(
  users: number,
  itemTimes: number[],
  txns: [number, number, number][],
  follows: [number, number][] = [],
  timeScale?: number,
): GraphStore {
  const node = (name: string, count: number, times: number[] | null) => ({
    name,
    count,
    times: times ? Float64Array.from(times) : null,
    timeColumn: times ? "ts" : null,
    primaryKey: "id",
    keys: Float64Array.from({ length: count }, (_, i) => i),
  });
  const rows = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
  const fk = (table: string, column: string, parent: string, to: number[]) => ({
    table,
    column,
    parent,
    childRow: rows(to.length),
    parentRow: Int32Array.from(to),
  });
  return buildGraph({
    nodes: [
      node("user", users, null),
      node("item", itemTimes.length, itemTimes),
      node("txn", txns.length, txns.map((t) => t[2])),
      node("follow", follows.length, null),
    ],
    foreignKeys: [
      fk("txn", "user_id", "user", txns.map((t) => t[0])),
      fk("txn", "item_id", "item", txns.map((t) => t[1])),
      fk("follow", "dst", "user", follows.map((f) => f[1])),
      fk("follow", "src", "user", follows.map((f) => f[0])),
    ],
    timeScale: timeScale ? { timeBase: T0 - 1000 * timeScale, timeScale } : undefined,
  });
}

// The hand-made shop: items 0–3 and 5 exist from day −1, item 4 from day 12. Anchor A = day 10.5.
const A = T0 + 10.5 * DAY;
const SHOP_TXNS: [number, number, number][] = [
  [0, 1, T0 + 1 * DAY],
  [0, 2, T0 + 2 * DAY],
  [0, 5, T0 + 5 * DAY], // same time as txn 4, lower txn id: met before item 3
  [0, 1, T0 + 5 * DAY],
  [0, 3, T0 + 5 * DAY],
  [0, 2, T0 + 7 * DAY],
  [0, 0, T0 + 8 * DAY],
  [0, 0, T0 + 20 * DAY], // after A
  [0, 0, T0 + 21 * DAY], // after A
  [1, 3, T0 + 3 * DAY],
];
const shop = (timeScale?: number) =>
  shopGraph(2, [-1, -1, -1, -1, 12, -1].map((d) => T0 + d * DAY), SHOP_TXNS, [[0, 1]], timeScale);
const f32 = (x: number) => Math.fround(x);
/** Expected history features of `count` links, the latest `days` before the anchor. */
const feat = (count: number, days: number) => [f32(Math.log1p(count)), f32(Math.exp(-days / 30))];

Deno.test("metricK: the k of a metric name, else the fallback", () => {
  assert.equal(metricK("map@10"), 10);
  assert.equal(metricK("precision@5"), 5);
  assert.equal(metricK("recall@100", 3), 100);
  assert.equal(metricK("auroc"), 10);
  assert.equal(metricK("auroc", 7), 7);
});

Deno.test("TargetCandidates: the targets that exist at a time, ascending", () => {
  const g = itemsGraph([T0 + 100, T0, T0 + 300, T0 + 200, T0 + 100]);
  const c = new TargetCandidates(g, "item");
  assert.deepEqual([...c.byTime], [1, 0, 4, 3, 2]);
  assert.deepEqual([...c.at(T0 - 1)], []);
  assert.deepEqual([...c.at(T0 + 100)], [0, 1, 4]);
  assert.deepEqual([...c.at(T0 + 250)], [0, 1, 3, 4]);
  assert.deepEqual([...c.at(T0 + 1e6)], [0, 1, 2, 3, 4]);
  assert.equal(c.countAt(c.tickOf(T0 + 299)), 4);
});

Deno.test("linkEpoch: layout, positives in the set, live negatives, logQ by hand", () => {
  const c = new TargetCandidates(itemsGraph([T0 + 100, T0, T0 + 300, T0 + 200]), "item");
  const base = {
    entities: Int32Array.of(7, 8, 9),
    times: Float64Array.of(T0 + 150, T0 + 250, T0 + 350),
    sets: csr([[1], [0, 3], [2, 0, 1]]),
    order: Int32Array.of(2, 0, 1),
    batchSize: 2,
    candidates: c,
  };
  const alive = [new Set([0, 1]), new Set([0, 1, 3]), new Set([0, 1, 2, 3])];
  const ep = linkEpoch({ ...base, seed: 5 });
  assert.deepEqual([...ep.entities], [9, 7, 8]);
  assert.deepEqual([...ep.times], [T0 + 350, T0 + 150, T0 + 250]);
  assert.deepEqual(rowsOf(ep.sets), [[2, 0, 1], [1], [0, 3]]);
  assert.equal(ep.batchSize, 2);
  // Batch 0 = rows (2, 0): positives then negatives; batch 1 = row 1.
  const rowAt = [2, 0, 2, 0, 1, 1], isPos = [true, true, false, false, true, false];
  assert.deepEqual([...ep.targetTimes], rowAt.map((r) => base.times[r]));
  const sets = [[1], [0, 3], [2, 0, 1]];
  ep.targets.forEach((t, j) => {
    if (isPos[j]) assert.ok(sets[rowAt[j]].includes(t), `positive ${j} = ${t}`);
    else assert.ok(alive[rowAt[j]].has(t), `negative ${j} = ${t} does not exist yet`);
  });
  assert.equal(ep.targets[1], 1); // row 0's only target
  // q(t) = 0.5/m + 0.5·Σ_rows [t ∈ set]/(n·|set|), n = 3, m = 4.
  const q = [1 / 8 + 5 / 36, 1 / 8 + 2 / 9, 1 / 8 + 1 / 18, 1 / 8 + 1 / 12];
  assertClose(ep.logQ, q.map(Math.log), 1e-6, "logQ");
  assert.deepEqual(linkEpoch({ ...base, seed: 5 }), ep);
  // Over many seeds every set member is a positive and every live target a negative.
  const pos1 = new Set<number>(), neg1 = new Set<number>();
  for (let s = 0; s < 200; s++) {
    const e = linkEpoch({ ...base, seed: s });
    pos1.add(e.targets[4]);
    neg1.add(e.targets[5]);
  }
  assert.deepEqual([...pos1].sort(), [0, 3]);
  assert.deepEqual([...neg1].sort(), [0, 1, 3]);
  assert.throws(
    () => linkEpoch({ ...base, seed: 1, sets: csr([[1], [], [2]]) }),
    /row 1 has no true target/,
  );
  assert.throws(() => linkEpoch({ ...base, seed: 1, sets: csr([[1], [4], [2]]) }), /target 4/);
  assert.throws(() => linkEpoch({ ...base, seed: 1, batchSize: 0 }), /batchSize/);
});

Deno.test("linkEpoch: invariants over random sets, orders and batch sizes", () => {
  fc.assert(fc.property(
    fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 8 }),
    fc.array(
      fc.record({
        t: fc.integer({ min: -1, max: 7 }),
        set: fc.uniqueArray(fc.nat(50), { minLength: 1, maxLength: 4 }),
        e: fc.nat(20),
        key: fc.nat(),
      }),
      { minLength: 1, maxLength: 12 },
    ),
    fc.integer({ min: 1, max: 5 }),
    fc.nat(),
    (itemT, rows, B, seed) => {
      const m = itemT.length, n = rows.length;
      const c = new TargetCandidates(itemsGraph(itemT.map((t) => T0 + 100 * t)), "item");
      const sets = rows.map((r) => [...new Set(r.set.map((x) => x % m))]);
      const order = Int32Array.from(rows.keys()).sort((a, b) => rows[a].key - rows[b].key || a - b);
      const o = {
        entities: Int32Array.from(rows, (r) => r.e),
        times: Float64Array.from(rows, (r) => T0 + 100 * r.t),
        sets: csr(sets),
        order,
        batchSize: B,
        seed,
        candidates: c,
      };
      const ep = linkEpoch(o);
      assert.deepEqual(linkEpoch(o), ep);
      assert.deepEqual([...ep.entities], [...order].map((r) => rows[r].e));
      assert.deepEqual(rowsOf(ep.sets), [...order].map((r) => sets[r]));
      assert.equal(ep.targets.length, 2 * n);
      for (let lo = 0; lo < n; lo += B) {
        const r = Math.min(B, n - lo);
        for (let i = 0; i < r; i++) {
          const row = order[lo + i], time = T0 + 100 * rows[row].t;
          const pos = ep.targets[2 * lo + i], neg = ep.targets[2 * lo + r + i];
          assert.ok(sets[row].includes(pos));
          const live = itemT.filter((t) => T0 + 100 * t <= time).length;
          if (live > 0) assert.ok(T0 + 100 * itemT[neg] <= time, `negative ${neg} at ${time}`);
          else assert.equal(neg, pos);
          assert.equal(ep.targetTimes[2 * lo + i], time);
          assert.equal(ep.targetTimes[2 * lo + r + i], time);
        }
      }
      const q = Array.from({ length: m }, (_, t) => {
        let s = 0;
        for (const set of sets) if (set.includes(t)) s += 1 / (n * set.length);
        return 0.5 / m + 0.5 * s;
      });
      assertClose(ep.logQ, q.map(Math.log), 2e-6, "logQ");
      assert.ok(Math.abs(ep.logQ.reduce((s, l) => s + Math.exp(l), 0) - 1) < 1e-5);
    },
  ));
});

/** Three rows over targets 0–4, batches of 2; logQ[t] = −(t + 1). */
function handEpoch(): LinkEpoch {
  const targets = Int32Array.of(2, 2, 4, 0, 3, 1);
  return {
    entities: Int32Array.of(0, 1, 0),
    times: Float64Array.of(A, A, T0 + 21 * DAY),
    sets: csr([[2, 4], [2], [1, 3]]),
    targets,
    targetTimes: Float64Array.of(A, A, A, A, T0 + 21 * DAY, T0 + 21 * DAY),
    batchSize: 2,
    logQ: Float32Array.of(-1, -2, -3, -4, -5),
  };
}

Deno.test("linkBatchLabels: masks, classes and truth by hand", () => {
  const ep = handEpoch(), M = MASKED;
  const b0 = linkBatchLabels(ep, 0);
  assert.equal(b0.rows, 2);
  assert.deepEqual([...b0.classes], [0, 1]);
  // Columns 2, 2, 4, 0 (−logQ 3, 3, 5, 1). Row 0 {2, 4}: the duplicate positive and the negative
  // 4 are its true targets; row 1 {2}: row 0's positive is its own target too.
  assert.deepEqual([...b0.mask], [3, M, M, 1, M, 3, 5, 1]);
  assert.deepEqual([...b0.truth], [1, 1, 1, 0, 1, 1, 0, 0]);
  assert.deepEqual([...b0.history], new Array(16).fill(0));
  const b1 = linkBatchLabels(ep, 1);
  assert.equal(b1.rows, 1);
  assert.deepEqual([...b1.mask], [4, M]);
  assert.deepEqual([...b1.truth], [1, 1]);
  assert.deepEqual([...b1.classes], [0]);
  assert.throws(() => linkBatchLabels(ep, 2), /no batch 2/);
  assert.throws(() => linkBatchLabels(ep, -1), /no batch -1/);
});

Deno.test("linkBatchLabels: history features of every pair from PastLinks", () => {
  const g = shop();
  const past = new PastLinks(g, historyPath(g, "user", "item")!);
  const ep = handEpoch();
  const b0 = linkBatchLabels(ep, 0, past);
  // Row 0 (user 0 at A) against 2, 2, 4, 0; row 1 (user 1 at A: item 3 at day 3).
  const want0 = [...feat(2, 3.5), ...feat(2, 3.5), 0, 0, ...feat(1, 2.5)];
  assertClose(b0.history, [...want0, ...want0.map(() => 0)], 1e-7, "batch 0");
  // Row 2: user 0 at day 21 against 3 and 1, both last linked on day 5.
  const b1 = linkBatchLabels(ep, 1, past);
  assertClose(b1.history, [...feat(1, 16), ...feat(2, 16)], 1e-7, "batch 1");
  assert.equal(HISTORY_FEATURES, 2);
});

/** Float64 reference of the two losses, from the scores, the sets and logQ only. */
function referenceLoss(s: number[], ep: LinkEpoch, b: number, loss: "ce" | "bce"): number {
  const B = ep.batchSize, lo = b * B, r = Math.min(B, ep.entities.length - lo), cols = 2 * r;
  const sets = rowsOf(ep.sets);
  let total = 0;
  for (let i = 0; i < r; i++) {
    // ce: the row's own column, then every column whose target is not a true one of the row.
    const z = [s[i * cols + i] - ep.logQ[ep.targets[2 * lo + i]]];
    for (let j = 0; j < cols; j++) {
      const t = ep.targets[2 * lo + j], x = s[i * cols + j], y = sets[lo + i].includes(t) ? 1 : 0;
      total += loss === "ce" ? 0 : Math.max(x, 0) - x * y + Math.log1p(Math.exp(-Math.abs(x)));
      if (!y) z.push(x - ep.logQ[t]);
    }
    const mx = Math.max(...z);
    if (loss === "ce") total += mx + Math.log(z.reduce((a, v) => a + Math.exp(v - mx), 0)) - z[0];
  }
  return loss === "ce" ? total / r : total / (r * cols);
}

Deno.test("linkLoss: ce and bce against a float64 reference", async () => {
  const c = new TargetCandidates(itemsGraph([0, 0, 1, 2, 3, 3].map((d) => T0 + d * DAY)), "item");
  for (let seed = 0; seed < 6; seed++) {
    const rng = mulberry(seed);
    const n = 2 + (seed % 4);
    const sets = Array.from({ length: n }, () => {
      const s = [...new Set([0, 1, 2].map(() => Math.floor(rng() * 6)))];
      return s.slice(0, 1 + Math.floor(rng() * s.length));
    });
    const ep = linkEpoch({
      entities: Int32Array.from({ length: n }, (_, i) => i),
      times: Float64Array.from({ length: n }, (_, i) => T0 + i * DAY),
      sets: csr(sets),
      order: Int32Array.from({ length: n }, (_, i) => n - 1 - i),
      batchSize: 3,
      seed,
      candidates: c,
    });
    for (let b = 0; b * 3 < n; b++) {
      const lab = linkBatchLabels(ep, b), r = lab.rows;
      const s = Array.from({ length: 2 * r * r }, () => 4 * rng() - 2);
      for (const loss of ["ce", "bce"] as const) {
        const got = await linkLoss(tensor(s, [r, 2 * r], { backend: cpu }), lab, loss).item();
        const want = referenceLoss(s, ep, b, loss);
        assert.ok(Math.abs(got - want) <= 1e-9 * Math.abs(want), `${loss}: ${got} vs ${want}`);
      }
    }
  }
  const lab = linkBatchLabels(handEpoch(), 0);
  assert.throws(() => linkLoss(tensor(new Float32Array(6), [2, 3], { backend: cpu }), lab, "ce"));
  assert.throws(
    () => linkLoss(tensor(new Float32Array(8), [2, 4], { backend: cpu }), lab, "mse" as "ce"),
    /unknown loss/,
  );
});

function mulberry(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class StubBody extends Module implements GraphModel {
  constructor(readonly spec: ModelSpec) {
    super();
  }
  forward(): Tensor {
    throw new Error("the body is not called by pairScores");
  }
}

Deno.test("LinkModel.pairScores: values and gradients against finite differences", async () => {
  const spec = tinySpec("sage", { task: "link", targetType: "store", outWidth: 3 });
  assert.throws(() => new LinkModel(tinySpec("sage"), new StubBody(tinySpec("sage"))), /target/);
  const model = new LinkModel(spec, new StubBody(spec), { backend: cpu });
  assert.deepEqual([...await model.historyWeights()], [0.5, 0.5]);
  assert.ok(model.parameters().includes(model.history));
  const rng = mulberry(11), ep = handEpoch(), r = 2, d = 3;
  const e = Array.from({ length: r * d }, () => rng() - 0.5);
  const t = Array.from({ length: 2 * r * d }, () => rng() - 0.5);
  const f = Float32Array.from({ length: r * 2 * r * 2 }, (_, i) => (i % 3 ? rng() : 0));
  const w = [0.75, -1.5];
  cpu.write(model.history.storage, w);
  assert.deepEqual([...await model.historyWeights()], w);
  const et = tensor(e, [r, d], { backend: cpu }), tt = tensor(t, [2 * r, d], { backend: cpu });
  const got = values(model.pairScores(et, tt, f));
  const want = Array.from({ length: 2 * r * r }, (_, k) => {
    const i = Math.floor(k / (2 * r)), j = k % (2 * r);
    let s = 0;
    for (let c = 0; c < d; c++) s += e[i * d + c] * t[j * d + c];
    return s + w[0] * f[2 * k] + w[1] * f[2 * k + 1];
  });
  assertClose(got, want, 1e-12, "pair scores");
  assert.throws(() => model.pairScores(et, tt, new Float32Array(3)), /history values/);
  const lab = linkBatchLabels(ep, 0);
  for (const loss of ["ce", "bce"] as const) {
    // Entity and target embeddings: inputs of gradCheck (the model's weights as they are).
    gradCheck(([x, y]) => linkLoss(model.pairScores(x, y, f), lab, loss), [
      { data: e, shape: [r, d] },
      { data: t, shape: [2 * r, d] },
    ]);
    // The history weights: a parameter, perturbed in place.
    const h = model.history;
    const lossAt = () =>
      noGrad(() => scope(() => values(linkLoss(model.pairScores(et, tt, f), lab, loss))[0]));
    const analytic = scope(() => {
      h.grad = null;
      linkLoss(model.pairScores(et, tt, f), lab, loss).backward();
      const g = values(h.grad!);
      h.grad = null;
      return g;
    });
    const eps = 1e-6;
    for (let k = 0; k < HISTORY_FEATURES; k++) {
      const x = [...w];
      x[k] = w[k] + eps;
      cpu.write(h.storage, x);
      const fp = lossAt();
      x[k] = w[k] - eps;
      cpu.write(h.storage, x);
      const fm = lossAt();
      cpu.write(h.storage, w);
      const num = (fp - fm) / (2 * eps);
      assert.ok(
        Math.abs(num - analytic[k]) <= 1e-6 * Math.abs(num) + 1e-9,
        `${loss}: d/dw${k} autograd ${analytic[k]}, numeric ${num}`,
      );
      assert.ok(Math.abs(num) > 1e-4, `${loss}: d/dw${k} should not vanish`);
    }
  }
});

Deno.test("rankLinks: exact top-k among live targets, history term, chunking", async () => {
  const H = DAY / 2;
  await fc.assert(fc.asyncProperty(
    fc.record({
      users: fc.integer({ min: 1, max: 3 }),
      items: fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 1, maxLength: 7 }),
      txns: fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 16 })), {
        maxLength: 15,
      }),
      rows: fc.array(fc.tuple(fc.nat(), fc.integer({ min: -1, max: 17 })), {
        minLength: 1,
        maxLength: 6,
      }),
      d: fc.integer({ min: 1, max: 3 }),
      vals: fc.array(fc.integer({ min: -2, max: 2 }), { minLength: 40, maxLength: 40 }),
      k: fc.integer({ min: 1, max: 8 }),
      w: fc.tuple(...[0, 1].map(() => fc.constantFrom(-1, -0.5, 0, 0.25, 2))),
    }),
    async ({ users, items, txns, rows, d, vals, k, w }) => {
      const m = items.length, n = rows.length;
      const tx = txns.map(([u, i, h]) =>
        [u % users, i % m, T0 + h * H] as [number, number, number]
      );
      const g = shopGraph(users, items.map((h) => T0 + h * H), tx);
      const ents = Int32Array.from(rows, ([u]) => u % users);
      const times = Float64Array.from(rows, ([, h]) => T0 + h * H);
      const v = (i: number) => vals[i % vals.length];
      const entity = { data: Float32Array.from({ length: n * d }, (_, i) => v(i)), dim: d };
      // Target embeddings depend on the time they are embedded at.
      const factor = (time: number) => 1 + (((Math.round((time - T0) / H) % 2) + 2) % 2);
      const emb = (id: number, c: number, time: number) => v(7 + id * d + c) * factor(time);
      const calls: [number[], number][] = [];
      const embedTargets = (ids: Int32Array, time: number) => {
        calls.push([[...ids], time]);
        const data = Float32Array.from(
          { length: ids.length * d },
          (_, x) => emb(ids[Math.floor(x / d)], x % d, time),
        );
        return Promise.resolve({ data, dim: d });
      };
      const candidates = new TargetCandidates(g, "item");
      const past = new PastLinks(g, historyPath(g, "user", "item")!);
      const brute = (withHistory: boolean) =>
        rows.map((_, i) => {
          const T = times[i];
          const live = [...items.keys()].filter((id) => T0 + items[id] * H <= T);
          const scored = live.map((id) => {
            let s = 0;
            for (let c = 0; c < d; c++) s += entity.data[i * d + c] * emb(id, c, T);
            const mine = tx.filter(([u, item, t]) => u === ents[i] && item === id && t <= T);
            if (withHistory && mine.length > 0) {
              const last = Math.max(...mine.map((x) => x[2]));
              const [f0, f1] = feat(mine.length, (T - last) / DAY);
              s += w[0] * f0 + w[1] * f1;
            }
            return { id, s };
          }).sort((a, b) => b.s - a.s || a.id - b.id).slice(0, k);
          return { ids: scored.map((x) => x.id), scores: scored.map((x) => f32(x.s)) };
        });
      for (const withHistory of [false, true]) {
        const want = brute(withHistory);
        const history = withHistory ? { past, entities: ents, weights: w } : undefined;
        const base = { entity, times, embedTargets, candidates, k, backend: cpu, history };
        calls.length = 0;
        const got = await rankLinks(base);
        assert.deepEqual(rowsOf(got), want.map((x) => x.ids));
        assert.deepEqual([...got.scores], want.flatMap((x) => x.scores));
        // One embedding per distinct anchor time with live targets, of exactly those targets.
        const distinct = [...new Set(times)].filter((T) => items.some((h) => T0 + h * H <= T));
        assert.deepEqual(calls.map((c) => c[1]).sort(), distinct.sort());
        for (const [ids, T] of calls) {
          assert.deepEqual(ids, [...items.keys()].filter((id) => T0 + items[id] * H <= T));
        }
        const small = await rankLinks({ ...base, chunkElements: 1 });
        assert.deepEqual(small, got);
      }
    },
  ));
  const g = itemsGraph([T0]);
  const o = {
    entity: { data: new Float32Array(3), dim: 2 },
    times: Float64Array.of(T0),
    embedTargets: () => Promise.resolve({ data: new Float32Array(2), dim: 2 }),
    candidates: new TargetCandidates(g, "item"),
    k: 1,
    backend: cpu,
  };
  await assert.rejects(rankLinks(o), /3 entity values/);
  const bad = { ...o, entity: { data: new Float32Array(2), dim: 2 } };
  await assert.rejects(
    rankLinks({
      ...bad,
      embedTargets: () => Promise.resolve({ data: new Float32Array(3), dim: 3 }),
    }),
    /target embeddings/,
  );
});

Deno.test("PastLinks: counts, recency and log1p at or before the anchor only", () => {
  // Seconds as ticks, and hours (every time here is on the hour): the same features.
  for (const scale of [1, 3600]) {
    const g = shop(scale);
    assert.equal(g.timeScale, scale);
    const path = historyPath(g, "user", "item")!;
    assert.deepEqual(path, { toFacts: "user.id->txn.user_id", toTarget: "txn.item_id->item.id" });
    const past = new PastLinks(g, path);
    const own = past.of(0, A);
    assert.deepEqual(
      new Map([...own.count].sort()),
      new Map([[0, 1], [1, 2], [2, 2], [3, 1], [5, 1]]),
    );
    const lastDay = new Map([...own.last].map(([t, tick]) => [t, (g.fromTick(tick) - T0) / DAY]));
    assert.deepEqual(
      new Map([...lastDay].sort()),
      new Map([[0, 8], [1, 5], [2, 7], [3, 5], [5, 5]]),
    );
    const out = new Float32Array(2 + 2 * 6).fill(NaN);
    [0, 1, 2, 3, 4, 5].forEach((t) => past.features(own, t, out, 1 + 2 * t));
    assert.ok(Number.isNaN(out[0]) && Number.isNaN(out[13]));
    assertClose(
      out.subarray(1, 13),
      [...feat(1, 2.5), ...feat(2, 5.5), ...feat(2, 3.5), ...feat(1, 5.5), 0, 0, ...feat(1, 5.5)],
      1e-7,
      "features",
    );
    // A link at exactly the anchor counts; an anchor a second earlier misses it.
    assert.equal(past.of(0, T0 + 21 * DAY).count.get(0), 3);
    assert.equal(past.of(0, T0 + 21 * DAY - 1).count.get(0), 2);
    assert.equal(past.of(1, T0 + 3 * DAY - 1).count.size, 0);
    assert.deepEqual([...past.of(1, T0 + 3 * DAY).count], [[3, 1]]);
  }
});

Deno.test("historyPath: null without a linking table, respects via, never one FK both ways", () => {
  const g = shop();
  assert.equal(historyPath(g, "user", "txn"), null);
  assert.equal(historyPath(g, "item", "follow"), null);
  assert.equal(historyPath(g, "user", "item", { table: "follow", column: "dst" }), null);
  assert.equal(historyPath(g, "user", "item", { table: "txn", column: "user_id" }), null);
  assert.deepEqual(historyPath(g, "user", "item", { table: "txn", column: "item_id" }), {
    toFacts: "user.id->txn.user_id",
    toTarget: "txn.item_id->item.id",
  });
  // Self links (user follows user): the path leaves by one foreign key and returns by the other.
  assert.deepEqual(historyPath(g, "user", "user", { table: "follow", column: "dst" }), {
    toFacts: "user.id->follow.src",
    toTarget: "follow.dst->user.id",
  });
  // The entity's foreign key chosen by the query (VIA): in by dst, out by src.
  assert.deepEqual(historyPath(g, "user", "user", { table: "follow", column: "src", fk: "dst" }), {
    toFacts: "user.id->follow.dst",
    toTarget: "follow.src->user.id",
  });
  assert.equal(historyPath(g, "user", "item", { table: "txn", column: "item_id", fk: "x" }), null);
  const self = historyPath(g, "user", "user");
  assert.ok(self !== null);
  const up = g.edgeType(self.toFacts), down = g.edgeType(self.toTarget);
  assert.ok(
    up.dst !== down.src || up.dstColumn !== down.srcColumn,
    `${self.toFacts} then ${self.toTarget} goes back along the same foreign key`,
  );
});

Deno.test("historyRanking: most links, then most recent, then lower id, then popular", () => {
  const g = shop();
  const o = {
    path: historyPath(g, "user", "item")!,
    entities: Int32Array.of(0, 1, 1, 0),
    times: Float64Array.of(A, T0 + 2 * DAY, A, T0 + 21 * DAY),
    popular: [3, 2, 1, 0],
  };
  // User 0 at A: 2 (2 links, day 7), 1 (2, day 5), 0 (1, day 8), 3 and 5 (1, day 5).
  assert.deepEqual(rowsOf(historyRanking(g, { ...o, k: 3 })), [
    [2, 1, 0],
    [3, 2, 1],
    [3, 2, 1],
    [0, 2, 1],
  ]);
  assert.deepEqual(rowsOf(historyRanking(g, { ...o, k: 8 })), [
    [2, 1, 0, 3, 5],
    [3, 2, 1, 0],
    [3, 2, 1, 0],
    [0, 2, 1, 3, 5],
  ]);
  assert.deepEqual(rowsOf(historyRanking(g, { ...o, k: 6, popular: [4, 5] })), [
    [2, 1, 0, 3, 5, 4],
    [4, 5],
    [3, 4, 5],
    [0, 2, 1, 3, 5, 4],
  ]);
});
