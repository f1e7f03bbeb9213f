/**
 * Column encoders: the rows of one node type of a batch → `[rows, C]`.
 *
 * ```
 * x = bias_t                                   (learned; all a feature-less type gets)
 *   + Linear(numWidth → C)(num)                (when the type has numerical columns)
 *   + Σ_slots Embedding(card_s, C)(cat_s)      (code 0 = null/OOV has its own vector)
 *   + Linear(TIME_FEATURES → C)(time(relTime)) (temporal types, when the batch has times)
 * ```
 *
 * The time features of the age `d` of a row relative to its seed (days,
 * ≥ 0 by temporal correctness) are `log1p(|d|)` and `tanh(d / τ)` for the
 * scales τ of `TIME_SCALES_DAYS` (a day to a decade): bounded, monotone,
 * each resolving ages around its own scale. They are computed on the device
 * from `relTime` (no sine is in the op set).
 *
 * Row blocks: the encoder takes one block per node type. A batch only splits
 * a type into blocks when one of its tensors exceeds a storage binding (128
 * MiB on software adapters), and then the `[rows, C]` hidden state of the
 * type would not fit one binding either; such batches are refused with an
 * error that says to use smaller batches or fanouts.
 *
 * @module
 */

import { Index } from "../core/index.ts";
import { Embedding, type InitOptions, Linear, Module, ModuleList } from "../core/nn.ts";
import { abs, add, concatCols, gather, log, matmul, scale, tanh } from "../core/ops.ts";
import { backendOf, type Parameter, parameter } from "../core/module.ts";
import { full, type Tensor, tensor } from "../core/tensor.ts";
import type { NodeBatch } from "../sampler/batch.ts";
import { arangeIndex } from "./message_passing.ts";
import type { NodeTypeSpec } from "./types.ts";

/** Scales (days) of the `tanh(d / τ)` time features. */
export const TIME_SCALES_DAYS: readonly number[] = [1, 7, 30, 365, 3650];
/** Number of time features: `log1p(|d|)` and one per scale. */
export const TIME_FEATURES: number = 1 + TIME_SCALES_DAYS.length;

/** Options of `NodeEncoder`. */
export interface NodeEncoderOptions extends InitOptions {
  /** Encode relative times (default: when the type is temporal). */
  time?: boolean;
}

/**
 * Encodes the rows of one node type into the hidden width; see the module
 * doc. Parameters: `bias`, `num.{weight,bias}`, `cat.<slot>.weight`,
 * `time.{weight,bias}` (each only when used).
 */
export class NodeEncoder extends Module {
  /** The node type's inputs. */
  readonly spec: NodeTypeSpec;
  /** Output width. */
  readonly channels: number;
  /** Learned type bias `[C]`. */
  readonly bias: Parameter;
  /** Linear on the numerical block, or null. */
  readonly num: Linear | null;
  /** One embedding per categorical slot. */
  readonly cat: ModuleList<Embedding>;
  /** Linear on the time features, or null. */
  readonly time: Linear | null;
  /** `[1, scales]`: 1 / τ per scale (null without time). */
  #invScale: Tensor | null = null;

  /** An encoder of `spec`'s columns into `channels`. */
  constructor(spec: NodeTypeSpec, channels: number, opts: NodeEncoderOptions = {}) {
    super();
    this.spec = spec;
    this.channels = channels;
    const backend = backendOf(opts);
    const init = { backend, rng: opts.rng };
    this.bias = this.registerParameter(
      "bias",
      parameter(new Float32Array(channels), [channels], {
        backend,
      }),
    );
    this.num = spec.numWidth > 0
      ? this.registerModule("num", new Linear(spec.numWidth, channels, init))
      : null;
    const std = 1 / Math.sqrt(channels);
    this.cat = this.registerModule(
      "cat",
      new ModuleList(spec.cardinality.map((n) => new Embedding(n, channels, { ...init, std }))),
    );
    if (opts.time ?? spec.temporal) {
      this.time = this.registerModule("time", new Linear(TIME_FEATURES, channels, init));
      const inv = TIME_SCALES_DAYS.map((s) => 1 / s);
      this.#invScale = tensor(inv, [1, inv.length], { backend }).keep();
    } else {
      this.time = null;
    }
  }

  /**
   * `[rows, C]` for the first `rows` rows of `node` (all by default).
   * Throws when the node type is split into several blocks, or its columns
   * do not match the spec.
   */
  forward(node: NodeBatch, rows: number = node.count): Tensor {
    const name = this.spec.name;
    if (node.num.length > 1 || node.cat.length > 1 || (node.relTime?.length ?? 0) > 1) {
      throw new RangeError(
        `fanout: node type "${name}" has ${node.count} rows split into blocks of ` +
          `${node.blockRows}: its hidden state would not fit one storage binding either; ` +
          `use smaller batches or fanouts`,
      );
    }
    if (!(rows > 0 && rows <= node.count)) {
      throw new RangeError(`fanout: cannot encode ${rows} of the ${node.count} "${name}" rows`);
    }
    const parts: Tensor[] = [];
    const first = rows < node.count ? arangeIndex(rows, node.count) : null;
    const head = (x: Tensor) => first ? gather(x, first) : x;
    if (this.num) {
      const x = node.num[0];
      if (!x || x.shape[1] !== this.spec.numWidth) {
        throw new Error(
          `fanout: "${name}" expects ${this.spec.numWidth} numerical columns, the batch has ` +
            `${x?.shape[1] ?? 0}`,
        );
      }
      parts.push(this.num.forward(head(x)));
    }
    const slots = this.cat.length;
    if (slots > 0) {
      const codes = node.cat[0];
      if (!codes || codes.length !== slots) {
        throw new Error(
          `fanout: "${name}" expects ${slots} categorical slots, the batch has ${
            codes?.length ?? 0
          }`,
        );
      }
      codes.forEach((c: Index, s) => {
        const cs = first ? new Index(c.values.subarray(0, rows), c.range) : c;
        parts.push(this.cat.at(s).forward(cs));
      });
    }
    if (this.time && node.relTime?.[0]) {
      const d = head(node.relTime[0]); // [rows, 1]
      const logAge = log(scale(abs(d), 1, 1));
      parts.push(this.time.forward(concatCols([logAge, tanh(matmul(d, this.#invScale!))])));
    }
    let x = parts.length
      ? parts[0]
      : full([rows, this.channels], 0, { backend: this.bias.backend });
    for (let i = 1; i < parts.length; i++) x = add(x, parts[i]);
    return add(x, this.bias);
  }

  /** Disposes the parameters and the time-scale constant. */
  override dispose(): void {
    super.dispose();
    this.#invScale?.dispose();
    this.#invScale = null;
  }
}
