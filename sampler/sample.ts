/**
 * `sampleBatch`: disjoint temporal neighbour sampling of one batch of seeds,
 * directly over the graph store's typed arrays (graph.ts layout).
 *
 * ## Semantics
 *
 * Each seed's neighbourhood is its own tree: the seed is hop 0; at hop `h`
 * every node first reached at hop `h - 1` is expanded over each edge type
 * whose source is its node type, with fanout `config.fanout[h - 1][e]` and
 * the strategy of its path state (config.ts, strategies.ts). Only
 * neighbours visible at the **root seed's** tick are candidates, whatever
 * the strategy. A neighbour already in the same seed's tree (dedup on (seed,
 * node type, id)) gets the edge but no new node and is not expanded again;
 * a new one is added at hop `h` and expanded at hop `h + 1`. Trees of
 * different seeds share nothing: a node appears once per seed that reaches
 * it. When a node is reached twice at the same hop, the first expansion in
 * the processing order below creates it (and fixes its path state).
 *
 * ## Order
 *
 * The batch is expanded hop by hop; within a hop, by frontier node type (in
 * the graph's order), then by edge type (in the graph's order), then by
 * frontier node, then in pick order. Hence per node type the nodes are
 * grouped by hop (`hopOffsets`); the seeds are `nodes[seedType]` 0..B-1
 * (`seedLocal[i] = i`, a repeated seed id gets one tree per occurrence); per
 * edge type the edges are grouped by hop, then by destination
 * (non-decreasing `dst`). When all `n <= k` visible neighbours are taken
 * they come in adjacency order (base run by (tick, id), then appended run).
 *
 * ## Speed
 *
 * Expanding a whole hop of the batch at once, in passes over flat arrays
 * (offsets of every frontier node, then the visible cut of each, then the
 * picks, then the dedup), keeps many independent cache misses in flight;
 * expanding node by node serialises them and was 3× slower. Deterministic:
 * the random stream is seeded from `(randomSeed, batchIndex)` only and
 * consumed in the fixed order above.
 *
 * @module
 */

import { findSorted, type GraphData, upperBound, upperBoundIndirect } from "../store/graph.ts";
import { STATIC_TIME, TICK_MAX } from "../store/ticks.ts";
import type { CompiledSampling } from "./config.ts";
import { assemble, hashSlot, type NodeBuf, Scratch } from "./scratch.ts";
import {
  LAST,
  pickLastMerged,
  pickRecency,
  pickUniform,
  RECENCY,
  recencyWindow,
  seedRng,
} from "./strategies.ts";
import type { SamplerOutput } from "./types.ts";

/** Options of `sampleBatch`. */
export interface SampleOptions {
  /** Random seed of the run. */
  randomSeed: number;
  /** Index of the batch (the random stream of the batch). */
  batchIndex: number;
}

const EMPTY = new Int32Array(0);
let scratch: Scratch | null = null;

/** Per-edge-type arrays of one batch. */
interface EdgeArrays {
  off: Int32Array;
  nbr: Int32Array;
  /** nbrTime, or EMPTY. */
  nt: Int32Array;
  /** 0: ticks in nbrTime; 1: via the destination's node ticks; 2: static destination. */
  mode: number;
  dstTime: Int32Array;
  dSrc: Int32Array;
  dOff: Int32Array;
  dNbr: Int32Array;
  dTime: Int32Array;
}

/**
 * Samples the neighbourhoods of `seeds` (ids of `seedType`) at `seedTicks`
 * (ticks.ts `seedTick`). A pure function of its arguments (the scratch it
 * reuses carries nothing between calls); works on `GraphStore.toShared()`
 * data in a worker. Throws on a config compiled for another graph, an
 * unknown seed type or a seed id out of range.
 */
