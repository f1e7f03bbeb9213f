/**
 * The loader's upload step: a sampled batch (`SamplerOutput`, index-only)
 * plus the feature rows of its nodes become a `GpuBatch` of tensors and
 * index structures on a backend, and `BatchPipeline` keeps the next batch
 * gathered and uploaded while the caller computes on the current one.
 *
 * What a `GpuBatch` holds, per node type (rows in `SamplerOutput` order, so
 * local indices of the sampler address them directly):
 *
 * - `num`: the numerical features, f32 `[rows, numWidth]` (a store in f16 is
 *   widened on the host while decoding);
 * - `cat`: the categorical codes, one `Index` per slot with `range` = the
 *   slot's cardinality (code 0 = null), ready for `Embedding.forward`;
 * - `relTime`: f32 `[rows, 1]`, the seed's tick minus the node's tick in days
 *   (0 for static nodes), or null when disabled.
 *
 * Row blocks: a storage binding holds at most the device's limit (128 MiB on
 * software adapters; `Runtime.alloc` refuses more). When a node type's widest
 * tensor would exceed it, all three are cut at the same row boundaries:
 * block `b` holds rows `[b * blockRows, min(rows, (b + 1) * blockRows))`, and
 * `num[b]`, `cat[b][slot]`, `relTime[b]` are that block's pieces. A consumer
 * encodes block by block (row-wise encoders need nothing else); with real
 * batch sizes there is exactly one block per type.
 * Edge indices are not split: an edge type with more than `limit / 4` edges
 * in one batch is refused with a clear error.
 *
 * Per edge type (`A.x->B.y`, walked from A to B): `src` indexes the message
 * sources (nodes of type B), `dst` segments the edges by destination (nodes
 * of type A), as core/index.ts expects for gathers and segment reductions.
 *
 * Ownership: everything in a `GpuBatch` is created outside any `scope` (kept)
 * and freed by `batch.dispose()`; `BatchPipeline` disposes batch N when batch
 * N+1 is requested.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { type Tensor, tensor } from "../core/tensor.ts";
import { Index, Segments } from "../core/index.ts";
import type { FeatureTableManifest } from "../store/features/format.ts";
import { decodeRows } from "../store/features/encoded_rows.ts";
import { STATIC_TIME } from "../store/ticks.ts";
import type { SampledNodes, SamplerOutput } from "./types.ts";

/** Where the loader reads feature rows: a `FeatureReader` (in-process) or a `GatherPool` (workers). */
export interface RowSource {
  /** Node types with features. */
  tables(): string[];
  /** Row layout of a node type. */
  table(name: string): FeatureTableManifest;
  /** Rows of `ids`, in order (`ids.length × rowBytes` bytes). */
  gather(table: string, ids: Int32Array): Uint8Array | Promise<Uint8Array>;
}

/** One node type of a batch; see the module doc for blocks. */
export interface NodeBatch {
  /** Node type. */
  type: string;
  /** Sampled nodes (rows). */
  count: number;
  /** Global ids of the rows (the sampler's). */
  ids: Int32Array;
  /** Rows per block (every block but the last holds exactly this many). */
  blockRows: number;
  /** Numerical features per block, f32 `[blockRows, numWidth]` (empty when the type has none). */
  num: Tensor[];
  /** Categorical codes per block, then per slot. */
  cat: Index[][];
  /** Vocabulary size of each categorical slot (code 0 included). */
  cardinality: number[];
  /** Relative times in days per block, f32 `[blockRows, 1]`; null when disabled. */
  relTime: Tensor[] | null;
}

/** One traversed edge type of a batch. */
export interface EdgeBatch {
  /** Edge type name. */
  type: string;
  /** Node type of the message sources (the type walked to). */
  srcType: string;
  /** Node type of the destinations (the type walked from). */
  dstType: string;
  /** Local source row of each edge (range: the source type's rows). */
  src: Index;
  /** Edges grouped by destination row (one segment per destination-type row). */
  dst: Segments;
}

