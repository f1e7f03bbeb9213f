/**
 * What the heterogeneous message-passing layers (SAGE, GAT) share: the
 * trim-by-hop plan of a batch, and `HeteroLayer`, the per node type skeleton
 * `self + Σ messages → norm → activation → dropout → + residual`.
 *
 * ## Trim by hop
 *
 * The sampler orders each node type's rows by hop (`hopOffsets`) and groups
 * each edge type's edges by destination, destinations in hop order, so the
 * destinations reached at hop ≤ h are a prefix of the rows and their edges a
 * prefix of the edges; the sources of an edge out of a hop-h destination are
 * at hop ≤ h + 1. For a model of L layers, with `rows(t, h)` the rows of type
 * t at hop ≤ h (all rows once h ≥ the sampled hops; 0 for h < 0):
 *
 * - the encoders encode `rows(t, L)` rows of each type;
 * - layer l (0-based) reads `rows(t, L − l)` rows of each type and computes
 *   the `rows(t, L − 1 − l)` destination rows, using the edge prefix
 *   `[0, dst.offsets[rows(dstType, L − 1 − l)])` of each edge type;
 * - after the last layer the seed type holds its hop-0 rows: the seeds.
 *
 * Every row computed is read by a later layer, and the seeds' outputs equal
 * those of the untrimmed computation (every layer over every row and edge):
 * a row's output at layer l depends only on its own and its sources' inputs,
 * and those sources are all present with all their edges.
 *
 * @module
 */

import { Index, Segments } from "../core/index.ts";
import { add, dropout, gather } from "../core/ops.ts";
import type { Tensor } from "../core/tensor.ts";
import {
  Activation,
  type ActivationName,
  type InitOptions,
  LayerNorm,
  Linear,
  Module,
  ModuleList,
} from "../core/nn.ts";
import type { GpuBatch } from "../sampler/batch.ts";
import type { EdgeTypeSpec } from "./types.ts";

/** One edge type as one layer uses it (a prefix of the batch's edges when trimming). */
export interface LayerEdges {
  /** Position of the edge type in the layer's `edgeTypes`. */
  slot: number;
  /** Edge type name. */
  type: string;
  /** Node type of the message sources. */
  srcType: string;
  /** Node type of the destinations. */
  dstType: string;
  /** Source row of each edge; `range` = the layer's input rows of `srcType`. */
  src: Index;
  /** Edges grouped by destination; `count` = the layer's output rows of `dstType`. */
  dst: Segments;
}

/** The rows and edges one layer reads and computes. */
export interface LayerPlan {
  /** Rows of each node type in the layer's input (types with none are absent). */
  inRows: Map<string, number>;
  /** Rows of each node type the layer outputs, a prefix of its input (types with none are absent). */
  outRows: Map<string, number>;
  /** Edge types with at least one edge into an output row, in the layer's edge-type order. */
  edges: LayerEdges[];
}

/** The trim-by-hop plan of a batch for a model of `layers` layers. */
export interface HopPlan {
  /** Rows each node type's encoder encodes (types with none are absent). */
  encoderRows: Map<string, number>;
  /** One plan per layer. */
  layers: LayerPlan[];
}

/** Rows of node type `type` in `batch` at hop ≤ `hop` (all rows once `hop` ≥ the sampled hops). */
export function rowsUpToHop(batch: GpuBatch, type: string, hop: number): number {
  const node = batch.nodes[type];
  if (!node || hop < 0) return 0;
  const offsets = batch.sample.nodes[type]?.hopOffsets;
  if (!offsets) {
    throw new Error(
      `fanout: batch has no hop offsets for node type "${type}" (batch.sample.nodes); ` +
        `trimming by hop needs them (or build the model with trim: false)`,
    );
  }
  const last = offsets.length - 2; // offsets has hops + 2 entries
  const rows = offsets[Math.min(hop, last) + 1];
  if (offsets[last + 1] !== node.count) {
    throw new Error(
      `fanout: hop offsets of "${type}" cover ${
        offsets[last + 1]
      } rows, the batch has ${node.count}`,
    );
  }
  return rows;
}

/** `[0, rows)` as an Index into a table of `range` rows. */
export function arangeIndex(rows: number, range: number): Index {
  const v = new Int32Array(rows);
  for (let i = 0; i < rows; i++) v[i] = i;
  return new Index(v, range);
}

