import assert from "node:assert/strict";
import fc from "fast-check";
import { buildGraph } from "../store/graph_build.ts";
import { appendRows } from "../store/graph_append.ts";
import { arbDb, buildInputOf, throwsWith } from "../store/graph_testing.ts";
import { seedTick, STATIC_TIME, TICK_MAX } from "../store/ticks.ts";
import { compileSampling } from "./config.ts";
import { sampleBatch } from "./sample.ts";
import { pickRecency, pickUniform, randOpen01, seedRng } from "./strategies.ts";
import { checkOutput, chiSquare, chiSquareCritical, smallGraph, T0 } from "./sample_testing.ts";
import { STRATEGIES } from "./types.ts";

const UT = "users.id->tx.user", TU = "tx.user->users.id";
const TI = "tx.item->items.id", IT = "items.id->tx.item";
const plain = (o: Record<string, unknown>) =>
  Object.fromEntries(
    Object.entries(o).map(([k, v]) => [k, ArrayBuffer.isView(v) ? [...v as Int32Array] : v]),
  );

Deno.test("exact output on a tiny graph (take all, 3 hops)", () => {
  const g = smallGraph(2, 2, [[0, 0, 10], [0, 1, 20], [0, 0, 30], [1, 1, 15]], [0, 0]);
  const cfg = compileSampling(g, [-1, -1, -1], "uniform");
  const ticks = Int32Array.of(seedTick(g.data, T0 + 25), seedTick(g.data, T0 + 100));
  const out = sampleBatch(g.data, cfg, "users", Int32Array.of(0, 1), ticks, {
    randomSeed: 1,
    batchIndex: 0,
  });
  const tk = (s: number) => g.toTick(T0 + s);
  assert.deepEqual(plain({ ...out.nodes.users }), {
    ids: [0, 1],
    seed: [0, 1],
    hop: [0, 0],
    time: [tk(0), tk(0)],
    hopOffsets: [0, 2, 2, 2, 2],
  });
  assert.deepEqual(plain({ ...out.nodes.tx }), {
    ids: [0, 1, 3, 3, 1],
    seed: [0, 0, 1, 0, 1],
    hop: [1, 1, 1, 3, 3],
    time: [tk(10), tk(20), tk(15), tk(15), tk(20)],
    hopOffsets: [0, 0, 3, 3, 5],
  });
  assert.deepEqual(plain({ ...out.nodes.items }), {
    ids: [0, 1, 1],
    seed: [0, 0, 1],
    hop: [2, 2, 2],
    time: [STATIC_TIME, STATIC_TIME, STATIC_TIME],
    hopOffsets: [0, 0, 0, 3, 3],
  });
  const edges = Object.fromEntries(Object.entries(out.edges).map(([k, v]) => [k, plain({ ...v })]));
  assert.deepEqual(edges, {
    [UT]: { src: [0, 1, 2], dst: [0, 0, 1], dstOffsets: [0, 2, 3], hop: [1, 1, 1] },
    [TU]: { src: [0, 0, 1], dst: [0, 1, 2], dstOffsets: [0, 1, 2, 3, 3, 3], hop: [2, 2, 2] },
    [TI]: { src: [0, 1, 2], dst: [0, 1, 2], dstOffsets: [0, 1, 2, 3, 3, 3], hop: [2, 2, 2] },
    [IT]: {
      src: [0, 3, 1, 2, 4],
      dst: [0, 1, 1, 2, 2],
      dstOffsets: [0, 1, 3, 5],
      hop: [3, 3, 3, 3, 3],
    },
  });
  assert.deepEqual(plain({ ...out, nodes: 0, edges: 0 }), {
    seedType: "users",
    batchSize: 2,
    seedTicks: [...ticks],
    seedLocal: [0, 1],
    nodes: 0,
    edges: 0,
  });
});

Deno.test("last: the k most recent visible, ties by id, oldest first", () => {
  // user 0: tx 0 @10, 1 @20, 2 @20, 3 @30, 4 @50; seed at 30.
  const g = smallGraph(1, 1, [[0, 0, 10], [0, 0, 20], [0, 0, 20], [0, 0, 30], [0, 0, 50]]);
  const run = (k: number, at: number) => {
    const cfg = compileSampling(g, [k], "last");
    const out = sampleBatch(g.data, cfg, "users", Int32Array.of(0), Int32Array.of(at), {
      randomSeed: 7,
      batchIndex: 3,
    });
    return [...out.nodes.tx?.ids ?? []];
  };
  const t30 = g.toTick(T0 + 30);
  assert.deepEqual(run(1, t30), [3]);
  assert.deepEqual(run(2, t30), [2, 3]);
  assert.deepEqual(run(3, t30), [1, 2, 3]);
  assert.deepEqual(run(3, g.toTick(T0 + 20)), [0, 1, 2]);
  assert.deepEqual(run(2, g.toTick(T0 + 20)), [1, 2]);
  assert.deepEqual(run(-1, t30), [0, 1, 2, 3]);
  assert.deepEqual(run(1, STATIC_TIME), []);
});

