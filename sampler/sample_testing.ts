/**
 * Test helpers for the sampler: a brute-force checker of a `SamplerOutput`
 * against the graph store's reference neighbour lists, chi-square
 * thresholds, and a small users/items/transactions graph builder.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { GraphStore } from "../store/graph.ts";
import { buildGraph } from "../store/graph_build.ts";
import { TICK_MAX } from "../store/ticks.ts";
import type { CompiledSampling } from "./config.ts";
import { LAST } from "./strategies.ts";
import type { SamplerOutput } from "./types.ts";

/** What `checkOutput` verifies beyond structure. */
export interface CheckOptions {
  /** Assert that no sampled node is newer than its seed (true for every strategy). */
  temporal?: boolean;
}

/**
 * Checks every invariant of a sampled batch by brute force (small graphs):
 * layout (hop offsets, seeds first, dst order, dstOffsets), dedup within a
 * seed, node ticks, every edge exists and is visible at the seed's tick, the
 * exact number of picks per (node, edge type) (`min(k, visible)`, all for
 * -1, none for 0), distinct picks, `last` = the most recent, every node
 * reached at its hop, and (optionally) no node newer than its seed.
 * Requires a config without metapaths (strategy per edge type).
 */
export function checkOutput(
  g: GraphStore,
  cfg: CompiledSampling,
  out: SamplerOutput,
  seedType: string,
  seeds: Int32Array,
  ticks: Int32Array,
  opts: CheckOptions = {},
): void {
  assert.equal(cfg.numStates, 1, "checkOutput needs a config without metapaths");
  const B = seeds.length, H = cfg.hops;
  assert.equal(out.seedType, seedType);
  assert.equal(out.batchSize, B);
  assert.deepEqual([...out.seedTicks], [...ticks]);
  assert.deepEqual([...out.seedLocal], [...seeds].map((_, i) => i));
  const T = (s: number) => Math.min(ticks[s], TICK_MAX);
  const edgeIndex = new Map(g.edgeTypes().map((e, i) => [e, i]));
  // Nodes.
  for (const [type, n] of Object.entries(out.nodes)) {
    const len = n.ids.length;
    for (const a of [n.seed, n.hop, n.time]) assert.equal(a.length, len);
    assert.equal(n.hopOffsets.length, H + 2);
    assert.equal(n.hopOffsets[0], 0);
    assert.equal(n.hopOffsets[H + 1], len);
    const seen = new Set<string>();
    for (let h = 0; h <= H; h++) {
      for (let i = n.hopOffsets[h]; i < n.hopOffsets[h + 1]; i++) assert.equal(n.hop[i], h);
    }
    for (let i = 0; i < len; i++) {
      const id = n.ids[i], s = n.seed[i];
      assert.ok(id >= 0 && id < g.numNodes(type), `${type} id ${id}`);
      assert.ok(s >= 0 && s < B);
      assert.equal(n.time[i], g.nodeTime(type, id), `${type} ${id} time`);
      const key = `${s}|${id}`;
      assert.ok(!seen.has(key), `duplicate ${type} ${id} in seed ${s}`);
      seen.add(key);
      if (n.hop[i] > 0 && opts.temporal) {
        assert.ok(n.time[i] <= T(s), `${type} ${id} (tick ${n.time[i]}) newer than seed ${s}`);
      }
    }
  }
  const sn = out.nodes[seedType];
  assert.ok(sn.hopOffsets[1] === B);
  for (let i = 0; i < B; i++) {
    assert.equal(sn.ids[i], seeds[i]);
    assert.equal(sn.seed[i], i);
  }
  // Edges.
  const picks = new Map<string, number[]>(); // `${type}|${local}|${edge}` → neighbour ids
  const reachedBy = new Set<string>(); // `${type}|${local}|${hop}`
  for (const [name, ed] of Object.entries(out.edges)) {
    const e = g.edgeType(name);
    const srcN = out.nodes[e.dst], dstN = out.nodes[e.src];
    assert.ok(srcN && dstN, `${name}: node types present`);
    const m = ed.src.length;
    assert.equal(ed.dst.length, m);
    assert.equal(ed.hop.length, m);
    assert.equal(ed.dstOffsets.length, dstN.ids.length + 1);
    for (let x = 0; x < m; x++) {
      const s = ed.src[x], d = ed.dst[x], h = ed.hop[x];
      if (x > 0) assert.ok(ed.dst[x - 1] <= d, `${name}: dst not sorted`);
      assert.ok(ed.dstOffsets[d] <= x && x < ed.dstOffsets[d + 1], `${name}: dstOffsets`);
      assert.equal(srcN.seed[s], dstN.seed[d], `${name}: edge across seeds`);
      assert.equal(dstN.hop[d] + 1, h, `${name}: dst hop`);
      assert.ok(srcN.hop[s] <= h, `${name}: src hop`);
      if (srcN.hop[s] === h) reachedBy.add(`${e.dst}|${s}|${h}`);
      const seed = dstN.seed[d];
      const vis = g.neighbors(name, dstN.ids[d], T(seed));
      assert.ok(
        vis.ids.includes(srcN.ids[s]),
        `${name}: ${dstN.ids[d]}→${srcN.ids[s]} not visible`,
      );
      const key = `${e.src}|${d}|${name}`;
      if (!picks.has(key)) picks.set(key, []);
      picks.get(key)!.push(srcN.ids[s]);
    }
    for (let d = 0; d < dstN.ids.length; d++) {
      assert.ok(ed.dstOffsets[d] <= ed.dstOffsets[d + 1]);
    }
    assert.equal(ed.dstOffsets[dstN.ids.length], m);
  }
  // Every non-seed node was created by an edge of its hop.
  for (const [type, n] of Object.entries(out.nodes)) {
    for (let i = n.hopOffsets[1]; i < n.ids.length; i++) {
      assert.ok(reachedBy.has(`${type}|${i}|${n.hop[i]}`), `${type} ${i}: no edge reached it`);
    }
  }
  // Exact pick counts for every node that was expanded.
  for (const [type, n] of Object.entries(out.nodes)) {
    for (let i = 0; i < n.ids.length; i++) {
      if (n.hop[i] >= H) continue;
      for (const name of g.edgeTypes()) {
        const e = g.edgeType(name), ei = edgeIndex.get(name)!;
        if (e.src !== type) continue;
        const k = cfg.fanout[n.hop[i]][ei];
        const strat = cfg.strategy[ei];
        const vis = g.neighbors(name, n.ids[i], T(n.seed[i]));
        const want = k < 0 ? vis.ids.length : Math.min(k, vis.ids.length);
        const got = picks.get(`${type}|${i}|${name}`) ?? [];
        assert.equal(got.length, want, `${name} from ${type} ${n.ids[i]}: ${got.length} picks`);
        assert.equal(new Set(got).size, got.length, `${name}: repeated pick`);
        if (strat === LAST) {
          const last = [...vis.ids.subarray(vis.ids.length - want)].sort((a, b) => a - b);
          assert.deepEqual([...got].sort((a, b) => a - b), last, `${name}: last`);
        }
      }
    }
  }
}

