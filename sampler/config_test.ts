import assert from "node:assert/strict";
import { throwsWith } from "../store/graph_testing.ts";
import { compileSampling, didYouMean, parseHalfLife, parseNumNeighbors } from "./config.ts";
import { autoFanouts } from "./auto.ts";
import { sampleBatch } from "./sample.ts";
import { smallGraph, T0 } from "./sample_testing.ts";
import { LAST, RECENCY, STATIC, UNIFORM } from "./strategies.ts";

const UT = "users.id->tx.user", TU = "tx.user->users.id";
const TI = "tx.item->items.id", IT = "items.id->tx.item";
const g = smallGraph(3, 2, [[0, 0, 10], [1, 1, 20], [2, 0, 30]], [0, 0, 0]);
// Graph order: TU, UT, TI, IT.

Deno.test("num_neighbors: Kumo YAML, parsed value, short form", () => {
  const yaml = `
num_neighbors:
  - hop1:
      default: 16
      ${UT}: 128
  - hop2:
      default: 8
      ${TI}: 0   # disabled
      ${IT}: -1  # all
`;
  const c = compileSampling(g, yaml);
  assert.equal(c.hops, 2);
  assert.deepEqual([...c.fanout[0]], [16, 128, 16, 16]);
  assert.deepEqual([...c.fanout[1]], [8, 8, 0, -1]);
  assert.deepEqual(c.numNeighbors, [
    { hop1: { default: 16, [UT]: 128 } },
    { hop2: { default: 8, [TI]: 0, [IT]: -1 } },
  ]);
  const parsed = compileSampling(g, [{ hop1: { default: 16, [UT]: 128 } }, {
    hop2: { default: 8 },
  }]);
  assert.deepEqual([...parsed.fanout[0]], [16, 128, 16, 16]);
  const short = compileSampling(g, "[16, 8, 4, 2, 1, 1, 1]");
  assert.equal(short.hops, 7);
  assert.deepEqual([...short.fanout[2]], [4, 4, 4, 4]);
  assert.deepEqual(short.numNeighbors[0], { hop1: { default: 16 } });
  assert.deepEqual([...parseNumNeighbors([{ hop1: 3 }], ["a", "b"]).fanout[0]], [3, 3]);
  assert.deepEqual(compileSampling(g, [-1, 0]).fanout.map((f) => [...f]), [
    [-1, -1, -1, -1],
    [0, 0, 0, 0],
  ]);
});

Deno.test("num_neighbors: clear errors", () => {
  throwsWith(
    () => compileSampling(g, [{ hop1: { default: 4, "tx.user->user.id": 3 } }]),
    `did you mean "${TU}"`,
  );
  throwsWith(
    () => compileSampling(g, [{ hop1: { default: 4, "nope": 3 } }]),
    `edge types: ${TU}, ${UT}, ${TI}, ${IT}`,
  );
  throwsWith(
    () => compileSampling(g, [{ hop1: { default: 4 } }, { hop2: { [UT]: 3 } }]),
    `hop2: no "default"`,
  );
  throwsWith(() => compileSampling(g, [{ hop1: { default: -2 } }]), "below -1");
  throwsWith(() => compileSampling(g, [4, -5]), "fanout -5 is below -1");
  throwsWith(() => compileSampling(g, [4.5]), "must be an integer");
  throwsWith(() => compileSampling(g, [{ hop1: { default: "8" } }]), "must be an integer");
  throwsWith(() => compileSampling(g, [{ hop2: { default: 8 } }]), `expected a single key "hop1"`);
  throwsWith(() => compileSampling(g, []), "at least one hop");
  throwsWith(() => compileSampling(g, { hop1: { default: 1 } }), "must be a list of hops");
  throwsWith(() => compileSampling(g, "[1, 2"), "invalid YAML");
  throwsWith(() => compileSampling(g, new Array(300).fill(1)), "at most 254");
});

Deno.test("strategies: default, per edge type, per metapath, half-life", () => {
  const c0 = compileSampling(g, [2, 2]);
  assert.equal(c0.numStates, 1);
  assert.deepEqual([...c0.strategy], [RECENCY, RECENCY, RECENCY, RECENCY]);
  assert.ok(Math.abs(c0.lnPerTick[0] - Math.LN2 / (30 * 86400)) < 1e-18); // 30d at 1 s/tick
  const c1 = compileSampling(
    g,
    [2, 2, 2],
    `
default: uniform
half_life: 12h
${UT}: last
${IT}: recency
"${UT} / ${TI}": static
${TU}: { strategy: recency, half_life: 90m }
`,
  );
  // States: 0 off-path, 1 root, 2 after UT, 3 after UT/TI.
  assert.equal(c1.numStates, 4);
  assert.equal(c1.rootState, 1);
  const E = 4, at = (s: number, e: number) => c1.strategy[s * E + e];
  assert.deepEqual([0, 1, 2, 3].map((e) => at(0, e)), [RECENCY, LAST, UNIFORM, RECENCY]);
  assert.deepEqual([0, 1, 2, 3].map((e) => at(1, e)), [RECENCY, LAST, UNIFORM, RECENCY]);
  assert.equal(at(2, 2), STATIC); // TI after UT
  assert.equal(c1.next[1 * E + 1], 2);
  assert.equal(c1.next[2 * E + 2], 3);
  assert.equal(c1.next[1 * E + 0], 0);
  assert.equal(c1.next[2 * E + 0], 0);
  assert.ok(Math.abs(c1.lnPerTick[0] - Math.LN2 / 5400) < 1e-15);
  assert.ok(Math.abs(c1.lnPerTick[3] - Math.LN2 / 43200) < 1e-15);
  assert.equal(c1.lnPerTick[1], 0);
  assert.deepEqual([...compileSampling(g, [1], "last").strategy], [LAST, LAST, LAST, LAST]);
  assert.deepEqual([...compileSampling(g, [1], "strategy: static").strategy], [3, 3, 3, 3]);
  const rule = compileSampling(g, [1], { strategy: "recency", half_life: "1d" });
  assert.deepEqual([...rule.strategy], [RECENCY, RECENCY, RECENCY, RECENCY]);
  assert.ok(Math.abs(rule.lnPerTick[2] - Math.LN2 / 86400) < 1e-15);
  const doc = { num_neighbors: [2], strategy: { default: "last", [UT]: "uniform" } };
  assert.deepEqual([...compileSampling(g, doc, doc).strategy], [LAST, UNIFORM, LAST, LAST]);
  const docText = `num_neighbors: [2, 2]\nstrategy: uniform\n`;
  const fromDoc = compileSampling(g, docText, docText);
  assert.equal(fromDoc.hops, 2);
  assert.deepEqual([...fromDoc.strategy], [UNIFORM, UNIFORM, UNIFORM, UNIFORM]);
  assert.equal(parseHalfLife("1.5d"), 1.5 * 86400);
  assert.equal(parseHalfLife(60), 60);
  assert.equal(parseHalfLife("2w"), 14 * 86400);
  assert.equal(parseHalfLife("45 s"), 45);
});

