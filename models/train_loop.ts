/**
 * The training loop of `train` (models/trainer.ts): epochs of sampled,
 * pipelined batches, validation after each, early stopping and
 * checkpointing; and the context it runs in.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import type { Optimizer } from "../core/optim.ts";
import type { LRScheduler } from "../core/schedule.ts";
import { manualSeed } from "../core/random.ts";
import { scope, type Tensor, tensor } from "../core/tensor.ts";
import type { Database } from "../store/database.ts";
import type { GraphStore } from "../store/graph.ts";
import type { TaskType, TrainingTable } from "../store/types.ts";
import type { FeatureReader } from "../store/features/reader.ts";
import type { FeatureManifest } from "../store/features/format.ts";
import type { CompiledSampling } from "../sampler/config.ts";
import type { SamplerPool } from "../sampler/pool.ts";
import { permutation, SamplerLoader } from "../sampler/loader.ts";
import { BatchPipeline, type GpuBatch } from "../sampler/batch.ts";
import type { GraphModel } from "./types.ts";
import { evaluate } from "./metrics.ts";
import type { lossFor } from "./heads.ts";
import {
  type CheckpointMeta,
  copyCheckpoint,
  type EpochRecord,
  type FeaturesRef,
  saveCheckpoint,
  type TrainState,
} from "./checkpoint.ts";
import type { ModelPlan } from "./plan.ts";
import {
  type OutputTransform,
  pipelineOptions,
  sampledBatches,
  scoreSeeds,
  toPredictions,
} from "./scoring.ts";
import { better, mixSeed, pick } from "./train_setup.ts";
import { linkBatchLabels, linkEpoch } from "./link.ts";
import { linkMetricsOf, type LinkRun, linkStep } from "./train_link.ts";
import { type JobRecord, type RunPaths, TrainInterrupted, type TrainJob } from "./train_types.ts";

/** What the setup phase opens and decides: data, table, plan, features, sampler, labels. */
export interface Prepared {
  /** The run directory's paths. */
  paths: RunPaths;
  /** Log events. */
  log: (message: string) => void;
  /** Where tensors live. */
  backend: Backend;
  /** Whether this session continues from `checkpoints/last`. */
  resuming: boolean;
  /** The job record. */
  record: JobRecord;
  /** Run seed. */
  seed: number;
  /** The database. */
  db: Database;
  /** The graph store. */
  graph: GraphStore;
  /** The training table. */
  table: TrainingTable;
  /** The query, or the training table's path. */
  queryText: string;
  /** Task type. */
  task: TaskType;
  /** Number of classes (multiclass), else 0. */
  classes: number;
  /** Table rows per split. */
  rows: { train: Int32Array; val: Int32Array; test: Int32Array };
  /** Labels of the training rows (empty for link prediction: see `link`). */
  trainLabels: Float32Array;
  /** Labels of the validation and test rows (empty for link prediction). */
  truth: { val: Float32Array; test: Float32Array };
  /** Link prediction: target sets, candidates, loss; null for the other tasks. */
  link: LinkRun | null;
  /** Options of `evaluate`. */
  evalOpts: { classes?: number };
  /** The plan. */
  plan: ModelPlan;
  /** Primary metric (model selection). */
  metric: string;
  /** The feature reader. */
  reader: FeatureReader;
  /** The sampler pool. */
  pool: SamplerPool;
  /** How raw outputs become predictions. */
  transform: OutputTransform;
  /** The feature store's manifest. */
  manifest: FeatureManifest;
  /** The compiled sampler settings. */
  sampling: CompiledSampling;
  /** The feature store, as checkpoints record it. */
  featuresRef: FeaturesRef;
}

/** The model being fitted, its optimizer, schedule and loop state. */
export interface Fit {
  /** The model. */
  model: GraphModel;
  /** The optimizer. */
  opt: Optimizer;
  /** The learning-rate scheduler. */
  sched: LRScheduler;
  /** The task's loss. */
  loss: ReturnType<typeof lossFor>;
  /** Loop state (saved with checkpoints). */
  state: TrainState;
  /** Checkpoint metadata at the current state. */
  meta: () => CheckpointMeta;
  /** Batches per epoch. */
  batchesPerEpoch: number;
}

/** Timings of the loop in this session. */
export interface LoopStats {
  /** Seconds in the training loop. */
  loopSeconds: number;
  /** Seconds of it spent waiting for batches. */
  waitSeconds: number;
  /** Seconds spent validating. */
  validationSeconds: number;
}

/** Predictions of the model on table rows (eval mode, the run's sampler settings). */
export async function predictRows(run: Prepared, model: GraphModel, rows: Int32Array) {
  const raw = await scoreSeeds(
    model,
    run.pool,
    run.reader,
    run.backend,
    run.graph,
    run.table.entityTable,
    pick(run.table.entity, rows),
    pick(run.table.anchorTime, rows),
    run.plan.training.batchSize,
    run.seed,
  );
  return toPredictions(raw, run.transform);
}

