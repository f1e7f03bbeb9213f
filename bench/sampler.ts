/**
 * `deno task bench sampler`: neighbour sampling throughput on the synthetic
 * database of bench/synthetic_db.ts (1M users, 200k items, 10M
 * transactions; `--quick`: 10× smaller), whose graph is built once and
 * saved under out/bench/ (the store benchmark's cache), then loaded.
 *
 * Batches of 1024 distinct random users (a seeded permutation, so batches
 * are disjoint), each with a seed time uniform over the two years. For the
 * fanouts [16, 8] and [16, 8, 4] and the strategies `uniform` and `last`:
 * seeds/s and sampled edges/s in-process (`workers: 0`, one thread: the
 * per-thread figure compared with pyg-lib) and through the worker pool with
 * 1 and 2 workers (loader with prefetch). Each figure is the median of
 * `repeats` timed passes over fresh batches after a warm-up (passes over
 * the same warm-up batches for at least a second: workers start cold).
 * The machines are shared, so each record also gives the best pass, the
 * 1-minute load average, and `per_cpu_s`: the figure per CPU-second of the
 * whole process (all threads, from `process.cpuUsage()`), which time other
 * processes take from the cores does not change.
 * Also: RAM bytes per stored edge direction (`graph.bytes()`), and the
 * process's resident memory with the pool running beside the graph's size
 * (the graph is shared by the workers, not copied).
 *
 * Reference, pyg-lib 0.4 (C++) on this graph and machine, one thread:
 * 232k seeds/s (3.5M edges/s) for [16, 8] uniform, 88k seeds/s for
 * [16, 8, 4] uniform, 14.5 bytes per edge.
 *
 * @module
 */

import process from "node:process";
import { Database } from "../store/database.ts";
import { loadSchema } from "../store/schema.ts";
import { buildGraph, graphInputFromDatabase } from "../store/graph_build.ts";
import { loadGraph, saveGraph } from "../store/graph_io.ts";
import type { GraphStore } from "../store/graph.ts";
import { compileSampling } from "../sampler/config.ts";
import { SamplerLoader } from "../sampler/loader.ts";
import { permutation } from "../sampler/loader.ts";
import { SamplerPool } from "../sampler/pool.ts";
import type { SamplerOutput } from "../sampler/types.ts";
import { emit, median } from "./report.ts";
import { syntheticDb } from "./synthetic_db.ts";

/** Options of `benchSampler`. */
export interface SamplerBenchOptions {
  /** 100k users, 20k items, 1M transactions instead of the full sizes. */
  quick?: boolean;
  /** Timed passes per configuration (default 5). */
  repeats?: number;
  /** Batches per timed pass (default 150, quick 18). */
  batches?: number;
  /** Worker counts through the pool, besides the in-process figure (default [1, 2]). */
  workers?: number[];
}

/** pyg-lib 0.4 on this graph and machine, one thread (seeds/s). */
const PYG_SEEDS_PER_S: Record<string, number> = { "16,8": 232_000, "16,8,4": 88_000 };
const PYG_BYTES_PER_EDGE = 14.5;
const BATCH = 1024;
const T0 = Date.UTC(2023, 0, 1) / 1000;
const SPAN = 2 * 365 * 86400;

const secondsSince = (t0: number) => (performance.now() - t0) / 1000;
const r4 = (x: number) => Number(x.toPrecision(4));

/** The synthetic graph, loaded from the cache (built and saved there when missing). */
async function syntheticGraph(quick: boolean) {
  const scale = quick ? 10 : 1;
  const syn = await syntheticDb({
    users: 1_000_000 / scale,
    items: 200_000 / scale,
    transactions: 10_000_000 / scale,
  });
  const dir = `${syn.dir}/graph`;
  const t0 = performance.now();
  let graph: GraphStore, built = false;
  try {
    graph = await loadGraph(dir, { verify: false });
  } catch {
    const db = await Database.open(syn.dir, await loadSchema(syn.schemaPath));
    const input = await graphInputFromDatabase(db);
    db.close();
    graph = buildGraph(input);
    await saveGraph(graph, dir);
    built = true;
  }
  return { syn, graph, built, seconds: secondsSince(t0) };
}

