/**
 * `SamplerLoader`: turns seeds and seed times into a stream of sampled
 * batches. Seed times (epoch seconds) become seed ticks once, with the
 * graph's `seedTick`; the seeds are cut into batches of `batchSize` (in the
 * given order, or shuffled by a seeded permutation), and up to `prefetch`
 * batches are in flight across the pool at any time while the consumer works
 * on the current one. Batches are delivered in order whatever the order in
 * which the workers finish them:
 *
 * ```ts
 * const loader = new SamplerLoader(pool, { seedType: "users", seeds, seedTimes, batchSize: 1024 });
 * for await (const batch of loader) train(batch);
 * console.log(loader.stats().waitShare); // share of the time the consumer waited
 * ```
 *
 * Breaking out of the loop (or calling the iterator's `return()`) stops
 * sending batches and waits for those in flight to settle, discarding them.
 * A batch that fails rejects the `next()` that would have delivered it, and
 * the iteration ends there. Batch `i` of epoch `e` is sampled with
 * `batchIndex = e * numBatches + i`, so runs are reproducible and epochs
 * differ.
 *
 * @module
 */

import { seedTick } from "../store/ticks.ts";
import type { BatchSampler, SampleRequest } from "./pool.ts";
import type { SamplerOutput } from "./types.ts";

/** Options of `SamplerLoader`. */
export interface SamplerLoaderOptions {
  /** Node type of the seeds. */
  seedType: string;
  /** Seed ids (graph store dense ids). */
  seeds: Int32Array;
  /** Seed (anchor) time of each seed, epoch seconds. */
  seedTimes: Float64Array;
  /** Seeds per batch (the last batch may be smaller unless `dropLast`). */
  batchSize: number;
  /** Shuffle the seeds (default false: batches follow the given order). */
  shuffle?: boolean;
  /** Seed of the shuffle (default 0). */
  shuffleSeed?: number;
  /** Random seed of the sampling (default 0). */
  randomSeed?: number;
  /** Epoch number: changes the shuffle and the batch indices (default 0). */
  epoch?: number;
  /** Drop a last batch smaller than `batchSize` (default false). */
  dropLast?: boolean;
  /** Batches in flight at most (default: twice the workers, at least 2). */
  prefetch?: number;
}

/** Timing of the last (or current) pass over a loader. */
export interface LoaderStats {
  /** Batches delivered. */
  batches: number;
  /** Seeds in the delivered batches. */
  seeds: number;
  /** Seconds the consumer spent waiting in `next()` for a batch. */
  waitSeconds: number;
  /** Seconds from the first `next()` to the last delivery (or the end). */
  elapsedSeconds: number;
  /** `waitSeconds / elapsedSeconds` (0 before any batch). */
  waitShare: number;
}

/** Seeds → sampled batches, prefetched across a pool, delivered in order. */
export class SamplerLoader implements AsyncIterable<SamplerOutput> {
  /** Node type of the seeds. */
  readonly seedType: string;
  /** Seeds per batch. */
  readonly batchSize: number;
  /** Number of batches per pass. */
  readonly numBatches: number;
  /** Batches in flight at most. */
  readonly prefetch: number;
  #sampler: BatchSampler;
  #seeds: Int32Array;
  #ticks: Int32Array;
  #order: Int32Array | null;
  #randomSeed: number;
  #firstIndex: number;
  #stats: LoaderStats = emptyStats();

