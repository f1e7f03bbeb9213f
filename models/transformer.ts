/**
 * A graph transformer over each seed's sampled subgraph.
 *
 * Tokens are the sampled node rows of every type. A token's input is its
 * node type's `NodeEncoder` output (models/encoder.ts), which already holds
 * the type embedding (the encoder's learned per-type bias) and, for temporal
 * types, the encoding of the row's time relative to its seed (`log1p` and
 * `tanh` features of `relTime`, in days), plus a learned hop embedding (the
 * hop at which the sampler reached the row, clamped to `maxHops - 1`). The
 * types' token blocks are stacked into one `[N, C]` matrix in
 * `spec.nodeTypes` order (`concatRows`).
 *
 * Each token attends to every token sampled for the same seed (its own row
 * included) and to nothing else: the (query, key) pairs are listed on the host
 * from `sample.nodes[t].seed`, grouped by query, so that scores, softmax and
 * the weighted sum are gathers, a per-segment softmax and a segment sum. The
 * blocks are post-norm: `h = LN(h + Drop(Attn(h)))`, `h = LN(h + Drop(FFN(h)))`
 * (no LayerNorm with `spec.norm === "none"`). The last block computes only
 * the seed tokens' rows (all keys, seed queries), and a head MLP maps them
 * to `[batchSize, outWidth]`.
 *
 * Cost: a seed with `n` tokens gives `n²` pairs in every block but the last
 * (`n` there); with fanouts `[16, 8]` from one seed `n = 1 + 16 + 128 = 145`,
 * about 21 000 pairs per seed and per block, and each pair holds about six
 * `C`-wide f32 rows for the backward pass (≈ 3 KiB at C = 128: 64 MiB per
 * seed and block). One `[pairs, C]` tensor must fit one storage binding
 * (128 MiB on software adapters: 262 144 pairs at C = 128, i.e. 12 seeds
 * at `[16, 8]` or 156 at `[8, 4]`, where n = 41 and 1 681 pairs per seed);
 * a batch with more is refused with an error saying so. The transformer
 * therefore suits small fanouts or few seeds per batch.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { Index, Segments } from "../core/index.ts";
import { backendOf, Module, ModuleList } from "../core/module.ts";
import { Embedding, LayerNorm, Linear, MLP } from "../core/nn.ts";
import {
  add,
  concatCols,
  dropout,
  gather,
  matmul,
  mul,
  reshape,
  scale,
  segmentSoftmax,
  segmentSum,
  sliceCols,
} from "../core/ops.ts";
import { nextSeed, Rng } from "../core/random.ts";
import { type Tensor, tensor, zeros } from "../core/tensor.ts";
import type { GpuBatch } from "../sampler/batch.ts";
import { NodeEncoder } from "./encoder.ts";
import type { GraphModel, ModelSpec } from "./types.ts";
import { hasTargetHead, headOf } from "./seed_head.ts";

/** Options of `GraphTransformer`. */
export interface GraphTransformerOptions {
  /** Backend of the parameters; the default backend when omitted. */
  backend?: Backend;
  /** Generator for initial values; seeded from the global stream when omitted. */
  rng?: Rng;
  /** Rows of the hop embedding (default 8); deeper hops share the last row. */
  maxHops?: number;
  /** Feed-forward width as a multiple of `channels` (default 2). */
  ffnMult?: number;
}

/**
 * Rows of `parts` stacked in order (all with the same column count), built
 * from existing ops: each part is viewed as one row `[1, rows·cols]`, the
 * rows are joined with `concatCols` (a buffer copy per part on WebGPU) and
 * the result is viewed as `[Σ rows, cols]`. Differentiable; empty parts are
 * skipped; one part is returned as it is.
 */
export function concatRows(parts: readonly Tensor[]): Tensor {
  if (parts.length === 0) throw new Error("fanout: concatRows needs at least one tensor");
  const cols = parts[0].cols;
  for (const [i, p] of parts.entries()) {
    if (p.shape.length !== 2 || p.shape[1] !== cols) {
      throw new Error(`fanout: concatRows: part ${i} is [${p.shape}], expected [rows, ${cols}]`);
    }
  }
  const live = parts.filter((p) => p.shape[0] > 0);
  if (live.length <= 1) return live[0] ?? parts[0];
  const rows = live.reduce((n, p) => n + p.shape[0], 0);
  return reshape(concatCols(live.map((p) => reshape(p, [1, p.size]))), [rows, cols]);
}

