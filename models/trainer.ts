/**
 * The trainer: a relational database and a predictive query (or a training
 * table) in, a trained graph model, its checkpoints and `metrics.json` out.
 *
 * ```ts
 * const result = await train({ backend: await webgpuBackend(), out: "out/run" });
 * console.log(result.metrics.test);
 * ```
 *
 * What `train(job)` does:
 *
 * 1. **Data.** Opens the database (`job.data` + `job.schema`; without them
 *    the embedded synthetic database is generated under `<out>/data` and
 *    the default query is used), builds the training table (from the
 *    query, or read from `job.table`), the graph store, and the feature
 *    store in `<out>/features`, whose encoders are fitted on rows at or
 *    before the validation cutoff only (the earliest validation or test
 *    anchor), so no statistic sees validation or test time; a static
 *    target's column is excluded from the features.
 * 2. **Plan.** The suggested plan for the graph and task (models/plan.ts),
 *    with `job.plan` merged over it; written to `<out>/plan.yaml`.
 * 3. **Loop.** Per epoch, the training rows in a seeded shuffled order are
 *    cut into batches; a `SamplerPool` samples them in workers (prefetched,
 *    in order), a `BatchPipeline` gathers their feature rows and uploads
 *    the next batch while the current one computes; each step runs forward,
 *    the task's loss, backward, global-norm clipping and an AdamW step with
 *    linear warmup and cosine decay, submitting without waiting. The loss is
 *    read back every `logEvery` steps only.
 * 4. **Validation** after each epoch with the task's primary metric; the
 *    best epoch's checkpoint is kept in `<out>/checkpoints/best`, the latest
 *    position in `<out>/checkpoints/last` (also every `checkpointEvery`
 *    steps), and training stops early after `patience` epochs without
 *    improvement.
 * 5. **Report.** The best checkpoint is evaluated on the validation and test
 *    rows beside two baselines: a constant (global mean, positive rate or
 *    class frequencies) and a linear model on the entity's own features and
 *    own history (models/entity_features.ts). Everything, with the
 *    throughput figures, goes to `<out>/metrics.json`.
 *
 * `job.resume` continues from `<out>/checkpoints/last`: same data, plan,
 * feature store, sampler settings and loop position; the step after the
 * resume has the same loss as it would have had without the interruption
 * (models/checkpoint.ts says why).
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { noGrad } from "../core/autograd.ts";
import { Adam, AdamW, isBiasOrNorm, SGD } from "../core/optim.ts";
import {
  constant,
  cosine,
  linearWarmup,
  LRScheduler,
  type Schedule,
  stepLR,
} from "../core/schedule.ts";
import { manualSeed, Rng } from "../core/random.ts";
import { scope, type Tensor, tensor } from "../core/tensor.ts";
import { Database } from "../store/database.ts";
import { loadSchema } from "../store/schema.ts";
import { graphFromDatabase } from "../store/graph_build.ts";
import type { GraphStore } from "../store/graph.ts";
import {
  type BuiltTrainingTable,
  loadTrainingTable,
  type LoadTrainingTableOptions,
  trainingTable,
  type TrainingTableOptions,
} from "../store/training_table.ts";
import { resolveQuery } from "../store/pql/semantic.ts";
import { Split, type TaskType, type TrainingTable } from "../store/types.ts";
import { buildFeatureStore } from "../store/features/build.ts";
import { openManifest } from "../store/features/manifest.ts";
import type { FeatureManifest } from "../store/features/format.ts";
import { FeatureReader } from "../store/features/reader.ts";
import { type CompiledSampling, compileSampling } from "../sampler/config.ts";
import { defaultWorkers, SamplerPool, type SamplerPool as Pool } from "../sampler/pool.ts";
import { permutation, SamplerLoader } from "../sampler/loader.ts";
import { BatchPipeline, type BatchPipelineOptions, type GpuBatch } from "../sampler/batch.ts";
import type { SamplerOutput } from "../sampler/types.ts";
import { buildGraphModel } from "./gnn.ts";
import type { GraphModel, ModelSpec } from "./types.ts";
import { evaluate } from "./metrics.ts";
import { clampToRange, lossFor, outputWidth, sigmoidProbs, softmaxRows } from "./heads.ts";
import { constantBaseline, fitLinearBaseline } from "./baselines.ts";
import { entityFeatures } from "./entity_features.ts";
import {
  type CheckpointMeta,
  copyCheckpoint,
  type EpochRecord,
  type FeaturesRef,
  hasCheckpoint,
  initialState,
  loadCheckpoint,
  manifestHash,
  type OutputSettings,
  type SamplerSettings,
  saveCheckpoint,
  type TrainState,
} from "./checkpoint.ts";
import { DEFAULT_QUERY, generateSyntheticDb, type SyntheticOptions } from "./synthetic.ts";
import {
  defaultPlan,
  mergePlan,
  type ModelPlan,
  type ModelSection,
  type PlanOverrides,
  planToYaml,
  validatePlan,
} from "./plan.ts";
import { loadPlan, parsePlan } from "./plan_parse.ts";
import { suggestPlanExplained } from "./plan_suggest.ts";

// ---- jobs and results ---------------------------------------------------------------------

/** A training table read from a file (`loadTrainingTable`), with its path. */
export interface TableInput extends LoadTrainingTableOptions {
  /** CSV or Parquet file, relative to the working directory. */
  path: string;
}