/** A sampled batch on a backend; see the module doc. */
export interface GpuBatch {
  /** Node type of the seeds. */
  seedType: string;
  /** Number of seeds. */
  batchSize: number;
  /** Row of each seed within `nodes[seedType]`. */
  seeds: Index;
  /** The sampler's output (host arrays: seed ticks, hops, …). */
  sample: SamplerOutput;
  /** Per node type. */
  nodes: Record<string, NodeBatch>;
  /** Per edge type. */
  edges: Record<string, EdgeBatch>;
  /** Bytes uploaded for this batch. */
  bytesUploaded: number;
  /** Frees every tensor and index of the batch (idempotent). */
  dispose(): void;
}

/** Options of `toGpuBatch`. */
export interface ToGpuBatchOptions {
  /** Compute relative times (default true). */
  relTimes?: boolean;
  /** Seconds per graph tick (the graph store's `timeScale`; default 1). */
  secondsPerTick?: number;
  /** Largest storage binding in bytes (default: the WebGPU device's; unlimited on the CPU). */
  maxBindingBytes?: number;
  /**
   * Node types at both ends of an edge type; default: parsed from the name
   * `A.x->B.y` (walked from A to B, so messages flow from B to A). A
   * `GraphStore` can be passed as `{ edgeEnds: (e) => { const d = graph.edgeType(e);
   * return { from: d.src, to: d.dst }; } }`.
   */
  edgeEnds?: (edgeType: string) => { from: string; to: string };
}

/** `A.x->B.y` → walked from A to B (table names are what precedes each last dot). */
export function parseEdgeEnds(edgeType: string): { from: string; to: string } {
  const parts = edgeType.split("->");
  const table = (side: string) => side.slice(0, Math.max(0, side.lastIndexOf(".")));
  const from = parts.length === 2 ? table(parts[0]) : "";
  const to = parts.length === 2 ? table(parts[1]) : "";
  if (!from || !to) {
    throw new Error(`fanout: edge type "${edgeType}" is not of the form SRC.COLUMN->DST.COLUMN`);
  }
  return { from, to };
}

function maxBindingOf(backend: Backend): number {
  const rt = (backend as { runtime?: { maxBinding?: number } }).runtime;
  return rt?.maxBinding ?? Infinity;
}

/**
 * Builds the `GpuBatch` of `out`: gathers each node type's rows from `rows`
 * (all types at once when the source is asynchronous), decodes them and
 * uploads everything to `backend`, then submits the uploads without waiting.
 * Node types without a feature table get no `num`/`cat` (times still).
 */
