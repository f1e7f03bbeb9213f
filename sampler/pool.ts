/**
 * `SamplerPool`: sampler workers (worker.ts) that share one graph store
 * through SharedArrayBuffers (nothing is copied when a worker starts but the
 * small metadata) and sample whole batches. `sample` sends a batch to the
 * least busy worker and resolves with its `SamplerOutput`, whose buffers are
 * transferred back without copying. Sampling is deterministic per
 * `(randomSeed, batchIndex)`, so the output does not depend on the worker or
 * on the number of workers; `workers: 0` samples in-process with the same
 * results (tests, tiny jobs).
 *
 * An exception inside a worker rejects that batch's promise with the
 * worker's message; a worker that dies (e.g. its module fails to load) fails
 * its pending batches and every later call. `close()` rejects what is still
 * pending and terminates the workers. When the graph store gains appended
 * rows (`graph.version` changes), the next `sample` resends the snapshot to
 * every worker first (the base arrays are shared, only the metadata and the
 * small delta map are cloned).
 *
 * @module
 */

import { Comlink } from "./deps.ts";
import type { GraphData, GraphStore } from "../store/graph.ts";
import type { TimeScale } from "../store/ticks.ts";
import type { CompiledSampling } from "./config.ts";
import { sampleBatch } from "./sample.ts";
import type { SamplerOutput } from "./types.ts";
import type { SamplerWorkerApi } from "./worker.ts";

/** One batch to sample. */
export interface SampleRequest {
  /** Node type of the seeds. */
  seedType: string;
  /** Seed ids (graph store dense ids). */
  seeds: Int32Array;
  /** Seed time of each seed, as graph ticks (ticks.ts `seedTick`). */
  seedTicks: Int32Array;
  /** Index of the batch: with `randomSeed`, it fixes the random choices. */
  batchIndex: number;
  /** Random seed of the run. */
  randomSeed: number;
}

/** Something that samples batches: a `SamplerPool`, or a stand-in in tests. */
export interface BatchSampler {
  /** Tick mapping of the graph, to turn seed times into seed ticks. */
  readonly ticks: TimeScale;
  /** Number of workers (0: in-process); sets the loader's default prefetch. */
  readonly workers: number;
  /** Samples one batch. */
  sample(batch: SampleRequest): Promise<SamplerOutput>;
}

/** Options of `SamplerPool.create`. */
export interface SamplerPoolOptions {
  /** The graph store to sample (shared with the workers, not copied). */
  graph: GraphStore;
  /** Compiled sampling configuration (config.ts). */
  config: CompiledSampling;
  /** Number of worker threads; 0 samples in-process. Default: `defaultWorkers()`. */
  workers?: number;
  /** Worker module (default: worker.ts beside this file). */
  workerUrl?: URL | string;
}

/** Samples one batch in the calling thread (what each worker runs). */
export function runSample(
  graph: GraphData,
  config: CompiledSampling,
  batch: SampleRequest,
): SamplerOutput {
  const { seedType, seeds, seedTicks, batchIndex, randomSeed } = batch;
  if (seeds.length !== seedTicks.length) {
    throw new RangeError(`${seeds.length} seeds but ${seedTicks.length} seed ticks`);
  }
  return sampleBatch(graph, config, seedType, seeds, seedTicks, { randomSeed, batchIndex });
}

/** Default worker count: one per core beyond the main thread, at least 1, at most 8. */
export function defaultWorkers(): number {
  const cores = navigator.hardwareConcurrency ?? 2;
  return Math.max(1, Math.min(8, cores - 1));
}

interface Slot {
  worker: Worker;
  remote: Comlink.Remote<SamplerWorkerApi>;
  /** Rejecters of the calls not yet answered. */
  pending: Set<(e: Error) => void>;
}

/** A pool of sampler workers over one shared graph store. */
export class SamplerPool implements BatchSampler {
  /** The graph store. */
  readonly graph: GraphStore;
  /** The compiled sampling configuration. */
  readonly config: CompiledSampling;
  #slots: Slot[] = [];
  #version: number;
  #sync: Promise<unknown> = Promise.resolve();
  #failure: Error | null = null;
  #closed = false;

  private constructor(graph: GraphStore, config: CompiledSampling) {
    this.graph = graph;
    this.config = config;
    this.#version = graph.version;
  }