export function sampleBatch(
  graph: GraphData,
  config: CompiledSampling,
  seedType: string,
  seeds: Int32Array,
  seedTicks: Int32Array,
  opts: SampleOptions,
): SamplerOutput {
  const E = graph.edges.length, NT = graph.nodes.length, H = config.hops;
  if (config.edgeTypes.length !== E || config.edgeTypes.some((n, e) => n !== graph.edges[e].name)) {
    throw new Error("sampleBatch: the sampling config was compiled for a different graph");
  }
  const seedT = graph.nodes.findIndex((n) => n.name === seedType);
  if (seedT < 0) {
    throw new Error(
      `sampleBatch: unknown seed type "${seedType}"; node types: ${
        graph.nodes.map((n) => n.name).join(", ")
      }`,
    );
  }
  const B = seeds.length;
  if (seedTicks.length !== B) {
    throw new Error(`sampleBatch: ${B} seeds but ${seedTicks.length} seed ticks`);
  }
  if (B * NT >= 0x7fffffff) throw new RangeError("sampleBatch: batch too large");
  const typeIndex = new Map(graph.nodes.map((n, i) => [n.name, i]));
  const eSrcT = new Int32Array(E), eDstT = new Int32Array(E);
  const outEdges: number[][] = graph.nodes.map(() => []);
  const arrays: EdgeArrays[] = graph.edges.map((ed, e) => {
    eSrcT[e] = typeIndex.get(ed.src)!;
    eDstT[e] = typeIndex.get(ed.dst)!;
    outEdges[eSrcT[e]].push(e);
    const dst = graph.nodes[eDstT[e]];
    return {
      off: ed.offsets,
      nbr: ed.nbr,
      nt: ed.nbrTime ?? EMPTY,
      mode: ed.nbrTime ? 0 : dst.isStatic ? 2 : 1,
      dstTime: dst.time,
      dSrc: ed.delta.src,
      dOff: ed.delta.offsets,
      dNbr: ed.delta.nbr,
      dTime: ed.delta.time,
    };
  });

  const sc = scratch ??= new Scratch();
  sc.reset(NT, E, H);
  seedRng(opts.randomSeed, opts.batchIndex);

  // Hop 0: the seeds, local indices 0..B-1 of the seed type.
  const seedNode = graph.nodes[seedT];
  const ticks = new Int32Array(B);
  const sb = sc.nodes[seedT];
  sb.reserve(B);
  sc.reserveTable(B);
  const table = sc.table, g = sc.gen, shift = sc.shift, mask = (table.length >> 2) - 1;
  for (let i = 0; i < B; i++) {
    const id = seeds[i];
    if (!(id >= 0 && id < seedNode.count + seedNode.delta.count)) {
      throw new RangeError(`sampleBatch: seed ${i} has id ${id}, out of range for "${seedType}"`);
    }
    ticks[i] = seedTicks[i] > TICK_MAX ? TICK_MAX : seedTicks[i];
    sb.ids[i] = id;
    sb.seed[i] = i;
    sb.time[i] = id < seedNode.count ? seedNode.time[id] : seedNode.delta.time[id - seedNode.count];
    sb.state[i] = config.rootState;
    sb.hop[i] = 0;
    const key = i * NT + seedT;
    let slot = hashSlot(id, key, shift);
    while (table[4 * slot] === g) slot = (slot + 1) & mask;
    table[4 * slot] = g;
    table[4 * slot + 1] = key;
    table[4 * slot + 2] = id;
    table[4 * slot + 3] = i;
  }
  sb.len = B;
  sc.count = B;

  const H2 = H + 2, hopStart = sc.hopStart;
  let h = 1;
  for (; h <= H; h++) {
    for (let t = 0; t < NT; t++) hopStart[t * H2 + h] = sc.nodes[t].len;
    let added = 0;
    for (let t = 0; t < NT; t++) {
      const f0 = hopStart[t * H2 + h - 1], m = hopStart[t * H2 + h] - f0;
      if (m === 0) continue;
      for (const e of outEdges[t]) {
        const k = config.fanout[h - 1][e];
        if (k === 0) continue;
        added += expand(sc, config, arrays[e], e, eDstT[e], NT, h, sc.nodes[t], f0, m, k, ticks);
      }
    }
    if (added === 0) break;
  }
  for (; h <= H + 1; h++) for (let t = 0; t < NT; t++) hopStart[t * H2 + h] = sc.nodes[t].len;
  return assemble(graph, sc, seedT, seedTicks, H, eSrcT);
}

/**
 * Expands the frontier nodes `f0 .. f0+m-1` of `F` (type `src(e)`, hop
 * `h - 1`) over edge type `e` with fanout `k`; returns the number of new
 * nodes.
 */