/**
 * Attention pairs grouped by query: pair `p` lets query row `query[p]` read
 * key row `key[p]`; `segments` groups the pairs of each query (one segment
 * per output row), and `rows` lists the token row of each query, or is null
 * when every token is a query in token order.
 */
export interface AttentionPairs {
  /** Token row of each pair's query (range: tokens). */
  query: Index;
  /** Token row of each pair's key (range: tokens). */
  key: Index;
  /** One segment per query over the pairs. */
  segments: Segments;
  /** Token row of each query, or null for all tokens in order. */
  rows: Index | null;
}

/**
 * The pairs of attention within each seed's subgraph: for each query (every
 * token, or the tokens listed in `queries`) all tokens with the same seed,
 * in token order. `seedOf[g]` is the seed of token `g`, in `[0, seeds)`.
 * Builds `Index`/`Segments` in the current scope.
 */
export function seedAttentionPairs(
  seedOf: Int32Array,
  seeds: number,
  queries: Int32Array | null = null,
): AttentionPairs {
  const n = seedOf.length;
  const start = new Int32Array(seeds + 1);
  for (let g = 0; g < n; g++) start[seedOf[g] + 1]++;
  for (let s = 0; s < seeds; s++) start[s + 1] += start[s];
  const members = new Int32Array(n), cursor = start.slice(0, seeds);
  for (let g = 0; g < n; g++) members[cursor[seedOf[g]]++] = g;
  const m = queries ? queries.length : n;
  let pairs = 0;
  for (let i = 0; i < m; i++) {
    const s = seedOf[queries ? queries[i] : i];
    pairs += start[s + 1] - start[s];
  }
  if (pairs > 0x7fffffff) throw new RangeError(`fanout: ${pairs} attention pairs are too many`);
  const offsets = new Int32Array(m + 1);
  for (let i = 0; i < m; i++) {
    const s = seedOf[queries ? queries[i] : i];
    offsets[i + 1] = offsets[i] + start[s + 1] - start[s];
  }
  const query = new Int32Array(pairs), key = new Int32Array(pairs);
  for (let i = 0; i < m; i++) {
    const q = queries ? queries[i] : i, s = seedOf[q];
    query.fill(q, offsets[i], offsets[i + 1]);
    key.set(members.subarray(start[s], start[s + 1]), offsets[i]);
  }
  return {
    query: new Index(query, n),
    key: new Index(key, n),
    segments: new Segments(offsets),
    rows: queries ? new Index(queries, n) : null,
  };
}

/** Options of `TransformerBlock`. */
export interface TransformerBlockOptions {
  /** Backend of the parameters. */
  backend?: Backend;
  /** Initialisation stream. */
  rng?: Rng;
  /** Dropout on attention weights and on both residual branches (default 0). */
  dropout?: number;
  /** LayerNorm after each residual (default true). */
  norm?: boolean;
  /** Feed-forward width as a multiple of `channels` (default 2). */
  ffnMult?: number;
}

/**
 * One post-norm transformer block over attention pairs. Per pair and head,
 * `score = Q[q]·K[k] / √d` is the product of the gathered rows summed over the
 * head's columns (a matmul with a `[C, heads]` block indicator), normalised
 * by a softmax over the query's pairs; the head weights are spread back over
 * their columns (the indicator's transpose) to weigh `V[k]`, and a segment
 * sum per query gives the attention output.
 */
export class TransformerBlock extends Module {
  /** Hidden width. */
  readonly channels: number;
  /** Attention heads. */
  readonly heads: number;
  /** Q, K and V projections in one `[3C, C]` Linear. */
  readonly qkv: Linear;
  /** Output projection. */
  readonly out: Linear;
  /** Feed-forward network `C → ffnMult·C → C` (GELU). */
  readonly ffn: MLP;
  /** Norm after attention (null without norm). */
  readonly norm1: LayerNorm | null;
  /** Norm after the feed-forward network (null without norm). */
  readonly norm2: LayerNorm | null;
  #p: number;
  #heads: Tensor;

