/**
 * Optimizers that run as kernels: `step()` encodes one
 * `backend.optimizerStep` per parameter, in place on the parameter and its
 * state, with no readback and no await. Gradient clipping works the same
 * way: `clipGradNorm` leaves the squared global norm in a one-element tensor
 * on the device, and the update kernels scale by it.
 *
 * Update rules (PyTorch's, with `g` the gradient after clipping, `t` the
 * 1-based step count of the parameter):
 * - SGD: `g += wd·p`; with momentum `b = μ·b + g` (b₀ = 0, so b₁ = g) and
 *   `g = nesterov ? g + μ·b : b`; then `p −= lr·g`.
 * - Adam: `g += wd·p`; `m = β₁m + (1−β₁)g`; `v = β₂v + (1−β₂)g²`;
 *   `p −= lr · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε)`.
 * - AdamW: `p ·= 1 − lr·wd` first (decoupled decay), then Adam without `wd`.
 *
 * @example
 * ```ts
 * const opt = new AdamW(model.namedParameters(), { lr: 1e-3, noDecay: isBiasOrNorm });
 * const sched = new LRScheduler(opt, linearWarmup(100, cosine(9_900, 1e-5)));
 * for (const batch of batches) {
 *   scope(() => lossOf(batch).backward());
 *   const clip = opt.clip(1.0);   // squared norm stays on the device
 *   opt.step();                    // consumes it; no await
 *   opt.zeroGrad();
 *   sched.step();
 *   if (step % 50 === 0) console.log(await clip.norm());
 * }
 * ```
 *
 * @module
 */

import type { Backend, OptimizerAttrs, OptimizerKind, Storage } from "./backend.ts";
import { Tensor, zeros } from "./tensor.ts";
import { checkStateValue, hostData, type StateValue } from "./module.ts";

export {
  constant,
  cosine,
  exponential,
  type HasLr,
  linearWarmup,
  LRScheduler,
  type Schedule,
  stepLR,
} from "./schedule.ts";

/** Parameters as plain tensors or as `[name, tensor]` pairs (e.g. `module.namedParameters()`). */
export type ParamsInput = Iterable<Tensor> | Iterable<readonly [string, Tensor]>;

/**
 * A squared global gradient norm held on the device, for the update kernels
 * to clip by. Read the norm itself only for logging: `await clip.norm()`.
 */
export class GradClip {
  /** One-element tensor holding Σ‖g‖² over the parameters (kept out of scopes). */
  readonly normSq: Tensor;
  /** The norm the gradients are clipped to (≤ 0 disables clipping). */
  readonly maxNorm: number;

  /** Wraps a one-element squared-norm tensor; prefer `clipGradNorm`. */
  constructor(normSq: Tensor, maxNorm: number) {
    if (normSq.size !== 1) {
      throw new Error(`fanout: GradClip needs a one-element tensor, got [${normSq.shape}]`);
    }
    this.normSq = normSq;
    this.maxNorm = maxNorm;
  }

  /** The global gradient norm before clipping, √(normSq): one readback. */
  async norm(): Promise<number> {
    return Math.sqrt(await this.normSq.item());
  }

  /** The factor the gradients are scaled by: `min(1, maxNorm / (norm + 1e-6))`. One readback. */
  async scale(): Promise<number> {
    if (!(this.maxNorm > 0)) return 1;
    return Math.min(1, this.maxNorm / ((await this.norm()) + 1e-6));
  }

  /** Whether `dispose()` has run. */
  get disposed(): boolean {
    return this.normSq.disposed;
  }

  /** Frees the norm tensor. */
  dispose(): void {
    this.normSq.dispose();
  }
}

function toTensors(params: ParamsInput): Tensor[] {
  const out: Tensor[] = [];
  for (const p of params as Iterable<Tensor | readonly [string, Tensor]>) {
    out.push(p instanceof Tensor ? p : p[1]);
  }
  return out;
}