function expand(
  sc: Scratch,
  config: CompiledSampling,
  a: EdgeArrays,
  e: number,
  u: number,
  NT: number,
  h: number,
  F: NodeBuf,
  f0: number,
  m: number,
  k: number,
  ticks: Int32Array,
): number {
  const E = config.edgeTypes.length;
  const ids = F.ids, seedOf = F.seed, state = F.state;
  const strategy = config.strategy;
  sc.reserveFrontier(m);
  const lo = sc.lo, bb = sc.b;
  const { off, nbr, mode, dstTime } = a;
  const nBase = off.length - 1;
  // With one path state, the strategy is the same for every frontier node.
  const single = config.numStates === 1 ? strategy[e] : -1;
  const hasDelta = a.dSrc.length > 0;
  let pickId = sc.pickId, pickTick = sc.pickTick, pickFrom = sc.pickFrom;
  let c = 0;

  // Pass 1: base runs (independent loads of the offsets).
  let maxDeg = 0;
  for (let r = 0; r < m; r++) {
    const v = ids[f0 + r];
    if (v < nBase) {
      const l = off[v], end = off[v + 1];
      lo[r] = l;
      bb[r] = end;
      if (end - l > maxDeg) maxDeg = end - l;
    } else {
      lo[r] = 0;
      bb[r] = 0;
    }
  }
  if (maxDeg <= 1 && !hasDelta && mode !== 0) {
    // At most one neighbour each (child → parent): read it, check its tick, take it.
    if (m > pickId.length) {
      sc.reservePicks(m, 0);
      pickId = sc.pickId;
      pickTick = sc.pickTick;
      pickFrom = sc.pickFrom;
    }
    for (let r = 0; r < m; r++) {
      if (bb[r] > lo[r]) bb[r] = nbr[lo[r]];
      else bb[r] = -1;
    }
    for (let r = 0; r < m; r++) {
      const id = bb[r];
      if (id < 0) continue;
      const tick = mode === 1 ? dstTime[id] : STATIC_TIME;
      if (tick > ticks[seedOf[f0 + r]]) continue;
      pickId[c] = id;
      pickTick[c] = tick;
      pickFrom[c] = f0 + r;
      c++;
    }
  } else {
    c = pickRuns(sc, config, a, e, F, f0, m, k, ticks, single, hasDelta);
  }
  if (c === 0) return 0;
  pickId = sc.pickId;
  pickTick = sc.pickTick;
  pickFrom = sc.pickFrom;

  // Pass 4: dedup within each seed; new nodes at hop h.
  const nb = sc.nodes[u], eb = sc.edges[e];
  nb.reserve(c);
  eb.reserve(c);
  sc.reserveTable(c);
  const table = sc.table, g = sc.gen, shift = sc.shift, mask = (table.length >> 2) - 1;
  const nIds = nb.ids, nSeed = nb.seed, nTime = nb.time, nState = nb.state, nHop = nb.hop;
  const eSrc = eb.src, eDst = eb.dst, eHop = eb.hop;
  const next = config.next;
  let nlen = nb.len, elen = eb.len;
  const before = nlen;
  for (let x = 0; x < c; x++, elen++) {
    const j = pickFrom[x], id = pickId[x], s = seedOf[j];
    const key = s * NT + u;
    let slot = hashSlot(id, key, shift);
    let local = -1;
    for (;;) {
      const q = 4 * slot;
      if (table[q] !== g) {
        local = nlen++;
        nIds[local] = id;
        nSeed[local] = s;
        nTime[local] = pickTick[x];
        nState[local] = next[state[j] * E + e];
        nHop[local] = h;
        table[q] = g;
        table[q + 1] = key;
        table[q + 2] = id;
        table[q + 3] = local;
        break;
      }
      if (table[q + 2] === id && table[q + 1] === key) {
        local = table[q + 3];
        break;
      }
      slot = (slot + 1) & mask;
    }
    eSrc[elen] = local;
    eDst[elen] = j;
    eHop[elen] = h;
  }
  nb.len = nlen;
  eb.len = elen;
  sc.count += nlen - before;
  return nlen - before;
}

/**
 * Passes 2 and 3 of `expand` for the general case (pass 1 has left each
 * base run in `sc.lo` / `sc.b`): cuts the runs at the seed ticks, then
 * picks per strategy into `sc.pickId` / `pickTick` / `pickFrom`; returns
 * the number of picks.
 */
