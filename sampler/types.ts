/**
 * Contracts of sampler/: the sampling configuration (Kumo's `num_neighbors`
 * and temporal strategies), and the index-only `SamplerOutput` that workers
 * transfer to the loader.
 *
 * Direction: sampling walks an edge type `A.x->B.y` from a node of type A to
 * neighbours of type B. In message passing, information flows back toward
 * the seed: from the sampled neighbour (source, type B) to the node it was
 * sampled from (destination, type A). `SampledEdges` is stored that way,
 * grouped by destination, so aggregation is a segment reduction.
 *
 * @module
 */

/** Temporal strategies: see sampler/strategies.ts for exact definitions. */
export type Strategy = "uniform" | "last" | "recency" | "static";

/** The strategies, for validation messages. */
export const STRATEGIES: readonly Strategy[] = ["uniform", "last", "recency", "static"];

/** Nodes of one type in a batch. Nodes of hop h are contiguous: `[hopOffsets[h], hopOffsets[h+1])`. */
export interface SampledNodes {
  /** Global dense ids (graph store ids). */
  ids: Int32Array;
  /** Index of the seed (0..batch-1) whose neighbourhood each node belongs to. */
  seed: Int32Array;
  /** Hop at which each node was reached (0 for seeds). */
  hop: Uint8Array;
  /** Tick of each node (STATIC_TIME for static tables). */
  time: Int32Array;
  /** `hops + 2` offsets: nodes are ordered by hop. */
  hopOffsets: Int32Array;
}

/** Sampled edges of one traversed edge type, as message-passing pairs. */
export interface SampledEdges {
  /** Local index (into the neighbour type's `SampledNodes`) of each message source. */
  src: Int32Array;
  /** Local index (into the sampled-from type's nodes) of each destination; non-decreasing. */
  dst: Int32Array;
  /** CSR over destinations: edges of destination d are `[dstOffsets[d], dstOffsets[d+1])`. */
  dstOffsets: Int32Array;
  /** Hop at which each edge was sampled (1 for edges out of the seeds). */
  hop: Uint8Array;
}

/** One sampled batch: index-only, typed arrays only, transferable without copying. */
export interface SamplerOutput {
  /** Node type of the seeds. */
  seedType: string;
  /** Number of seeds. */
  batchSize: number;
  /** Seed time of each seed, as graph ticks. */
  seedTicks: Int32Array;
  /** Local index of each seed in `nodes[seedType]`. */
  seedLocal: Int32Array;
  /** Sampled nodes per node type (types with no sampled node may be absent). */
  nodes: Record<string, SampledNodes>;
  /** Sampled edges per traversed edge type name (types with no edge may be absent). */
  edges: Record<string, SampledEdges>;
}

/** The transferable buffers of a `SamplerOutput` (for postMessage). */
export function transferables(out: SamplerOutput): ArrayBuffer[] {
  const bufs: ArrayBuffer[] = [
    out.seedTicks.buffer as ArrayBuffer,
    out.seedLocal.buffer as ArrayBuffer,
  ];
  for (const n of Object.values(out.nodes)) {
    bufs.push(
      n.ids.buffer as ArrayBuffer,
      n.seed.buffer as ArrayBuffer,
      n.hop.buffer as ArrayBuffer,
    );
    bufs.push(n.time.buffer as ArrayBuffer, n.hopOffsets.buffer as ArrayBuffer);
  }
  for (const e of Object.values(out.edges)) {
    bufs.push(e.src.buffer as ArrayBuffer, e.dst.buffer as ArrayBuffer);
    bufs.push(e.dstOffsets.buffer as ArrayBuffer, e.hop.buffer as ArrayBuffer);
  }
  return [...new Set(bufs)].filter((b) => !(b instanceof SharedArrayBuffer));
}
