/**
 * Reusable scratch of the sampler: growable per-node-type node buffers and
 * per-edge-type edge buffers (filled hop by hop, so each is grouped by hop
 * as it grows), per-expansion work arrays and the dedup table, plus
 * `assemble`, which copies them into the exact-size arrays of a
 * `SamplerOutput`. One `Scratch` lives per thread and is reused across
 * batches, so a batch allocates only its output arrays.
 *
 * The dedup table is an open-addressing hash on (seed, node type, id) →
 * local index, with generation stamps (a new generation per batch, so
 * clearing costs nothing), one slot = 4 adjacent Int32 (generation, seed·
 * numTypes + type, id, local index) so that a probe touches one cache line.
 * It is sized to the batch's subgraph (at most half full), not to the
 * graph, and it is keyed by seed because the sampler expands a whole hop of
 * the batch at once (for memory-level parallelism): the trees of different
 * seeds grow side by side and may share nodes. (A per-node-type "stamp"
 * array of the graph's size cannot tell two seeds apart in that order, and
 * would cost 8 bytes per graph node per worker.)
 *
 * @module
 */

import type { GraphData } from "../store/graph.ts";
import type { SampledEdges, SampledNodes, SamplerOutput } from "./types.ts";

/** Sampled nodes of one type, in local-index order (hop by hop). */
export class NodeBuf {
  /** Global ids. */
  ids: Int32Array = new Int32Array(256);
  /** Seed index of each node. */
  seed: Int32Array = new Int32Array(256);
  /** Tick of each node. */
  time: Int32Array = new Int32Array(256);
  /** Path state of each node (config.ts). */
  state: Int32Array = new Int32Array(256);
  /** Hop of each node. */
  hop: Uint8Array = new Uint8Array(256);
  /** Number of nodes. */
  len = 0;

  /** Makes room for `extra` more nodes. */
  reserve(extra: number): void {
    const need = this.len + extra;
    if (need <= this.ids.length) return;
    const cap = capacity(this.ids.length, need);
    this.ids = grow(this.ids, cap, this.len);
    this.seed = grow(this.seed, cap, this.len);
    this.time = grow(this.time, cap, this.len);
    this.state = grow(this.state, cap, this.len);
    this.hop = grow(this.hop, cap, this.len);
  }
}

/** Sampled edges of one type as local (src, dst) pairs, grouped by hop then destination. */
export class EdgeBuf {
  /** Local index of the source (the neighbour). */
  src: Int32Array = new Int32Array(256);
  /** Local index of the destination (the expanded node). */
  dst: Int32Array = new Int32Array(256);
  /** Hop of each edge. */
  hop: Uint8Array = new Uint8Array(256);
  /** Number of edges. */
  len = 0;

  /** Makes room for `extra` more edges. */
  reserve(extra: number): void {
    const need = this.len + extra;
    if (need <= this.src.length) return;
    const cap = capacity(this.src.length, need);
    this.src = grow(this.src, cap, this.len);
    this.dst = grow(this.dst, cap, this.len);
    this.hop = grow(this.hop, cap, this.len);
  }
}

function capacity(cap: number, need: number): number {
  while (cap < need) cap *= 2;
  return cap;
}

function grow<T extends Int32Array | Uint8Array>(a: T, cap: number, len: number): T {
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a.subarray(0, len));
  return b;
}

/** Per-thread scratch of `sampleBatch`. */
export class Scratch {
  /** Node buffers, one per node type. */
  nodes: NodeBuf[] = [];
  /** Edge buffers, one per edge type. */
  edges: EdgeBuf[] = [];
  /** `hopStart[type·(hops+2) + h]`: local index of the first node of hop h. */
  hopStart: Int32Array = new Int32Array(0);
  /** Dedup table, 4 Int32 per slot: generation, seed·numTypes + type, id, local index. */
  table: Int32Array = new Int32Array(4 << 12);
  /** 32 - log2(slots), for multiplicative hashing. */
  shift = 20;
  /** Entries of the current generation. */
  count = 0;
  /** Current generation (one per batch). */
  gen = 0;
  /** Per frontier node: start of its visible base run. */
  lo: Int32Array = new Int32Array(1024);
  /** Per frontier node: end of its base run, then its visible base count. */
  b: Int32Array = new Int32Array(1024);
  /** Per frontier node: start of its appended run. */
  dlo: Int32Array = new Int32Array(1024);
  /** Per frontier node: its visible appended count. */
  d: Int32Array = new Int32Array(1024);

  /** Picked neighbour ids of one (frontier, edge type) expansion. */
  pickId: Int32Array = new Int32Array(1024);
  /** Their ticks. */
  pickTick: Int32Array = new Int32Array(1024);
  /** The frontier node (local index) each pick was expanded from. */
  pickFrom: Int32Array = new Int32Array(1024);
  /** Indices chosen by a strategy for one node. */
  chosen: Int32Array = new Int32Array(1024);
  /** Candidate ticks (recency; last over appended rows). */
  candTick: Int32Array = new Int32Array(1024);
  /** Candidate ids. */
  candId: Int32Array = new Int32Array(1024);
  /** Second candidate run: ticks. */
  candTick2: Int32Array = new Int32Array(1024);
  /** Second candidate run: ids. */
  candId2: Int32Array = new Int32Array(1024);

