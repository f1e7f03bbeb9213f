/**
 * fanout's compute core: tensors on WebGPU (or the CPU float64 reference),
 * the differentiable op set, autograd, optimizers, schedules and `nn`
 * building blocks. Knows nothing of graphs, tables or files.
 *
 * @example
 * ```ts
 * import { AdamW, MLP, setDefaultBackend, webgpuBackend } from "./mod.ts";
 * setDefaultBackend(await webgpuBackend());
 * const model = new MLP([16, 64, 1]);
 * const opt = new AdamW(model.parameters(), { lr: 1e-3 });
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
export type { RandomOptions } from "./random.ts";
export * from "./module.ts";
export * from "./nn.ts";
export * from "./optim.ts";
export * from "./schedule.ts";
export * from "./safetensors.ts";
export { cpuBackend } from "./cpu/mod.ts";
export * from "./webgpu/mod.ts";