/** The first `rows` rows of `x` (`x` itself when it has exactly that many). */
export function prefixRows(x: Tensor, rows: number): Tensor {
  if (x.rows === rows) return x;
  return gather(x, arangeIndex(rows, x.rows));
}

/**
 * Plans which rows and edges each of `layers` layers touches (see the module
 * doc). `edgeTypes` fixes the slot of each edge type; a batch edge type not
 * in it is an error. With `trim: false` every layer reads and computes every
 * row and uses every edge (the reference the trimmed plan must agree with).
 * The prefix `Index`/`Segments` built here belong to the enclosing scope.
 */
export function planHops(
  batch: GpuBatch,
  layers: number,
  edgeTypes: readonly EdgeTypeSpec[],
  trim = true,
): HopPlan {
  const slots = new Map(edgeTypes.map((e, i) => [e.name, i]));
  const types = Object.keys(batch.nodes);
  const rowsAt = (h: number): Map<string, number> => {
    const m = new Map<string, number>();
    for (const t of types) {
      const r = trim ? rowsUpToHop(batch, t, h) : batch.nodes[t].count;
      if (r > 0) m.set(t, r);
    }
    return m;
  };
  const batchEdges = Object.values(batch.edges).map((e) => {
    const slot = slots.get(e.type);
    if (slot === undefined) {
      throw new Error(`fanout: batch edge type "${e.type}" is not one of the model's edge types`);
    }
    const s = edgeTypes[slot];
    if (s.srcType !== e.srcType || s.dstType !== e.dstType) {
      throw new Error(
        `fanout: edge type "${e.type}" runs ${e.srcType} → ${e.dstType} in the batch but ` +
          `${s.srcType} → ${s.dstType} in the model`,
      );
    }
    return { slot, e };
  }).sort((a, b) => a.slot - b.slot);

  const plans: LayerPlan[] = [];
  for (let l = 0; l < layers; l++) {
    const inRows = rowsAt(layers - l), outRows = rowsAt(layers - 1 - l);
    const edges: LayerEdges[] = [];
    for (const { slot, e } of batchEdges) {
      const dstRows = outRows.get(e.dstType) ?? 0;
      const srcRows = inRows.get(e.srcType) ?? 0;
      const count = e.dst.offsets[dstRows];
      if (count === 0) continue;
      const dst = dstRows === e.dst.count
        ? e.dst
        : new Segments(e.dst.offsets.subarray(0, dstRows + 1));
      let src = e.src;
      if (count !== e.src.length || srcRows !== e.src.range) {
        try {
          src = new Index(e.src.values.subarray(0, count), srcRows);
        } catch (err) {
          throw new Error(
            `fanout: edge type "${e.type}": an edge into a row of hop ≤ ${layers - 1 - l} comes ` +
              `from a "${e.srcType}" row beyond hop ${layers - l} (${(err as Error).message})`,
          );
        }
      }
      edges.push({ slot, type: e.type, srcType: e.srcType, dstType: e.dstType, src, dst });
    }
    plans.push({ inRows, outRows, edges });
  }
  return { encoderRows: rowsAt(layers), layers: plans };
}

/** Options shared by the heterogeneous layers. */
export interface HeteroLayerOptions extends InitOptions {
  /** Hidden width (input and output). */
  channels: number;
  /** Node types, in a fixed order (parameter names follow it). */
  nodeTypes: readonly string[];
  /** Edge types, in a fixed order (parameter names follow it). */
  edgeTypes: readonly EdgeTypeSpec[];
  /** Normalisation after summing the messages (default "layer"). */
  norm?: "layer" | "none";
  /** Activation after the normalisation (default "gelu"). */
  activation?: ActivationName;
  /** Dropout after the activation while training (default 0). */
  dropout?: number;
  /** Add the layer's input to its output (default true). */
  residual?: boolean;
}

/**
 * The skeleton of a heterogeneous layer: for each node type t with output
 * rows, `z = self_t(h_t) + Σ_{edge types e into t} message_e(…)`, then
 * `out = h_t + dropout(act(norm_t(z)))` (without `h_t` when `residual` is
 * off), over the rows the plan keeps. `self_t` is a Linear with bias;
 * subclasses define `message`, which must be bias-free (a missing edge type
 * contributes exactly 0). Parameters: `self.<i>` and `norm.<i>` per node
 * type `i`, subclass ones per edge type.
 */
