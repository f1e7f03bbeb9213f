/**
 * `auto` fanouts: from a budget of sampled nodes per seed, fanouts per hop
 * and edge type in Kumo's `num_neighbors` form.
 *
 * ## Allocation rule
 *
 * - A child→parent edge type (at most one neighbour per source) gets
 *   fanout 1 at every hop: a parent is one node and usually the most
 *   informative one.
 * - Every other edge type `e` gets, at hop `h`,
 *   `k(h, e) = min(maxDeg(e), round(α · decay^(h-1) · meanDeg(e)))`, where
 *   `meanDeg(e)` is the mean degree over the sources with at least one
 *   neighbour and `maxDeg(e)` the largest degree (base adjacency): fanouts
 *   proportional to the relation's degree, so high-degree relations get
 *   more, shrinking by `decay` (default 1/2) per hop like `[16, 8]`.
 *   A result of 0 disables the edge type at that hop.
 * - `α` is the largest value (bisection) for which the **measured** mean
 *   number of sampled nodes per seed (the seeds themselves not counted,
 *   after the time filter and the within-seed dedup) is at most `budget`.
 *   It is measured by running `sampleBatch` with the `uniform` strategy on
 *   a calibration sample: the given `seeds` and `seedTicks`, or else up to
 *   `sampleSize` random nodes of the seed type at their latest possible
 *   time (`TICK_MAX`: every neighbour visible, the most a seed can see).
 *
 * The budget therefore holds on average over seeds like the calibration
 * sample; other strategies sample the same numbers of neighbours (they
 * differ in which ones), so the counts carry over up to dedup effects.
 *
 * @module
 */

import type { GraphData } from "../store/graph.ts";
import { GraphStore } from "../store/graph.ts";
import { TICK_MAX } from "../store/ticks.ts";
import { compileSampling, MAX_HOPS, type NumNeighbors } from "./config.ts";
import { sampleBatch } from "./sample.ts";
import { nextU32, seedRng } from "./strategies.ts";

/** Options of `autoFanouts`. */
export interface AutoFanoutOptions {
  /** Mean number of sampled nodes per seed (seeds not counted). */
  budget: number;
  /** Number of hops. */
  hops: number;
  /** Per-hop shrink factor of the fanouts (default 0.5). */
  decay?: number;
  /** Calibration seeds (default: `sampleSize` random nodes of the seed type). */
  seeds?: Int32Array;
  /** Ticks of the calibration seeds (default: TICK_MAX for every seed). */
  seedTicks?: Int32Array;
  /** Calibration sample size when `seeds` is not given (default 256). */
  sampleSize?: number;
  /** Random seed of the calibration (default 0). */
  randomSeed?: number;
  /**
   * Other node types that will be seeds with the same fanouts (a link task's targets): the
   * budget must hold for a calibration sample of each of them too (`sampleSize` random nodes
   * at `TICK_MAX`).
   */
  alsoSeedTypes?: readonly string[];
}

interface EdgeStats {
  forward: boolean;
  meanDeg: number;
  maxDeg: number;
}

function edgeStats(graph: GraphData): EdgeStats[] {
  return graph.edges.map((e) => {
    let withNbr = 0, maxDeg = 0;
    const off = e.offsets;
    for (let s = 0; s + 1 < off.length; s++) {
      const d = off[s + 1] - off[s];
      if (d > 0) withNbr++;
      if (d > maxDeg) maxDeg = d;
    }
    return {
      forward: e.direction === "forward" || maxDeg <= 1,
      meanDeg: withNbr ? e.nbr.length / withNbr : 0,
      maxDeg,
    };
  });
}

/**
 * Fanouts for a budget of sampled nodes per seed, in Kumo's form (every
 * edge type listed per hop, `default: 0`). See the module doc for the rule.
 * Throws when even the child→parent edges alone exceed the budget.
 */
