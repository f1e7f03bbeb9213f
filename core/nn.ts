/**
 * Neural-network building blocks on the core op set, PyTorch-like: `Linear`,
 * `LayerNorm`, `Embedding`, `Dropout`, `Activation`, `MLP`, plus the
 * `Module` machinery re-exported from `module.ts`.
 *
 * Initialisation draws from a seeded `Rng`: pass `rng` for a private stream,
 * or leave it out to seed one from the global stream (`manualSeed`).
 *
 * @example
 * ```ts
 * const mlp = new MLP([16, 64, 1], { activation: "gelu", dropout: 0.1 });
 * const y = mlp.forward(x); // x: [batch, 16] → [batch, 1]
 * ```
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { type Tensor, tensor } from "./tensor.ts";
import {
  add,
  dropout,
  embedding,
  gelu,
  layerNorm,
  leakyRelu,
  matmul,
  relu,
  sigmoid,
  tanh,
} from "./ops.ts";
import type { Index } from "./index.ts";
import { nextSeed, Rng } from "./random.ts";
import { backendOf, type Layer, Module, type Parameter, parameter, Sequential } from "./module.ts";

export {
  backendOf,
  checkStateValue,
  hostData,
  type HostTensor,
  type Layer,
  type LoadStateOptions,
  Module,
  ModuleList,
  type Parameter,
  parameter,
  type ParameterOptions,
  Sequential,
  type StateValue,
} from "./module.ts";

/** Options shared by layers with parameters. */
export interface InitOptions {
  /** Backend of the parameters; the default backend when omitted. */
  backend?: Backend;
  /** Generator for initial values; a fresh one seeded from the global stream when omitted. */
  rng?: Rng;
}

function rngOf(opts: InitOptions): Rng {
  return opts.rng ?? new Rng(nextSeed());
}

function uniform(rng: Rng, n: number, bound: number): Float32Array {
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = (2 * rng.next() - 1) * bound;
  return d;
}

function checkDim(layer: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) {
    throw new Error(`fanout: ${layer}: ${name} must be a positive integer, got ${v}`);
  }
}

/** Options of `Linear`. */
export interface LinearOptions extends InitOptions {
  /** Add a learned bias (default true). */
  bias?: boolean;
}

/**
 * `y = x·Wᵀ + b` with PyTorch's layout and initialisation: `weight` is
 * `[out, in]`, and both `weight` and `bias` are drawn from
 * U(−1/√in, 1/√in) (Kaiming-uniform with a = √5).
 */
export class Linear extends Module implements Layer {
  /** `[outFeatures, inFeatures]`. */
  readonly weight: Parameter;
  /** `[outFeatures]`, or null without bias. */
  readonly bias: Parameter | null;
  /** Input width. */
  readonly inFeatures: number;
  /** Output width. */
  readonly outFeatures: number;

  /** A layer mapping `inFeatures` columns to `outFeatures`. */
  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super();
    checkDim("Linear", "inFeatures", inFeatures);
    checkDim("Linear", "outFeatures", outFeatures);
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const backend = backendOf(opts), rng = rngOf(opts);
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.registerParameter(
      "weight",
      parameter(uniform(rng, outFeatures * inFeatures, bound), [outFeatures, inFeatures], {
        backend,
      }),
    );
    this.bias = opts.bias ?? true
      ? this.registerParameter(
        "bias",
        parameter(uniform(rng, outFeatures, bound), [outFeatures], { backend }),
      )
      : null;
  }

  /** `[rows, inFeatures]` → `[rows, outFeatures]`. */
  forward(x: Tensor): Tensor {
    if (x.shape.length !== 2 || x.shape[1] !== this.inFeatures) {
      throw new Error(
        `fanout: Linear(${this.inFeatures}, ${this.outFeatures}) expects [rows, ${this.inFeatures}], got [${x.shape}]`,
      );
    }
    const y = matmul(x, this.weight, { transB: true });
    return this.bias ? add(y, this.bias) : y;
  }
}

/** Options of `LayerNorm`. */
export interface LayerNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learn `weight` (γ, ones) and `bias` (β, zeros) (default true). */
  affine?: boolean;
  /** Backend of the parameters; the default backend when omitted. */
  backend?: Backend;
}

/** Layer normalisation over the last dimension: `(x − mean) / √(var + eps) · γ + β`. */
export class LayerNorm extends Module implements Layer {
  /** γ, `[dim]` (a constant of ones when not affine). */
  readonly weight: Tensor;
  /** β, `[dim]` (a constant of zeros when not affine). */
  readonly bias: Tensor;
  /** Normalised width. */
  readonly dim: number;
  /** Variance epsilon. */
  readonly eps: number;

  /** Normalises rows of width `dim`. */
  constructor(dim: number, opts: LayerNormOptions = {}) {
    super();
    checkDim("LayerNorm", "dim", dim);
    this.dim = dim;
    this.eps = opts.eps ?? 1e-5;
    const backend = backendOf(opts);
    const ones = new Float32Array(dim).fill(1), zeros = new Float32Array(dim);
    if (opts.affine ?? true) {
      this.weight = this.registerParameter("weight", parameter(ones, [dim], { backend }));
      this.bias = this.registerParameter("bias", parameter(zeros, [dim], { backend }));
    } else {
      this.weight = tensor(ones, [dim], { backend }).keep();
      this.bias = tensor(zeros, [dim], { backend }).keep();
    }
  }

