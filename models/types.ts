/**
 * Contracts of models/: what a graph model is given at construction
 * (`ModelSpec`, from the feature manifest, the graph's edge types and the
 * plan) and what it does with a batch (`GraphModel.forward`).
 *
 * @module
 */

import type { Module } from "../core/module.ts";
import type { Tensor } from "../core/tensor.ts";
import type { GpuBatch } from "../sampler/batch.ts";
import type { TaskType } from "../store/types.ts";

/** Graph architectures. */
export type Architecture = "sage" | "gat" | "transformer";

/** Per node type input description (from the feature manifest). */
export interface NodeTypeSpec {
  /** Node type (table) name. */
  name: string;
  /** Numerical values per row (0: none). */
  numWidth: number;
  /** Vocabulary size of each categorical slot (code 0 = null/OOV). */
  cardinality: number[];
  /** Whether rows carry a time (relative times are meaningful). */
  temporal: boolean;
}

/** Per traversed edge type (messages flow from `srcType` rows to `dstType` rows). */
export interface EdgeTypeSpec {
  /** Edge type name as sampled (`A.x->B.y`: walked from A to B; messages B → A). */
  name: string;
  /** Node type of message sources (B). */
  srcType: string;
  /** Node type of message destinations (A). */
  dstType: string;
}

/** Everything needed to build a model. */
export interface ModelSpec {
  /** Architecture. */
  architecture: Architecture;
  /** Hidden width. */
  channels: number;
  /** Message-passing layers (≤ sampled hops; layer l only computes rows that later layers need). */
  layers: number;
  /** Neighbour aggregation for SAGE. */
  aggregation: "mean" | "sum" | "max";
  /** Dropout probability. */
  dropout: number;
  /** Normalisation after each layer. */
  norm: "layer" | "none";
  /** Attention heads (GAT, transformer). */
  heads: number;
  /** Node type of the seeds (the entity table). */
  seedType: string;
  /**
   * Link prediction: the node type of the targets. The model then embeds seeds of either type
   * (entity seeds through `head`, target seeds through `targetHead`) into `outWidth` columns,
   * and an entity–target score is the dot product of the two embeddings (models/link.ts).
   */
  targetType?: string;
  /** Output width of the head (1 for binary/regression, classes for multiclass, channels for link embeddings). */
  outWidth: number;
  /** Task, for the head. */
  task: TaskType;
  /** Node types with their inputs. */
  nodeTypes: NodeTypeSpec[];
  /** Edge types that may appear in batches. */
  edgeTypes: EdgeTypeSpec[];
}

/** A graph model: a Module whose forward maps a batch to one output row per seed. */
export interface GraphModel extends Module {
  /** The spec it was built from. */
  readonly spec: ModelSpec;
  /** `[batch.batchSize, spec.outWidth]`, row i for seed i. */
  forward(batch: GpuBatch): Tensor;
}