/** Random per-hop fanouts with per-edge-type overrides (including 0 and -1). */
function arbFanouts(edgeTypes: string[]) {
  const k = fc.constantFrom(-1, 0, 1, 1, 2, 3, 5, 10);
  return fc.array(
    fc.record({ def: k, over: fc.array(fc.tuple(fc.nat(edgeTypes.length), k), { maxLength: 3 }) }),
    { minLength: 1, maxLength: 4 },
  ).map((hops) =>
    hops.map(({ def, over }, h) => {
      const hop: Record<string, number> = { default: def };
      for (const [e, v] of over) if (e < edgeTypes.length) hop[edgeTypes[e]] = v;
      return { [`hop${h + 1}`]: hop };
    })
  );
}

Deno.test("property: random temporal heterogeneous graphs", () => {
  fc.assert(
    fc.property(
      arbDb(),
      fc.integer({ min: 0, max: 1 << 30 }),
      fc.boolean(),
      (db, rs, withStatic) => {
        const g = buildGraph(buildInputOf(db));
        const types = g.nodeTypes().filter((t) => g.numNodes(t) > 0);
        if (!types.length) return;
        const edgeTypes = g.edgeTypes();
        let s = rs;
        const rnd = (n: number) => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n;
        const fan = fc.sample(arbFanouts(edgeTypes), { seed: rs, numRuns: 1 })[0];
        const pool = withStatic ? STRATEGIES : STRATEGIES.filter((x) => x !== "static");
        const strat: Record<string, string> = {
          default: pool[rnd(pool.length)],
          half_life: `${1 + rnd(500)}s`,
        };
        for (const e of edgeTypes) if (rnd(2)) strat[e] = pool[rnd(pool.length)];
        const cfg = compileSampling(g, fan, strat);
        const seedType = types[rnd(types.length)];
        const B = 1 + rnd(6);
        const seeds = Int32Array.from({ length: B }, () => rnd(g.numNodes(seedType)));
        const ticks = Int32Array.from({ length: B }, () => {
          const r = rnd(10);
          return r === 0
            ? STATIC_TIME
            : r === 1
            ? TICK_MAX
            : seedTick(g.data, 1.6e9 - 100 + rnd(1400));
        });
        const opts = { randomSeed: rs, batchIndex: rnd(100) };
        const out = sampleBatch(g.data, cfg, seedType, seeds, ticks, opts);
        checkOutput(g, cfg, out, seedType, seeds, ticks, { temporal: true });
        // Deterministic, also after another batch used the scratch.
        sampleBatch(g.data, cfg, seedType, seeds.reverse(), ticks, { ...opts, batchIndex: 999 });
        seeds.reverse();
        assert.deepEqual(sampleBatch(g.data, cfg, seedType, seeds, ticks, opts), out);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("property: appended rows are sampled", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(5), fc.nat(3), fc.nat(100)), { maxLength: 30 }),
      fc.array(fc.tuple(fc.nat(7), fc.nat(3), fc.nat(100)), { minLength: 1, maxLength: 12 }),
      fc.constantFrom("uniform", "last", "recency"),
      fc.integer(),
      (base, added, strategy, rs) => {
        const g = smallGraph(6, 4, base, [0, 5, 10, 15, 20, 25]);
        // Two new users, then transactions of old and new users.
        appendRows(g, "users", { keys: [6, 7], times: [T0 + 30, T0 + 40] });
        appendRows(g, "tx", {
          keys: added.map((_, i) => 1000 + i),
          times: added.map((a) => T0 + a[2]),
          fks: { user: added.map((a) => a[0]), item: added.map((a) => a[1]) },
        });
        const cfg = compileSampling(g, [3, 2, 9], strategy);
        const seeds = Int32Array.of(0, 6, 7, 1, 2);
        const ticks = Int32Array.from(seeds, (_, i) => g.toTick(T0 + 20 * i + 10));
        const out = sampleBatch(g.data, cfg, "users", seeds, ticks, {
          randomSeed: rs,
          batchIndex: 0,
        });
        checkOutput(g, cfg, out, "users", seeds, ticks, { temporal: true });
      },
    ),
    { numRuns: 100 },
  );
  // And an appended transaction does show up.
  const g = smallGraph(1, 1, [[0, 0, 10]]);
  appendRows(g, "tx", { keys: [9], times: [T0 + 20], fks: { user: [0], item: [0] } });
  const out = sampleBatch(
    g.data,
    compileSampling(g, [-1]),
    "users",
    Int32Array.of(0),
    Int32Array.of(TICK_MAX),
    {
      randomSeed: 0,
      batchIndex: 0,
    },
  );
  assert.deepEqual([...out.nodes.tx.ids], [0, 1]);
});