/**
 * Computes the squared global norm of the parameters' gradients on the
 * device, `Σ_p ‖g_p‖²` (parameters without a gradient count as zero), in one
 * `backend.sumSquares` call (on WebGPU one pass per gradient and one final
 * reduction), without reading it back. Pass the result to
 * `optimizer.step({ clip })`. The caller owns it: `dispose()` it once read
 * (or unused).
 */
export function clipGradNorm(params: ParamsInput, maxNorm: number): GradClip {
  const ps = toTensors(params);
  if (ps.length === 0) throw new Error("fanout: clipGradNorm: no parameters");
  const backend = ps[0].backend;
  const grads: Tensor[] = [];
  for (const p of ps) {
    const g = p.grad;
    if (!g) continue;
    g.assertLive();
    if (g.backend !== backend) {
      throw new Error(
        `fanout: clipGradNorm: gradients on the ${g.backend.name} and ${backend.name} backends`,
      );
    }
    grads.push(g);
  }
  const normSq = backend.sumSquares(grads.map((g) => g.storage), {
    sizes: grads.map((g) => g.size),
  });
  return new GradClip(new Tensor(normSq, []).keep(), maxNorm);
}

/** `true` for parameters of at most one dimension (biases, norm scales): a common `noDecay`. */
export function isBiasOrNorm(_name: string, p: Tensor): boolean {
  return p.shape.length <= 1;
}

/** Options shared by every optimizer. */
export interface OptimizerOptions {
  /** Learning rate. */
  lr?: number;
  /** Weight decay (L2 for SGD and Adam, decoupled for AdamW). */
  weightDecay?: number;
  /** Parameters for which weight decay is skipped (e.g. `isBiasOrNorm`). */
  noDecay?: (name: string, param: Tensor) => boolean;
  /** When set, `step()` without an explicit clip first clips to this global norm. */
  maxGradNorm?: number;
}

/** Per-parameter state. */
interface ParamState {
  state1: Tensor | null;
  state2: Tensor | null;
  step: number;
}

/** What `stateDict()` returns. */
export interface OptimizerState {
  /** Calls to `step()` so far. */
  step: number;
  /** Steps taken by each parameter (Adam's bias correction), by parameter name. */
  paramSteps: Record<string, number>;
  /**
   * State tensors keyed `"<param>.<slot>"`, slot `momentum_buffer` (SGD) or
   * `exp_avg` / `exp_avg_sq` (Adam, AdamW).
   */
  tensors: Map<string, Tensor>;
}

/** What `loadStateDict()` takes: an `OptimizerState`, or the same with host data (a checkpoint). */
export interface OptimizerStateInput {
  /** Calls to `step()` so far. */
  step: number;
  /** Per-parameter step counts; parameters with state but absent here take `step`. */
  paramSteps?: Readonly<Record<string, number>>;
  /** State values keyed as in `OptimizerState.tensors`. */
  tensors: ReadonlyMap<string, StateValue>;
}

/** The base of every optimizer: parameter bookkeeping, lazy state, clipping, checkpoints. */
export abstract class Optimizer {
  /** The parameters, in the order given. */
  readonly params: readonly Tensor[];
  /** Their names (given, or `"0"`, `"1"`, … for plain tensors). */
  readonly names: readonly string[];
  /** Learning rate of the next step; schedulers set it. */
  lr: number;
  /** Weight decay. */
  weightDecay: number;
  /** Clip norm applied by `step()` when no clip is given (≤ 0 or undefined: none). */
  maxGradNorm: number | undefined;
  #decay: boolean[];
  #state = new Map<Tensor, ParamState>();
  #dummies = new Map<Backend, [Storage, Storage]>();
  #stepCount = 0;
  #lastClip: GradClip | null = null;
  #pendingClip: GradClip | null = null;
  /** The update rule. */
  protected abstract readonly kind: OptimizerKind;
  /** State slot names (null: unused), e.g. `["exp_avg", "exp_avg_sq"]`. */
  protected abstract slots(): [string | null, string | null];
  /** Rule-specific attributes of the update. */
  protected abstract attrs(): Pick<
    OptimizerAttrs,
    "momentum" | "nesterov" | "beta1" | "beta2" | "eps"
  >;

