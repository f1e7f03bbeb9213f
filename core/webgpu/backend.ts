/**
 * The WebGPU backend: memory management here, kernels in `kernels_dense.ts`
 * and `kernels_graph.ts` (WGSL in shaders/).
 *
 * @module
 */

import type { Backend, DType, Storage } from "../backend.ts";
import { type Gpu, type GpuInfo, requestGpu, type RequestGpuOptions } from "./device.ts";
import { Runtime } from "./runtime.ts";
import { bytesPer, gpu, GpuStorage } from "./storage.ts";
import { f16BitsToF32, f32ToF16, f32ToF16Bits } from "../half.ts";
import { DENSE_SHADERS, denseKernels } from "./kernels_dense.ts";
import { GRAPH_SHADERS, graphKernels } from "./kernels_graph.ts";

/** What kernel modules receive: the runtime and an allocator of output storages. */
export interface KernelContext {
  /** The runtime (dispatch, pipelines, pool). */
  rt: Runtime;
  /** The backend being built (owner of new storages). */
  backend: Backend;
  /** A new storage of `size` elements from the pool (contents undefined). */
  out(size: number, dtype?: DType): GpuStorage;
}

/** The kernel methods, as implemented by the kernel modules. */
export type KernelMethods = Omit<
  Backend,
  | "name"
  | "supportsF16"
  | "fromArray"
  | "full"
  | "read"
  | "write"
  | "retain"
  | "release"
  | "flush"
  | "sync"
>;

/** A WebGPU backend, with its runtime and adapter description exposed. */
export interface WebGpuBackend extends Backend {
  /** The runtime, for statistics and low-level use. */
  readonly runtime: Runtime;
  /** Adapter description. */
  readonly info: GpuInfo;
}

function toBytes(data: ArrayLike<number>, dtype: DType): ArrayBufferView {
  if (dtype === "i32") return data instanceof Int32Array ? data : Int32Array.from(data);
  if (dtype === "f32") return data instanceof Float32Array ? data : Float32Array.from(data);
  return f32ToF16(data);
}

/** Builds the backend over an acquired device. */
export async function createWebGpuBackend(g: Gpu): Promise<WebGpuBackend> {
  const rt = new Runtime(g);
  await rt.loadShaders(["fill.wgsl", ...DENSE_SHADERS, ...GRAPH_SHADERS]);
  const backend = {
    name: "webgpu",
    supportsF16: rt.hasF16,
    runtime: rt,
    info: g.info,
  } as unknown as WebGpuBackend;
  const ctx: KernelContext = {
    rt,
    backend,
    out(size: number, dtype: DType = "f32"): GpuStorage {
      return new GpuStorage(backend, rt.alloc(Math.max(1, size) * bytesPer(dtype)), size, dtype);
    },
  };
  const memory: Omit<
    WebGpuBackend,
    keyof KernelMethods | "name" | "supportsF16" | "runtime" | "info"
  > = {
    fromArray(data: ArrayLike<number>, dtype: DType): Storage {
      if (dtype === "f16" && !rt.hasF16) throw new Error("fanout: this adapter has no shader-f16");
      const s = ctx.out(data.length, dtype);
      rt.upload(s.buffer, toBytes(data, dtype));
      return s;
    },
    full(size: number, value: number, dtype: DType): Storage {
      // A kernel writes the pattern: no host array and no staging buffer per call.
      const s = ctx.out(size, dtype);
      const words = dtype === "f16" ? Math.ceil(size / 2) : size;
      let bits: number;
      if (dtype === "i32") bits = value | 0;
      else if (dtype === "f32") bits = new Uint32Array(Float32Array.of(value).buffer)[0];
      else bits = f32ToF16Bits(value) * 0x10001;
      rt.dispatch1d(
        rt.pipeline("fill.wgsl", "fill"),
        [s.buffer],
        { u: [words, bits >>> 0] },
        words,
      );
      return s;
    },
    async read(s: Storage): Promise<Float32Array | Int32Array> {
      const g = gpu(s);
      const bytes = await rt.read(g.buffer, g.bytes);
      if (g.dtype === "i32") return new Int32Array(bytes);
      if (g.dtype === "f32") return new Float32Array(bytes);
      return f16BitsToF32(new Uint16Array(bytes, 0, g.size));
    },
    write(s: Storage, data: ArrayLike<number>): void {
      const g = gpu(s);
      if (data.length !== g.size) {
        throw new Error(`fanout: write of ${data.length} values into a storage of ${g.size}`);
      }
      rt.upload(g.buffer, toBytes(data, g.dtype));
    },
    retain(s: Storage): void {
      gpu(s).refs++;
    },
    release(s: Storage): void {
      const g = gpu(s); // throws on a second release, as the CPU backend does
      if (--g.refs === 0) rt.free(g.buffer);
    },
    flush(): void {
      rt.flush();
    },
    async sync(): Promise<void> {
      await rt.sync();
    },
  };
  Object.assign(backend, memory, denseKernels(ctx), graphKernels(ctx));
  return backend;
}

let shared: Promise<WebGpuBackend> | null = null;

/**
 * The WebGPU backend on the default adapter (created once per process).
 * Throws `NoAdapterError` with a remedy when there is no adapter.
 *
 * @example
 * ```ts
 * const gpu = await webgpuBackend();
 * console.log(gpu.info.description);
 * ```
 */
export function webgpuBackend(opts: RequestGpuOptions = {}): Promise<WebGpuBackend> {
  if (Object.keys(opts).length > 0) return requestGpu(opts).then(createWebGpuBackend);
  shared ??= requestGpu().then(createWebGpuBackend).catch((e) => {
    shared = null;
    throw e;
  });
  return shared;
}