/** What to train. */
export interface TrainJob {
  /** Where tensors live. */
  backend: Backend;
  /** Output directory (plan, features, checkpoints, metrics.json). */
  out: string;
  /** Data folder; omitted: the synthetic database is generated under `<out>/data`. */
  data?: string;
  /** Schema file (required with `data`). */
  schema?: string;
  /** Predictive query (PQL); the default query with the synthetic data. */
  query?: string;
  /** A training table file instead of a query. */
  table?: TableInput;
  /** Options of the training table's anchor schedule. */
  tableOptions?: TrainingTableOptions;
  /**
   * Plan overrides laid over the suggested plan: a plan file's path, or
   * overrides as `parsePlan` returns them. A `data` section sets the anchor
   * schedule (over `tableOptions`).
   */
  plan?: string | PlanOverrides;
  /** Options of the synthetic database. */
  synthetic?: SyntheticOptions;
  /** Continue from `<out>/checkpoints/last`. */
  resume?: boolean;
  /** Override of the plan's epochs. */
  epochs?: number;
  /** Run seed (default 0): shuffles, sampling, initialisation, dropout. */
  seed?: number;
  /** Sampler workers (default `defaultWorkers()`; 0 samples in-process). */
  workers?: number;
  /** Read the loss back every this many steps (default 10; each read costs a GPU round trip). */
  logEvery?: number;
  /** Save `<out>/checkpoints/last` every this many steps (default 200) and at each epoch's end. */
  checkpointEvery?: number;
  /** Progress and log events. */
  onEvent?: (e: TrainEvent) => void;
  /**
   * Testing: throws `TrainInterrupted` right after step `n` (counted over
   * all sessions), before anything else is saved: what a kill leaves behind.
   */
  interruptAfterStep?: number;
  /** Testing: called with the loss of every step read back. */
  onLoss?: (step: number, loss: number) => void;
}

/** Events of a run, for progress output. */
export type TrainEvent =
  | { kind: "log"; message: string }
  | {
    kind: "step";
    epoch: number;
    epochs: number;
    batch: number;
    batches: number;
    step: number;
    /** Latest loss read back (undefined before the first). */
    loss?: number;
    /** Training seeds per second in this epoch so far. */
    seedsPerSecond: number;
    /** Share of this epoch's time spent waiting for batches. */
    waitShare: number;
  }
  | { kind: "epoch"; record: EpochRecord; metric: string; best: boolean; stop: boolean };

/** Thrown by `interruptAfterStep`. */
export class TrainInterrupted extends Error {
  /** Steps done when interrupted. */
  readonly step: number;
  /** A message naming the step. */
  constructor(step: number) {
    super(`training interrupted after step ${step}`);
    this.name = "TrainInterrupted";
    this.step = step;
  }
}

/** Metrics of the model and the baselines on one split. */
export interface SplitMetrics {
  /** The trained model (best checkpoint). */
  model: Record<string, number>;
  /** Constant baseline. */
  constant: Record<string, number>;
  /** Linear model on the entity's own features and history. */
  entity: Record<string, number>;
}

/** Throughput of the training loop. */
export interface Throughput {
  /** Training seeds per second (loop time, validation excluded). */
  seedsPerSecond: number;
  /** Optimizer steps. */
  steps: number;
  /** Seeds trained on. */
  seeds: number;
  /** Seconds in the training loop (all sessions). */
  trainSeconds: number;
  /** Share of the loop's time spent waiting for the next batch (this session). */
  waitShare: number;
  /** Seconds spent validating (this session). */
  validationSeconds: number;
  /** Batch size. */
  batchSize: number;
}

