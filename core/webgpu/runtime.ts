/**
 * The WebGPU runtime under the backend: a buffer pool, a pipeline cache, a
 * uniform arena and one command encoder that collects every dispatch until
 * `flush()`. Nothing here waits on the GPU except `read` and `sync`, because
 * each wait costs about 10 ms in Deno.
 *
 * Ordering: every dispatch, copy and upload is recorded into the one open
 * encoder in program order, so a buffer recycled by the pool is never
 * overwritten before earlier work that reads it has run. Uploads go through a
 * mapped staging buffer and a recorded copy for that reason.
 *
 * Kernel conventions (see shaders/common.wgsl): binding 0 is the uniform
 * parameter block, bindings 1.. are the storage buffers in the order passed
 * to `dispatch`; parameter blocks list u32 fields first, then i32, then f32.
 *
 * @module
 */

import type { Gpu } from "./device.ts";

/** Uniform parameters of one dispatch: u32 fields, then i32 fields, then f32 fields. */
export interface Params {
  /** Unsigned fields, first in the struct. */
  u?: readonly number[];
  /** Signed fields, after the unsigned ones. */
  i?: readonly number[];
  /** Float fields, last. */
  f?: readonly number[];
}

/** Counters for tests and benchmarks. */
export interface RuntimeStats {
  /** GPU buffers created by the pool since start. */
  buffersCreated: number;
  /** Bytes held by live and pooled buffers. */
  bytesHeld: number;
  /** Dispatches recorded. */
  dispatches: number;
  /** Command buffers submitted. */
  submits: number;
  /** Readbacks (each one a GPU round trip). */
  reads: number;
}

const UNIFORM_SLOT = 256;
const UNIFORM_SLOTS = 4096;
const BUFFER_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Rounds a byte size up to the pool's size class (at most 25% slack). */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 4) * 4);
  const p = 2 ** Math.floor(Math.log2(b));
  const step = Math.max(4, p / 4);
  return Math.ceil(b / step) * step;
}

/** The runtime. One per device. */
export class Runtime {
  /** The device. */
  readonly device: GPUDevice;
  /** Description and limits. */
  readonly gpu: Gpu;
  /** Largest binding, bytes. */
  readonly maxBinding: number;
  readonly #free = new Map<number, GPUBuffer[]>();
  readonly #pipelines = new Map<string, GPUComputePipeline>();
  readonly #layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
  readonly #modules = new Map<string, GPUShaderModule>();
  readonly #sources = new Map<string, string>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #staging: GPUBuffer[] = [];
  readonly #uniformData = new ArrayBuffer(UNIFORM_SLOT * UNIFORM_SLOTS);
  readonly #uniformU32 = new Uint32Array(this.#uniformData);
  readonly #uniformI32 = new Int32Array(this.#uniformData);
  readonly #uniformF32 = new Float32Array(this.#uniformData);
  #uniformUsed = 0;
  readonly #uniformBuffer: GPUBuffer;
  #errors: string[] = [];
  /** Counters. */
  readonly stats: RuntimeStats = {
    buffersCreated: 0,
    bytesHeld: 0,
    dispatches: 0,
    submits: 0,
    reads: 0,
  };

