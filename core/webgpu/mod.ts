/**
 * The WebGPU backend.
 *
 * @module
 */
export { createWebGpuBackend, webgpuBackend } from "./backend.ts";
export type { KernelContext, WebGpuBackend } from "./backend.ts";
export { isSoftwareAdapter, NoAdapterError, requestGpu } from "./device.ts";
export type { Gpu, GpuInfo, RequestGpuOptions } from "./device.ts";
export { Runtime, sizeClass } from "./runtime.ts";
export type { GpuStorage } from "./storage.ts";
export type { Params, RuntimeStats } from "./runtime.ts";