/** What `metrics.json` holds. */
export interface RunMetrics {
  /** Task type. */
  task: TaskType;
  /** Primary metric name (model selection). */
  metric: string;
  /** The query, or the training table's path. */
  query: string;
  /** Entity table. */
  entityTable: string;
  /** Training table rows per split. */
  rows: { train: number; val: number; test: number };
  /** Validation metrics. */
  val: SplitMetrics;
  /** Test metrics. */
  test: SplitMetrics;
  /** The baselines, described. */
  baselines: { constant: string; entity: string };
  /** The best epoch. */
  best: { epoch: number; step: number; metric: number | null };
  /** Epoch records. */
  history: EpochRecord[];
  /** Loop throughput. */
  throughput: Throughput;
  /** Backend and device. */
  device: string;
  /** Wall seconds of this session. */
  wallSeconds: number;
  /** Seconds of this session spent before the loop (data, graph, features, baselines). */
  setupSeconds: number;
}

/** What `train` returns. */
export interface TrainResult {
  /** The metrics (also in `<out>/metrics.json`). */
  metrics: RunMetrics;
  /** Output directory. */
  out: string;
  /** The best checkpoint's directory. */
  bestCheckpoint: string;
}

/** What `<out>/job.json` holds: how to reopen the data (resume, predict). */
export interface JobRecord {
  /** Data folder. */
  data: string;
  /** Schema file. */
  schema: string;
  /** The query, when the table came from one. */
  query?: string;
  /** The table file and its options, when it came from a file. */
  table?: TableInput;
  /** Options of the anchor schedule. */
  tableOptions?: TrainingTableOptions;
  /** Whether the data is the generated synthetic database. */
  synthetic: boolean;
  /** Run seed. */
  seed: number;
}

/** The files and folders of a run directory. */
export interface RunPaths {
  /** The directory. */
  out: string;
  /** `job.json`: how to reopen the data. */
  job: string;
  /** `plan.yaml`: the plan used. */
  plan: string;
  /** `features/`: the feature store. */
  features: string;
  /** `checkpoints/last`: the latest position. */
  last: string;
  /** `checkpoints/best`: the best epoch. */
  best: string;
  /** `metrics.json`. */
  metrics: string;
  /** `data/`: the generated synthetic database. */
  data: string;
}

/** The paths of a run directory. */
export function runPaths(out: string): RunPaths {
  out = out.replace(/(.)\/+$/, "$1");
  return {
    out,
    job: `${out}/job.json`,
    plan: `${out}/plan.yaml`,
    features: `${out}/features`,
    last: `${out}/checkpoints/last`,
    best: `${out}/checkpoints/best`,
    metrics: `${out}/metrics.json`,
    data: `${out}/data`,
  };
}

// ---- shared context (train and predict) ----------------------------------------------------

/** Opened data of a run: database, graph, and how batches are made. */
export interface RunData {
  /** The database. */
  db: Database;
  /** The graph store. */
  graph: GraphStore;
  /** The job record. */
  job: JobRecord;
}

/** Opens the database and graph of a job record. */
export async function openRunData(job: JobRecord, log: (m: string) => void): Promise<RunData> {
  const t0 = performance.now();
  const db = await Database.open(job.data, await loadSchema(job.schema));
  for (const w of db.warnings) log(`warning: ${w}`);
  const graph = await graphFromDatabase(db);
  log(
    `database ${job.data}: ${db.schema.tables.length} tables, graph with ` +
      `${graph.edgeTypes().length} edge types (${secs(t0)})`,
  );
  return { db, graph, job };
}

/** The model spec of a plan over a graph, feature store and task. */
export function modelSpec(
  graph: GraphStore,
  db: Database,
  manifest: FeatureManifest,
  sampling: CompiledSampling,
  settings: ModelSection,
  seedType: string,
  task: TaskType,
  classes?: number,
): ModelSpec {
  const used = sampling.edgeTypes.filter((_, e) => sampling.fanout.some((hop) => hop[e] !== 0));
  const edgeTypes = used.map((name) => {
    const d = graph.edgeType(name);
    return { name, srcType: d.dst, dstType: d.src };
  });
  const types = new Set([seedType, ...edgeTypes.map((e) => e.srcType)]);
  const nodeTypes = graph.nodeTypes().filter((t) => types.has(t)).map((name) => {
    const m = manifest.tables[name];
    return {
      name,
      numWidth: m?.numWidth ?? 0,
      cardinality: m?.cardinality ?? [],
      temporal: db.schema.tables.find((t) => t.name === name)?.timeColumn !== undefined,
    };
  });
  return {
    architecture: settings.architecture,
    channels: settings.channels,
    layers: Math.min(settings.layers, sampling.hops),
    aggregation: settings.aggregation,
    dropout: settings.dropout,
    norm: settings.norm,
    heads: settings.heads,
    seedType,
    outWidth: outputWidth(task, { classes }),
    task,
    nodeTypes,
    edgeTypes,
  };
}

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
  pool: Pool,
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