export abstract class HeteroLayer extends Module {
  /** Hidden width. */
  readonly channels: number;
  /** Node types (order of `self` and `norm`). */
  readonly nodeTypes: readonly string[];
  /** Edge types (order of the subclass's per edge type modules). */
  readonly edgeTypes: readonly EdgeTypeSpec[];
  /** Self Linear per node type. */
  readonly self: ModuleList<Linear>;
  /** LayerNorm per node type, or null. */
  readonly norms: ModuleList<LayerNorm> | null;
  /** The activation. */
  readonly act: Activation;
  /** Dropout probability. */
  readonly p: number;
  /** Whether the input is added to the output. */
  readonly residual: boolean;
  #typeSlot: Map<string, number>;

  /** Builds the per node type parts; subclasses add their per edge type parts. */
  constructor(opts: HeteroLayerOptions) {
    super();
    const C = opts.channels;
    this.channels = C;
    this.nodeTypes = [...opts.nodeTypes];
    this.edgeTypes = [...opts.edgeTypes];
    this.#typeSlot = new Map(this.nodeTypes.map((t, i) => [t, i]));
    for (const e of this.edgeTypes) {
      for (const t of [e.srcType, e.dstType]) {
        if (!this.#typeSlot.has(t)) {
          throw new Error(`fanout: edge type "${e.name}" names unknown node type "${t}"`);
        }
      }
    }
    const init = { backend: opts.backend, rng: opts.rng };
    this.self = this.registerModule(
      "self",
      new ModuleList(this.nodeTypes.map(() => new Linear(C, C, init))),
    );
    this.norms = (opts.norm ?? "layer") === "layer"
      ? this.registerModule(
        "norm",
        new ModuleList(this.nodeTypes.map(() => new LayerNorm(C, { backend: opts.backend }))),
      )
      : null;
    this.act = new Activation(opts.activation ?? "gelu");
    this.p = opts.dropout ?? 0;
    this.residual = opts.residual ?? true;
  }

  /** Position of node type `t` (throws for an unknown type). */
  typeSlot(t: string): number {
    const i = this.#typeSlot.get(t);
    if (i === undefined) throw new Error(`fanout: node type "${t}" is not one of the model's`);
    return i;
  }

  /**
   * The messages of one edge type into its destinations: `[edge.dst.count, channels]`.
   * `hSrc` holds the layer's input rows of the source type, `hDst()` the
   * destination type's output rows of the input (computed on demand, shared).
   */
  protected abstract message(edge: LayerEdges, hSrc: Tensor, hDst: () => Tensor): Tensor;

  /** Maps the input rows `h` (per node type) to the output rows of `plan`. */
  forward(h: Map<string, Tensor>, plan: LayerPlan): Map<string, Tensor> {
    const prefix = new Map<string, Tensor>();
    const rowsOf = (t: string): Tensor => {
      let x = prefix.get(t);
      if (!x) {
        const input = h.get(t);
        const rows = plan.outRows.get(t) ?? 0;
        if (!input || input.rows < rows) {
          throw new Error(`fanout: layer input of "${t}" lacks rows (${input?.rows} < ${rows})`);
        }
        x = prefixRows(input, rows);
        prefix.set(t, x);
      }
      return x;
    };
    const sums = new Map<string, Tensor>();
    for (const e of plan.edges) {
      const hSrc = h.get(e.srcType);
      if (!hSrc || hSrc.rows !== e.src.range) {
        throw new Error(
          `fanout: edge type "${e.type}" reads ${e.src.range} "${e.srcType}" rows, ` +
            `the layer input has ${hSrc?.rows ?? 0}`,
        );
      }
      const m = this.message(e, hSrc, () => rowsOf(e.dstType));
      const prev = sums.get(e.dstType);
      sums.set(e.dstType, prev ? add(prev, m) : m);
    }
    const out = new Map<string, Tensor>();
    for (const t of plan.outRows.keys()) {
      const i = this.typeSlot(t);
      const x = rowsOf(t);
      const msg = sums.get(t);
      let z = this.self.at(i).forward(x);
      if (msg) z = add(z, msg);
      if (this.norms) z = this.norms.at(i).forward(z);
      z = dropout(this.act.forward(z), this.p, { training: this.training });
      out.set(t, this.residual ? add(x, z) : z);
    }
    return out;
  }
}
