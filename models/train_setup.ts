/**
 * Run setup helpers shared by training, prediction and `fanout plan`: the
 * run directory's paths, opening the data, the training table, the model
 * spec, the learning-rate schedule, and small row and file utilities.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { constant, cosine, linearWarmup, type Schedule, stepLR } from "../core/schedule.ts";
import { Database } from "../store/database.ts";
import { loadSchema } from "../store/schema.ts";
import { graphFromDatabase } from "../store/graph_build.ts";
import type { GraphStore } from "../store/graph.ts";
import {
  type BuiltTrainingTable,
  loadTrainingTable,
  trainingTable,
} from "../store/training_table.ts";
import { resolveQuery } from "../store/pql/semantic.ts";
import { Split, type TaskType, type TrainingTable } from "../store/types.ts";
import type { FeatureManifest } from "../store/features/format.ts";
import type { CompiledSampling } from "../sampler/config.ts";
import type { ModelSpec } from "./types.ts";
import { outputWidth } from "./heads.ts";
import type { ModelPlan, ModelSection, PlanOverrides } from "./plan.ts";
import type { JobRecord, RunData, RunPaths, TrainJob } from "./train_types.ts";
import { DEFAULT_QUERY, generateSyntheticDb } from "./synthetic.ts";
import { loadPlan } from "./plan_parse.ts";
import type { OutputTransform } from "./scoring.ts";
import { hasCheckpoint } from "./checkpoint.ts";

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

/** What {@link modelSpec} builds a model spec from. */
export interface ModelSpecInputs {
  /** The graph store (edge types). */
  graph: GraphStore;
  /** The database (which tables have a time column). */
  db: Database;
  /** The feature store's manifest (input widths). */
  manifest: FeatureManifest;
  /** The compiled sampler settings (edge types sampled, hops). */
  sampling: CompiledSampling;
  /** The plan's model section. */
  settings: ModelSection;
  /** Node type of the seeds. */
  seedType: string;
  /** Task. */
  task: TaskType;
  /** Multiclass: number of classes. */
  classes?: number;
  /** Link: the target node type (embedded by the same model, see `ModelSpec.targetType`). */
  targetType?: string;
}

/** The model spec of a plan over a graph, feature store and task. */
export function modelSpec(o: ModelSpecInputs): ModelSpec {
  const { graph, db, manifest, sampling, settings, seedType, task, classes, targetType } = o;
  const used = sampling.edgeTypes.filter((_, e) => sampling.fanout.some((hop) => hop[e] !== 0));
  const edgeTypes = used.map((name) => {
    const d = graph.edgeType(name);
    return { name, srcType: d.dst, dstType: d.src };
  });
  const types = new Set([seedType, ...edgeTypes.map((e) => e.srcType)]);
  if (targetType !== undefined) types.add(targetType);
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
    ...(targetType !== undefined ? { targetType } : {}),
    outWidth: outputWidth(task, { classes, embeddingDim: settings.channels }),
    task,
    nodeTypes,
    edgeTypes,
  };
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

/** Whether a smaller value of `metric` is better. */
export function lowerIsBetterMetric(metric: string): boolean {
  return metric === "mae" || metric === "rmse";
}

/** Whether metric value `a` beats `b` (a number beats NaN). */
export function better(metric: string, a: number, b: number | null): boolean {
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

/** Seconds since `t0`, formatted. */
export function secs(t0: number): string {
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

/** The rows of a split. */
export function rowsOf(t: TrainingTable, split: Split): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < t.split.length; i++) if (t.split[i] === split) out.push(i);
  return Int32Array.from(out);
}

/** `a` at `rows`. */
export function pick<T extends Int32Array | Float64Array | Float32Array>(
  a: T,
  rows: Int32Array,
): T {
  const C = a.constructor as { new (n: number): T };
  const out = new C(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = a[rows[i]];
  return out;
}

/** The encoder cutoff: the earliest validation or test anchor (minus a second), or the table's cutoff. */
export function featureCutoff(t: TrainingTable & { valCutoff?: number }): number {
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

/** Writes JSON atomically (a temporary file, then a rename). */
export async function writeJson(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, JSON.stringify(value, null, 2) + "\n");
  await Deno.rename(tmp, path);
}

/** A description of the backend's device. */
export function deviceName(backend: Backend): string {
  const info = (backend as { info?: { description?: string; vendor?: string } }).info;
  return info ? `${backend.name} (${info.description || info.vendor || "unknown"})` : backend.name;
}

/** A metric value for logs (4 decimals, or n/a). */
export function fmt(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? "n/a" : x.toFixed(4);
}

/** The job record of a run: a fresh one (generating the synthetic data if needed), or the recorded one on resume. */
export async function jobRecord(
  job: TrainJob,
  paths: RunPaths,
  log: (m: string) => void,
): Promise<{ record: JobRecord; resuming: boolean }> {
  const resuming = job.resume === true && await hasCheckpoint(paths.last);
  if (job.resume && !resuming) log(`no checkpoint in ${paths.last}: starting afresh`);
  if (resuming) {
    const record: JobRecord = JSON.parse(await Deno.readTextFile(paths.job));
    log(`resuming ${paths.out} (data ${record.data})`);
    return { record, resuming };
  }
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
  const record: JobRecord = {
    data: data!,
    schema,
    query,
    table: job.table,
    tableOptions: job.tableOptions,
    synthetic,
    seed: job.seed ?? 0,
  };
  await Deno.remove(`${paths.out}/checkpoints`, { recursive: true }).catch(() => {});
  return { record, resuming };
}

/** The job's plan overrides; their `data` section shapes the training table. Writes job.json. */
export async function planOverrides(
  job: TrainJob,
  record: JobRecord,
  paths: RunPaths,
  graph: GraphStore,
): Promise<PlanOverrides> {
  const edgeTypes = graph.edgeTypes();
  const overrides = typeof job.plan === "string"
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
  return overrides;
}

/** Output transform of a task: regression targets are standardised on the training labels. */
export function outputTransform(
  task: OutputTransform["task"],
  classes: number,
  classNames: string[] | undefined,
  trainLabels: Float32Array,
): OutputTransform {
  const transform: OutputTransform = {
    task,
    shift: 0,
    scale: 1,
    min: -Infinity,
    max: Infinity,
    classes,
    classNames,
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
  return transform;
}