/** Runs the sampler benchmarks, printing JSON lines. */
export async function benchSampler(opts: SamplerBenchOptions = {}): Promise<void> {
  const quick = opts.quick ?? false;
  const { syn, graph, built, seconds } = await syntheticGraph(quick);
  const params = { users: syn.users, items: syn.items, transactions: syn.transactions };
  const common = { bench: "sampler", ...params };
  emit({ ...common, metric: built ? "graph_build" : "graph_load", value: seconds, unit: "s" });

  const b = graph.bytes();
  emit({
    ...common,
    metric: "ram_per_edge",
    value: b.perEdge,
    unit: "B/edge",
    pyg_lib: PYG_BYTES_PER_EDGE,
    with_keys: r4((b.total) / b.edgeDirections),
    edge_directions: b.edgeDirections,
    total_bytes: b.total,
  });

  // Disjoint batches of distinct users; seed times uniform over the two years.
  const users = graph.numNodes("users");
  const seeds = permutation(users, 12345);
  const seedTimes = new Float64Array(users);
  const perm = permutation(users, 777); // a second stream for the times
  for (let i = 0; i < users; i++) seedTimes[i] = T0 + (perm[i] / users) * SPAN;
  const repeats = opts.repeats ?? 5;
  const batches = opts.batches ?? (quick ? 18 : 150);
  const warmup = quick ? 5 : 20, warmSeconds = quick ? 0.5 : 1.5;
  if ((warmup + repeats * batches) * BATCH > users) {
    throw new Error(`not enough users for ${warmup + repeats * batches} disjoint batches`);
  }
  const slice = (first: number, count: number) => {
    const lo = first * BATCH, hi = lo + count * BATCH;
    return { seeds: seeds.subarray(lo, hi), seedTimes: seedTimes.subarray(lo, hi) };
  };

  for (const fanouts of [[16, 8], [16, 8, 4]]) {
    for (const strategy of ["uniform", "last"]) {
      const config = compileSampling(graph, fanouts, strategy);
      for (const workers of [0, ...(opts.workers ?? [1, 2])]) {
        using pool = await SamplerPool.create({ graph, config, workers });
        const pass = async (first: number, count: number) => {
          const loader = new SamplerLoader(pool, {
            seedType: "users",
            ...slice(first, count),
            batchSize: BATCH,
            randomSeed: 1,
          });
          let nSeeds = 0, nEdges = 0;
          const c0 = process.cpuUsage(), t0 = performance.now();
          for await (const out of loader) {
            nSeeds += out.batchSize;
            nEdges += edgeCount(out);
          }
          const s = secondsSince(t0), c = process.cpuUsage(c0);
          const cpu = (c.user + c.system) / 1e6; // all threads of the process
          return {
            seedsPerS: nSeeds / s,
            edgesPerS: nEdges / s,
            seedsPerCpuS: nSeeds / cpu,
            edgesPerCpuS: nEdges / cpu,
            edgesPerSeed: nEdges / nSeeds,
          };
        };
        // Warm up (each worker is a fresh isolate: its JIT starts cold) on the warm-up batches.
        const w0 = performance.now();
        do await pass(0, warmup); while (secondsSince(w0) < warmSeconds);
        const runs = [], load1 = r4(Deno.loadavg()[0]);
        for (let r = 0; r < repeats; r++) runs.push(await pass(warmup + r * batches, batches));
        const seedsPerS = median(runs.map((r) => r.seedsPerS));
        const edgesPerS = median(runs.map((r) => r.edgesPerS));
        const seedsPerCpuS = median(runs.map((r) => r.seedsPerCpuS));
        const pyg = strategy === "uniform" ? PYG_SEEDS_PER_S[fanouts.join(",")] : undefined;
        const p = {
          ...common,
          fanouts: fanouts.join(","),
          strategy,
          workers,
          threads: Math.max(1, workers),
          batch_size: BATCH,
          batches,
          repeats,
          load1,
        };
        emit({
          ...p,
          metric: "seeds_per_s",
          value: seedsPerS,
          unit: "seeds/s",
          edges_per_seed: r4(median(runs.map((r) => r.edgesPerSeed))),
          best: r4(Math.max(...runs.map((r) => r.seedsPerS))),
          runs: runs.map((r) => r4(r.seedsPerS)),
          per_cpu_s: r4(seedsPerCpuS),
          ...(pyg
            ? {
              pyg_lib: pyg,
              vs_pyg_per_thread: r4(seedsPerS / Math.max(1, workers) / pyg),
              vs_pyg_per_cpu_s: r4(seedsPerCpuS / pyg),
            }
            : {}),
        });
        emit({
          ...p,
          metric: "edges_per_s",
          value: edgesPerS,
          unit: "edges/s",
          best: r4(Math.max(...runs.map((r) => r.edgesPerS))),
          per_cpu_s: r4(median(runs.map((r) => r.edgesPerCpuS))),
          ...(pyg && fanouts.length === 2 ? { pyg_lib: 3_500_000 } : {}),
        });
        if (fanouts.length === 2 && strategy === "uniform") {
          // Resident memory with the pool running: the graph once, not once per worker.
          emit({
            ...p,
            metric: "rss",
            value: Deno.memoryUsage().rss / 2 ** 20,
            unit: "MiB",
            graph_mib: r4(b.total / 2 ** 20),
          });
        }
      }
    }
  }
}

function edgeCount(o: SamplerOutput): number {
  let n = 0;
  for (const e of Object.values(o.edges)) n += e.src.length;
  return n;
}
