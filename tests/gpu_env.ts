/**
 * Test helper: the WebGPU backend when an adapter exists, else null (tests
 * that need it are then ignored, and say so).
 *
 * @module
 */

import { type WebGpuBackend, webgpuBackend } from "../core/webgpu/mod.ts";

let backend: WebGpuBackend | null = null;
try {
  backend = await webgpuBackend();
} catch (e) {
  console.warn(`WebGPU tests skipped: ${(e as Error).message}`);
}

/** The shared WebGPU backend, or null without an adapter. */
export const gpuBackend: WebGpuBackend | null = backend;
/** True when there is no adapter (pass as Deno.test's `ignore`). */
export const noGpu: boolean = backend === null;
