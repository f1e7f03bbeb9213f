/**
 * The sampler worker: a module loaded by `SamplerPool` (pool.ts) with
 * `new Worker(new URL("./worker.ts", import.meta.url), { type: "module" })`.
 * It exposes `SamplerWorkerApi` through comlink: `init` receives the graph
 * store's plain data (`GraphStore.toShared()`: every array lies over a
 * SharedArrayBuffer, so the worker reads the main thread's memory, nothing is
 * copied but the small metadata) and the compiled sampling configuration;
 * `sample` samples one whole batch and transfers the output's buffers back
 * (no copy). An exception thrown while sampling rejects the caller's promise
 * with the same message.
 *
 * @module
 */

import { Comlink } from "./deps.ts";
import type { GraphData } from "../store/graph.ts";
import { GraphStore } from "../store/graph.ts";
import type { CompiledSampling } from "./config.ts";
import { runSample, type SampleRequest } from "./pool.ts";
import { type SamplerOutput, transferables } from "./types.ts";

/** What a sampler worker exposes through comlink. */
export interface SamplerWorkerApi {
  /** Receives (or replaces, after appends) the graph snapshot and the sampling configuration. */
  init(graph: GraphData, config: CompiledSampling): void;
  /** Samples one batch; the output's buffers are transferred to the caller. */
  sample(batch: SampleRequest): SamplerOutput;
  /**
   * The tick of node `id` of `nodeType` as this worker reads it from the
   * shared arrays (diagnostics: shows that a write on the main thread is seen
   * here, i.e. that the memory is shared, not copied).
   */
  probe(nodeType: string, id: number): number;
}

let graph: GraphData | null = null;
let store: GraphStore | null = null;
let config: CompiledSampling | null = null;

const api: SamplerWorkerApi = {
  init(g: GraphData, c: CompiledSampling): void {
    store = GraphStore.fromShared(g);
    graph = g;
    config = c;
  },
  sample(batch: SampleRequest): SamplerOutput {
    if (!graph || !config) throw new Error("sampler worker: sample() before init()");
    const out = runSample(graph, config, batch);
    return Comlink.transfer(out, transferables(out));
  },
  probe(nodeType: string, id: number): number {
    if (!store) throw new Error("sampler worker: probe() before init()");
    return store.nodeTime(nodeType, id);
  },
};

// Expose only when running as a worker (importing this module elsewhere is harmless).
const isWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !==
    "undefined" && globalThis instanceof
    (globalThis as unknown as { WorkerGlobalScope: typeof Object }).WorkerGlobalScope;
if (isWorker) Comlink.expose(api);
