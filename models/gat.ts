/**
 * Heterogeneous GAT layer. Per edge type e (sources of type s, destinations
 * of type t), with `H` heads of width `C / H`:
 *
 * ```
 * x_j      = W_e h_s[j]                                  (bias-free, C → C)
 * score_ij = leakyRelu(a_e,src(h_s[j]) + a_e,dst(h_t[i]), 0.2)   ([H] per edge)
 * α_ij     = softmax over the edges into i of score_ij   (segmentSoftmax, per head)
 * m_e[i]   = Σ_j α_ij ⊙ x_j                              (head k's α scales columns of head k)
 * ```
 *
 * and then, as every `HeteroLayer`, `z_t = self_t(h_t) + Σ_e m_e`,
 * `out_t = h_t + dropout(act(norm_t(z_t)))`. GAT's `aᵀ·(W h)` is
 * parametrised directly as a bias-free Linear `C → H` per side (`a_e,src`,
 * `a_e,dst`): the score only ever sees the product `aᵀW`, and the folded
 * form costs one thin matmul per side instead of a `C × C` one. A
 * destination without edges gets `m_e = 0`. Rows are trimmed by hop as
 * `message_passing.ts` describes.
 *
 * @module
 */

import { Linear, Module, ModuleList } from "../core/nn.ts";
import { gather, leakyRelu, matmul, mul, segmentSoftmax, segmentSum } from "../core/ops.ts";
import { type Tensor, tensor } from "../core/tensor.ts";
import { add } from "../core/ops.ts";
import { backendOf } from "../core/module.ts";
import { HeteroLayer, type HeteroLayerOptions, type LayerEdges } from "./message_passing.ts";

/** Options of `GatLayer`. */
export interface GatLayerOptions extends HeteroLayerOptions {
  /** Attention heads; must divide `channels` (default 1). */
  heads?: number;
  /** Negative slope of the score's leaky ReLU (default 0.2). */
  negativeSlope?: number;
}

/** The per edge type parameters of a GAT layer. */
export class GatEdge extends Module {
  /** `W_e`, bias-free `C → C`. */
  readonly lin: Linear;
  /** Source score map, bias-free `C → H`. */
  readonly attSrc: Linear;
  /** Destination score map, bias-free `C → H`. */
  readonly attDst: Linear;

  /** Parameters for width `channels` and `heads` heads. */
  constructor(channels: number, heads: number, init: HeteroLayerOptions) {
    super();
    const o = { backend: init.backend, rng: init.rng, bias: false };
    this.lin = this.registerModule("lin", new Linear(channels, channels, o));
    this.attSrc = this.registerModule("attSrc", new Linear(channels, heads, o));
    this.attDst = this.registerModule("attDst", new Linear(channels, heads, o));
  }
}

/**
 * A heterogeneous GAT layer; see the module doc. Parameters: `self.*`,
 * `norm.*`, `edge.<slot>.{lin,attSrc,attDst}.weight`.
 */
export class GatLayer extends HeteroLayer {
  /** Attention heads. */
  readonly heads: number;
  /** Negative slope of the score's leaky ReLU. */
  readonly negativeSlope: number;
  /** Per edge type parameters (slot order). */
  readonly edge: ModuleList<GatEdge>;
  /** `[H, C]` with ones where column c belongs to head k (null for one head). */
  #expand: Tensor | null = null;

  /** A layer over `opts.nodeTypes` and `opts.edgeTypes`. */
  constructor(opts: GatLayerOptions) {
    super(opts);
    const H = opts.heads ?? 1, C = this.channels;
    if (!Number.isInteger(H) || H < 1 || C % H !== 0) {
      throw new Error(
        `fanout: GatLayer: heads (${H}) must be a positive divisor of channels (${C})`,
      );
    }
    this.heads = H;
    this.negativeSlope = opts.negativeSlope ?? 0.2;
    this.edge = this.registerModule(
      "edge",
      new ModuleList(this.edgeTypes.map(() => new GatEdge(C, H, opts))),
    );
    if (H > 1) {
      const d = new Float32Array(H * C), width = C / H;
      for (let c = 0; c < C; c++) d[Math.floor(c / width) * C + c] = 1;
      this.#expand = tensor(d, [H, C], { backend: backendOf(opts) }).keep();
    }
  }

  /** Attention-weighted sum of the transformed source rows per destination row. */
  protected message(e: LayerEdges, hSrc: Tensor, hDst: () => Tensor): Tensor {
    const p = this.edge.at(e.slot);
    const scoreSrc = gather(p.attSrc.forward(hSrc), e.src);
    const scoreDst = gather(p.attDst.forward(hDst()), e.dst.rowSegment());
    const alpha = segmentSoftmax(leakyRelu(add(scoreSrc, scoreDst), this.negativeSlope), e.dst);
    const weights = this.#expand ? matmul(alpha, this.#expand) : alpha; // [E, C] or [E, 1]
    return segmentSum(mul(gather(p.lin.forward(hSrc), e.src), weights), e.dst);
  }

  /** Disposes the parameters and the head-expansion constant. */
  override dispose(): void {
    super.dispose();
    this.#expand?.dispose();
    this.#expand = null;
  }
}
