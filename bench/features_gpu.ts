/**
 * The GPU side of bench/features.ts: upload throughput, and the share of a
 * synthetic training step spent waiting on the loader (`BatchPipeline`).
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { cpuBackend } from "../core/cpu/mod.ts";
import { webgpuBackend } from "../core/webgpu/mod.ts";
import { gather, matmul, relu, segmentReduce, sum } from "../core/ops.ts";
import { scope, tensor } from "../core/tensor.ts";
import { FeatureReader } from "../store/features/reader.ts";
import { GatherPool } from "../store/features/gather_pool.ts";
import { BatchPipeline, type GpuBatch, type RowSource, toGpuBatch } from "../sampler/batch.ts";
import type { SamplerOutput } from "../sampler/types.ts";
import { STATIC_TIME } from "../store/ticks.ts";
import { emit, timeIt } from "./report.ts";

async function gpuOrCpu(): Promise<{ backend: Backend; adapter: string }> {
  try {
    const g = await webgpuBackend();
    return { backend: g, adapter: g.info.description };
  } catch (e) {
    console.error(`features bench: no WebGPU adapter (${(e as Error).message}); using the CPU`);
    return { backend: cpuBackend(), adapter: "cpu" };
  }
}

/** GB/s of f32 uploads through `fromArray`, 8 uploads closed by one sync, per tensor size. */
export async function benchUpload(quick: boolean): Promise<void> {
  const { backend, adapter } = await gpuOrCpu();
  if (backend.name !== "webgpu") return;
  for (const mb of [1, 4, 16, 64]) {
    const data = new Float32Array((mb << 20) / 4);
    for (let i = 0; i < data.length; i++) data[i] = Math.random();
    const sec = await timeIt(async () => {
      for (let k = 0; k < 8; k++) backend.release(backend.fromArray(data, "f32"));
      await backend.sync();
    }, { warmup: 1, repeats: quick ? 3 : 5 });
    emit({
      bench: "features",
      metric: "gpu_upload",
      value: (8 * data.byteLength) / sec / 1e9,
      unit: "GB/s",
      tensor_mib: mb,
      adapter,
    });
  }
}

const SEEDS = 1024, FANOUT = 7, NODES = SEEDS * (1 + FANOUT), EDGE = "rows.a->rows.b";

/** A batch of SEEDS seeds with FANOUT neighbours each, random ids over `rows` rows. */
function syntheticSample(rows: number, b: number): SamplerOutput {
  let x = 0x9e3779b9 ^ b;
  const rnd = () => (x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0);
  const ids = Int32Array.from({ length: NODES }, () => rnd() % rows);
  const seed = Int32Array.from({ length: NODES }, (_, i) => i < SEEDS ? i : (i - SEEDS) % SEEDS);
  const src = new Int32Array(SEEDS * FANOUT), dst = new Int32Array(SEEDS * FANOUT);
  for (let s = 0; s < SEEDS; s++) {
    for (let j = 0; j < FANOUT; j++) {
      src[s * FANOUT + j] = SEEDS + j * SEEDS + s;
      dst[s * FANOUT + j] = s;
    }
  }
  const dstOffsets = new Int32Array(NODES + 1);
  for (let s = 0; s <= NODES; s++) dstOffsets[s] = Math.min(s, SEEDS) * FANOUT;
  return {
    seedType: "rows",
    batchSize: SEEDS,
    seedTicks: new Int32Array(SEEDS).fill(1000),
    seedLocal: Int32Array.from({ length: SEEDS }, (_, i) => i),
    nodes: {
      rows: {
        ids,
        seed,
        hop: Uint8Array.from(seed, (_, i) => i < SEEDS ? 0 : 1),
        time: new Int32Array(NODES).fill(STATIC_TIME),
        hopOffsets: Int32Array.of(0, SEEDS, NODES, NODES),
      },
    },
    edges: { [EDGE]: { src, dst, dstOffsets, hop: new Uint8Array(src.length).fill(1) } },
  };
}

/**
 * Share of the time a synthetic step waits on `BatchPipeline`, with rows
 * gathered in-process and by a 2-worker `GatherPool`, on the third pass over
 * the same batches (rows in the OS cache); beside it, the step alone on
 * batches already uploaded, and the share of the step time the loader adds.
 * On a software adapter the "GPU" shares the CPU cores with the loader, and
 * the consumer's JS work is tiny (it records and submits), so the wait share
 * is high whatever the loader does: `step_overhead_share` is the figure to
 * read there.
 */
export async function benchLoaderWait(
  dir: string,
  rows: number,
  quick: boolean,
  cacheBytes: number,
): Promise<void> {
  const { backend, adapter } = await gpuOrCpu();
  const batches = quick ? 8 : 32;
  const cols = 64;
  const w = tensor(
    Float32Array.from({ length: cols * cols }, () => Math.random() - 0.5),
    [cols, cols],
    { backend },
  ).keep();
  let steps = 0;
  const step = async (b: GpuBatch) => {
    scope(() => {
      // Random bytes decode to arbitrary floats (NaN included): only the work counts.
      const x = b.nodes.rows.num[0];
      const h = relu(matmul(x, w));
      const e = b.edges[EDGE];
      return sum(segmentReduce(gather(h, e.src), e.dst, "mean")).keep();
    }).dispose();
    backend.flush();
    if (++steps % 4 === 0) await backend.sync();
  };
  async function* source(offset: number) {
    for (let b = 0; b < batches; b++) yield syntheticSample(rows, offset + b);
  }
  const common = {
    bench: "features",
    unit: "share",
    nodes_per_batch: NODES,
    batches,
    adapter,
    cache_bytes: cacheBytes,
  };
  // The step alone, on batches uploaded beforehand.
  const reader = await FeatureReader.open(dir, { cacheBytes });
  const ready: GpuBatch[] = [];
  for (let b = 0; b < 4; b++) {
    ready.push(await toGpuBatch(syntheticSample(rows, b), reader, backend));
  }
  const stepSec = await timeIt(async () => {
    for (const b of ready) await step(b);
    await backend.sync();
  }, { warmup: 1, repeats: 3 }) / ready.length;
  ready.forEach((b) => b.dispose());
  const run = async (name: string, src: RowSource, workers: number, offset: number) => {
    // Two untimed passes first (epochs 1 and 2): the OS cache then holds the rows, their
    // checksums are verified and the readers' caches have settled (cold reads are measured above).
    for (let e = 0; e < 2; e++) {
      for await (const b of new BatchPipeline(source(offset), src, backend)) await step(b);
    }
    const pipe = new BatchPipeline(source(offset), src, backend);
    const t0 = performance.now();
    for await (const b of pipe) await step(b);
    await backend.sync();
    const sec = (performance.now() - t0) / 1000;
    const s = pipe.stats();
    emit({
      ...common,
      metric: "loader_wait_share",
      value: s.waitShare,
      rows_from: name,
      workers,
      step_ms: Number((sec / batches * 1000).toFixed(2)),
      // What the loader adds to a step: 1 - (step alone) / (step fed by the pipeline).
      step_overhead_share: Number(Math.max(0, 1 - stepSec * batches / sec).toFixed(3)),
      step_alone_ms: Number((stepSec * 1000).toFixed(2)),
      batches_per_s: Number((batches / sec).toFixed(2)),
    });
  };
  await run("reader", reader, 0, 1000);
  reader.close();
  const pool = await GatherPool.create(dir, { workers: 2, cacheBytes });
  try {
    await run("gather_pool", pool, 2, 2000);
  } finally {
    await pool.close();
  }
  w.dispose();
}