/** The task's metrics of the model on the validation or test rows. */
export async function splitMetrics(
  run: Prepared,
  model: GraphModel,
  split: "val" | "test",
): Promise<Record<string, number>> {
  if (run.link) return await linkMetricsOf(run, model, split);
  return evaluate(run.task, await predictRows(run, model, run.rows[split]), run.truth[split], {
    ...run.evalOpts,
  });
}

/** Runs epochs until done: training, validation, early stopping, checkpoints. */
export async function runEpochs(job: TrainJob, run: Prepared, fit: Fit): Promise<LoopStats> {
  const stats: LoopStats = { loopSeconds: 0, waitSeconds: 0, validationSeconds: 0 };
  const trainEntity = pick(run.table.entity, run.rows.train);
  const trainTime = pick(run.table.anchorTime, run.rows.train);
  while (!fit.state.done) {
    const epoch = fit.state.epoch;
    const done = await trainEpoch(job, run, fit, trainEntity, trainTime);
    stats.loopSeconds += done.seconds;
    stats.waitSeconds += done.waitSeconds;
    const v0 = performance.now();
    const valMetrics = await splitMetrics(run, fit.model, "val");
    stats.validationSeconds += (performance.now() - v0) / 1000;
    await endEpoch(job, run, fit, epoch, done.trainLoss, valMetrics);
  }
  return stats;
}

/** One epoch's training from `state.batch` on; returns its seconds, wait and mean loss. */
async function trainEpoch(
  job: TrainJob,
  run: Prepared,
  fit: Fit,
  trainEntity: Int32Array,
  trainTime: Float64Array,
): Promise<{ seconds: number; waitSeconds: number; trainLoss: number }> {
  const { pool, backend, seed, transform, paths } = run;
  const { model, opt, sched, loss, state, batchesPerEpoch } = fit;
  const T = run.plan.training;
  const n = run.rows.train.length;
  const logEvery = Math.max(1, job.logEvery ?? 10);
  const checkpointEvery = Math.max(1, job.checkpointEvery ?? 200);
  const targetOf = (y: number) =>
    run.task === "regression" ? (y - transform.shift) / transform.scale : y;
  const epoch = state.epoch;
  const order = permutation(n, mixSeed(seed, epoch + 1));
  let seeds: Int32Array = new Int32Array(n), times: Float64Array = new Float64Array(n);
  const labels = new Float32Array(n);
  const link = run.link
    ? linkEpoch({
      entities: trainEntity,
      times: trainTime,
      sets: run.link.sets.train,
      order,
      batchSize: T.batchSize,
      seed: mixSeed(seed, 0x11_0000 + epoch),
      candidates: run.link.candidates,
    })
    : null;
  if (link) [seeds, times] = [link.entities, link.times];
  else {
    for (let i = 0; i < n; i++) {
      seeds[i] = trainEntity[order[i]];
      times[i] = trainTime[order[i]];
      labels[i] = targetOf(run.trainLabels[order[i]]);
    }
  }
  const prefetch = Math.max(2, 2 * pool.workers);
  // Link prediction: the targets of each batch (positives, then negatives) in step with it.
  const targetPipe = link
    ? new BatchPipeline(
      sampledBatches(
        pool,
        new SamplerLoader(pool, {
          seedType: run.link!.targetType,
          seeds: link.targets,
          seedTimes: link.targetTimes,
          batchSize: 2 * T.batchSize,
          randomSeed: mixSeed(seed, 0x7a6e),
          epoch,
        }),
        state.batch,
        batchesPerEpoch,
        prefetch,
      ),
      run.reader,
      backend,
      pipelineOptions(run.graph),
    )
    : null;
  const targetIt = targetPipe?.[Symbol.asyncIterator]();
  const loader = new SamplerLoader(pool, {
    seedType: run.table.entityTable,
    seeds,
    seedTimes: times,
    batchSize: T.batchSize,
    randomSeed: seed,
    epoch,
  });
  const pipe = new BatchPipeline(
    sampledBatches(pool, loader, state.batch, batchesPerEpoch, prefetch),
    run.reader,
    backend,
    pipelineOptions(run.graph),
  );
  const epoch0 = performance.now();
  const trainSeconds0 = state.trainSeconds;
  let savingSeconds = 0;
  const epochSeconds = () => (performance.now() - epoch0) / 1000 - savingSeconds;
  let seedsThisEpoch = 0, lossSum = 0, lossCount = 0;
  const pendingLoss: { step: number; t: Tensor }[] = [];
  const readLosses = async () => {
    const vals = await Promise.all(pendingLoss.map((p) => p.t.item()));
    pendingLoss.forEach((p, k) => {
      p.t.dispose();
      if (Number.isFinite(vals[k])) {
        lossSum += vals[k];
        lossCount++;
      }
      state.lastLoss = vals[k];
      job.onLoss?.(p.step, vals[k]);
    });
    pendingLoss.length = 0;
  };
  try {
    for await (const batch of pipe) {
      const b = state.batch;
      const lo = b * T.batchSize;
      const y = labels.subarray(lo, lo + batch.batchSize);
      manualSeed(mixSeed(seed, 0x5000_0000 + state.step));
      let l: Tensor;
      if (link) {
        const next = await targetIt!.next();
        if (next.done) throw new Error(`the target batches ended before batch ${b}`);
        const labels = linkBatchLabels(link, b, run.link!.past);
        l = linkStep(model, batch, next.value, labels, run.link!.loss);
      } else {
        l = trainStep(model, batch, y, loss, backend);
      }
      if (T.clip > 0) opt.clip(T.clip);
      opt.step();
      opt.zeroGrad();
      sched.step();
      backend.flush();
      state.step++;
      state.batch++;
      state.seedsSeen += batch.batchSize;
      seedsThisEpoch += batch.batchSize;
      pendingLoss.push({ step: state.step, t: l });
      if (state.step % logEvery === 0 || state.batch === batchesPerEpoch) await readLosses();
      const elapsed = epochSeconds();
      job.onEvent?.({
        kind: "step",
        epoch,
        epochs: T.epochs,
        batch: state.batch,
        batches: batchesPerEpoch,
        step: state.step,
        loss: state.lastLoss ?? undefined,
        seedsPerSecond: seedsThisEpoch / Math.max(elapsed, 1e-9),
        waitShare: (pipe.stats().waitSeconds + (targetPipe?.stats().waitSeconds ?? 0)) /
          Math.max(elapsed, 1e-9),
      });
      if (job.interruptAfterStep !== undefined && state.step >= job.interruptAfterStep) {
        throw new TrainInterrupted(state.step);
      }
      if (state.batch === batchesPerEpoch) break;
      if (state.step % checkpointEvery === 0) {
        await readLosses();
        const c0 = performance.now();
        state.trainSeconds = trainSeconds0 + epochSeconds();
        await saveCheckpoint(paths.last, model, opt, fit.meta());
        savingSeconds += (performance.now() - c0) / 1000;
      }
    }
    await readLosses();
  } finally {
    for (const p of pendingLoss) p.t.dispose();
    await targetIt?.return?.(undefined);
  }
  const seconds = epochSeconds();
  state.trainSeconds = trainSeconds0 + seconds;
  return {
    seconds,
    waitSeconds: pipe.stats().waitSeconds + (targetPipe?.stats().waitSeconds ?? 0),
    trainLoss: lossCount ? lossSum / lossCount : NaN,
  };
}