export async function toGpuBatch(
  out: SamplerOutput,
  rows: RowSource,
  backend: Backend,
  opts: ToGpuBatchOptions = {},
): Promise<GpuBatch> {
  const limit = opts.maxBindingBytes ?? maxBindingOf(backend);
  const stored = new Set(rows.tables());
  const types = Object.keys(out.nodes);
  const gathered = await Promise.all(
    types.map((t) => stored.has(t) ? rows.gather(t, out.nodes[t].ids) : null),
  );
  const owned: { dispose(): void }[] = [];
  let bytes = 0;
  const own = <T extends Tensor | Index | Segments>(x: T): T => {
    x.keep();
    owned.push(x);
    return x;
  };
  const upload = (data: Float32Array, shape: number[]): Tensor => {
    bytes += data.byteLength;
    return own(tensor(data, shape, { backend }));
  };
  const index = (values: Int32Array, range: number): Index => {
    const ix = own(new Index(values, range));
    ix.storage(backend);
    bytes += values.byteLength;
    return ix;
  };
  const batch: GpuBatch = {
    seedType: out.seedType,
    batchSize: out.batchSize,
    seeds: null as unknown as Index,
    sample: out,
    nodes: {},
    edges: {},
    bytesUploaded: 0,
    dispose() {
      for (const x of owned.splice(0)) x.dispose();
    },
  };
  try {
    types.forEach((type, k) => {
      const nodes = out.nodes[type];
      const meta = stored.has(type) ? rows.table(type) : null;
      const nw = meta?.numWidth ?? 0, cw = meta?.catWidth ?? 0;
      const count = nodes.ids.length;
      const widest = 4 * Math.max(1, nw);
      if (widest > limit) {
        throw new RangeError(
          `fanout: one row of "${type}" (${nw} features) exceeds the binding limit of ${limit} bytes`,
        );
      }
      const blockRows = Math.max(1, Math.min(count, Math.floor(limit / widest)));
      const decoded = meta ? decodeRows(meta, gathered[k]!, count) : null;
      const times = opts.relTimes === false ? null : relativeDays(out, nodes, opts);
      const nb: NodeBatch = {
        type,
        count,
        ids: nodes.ids,
        blockRows,
        num: [],
        cat: [],
        cardinality: meta?.cardinality ?? [],
        relTime: times ? [] : null,
      };
      for (let r0 = 0; r0 < count; r0 += blockRows) {
        const r1 = Math.min(count, r0 + blockRows), n = r1 - r0;
        if (decoded && nw > 0) nb.num.push(upload(decoded.num.subarray(r0 * nw, r1 * nw), [n, nw]));
        if (decoded && cw > 0) {
          const slots: Index[] = [];
          for (let s = 0; s < cw; s++) {
            const codes = new Int32Array(n);
            for (let r = 0; r < n; r++) codes[r] = decoded.cat[(r0 + r) * cw + s];
            slots.push(index(codes, meta!.cardinality[s]));
          }
          nb.cat.push(slots);
        }
        if (times) nb.relTime!.push(upload(times.subarray(r0, r1), [n, 1]));
      }
      batch.nodes[type] = nb;
    });
    const seedRows = out.nodes[out.seedType]?.ids.length ?? 0;
    batch.seeds = index(out.seedLocal, seedRows);
    const ends = opts.edgeEnds ?? parseEdgeEnds;
    for (const [type, e] of Object.entries(out.edges)) {
      const { from, to } = ends(type);
      if (4 * e.src.length > limit) {
        throw new RangeError(
          `fanout: edge type "${type}" has ${e.src.length} edges in one batch, more than one ` +
            `binding of ${limit} bytes holds; use smaller batches or fanouts`,
        );
      }
      const srcRows = out.nodes[to]?.ids.length ?? 0;
      const dstRows = out.nodes[from]?.ids.length ?? 0;
      if (e.dstOffsets.length !== dstRows + 1) {
        throw new RangeError(
          `fanout: edge type "${type}" has ${e.dstOffsets.length - 1} destination segments but ` +
            `the batch has ${dstRows} "${from}" nodes (wrong edgeEnds?)`,
        );
      }
      const dst = own(new Segments(e.dstOffsets));
      dst.storage(backend);
      bytes += e.dstOffsets.byteLength;
      batch.edges[type] = {
        type,
        srcType: to,
        dstType: from,
        src: index(e.src, srcRows),
        dst,
      };
    }
  } catch (err) {
    batch.dispose();
    throw err;
  }
  batch.bytesUploaded = bytes;
  backend.flush();
  return batch;
}

/** Seed tick minus node tick, in days, per node (0 for static nodes). */
function relativeDays(
  out: SamplerOutput,
  nodes: SampledNodes,
  opts: ToGpuBatchOptions,
): Float32Array {
  const scale = (opts.secondsPerTick ?? 1) / 86400;
  const n = nodes.ids.length, rel = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = nodes.time[i];
    rel[i] = t === STATIC_TIME ? 0 : (out.seedTicks[nodes.seed[i]] - t) * scale;
  }
  return rel;
}

// ---- pipeline -------------------------------------------------------------------

/** Options of `BatchPipeline`. */
export interface BatchPipelineOptions extends ToGpuBatchOptions {
  /** Batches prepared ahead of the one being consumed (default 1). */
  prefetch?: number;
}