/** The training table of a job record, what to exclude from features, and a description. */
export async function buildTable(db: Database, record: JobRecord): Promise<{
  table: TrainingTable & { valCutoff?: number };
  exclude?: Record<string, string[]>;
  queryText: string;
}> {
  if (record.query !== undefined) {
    const q = resolveQuery(record.query, db.schema);
    const built: BuiltTrainingTable = await trainingTable(db, q, record.tableOptions);
    const exclude = q.target.kind === "static"
      ? { [q.entity.table.name]: [q.target.column.name] }
      : undefined;
    return { table: built, exclude, queryText: record.query };
  }
  const { path, ...opts } = record.table!;
  return { table: await loadTrainingTable(db, path, opts), queryText: `table ${path}` };
}

/** The data of `fanout plan` (as for train; no data: the synthetic database). */
export interface PlanRequest {
  /** Data folder. */
  data?: string;
  /** Schema file. */
  schema?: string;
  /** Query. */
  query?: string;
  /** Training table file. */
  table?: TableInput;
  /** Anchor schedule options (with `query`). */
  tableOptions?: TrainingTableOptions;
}

/** The suggested plan for a database and query, as YAML (`fanout plan`). */
export async function planText(req: PlanRequest): Promise<string> {
  let tmp: string | null = null;
  let record: JobRecord;
  if (req.data === undefined) {
    tmp = await Deno.makeTempDir({ prefix: "fanout-plan-" });
    const s = await generateSyntheticDb(tmp);
    record = { data: s.dir, schema: s.schemaPath, query: DEFAULT_QUERY, synthetic: true, seed: 0 };
  } else {
    record = {
      data: req.data,
      schema: req.schema!,
      query: req.query,
      table: req.table,
      tableOptions: req.tableOptions,
      synthetic: false,
      seed: 0,
    };
  }
  try {
    const { db, graph } = await openRunData(record, () => {});
    try {
      const { table } = await buildTable(db, record);
      const { plan, notes } = suggestPlanExplained({
        graph,
        schema: db.schema,
        seedType: table.entityTable,
        task: table.task,
        trainRows: rowsOf(table, Split.Train).length,
      });
      const header = [
        `Suggested plan for ${record.query ?? `table ${record.table?.path}`}`,
        ...notes,
        "Override any field in a file passed with --plan.",
      ].join("\n");
      return planToYaml(plan, { header });
    } finally {
      db.close();
    }
  } finally {
    if (tmp) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

// ---- the trainer ----

/** Whether a smaller value of `metric` is better. */
export function lowerIsBetterMetric(metric: string): boolean {
  return metric === "mae" || metric === "rmse";
}

/** Whether metric value `a` beats `b` (a number beats NaN). */
function better(metric: string, a: number, b: number | null): boolean {
  if (Number.isNaN(a)) return false;
  if (b === null || Number.isNaN(b)) return true;
  return lowerIsBetterMetric(metric) ? a < b : a > b;
}

/** The learning-rate schedule of a plan: linear warmup, then cosine to 0, step decay or constant. */
export function scheduleOf(T: ModelPlan["training"], batchesPerEpoch: number): Schedule {
  const total = Math.max(1, batchesPerEpoch * T.epochs);
  const warm = Math.min(T.schedule.warmup, Math.max(0, total - 1));
  const rest = Math.max(1, total - warm);
  const after = T.schedule.kind === "cosine"
    ? cosine(rest)
    : T.schedule.kind === "step"
    ? stepLR(Math.max(1, T.schedule.every * batchesPerEpoch), T.schedule.gamma)
    : constant();
  return warm > 0 ? linearWarmup(warm, after) : after;
}

/** L2 penalties tried for the entity baseline (the best on validation is kept). */
const BASELINE_L2 = [0.1, 1, 10, 100, 1000];

function secs(t0: number): string {
  return `${((performance.now() - t0) / 1000).toFixed(1)} s`;
}

/** Mixes a seed with a counter into a 32-bit seed. */
export function mixSeed(a: number, b: number): number {
  let h = Math.imul((a | 0) ^ 0x27d4eb2d, 0x85ebca6b) ^ Math.imul((b | 0) + 0x165667b1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h >>> 0;
}

function rowsOf(t: TrainingTable, split: Split): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < t.split.length; i++) if (t.split[i] === split) out.push(i);
  return Int32Array.from(out);
}

function pick<T extends Int32Array | Float64Array | Float32Array>(a: T, rows: Int32Array): T {
  const C = a.constructor as { new (n: number): T };
  const out = new C(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = a[rows[i]];
  return out;
}

/** The encoder cutoff: the earliest validation or test anchor (minus a second), or the table's cutoff. */
function featureCutoff(t: TrainingTable & { valCutoff?: number }): number {
  if (t.valCutoff !== undefined) return t.valCutoff;
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < t.split.length; i++) {
    if (t.split[i] !== Split.Train) min = Math.min(min, t.anchorTime[i]);
    max = Math.max(max, t.anchorTime[i]);
  }
  // A static target has one anchor for every split (the latest time): the rows themselves are
  // split, not time, and the target column is excluded instead.
  return min === max || !Number.isFinite(min) ? max : min - 1;
}

async function writeJson(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, JSON.stringify(value, null, 2) + "\n");
  await Deno.rename(tmp, path);
}