  /** `[rows, dim]` → `[rows, dim]`. */
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }

  /** Disposes parameters and the non-affine constants. */
  override dispose(): void {
    super.dispose();
    this.weight.dispose();
    this.bias.dispose();
  }
}

/** Options of `Embedding`. */
export interface EmbeddingOptions extends InitOptions {
  /** Standard deviation of the normal initialisation (default 1, as PyTorch). */
  std?: number;
}

/** A table of `num` learned vectors of width `dim`, looked up by integer codes. */
export class Embedding extends Module {
  /** `[num, dim]`, initialised N(0, std²). */
  readonly weight: Parameter;
  /** Number of codes. */
  readonly num: number;
  /** Vector width. */
  readonly dim: number;

  /** A table for codes in [0, num). */
  constructor(num: number, dim: number, opts: EmbeddingOptions = {}) {
    super();
    checkDim("Embedding", "num", num);
    checkDim("Embedding", "dim", dim);
    this.num = num;
    this.dim = dim;
    const rng = rngOf(opts), std = opts.std ?? 1;
    const d = new Float32Array(num * dim);
    for (let i = 0; i < d.length; i++) d[i] = rng.normal() * std;
    this.weight = this.registerParameter(
      "weight",
      parameter(d, [num, dim], { backend: backendOf(opts) }),
    );
  }

  /** The rows for `codes` (an `Index` with `range === num`): `[codes.length, dim]`. */
  forward(codes: Index): Tensor {
    if (codes.range !== this.num) {
      throw new Error(
        `fanout: Embedding(${this.num}, ${this.dim}) got codes with range ${codes.range}`,
      );
    }
    return embedding(this.weight, codes);
  }
}

/** Inverted dropout with probability `p` while training; the identity in eval mode. */
export class Dropout extends Module implements Layer {
  /** Drop probability. */
  readonly p: number;

  /** Drops with probability `p` in [0, 1). */
  constructor(p = 0.5) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`fanout: Dropout: p must be in [0, 1), got ${p}`);
    this.p = p;
  }

  /** Applies dropout with a fresh seed from the global stream when training. */
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training });
  }
}

/** Names of the element-wise activations. */
export type ActivationName = "relu" | "gelu" | "tanh" | "sigmoid" | "leaky_relu" | "identity";

const ACTIVATIONS: Record<ActivationName, (x: Tensor) => Tensor> = {
  relu,
  gelu,
  tanh,
  sigmoid,
  leaky_relu: (x) => leakyRelu(x),
  identity: (x) => x,
};

/** An element-wise activation as a layer (GELU is the tanh approximation). */
export class Activation extends Module implements Layer {
  /** Which function. */
  readonly kind: ActivationName;

  /** The activation `kind`. */
  constructor(kind: ActivationName) {
    super();
    if (!(kind in ACTIVATIONS)) throw new Error(`fanout: unknown activation "${kind}"`);
    this.kind = kind;
  }

  /** `f(x)`. */
  forward(x: Tensor): Tensor {
    return ACTIVATIONS[this.kind](x);
  }
}

/** Options of `MLP`. */
export interface MLPOptions extends InitOptions {
  /** Hidden activation (default "relu"). */
  activation?: ActivationName;
  /** Dropout after each hidden activation (default 0: none). */
  dropout?: number;
  /** `"layer"` puts a LayerNorm after each hidden Linear, before the activation. */
  norm?: "layer" | null;
  /** Biases on the Linear layers (default true). */
  bias?: boolean;
  /** Also apply the activation after the last Linear (default false). */
  activateLast?: boolean;
}

/**
 * A multi-layer perceptron over widths `dims` (`[in, hidden…, out]`): each
 * hidden step is Linear → [LayerNorm] → activation → [Dropout], the last is
 * a plain Linear. Children are numbered as in a PyTorch `Sequential`.
 */
export class MLP extends Sequential {
  /** The widths. */
  readonly dims: readonly number[];

  /** Builds the layers for `dims` (at least two widths). */
  constructor(dims: readonly number[], opts: MLPOptions = {}) {
    super();
    if (dims.length < 2) throw new Error(`fanout: MLP needs at least two widths, got [${dims}]`);
    this.dims = Object.freeze([...dims]);
    const rng = rngOf(opts);
    const init = { backend: opts.backend, rng, bias: opts.bias };
    const act = opts.activation ?? "relu", p = opts.dropout ?? 0;
    for (let i = 0; i + 1 < dims.length; i++) {
      this.append(new Linear(dims[i], dims[i + 1], init));
      const last = i + 2 === dims.length;
      if (last && !opts.activateLast) break;
      if (!last && opts.norm === "layer") {
        this.append(new LayerNorm(dims[i + 1], { backend: opts.backend }));
      }
      this.append(new Activation(act));
      if (!last && p > 0) this.append(new Dropout(p));
    }
  }
}