  /** A loader over `sampler` (a `SamplerPool`); validates the options and converts the seed times. */
  constructor(sampler: BatchSampler, opts: SamplerLoaderOptions) {
    const { seeds, seedTimes, batchSize } = opts;
    if (seeds.length !== seedTimes.length) {
      throw new RangeError(`${seeds.length} seeds but ${seedTimes.length} seed times`);
    }
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    }
    const prefetch = opts.prefetch ?? Math.max(2, 2 * sampler.workers);
    if (!Number.isInteger(prefetch) || prefetch < 1) {
      throw new RangeError(`prefetch must be a positive integer, got ${prefetch}`);
    }
    const epoch = opts.epoch ?? 0;
    if (!Number.isInteger(epoch) || epoch < 0) {
      throw new RangeError(`epoch must be a non-negative integer, got ${epoch}`);
    }
    this.#sampler = sampler;
    this.seedType = opts.seedType;
    this.batchSize = batchSize;
    this.prefetch = prefetch;
    this.#seeds = seeds;
    this.#ticks = new Int32Array(seeds.length);
    for (let i = 0; i < seeds.length; i++) {
      const t = seedTimes[i];
      if (Number.isNaN(t)) throw new RangeError(`seed time ${i} (seed ${seeds[i]}) is NaN`);
      this.#ticks[i] = seedTick(sampler.ticks, t);
    }
    this.numBatches = opts.dropLast
      ? Math.floor(seeds.length / batchSize)
      : Math.ceil(seeds.length / batchSize);
    this.#order = opts.shuffle
      ? permutation(seeds.length, mix(opts.shuffleSeed ?? 0, epoch))
      : null;
    this.#randomSeed = opts.randomSeed ?? 0;
    this.#firstIndex = epoch * this.numBatches;
  }

  /** The request of batch `i` (0-based within the pass). */
  request(i: number): SampleRequest {
    if (!(i >= 0 && i < this.numBatches)) throw new RangeError(`batch ${i} of ${this.numBatches}`);
    const lo = i * this.batchSize, hi = Math.min(this.#seeds.length, lo + this.batchSize);
    const seeds = new Int32Array(hi - lo), seedTicks = new Int32Array(hi - lo);
    for (let k = lo; k < hi; k++) {
      const j = this.#order ? this.#order[k] : k;
      seeds[k - lo] = this.#seeds[j];
      seedTicks[k - lo] = this.#ticks[j];
    }
    return {
      seedType: this.seedType,
      seeds,
      seedTicks,
      batchIndex: this.#firstIndex + i,
      randomSeed: this.#randomSeed,
    };
  }

  /** Timing of the last (or current) pass. */
  stats(): LoaderStats {
    return { ...this.#stats };
  }

  /** One pass over the batches, in order (each call starts a new pass). */
  [Symbol.asyncIterator](): AsyncIterator<SamplerOutput> {
    const queue: Promise<SamplerOutput>[] = [];
    let launched = 0, done = false, t0 = 0;
    const stats = this.#stats = emptyStats();
    const launch = () => {
      while (!done && queue.length < this.prefetch && launched < this.numBatches) {
        let p: Promise<SamplerOutput>;
        try {
          p = this.#sampler.sample(this.request(launched++));
        } catch (e) {
          p = Promise.reject(e);
        }
        p.catch(() => {}); // handled when delivered, or discarded on return()
        queue.push(p);
      }
    };
    const finish = async () => {
      done = true;
      const rest = queue.splice(0);
      await Promise.allSettled(rest);
    };
    const tick = () => {
      stats.elapsedSeconds = (performance.now() - t0) / 1000;
      stats.waitShare = stats.elapsedSeconds > 0 ? stats.waitSeconds / stats.elapsedSeconds : 0;
    };
    return {
      next: async (): Promise<IteratorResult<SamplerOutput>> => {
        if (t0 === 0) t0 = performance.now();
        launch();
        if (done || queue.length === 0) {
          done = true;
          return { done: true, value: undefined };
        }
        const w0 = performance.now();
        let value: SamplerOutput;
        try {
          value = await queue.shift()!;
        } catch (e) {
          await finish();
          throw e;
        }
        stats.waitSeconds += (performance.now() - w0) / 1000;
        stats.batches++;
        stats.seeds += value.batchSize;
        tick();
        launch(); // keep `prefetch` batches in flight while the consumer works
        return { done: false, value };
      },
      return: async (): Promise<IteratorResult<SamplerOutput>> => {
        await finish();
        return { done: true, value: undefined };
      },
    };
  }
}

function emptyStats(): LoaderStats {
  return { batches: 0, seeds: 0, waitSeconds: 0, elapsedSeconds: 0, waitShare: 0 };
}

/** Mixes two integers into a 32-bit seed. */
function mix(a: number, b: number): number {
  let h = Math.imul((a | 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b | 0, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h >>> 0;
}

/** A seeded random permutation of 0..n-1 (Fisher–Yates over a 32-bit xorshift-multiply stream). */
export function permutation(n: number, seed: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  let s = (seed ^ 0x6d2b79f5) >>> 0 || 1;
  for (let i = n - 1; i > 0; i--) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    const j = Math.floor(r * (i + 1));
    const x = p[i];
    p[i] = p[j];
    p[j] = x;
  }
  return p;
}
