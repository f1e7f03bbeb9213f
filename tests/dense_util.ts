/**
 * Shared helpers of the WebGPU dense kernel tests (webgpu_dense_test.ts,
 * webgpu_dense_grad_test.ts), which check the kernels against the CPU
 * float64 reference on shapes and values drawn by fast-check.
 *
 * Inputs are generated already rounded to f32, so both backends see the same
 * numbers and the only differences are the GPU's f32 arithmetic.
 *
 * Tolerance. An element passes when `|gpu − ref| ≤ 1e-4·(|ref| + S)`, where
 * `S` is the natural magnitude of the terms that make up the element, so the
 * absolute floor `1e-4·S` covers cancellation without being a fudge factor:
 *
 * - Accumulations of `n` terms bounded by `B` (a dot product of length k with
 *   `B = max|a|·max|b|`, a sum of n values with `B = max|x|`): `S = √n·B`, the
 *   size of a sum of n random-sign terms. Each f32 addition rounds by at most
 *   `u = 2⁻²⁴` of the partial sum, and with random-sign rounding errors over
 *   a summation of depth ≤ n with partial sums of size ~√n·B the total error
 *   is ~`u·n·B`, below `1e-4·√n·B` for every n < (1e-4/u)² ≈ 2.8·10⁶, far
 *   beyond the shapes here. A missing or doubled term (size ~B) exceeds it.
 * - Element-wise functions: `S` is the magnitude of the terms that cancel in
 *   the formula (`|x|` for gelu's `0.5x + 0.5x·tanh(…)`, `|αx| + |β|` for
 *   affine, `y²` for tanh' = 1 − y²), or 0 where the f32 result is accurate
 *   to a few ulps relative (correctly rounded + − ×, exp/sqrt/sigmoid and our
 *   tanh). `log` gets `S = 0.01`: Vulkan allows it an absolute error of 2⁻²¹
 *   (≈ 1e-4·0.005) near 1.
 * - Copies and selections (dropout's mask, relu, neg, abs, casts) are exact.
 * - WGSL lets implementations flush subnormal f32 inputs and results to zero,
 *   so every non-exact check also allows the smallest normal f32, 2⁻¹²⁶.
 *
 * @module
 */

import fc from "fast-check";
import type { Backend, Broadcast, LossKind, Storage, UnaryOp } from "../core/backend.ts";
import { operandSize } from "../core/broadcast.ts";
import * as ops from "../core/ops.ts";
import { type Tensor, tensor } from "../core/tensor.ts";
import { cpuBackend } from "../core/cpu/mod.ts";
import { Rng } from "../core/random.ts";
import type { KernelContext } from "../core/webgpu/backend.ts";
import { bytesPer, GpuStorage } from "../core/webgpu/storage.ts";
import { gpuBackend, noGpu } from "./gpu_env.ts";

/** The shared WebGPU backend (null without an adapter) and whether it is missing. */
export { gpuBackend, noGpu };

/** Relative tolerance of every non-exact check. */
export const RTOL = 1e-4;
/** fast-check runs per property (kept modest: lavapipe is slow). */
export const RUNS = 20;
/** The smallest normal f32: a flushed subnormal differs by less. */
export const FTZ = 2 ** -126;

/** The CPU float64 reference backend. */
export const cpu = cpuBackend();

// ---- helpers ------------------------------------------------------------------------------

/** Uniform f32-exact values in [lo, hi). */
export function f32Values(rng: Rng, n: number, lo = -2, hi = 2): Float32Array {
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = lo + (hi - lo) * rng.next();
  return d;
}

/** max |d[i]| (0 for an empty array). */
export function maxAbs(d: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < d.length; i++) m = Math.max(m, Math.abs(d[i]));
  return m;
}

/** Reads and releases a CPU storage. */
export async function readCpu(s: Storage): Promise<Float64Array | Int32Array> {
  const d = await cpu.read(s) as Float64Array | Int32Array;
  cpu.release(s);
  return d;
}

/** Reads and releases a GPU storage. */
export async function readGpu(s: Storage): Promise<Float32Array | Int32Array> {
  const g = gpuBackend!;
  const d = await g.read(s) as Float32Array | Int32Array;
  g.release(s);
  return d;
}

/** Uploads the same data to both backends: [cpu, gpu]. */
export function both(data: ArrayLike<number>, dtype: "f32" | "i32" = "f32"): [Storage, Storage] {
  return [cpu.fromArray(data, dtype), gpuBackend!.fromArray(data, dtype)];
}