  /** Collects the parameters (duplicates dropped) and the shared options. */
  protected constructor(
    params: ParamsInput,
    opts: OptimizerOptions,
    defaultLr: number,
    defaultWd: number,
  ) {
    const ps: Tensor[] = [], names: string[] = [];
    const seen = new Set<Tensor>(), seenNames = new Set<string>();
    for (const item of params as Iterable<Tensor | readonly [string, Tensor]>) {
      const [name, p] = item instanceof Tensor ? [String(ps.length), item] : item;
      if (!(p instanceof Tensor)) {
        throw new Error(`fanout: optimizer: parameter "${name}" is not a tensor`);
      }
      if (seen.has(p)) continue;
      if (seenNames.has(name)) throw new Error(`fanout: optimizer: duplicate name "${name}"`);
      seen.add(p);
      seenNames.add(name);
      ps.push(p);
      names.push(name);
    }
    if (ps.length === 0) throw new Error("fanout: optimizer got no parameters");
    this.params = ps;
    this.names = names;
    this.lr = opts.lr ?? defaultLr;
    this.weightDecay = opts.weightDecay ?? defaultWd;
    this.maxGradNorm = opts.maxGradNorm;
    checkNonNegative("lr", this.lr);
    checkNonNegative("weightDecay", this.weightDecay);
    this.#decay = ps.map((p, i) => !(opts.noDecay?.(names[i], p) ?? false));
  }

  /** Calls to `step()` so far. */
  get stepCount(): number {
    return this.#stepCount;
  }

  /** The clip used by the latest step (or made by the latest `clip()`); null when none. */
  get lastClip(): GradClip | null {
    return this.#lastClip;
  }

  /** Disposes and clears every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * Computes the squared global gradient norm on the device for the next
   * `step()` to clip to `maxNorm`, and returns it for logging. The optimizer
   * owns it: it stays readable until the next `clip()` or clipping `step()`,
   * which disposes it.
   */
  clip(maxNorm: number): GradClip {
    const c = clipGradNorm(this.params, maxNorm);
    this.#setLast(c);
    this.#pendingClip = c;
    return c;
  }

  #setLast(c: GradClip): void {
    if (this.#lastClip && this.#lastClip !== c) this.#lastClip.dispose();
    this.#lastClip = c;
  }

  /**
   * Updates every parameter that has a gradient (frozen ones, and ones the
   * loss did not reach, are skipped): one kernel each, in place, nothing
   * awaited; the caller submits with `backend.flush()` when it likes. The
   * clip is `opts.clip` (owned by the caller), else the one from `clip()`,
   * else one made here when `maxGradNorm` is set.
   */
  step(opts: { clip?: GradClip } = {}): void {
    let clip = opts.clip ?? this.#pendingClip;
    this.#pendingClip = null;
    if (!clip && this.maxGradNorm !== undefined && this.maxGradNorm > 0) {
      clip = clipGradNorm(this.params, this.maxGradNorm);
      this.#setLast(clip);
    }
    if (clip) clip.normSq.assertLive();
    const rule = this.attrs();
    const [slot1, slot2] = this.slots();
    this.params.forEach((p, i) => {
      const g = p.grad;
      if (!g) return;
      p.assertLive();
      g.assertLive();
      const st = this.#stateOf(p, slot1 !== null, slot2 !== null);
      st.step++;
      const [d1, d2] = this.#dummy(p.backend);
      p.backend.optimizerStep(
        p.storage,
        g.storage,
        st.state1?.storage ?? d1,
        st.state2?.storage ?? d2,
        clip ? clip.normSq.storage : null,
        {
          kind: this.kind,
          lr: this.lr,
          weightDecay: this.#decay[i] ? this.weightDecay : 0,
          step: st.step,
          ...rule,
          n: p.size,
          maxNorm: clip ? clip.maxNorm : 0,
        },
      );
    });
    this.#stepCount++;
  }

