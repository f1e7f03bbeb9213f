/**
 * Test helpers: a tiny relational schema (users ← transactions → stores) and
 * hand-made sampled batches over it, built the way the sampler builds them
 * (disjoint trees per seed, nodes ordered by hop, edges grouped by hop and
 * destination, a reached node sometimes reused instead of added) and
 * uploaded to any backend as a `GpuBatch`.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { Index, Segments } from "../core/index.ts";
import { Rng } from "../core/random.ts";
import { type Tensor, tensor } from "../core/tensor.ts";
import type { EdgeBatch, GpuBatch, NodeBatch } from "../sampler/batch.ts";
import type { SampledEdges, SampledNodes, SamplerOutput } from "../sampler/types.ts";
import type { Architecture, EdgeTypeSpec, ModelSpec, NodeTypeSpec } from "./types.ts";

/** Node types of the tiny schema: featureless users (the seeds), transactions, stores. */
export const TINY_NODE_TYPES: NodeTypeSpec[] = [
  { name: "user", numWidth: 0, cardinality: [], temporal: false },
  { name: "txn", numWidth: 3, cardinality: [4], temporal: true },
  { name: "store", numWidth: 2, cardinality: [3, 2], temporal: false },
];

/** Edge types of the tiny schema (messages flow from `srcType` to `dstType`). */
export const TINY_EDGE_TYPES: EdgeTypeSpec[] = [
  { name: "user.id->txn.user_id", srcType: "txn", dstType: "user" },
  { name: "txn.store_id->store.id", srcType: "store", dstType: "txn" },
  { name: "txn.user_id->user.id", srcType: "user", dstType: "txn" },
  { name: "store.id->txn.store_id", srcType: "txn", dstType: "store" },
];

/** A spec over the tiny schema. */
export function tinySpec(architecture: Architecture, over: Partial<ModelSpec> = {}): ModelSpec {
  return {
    architecture,
    channels: 8,
    layers: 2,
    aggregation: "mean",
    dropout: 0,
    norm: "layer",
    heads: 2,
    seedType: "user",
    outWidth: 1,
    task: "binary",
    nodeTypes: TINY_NODE_TYPES,
    edgeTypes: TINY_EDGE_TYPES,
    ...over,
  };
}

/** Host arrays of a tiny batch: a `SamplerOutput` plus the feature values of every row. */
export interface TinySample {
  /** The sampled structure. */
  sample: SamplerOutput;
  /** Per node type, row-major numerical features `[rows, numWidth]`. */
  num: Record<string, Float32Array>;
  /** Per node type, per slot, codes. */
  cat: Record<string, Int32Array[]>;
  /** Per node type, age in days relative to the seed. */
  relTime: Record<string, Float32Array>;
}

interface Node {
  seed: number;
  hop: number;
}

/**
 * Samples `seeds` disjoint trees over the tiny schema for `hops` hops: each
 * frontier node gets 0..`fanout` neighbours per edge type out of its type,
 * each new (probability 0.8) or an already reached node of the same tree.
 */
