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

const scopes: Set<Tensor>[] = [];

/**
 * Runs `fn` and disposes every tensor created inside it, except tensors
 * reachable in its return value (a tensor, an array, or a plain object of
 * them) and tensors marked with `keep()`. Class instances in the return value
 * (a module, a clip handle) are not searched: their tensors must be kept.
 * Scopes nest; for async functions use `scopeAsync`, and do not interleave
 * two async scopes.
 *
 * @example
 * ```ts
 * const loss = scope(() => mseLoss(model.forward(x), y)); // intermediates freed
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

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== "object") return;
  if (value instanceof Tensor) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

function closeScope(result: unknown): void {
  const created = scopes.pop()!;
  const kept = new Set<Tensor>();
  collect(result, kept);
  const parent = scopes[scopes.length - 1];
  for (const t of created) {
    if (kept.has(t)) {
      parent?.add(t);
    } else if (!t.disposed) {
      t.dispose();
    }
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
  /** The op that produced this tensor, when recorded for autograd. */
  node: TapeNode | null = null;
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
    scopes[scopes.length - 1]?.add(this);
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

  /** Returns the storage to the pool. Using the tensor afterwards is an error. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.storage.backend.release(this.storage);
    this.node = null;
  }

  /** Removes this tensor from the enclosing scopes so that it outlives them. */
  keep(): this {
    for (const s of scopes) s.delete(this);
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