  #stateOf(p: Tensor, need1: boolean, need2: boolean): ParamState {
    let st = this.#state.get(p);
    if (!st) {
      st = { state1: null, state2: null, step: 0 };
      this.#state.set(p, st);
    }
    if (need1 && !st.state1) st.state1 = zeros(p.shape, { backend: p.backend }).keep();
    if (need2 && !st.state2) st.state2 = zeros(p.shape, { backend: p.backend }).keep();
    return st;
  }

  /** Two distinct one-element storages bound in place of unused state slots. */
  #dummy(backend: Backend): [Storage, Storage] {
    let d = this.#dummies.get(backend);
    if (!d) {
      d = [backend.full(1, 0, "f32"), backend.full(1, 0, "f32")];
      this.#dummies.set(backend, d);
    }
    return d;
  }

  /**
   * The optimizer state for a checkpoint. The tensors are the live state,
   * not copies: read them before the next step and do not dispose them.
   */
  stateDict(): OptimizerState {
    const [slot1, slot2] = this.slots();
    const tensors = new Map<string, Tensor>();
    const paramSteps: Record<string, number> = {};
    this.params.forEach((p, i) => {
      const st = this.#state.get(p);
      if (!st) return;
      paramSteps[this.names[i]] = st.step;
      if (slot1 && st.state1) tensors.set(`${this.names[i]}.${slot1}`, st.state1);
      if (slot2 && st.state2) tensors.set(`${this.names[i]}.${slot2}`, st.state2);
    });
    return { step: this.#stepCount, paramSteps, tensors };
  }

  /**
   * Restores a `stateDict()` into this optimizer (same parameter names and
   * shapes). Every key and shape is checked before anything is written;
   * unknown keys are errors. Parameters absent from `paramSteps` but with
   * state take `state.step`.
   */
  async loadStateDict(state: OptimizerStateInput): Promise<void> {
    const [slot1, slot2] = this.slots();
    const index = new Map(this.names.map((n, i) => [n, i]));
    const problems: string[] = [];
    const todo: [Tensor, number, 1 | 2, StateValue][] = [];
    for (const [key, v] of state.tensors) {
      const dot = key.lastIndexOf(".");
      const name = key.slice(0, dot), slot = key.slice(dot + 1);
      const i = dot > 0 ? index.get(name) : undefined;
      const which = slot === slot1 ? 1 : slot === slot2 ? 2 : 0;
      if (i === undefined || which === 0) {
        problems.push(`unexpected key "${key}"`);
        continue;
      }
      const bad = checkStateValue(key, this.params[i], v);
      if (bad) problems.push(bad);
      else todo.push([this.params[i], i, which, v]);
    }
    const paramSteps = state.paramSteps ?? {};
    if (!(Number.isInteger(state.step) && state.step >= 0)) problems.push(`bad step ${state.step}`);
    for (const [name, n] of Object.entries(paramSteps)) {
      if (!(Number.isInteger(n) && n >= 0)) problems.push(`bad step count ${n} for "${name}"`);
      if (!index.has(name)) problems.push(`unexpected parameter "${name}" in paramSteps`);
    }
    if (problems.length) throw new Error(`fanout: optimizer loadStateDict: ${problems.join("; ")}`);
    const values = await Promise.all(todo.map(([, , , v]) => hostData(v)));
    todo.forEach(([p, i, which], k) => {
      const st = this.#stateOf(p, which === 1, which === 2);
      const t = which === 1 ? st.state1! : st.state2!;
      t.backend.write(t.storage, values[k]);
      st.step = paramSteps[this.names[i]] ?? state.step;
    });
    for (const [name, steps] of Object.entries(paramSteps)) {
      const p = this.params[index.get(name)!];
      this.#stateOf(p, false, false).step = steps;
    }
    this.#stepCount = state.step;
  }

  /** Frees the state tensors, the placeholder storages and the last clip. */
  dispose(): void {
    for (const st of this.#state.values()) {
      st.state1?.dispose();
      st.state2?.dispose();
    }
    this.#state.clear();
    for (const [b, [d1, d2]] of this.#dummies) {
      b.release(d1);
      b.release(d2);
    }
    this.#dummies.clear();
    this.#lastClip?.dispose();
    this.#lastClip = null;
    this.#pendingClip = null;
  }
}