export function tinySample(seeds: number, hops: number, fanout = 3, seed = 1): TinySample {
  const rng = new Rng(seed);
  const nodes: Record<string, Node[]> = {};
  for (const t of TINY_NODE_TYPES) nodes[t.name] = [];
  for (let s = 0; s < seeds; s++) nodes.user.push({ seed: s, hop: 0 });
  const pairs: Record<string, { dst: number; src: number; hop: number }[]> = {};
  for (const e of TINY_EDGE_TYPES) pairs[e.name] = [];
  for (let h = 1; h <= hops; h++) {
    for (const t of TINY_NODE_TYPES) {
      const frontier = nodes[t.name].map((n, i) => ({ n, i })).filter((x) => x.n.hop === h - 1);
      for (const e of TINY_EDGE_TYPES.filter((e) => e.dstType === t.name)) {
        const targets = nodes[e.srcType];
        for (const { n, i } of frontier) {
          const k = rng.int(fanout + 1);
          for (let j = 0; j < k; j++) {
            const same = targets.map((m, r) => ({ m, r })).filter((x) => x.m.seed === n.seed);
            let src: number;
            if (same.length > 0 && rng.next() < 0.2) src = same[rng.int(same.length)].r;
            else {
              src = targets.length;
              targets.push({ seed: n.seed, hop: h });
            }
            pairs[e.name].push({ dst: i, src, hop: h });
          }
        }
      }
    }
  }
  const out: SamplerOutput = {
    seedType: "user",
    batchSize: seeds,
    seedTicks: Int32Array.from({ length: seeds }, () => 1000),
    seedLocal: Int32Array.from({ length: seeds }, (_, i) => i),
    nodes: {},
    edges: {},
  };
  const num: Record<string, Float32Array> = {};
  const cat: Record<string, Int32Array[]> = {};
  const relTime: Record<string, Float32Array> = {};
  for (const t of TINY_NODE_TYPES) {
    const list = nodes[t.name];
    if (list.length === 0) continue;
    const hopOffsets = new Int32Array(hops + 2);
    for (const n of list) hopOffsets[n.hop + 1]++;
    for (let h = 0; h <= hops; h++) hopOffsets[h + 1] += hopOffsets[h];
    const sn: SampledNodes = {
      ids: Int32Array.from(list, (_, i) => i),
      seed: Int32Array.from(list, (n) => n.seed),
      hop: Uint8Array.from(list, (n) => n.hop),
      time: Int32Array.from(list, () => 1000 - rng.int(500)),
      hopOffsets,
    };
    out.nodes[t.name] = sn;
    num[t.name] = Float32Array.from({ length: list.length * t.numWidth }, () => rng.normal());
    cat[t.name] = t.cardinality.map((c) => Int32Array.from(list, () => rng.int(c)));
    relTime[t.name] = Float32Array.from(list, (_, i) => t.temporal ? 1000 - sn.time[i] : 0);
  }
  for (const e of TINY_EDGE_TYPES) {
    const list = pairs[e.name];
    if (list.length === 0) continue;
    const dstCount = nodes[e.dstType].length;
    const dstOffsets = new Int32Array(dstCount + 1);
    for (const p of list) dstOffsets[p.dst + 1]++;
    for (let d = 0; d < dstCount; d++) dstOffsets[d + 1] += dstOffsets[d];
    const se: SampledEdges = {
      src: Int32Array.from(list, (p) => p.src),
      dst: Int32Array.from(list, (p) => p.dst),
      dstOffsets,
      hop: Uint8Array.from(list, (p) => p.hop),
    };
    out.edges[e.name] = se;
  }
  return { sample: out, num, cat, relTime };
}

/** Uploads a tiny sample to `backend` as a `GpuBatch` (kept; free it with `dispose()`). */
export function tinyBatch(s: TinySample, backend: Backend): GpuBatch {
  const owned: { dispose(): void }[] = [];
  const own = <T extends Tensor | Index | Segments>(x: T): T => {
    x.keep();
    owned.push(x);
    return x;
  };
  const nodes: Record<string, NodeBatch> = {};
  for (const t of TINY_NODE_TYPES) {
    const sn = s.sample.nodes[t.name];
    if (!sn) continue;
    const count = sn.ids.length;
    nodes[t.name] = {
      type: t.name,
      count,
      ids: sn.ids,
      blockRows: count,
      num: t.numWidth > 0 ? [own(tensor(s.num[t.name], [count, t.numWidth], { backend }))] : [],
      cat: t.cardinality.length > 0
        ? [s.cat[t.name].map((codes, k) => own(new Index(codes, t.cardinality[k])))]
        : [],
      cardinality: t.cardinality,
      relTime: [own(tensor(s.relTime[t.name], [count, 1], { backend }))],
    };
  }
  const edges: Record<string, EdgeBatch> = {};
  for (const e of TINY_EDGE_TYPES) {
    const se = s.sample.edges[e.name];
    if (!se) continue;
    edges[e.name] = {
      type: e.name,
      srcType: e.srcType,
      dstType: e.dstType,
      src: own(new Index(se.src, nodes[e.srcType].count)),
      dst: own(new Segments(se.dstOffsets)),
    };
  }
  return {
    seedType: "user",
    batchSize: s.sample.batchSize,
    seeds: own(new Index(s.sample.seedLocal, nodes.user.count)),
    sample: s.sample,
    nodes,
    edges,
    bytesUploaded: 0,
    dispose() {
      for (const x of owned.splice(0)) x.dispose();
    },
  };
}
