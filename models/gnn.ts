/**
 * Heterogeneous GNNs over sampled batches, and `buildGraphModel`, which
 * builds any architecture of `ModelSpec`.
 *
 * `HeteroGNN.forward(batch)`:
 *
 * 1. one `NodeEncoder` per node type encodes its rows into `channels`;
 * 2. `spec.layers` `SageLayer`s or `GatLayer`s pass messages, each layer
 *    computing only the rows later layers read (trim by hop, see
 *    `message_passing.ts`);
 * 3. the seed rows (`batch.seeds`) go through the head MLP
 *    `channels → channels → outWidth`.
 *
 * A batch must be sampled with at least `spec.layers` hops for every seed to
 * see `spec.layers` hops of neighbourhood (fewer hops is allowed: the last
 * layers then just mix what is there).
 *
 * @module
 */

import { Index } from "../core/index.ts";
import { type ActivationName, MLP, Module, ModuleList } from "../core/nn.ts";
import type { Rng } from "../core/random.ts";
import type { Backend } from "../core/backend.ts";
import { gather } from "../core/ops.ts";
import type { Tensor } from "../core/tensor.ts";
import type { GpuBatch } from "../sampler/batch.ts";
import { NodeEncoder } from "./encoder.ts";
import { GatLayer } from "./gat.ts";
import { type HeteroLayer, planHops } from "./message_passing.ts";
import { SageLayer } from "./sage.ts";
import { GraphTransformer } from "./transformer.ts";
import type { GraphModel, ModelSpec } from "./types.ts";
import { hasTargetHead, headOf } from "./seed_head.ts";
import { LinkModel } from "./link_model.ts";

/** Options of `buildGraphModel` and `HeteroGNN`. */
export interface GraphModelOptions {
  /** Backend of the parameters; the default backend when omitted. */
  backend?: Backend;
  /** Generator for initial values; seeded from the global stream when omitted. */
  rng?: Rng;
  /** Compute only the rows later layers need (default true; false is the reference path). */
  trim?: boolean;
  /** Activation of the layers and the head (default "gelu"). */
  activation?: ActivationName;
}

/**
 * GraphSAGE (`spec.architecture === "sage"`) or GAT (`"gat"`) over the node
 * and edge types of `spec`; see the module doc. Parameters:
 * `encoders.<type slot>.*`, `layers.<l>.*`, `head.*` (slots follow the order
 * of `spec.nodeTypes` and `spec.edgeTypes`).
 */
export class HeteroGNN extends Module implements GraphModel {
  /** The spec it was built from. */
  readonly spec: ModelSpec;
  /** Whether layers compute only the rows later layers need. */
  readonly trim: boolean;
  /** One encoder per node type (spec order). */
  readonly encoders: ModuleList<NodeEncoder>;
  /** The message-passing layers. */
  readonly layers: ModuleList<HeteroLayer>;
  /** `channels → channels → outWidth`. */
  readonly head: MLP;
  /** Link prediction: the head of target seeds (`spec.targetType`), else null. */
  readonly targetHead: MLP | null;
  #typeSlot: Map<string, number>;