Deno.test("uniform is unbiased: chi-square over 20 neighbours (alpha = 0.001)", () => {
  // One user with 20 visible transactions (and 5 future ones); fanout 5;
  // 16 batches of 1024 copies of the seed = 16384 independent draws.
  const tx: [number, number, number][] = [];
  for (let i = 0; i < 25; i++) tx.push([0, 0, i * 10]);
  const g = smallGraph(1, 1, tx);
  const cfg = compileSampling(g, [5], "uniform");
  const B = 1024, batches = 16, k = 5, n = 20;
  const counts = new Float64Array(n);
  for (let b = 0; b < batches; b++) {
    const out = sampleBatch(
      g.data,
      cfg,
      "users",
      new Int32Array(B),
      new Int32Array(B).fill(g.toTick(T0 + 195)),
      { randomSeed: 42, batchIndex: b },
    );
    assert.equal(out.nodes.tx.ids.length, B * k);
    for (const id of out.nodes.tx.ids) counts[id]++;
  }
  // Inclusion counts: E = draws·k/n each; without replacement the variance is
  // E·(1 - k/n), so the scaled statistic is ~ chi-square(n - 1).
  const draws = B * batches, E = (draws * k) / n;
  const x = chiSquare(counts, new Float64Array(n).fill(E)) / (1 - k / n);
  assert.ok(x < chiSquareCritical(n - 1), `chi-square ${x.toFixed(1)}`);
});

Deno.test("pickUniform: uniform subsets and marginals on every code path (alpha = 0.001)", () => {
  seedRng(123, 0);
  // Floyd (k <= 32): all C(6,3) = 20 subsets equally likely.
  const out = new Int32Array(64);
  const subsets = new Map<string, number>();
  const N = 20000;
  for (let i = 0; i < N; i++) {
    pickUniform(6, 3, out);
    const key = [...out.subarray(0, 3)].sort().join();
    subsets.set(key, (subsets.get(key) ?? 0) + 1);
  }
  assert.equal(subsets.size, 20);
  const obs = [...subsets.values()];
  assert.ok(chiSquare(obs, obs.map(() => N / 20)) < chiSquareCritical(19));
  // Partial Fisher–Yates (k > 32, n <= 16k) and Floyd with a hash set (n > 16k): marginals.
  for (const [n, k, runs] of [[50, 40, 4000], [1000, 40, 4000]]) {
    const counts = new Float64Array(n);
    for (let i = 0; i < runs; i++) {
      pickUniform(n, k, out);
      const set = new Set(out.subarray(0, k));
      assert.equal(set.size, k);
      for (const v of set) {
        assert.ok(v >= 0 && v < n);
        counts[v]++;
      }
    }
    const E = (runs * k) / n;
    const x = chiSquare(counts, new Float64Array(n).fill(E)) / (1 - k / n);
    assert.ok(x < chiSquareCritical(n - 1), `n=${n} k=${k}: chi-square ${x.toFixed(1)}`);
  }
});

Deno.test("recency: P(pick) = 2^(-age/half-life) / sum for k = 1 (alpha = 0.001); favours recent", () => {
  // Neighbours aged 0, 1, 2, 3, 4 half-lives (half-life 1 day).
  const day = 86400;
  const tx: [number, number, number][] = [0, 1, 2, 3, 4].map((a) => [0, 0, (4 - a) * day]);
  const g = smallGraph(1, 1, tx);
  const at = g.toTick(T0 + 4 * day);
  const B = 1024, batches = 8;
  const sample = (k: number, hl: string) => {
    const cfg = compileSampling(g, [k], { default: "recency", half_life: hl });
    const counts = new Float64Array(5);
    for (let b = 0; b < batches; b++) {
      const out = sampleBatch(g.data, cfg, "users", new Int32Array(B), new Int32Array(B).fill(at), {
        randomSeed: 5,
        batchIndex: b,
      });
      for (const id of out.nodes.tx.ids) counts[id]++; // tx i is i days old
    }
    return counts;
  };
  const c1 = sample(1, "1d");
  const w = [1, 1 / 2, 1 / 4, 1 / 8, 1 / 16], W = w.reduce((a, b) => a + b);
  const x = chiSquare(c1, w.map((v) => (v / W) * B * batches));
  assert.ok(x < chiSquareCritical(4), `chi-square ${x.toFixed(1)}: ${c1}`);
  // k = 2: inclusion decreases with age; a longer half-life flattens it.
  const c2 = sample(2, "1d");
  for (let a = 1; a < 5; a++) assert.ok(c2[a] < c2[a - 1], `${c2}`);
  const flat = sample(2, "1000d");
  assert.ok(Math.max(...flat) / Math.min(...flat) < 1.15, `${flat}`);
});