function checkNonNegative(name: string, v: number): void {
  if (!(v >= 0) || !Number.isFinite(v)) {
    throw new Error(`fanout: optimizer: ${name} must be a finite number ≥ 0, got ${v}`);
  }
}

function checkBetas(betas: readonly [number, number]): void {
  for (const b of betas) {
    if (!(b >= 0 && b < 1)) throw new Error(`fanout: Adam: betas must be in [0, 1), got ${betas}`);
  }
}

/** Options of `SGD`. */
export interface SGDOptions extends OptimizerOptions {
  /** Momentum μ (default 0: plain SGD, no state). */
  momentum?: number;
  /** Nesterov momentum (needs μ > 0). */
  nesterov?: boolean;
}

/** Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay. Default lr 1e-3. */
export class SGD extends Optimizer {
  /** The SGD update rule. */
  protected readonly kind = "sgd";
  /** Momentum μ. */
  momentum: number;
  /** Nesterov momentum. */
  nesterov: boolean;

  /** Optimizes `params`. */
  constructor(params: ParamsInput, opts: SGDOptions = {}) {
    super(params, opts, 1e-3, 0);
    this.momentum = opts.momentum ?? 0;
    this.nesterov = opts.nesterov ?? false;
    checkNonNegative("momentum", this.momentum);
    if (this.nesterov && this.momentum <= 0) {
      throw new Error("fanout: SGD: nesterov needs momentum > 0");
    }
  }

  /** The momentum buffer when μ > 0; no second slot. */
  protected slots(): [string | null, string | null] {
    return [this.momentum > 0 ? "momentum_buffer" : null, null];
  }

  /** Momentum attributes; the Adam ones are unused. */
  protected attrs(): Pick<OptimizerAttrs, "momentum" | "nesterov" | "beta1" | "beta2" | "eps"> {
    return { momentum: this.momentum, nesterov: this.nesterov, beta1: 0, beta2: 0, eps: 0 };
  }
}

/** Options of `Adam` and `AdamW`. */
export interface AdamOptions extends OptimizerOptions {
  /** (β₁, β₂), default (0.9, 0.999). */
  betas?: readonly [number, number];
  /** ε, default 1e-8. */
  eps?: number;
}

/** Adam with L2 weight decay added to the gradient (default lr 1e-3, weightDecay 0). */
export class Adam extends Optimizer {
  /** The Adam update rule. */
  protected readonly kind: OptimizerKind = "adam";
  /** (β₁, β₂). */
  betas: readonly [number, number];
  /** ε. */
  eps: number;

  /** Optimizes `params`. */
  constructor(params: ParamsInput, opts: AdamOptions = {}) {
    super(params, opts, 1e-3, 0);
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    checkBetas(this.betas);
    checkNonNegative("eps", this.eps);
  }

  /** First and second moments. */
  protected slots(): [string | null, string | null] {
    return ["exp_avg", "exp_avg_sq"];
  }

  /** β₁, β₂, ε; the momentum ones are unused. */
  protected attrs(): Pick<OptimizerAttrs, "momentum" | "nesterov" | "beta1" | "beta2" | "eps"> {
    return {
      momentum: 0,
      nesterov: false,
      beta1: this.betas[0],
      beta2: this.betas[1],
      eps: this.eps,
    };
  }
}

/** Adam with decoupled weight decay `p ·= 1 − lr·wd` (default lr 1e-3, weightDecay 0.01). */
export class AdamW extends Adam {
  /** The AdamW update rule. */
  protected override readonly kind: OptimizerKind = "adamw";

  /** Optimizes `params`. */
  constructor(params: ParamsInput, opts: AdamOptions = {}) {
    super(params, { ...opts, weightDecay: opts.weightDecay ?? 0.01 });
  }
}