  /** Sizes the buffer lists for a graph and hop count, empties them, starts a generation. */
  reset(numTypes: number, numEdgeTypes: number, hops: number): void {
    while (this.nodes.length < numTypes) this.nodes.push(new NodeBuf());
    while (this.edges.length < numEdgeTypes) this.edges.push(new EdgeBuf());
    for (let i = 0; i < numTypes; i++) this.nodes[i].len = 0;
    for (let i = 0; i < numEdgeTypes; i++) this.edges[i].len = 0;
    this.hopStart = new Int32Array(numTypes * (hops + 2));
    this.count = 0;
    if (++this.gen === 0x7fffffff) {
      this.table.fill(0);
      this.gen = 1;
    }
  }

  /** Makes the per-frontier arrays hold `n` entries. */
  reserveFrontier(n: number): void {
    if (n <= this.lo.length) return;
    const cap = capacity(this.lo.length, n);
    this.lo = new Int32Array(cap);
    this.b = new Int32Array(cap);
    this.dlo = new Int32Array(cap);
    this.d = new Int32Array(cap);
  }

  /** Makes the pick arrays hold `n` entries (keeping the first `keep`). */
  reservePicks(n: number, keep: number): void {
    if (n <= this.pickId.length) return;
    const cap = capacity(this.pickId.length, n);
    this.pickId = grow(this.pickId, cap, keep);
    this.pickTick = grow(this.pickTick, cap, keep);
    this.pickFrom = grow(this.pickFrom, cap, keep);
  }

  /** Makes the per-node strategy scratch hold `n` entries per run. */
  reserveCands(n: number): void {
    if (n <= this.candTick.length) return;
    const cap = capacity(this.candTick.length, n);
    this.candTick = new Int32Array(cap);
    this.candId = new Int32Array(cap);
    this.candTick2 = new Int32Array(cap);
    this.candId2 = new Int32Array(cap);
    if (this.chosen.length < cap) this.chosen = new Int32Array(cap);
  }

  /** Makes the chosen-index scratch hold `n` entries. */
  reserveChosen(n: number): void {
    if (n > this.chosen.length) this.chosen = new Int32Array(capacity(this.chosen.length, n));
  }

  /** Makes the dedup table big enough for `extra` more entries (at most half full). */
  reserveTable(extra: number): void {
    let slots = this.table.length >> 2;
    if (2 * (this.count + extra) <= slots) return;
    while (2 * (this.count + extra) > slots) slots *= 2;
    const old = this.table, g = this.gen;
    const table = this.table = new Int32Array(4 * slots);
    const shift = this.shift = 32 - Math.log2(slots), mask = slots - 1;
    for (let i = 0; i < old.length; i += 4) {
      if (old[i] !== g) continue;
      const key = old[i + 1], id = old[i + 2];
      let h = hashSlot(id, key, shift);
      while (table[4 * h] === g) h = (h + 1) & mask;
      table[4 * h] = g;
      table[4 * h + 1] = key;
      table[4 * h + 2] = id;
      table[4 * h + 3] = old[i + 3];
    }
  }
}

/** Slot of (id, key) in a table of 2^(32 - shift) slots. */
export function hashSlot(id: number, key: number, shift: number): number {
  return Math.imul(id ^ Math.imul(key, 0x61c88647), 0x9e3779b1) >>> shift;
}

/** Copies the scratch buffers into exact-size output arrays (see sample.ts for the order). */
export function assemble(
  graph: GraphData,
  sc: Scratch,
  seedT: number,
  seedTicks: Int32Array,
  hops: number,
  eSrcT: Int32Array,
): SamplerOutput {
  const NT = graph.nodes.length, B = seedTicks.length, H2 = hops + 2;
  const nodes: Record<string, SampledNodes> = {};
  for (let t = 0; t < NT; t++) {
    const nb = sc.nodes[t], n = nb.len;
    if (n === 0 && t !== seedT) continue;
    nodes[graph.nodes[t].name] = {
      ids: nb.ids.slice(0, n),
      seed: nb.seed.slice(0, n),
      hop: nb.hop.slice(0, n),
      time: nb.time.slice(0, n),
      hopOffsets: sc.hopStart.slice(t * H2, (t + 1) * H2),
    };
  }
  const edges: Record<string, SampledEdges> = {};
  graph.edges.forEach((ed, e) => {
    const eb = sc.edges[e], n = eb.len;
    if (n === 0) return;
    const numDst = sc.nodes[eSrcT[e]].len;
    const dst = eb.dst.slice(0, n);
    const dstOffsets = new Int32Array(numDst + 1);
    for (let x = 0; x < n; x++) dstOffsets[dst[x] + 1]++;
    for (let d = 0; d < numDst; d++) dstOffsets[d + 1] += dstOffsets[d];
    edges[ed.name] = { src: eb.src.slice(0, n), dst, dstOffsets, hop: eb.hop.slice(0, n) };
  });
  const seedLocal = new Int32Array(B);
  for (let i = 0; i < B; i++) seedLocal[i] = i;
  return {
    seedType: graph.nodes[seedT].name,
    batchSize: B,
    seedTicks: seedTicks.slice(),
    seedLocal,
    nodes,
    edges,
  };
}