/** Timing of a pass over a `BatchPipeline`. */
export interface PipelineStats {
  /** Batches delivered. */
  batches: number;
  /** Seconds the consumer spent waiting in `next()`. */
  waitSeconds: number;
  /** Seconds from the first `next()` to the end of the pass (or now). */
  elapsedSeconds: number;
  /** `waitSeconds / elapsedSeconds`: the share of the time the consumer waited on the loader. */
  waitShare: number;
  /** Bytes uploaded. */
  bytesUploaded: number;
}

/**
 * Sampled batches → `GpuBatch`es, one (or `prefetch`) ahead: while the
 * caller computes on batch N, batch N+1's sample is awaited, its rows are
 * gathered (in workers with a `GatherPool`) and its uploads are recorded on
 * the GPU queue. Batch N is disposed when batch N+1 is requested, and the
 * last one when the loop ends.
 *
 * ```ts
 * const pipe = new BatchPipeline(samplerLoader, gatherPool, backend, { secondsPerTick });
 * for await (const batch of pipe) trainStep(batch); // record and submit, do not await the GPU
 * console.log(pipe.stats().waitShare);
 * ```
 */
export class BatchPipeline implements AsyncIterable<GpuBatch> {
  #source: AsyncIterable<SamplerOutput>;
  #rows: RowSource;
  #backend: Backend;
  #opts: BatchPipelineOptions;
  #stats: PipelineStats = emptyStats();
  #start = 0;

  /** A pipeline over `source` (e.g. a `SamplerLoader`), reading rows from `rows`. */
  constructor(
    source: AsyncIterable<SamplerOutput>,
    rows: RowSource,
    backend: Backend,
    opts: BatchPipelineOptions = {},
  ) {
    this.#source = source;
    this.#rows = rows;
    this.#backend = backend;
    this.#opts = opts;
  }

  /** Timing of the current or last pass. */
  stats(): PipelineStats {
    const s = { ...this.#stats };
    if (this.#start > 0 && s.elapsedSeconds === 0) {
      s.elapsedSeconds = (performance.now() - this.#start) / 1000;
    }
    s.waitShare = s.elapsedSeconds > 0 ? s.waitSeconds / s.elapsedSeconds : 0;
    return s;
  }

  /** Iterates the batches (one pass over the source). */
  async *[Symbol.asyncIterator](): AsyncGenerator<GpuBatch> {
    const it = this.#source[Symbol.asyncIterator]();
    const depth = Math.max(1, this.#opts.prefetch ?? 1);
    this.#stats = emptyStats();
    this.#start = performance.now();
    let fetching: Promise<unknown> = Promise.resolve();
    // Samples are requested one after another; gathers and uploads may overlap.
    const prepare = (): Promise<GpuBatch | null> => {
      const sample = fetching.then(() => it.next());
      fetching = sample.catch(() => {});
      return sample.then((r) =>
        r.done ? null : toGpuBatch(r.value, this.#rows, this.#backend, this.#opts)
      );
    };
    const queue: Promise<GpuBatch | null>[] = [];
    const fill = () => {
      while (queue.length < depth) {
        const p = prepare();
        p.catch(() => {}); // observed when its turn comes
        queue.push(p);
      }
    };
    let current: GpuBatch | null = null;
    try {
      fill();
      for (;;) {
        const t0 = performance.now();
        const next = await queue.shift()!;
        this.#stats.waitSeconds += (performance.now() - t0) / 1000;
        current?.dispose();
        current = next;
        if (!next) break;
        fill();
        this.#stats.batches++;
        this.#stats.bytesUploaded += next.bytesUploaded;
        yield next;
      }
    } finally {
      current?.dispose();
      this.#stats.elapsedSeconds = (performance.now() - this.#start) / 1000;
      for (const p of queue.splice(0)) (await p.catch(() => null))?.dispose();
      await it.return?.();
    }
  }
}

function emptyStats(): PipelineStats {
  return { batches: 0, waitSeconds: 0, elapsedSeconds: 0, waitShare: 0, bytesUploaded: 0 };
}