  /** Builds the model of `spec` ("sage" or "gat"). */
  constructor(spec: ModelSpec, opts: GraphModelOptions = {}) {
    super();
    checkSpec(spec);
    this.spec = spec;
    this.trim = opts.trim ?? true;
    const init = { backend: opts.backend, rng: opts.rng };
    const C = spec.channels, activation = opts.activation ?? "gelu";
    this.#typeSlot = new Map(spec.nodeTypes.map((t, i) => [t.name, i]));
    this.encoders = this.registerModule(
      "encoders",
      new ModuleList(spec.nodeTypes.map((t) => new NodeEncoder(t, C, init))),
    );
    const layerOpts = {
      ...init,
      channels: C,
      nodeTypes: spec.nodeTypes.map((t) => t.name),
      edgeTypes: spec.edgeTypes,
      norm: spec.norm,
      activation,
      dropout: spec.dropout,
    };
    const layers: HeteroLayer[] = [];
    for (let l = 0; l < spec.layers; l++) {
      layers.push(
        spec.architecture === "gat"
          ? new GatLayer({ ...layerOpts, heads: spec.heads })
          : new SageLayer({ ...layerOpts, aggregation: spec.aggregation }),
      );
    }
    this.layers = this.registerModule("layers", new ModuleList(layers));
    this.head = this.registerModule(
      "head",
      new MLP([C, C, spec.outWidth], { ...init, activation }),
    );
    this.targetHead = hasTargetHead(spec)
      ? this.registerModule("targetHead", new MLP([C, C, spec.outWidth], { ...init, activation }))
      : null;
  }

  /** `[batch.batchSize, spec.outWidth]`, row i for seed i. */
  forward(batch: GpuBatch): Tensor {
    const head = headOf(this.spec, batch.seedType, this.head, this.targetHead);
    const plan = planHops(batch, this.spec.layers, this.spec.edgeTypes, this.trim);
    let h = new Map<string, Tensor>();
    for (const [t, rows] of plan.encoderRows) {
      const slot = this.#typeSlot.get(t);
      if (slot === undefined) {
        throw new Error(`fanout: batch node type "${t}" is not one of the model's node types`);
      }
      h.set(t, this.encoders.at(slot).forward(batch.nodes[t], rows));
    }
    this.layers.items.forEach((layer, l) => h = layer.forward(h, plan.layers[l]));
    const x = h.get(batch.seedType);
    if (!x) throw new Error(`fanout: batch has no "${batch.seedType}" seed rows`);
    const seeds = x.rows === batch.seeds.range
      ? batch.seeds
      : new Index(batch.seeds.values, x.rows);
    return head.forward(gather(x, seeds));
  }
}

function checkSpec(spec: ModelSpec): void {
  const problems: string[] = [];
  const pos = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) {
      problems.push(`${name} must be a positive integer, got ${v}`);
    }
  };
  pos("channels", spec.channels);
  pos("outWidth", spec.outWidth);
  if (!Number.isInteger(spec.layers) || spec.layers < 0) {
    problems.push(`layers must be a non-negative integer, got ${spec.layers}`);
  }
  const names = new Set(spec.nodeTypes.map((t) => t.name));
  if (names.size !== spec.nodeTypes.length) problems.push("node type names repeat");
  if (!names.has(spec.seedType)) problems.push(`seed type "${spec.seedType}" is not a node type`);
  if (spec.targetType !== undefined && !names.has(spec.targetType)) {
    problems.push(`link target type "${spec.targetType}" is not a node type`);
  }
  const edges = new Set(spec.edgeTypes.map((e) => e.name));
  if (edges.size !== spec.edgeTypes.length) problems.push("edge type names repeat");
  if (problems.length) throw new Error(`fanout: invalid model spec: ${problems.join("; ")}`);
}

/**
 * The model of `spec`: a `HeteroGNN` for "sage" and "gat", a
 * `GraphTransformer` (models/transformer.ts) for "transformer"; with
 * `spec.targetType` (link prediction), wrapped in a `LinkModel`
 * (models/link_model.ts).
 */
export function buildGraphModel(spec: ModelSpec, opts: GraphModelOptions = {}): GraphModel {
  let body: GraphModel;
  switch (spec.architecture) {
    case "sage":
    case "gat":
      body = new HeteroGNN(spec, opts);
      break;
    case "transformer":
      body = new GraphTransformer(spec, { backend: opts.backend, rng: opts.rng });
      break;
    default:
      throw new Error(`fanout: unknown architecture "${(spec as ModelSpec).architecture}"`);
  }
  return spec.targetType !== undefined ? new LinkModel(spec, body, opts) : body;
}