Deno.test("recency with k > 8 (keys) matches successive weighted draws", () => {
  // 30 candidates aged 0..29 ticks, half-life 10 ticks; k = 10.
  const m = 30, k = 10, runs = 20000, T = 1000, ln = Math.LN2 / 10;
  const ticks = Int32Array.from({ length: m }, (_, j) => T - j);
  const out = new Int32Array(k);
  const keys = new Float64Array(m), ref = new Float64Array(m);
  seedRng(11, 0);
  for (let r = 0; r < runs; r++) {
    pickRecency(ticks, m, k, T, ln, out);
    assert.equal(new Set(out).size, k);
    for (const j of out) keys[j]++;
  }
  // Reference: k draws, each proportional to the remaining weights.
  const w0 = Array.from(ticks, (t) => Math.exp((t - T) * ln));
  for (let r = 0; r < runs; r++) {
    const w = [...w0];
    for (let c = 0; c < k; c++) {
      let x = randOpen01() * w.reduce((a, b) => a + b), j = 0;
      while ((x -= w[j]) > 0 || w[j] === 0) j++;
      ref[j]++;
      w[j] = 0;
    }
  }
  for (let j = 0; j < m; j++) {
    const p = (keys[j] + ref[j]) / (2 * runs);
    const sd = Math.sqrt((p * (1 - p) * 2) / runs);
    assert.ok(
      Math.abs(keys[j] - ref[j]) / runs < 5 * sd + 1e-9,
      `candidate ${j}: ${keys[j]} vs ${ref[j]}`,
    );
    if (j > 0) assert.ok(keys[j] <= keys[j - 1] * 1.05, `not decreasing at ${j}`);
  }
});

Deno.test("recency considers only the most recent max(64·k, 1024) visible neighbours", () => {
  const tx: [number, number, number][] = [];
  for (let i = 0; i < 2000; i++) tx.push([0, 0, i]);
  const g = smallGraph(1, 1, tx);
  const cfg = compileSampling(g, [1], { default: "recency", half_life: "1000d" });
  const out = sampleBatch(
    g.data,
    cfg,
    "users",
    new Int32Array(512),
    new Int32Array(512).fill(TICK_MAX),
    {
      randomSeed: 1,
      batchIndex: 0,
    },
  );
  const ids = [...out.nodes.tx.ids];
  assert.ok(Math.min(...ids) >= 2000 - 1024);
  assert.ok(Math.min(...ids) < 1100); // and it spreads over that window (half-life ≫ span)
});

Deno.test("fanout 0 disables an edge type at a hop, -1 takes all", () => {
  const tx: [number, number, number][] = [];
  for (let i = 0; i < 40; i++) tx.push([i % 2, i % 3, i]);
  const g = smallGraph(2, 3, tx);
  const cfg = compileSampling(g, [{ hop1: { default: -1 } }, { hop2: { default: 2, [TI]: 0 } }]);
  const out = sampleBatch(
    g.data,
    cfg,
    "users",
    Int32Array.of(0, 1),
    Int32Array.of(TICK_MAX, g.toTick(T0 + 9)),
    {
      randomSeed: 0,
      batchIndex: 0,
    },
  );
  assert.equal(out.edges[UT].src.length, 20 + 5);
  assert.equal(out.edges[TI], undefined);
  assert.equal(out.nodes.items, undefined);
  assert.equal(out.edges[TU].src.length, 25);
});