export function autoFanouts(
  graph: GraphStore | GraphData,
  seedType: string,
  opts: AutoFanoutOptions,
): NumNeighbors {
  const data = graph instanceof GraphStore ? graph.data : graph;
  const { budget, hops } = opts;
  const decay = opts.decay ?? 0.5;
  if (!(budget >= 0)) throw new Error(`autoFanouts: budget must be >= 0, got ${budget}`);
  if (!Number.isInteger(hops) || hops < 1 || hops > MAX_HOPS) {
    throw new Error(`autoFanouts: hops must be an integer in [1, ${MAX_HOPS}], got ${hops}`);
  }
  if (!(decay > 0 && decay <= 1)) throw new Error(`autoFanouts: decay must be in (0, 1]`);
  const nodeOf = (type: string) => {
    const node = data.nodes.find((n) => n.name === type);
    if (!node) {
      throw new Error(
        `autoFanouts: unknown seed type "${type}"; node types: ${
          data.nodes.map((n) => n.name).join(", ")
        }`,
      );
    }
    return node;
  };
  const randomSeeds = (type: string) => {
    const node = nodeOf(type);
    const total = node.count + node.delta.count;
    const m = Math.min(total, opts.sampleSize ?? 256);
    seedRng(opts.randomSeed ?? 0, 0x7a11);
    const ids = new Int32Array(m);
    for (let i = 0; i < m; i++) ids[i] = nextU32() % total;
    return ids;
  };
  nodeOf(seedType);
  const seeds = opts.seeds ?? randomSeeds(seedType);
  const seedTicks = opts.seedTicks ?? new Int32Array(seeds.length).fill(TICK_MAX);
  // The calibration samples: the seeds, and a random sample of each other seed type.
  const samples = [{ type: seedType, seeds, seedTicks }];
  for (const type of opts.alsoSeedTypes ?? []) {
    if (type === seedType) continue;
    const ids = randomSeeds(type);
    samples.push({ type, seeds: ids, seedTicks: new Int32Array(ids.length).fill(TICK_MAX) });
  }
  const stats = edgeStats(data);

  const fanoutsAt = (alpha: number): number[][] => {
    const out: number[][] = [];
    for (let h = 1; h <= hops; h++) {
      const scale = alpha * Math.pow(decay, h - 1);
      out.push(
        stats.map((s) =>
          s.forward ? (s.maxDeg > 0 ? 1 : 0) : Math.min(s.maxDeg, Math.round(scale * s.meanDeg))
        ),
      );
    }
    return out;
  };
  const kumo = (f: number[][]): NumNeighbors =>
    f.map((row, h) => {
      const hop: Record<string, number> = { default: 0 };
      data.edges.forEach((e, i) => (hop[e.name] = row[i]));
      return { [`hop${h + 1}`]: hop };
    });
  const cache = new Map<string, number>();
  const measure = (f: number[][]): number => {
    const key = f.map((r) => r.join(",")).join(";");
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const cfg = compileSampling(data, kumo(f), "uniform");
    // The largest mean over the calibration samples.
    let worst = 0;
    for (const c of samples) {
      const out = sampleBatch(data, cfg, c.type, c.seeds, c.seedTicks, {
        randomSeed: opts.randomSeed ?? 0,
        batchIndex: 0,
      });
      let total = 0;
      for (const n of Object.values(out.nodes)) total += n.ids.length;
      worst = Math.max(worst, c.seeds.length ? (total - c.seeds.length) / c.seeds.length : 0);
    }
    cache.set(key, worst);
    return worst;
  };

  const low = measure(fanoutsAt(0));
  if (low > budget) {
    throw new Error(
      `autoFanouts: budget ${budget} is too small: following only the child→parent edge types ` +
        `already samples ${low.toFixed(1)} nodes per seed over ${hops} hops`,
    );
  }
  // Past alphaMax every fanout is at its largest degree.
  let alphaMax = 1;
  for (const s of stats) {
    if (!s.forward && s.meanDeg > 0) {
      alphaMax = Math.max(alphaMax, (s.maxDeg + 1) / (s.meanDeg * Math.pow(decay, hops - 1)));
    }
  }
  if (measure(fanoutsAt(alphaMax)) <= budget) return kumo(fanoutsAt(alphaMax));
  let lo = 0, hi = alphaMax;
  for (let it = 0; it < 40 && hi - lo > 1e-6 * hi; it++) {
    const mid = lo === 0 ? Math.min(hi / 2, 1) : Math.sqrt(lo * hi);
    if (measure(fanoutsAt(mid)) <= budget) lo = mid;
    else hi = mid;
  }
  return kumo(fanoutsAt(lo));
}