  /** Wraps a device from `requestGpu`. */
  constructor(gpu: Gpu) {
    this.gpu = gpu;
    this.device = gpu.device;
    this.maxBinding = gpu.device.limits.maxStorageBufferBindingSize;
    // Validation errors are reported asynchronously; keep them and raise them at
    // the next flush, read or sync instead of letting a dispatch silently do nothing.
    this.device.addEventListener("uncapturederror", (e) => {
      this.#errors.push((e as GPUUncapturedErrorEvent).error.message);
    });
    this.#uniformBuffer = this.device.createBuffer({
      size: this.#uniformData.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }

  // ---- shaders --------------------------------------------------------------------

  /** Loads WGSL files from shaders/ (relative to this module, so it works when imported by URL). */
  async loadShaders(files: readonly string[]): Promise<void> {
    const need = ["common.wgsl", ...files].filter((f) => !this.#sources.has(f));
    await Promise.all(need.map(async (f) => {
      const url = new URL(`../../shaders/${f}`, import.meta.url);
      const res = await fetch(url);
      if (!res.ok) throw new Error(`fanout: cannot load shader ${url}: ${res.status}`);
      this.#sources.set(f, await res.text());
    }));
  }

  /** Whether the device has f16 support. */
  get hasF16(): boolean {
    return this.device.features.has("shader-f16");
  }

  #module(file: string): GPUShaderModule {
    let m = this.#modules.get(file);
    if (m) return m;
    const src = this.#sources.get(file);
    if (src === undefined) throw new Error(`fanout: shader ${file} was not loaded`);
    let code = this.#sources.get("common.wgsl")! + "\n" + src;
    if (/^\s*enable f16;/m.test(code)) {
      code = "enable f16;\n" + code.replace(/^\s*enable f16;/m, "");
    }
    m = this.device.createShaderModule({ code, label: file });
    this.#modules.set(file, m);
    return m;
  }

  /** A compute pipeline for `entry` of `file`, specialised by WGSL `override` constants; cached. */
  pipeline(
    file: string,
    entry: string,
    constants: Record<string, number> = {},
  ): GPUComputePipeline {
    const key = `${file}:${entry}:${JSON.stringify(constants)}`;
    let p = this.#pipelines.get(key);
    if (!p) {
      p = this.device.createComputePipeline({
        layout: "auto",
        label: key,
        compute: { module: this.#module(file), entryPoint: entry, constants },
      });
      this.#pipelines.set(key, p);
    }
    return p;
  }

  // ---- memory ---------------------------------------------------------------------

  /**
   * A storage buffer of at least `bytes` from the pool. Kernels bind whole
   * buffers, so a tensor above the device's storage binding limit (128 MiB on
   * software adapters) is refused here with a clear error rather than failing
   * validation later: callers split such data into blocks.
   */
  alloc(bytes: number): GPUBuffer {
    if (bytes > this.maxBinding) {
      throw new RangeError(
        `fanout: a tensor of ${bytes} bytes exceeds the device's storage binding limit ` +
          `(${this.maxBinding} bytes); split it into blocks of at most that size`,
      );
    }
    const size = Math.min(sizeClass(bytes), Math.floor(this.maxBinding / 4) * 4);
    const list = this.#free.get(size);
    const b = list?.pop();
    if (b) return b;
    this.stats.buffersCreated++;
    this.stats.bytesHeld += size;
    return this.device.createBuffer({ size, usage: BUFFER_USAGE });
  }

  /** Returns a buffer to the pool. Work already recorded that uses it stays valid. */
  free(buffer: GPUBuffer): void {
    let list = this.#free.get(buffer.size);
    if (!list) this.#free.set(buffer.size, list = []);
    list.push(buffer);
  }

  /** Destroys every pooled (unused) buffer. */
  trim(): void {
    this.flush();
    for (const list of this.#free.values()) {
      for (const b of list) {
        this.stats.bytesHeld -= b.size;
        b.destroy();
      }
    }
    this.#free.clear();
  }

  /** Records a copy of `data` into `dst` at `offset`, ordered after all work recorded so far. */
  upload(dst: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    const bytes = Math.ceil(data.byteLength / 4) * 4;
    if (bytes === 0) return;
    if (!this.#encoder) {
      // Nothing pending: a queue write is ordered after every earlier submit.
      if (data.byteLength % 4 === 0) {
        this.device.queue.writeBuffer(
          dst,
          offset,
          data.buffer as ArrayBuffer,
          data.byteOffset,
          data.byteLength,
        );
      } else {
        const padded = new Uint8Array(bytes);
        padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        this.device.queue.writeBuffer(dst, offset, padded);
      }
      return;
    }
    const staging = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    new Uint8Array(staging.getMappedRange()).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    staging.unmap();
    this.#endPass();
    this.#encoder.copyBufferToBuffer(staging, 0, dst, offset, bytes);
    this.#staging.push(staging);
  }

  /** Records a buffer-to-buffer copy. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.#endPass();
    this.#enc().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Reads `bytes` from `src` (one round trip: submits everything pending first). */
  async read(src: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.#endPass();
    this.#enc().copyBufferToBuffer(src, offset, staging, 0, size);
    this.flush();
    this.stats.reads++;
    await staging.mapAsync(GPUMapMode.READ);
    this.checkErrors();
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    return out;
  }

  // ---- dispatch -------------------------------------------------------------------

  #enc(): GPUCommandEncoder {
    return this.#encoder ??= this.device.createCommandEncoder();
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  #params(p: Params): number {
    if (this.#uniformUsed >= UNIFORM_SLOTS) this.flush();
    const slot = this.#uniformUsed++;
    let w = (slot * UNIFORM_SLOT) / 4;
    for (const v of p.u ?? []) this.#uniformU32[w++] = v;
    for (const v of p.i ?? []) this.#uniformI32[w++] = v;
    for (const v of p.f ?? []) this.#uniformF32[w++] = v;
    if (w > (slot + 1) * (UNIFORM_SLOT / 4)) throw new Error("fanout: too many kernel parameters");
    return slot * UNIFORM_SLOT;
  }

  /**
   * Records one dispatch of `pipeline` over `groups` workgroups (x, y, z).
   * `buffers` bind to 1, 2, …; `params` to 0.
   */
  dispatch(
    pipeline: GPUComputePipeline,
    buffers: readonly GPUBuffer[],
    params: Params,
    groups: readonly [number, number?, number?],
  ): void {
    const [x, y = 1, z = 1] = groups;
    if (x === 0 || y === 0 || z === 0) return;
    const offset = this.#params(params);
    const entries: GPUBindGroupEntry[] = [{
      binding: 0,
      resource: { buffer: this.#uniformBuffer, offset, size: UNIFORM_SLOT },
    }];
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    let layout = this.#layouts.get(pipeline);
    if (!layout) this.#layouts.set(pipeline, layout = pipeline.getBindGroupLayout(0));
    const bindGroup = this.device.createBindGroup({ layout, entries });
    if (!this.#pass) this.#pass = this.#enc().beginComputePass();
    this.#pass.setPipeline(pipeline);
    this.#pass.setBindGroup(0, bindGroup);
    this.#pass.dispatchWorkgroups(x, y, z);
    this.stats.dispatches++;
  }

  /**
   * Dispatches enough workgroups of `wgSize` threads for `threads` threads,
   * folding the count into x and y when it exceeds the per-dimension limit.
   * Kernels compute their linear id with `linear_id()` from common.wgsl.
   */
  dispatch1d(
    pipeline: GPUComputePipeline,
    buffers: readonly GPUBuffer[],
    params: Params,
    threads: number,
    wgSize = 256,
  ): void {
    const groups = Math.ceil(threads / wgSize);
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    const x = Math.min(groups, max);
    this.dispatch(pipeline, buffers, params, [x, Math.ceil(groups / x)]);
  }

  /** Throws the GPU validation errors reported since the last check, if any. */
  checkErrors(): void {
    if (this.#errors.length === 0) return;
    const errs = this.#errors;
    this.#errors = [];
    throw new Error(`fanout: WebGPU reported ${errs.length} error(s): ${errs.join(" | ")}`);
  }

  /** Submits everything recorded so far, without waiting. */
  flush(): void {
    this.checkErrors();
    this.#endPass();
    if (!this.#encoder) return;
    if (this.#uniformUsed > 0) {
      this.device.queue.writeBuffer(
        this.#uniformBuffer,
        0,
        this.#uniformData,
        0,
        this.#uniformUsed * UNIFORM_SLOT,
      );
      this.#uniformUsed = 0;
    }
    this.device.queue.submit([this.#encoder.finish()]);
    this.#encoder = null;
    this.stats.submits++;
    for (const s of this.#staging) s.destroy();
    this.#staging = [];
  }

  /** Waits until the GPU has finished all submitted work. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.checkErrors();
  }
}