  /** A block of width `channels` with `heads` heads (`heads` must divide `channels`). */
  constructor(channels: number, heads: number, opts: TransformerBlockOptions = {}) {
    super();
    if (!(heads >= 1 && channels % heads === 0)) {
      throw new Error(`fanout: transformer: ${heads} heads do not divide ${channels} channels`);
    }
    this.channels = channels;
    this.heads = heads;
    this.#p = opts.dropout ?? 0;
    const backend = backendOf(opts), rng = opts.rng ?? new Rng(nextSeed());
    const init = { backend, rng };
    this.qkv = this.registerModule("qkv", new Linear(channels, 3 * channels, init));
    this.out = this.registerModule("out", new Linear(channels, channels, init));
    const hidden = Math.max(1, Math.round((opts.ffnMult ?? 2) * channels));
    this.ffn = this.registerModule(
      "ffn",
      new MLP([channels, hidden, channels], { ...init, activation: "gelu", dropout: this.#p }),
    );
    const withNorm = opts.norm ?? true;
    this.norm1 = withNorm ? this.registerModule("norm1", new LayerNorm(channels, init)) : null;
    this.norm2 = withNorm ? this.registerModule("norm2", new LayerNorm(channels, init)) : null;
    const d = channels / heads, ind = new Float32Array(channels * heads);
    for (let c = 0; c < channels; c++) ind[c * heads + Math.floor(c / d)] = 1;
    this.#heads = tensor(ind, [channels, heads], { backend }).keep();
  }

  /**
   * `h` `[N, C]` → `[queries, C]`: the rows of `pairs.rows` (all of `h`
   * when null) after attention over their pairs and the feed-forward network.
   */
  forward(h: Tensor, pairs: AttentionPairs): Tensor {
    const C = this.channels, training = this.training;
    const qkv = this.qkv.forward(h);
    const q = sliceCols(qkv, 0, C), k = sliceCols(qkv, C, C), v = sliceCols(qkv, 2 * C, C);
    const prod = mul(gather(q, pairs.query), gather(k, pairs.key));
    const scores = scale(matmul(prod, this.#heads), 1 / Math.sqrt(C / this.heads));
    const att = dropout(segmentSoftmax(scores, pairs.segments), this.#p, { training });
    const weighted = mul(matmul(att, this.#heads, { transB: true }), gather(v, pairs.key));
    const a = this.out.forward(segmentSum(weighted, pairs.segments));
    const x = pairs.rows ? gather(h, pairs.rows) : h;
    const y = this.#norm(this.norm1, add(x, dropout(a, this.#p, { training })));
    return this.#norm(this.norm2, add(y, dropout(this.ffn.forward(y), this.#p, { training })));
  }

  #norm(n: LayerNorm | null, x: Tensor): Tensor {
    return n ? n.forward(x) : x;
  }

  /** Disposes the parameters and the head indicator. */
  override dispose(): void {
    super.dispose();
    this.#heads.dispose();
  }
}

/**
 * The graph transformer (`spec.architecture === "transformer"`): see the
 * module doc. `spec.layers` blocks of `spec.heads` heads over `spec.channels`.
 */
export class GraphTransformer extends Module implements GraphModel {
  /** The spec it was built from. */
  readonly spec: ModelSpec;
  /** Node type → index in `spec.nodeTypes` (token order and encoder slot). */
  readonly typeIndex: ReadonlyMap<string, number>;
  /** Rows of the hop embedding. */
  readonly maxHops: number;
  /** One encoder per node type (features, type bias, relative time), in spec order. */
  readonly encoders: ModuleList<NodeEncoder>;
  /** Hop embedding, `[maxHops, C]`. */
  readonly hopEmbedding: Embedding;
  /** The blocks. */
  readonly blocks: ModuleList<TransformerBlock>;
  /** Seed token → output (`C → C → outWidth`). */
  readonly head: MLP;
  /** Link prediction: the head of target seeds (`spec.targetType`), else null. */
  readonly targetHead: MLP | null;
  readonly #backend: Backend;

  /** Builds the model for `spec` (`spec.heads` must divide `spec.channels`). */
  constructor(spec: ModelSpec, opts: GraphTransformerOptions = {}) {
    super();
    this.spec = spec;
    const backend = this.#backend = backendOf(opts);
    const rng = opts.rng ?? new Rng(nextSeed()), init = { backend, rng };
    const C = spec.channels;
    if (spec.layers < 1) {
      throw new Error(`fanout: transformer needs layers >= 1, got ${spec.layers}`);
    }
    this.typeIndex = new Map(spec.nodeTypes.map((t, i) => [t.name, i]));
    if (!this.typeIndex.has(spec.seedType)) {
      throw new Error(`fanout: transformer: seed type "${spec.seedType}" is not a node type`);
    }
    this.maxHops = opts.maxHops ?? 8;
    this.encoders = this.registerModule(
      "encoders",
      new ModuleList(spec.nodeTypes.map((t) => new NodeEncoder(t, C, init))),
    );
    const emb = { ...init, std: 1 / Math.sqrt(C) };
    this.hopEmbedding = this.registerModule("hopEmbedding", new Embedding(this.maxHops, C, emb));
    const block = {
      ...init,
      dropout: spec.dropout,
      norm: spec.norm !== "none",
      ffnMult: opts.ffnMult,
    };
    this.blocks = this.registerModule(
      "blocks",
      new ModuleList(
        Array.from({ length: spec.layers }, () => new TransformerBlock(C, spec.heads, block)),
      ),
    );
    this.head = this.registerModule(
      "head",
      new MLP([C, C, spec.outWidth], { ...init, activation: "gelu", dropout: spec.dropout }),
    );
    this.targetHead = hasTargetHead(spec)
      ? this.registerModule(
        "targetHead",
        new MLP([C, C, spec.outWidth], { ...init, activation: "gelu", dropout: spec.dropout }),
      )
      : null;
    if (spec.targetType !== undefined && !this.typeIndex.has(spec.targetType)) {
      throw new Error(
        `fanout: transformer: link target type "${spec.targetType}" is not a node type`,
      );
    }
  }

  /** `[batch.batchSize, spec.outWidth]`, row i for seed i. */
  forward(batch: GpuBatch): Tensor {
    const head = headOf(this.spec, batch.seedType, this.head, this.targetHead);
    const { x, seedOf, seedRows } = this.tokens(batch);
    let h = dropout(x, this.spec.dropout, { training: this.training });
    const L = this.blocks.length;
    const all = L > 1 ? this.#pairs(seedOf, batch.batchSize, null) : null;
    this.blocks.items.forEach((b, l) => {
      const last = l === L - 1;
      h = b.forward(h, last ? this.#pairs(seedOf, batch.batchSize, seedRows) : all!);
    });
    return head.forward(h);
  }

  /** The pairs, refused when one `[pairs, C]` f32 tensor would exceed a binding. */
  #pairs(seedOf: Int32Array, seeds: number, rows: Int32Array | null): AttentionPairs {
    const pairs = seedAttentionPairs(seedOf, seeds, rows);
    const limit = (this.#backend as { runtime?: { maxBinding?: number } }).runtime?.maxBinding;
    if (limit && 4 * pairs.key.length * this.spec.channels > limit) {
      throw new RangeError(
        `fanout: transformer: ${pairs.key.length} attention pairs of ${this.spec.channels} ` +
          `channels exceed one binding of ${limit} bytes; use fewer seeds per batch or smaller fanouts`,
      );
    }
    return pairs;
  }

  /**
   * The token matrix `[N, C]` of a batch (types in `spec.nodeTypes` order,
   * rows in batch order within each type), the seed of each token, and the
   * token row of each seed.
   */
  tokens(batch: GpuBatch): { x: Tensor; seedOf: Int32Array; seedRows: Int32Array } {
    const C = this.spec.channels, parts: Tensor[] = [];
    for (const name of Object.keys(batch.nodes)) {
      if (!this.typeIndex.has(name)) {
        throw new Error(`fanout: transformer: batch node type "${name}" is not in the spec`);
      }
    }
    const present = this.spec.nodeTypes.filter((t) => (batch.nodes[t.name]?.count ?? 0) > 0);
    const total = present.reduce((n, t) => n + batch.nodes[t.name].count, 0);
    const seedOf = new Int32Array(total);
    let offset = 0, seedOffset = -1;
    for (const t of present) {
      const node = batch.nodes[t.name], sampled = batch.sample.nodes[t.name];
      const ti = this.typeIndex.get(t.name)!, n = node.count;
      if (t.name === batch.seedType) seedOffset = offset;
      seedOf.set(sampled.seed, offset);
      const hops = new Int32Array(n);
      for (let i = 0; i < n; i++) hops[i] = Math.min(sampled.hop[i], this.maxHops - 1);
      const x = this.encoders.at(ti).forward(node);
      parts.push(add(x, this.hopEmbedding.forward(new Index(hops, this.maxHops))));
      offset += n;
    }
    if (seedOffset < 0 && batch.batchSize > 0) {
      throw new Error(`fanout: transformer: the batch has no "${batch.seedType}" rows`);
    }
    const seedRows = Int32Array.from(batch.seeds.values, (r) => seedOffset + r);
    const x = parts.length ? concatRows(parts) : zeros([0, C], { backend: this.#backend });
    return { x, seedOf, seedRows };
  }
}
