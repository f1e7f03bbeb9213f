/**
 * Heterogeneous GraphSAGE layer. For each node type t with output rows:
 *
 * ```
 * z_t   = self_t(h_t) + Σ_{e: s → t} W_e · AGG_{j ∈ N_e(i)} h_s[j]
 * out_t = h_t + dropout(act(norm_t(z_t)))
 * ```
 *
 * `AGG` is the segment mean, sum or max over the edges of each destination
 * (0 for a destination without edges), `W_e` a bias-free Linear per edge
 * type (aggregating first, then one matmul per destination row), `self_t` a
 * Linear with bias. Rows are trimmed by hop as `message_passing.ts`
 * describes: `forward(h, plan)` computes only `plan.outRows`.
 *
 * @module
 */

import { Linear, ModuleList } from "../core/nn.ts";
import { gather, segmentReduce } from "../core/ops.ts";
import type { Tensor } from "../core/tensor.ts";
import { HeteroLayer, type HeteroLayerOptions, type LayerEdges } from "./message_passing.ts";

/** Options of `SageLayer`. */
export interface SageLayerOptions extends HeteroLayerOptions {
  /** Neighbour aggregation (default "mean"). */
  aggregation?: "mean" | "sum" | "max";
}

/** A heterogeneous GraphSAGE layer; see the module doc. Parameters: `self.*`, `norm.*`, `edge.<slot>.weight`. */
export class SageLayer extends HeteroLayer {
  /** Neighbour aggregation. */
  readonly aggregation: "mean" | "sum" | "max";
  /** Bias-free Linear per edge type (slot order). */
  readonly edge: ModuleList<Linear>;

  /** A layer over `opts.nodeTypes` and `opts.edgeTypes`. */
  constructor(opts: SageLayerOptions) {
    super(opts);
    this.aggregation = opts.aggregation ?? "mean";
    if (!["mean", "sum", "max"].includes(this.aggregation)) {
      throw new Error(`fanout: SageLayer: unknown aggregation "${this.aggregation}"`);
    }
    const init = { backend: opts.backend, rng: opts.rng, bias: false };
    const C = this.channels;
    this.edge = this.registerModule(
      "edge",
      new ModuleList(this.edgeTypes.map(() => new Linear(C, C, init))),
    );
  }

  /** `W_e · AGG(h_src[src])` per destination row. */
  protected message(e: LayerEdges, hSrc: Tensor): Tensor {
    const agg = segmentReduce(gather(hSrc, e.src), e.dst, this.aggregation);
    return this.edge.at(e.slot).forward(agg);
  }
}