  /**
   * Starts `workers` workers and hands each the shared graph and the config;
   * resolves once all of them are ready (rejects, terminating them, when one
   * fails to start).
   */
  static async create(opts: SamplerPoolOptions): Promise<SamplerPool> {
    const n = opts.workers ?? defaultWorkers();
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`workers must be ≥ 0, got ${n}`);
    const pool = new SamplerPool(opts.graph, opts.config);
    const url = opts.workerUrl ?? new URL("./worker.ts", import.meta.url);
    const data = opts.graph.toShared();
    try {
      for (let i = 0; i < n; i++) pool.#slots.push(pool.#spawn(url, i));
      await Promise.all(
        pool.#slots.map((s) => pool.#call(s, () => s.remote.init(data, opts.config))),
      );
    } catch (e) {
      pool.close();
      throw e;
    }
    return pool;
  }

  /** Number of worker threads (0: in-process). */
  get workers(): number {
    return this.#slots.length;
  }

  /** Tick mapping of the graph. */
  get ticks(): TimeScale {
    return this.graph.data;
  }

  /** Batches sent to workers and not yet answered. */
  get inFlight(): number {
    return this.#slots.reduce((s, x) => s + x.pending.size, 0);
  }

  /**
   * Samples one batch on the least busy worker (in-process with 0 workers).
   * The seed arrays are copied to the worker; the caller keeps them.
   */
  sample(batch: SampleRequest): Promise<SamplerOutput> {
    if (this.#closed) return Promise.reject(new Error("sampler pool is closed"));
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.graph.version !== this.#version) this.#resync();
    if (this.#slots.length === 0) {
      return this.#sync.then(() =>
        runSample(this.graph.toShared(), this.config, {
          ...batch,
          seeds: batch.seeds.slice(),
          seedTicks: batch.seedTicks.slice(),
        })
      );
    }
    let slot = this.#slots[0];
    for (const s of this.#slots) if (s.pending.size < slot.pending.size) slot = s;
    return this.#call(slot, async () => {
      await this.#sync;
      return slot.remote.sample(batch);
    });
  }

  /**
   * The tick of node `id` of `nodeType` as worker `worker` reads it from the
   * shared arrays (diagnostics: a write on the main thread is seen there, so
   * the graph is shared, not copied). With 0 workers, reads it in-process.
   */
  probe(worker: number, nodeType: string, id: number): Promise<number> {
    if (this.#closed) return Promise.reject(new Error("sampler pool is closed"));
    if (this.#slots.length === 0) return Promise.resolve(this.graph.nodeTime(nodeType, id));
    const slot = this.#slots[worker];
    if (!slot) throw new RangeError(`worker ${worker} of ${this.#slots.length}`);
    return this.#call(slot, async () => {
      await this.#sync;
      return slot.remote.probe(nodeType, id);
    });
  }

  /**
   * Rejects the pending batches ("sampler pool is closed") and terminates
   * the workers. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const err = new Error("sampler pool is closed");
    for (const s of this.#slots) {
      for (const reject of s.pending) reject(err);
      s.pending.clear();
      s.worker.terminate();
    }
    this.#slots = [];
  }

  /** `close()`, for `using pool = await SamplerPool.create(...)`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #spawn(url: URL | string, index: number): Slot {
    const worker = new Worker(url, { type: "module", name: `fanout-sampler-${index}` });
    const slot: Slot = {
      worker,
      remote: Comlink.wrap<SamplerWorkerApi>(worker),
      pending: new Set(),
    };
    const die = (message: string) => {
      const err = new Error(`sampler worker ${index} failed: ${message}`);
      this.#failure ??= err;
      for (const reject of slot.pending) reject(err);
      slot.pending.clear();
    };
    worker.addEventListener("error", (e) => {
      e.preventDefault();
      die(e.message);
    });
    worker.addEventListener("messageerror", () => die("a message could not be deserialized"));
    return slot;
  }

  /** Runs `fn` as a pending call of `slot`: rejected if the worker dies or the pool closes. */
  #call<T>(slot: Slot, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      slot.pending.add(reject);
      fn().then(resolve, reject).finally(() => slot.pending.delete(reject));
    });
  }

  /** Sends the graph's current snapshot to every worker before any later batch. */
  #resync(): void {
    this.#version = this.graph.version;
    const data = this.graph.toShared();
    const prev = this.#sync;
    this.#sync = prev.then(() =>
      Promise.all(this.#slots.map((s) => this.#call(s, () => s.remote.init(data, this.config))))
    );
    this.#sync.catch((e) => {
      this.#failure ??= e instanceof Error ? e : new Error(String(e));
    });
  }
}
