/**
 * `LinkModel`: a graph model for link prediction. Its `body` (a `HeteroGNN` or
 * `GraphTransformer` built with `spec.targetType`) embeds entity seeds and target seeds; the
 * score of an entity–target pair is the dot product of the two embeddings plus a learned
 * weighting of the pair's own history (`history`: how often and how recently the entity
 * linked to that target before its anchor time; see models/link.ts `PastLinks`). The history
 * term makes the model aware of the target's identity, which a dot product of neighbourhood
 * embeddings alone cannot express (the idea of identity-aware GNNs), so repeated links are
 * scored as such while new ones still come from the embeddings.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { Module, type Parameter, parameter } from "../core/module.ts";
import { add, matmul, reshape } from "../core/ops.ts";
import { type Tensor, tensor } from "../core/tensor.ts";
import type { GpuBatch } from "../sampler/batch.ts";
import type { GraphModel, ModelSpec } from "./types.ts";

/** Features of an entity–target pair's history (see `PastLinks.features`). */
export const HISTORY_FEATURES = 2;

/** A link-prediction model: embeddings from `body`, pair scores with a history term. */
export class LinkModel extends Module implements GraphModel {
  /** The spec (with `targetType`). */
  readonly spec: ModelSpec;
  /** Embeds entity and target seeds. */
  readonly body: GraphModel;
  /** `[1, HISTORY_FEATURES]`: the weight of each history feature in a pair's score. */
  readonly history: Parameter;

  /** Wraps `body` (built for `spec`, which must name a `targetType`). */
  constructor(spec: ModelSpec, body: GraphModel, opts: { backend?: Backend } = {}) {
    super();
    if (spec.targetType === undefined) {
      throw new Error("fanout: LinkModel needs spec.targetType (the link's target node type)");
    }
    this.spec = spec;
    this.body = this.registerModule("body", body);
    // Starts by trusting the history a little; training sets how much.
    this.history = this.registerParameter(
      "history",
      parameter(new Float32Array(HISTORY_FEATURES).fill(0.5), [1, HISTORY_FEATURES], {
        backend: opts.backend,
      }),
    );
  }

  /** Embeddings `[batch.batchSize, spec.outWidth]` of the batch's seeds (entities or targets). */
  forward(batch: GpuBatch): Tensor {
    return this.body.forward(batch);
  }

  /**
   * Scores `[rows, cols]` of entity embeddings `[rows, d]` against target embeddings
   * `[cols, d]`, plus the history term of `features` (row-major `rows × cols ×
   * HISTORY_FEATURES`, zero where a pair has no history).
   */
  pairScores(entity: Tensor, target: Tensor, features: Float32Array): Tensor {
    const rows = entity.shape[0], cols = target.shape[0];
    if (features.length !== rows * cols * HISTORY_FEATURES) {
      throw new Error(
        `fanout: pairScores: ${features.length} history values for ${rows} × ${cols} pairs`,
      );
    }
    const dot = matmul(entity, target, { transB: true });
    const f = tensor(features, [rows * cols, HISTORY_FEATURES], { backend: entity.backend });
    return add(dot, reshape(matmul(f, this.history, { transB: true }), [rows, cols]));
  }

  /** The history weights, read back (for scoring on the host). */
  async historyWeights(): Promise<Float32Array> {
    return Float32Array.from(await this.history.data());
  }
}