/** Releases pairs made by `both`. */
export function releaseAll(...pairs: [Storage, Storage][]): void {
  for (const [c, g] of pairs) {
    cpu.release(c);
    gpuBackend!.release(g);
  }
}

/**
 * Checks `|actual − expected| ≤ RTOL·(|expected| + scale(i))`; `scale` null
 * means exact (after rounding the reference to f32).
 */
export function check(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  scale: ((i: number) => number) | null,
  what: string,
): void {
  if (actual.length < expected.length) {
    throw new Error(`${what}: ${actual.length} values, expected ${expected.length}`);
  }
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    const ok = scale === null
      ? a === Math.fround(e) || (Number.isNaN(a) && Number.isNaN(e))
      : Math.abs(a - e) <= RTOL * (Math.abs(e) + scale(i)) + FTZ;
    if (!ok) {
      throw new Error(
        `${what}[${i}] = ${a}, expected ${e}` +
          (scale
            ? ` (|diff| ${Math.abs(a - e)} > ${RTOL * (Math.abs(e) + scale(i)) + FTZ})`
            : " exactly"),
      );
    }
  }
}

/** A kernel context over the shared backend, for building kernel variants directly. */
export function kernelContext(): KernelContext {
  const g = gpuBackend!;
  return {
    rt: g.runtime,
    backend: g,
    out: (size, dtype = "f32") =>
      new GpuStorage(g, g.runtime.alloc(Math.max(1, size) * bytesPer(dtype)), size, dtype),
  };
}

/** A Deno test named `webgpu dense: …`, ignored without an adapter. */
export const gpuTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `webgpu dense: ${name}`, ignore: noGpu, fn });

// ---- generators -------------------------------------------------------------------------

/** Matrix extents: tiny, odd, around the 128 tile and its vec4 multiples. */
export const dimArb = fc.oneof(
  fc.constantFrom(1, 3, 4, 65, 127, 128, 129),
  fc.integer({ min: 1, max: 140 }),
);
/** Data seeds. */
export const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });
/** Broadcast modes. */
export const modeArb = fc.constantFrom<Broadcast>("full", "row", "col", "scalar");

/** Elements an operand of broadcast `mode` holds for a rows × cols output (core/broadcast.ts). */
export { operandSize };

/** Every unary op. */
export const UNARY_OPS: UnaryOp[] = [
  "relu",
  "leaky_relu",
  "gelu",
  "sigmoid",
  "tanh",
  "exp",
  "log",
  "neg",
  "abs",
  "sqrt",
  "affine",
];

/** Inputs in each function's domain: positive for log and sqrt; some tiny ones for tanh/gelu. */
/** Every loss. */
export const LOSSES: LossKind[] = ["bce_logits", "mse", "l1", "cross_entropy"];

/**
 * Gradients of `L = Σ w ⊙ f(xs)` for every input, on `backend`. The upstream
 * gradient reaching `f` is `w` exactly (the sum's and the product's rules only
 * broadcast and multiply by 1).
 */
export async function grads(
  backend: Backend,
  f: (xs: Tensor[]) => Tensor,
  inputs: { data: Float32Array; shape: number[] }[],
  w: (outShape: readonly number[]) => Float32Array,
): Promise<Float64Array[]> {
  const xs = inputs.map((x) => tensor(x.data, x.shape, { backend, requiresGrad: true }));
  const out = f(xs);
  const wt = tensor(w(out.shape), out.shape, { backend });
  const loss = ops.sum(ops.mul(out, wt));
  loss.backward();
  const res: Float64Array[] = [];
  for (const x of xs) {
    res.push(Float64Array.from(await x.grad!.data()));
    x.grad!.dispose();
    x.dispose();
  }
  for (const t of [out, wt, loss]) t.dispose();
  return res;
}

/** Runs `f` on both backends with the same inputs and weights. */
export async function gradsBoth(
  f: (xs: Tensor[]) => Tensor,
  inputs: { data: Float32Array; shape: number[] }[],
  seed: number,
): Promise<{ cpu: Float64Array[]; gpu: Float64Array[]; w: Float32Array }> {
  let w: Float32Array | null = null;
  const wf = (shape: readonly number[]) =>
    w ??= f32Values(new Rng(seed ^ 0x5eed), shape.reduce((a, b) => a * b, 1), -1, 1);
  const c = await grads(cpu, f, inputs, wf);
  const g = await grads(gpuBackend!, f, inputs, wf);
  return { cpu: c, gpu: g, w: w! };
}
