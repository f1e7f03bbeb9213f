/**
 * The `Module` base of `nn`: a tree of named parameters and child modules,
 * PyTorch-like (`parameters()`, `namedParameters()`, `train()` / `eval()`,
 * `stateDict()` / `loadStateDict()`), plus `Parameter` creation and the
 * container modules `Sequential` and `ModuleList`.
 *
 * Registration is explicit: a module calls `registerParameter` and
 * `registerModule` in its constructor, and dotted names follow the order of
 * registration (`"0.weight"`, `"encoder.norm.bias"`).
 *
 * @module
 */

import type { Backend, DType } from "./backend.ts";
import { getDefaultBackend, numel, Tensor, tensor } from "./tensor.ts";
import { f16BitsToF32 } from "./half.ts";

/** A trainable tensor: a leaf with `requiresGrad`, kept out of every scope. */
export type Parameter = Tensor;

/** Options of `parameter`. */
export interface ParameterOptions {
  /** Backend that holds the data; the default backend when omitted. */
  backend?: Backend;
  /** Storage type; `f32` when omitted. */
  dtype?: DType;
}

/**
 * A new parameter holding a copy of `data`: `requiresGrad` is set and the
 * tensor is `keep()`-ed, so it survives any enclosing `scope`.
 */
export function parameter(
  data: ArrayLike<number>,
  shape: readonly number[],
  opts: ParameterOptions = {},
): Parameter {
  return tensor(data, shape, { backend: opts.backend, dtype: opts.dtype, requiresGrad: true })
    .keep();
}

/**
 * Host-side values for `loadStateDict`: a shape and the elements in row-major
 * order. When `dtype` is `"F16"` and `data` is a `Uint16Array`, the elements
 * are IEEE half-precision bit patterns (as `loadSafetensors` returns them).
 */
export interface HostTensor {
  /** Dimensions. */
  readonly shape: readonly number[];
  /** Elements, row-major. */
  readonly data: ArrayLike<number>;
  /** Optional safetensors dtype tag ("F32", "F16", "I32"). */
  readonly dtype?: string;
}

/** A value accepted by `loadStateDict`: a tensor (read back) or host data. */
export type StateValue = Tensor | HostTensor;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Host elements of a state value (reads a tensor back). */
export async function hostData(v: StateValue): Promise<ArrayLike<number>> {
  if (v instanceof Tensor) return await v.data();
  if (v.dtype === "F16" && v.data instanceof Uint16Array) return f16BitsToF32(v.data);
  return v.data;
}

/**
 * Checks that `v` can be copied into `target` (same shape, data filling it);
 * returns a description of the mismatch, or null.
 */
export function checkStateValue(key: string, target: Tensor, v: StateValue): string | null {
  if (!sameShape(v.shape, target.shape)) {
    return `"${key}" has shape [${v.shape}] in the state dict but [${target.shape}] in the target`;
  }
  if (!(v instanceof Tensor) && v.data.length !== numel(target.shape)) {
    return `"${key}" has ${v.data.length} values for shape [${v.shape}] (expected ${
      numel(target.shape)
    })`;
  }
  if (v instanceof Tensor && v.disposed) return `"${key}" is a disposed tensor`;
  return null;
}

/** Options of `loadStateDict`. */
export interface LoadStateOptions {
  /** Fail on missing or unexpected keys (default true); shapes are always checked. */
  strict?: boolean;
}

/**
 * Base class of every layer. Subclasses register their parameters and
 * children in the constructor and define their own `forward`.
 *
 * @example
 * ```ts
 * class Affine extends Module {
 *   w = this.registerParameter("w", parameter([1, 2], [2]));
 * }
 * ```
 */
export class Module {
  /** Training mode (dropout active); set with `train()` / `eval()`. */
  training = true;
  #params = new Map<string, Parameter>();
  #children = new Map<string, Module>();

  /** Registers `p` under `name` and returns it. Names are unique across params and children. */
  registerParameter<T extends Tensor>(name: string, p: T): T {
    this.#checkName(name);
    this.#params.set(name, p);
    return p;
  }

  /** Registers a child module under `name` and returns it. */
  registerModule<M extends Module>(name: string, m: M): M {
    this.#checkName(name);
    this.#children.set(name, m);
    return m;
  }

