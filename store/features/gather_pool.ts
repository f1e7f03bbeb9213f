/**
 * `GatherPool`: gathers in worker threads, each with its own `FeatureReader`
 * (its own file descriptors and its own page cache of `cacheBytes`: a pool of
 * `w` workers may use `w × cacheBytes`). A gather is split into `w`
 * contiguous slices of the id list, read concurrently with synchronous
 * `pread`s (so `w` requests are in flight), each worker writing its rows
 * straight into one SharedArrayBuffer: nothing is copied back. The main
 * thread stays free to record GPU work meanwhile.
 *
 * The ids travel in SharedArrayBuffers too: the pool keeps those of finished
 * requests and reuses them (one per request in flight, each as large as the
 * largest slice it carried), so a request allocates nothing but its output.
 * (A fresh ArrayBuffer of ids transferred with each request made the round
 * trip measurably slower than a plain message.)
 *
 * ```ts
 * const pool = await GatherPool.create("out/features", { workers: 2, cacheBytes: 128 << 20 });
 * const rows = await pool.gather("users", ids); // Uint8Array over a SharedArrayBuffer
 * await pool.close();
 * ```
 *
 * @module
 */

import type { FeatureManifest, FeatureTableManifest } from "./format.ts";
import { openManifest } from "./manifest.ts";
import type { FeatureReaderOptions, ReaderStats } from "./reader.ts";
import type { GatherReply, GatherRequest } from "./gather_worker.ts";

/** Options of `GatherPool.create`. */
export interface GatherPoolOptions extends FeatureReaderOptions {
  /** Worker threads (default 2). */
  workers?: number;
  /** Gathers of fewer ids go to one worker (default 256). */
  minSplit?: number;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/** Worker-backed gathers; see the module doc. */
export class GatherPool {
  /** The store's manifest (read on the calling thread). */
  readonly manifest: FeatureManifest;
  /** Number of workers. */
  readonly workers: number;
  /** Whether every worker reads through FFI `pread`. */
  ffi = false;
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, Pending>();
  readonly #minSplit: number;
  readonly #idBuffers: Int32Array[] = []; // free id buffers over SharedArrayBuffers
  #next = 1;
  #rr = 0;
  #dead: Error | null = null;

  private constructor(manifest: FeatureManifest, opts: GatherPoolOptions) {
    this.manifest = manifest;
    this.workers = Math.max(1, opts.workers ?? 2);
    this.#minSplit = opts.minSplit ?? 256;
    for (let i = 0; i < this.workers; i++) {
      const w = new Worker(new URL("./gather_worker.ts", import.meta.url), { type: "module" });
      w.onmessage = (e: MessageEvent<GatherReply>) => this.#reply(e.data);
      w.onerror = (e) => {
        e.preventDefault();
        this.#fail(new Error(`fanout: a gather worker died: ${e.message}`));
      };
      this.#workers.push(w);
    }
  }

  /** Starts the workers and opens the store in each (errors as `FeatureReader.open`'s). */
  static async create(dir: string, opts: GatherPoolOptions = {}): Promise<GatherPool> {
    const pool = new GatherPool(await openManifest(dir), opts);
    const readerOpts: FeatureReaderOptions = { cacheBytes: opts.cacheBytes, ffi: opts.ffi };
    try {
      const ffi = await Promise.all(
        pool.#workers.map((w) => pool.#call(w, { op: "open", dir, opts: readerOpts })),
      );
      pool.ffi = ffi.every(Boolean);
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** Node types (tables) in the store. */
  tables(): string[] {
    return Object.keys(this.manifest.tables);
  }

  /** The manifest entry of `table`; throws listing the tables when unknown. */
  table(name: string): FeatureTableManifest {
    const t = this.manifest.tables[name];
    if (!t) {
      throw new Error(
        `fanout: the feature store has no table "${name}"; tables: ${this.tables().join(", ")}`,
      );
    }
    return t;
  }

  /**
   * `FeatureReader.gather` across the workers: `ids.length × rowBytes` bytes
   * in the order asked, over a SharedArrayBuffer. `ids` is not modified.
   */
  async gather(table: string, ids: Int32Array): Promise<Uint8Array> {
    const rb = this.table(table).rowBytes;
    const n = ids.length;
    const buffer = new SharedArrayBuffer(n * rb);
    const parts = n < this.#minSplit ? 1 : this.workers;
    const per = Math.ceil(n / parts);
    const calls: Promise<unknown>[] = [];
    for (let p = 0; p < parts && p * per < n; p++) {
      const from = p * per, to = Math.min(n, from + per);
      const w = this.#workers[(this.#rr++) % this.workers];
      const held = this.#idBuffer(to - from);
      held.set(ids.subarray(from, to));
      const call = this.#call(w, {
        op: "gather",
        table,
        ids: held.subarray(0, to - from),
        buffer,
        byteOffset: from * rb,
      });
      // The worker is done with the ids once it answers, whatever the answer.
      calls.push(call.finally(() => this.#idBuffers.push(held)));
    }
    await Promise.all(calls);
    return new Uint8Array(buffer);
  }

  /** A free id buffer of at least `n` entries (a new one when none is large enough). */
  #idBuffer(n: number): Int32Array {
    const free = this.#idBuffers;
    for (let i = free.length - 1; i >= 0; i--) {
      if (free[i].length >= n) {
        const b = free[i];
        free[i] = free[free.length - 1];
        free.pop();
        return b;
      }
    }
    if (free.length > 0) free.pop(); // too small: replaced by the new one
    return new Int32Array(new SharedArrayBuffer(4 * Math.max(1024, 2 ** Math.ceil(Math.log2(n)))));
  }

  /** Empties every worker's cache and drops the OS cache of the files; false if the OS refused. */
  async dropCaches(): Promise<boolean> {
    const r = await Promise.all(this.#workers.map((w) => this.#call(w, { op: "drop" })));
    return r.every(Boolean);
  }

  /** Each worker's reader counters. */
  async stats(): Promise<ReaderStats[]> {
    return await Promise.all(
      this.#workers.map((w) => this.#call(w, { op: "stats" }) as Promise<ReaderStats>),
    );
  }

  /** Closes the readers and stops the workers; pending gathers are rejected. */
  async close(): Promise<void> {
    if (!this.#dead) {
      await Promise.allSettled(this.#workers.map((w) => this.#call(w, { op: "close" })));
    }
    for (const w of this.#workers) w.terminate();
    this.#fail(new Error("fanout: the gather pool is closed"));
  }

  #call(w: Worker, req: DistributiveOmit<GatherRequest, "id">): Promise<unknown> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      w.postMessage({ ...req, id });
    });
  }

  #reply(r: GatherReply): void {
    const p = this.#pending.get(r.id);
    if (!p) return;
    this.#pending.delete(r.id);
    if (r.ok) p.resolve(r.value);
    else {
      const e = new Error(r.message);
      e.name = r.name;
      p.reject(e);
    }
  }

  #fail(e: Error): void {
    this.#dead ??= e;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
