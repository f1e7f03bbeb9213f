/**
 * The types of a training run: the job, its events, the metrics and result,
 * the job record and run directory layout, and the opened data.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import type { Database } from "../store/database.ts";
import type { GraphStore } from "../store/graph.ts";
import type { LoadTrainingTableOptions, TrainingTableOptions } from "../store/training_table.ts";
import type { TaskType } from "../store/types.ts";
import type { EpochRecord } from "./checkpoint.ts";
import type { SyntheticOptions } from "./synthetic.ts";
import type { PlanOverrides } from "./plan.ts";

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

/** Opened data of a run: database, graph, and how batches are made. */
export interface RunData {
  /** The database. */
  db: Database;
  /** The graph store. */
  graph: GraphStore;
  /** The job record. */
  job: JobRecord;
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