/** Trains a model for `job`; see the module doc. */
export async function train(job: TrainJob): Promise<TrainResult> {
  const wall0 = performance.now();
  const paths = runPaths(job.out);
  const log = (message: string) => job.onEvent?.({ kind: "log", message });
  const backend = job.backend;
  await Deno.mkdir(paths.out, { recursive: true });

  // ---- job record (resume reuses the recorded one) ----
  const resuming = job.resume === true && await hasCheckpoint(paths.last);
  if (job.resume && !resuming) log(`no checkpoint in ${paths.last}: starting afresh`);
  let record: JobRecord;
  if (resuming) {
    record = JSON.parse(await Deno.readTextFile(paths.job));
    log(`resuming ${paths.out} (data ${record.data})`);
  } else {
    let data = job.data, schema = job.schema, query = job.query;
    const synthetic = data === undefined;
    if (synthetic) {
      if (schema || job.table) throw new Error("--schema and --table need --data");
      const t0 = performance.now();
      const s = await generateSyntheticDb(paths.data, job.synthetic);
      data = s.dir;
      schema = s.schemaPath;
      query ??= DEFAULT_QUERY;
      log(
        `synthetic database in ${s.dir}: ${s.rows.users} users, ${s.rows.items} items, ` +
          `${s.rows.stores} stores, ${s.rows.transactions} transactions (${secs(t0)})`,
      );
    }
    if (!schema) throw new Error("--data needs --schema <file> (write one with: fanout schema)");
    if ((query === undefined) === (job.table === undefined)) {
      throw new Error("give exactly one of --query and --table");
    }
    record = {
      data: data!,
      schema,
      query,
      table: job.table,
      tableOptions: job.tableOptions,
      synthetic,
      seed: job.seed ?? 0,
    };
    await Deno.remove(`${paths.out}/checkpoints`, { recursive: true }).catch(() => {});
  }
  const seed = record.seed;

  const { db, graph } = await openRunData(record, log);
  let pool: SamplerPool | null = null;
  let reader: FeatureReader | null = null;
  const owned: { dispose(): void }[] = [];
  try {
    // ---- plan overrides (their `data` section shapes the training table) ----
    let overrides: PlanOverrides = {};
    if (!resuming) {
      const edgeTypes = graph.edgeTypes();
      overrides = typeof job.plan === "string"
        ? await loadPlan(job.plan, { edgeTypes })
        : job.plan ?? {};
      const d = overrides.data ?? {};
      if (d.valCutoff != null || d.testCutoff != null || d.maxTrainAnchors != null) {
        if (record.table) throw new Error("the plan's data section applies to --query only");
        record.tableOptions = {
          ...record.tableOptions,
          ...(d.valCutoff != null ? { valCutoff: d.valCutoff } : {}),
          ...(d.testCutoff != null ? { testCutoff: d.testCutoff } : {}),
          ...(d.maxTrainAnchors != null ? { maxTrainAnchors: d.maxTrainAnchors } : {}),
        };
      }
      await writeJson(paths.job, record);
    }

    // ---- training table ----
    let t0 = performance.now();
    const { table, exclude, queryText } = await buildTable(db, record);
    const task = table.task;
    if (task === "link") {
      throw new Error("link prediction (LIST_DISTINCT) is not supported by the trainer yet");
    }
    const train = rowsOf(table, Split.Train), val = rowsOf(table, Split.Val);
    const test = rowsOf(table, Split.Test);
    if (train.length === 0 || val.length === 0 || test.length === 0) {
      throw new Error(
        `the training table needs train, validation and test rows; it has ${train.length}, ` +
          `${val.length} and ${test.length}`,
      );
    }
    const classes = task === "multiclass" ? table.classes?.length ?? 0 : 0;
    log(
      `training table: ${task} on ${table.entityTable}, ${train.length} train / ${val.length} ` +
        `val / ${test.length} test rows (${secs(t0)})`,
    );

    // ---- plan ----
    let plan: ModelPlan;
    if (resuming) {
      const path = `${paths.last}/plan.yaml`;
      plan = mergePlan(defaultPlan(task), parsePlan(await Deno.readTextFile(path), path));
    } else {
      const suggested = suggestPlanExplained({
        graph,
        schema: db.schema,
        seedType: table.entityTable,
        task,
        trainRows: train.length,
      });
      for (const n of suggested.notes) log(`plan: ${n}`);
      plan = mergePlan(suggested.plan, overrides);
    }
    if (job.epochs !== undefined) plan.training.epochs = job.epochs;
    validatePlan(plan, { task, graph, source: resuming ? `${paths.last}/plan.yaml` : "plan" });
    if (!resuming) await Deno.writeTextFile(paths.plan, planToYaml(plan));
    const T = plan.training, M = plan.model;
    const metric = T.earlyStopping.metric;
    log(
      `plan: ${M.architecture}, ${M.layers} layers × ${M.channels} channels, ${M.aggregation} ` +
        `aggregation; ${T.optimizer} lr ${T.lr}, batch ${T.batchSize}, ${T.epochs} epochs, ` +
        `selecting on ${metric}`,
    );

    // ---- feature store ----
    t0 = performance.now();
    let manifest: FeatureManifest;
    const cutoff = featureCutoff(table);
    if (resuming) {
      manifest = await openManifest(paths.features);
      const ref: FeaturesRef = JSON.parse(await Deno.readTextFile(`${paths.last}/features.json`));
      const hash = await manifestHash(JSON.stringify(manifest));
      if (hash !== ref.manifestHash) {
        throw new Error(
          `${paths.features} is not the feature store the checkpoint was trained with`,
        );
      }
    } else {
      manifest = await buildFeatureStore(db, paths.features, { cutoff, exclude });
      log(
        `feature store ${paths.features}: encoders fitted on rows up to ` +
          `${new Date(cutoff * 1000).toISOString()} (${secs(t0)})`,
      );
    }
    const featuresRef: FeaturesRef = {
      dir: paths.features,
      cutoff: manifest.cutoff,
      manifestHash: await manifestHash(JSON.stringify(manifest)),
    };
    reader = await FeatureReader.open(paths.features, { cacheBytes: 256 << 20 });

    // ---- sampler ----
    const sampling = compileSampling(graph, plan.sampling.num_neighbors, plan.sampling.strategy);
    pool = await SamplerPool.create({
      graph,
      config: sampling,
      workers: job.workers ?? defaultWorkers(),
    });
    const samplerSettings: SamplerSettings = {
      seedType: table.entityTable,
      numNeighbors: sampling.numNeighbors,
      strategy: plan.sampling.strategy,
      batchSize: T.batchSize,
      randomSeed: seed,
    };

    // ---- labels ----
    const labelsOf = (rows: Int32Array) => pick(table.label, rows);
    const trainLabels = labelsOf(train);
    const transform: OutputTransform = {
      task,
      shift: 0,
      scale: 1,
      min: -Infinity,
      max: Infinity,
      classes,
      classNames: table.classes,
    };
    if (task === "regression") {
      let sum = 0, sq = 0, min = Infinity, max = -Infinity;
      for (const y of trainLabels) {
        sum += y;
        sq += y * y;
        min = Math.min(min, y);
        max = Math.max(max, y);
      }
      const mean = sum / trainLabels.length;
      const sd = Math.sqrt(Math.max(0, sq / trainLabels.length - mean * mean));
      Object.assign(transform, { shift: mean, scale: sd > 0 ? sd : 1, min, max });
    }
    const targetOf = (y: number) =>
      task === "regression" ? (y - transform.shift) / transform.scale : y;

    // ---- model, optimizer, schedule ----
    const spec = modelSpec(
      graph,
      db,
      manifest,
      sampling,
      M,
      table.entityTable,
      task,
      classes || undefined,
    );
    const model = buildGraphModel(spec, { backend, rng: new Rng(mixSeed(seed, 0x1417)) });
    owned.push(model);
    const loss = lossFor(task, T.loss === "mse" ? "mse" : "l1");
    const optOpts = { lr: T.lr, weightDecay: T.weightDecay, noDecay: isBiasOrNorm };
    const opt = T.optimizer === "sgd"
      ? new SGD(model.namedParameters(), { ...optOpts, momentum: 0.9 })
      : T.optimizer === "adam"
      ? new Adam(model.namedParameters(), optOpts)
      : new AdamW(model.namedParameters(), optOpts);
    owned.push(opt);
    const batchesPerEpoch = Math.min(
      Math.ceil(train.length / T.batchSize),
      T.maxStepsPerEpoch > 0 ? T.maxStepsPerEpoch : Infinity,
    );
    const sched = new LRScheduler(opt, scheduleOf(T, batchesPerEpoch));
    let state: TrainState = initialState(seed, batchesPerEpoch);
    const meta = (): CheckpointMeta => ({
      state: { ...state, scheduler: sched.stateDict() },
      planYaml: planToYaml(plan),
      sampler: samplerSettings,
      spec,
      features: featuresRef,
      output: transform,
    });
    if (resuming) {
      const ck = await loadCheckpoint(paths.last);
      if (ck.state.batchesPerEpoch !== batchesPerEpoch) {
        throw new Error(
          `the checkpoint has ${ck.state.batchesPerEpoch} batches per epoch, this run ` +
            `${batchesPerEpoch}: the data or plan changed`,
        );
      }
      await model.loadStateDict(ck.weights);
      await opt.loadStateDict(ck.optimizer);
      sched.loadStateDict(ck.state.scheduler);
      state = ck.state;
      // A resume may change the number of epochs (the schedule follows the new total).
      const patienceOut = T.earlyStopping.patience > 0 &&
        state.badEpochs >= T.earlyStopping.patience;
      state.done = state.epoch >= T.epochs || patienceOut;
      log(`resumed at epoch ${state.epoch + 1}, batch ${state.batch}, step ${state.step}`);
    }
    const params = model.parameters().reduce((s, p) => s + p.size, 0);
    log(
      `model: ${params.toLocaleString("en-US")} parameters over ${spec.nodeTypes.length} node ` +
        `types and ${spec.edgeTypes.length} edge types; ${batchesPerEpoch} batches per epoch`,
    );

    // ---- baselines (CPU, before the loop so their cost is not in the throughput) ----
    t0 = performance.now();
    const truth = { val: labelsOf(val), test: labelsOf(test) };
    const evalOpts = task === "multiclass" ? { classes } : {};
    const constant = task === "multiclass"
      ? constantBaseline("multiclass", trainLabels, { classes })
      : constantBaseline(task, trainLabels);
    const ef = await entityFeatures(db, table.entityTable, table.entity, table.anchorTime, reader);
    const sub = (rows: Int32Array) => {
      const data = new Float64Array(rows.length * ef.cols);
      for (let i = 0; i < rows.length; i++) {
        data.set(ef.data.subarray(rows[i] * ef.cols, (rows[i] + 1) * ef.cols), i * ef.cols);
      }
      return { data, rows: rows.length, cols: ef.cols };
    };
    // The L2 penalty is chosen on the validation split (the model's epochs are too).
    const xTrain = sub(train), xVal = sub(val);
    let linear = null as ReturnType<typeof fitLinearBaseline> | null, bestL2 = NaN;
    let bestVal = NaN;
    for (const l2 of BASELINE_L2) {
      const fit = fitLinearBaseline(task, xTrain, trainLabels, { ...evalOpts, l2 });
      const v = evaluate(task, fit.predict(xVal), truth.val, evalOpts)[metric];
      if (linear === null || better(metric, v, bestVal)) [linear, bestL2, bestVal] = [fit, l2, v];
    }
    const baselineMetrics = {
      constant: {
        val: evaluate(task, constant.predict(val.length), truth.val, evalOpts),
        test: evaluate(task, constant.predict(test.length), truth.test, evalOpts),
      },
      entity: {
        val: evaluate(task, linear!.predict(xVal), truth.val, evalOpts),
        test: evaluate(task, linear!.predict(sub(test)), truth.test, evalOpts),
      },
    };
    const entityDescription = `${
      task === "regression" ? "ridge regression" : "logistic regression"
    } on ${ef.cols} own-row and own-history features, L2 ${bestL2} chosen on validation`;
    log(
      `baselines (${secs(t0)}): val ${metric} constant ${
        fmt(baselineMetrics.constant.val[metric])
      }, entity ${fmt(baselineMetrics.entity.val[metric])}`,
    );
    const setupSeconds = (performance.now() - wall0) / 1000;

    // ---- the loop ----
    const logEvery = Math.max(1, job.logEvery ?? 10);
    const checkpointEvery = Math.max(1, job.checkpointEvery ?? 200);
    const trainEntity = pick(table.entity, train);
    const trainTime = pick(table.anchorTime, train);
    let waitSeconds = 0, loopSeconds = 0, validationSeconds = 0;
    const evaluateRows = async (rows: Int32Array) => {
      const raw = await scoreSeeds(
        model,
        pool!,
        reader!,
        backend,
        graph,
        table.entityTable,
        pick(table.entity, rows),
        pick(table.anchorTime, rows),
        T.batchSize,
        seed,
      );
      return toPredictions(raw, transform);
    };
    while (!state.done) {
      const epoch = state.epoch;
      const order = permutation(train.length, mixSeed(seed, epoch + 1));
      const seeds = new Int32Array(train.length), times = new Float64Array(train.length);
      const labels = new Float32Array(train.length);
      for (let i = 0; i < train.length; i++) {
        seeds[i] = trainEntity[order[i]];
        times[i] = trainTime[order[i]];
        labels[i] = targetOf(trainLabels[order[i]]);
      }
      const loader = new SamplerLoader(pool, {
        seedType: table.entityTable,
        seeds,
        seedTimes: times,
        batchSize: T.batchSize,
        randomSeed: seed,
        epoch,
      });
      const pipe = new BatchPipeline(
        sampledBatches(pool, loader, state.batch, batchesPerEpoch, Math.max(2, 2 * pool.workers)),
        reader,
        backend,
        pipelineOptions(graph),
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
          const l = step(model, batch, y, loss, backend);
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
            waitShare: pipe.stats().waitShare,
          });
          if (job.interruptAfterStep !== undefined && state.step >= job.interruptAfterStep) {
            throw new TrainInterrupted(state.step);
          }
          if (state.batch === batchesPerEpoch) break;
          if (state.step % checkpointEvery === 0) {
            await readLosses();
            const c0 = performance.now();
            state.trainSeconds = trainSeconds0 + epochSeconds();
            await saveCheckpoint(paths.last, model, opt, meta());
            savingSeconds += (performance.now() - c0) / 1000;
          }
        }
        await readLosses();
      } finally {
        for (const p of pendingLoss) p.t.dispose();
      }
      const seconds = epochSeconds();
      loopSeconds += seconds;
      waitSeconds += pipe.stats().waitSeconds;
      state.trainSeconds = trainSeconds0 + seconds;

      // ---- validation ----
      const v0 = performance.now();
      const valMetrics = evaluate(task, await evaluateRows(val), truth.val, evalOpts);
      validationSeconds += (performance.now() - v0) / 1000;
      const m = valMetrics[metric];
      const improved = better(metric, m, state.bestMetric);
      const rec: EpochRecord = {
        epoch,
        step: state.step,
        trainLoss: lossCount ? lossSum / lossCount : NaN,
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
        await saveCheckpoint(paths.best, model, opt, meta());
        await copyCheckpoint(paths.best, paths.last);
      } else {
        await saveCheckpoint(paths.last, model, opt, meta());
      }
    }

    // ---- final evaluation with the best weights ----
    if (await hasCheckpoint(paths.best)) {
      const best = await loadCheckpoint(paths.best);
      await model.loadStateDict(best.weights);
    } else {
      await copyCheckpoint(paths.last, paths.best);
    }
    const predsVal = await evaluateRows(val);
    const predsTest = await evaluateRows(test);
    const metrics: RunMetrics = {
      task,
      metric,
      query: queryText,
      entityTable: table.entityTable,
      rows: { train: train.length, val: val.length, test: test.length },
      val: {
        model: evaluate(task, predsVal, truth.val, evalOpts),
        constant: baselineMetrics.constant.val,
        entity: baselineMetrics.entity.val,
      },
      test: {
        model: evaluate(task, predsTest, truth.test, evalOpts),
        constant: baselineMetrics.constant.test,
        entity: baselineMetrics.entity.test,
      },
      baselines: { constant: constant.description, entity: entityDescription },
      best: {
        epoch: state.bestEpoch,
        step: state.history.find((h) => h.epoch === state.bestEpoch)?.step ?? state.step,
        metric: state.bestMetric,
      },
      history: state.history,
      throughput: {
        seedsPerSecond: state.trainSeconds > 0 ? state.seedsSeen / state.trainSeconds : 0,
        steps: state.step,
        seeds: state.seedsSeen,
        trainSeconds: state.trainSeconds,
        waitShare: loopSeconds > 0 ? waitSeconds / loopSeconds : 0,
        validationSeconds,
        batchSize: T.batchSize,
      },
      device: deviceName(backend),
      wallSeconds: (performance.now() - wall0) / 1000,
      setupSeconds,
    };
    await writeJson(paths.metrics, metrics);
    return { metrics, out: paths.out, bestCheckpoint: paths.best };
  } finally {
    for (const x of owned) x.dispose();
    pool?.close();
    reader?.close();
    db.close();
  }
}

/** One training step's forward, loss and backward (inside a scope); returns the loss, kept. */
function step(
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

/** A description of the backend's device. */
export function deviceName(backend: Backend): string {
  const info = (backend as { info?: { description?: string; vendor?: string } }).info;
  return info ? `${backend.name} (${info.description || info.vendor || "unknown"})` : backend.name;
}

function fmt(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? "n/a" : x.toFixed(4);
}