Deno.test("6+ hops on a sparse graph (a chain with a self foreign key)", () => {
  const n = 30;
  const g = buildGraph({
    nodes: [{
      name: "posts",
      count: n,
      times: Float64Array.from({ length: n }, (_, i) => T0 + i),
      primaryKey: "id",
      keys: Float64Array.from({ length: n }, (_, i) => i),
    }],
    foreignKeys: [{
      table: "posts",
      column: "parent",
      parent: "posts",
      childRow: Int32Array.from({ length: n - 1 }, (_, i) => i + 1),
      parentRow: Int32Array.from({ length: n - 1 }, (_, i) => i),
    }],
  });
  const cfg = compileSampling(g, [-1, -1, -1, -1, -1, -1, -1, -1], "recency");
  const seeds = Int32Array.of(20, 5), ticks = Int32Array.of(g.toTick(T0 + 25), g.toTick(T0 + 5));
  const out = sampleBatch(g.data, cfg, "posts", seeds, ticks, { randomSeed: 0, batchIndex: 0 });
  checkOutput(g, cfg, out, "posts", seeds, ticks, { temporal: true });
  // Seed 20 at tick 25: ancestors 19..12 (8 hops) and children 21..25 (5 hops).
  const p = out.nodes.posts;
  const of = (s: number) => [...p.ids].filter((_, i) => p.seed[i] === s).sort((a, b) => a - b);
  assert.deepEqual(of(0), [12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
  assert.deepEqual(of(1), [0, 1, 2, 3, 4, 5]);
  assert.equal(Math.max(...p.hop), 8);
});

Deno.test("a metapath strategy applies only along its path", () => {
  // Item 0 has 30 transactions; from a transaction seed, tx → item → tx with
  // `last` along the metapath gives the most recent visible ones; from a
  // user seed the same edge type (at hop 3) stays uniform.
  const tx: [number, number, number][] = [];
  for (let i = 0; i < 30; i++) tx.push([i % 3, 0, i]);
  const g = smallGraph(3, 1, tx);
  const cfg = compileSampling(g, [1, 3, 3], { default: "uniform", [`${TI} / ${IT}`]: "last" });
  const at = g.toTick(T0 + 20);
  for (let b = 0; b < 5; b++) {
    const out = sampleBatch(g.data, cfg, "tx", Int32Array.of(4), Int32Array.of(at), {
      randomSeed: 9,
      batchIndex: b,
    });
    const e = out.edges[IT], ids = out.nodes.tx.ids;
    const hop2 = [...e.src].filter((_, x) => e.hop[x] === 2).map((l) => ids[l]);
    assert.deepEqual(hop2.sort((a, c) => a - c), [18, 19, 20]);
  }
  const seen = new Set<number>();
  for (let b = 0; b < 20; b++) {
    const out = sampleBatch(g.data, cfg, "users", Int32Array.of(0), Int32Array.of(at), {
      randomSeed: 9,
      batchIndex: b,
    });
    const t = out.nodes.tx;
    for (const id of t.ids.subarray(t.hopOffsets[3], t.hopOffsets[4])) seen.add(id);
  }
  assert.ok(seen.size > 6, `hop 3 from users should be uniform, saw ${[...seen]}`);
});

Deno.test("same batch, same output; another batch index, another sample", () => {
  const tx: [number, number, number][] = [];
  for (let i = 0; i < 200; i++) tx.push([i % 4, i % 7, i]);
  const g = smallGraph(4, 7, tx);
  const cfg = compileSampling(g, [3, 2], "uniform");
  const seeds = Int32Array.of(0, 1, 2, 3), ticks = new Int32Array(4).fill(TICK_MAX);
  const a = sampleBatch(g.data, cfg, "users", seeds, ticks, { randomSeed: 1, batchIndex: 0 });
  const b = sampleBatch(g.data, cfg, "users", seeds, ticks, { randomSeed: 1, batchIndex: 0 });
  const c = sampleBatch(g.data, cfg, "users", seeds, ticks, { randomSeed: 1, batchIndex: 1 });
  const d = sampleBatch(g.data, cfg, "users", seeds, ticks, { randomSeed: 2, batchIndex: 0 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.nodes.tx.ids, c.nodes.tx.ids);
  assert.notDeepEqual(a.nodes.tx.ids, d.nodes.tx.ids);
});

Deno.test("sampleBatch errors", () => {
  const g = smallGraph(2, 1, [[0, 0, 1]]);
  const cfg = compileSampling(g, [2]);
  const o = { randomSeed: 0, batchIndex: 0 };
  throwsWith(
    () => sampleBatch(g.data, cfg, "user", Int32Array.of(0), Int32Array.of(0), o),
    "users, items, tx",
  );
  throwsWith(
    () => sampleBatch(g.data, cfg, "users", Int32Array.of(2), Int32Array.of(0), o),
    "out of range",
  );
  throwsWith(
    () => sampleBatch(g.data, cfg, "users", Int32Array.of(0), Int32Array.of(), o),
    "seed ticks",
  );
  const other = smallGraph(1, 1, []);
  other.data.edges.reverse();
  throwsWith(
    () => sampleBatch(other.data, cfg, "users", Int32Array.of(0), Int32Array.of(0), o),
    "different graph",
  );
});
