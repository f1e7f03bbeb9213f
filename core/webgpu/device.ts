/**
 * Adapter and device acquisition, with the adapter's real limits.
 *
 * @module
 */

/** What the adapter says about itself, for logs and benchmark records. */
export interface GpuInfo {
  /** e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100". */
  description: string;
  /** Vendor id or name. */
  vendor: string;
  /** Architecture, when reported. */
  architecture: string;
  /** What the adapter reports as `isFallbackAdapter` (see `isSoftwareAdapter`). */
  isFallbackAdapter: boolean;
  /** The backend Deno was told to use (`DENO_WEBGPU_BACKEND`), or "default". */
  backendHint: string;
  /** Features enabled on the device. */
  features: string[];
  /** Largest storage binding, bytes. */
  maxStorageBufferBindingSize: number;
  /** Largest buffer, bytes. */
  maxBufferSize: number;
}

/**
 * Whether the adapter is a CPU implementation (lavapipe / llvmpipe,
 * SwiftShader): the flag the adapter reports, or its name where a driver
 * does not set the flag. Kernels pick layouts that suit SIMD lanes on CPU
 * cores rather than GPU warps there (matmul's thread grid, segment sums,
 * layer norm); every kernel module asks this one function.
 */
export function isSoftwareAdapter(info: GpuInfo): boolean {
  return info.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(info.description);
}

/** Raised when no WebGPU adapter can be found; the message says how to get one. */
export class NoAdapterError extends Error {
  /** Builds the message with the remedy. */
  constructor(detail: string) {
    super(
      `fanout: no WebGPU adapter (${detail}). ` +
        "On a machine without a GPU, install Mesa's software Vulkan driver " +
        "(`apt-get install mesa-vulkan-drivers`) and run with DENO_WEBGPU_BACKEND=vulkan, " +
        "or use the CPU reference backend: setDefaultBackend(cpuBackend()).",
    );
    this.name = "NoAdapterError";
  }
}

/** Options for `requestGpu`. */
export interface RequestGpuOptions {
  /** Adapter preference; "high-performance" by default. */
  powerPreference?: GPUPowerPreference;
  /** The GPU entry point; `navigator.gpu` by default (tests pass a stand-in). */
  gpu?: GPU | undefined;
  /** Ask for f16 storage when the adapter has it (default true). */
  f16?: boolean;
}

/** A device with the adapter's limits, plus a description of it. */
export interface Gpu {
  /** The adapter. */
  adapter: GPUAdapter;
  /** The device, created with every limit the adapter supports. */
  device: GPUDevice;
  /** Adapter description and key limits. */
  info: GpuInfo;
}

/** Requests the adapter and a device that uses the adapter's real limits rather than the defaults. */
export async function requestGpu(opts: RequestGpuOptions = {}): Promise<Gpu> {
  const gpu = "gpu" in opts ? opts.gpu : (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new NoAdapterError("this runtime exposes no navigator.gpu");
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({
      powerPreference: opts.powerPreference ?? "high-performance",
    });
  } catch (e) {
    throw new NoAdapterError(`requestAdapter failed: ${(e as Error).message}`);
  }
  if (!adapter) throw new NoAdapterError("requestAdapter returned null");

  const requiredLimits: Record<string, number> = {};
  const limits = adapter.limits as unknown as Record<string, number>;
  for (const key in limits) {
    const v = limits[key];
    if (typeof v === "number") requiredLimits[key] = v;
  }
  const wanted: GPUFeatureName[] = [];
  if ((opts.f16 ?? true) && adapter.features.has("shader-f16")) wanted.push("shader-f16");
  if (adapter.features.has("timestamp-query")) wanted.push("timestamp-query");
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures: wanted });
  const ai = adapter.info;
  return {
    adapter,
    device,
    info: {
      description: ai.description || ai.device || "unknown",
      vendor: ai.vendor,
      architecture: ai.architecture,
      isFallbackAdapter: (ai as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
        false,
      backendHint: Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default",
      features: [...device.features],
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
    },
  };
}
