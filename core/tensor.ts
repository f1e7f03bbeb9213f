/**
 * Tensors: a backend storage, a shape, and the autograd links.
 *
 * Memory is explicit, as on a GPU it must be: `dispose()` returns a tensor's
 * storage to its backend's pool, and `scope(fn)` disposes everything `fn`
 * created except what it returns, so a training step that runs inside a
 * scope allocates nothing once the pool is warm.
 *
 * @module
 */

import type { Backend, DType, Storage } from "./backend.ts";
import type { TapeNode } from "./autograd.ts";

let defaultBackend: Backend | null = null;

/** Sets the backend used when creation functions are not given one. */
export function setDefaultBackend(backend: Backend): void {
  defaultBackend = backend;
}

/** The default backend (see `setDefaultBackend`). */
export function getDefaultBackend(): Backend {
  if (!defaultBackend) {
    throw new Error(
      "fanout: no default backend; call setDefaultBackend(await webgpuBackend()) or setDefaultBackend(cpuBackend())",
    );
  }
  return defaultBackend;
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// ---- scopes -------------------------------------------------------------------

/** Something a scope can free: tensors, and the index structures of core/index.ts. */
export interface Disposable {
  /** Frees the resources. */
  dispose(): void;
}

const scopes: Set<Disposable>[] = [];

/** Registers `d` with the innermost open scope (no-op outside scopes). */
export function track(d: Disposable): void {
  scopes[scopes.length - 1]?.add(d);
}

/** Removes `d` from every open scope so that it outlives them. */
export function untrack(d: Disposable): void {
  for (const s of scopes) s.delete(d);
}

/**
 * Runs `fn` and disposes every tensor (and `Index` / `Segments`) created
 * inside it, except those reachable in its return value (directly, or in an
 * array or plain object) and those marked with `keep()`. Class instances in
 * the return value (a module, a clip handle) are not searched: their tensors
 * must be kept. Scopes nest; for async functions use `scopeAsync`, and do not
 * interleave two async scopes. Run `backward()` inside the scope that built
 * the graph: the intermediates it needs die with the scope.
 *
 * @example
 * ```ts
 * const loss = scope(() => {
 *   const l = mseLoss(model.forward(x), y);
 *   l.backward();
 *   opt.step();
 *   return l; // kept; every intermediate is freed
 * });
 * ```
 */
export function scope<T>(fn: () => T): T {
  scopes.push(new Set());
  let result: T;
  try {
    result = fn();
  } catch (e) {
    closeScope(undefined);
    throw e;
  }
  closeScope(result);
  return result;
}

/** `scope` for an async function. */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  scopes.push(new Set());
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    closeScope(undefined);
    throw e;
  }
  closeScope(result);
  return result;
}

function collect(value: unknown, created: Set<Disposable>, out: Set<Disposable>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== "object") return;
  if (created.has(value as Disposable)) {
    out.add(value as Disposable);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, created, out, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, created, out, depth + 1);
  }
}

function closeScope(result: unknown): void {
  const created = scopes.pop()!;
  const kept = new Set<Disposable>();
  collect(result, created, kept);
  const parent = scopes[scopes.length - 1];
  for (const t of created) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
}

// ---- the tensor ---------------------------------------------------------------

/** Options for creating a tensor. */
export interface TensorOptions {
  /** Backend that holds the data; the default backend when omitted. */
  backend?: Backend;
  /** Element type; `f32` when omitted. */
  dtype?: DType;
  /** Whether gradients flow to this tensor (a leaf, such as a parameter). */
  requiresGrad?: boolean;
}

/** A dense tensor of up to two dimensions (scalars `[]`, vectors `[n]`, matrices `[rows, cols]`). */
export class Tensor {
  /** The data. Shared by views made with `reshape`. */
  readonly storage: Storage;
  /** Dimensions. */
  readonly shape: readonly number[];
  /** Whether gradients flow to or through this tensor. */
  requiresGrad: boolean;
  /** Accumulated gradient (leaves only), after `backward()`. */
  grad: Tensor | null = null;
  #node: TapeNode | null = null;
  #recorded = false;
  #disposed = false;

  /** Wraps a storage; prefer the creation functions. The tensor owns one reference to `storage`. */
  constructor(storage: Storage, shape: readonly number[], requiresGrad = false) {
    if (numel(shape) !== storage.size) {
      throw new Error(
        `fanout: shape [${shape}] has ${
          numel(shape)
        } elements but the storage holds ${storage.size}`,
      );
    }
    if (shape.length > 2) {
      throw new Error(`fanout: tensors have at most 2 dimensions, got shape [${shape}]`);
    }
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.requiresGrad = requiresGrad;
    track(this);
  }