/** Upper `1 - alpha` quantile of chi-square with `df` degrees of freedom (Wilson–Hilferty). */
export function chiSquareCritical(df: number, alpha = 0.001): number {
  const z = alpha === 0.001 ? 3.090232 : alpha === 0.01 ? 2.326348 : 1.644854;
  const a = 2 / (9 * df);
  return df * Math.pow(1 - a + z * Math.sqrt(a), 3);
}

/** Pearson's statistic of observed counts against expected counts. */
export function chiSquare(observed: ArrayLike<number>, expected: ArrayLike<number>): number {
  let x = 0;
  for (let i = 0; i < observed.length; i++) x += (observed[i] - expected[i]) ** 2 / expected[i];
  return x;
}

/** Start of the synthetic test time range (epoch seconds). */
export const T0 = 1_700_000_000;

/**
 * A users/items/transactions graph: `tx[i] = [user, item, time offset in
 * seconds from T0]`; users and items have times `userTimes` / `itemTimes`
 * (null: static).
 */
export function smallGraph(
  users: number,
  items: number,
  tx: [number, number, number][],
  userTimes: number[] | null = null,
  itemTimes: number[] | null = null,
): GraphStore {
  const times = (a: number[] | null) => (a ? Float64Array.from(a, (t) => T0 + t) : null);
  return buildGraph({
    nodes: [
      {
        name: "users",
        count: users,
        times: times(userTimes),
        timeColumn: userTimes ? "t" : null,
        primaryKey: "id",
        keys: Float64Array.from({ length: users }, (_, i) => i),
      },
      {
        name: "items",
        count: items,
        times: times(itemTimes),
        timeColumn: itemTimes ? "t" : null,
        primaryKey: "id",
        keys: Float64Array.from({ length: items }, (_, i) => i),
      },
      {
        name: "tx",
        count: tx.length,
        times: Float64Array.from(tx, (r) => T0 + r[2]),
        timeColumn: "t",
        primaryKey: "id",
        keys: Float64Array.from(tx, (_, i) => i),
      },
    ],
    foreignKeys: [
      {
        table: "tx",
        column: "user",
        parent: "users",
        childRow: Int32Array.from(tx, (_, i) => i),
        parentRow: Int32Array.from(tx, (r) => r[0]),
      },
      {
        table: "tx",
        column: "item",
        parent: "items",
        childRow: Int32Array.from(tx, (_, i) => i),
        parentRow: Int32Array.from(tx, (r) => r[1]),
      },
    ],
  });
}