  #checkName(name: string): void {
    if (name === "" || name.includes(".")) {
      throw new Error(`fanout: module member name "${name}" must be non-empty and contain no "."`);
    }
    if (this.#params.has(name) || this.#children.has(name)) {
      throw new Error(`fanout: module member "${name}" is already registered`);
    }
  }

  /** Direct children with their names, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.#children];
  }

  /** Every module of the tree (this one first, named ""), depth first, with dotted names. */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.#children) {
      out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    }
    return out;
  }

  /**
   * Every parameter of the tree with its dotted name, own parameters first,
   * then each child's in registration order. A tensor shared by two modules
   * appears once, under its first name.
   */
  namedParameters(): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, p] of m.#params) {
        if (seen.has(p)) continue;
        seen.add(p);
        out.push([prefix ? `${prefix}.${name}` : name, p]);
      }
    }
    return out;
  }

  /** Every parameter of the tree (see `namedParameters`). */
  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Sets training mode on the whole tree. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  /** Sets evaluation mode on the whole tree (`train(false)`). */
  eval(): this {
    return this.train(false);
  }

  /** Disposes and clears every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * The parameters by dotted name. The tensors are the live parameters, not
   * copies: read them (`await t.data()`) before the next optimizer step and
   * do not dispose them.
   */
  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters());
  }

  /**
   * Copies values into the existing parameters with `backend.write`. Every
   * shape is checked first, and all problems are reported together, each
   * naming its key; nothing is written unless all checks pass. Tensor values
   * are read back (hence async); host values (e.g. from `loadSafetensors`)
   * are written as they are.
   */
  async loadStateDict(
    state: ReadonlyMap<string, StateValue>,
    opts: LoadStateOptions = {},
  ): Promise<void> {
    const strict = opts.strict ?? true;
    const own = new Map(this.namedParameters());
    const problems: string[] = [];
    const todo: [Tensor, StateValue][] = [];
    for (const [key, p] of own) {
      const v = state.get(key);
      if (v === undefined) {
        if (strict) problems.push(`missing key "${key}" (shape [${p.shape}])`);
        continue;
      }
      const bad = checkStateValue(key, p, v);
      if (bad) problems.push(bad);
      else todo.push([p, v]);
    }
    if (strict) {
      for (const key of state.keys()) {
        if (!own.has(key)) problems.push(`unexpected key "${key}"`);
      }
    }
    if (problems.length) {
      throw new Error(`fanout: loadStateDict: ${problems.join("; ")}`);
    }
    const values = await Promise.all(todo.map(([, v]) => hostData(v)));
    todo.forEach(([p], i) => {
      p.assertLive();
      p.backend.write(p.storage, values[i]);
    });
  }

  /** Disposes every parameter (and gradient) of the tree. */
  dispose(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
      p.dispose();
    }
  }
}

/** A module mapping one tensor to one tensor, as `Sequential` chains. */
export interface Layer extends Module {
  /** Applies the module. */
  forward(x: Tensor): Tensor;
}

/** Applies its children in order; they are named `"0"`, `"1"`, … as in PyTorch. */
export class Sequential extends Module {
  /** The layers, in order. */
  readonly layers: Layer[] = [];

  /** Chains `layers`. */
  constructor(...layers: Layer[]) {
    super();
    for (const l of layers) this.append(l);
  }

  /** Appends a layer (named by its position). */
  append(layer: Layer): this {
    this.registerModule(String(this.layers.length), layer);
    this.layers.push(layer);
    return this;
  }

  /** Number of layers. */
  get length(): number {
    return this.layers.length;
  }

  /** `x` through every layer. */
  forward(x: Tensor): Tensor {
    for (const l of this.layers) x = l.forward(x);
    return x;
  }
}

/** A list of modules named `"0"`, `"1"`, …, for layers with their own calling conventions. */
export class ModuleList<M extends Module = Module> extends Module {
  /** The modules, in order. */
  readonly items: M[] = [];

  /** Holds `modules`. */
  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  /** Appends a module (named by its position). */
  append(m: M): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }

  /** Number of modules. */
  get length(): number {
    return this.items.length;
  }

  /** The module at position `i`. */
  at(i: number): M {
    const m = this.items.at(i);
    if (!m) throw new RangeError(`fanout: ModuleList index ${i} is out of range (${this.length})`);
    return m;
  }

  /** Iterates the modules in order. */
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

/** The backend a module builds on: the given one or the default. */
export function backendOf(opts: { backend?: Backend }): Backend {
  return opts.backend ?? getDefaultBackend();
}