  /** The op that produced this tensor, while its graph is alive (null once freed). */
  get node(): TapeNode | null {
    return this.#node;
  }
  set node(n: TapeNode | null) {
    if (n) this.#recorded = true;
    this.#node = n;
  }

  /**
   * True for tensors no recorded op produced (inputs, parameters). A tensor
   * produced by an op stays a non-leaf after its graph is freed, so a second
   * `backward()` through it is an error rather than a silent no-op.
   */
  get isLeaf(): boolean {
    return !this.#recorded;
  }

  /** The owning backend. */
  get backend(): Backend {
    return this.storage.backend;
  }
  /** Element type. */
  get dtype(): DType {
    return this.storage.dtype;
  }
  /** Number of elements. */
  get size(): number {
    return this.storage.size;
  }
  /** Rows when viewed as a matrix (`[n]` is one row, `[]` is 1×1). */
  get rows(): number {
    return this.shape.length === 2 ? this.shape[0] : 1;
  }
  /** Columns when viewed as a matrix. */
  get cols(): number {
    return this.shape.length === 0 ? 1 : this.shape[this.shape.length - 1];
  }
  /** Whether `dispose()` has run. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Returns the storage to the pool, with what the producing op saved for its
   * gradient and, for a leaf, its `.grad`. Using the tensor afterwards is an error.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.storage.backend.release(this.storage);
    for (const t of this.#node?.saved ?? []) t.dispose();
    this.#node = null;
    if (this.isLeaf) {
      this.grad?.dispose();
      this.grad = null;
    }
  }

  /** Removes this tensor from the enclosing scopes so that it outlives them. */
  keep(): this {
    untrack(this);
    return this;
  }

  /** A view with another shape over the same storage; gradients flow through it. */
  reshape(shape: readonly number[]): Tensor {
    return reshapeHook(this, shape);
  }

  /** A view that shares the storage but is cut from the autograd graph. */
  detach(): Tensor {
    this.storage.backend.retain(this.storage);
    return new Tensor(this.storage, this.shape, false);
  }

  /** Reads the data back (one GPU round trip on WebGPU: do it rarely). */
  async data(): Promise<Float32Array | Float64Array | Int32Array> {
    this.assertLive();
    return await this.storage.backend.read(this.storage);
  }

  /** Reads a one-element tensor as a number. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new Error(`fanout: item() needs one element, shape is [${this.shape}]`);
    }
    return (await this.data())[0];
  }

  /** Nested arrays, for printing and tests. */
  async toArray(): Promise<number | number[] | number[][]> {
    const d = Array.from(await this.data());
    if (this.shape.length === 0) return d[0];
    if (this.shape.length === 1) return d;
    const [r, c] = this.shape;
    return Array.from({ length: r }, (_, i) => d.slice(i * c, i * c + c));
  }

  /** Runs backpropagation from this scalar, accumulating `.grad` in the leaves. */
  backward(): void {
    backwardHook(this);
  }

  /** Throws if the tensor was disposed. */
  assertLive(): void {
    if (this.#disposed) {
      throw new Error(`fanout: use of a disposed tensor of shape [${this.shape}]`);
    }
  }

  /** A short description. */
  toString(): string {
    return `Tensor(${this.dtype}[${this.shape}] on ${this.backend.name})`;
  }
}

// autograd.ts and ops.ts install these to keep the import graph acyclic at load time.
let reshapeHook: (t: Tensor, shape: readonly number[]) => Tensor = () => {
  throw new Error("fanout: ops not loaded");
};
let backwardHook: (t: Tensor) => void = () => {
  throw new Error("fanout: autograd not loaded");
};
/** @internal */
export function installHooks(
  hooks: { reshape?: typeof reshapeHook; backward?: typeof backwardHook },
): void {
  if (hooks.reshape) reshapeHook = hooks.reshape;
  if (hooks.backward) backwardHook = hooks.backward;
}

// ---- creation -----------------------------------------------------------------

/** A tensor holding a copy of `data`. */
export function tensor(
  data: ArrayLike<number>,
  shape: readonly number[],
  opts: TensorOptions = {},
): Tensor {
  const backend = opts.backend ?? getDefaultBackend();
  if (data.length !== numel(shape)) {
    throw new Error(`fanout: ${data.length} values do not fill shape [${shape}]`);
  }
  return new Tensor(
    backend.fromArray(data, opts.dtype ?? "f32"),
    shape,
    opts.requiresGrad ?? false,
  );
}

/** A tensor with every element equal to `value`. */
export function full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
  const backend = opts.backend ?? getDefaultBackend();
  return new Tensor(
    backend.full(numel(shape), value, opts.dtype ?? "f32"),
    shape,
    opts.requiresGrad ?? false,
  );
}

/** Zeros. */
export function zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 0, opts);
}

/** Ones. */
export function ones(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 1, opts);
}