Deno.test("strategies: clear errors", () => {
  throwsWith(() => compileSampling(g, [1], "uniformm"), `did you mean "uniform"`);
  throwsWith(() => compileSampling(g, [1], "random"), "strategies: uniform, last, recency, static");
  throwsWith(() => compileSampling(g, [1], { [UT]: "lats" }), `did you mean "last"`);
  throwsWith(() => compileSampling(g, [1], { "users.id->tx.usr": "last" }), `did you mean "${UT}"`);
  throwsWith(() => compileSampling(g, [1, 1], { [`${UT} / ${UT}`]: "last" }), "ends at tx but");
  throwsWith(() => compileSampling(g, [1], { [`${UT} / ${TI}`]: "last" }), "has 2 edge types but");
  throwsWith(
    () => compileSampling(g, [1, 1], { [`${UT} / tx.item->item.id`]: "last" }),
    "did you mean",
  );
  throwsWith(() => compileSampling(g, [1], { half_life: "3 days" }), "invalid half-life");
  throwsWith(() => compileSampling(g, [1], { half_life: -1 }), "invalid half-life");
  throwsWith(
    () => compileSampling(g, [1], { [UT]: { strategy: "last", half_life: "1d" } }),
    "only to the recency",
  );
  throwsWith(
    () => compileSampling(g, [1], { [UT]: { strategy: "last", k: 1 } }),
    `unknown key "k"`,
  );
  throwsWith(() => compileSampling(g, [1], 5), "expected a strategy name or a map");
  throwsWith(
    () => compileSampling(g, [1, 1], { [`${UT} / ${TI}`]: "last", [`${UT}/${TI}`]: "uniform" }),
    "given twice",
  );
});

Deno.test("didYouMean", () => {
  assert.equal(didYouMean("recncy", ["uniform", "recency"]), ` (did you mean "recency"?)`);
  assert.equal(didYouMean("zzzzzz", ["uniform", "recency"]), "");
});

Deno.test("autoFanouts: Kumo form, more to high-degree relations, holds the budget on average", () => {
  // 300 users with ~10 transactions each, 40 items with ~75 each.
  let s = 17;
  const rnd = (n: number) => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n;
  const tx: [number, number, number][] = [];
  for (let i = 0; i < 3000; i++) tx.push([rnd(300), rnd(40), rnd(1000)]);
  const big = smallGraph(300, 40, tx, new Array(300).fill(0), new Array(40).fill(0));
  for (const budget of [20, 60, 200]) {
    const nn = autoFanouts(big, "users", { budget, hops: 3 });
    assert.equal(nn.length, 3);
    assert.deepEqual(Object.keys(nn[0]), ["hop1"]);
    const hop2 = nn[1].hop2;
    assert.equal(hop2.default, 0);
    assert.equal(hop2[TU], 1);
    assert.equal(hop2[TI], 1);
    assert.ok(nn[2].hop3[IT] >= nn[2].hop3[UT], JSON.stringify(nn));
    // Fresh seeds (other ids, all times visible): mean sampled nodes per seed.
    const cfg = compileSampling(big, nn, "uniform");
    const seeds = Int32Array.from({ length: 300 }, (_, i) => i);
    const ticks = new Int32Array(300).fill(big.toTick(T0 + 2000));
    const out = sampleBatch(big.data, cfg, "users", seeds, ticks, { randomSeed: 3, batchIndex: 1 });
    const total = Object.values(out.nodes).reduce((a, n) => a + n.ids.length, 0) - 300;
    const mean = total / 300;
    assert.ok(mean <= budget * 1.05 && mean >= budget * 0.8, `budget ${budget}: mean ${mean}`);
  }
  throwsWith(() => autoFanouts(big, "tx", { budget: 1, hops: 2 }), "too small");
  throwsWith(() => autoFanouts(big, "user", { budget: 10, hops: 2 }), "unknown seed type");
});
