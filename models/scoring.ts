/**
 * Scoring: batches sampled and uploaded for a model, raw outputs read back,
 * and raw outputs turned into predictions.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { noGrad } from "../core/autograd.ts";
import { scope, type Tensor } from "../core/tensor.ts";
import type { GraphStore } from "../store/graph.ts";
import type { FeatureReader } from "../store/features/reader.ts";
import type { SamplerPool } from "../sampler/pool.ts";
import { SamplerLoader } from "../sampler/loader.ts";
import { BatchPipeline, type BatchPipelineOptions } from "../sampler/batch.ts";
import type { SamplerOutput } from "../sampler/types.ts";
import type { GraphModel } from "./types.ts";
import { clampToRange, sigmoidProbs, softmaxRows } from "./heads.ts";
import type { OutputSettings } from "./checkpoint.ts";

/** Batch pipeline options for a graph (ticks to days, edge ends from the store). */
export function pipelineOptions(graph: GraphStore, prefetch = 2): BatchPipelineOptions {
  return {
    secondsPerTick: graph.timeScale,
    prefetch,
    edgeEnds: (e) => {
      const d = graph.edgeType(e);
      return { from: d.src, to: d.dst };
    },
  };
}

/**
 * Sampled batches `start..end-1` of `loader`, `prefetch` in flight on
 * `pool`, delivered in order (a resumable view of one loader pass: batch
 * `i` is sampled exactly as the loader's own pass would).
 */
export function sampledBatches(
  pool: SamplerPool,
  loader: SamplerLoader,
  start: number,
  end: number,
  prefetch: number,
): AsyncIterable<SamplerOutput> {
  return {
    async *[Symbol.asyncIterator]() {
      const queue: Promise<SamplerOutput>[] = [];
      let next = start;
      const fill = () => {
        while (queue.length < prefetch && next < end) {
          const p = pool.sample(loader.request(next++));
          p.catch(() => {});
          queue.push(p);
        }
      };
      try {
        fill();
        while (queue.length > 0) {
          const out = await queue.shift()!;
          fill();
          yield out;
        }
      } finally {
        await Promise.allSettled(queue.splice(0));
      }
    },
  };
}

/** How raw model outputs become predictions (saved with every checkpoint). */
export type OutputTransform = OutputSettings;

/** Raw outputs (`rows × outWidth`) → the predictions `evaluate` takes. */
export function toPredictions(raw: Float32Array, t: OutputTransform): Float32Array {
  if (t.task === "binary") return sigmoidProbs(raw);
  if (t.task === "multiclass") return softmaxRows(raw, t.classes);
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw[i] * t.scale + t.shift;
  return clampToRange(out, t.min, t.max, out);
}

/**
 * Runs `model` (eval mode, no gradients) on seeds `(entity[i], time[i])`
 * with the run's sampler settings; returns the raw outputs, row-major
 * `n × outWidth`. Outputs are read back a group of batches at a time.
 */
export async function scoreSeeds(
  model: GraphModel,
  pool: SamplerPool,
  reader: FeatureReader,
  backend: Backend,
  graph: GraphStore,
  seedType: string,
  entity: Int32Array,
  time: Float64Array,
  batchSize: number,
  randomSeed: number,
): Promise<Float32Array> {
  const n = entity.length, w = model.spec.outWidth;
  const out = new Float32Array(n * w);
  if (n === 0) return out;
  const loader = new SamplerLoader(pool, {
    seedType,
    seeds: entity,
    seedTimes: time,
    batchSize,
    randomSeed,
  });
  const pipe = new BatchPipeline(
    sampledBatches(pool, loader, 0, loader.numBatches, Math.max(2, 2 * pool.workers)),
    reader,
    backend,
    pipelineOptions(graph),
  );
  const wasTraining = model.training;
  model.eval();
  const pending: { at: number; t: Tensor }[] = [];
  const drain = async () => {
    const data = await Promise.all(pending.map((p) => p.t.data()));
    pending.forEach((p, k) => {
      out.set(data[k] as Float32Array, p.at * w);
      p.t.dispose();
    });
    pending.length = 0;
  };
  try {
    let at = 0;
    for await (const batch of pipe) {
      const t = noGrad(() => scope(() => model.forward(batch)));
      pending.push({ at, t });
      at += batch.batchSize;
      if (pending.length >= 8) await drain();
    }
    await drain();
  } finally {
    for (const p of pending) p.t.dispose();
    model.train(wasTraining);
  }
  return out;
}
