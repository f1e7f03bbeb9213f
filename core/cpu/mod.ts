/**
 * The CPU float64 reference backend: the executable specification of every
 * `Backend` kernel, and the dropout hash it shares with the WGSL kernels.
 *
 * @example
 * ```ts
 * import { cpuBackend } from "./mod.ts";
 * import { setDefaultBackend } from "../tensor.ts";
 * setDefaultBackend(cpuBackend());
 * ```
 *
 * @module
 */

export { cpuBackend } from "./backend.ts";
export { dropoutHash, dropoutKeep } from "./hash.ts";
export { CpuStorage } from "./storage.ts";
export { roundF16 } from "../half.ts";
