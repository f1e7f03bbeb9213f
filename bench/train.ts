/**
 * `deno task bench train`: training throughput of the default job (the
 * synthetic database of models/synthetic.ts, its default query, the
 * suggested plan) on the default backend (WebGPU; the CPU reference when
 * there is no adapter), and where the time goes.
 *
 * 1. **End to end**: `train()` for one epoch (`--quick`: a smaller
 *    database); records seeds/s of the training loop and the share of the
 *    loop spent waiting for batches.
 * 2. **Split**: on the same run's data, plan and model, each stage of a
 *    step timed alone over the epoch's batches, per batch (medians):
 *    - `sampling`: one batch sampled in-process (one thread; the pool runs
 *      these in workers, overlapped with the rest);
 *    - `gather`: the batch's feature rows read from the feature store;
 *    - `upload`: decoding and uploading them with the index structures
 *      (`toGpuBatch` over already-gathered rows, then a device sync);
 *    - `compute`: forward, loss, backward, clip and AdamW step on a
 *      resident batch, `reps` steps submitted back to back and one sync
 *      (the fastest of three such runs: the machines are shared).
 * 3. **GPU busy share**: compute time × steps / the loop's wall time: the
 *    fraction of the loop the device had work, if every step's compute ran
 *    as measured alone.
 *
 * @module
 */

import process from "node:process";
import type { Backend } from "../core/backend.ts";
import { cpuBackend } from "../core/cpu/mod.ts";
import { webgpuBackend } from "../core/webgpu/mod.ts";
import { AdamW } from "../core/optim.ts";
import { FeatureReader } from "../store/features/reader.ts";
import { Split } from "../store/types.ts";
import { compileSampling } from "../sampler/config.ts";
import { runSample } from "../sampler/pool.ts";
import { SamplerPool } from "../sampler/pool.ts";
import { permutation, SamplerLoader } from "../sampler/loader.ts";
import { type RowSource, toGpuBatch } from "../sampler/batch.ts";
import type { SamplerOutput } from "../sampler/types.ts";
import { buildGraphModel } from "../models/gnn.ts";
import { lossFor } from "../models/heads.ts";
import { loadCheckpoint } from "../models/checkpoint.ts";
import { trainStep } from "../models/train_loop.ts";
import {
  buildTable,
  deviceName,
  type JobRecord,
  openRunData,
  pipelineOptions,
  runPaths,
  train,
} from "../models/trainer.ts";
import { emit, median } from "./report.ts";

/** Options of `benchTrain`. */
export interface TrainBenchOptions {
  /** A smaller synthetic database (1000 users, 20k transactions). */
  quick?: boolean;
  /** Batches timed per stage (default 16). */
  batches?: number;
  /** Steps per compute timing (default 10). */
  reps?: number;
}

async function defaultBackend(): Promise<Backend> {
  try {
    return await webgpuBackend();
  } catch {
    return cpuBackend();
  }
}