function pickRuns(
  sc: Scratch,
  config: CompiledSampling,
  a: EdgeArrays,
  e: number,
  F: NodeBuf,
  f0: number,
  m: number,
  k: number,
  ticks: Int32Array,
  single: number,
  hasDelta: boolean,
): number {
  const E = config.edgeTypes.length, strategy = config.strategy;
  const seedOf = F.seed, state = F.state;
  const lo = sc.lo, bb = sc.b, dlo = sc.dlo, dd = sc.d;
  const { nbr, nt, mode, dstTime } = a;
  // Pass 2: visible cut of each base run (bb becomes the visible count).
  for (let r = 0; r < m; r++) {
    const l = lo[r], end = bb[r];
    if (end === l) {
      bb[r] = 0;
      continue;
    }
    const T = ticks[seedOf[f0 + r]];
    if (mode === 0) bb[r] = visibleEnd(nt, l, end, T) - l;
    else if (mode === 1) bb[r] = visibleEndIndirect(nbr, dstTime, l, end, T) - l;
    else bb[r] = end - l;
  }
  // Appended runs.
  if (hasDelta) {
    for (let r = 0; r < m; r++) {
      const s = findSorted(a.dSrc, F.ids[f0 + r]);
      if (s < 0) {
        dlo[r] = 0;
        dd[r] = 0;
        continue;
      }
      const T = ticks[seedOf[f0 + r]];
      dlo[r] = a.dOff[s];
      dd[r] = visibleEnd(a.dTime, a.dOff[s], a.dOff[s + 1], T) - a.dOff[s];
    }
  }

  // Pass 3: picks.
  let pickId = sc.pickId, pickTick = sc.pickTick, pickFrom = sc.pickFrom;
  let c = 0;
  const dn = a.dNbr, dt = a.dTime;
  for (let r = 0; r < m; r++) {
    const b = bb[r], d = hasDelta ? dd[r] : 0, n = b + d;
    if (n === 0) continue;
    const j = f0 + r;
    const take = k < 0 || n <= k ? n : k;
    if (c + take > pickId.length) {
      sc.reservePicks(c + take, c);
      pickId = sc.pickId;
      pickTick = sc.pickTick;
      pickFrom = sc.pickFrom;
    }
    const l = lo[r], dl = hasDelta ? dlo[r] : 0;
    const st = single >= 0 ? single : strategy[state[j] * E + e];
    if (take === n) {
      for (let x = 0; x < b; x++, c++) {
        const p = l + x;
        const id = nbr[p];
        pickId[c] = id;
        pickTick[c] = mode === 0 ? nt[p] : mode === 1 ? dstTime[id] : STATIC_TIME;
        pickFrom[c] = j;
      }
      for (let x = 0; x < d; x++, c++) {
        pickId[c] = dn[dl + x];
        pickTick[c] = dt[dl + x];
        pickFrom[c] = j;
      }
    } else if (st === LAST && d === 0) {
      for (let p = l + b - take; p < l + b; p++, c++) {
        const id = nbr[p];
        pickId[c] = id;
        pickTick[c] = mode === 0 ? nt[p] : mode === 1 ? dstTime[id] : STATIC_TIME;
        pickFrom[c] = j;
      }
    } else if (st === LAST || st === RECENCY) {
      // Gather the tails of both runs, then pick positions in them.
      const w = st === LAST ? take : recencyWindow(take);
      const bw = b < w ? b : w, dw = d < w ? d : w;
      sc.reserveCands(bw + dw);
      const ct = sc.candTick, ci = sc.candId, ct2 = sc.candTick2, ci2 = sc.candId2;
      for (let x = 0; x < bw; x++) {
        const p = l + b - bw + x;
        const id = nbr[p];
        ci[x] = id;
        ct[x] = mode === 0 ? nt[p] : mode === 1 ? dstTime[id] : STATIC_TIME;
      }
      for (let x = 0; x < dw; x++) {
        ci2[x] = dn[dl + d - dw + x];
        ct2[x] = dt[dl + d - dw + x];
      }
      const chosen = sc.chosen;
      if (st === LAST) pickLastMerged(ct, ci, bw, ct2, ci2, dw, take, chosen);
      else {
        for (let x = 0; x < dw; x++) {
          ct[bw + x] = ct2[x];
          ci[bw + x] = ci2[x];
        }
        pickRecency(
          ct,
          bw + dw,
          take,
          ticks[seedOf[j]],
          config.lnPerTick[state[j] * E + e],
          chosen,
        );
      }
      for (let x = 0; x < take; x++, c++) {
        const q = chosen[x];
        if (q < bw || st === RECENCY) {
          pickId[c] = ci[q];
          pickTick[c] = ct[q];
        } else {
          pickId[c] = ci2[q - bw];
          pickTick[c] = ct2[q - bw];
        }
        pickFrom[c] = j;
      }
    } else {
      // uniform, static
      sc.reserveChosen(take);
      const chosen = sc.chosen;
      pickUniform(n, take, chosen);
      for (let x = 0; x < take; x++, c++) {
        const q = chosen[x];
        if (q < b) {
          const p = l + q;
          const id = nbr[p];
          pickId[c] = id;
          pickTick[c] = mode === 0 ? nt[p] : mode === 1 ? dstTime[id] : STATIC_TIME;
        } else {
          pickId[c] = dn[dl + q - b];
          pickTick[c] = dt[dl + q - b];
        }
        pickFrom[c] = j;
      }
    }
  }
  return c;
}

/** End of the prefix of `times[lo..end)` with tick ≤ T (checks the last entry first). */
function visibleEnd(times: Int32Array, lo: number, end: number, T: number): number {
  return times[end - 1] <= T ? end : upperBound(times, lo, end - 1, T);
}

/** Like `visibleEnd`, reading each tick as `dstTime[nbr[i]]`. */
function visibleEndIndirect(
  nbr: Int32Array,
  dstTime: Int32Array,
  lo: number,
  end: number,
  T: number,
): number {
  return dstTime[nbr[end - 1]] <= T ? end : upperBoundIndirect(nbr, dstTime, lo, end - 1, T);
}