/** Records a validated epoch: best so far, early stopping, event, checkpoints. */
async function endEpoch(
  job: TrainJob,
  run: Prepared,
  fit: Fit,
  epoch: number,
  trainLoss: number,
  valMetrics: Record<string, number>,
): Promise<void> {
  const { state, model, opt } = fit;
  const { metric, paths } = run;
  const T = run.plan.training;
  const m = valMetrics[metric];
  const improved = better(metric, m, state.bestMetric);
  const rec: EpochRecord = {
    epoch,
    step: state.step,
    trainLoss,
    val: valMetrics,
    seconds: state.trainSeconds,
  };
  state.history.push(rec);
  if (improved) {
    state.bestMetric = Number.isNaN(m) ? state.bestMetric : m;
    state.bestEpoch = epoch;
    state.badEpochs = 0;
  } else {
    state.badEpochs++;
  }
  state.epoch++;
  state.batch = 0;
  const stop = state.epoch >= T.epochs ||
    (T.earlyStopping.patience > 0 && state.badEpochs >= T.earlyStopping.patience);
  if (stop) state.done = true;
  job.onEvent?.({ kind: "epoch", record: rec, metric, best: improved, stop });
  // The best checkpoint first, then the last as its copy: a kill in between leaves an
  // older last, whose resume redoes the epoch and saves both again.
  if (improved) {
    await saveCheckpoint(paths.best, model, opt, fit.meta());
    await copyCheckpoint(paths.best, paths.last);
  } else {
    await saveCheckpoint(paths.last, model, opt, fit.meta());
  }
}

/** One training step's forward, loss and backward (inside a scope); returns the loss, kept. */
export function trainStep(
  model: GraphModel,
  batch: GpuBatch,
  y: Float32Array,
  loss: ReturnType<typeof lossFor>,
  backend: Backend,
): Tensor {
  return scope(() => {
    const out = model.forward(batch);
    const target = loss.targetDtype === "i32"
      ? tensor(Int32Array.from(y), [y.length], { backend, dtype: "i32" })
      : tensor(y, [y.length, 1], { backend });
    const l = loss.fn(out, target);
    l.backward();
    return l;
  });
}
