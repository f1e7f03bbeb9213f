/**
 * fanout: training graph neural networks and graph transformers on
 * relational data, with neighbourhoods sampled online and WGSL compute on
 * WebGPU.
 *
 * This entry point re-exports the public API of each part:
 * - `core`: tensors, ops, autograd, optimizers, schedules, `nn`, safetensors,
 *   the WebGPU backend and the CPU float64 reference backend;
 * - `store`: schemas, DuckDB ingestion, the temporal graph store, training tables;
 * - `sampler`: temporal neighbour sampling, the worker pool and the batch loader.
 *
 * @example
 * ```ts
 * import { MLP, AdamW, mseLoss, randn, setDefaultBackend, webgpuBackend } from "./mod.ts";
 * setDefaultBackend(await webgpuBackend());
 * ```
 *
 * @module
 */

export * from "./core/mod.ts";
export * from "./store/mod.ts";
export * from "./sampler/mod.ts";
