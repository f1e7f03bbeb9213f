/**
 * `deno task bench core`: matmul GFLOP/s, segment-sum GB/s and one MLP
 * training step, each on WebGPU beside the plain TypeScript computation in
 * the same run.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { type WebGpuBackend, webgpuBackend } from "../core/webgpu/mod.ts";
import { Rng } from "../core/random.ts";
import { matmulTs, segmentSumTs } from "./baselines.ts";
import { emit, timeBatched, timeIt } from "./report.ts";
import { benchMlpStep } from "./core_mlp.ts";

function randomF32(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.next() * 2 - 1;
  return a;
}

async function benchMatmul(gpu: WebGpuBackend, m: number, k: number, n: number, quick: boolean) {
  const rng = new Rng(1);
  const a = randomF32(m * k, rng), b = randomF32(k * n, rng);
  const flops = 2 * m * k * n;
  const common = { bench: "core", metric: "matmul", unit: "GFLOP/s", m, k, n };
  const sa = gpu.fromArray(a, "f32"), sb = gpu.fromArray(b, "f32");
  // Many dispatches per sync: Deno's ~10 ms per wait would dominate otherwise.
  const sec = await timeBatched(
    () => gpu.release(gpu.matmul(sa, sb, { m, k, n, transA: false, transB: false })),
    () => gpu.sync(),
    { repeats: quick ? 2 : 5 },
  );
  emit({
    ...common,
    value: flops / sec / 1e9,
    impl: "webgpu",
    adapter: gpu.info.description,
  });
  gpu.release(sa);
  gpu.release(sb);
  const tsSec = await timeIt(() => matmulTs(a, b, m, k, n), { warmup: 0, repeats: quick ? 1 : 2 });
  emit({ ...common, value: flops / tsSec / 1e9, impl: "typescript" });
}

async function benchSegmentSum(
  gpu: WebGpuBackend,
  rows: number,
  cols: number,
  segments: number,
  quick: boolean,
) {
  const rng = new Rng(2);
  const x = randomF32(rows * cols, rng);
  // Random segment sizes (sorted random cut points), as destination-sorted edges give.
  const cuts = Array.from({ length: segments - 1 }, () => rng.int(rows + 1)).sort((p, q) => p - q);
  const offsets = Int32Array.from([0, ...cuts, rows]);
  const bytes = (rows * cols + segments * cols) * 4 + offsets.byteLength;
  const common = { bench: "core", metric: "segment_sum", unit: "GB/s", rows, cols, segments };
  const sx = gpu.fromArray(x, "f32"), so = gpu.fromArray(offsets, "i32");
  const sec = await timeBatched(
    () => gpu.release(gpu.segmentReduce(sx, so, { segments, cols, reduce: "sum" }).out),
    () => gpu.sync(),
    { repeats: quick ? 2 : 5 },
  );
  emit({ ...common, value: bytes / sec / 1e9, impl: "webgpu" });
  gpu.release(sx);
  gpu.release(so);
  const tsSec = await timeIt(() => segmentSumTs(x, offsets, cols), {
    warmup: 1,
    repeats: quick ? 2 : 5,
  });
  emit({ ...common, value: bytes / tsSec / 1e9, impl: "typescript" });
}

/** Runs the core benchmarks. */
export async function benchCore(opts: { quick?: boolean } = {}): Promise<void> {
  const quick = opts.quick ?? false;
  const gpu = await webgpuBackend();
  await benchMatmul(gpu, 1024, 1024, 1024, quick);
  await benchMatmul(gpu, 65536, 128, 128, quick);
  await benchSegmentSum(gpu, 65536, 128, 4096, quick);
  await benchMlpStep(gpu as Backend, quick);
}