/** Runs the benchmark and prints JSON lines. */
export async function benchTrain(opts: TrainBenchOptions = {}): Promise<void> {
  const backend = await defaultBackend();
  const device = deviceName(backend);
  const out = await Deno.makeTempDir({ prefix: "fanout-bench-train-" });
  const synthetic = opts.quick ? { users: 1000, items: 200, stores: 20, transactions: 20_000 } : {};
  const common = { bench: "train", device, quick: !!opts.quick };
  try {
    // ---- 1. end to end ----
    const cpu0 = process.cpuUsage();
    const r = await train({ backend, out, epochs: 1, synthetic, logEvery: 1000 });
    const cpu = process.cpuUsage(cpu0);
    const tp = r.metrics.throughput;
    emit({
      ...common,
      metric: "seeds_per_second",
      value: tp.seedsPerSecond,
      unit: "seeds/s",
      steps: tp.steps,
      batch: tp.batchSize,
      loop_s: Number(tp.trainSeconds.toFixed(3)),
      wait_share: Number(tp.waitShare.toFixed(4)),
      cpu_s: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
      load1: Deno.loadavg()[0],
    });

    // ---- 2. split ----
    const paths = runPaths(out);
    const record: JobRecord = JSON.parse(await Deno.readTextFile(paths.job));
    const ck = await loadCheckpoint(paths.last);
    const { db, graph } = await openRunData(record, () => {});
    const reader = await FeatureReader.open(paths.features, { cacheBytes: 256 << 20 });
    const pool = await SamplerPool.create({
      graph,
      config: compileSampling(
        graph,
        ck.sampler.numNeighbors as never,
        ck.sampler.strategy as never,
      ),
      workers: 0,
    });
    try {
      const { table } = await buildTable(db, record);
      const rows: number[] = [];
      for (let i = 0; i < table.split.length; i++) if (table.split[i] === Split.Train) rows.push(i);
      const order = permutation(rows.length, 1);
      const seeds = Int32Array.from(order, (k) => table.entity[rows[k]]);
      const times = Float64Array.from(order, (k) => table.anchorTime[rows[k]]);
      const labels = Float32Array.from(order, (k) => table.label[rows[k]]);
      const B = ck.sampler.batchSize;
      const loader = new SamplerLoader(pool, {
        seedType: ck.sampler.seedType,
        seeds,
        seedTimes: times,
        batchSize: B,
        randomSeed: 0,
      });
      const n = Math.min(opts.batches ?? 16, loader.numBatches);
      const sampleMs: number[] = [], gatherMs: number[] = [], uploadMs: number[] = [];
      const samples: SamplerOutput[] = [];
      const data = graph.toShared();
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        samples.push(runSample(data, pool.config, loader.request(i)));
        sampleMs.push(performance.now() - t0);
      }
      const popts = pipelineOptions(graph);
      for (const s of samples) {
        const t0 = performance.now();
        const gathered = new Map<string, Uint8Array>();
        for (const [type, nodes] of Object.entries(s.nodes)) {
          if (reader.tables().includes(type)) gathered.set(type, reader.gather(type, nodes.ids));
        }
        const t1 = performance.now();
        const cached: RowSource = {
          tables: () => reader.tables(),
          table: (t) => reader.table(t),
          gather: (t) => gathered.get(t)!,
        };
        const batch = await toGpuBatch(s, cached, backend, popts);
        await backend.sync();
        const t2 = performance.now();
        gatherMs.push(t1 - t0);
        uploadMs.push(t2 - t1);
        batch.dispose();
      }

      // Compute on a resident batch.
      const model = buildGraphModel(ck.spec, { backend });
      await model.loadStateDict(ck.weights);
      const opt = new AdamW(model.namedParameters(), { lr: 1e-4 });
      const loss = lossFor(ck.spec.task);
      const batch = await toGpuBatch(samples[0], reader, backend, popts);
      const y = labels.subarray(0, batch.batchSize);
      const stepOnce = () => {
        const l = trainStep(model, batch, y, loss, backend);
        opt.clip(1);
        opt.step();
        opt.zeroGrad();
        backend.flush();
        return l;
      };
      const reps = opts.reps ?? 10;
      (await stepOnce().item(), 0); // warm-up (pipelines, pool)
      const computeMs: number[] = [];
      for (let k = 0; k < 3; k++) {
        const t0 = performance.now();
        let last = null;
        for (let i = 0; i < reps; i++) {
          last?.dispose();
          last = stepOnce();
        }
        await last!.item();
        last!.dispose();
        computeMs.push((performance.now() - t0) / reps);
      }
      batch.dispose();
      model.dispose();
      opt.dispose();

      const split = {
        sampling: median(sampleMs),
        gather: median(gatherMs),
        upload: median(uploadMs),
        compute: Math.min(...computeMs),
      };
      const loopMsPerBatch = (1000 * tp.trainSeconds) / tp.steps;
      const busy = Math.min(1, split.compute / loopMsPerBatch);
      for (const [stage, ms] of Object.entries(split)) {
        emit({
          ...common,
          metric: `${stage}_ms_per_batch`,
          value: ms,
          unit: "ms",
          batch: B,
          batches: n,
          share_of_loop: Number((ms / loopMsPerBatch).toFixed(4)),
        });
      }
      emit({
        ...common,
        metric: "loop_ms_per_batch",
        value: loopMsPerBatch,
        unit: "ms",
        batch: B,
        note: "sampling runs in workers and gathers/uploads of the next batch overlap compute",
      });
      emit({
        ...common,
        metric: "gpu_busy_share",
        value: busy,
        unit: "fraction",
        compute_ms: Number(split.compute.toFixed(2)),
        loop_ms: Number(loopMsPerBatch.toFixed(2)),
      });
    } finally {
      pool.close();
      reader.close();
      db.close();
    }
  } finally {
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await benchTrain({ quick: Deno.args.includes("--quick") });
