/**
 * fanout's compute core: tensors on WebGPU (or the CPU float64 reference),
 * the differentiable op set, autograd, optimizers, schedules and `nn`
 * building blocks. Knows nothing of graphs, tables or files.
 *
 * @example
 * ```ts
 * import { webgpuBackend, setDefaultBackend, nn, optim } from "./mod.ts";
 * setDefaultBackend(await webgpuBackend());
 * ```
 *
 * @module
 */

export type * from "./backend.ts";
export * from "./tensor.ts";
export * from "./ops.ts";
export { isGradEnabled, noGrad, noGradAsync } from "./autograd.ts";
export type { TapeNode } from "./autograd.ts";
export { backward, GRADS } from "./grad_rules.ts";
export type { GradContext, GradRule } from "./grad_rules.ts";
export { Index, Segments } from "./index.ts";
export { manualSeed, nextSeed, rand, randn, Rng } from "./random.ts";
