/**
 * The model plan: one YAML file with the sections `sampling`, `model`,
 * `training` and `data` that says how a model is sampled, built and
 * trained. `fanout plan` suggests one (models/plan_suggest.ts); the user
 * overrides any field (models/plan_parse.ts reads a file of overrides,
 * {@link mergePlan} lays it over the suggestion).
 *
 * ```yaml
 * sampling:
 *   num_neighbors:                 # Kumo's form (sampler/config.ts)
 *     - hop1: { default: 0, users.user_id->transactions.user_id: 24 }
 *     - hop2: { default: 1 }
 *   strategy: { default: recency, half_life: 30d }
 * model:
 *   architecture: sage             # sage | gat | transformer
 *   channels: 64
 *   layers: 2
 *   aggregation: sum               # mean | sum | max
 *   dropout: 0.1
 *   norm: layer                    # layer | none
 *   heads: 4                       # gat, transformer
 * training:
 *   loss: bce                      # bce | ce | l1 | mse
 *   epochs: 10
 *   batch_size: 512
 *   optimizer: adamw               # adam | adamw | sgd
 *   lr: 0.003
 *   weight_decay: 0.01
 *   schedule: { kind: cosine, warmup: 20, every: 1, gamma: 0.5 }
 *   clip: 1                        # global gradient norm; 0: off
 *   early_stopping: { patience: 3, metric: auroc }
 *   max_steps_per_epoch: 0         # 0: every training batch
 * data:
 *   val_cutoff: 2024-10-01         # optional; ISO 8601 or epoch seconds
 *   test_cutoff: 2024-11-01        # optional
 *   max_train_anchors: 100         # optional
 * ```
 *
 * YAML keys are snake_case; the TypeScript {@link ModelPlan} uses
 * camelCase (`batch_size` is `batchSize`), except `sampling.num_neighbors`,
 * which keeps Kumo's name. `sampling` is passed as is to
 * `compileSampling(graph, plan.sampling.num_neighbors, plan.sampling.strategy)`.
 * The early-stopping metric is the primary metric: `auroc`, `ap`,
 * `accuracy`, `f1` (binary), `mae`, `rmse`, `r2` (regression), `accuracy`,
 * `macro_f1` (multiclass), `map@k`, `precision@k`, `recall@k` (link), as
 * models/metrics.ts `evaluate` names them.
 *
 * @module
 */

import type { GraphData, GraphStore } from "../store/graph.ts";
import type { TaskType } from "../store/types.ts";
import { compileSampling, type NumNeighbors } from "../sampler/config.ts";
import type { Architecture } from "./types.ts";
import { Document, isMap, isScalar, type Scalar, type YAMLMap } from "./deps.ts";
import { formatProblem, type Leaf, PLAN_SPEC, planProblems, type Spec } from "./plan_spec.ts";

/** Neighbour aggregations of SAGE. */
export type Aggregation = "mean" | "sum" | "max";
/** Normalisation after each layer. */
export type Norm = "layer" | "none";
/** Optimizers. */
export type OptimizerName = "adam" | "adamw" | "sgd";
/** Learning-rate schedules (after the warmup). */
export type ScheduleKind = "cosine" | "step" | "constant";
/** Losses: binary cross-entropy (binary, link), cross-entropy (multiclass), l1 or mse (regression). */
export type LossName = "bce" | "ce" | "l1" | "mse";

/**
 * The strategies of `compileSampling`: a name (`uniform`, `last`,
 * `recency`, `static`), a rule `{ strategy, half_life }`, or a map with
 * `default`, `half_life` and rules per edge type or metapath.
 */
export type StrategySpec = string | Record<string, unknown>;

/** `sampling`: what the sampler expands around each seed. */
export interface SamplingPlan {
  /** Kumo's `num_neighbors` (list of `hopN` maps, or the short form `[16, 8]`). */
  num_neighbors: NumNeighbors | number[];
  /** Temporal strategies (see {@link StrategySpec}). */
  strategy: StrategySpec;
}

/** `model`: the architecture (the fields of models/types.ts `ModelSpec` a user picks). */
export interface ModelSection {
  /** `sage`, `gat` or `transformer`. */
  architecture: Architecture;
  /** Hidden width. */
  channels: number;
  /** Message-passing layers (at most the sampled hops). */
  layers: number;
  /** Neighbour aggregation (SAGE). */
  aggregation: Aggregation;
  /** Dropout probability. */
  dropout: number;
  /** Normalisation after each layer. */
  norm: Norm;
  /** Attention heads (GAT, transformer); divides `channels`. */
  heads: number;
}

/** `training.schedule`: linear warmup, then the decay. */
export interface ScheduleSpec {
  /** Decay after the warmup: cosine to 0 over the run, step, or constant. */
  kind: ScheduleKind;
  /** Linear warmup, in optimizer steps (0: none). */
  warmup: number;
  /** `step`: epochs between decays. */
  every: number;
  /** `step`: factor per decay. */
  gamma: number;
}

/** `training.early_stopping`. */
export interface EarlyStopping {
  /** Epochs without improvement of `metric` on validation before stopping (0: never). */
  patience: number;
  /** The primary metric: model selection and early stopping (see the module doc). */
  metric: string;
}

/** `training`: the loop. */
export interface TrainingPlan {
  /** Loss. */
  loss: LossName;
  /** Epochs (passes over the training rows, or `maxStepsPerEpoch` steps). */
  epochs: number;
  /** Seeds per batch. */
  batchSize: number;
  /** Optimizer. */
  optimizer: OptimizerName;
  /** Base learning rate. */
  lr: number;
  /** Weight decay (decoupled for adamw). */
  weightDecay: number;
  /** Learning-rate schedule. */
  schedule: ScheduleSpec;
  /** Global gradient-norm clipping (0: off). */
  clip: number;
  /** Early stopping. */
  earlyStopping: EarlyStopping;
  /** Most optimizer steps per epoch (0: every training batch). */
  maxStepsPerEpoch: number;
}

/** `data`: the training table's anchor schedule (store/training_table.ts options). */
export interface DataPlan {
  /** Validation cutoff: epoch seconds or ISO 8601 (default: the training table's). */
  valCutoff?: number | string;
  /** Test cutoff (default: the training table's). */
  testCutoff?: number | string;
  /** Most training anchors (default: the training table's). */
  maxTrainAnchors?: number;
}

/** A complete model plan. */
export interface ModelPlan {
  /** Sampling. */
  sampling: SamplingPlan;
  /** Model. */
  model: ModelSection;
  /** Training loop. */
  training: TrainingPlan;
  /** Training table. */
  data: DataPlan;
}

/** Any part of a plan, as a file of overrides holds it; `null` clears an optional `data` field. */
export interface PlanOverrides {
  /** Sampling fields. */
  sampling?: Partial<SamplingPlan>;
  /** Model fields. */
  model?: Partial<ModelSection>;
  /** Training fields; `schedule` and `earlyStopping` merge key by key. */
  training?: Partial<Omit<TrainingPlan, "schedule" | "earlyStopping">> & {
    schedule?: Partial<ScheduleSpec>;
    earlyStopping?: Partial<EarlyStopping>;
  };
  /** Data fields. */
  data?: { [K in keyof DataPlan]?: DataPlan[K] | null };
}

/** A plan that cannot be used; `problems` holds one message per problem. */
export class PlanError extends Error {
  /** Each problem, one message each (the message joins them with newlines). */
  readonly problems: string[];
  /** Creates the error from its problems. */
  constructor(problems: string[]) {
    super(problems.join("\n"));
    this.name = "PlanError";
    this.problems = problems;
  }
}

/** The default plan of a task (sampling: `[16, 8]` fanouts, recency); see models/plan_suggest.ts. */
export function defaultPlan(task: TaskType = "binary"): ModelPlan {
  return {
    sampling: {
      num_neighbors: [{ hop1: { default: 16 } }, { hop2: { default: 8 } }],
      strategy: { default: "recency", half_life: "30d" },
    },
    model: {
      architecture: "sage",
      channels: 64,
      layers: 2,
      aggregation: "sum", // sums let a layer count (rows per entity carry most relational signal)
      dropout: 0.1,
      norm: "layer",
      heads: 4,
    },
    training: {
      loss: lossOf(task),
      epochs: 10,
      batchSize: 512,
      optimizer: "adamw",
      lr: 3e-3,
      weightDecay: 0.01,
      schedule: { kind: "cosine", warmup: 20, every: 1, gamma: 0.5 },
      clip: 1,
      earlyStopping: { patience: 3, metric: metricOf(task) },
      maxStepsPerEpoch: 0,
    },
    data: {},
  };
}

/**
 * The loss of a task: bce (binary), ce (multiclass; link: sampled softmax over in-batch and
 * random negatives, see models/link.ts), l1 (regression).
 */
export function lossOf(task: TaskType): LossName {
  return task === "multiclass" || task === "link" ? "ce" : task === "regression" ? "l1" : "bce";
}

/** The primary metric of a task: auroc, mae, accuracy, map@10 (as models/metrics.ts names them). */
export function metricOf(task: TaskType, k = 10): string {
  return task === "binary"
    ? "auroc"
    : task === "regression"
    ? "mae"
    : task === "multiclass"
    ? "accuracy"
    : `map@${k}`;
}

/** The losses and metrics each task accepts. */
export const TASK_CHOICES: Readonly<
  Record<TaskType, { losses: readonly LossName[]; metrics: readonly string[] }>
> = {
  binary: { losses: ["bce"], metrics: ["auroc", "ap", "accuracy", "f1"] },
  regression: { losses: ["l1", "mse"], metrics: ["mae", "rmse", "r2"] },
  multiclass: { losses: ["ce"], metrics: ["accuracy", "macro_f1"] },
  link: { losses: ["ce", "bce"], metrics: ["map@k", "precision@k", "recall@k"] },
};

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The TypeScript name of a YAML key (`batch_size` → `batchSize`; `num_neighbors` stays). */
export function tsKey(yamlKey: string): string {
  return yamlKey === "num_neighbors"
    ? yamlKey
    : yamlKey.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Converts between the YAML form (snake_case keys) and the TypeScript form, following the spec. */
function convert(value: unknown, spec: Spec, toTs: boolean): unknown {
  if (spec.kind !== "group" || !isRecord(value)) return structuredClone(value);
  const out: Json = {};
  for (const [yk, sub] of Object.entries(spec.fields)) {
    const from = toTs ? yk : tsKey(yk), to = toTs ? tsKey(yk) : yk;
    if (value[from] !== undefined) out[to] = convert(value[from], sub, toTs);
  }
  // Unknown keys pass through unchanged (validation reports them).
  const known = new Set(Object.keys(spec.fields).map((k) => (toTs ? k : tsKey(k))));
  for (const [k, v] of Object.entries(value)) if (!known.has(k)) out[k] = structuredClone(v);
  return out;
}

/** The YAML form of a plan or of overrides (snake_case keys, as in the file). */
export function planToYamlValue(plan: ModelPlan | PlanOverrides): Record<string, unknown> {
  return convert(plan, PLAN_SPEC, false) as Record<string, unknown>;
}

/** The TypeScript form of a YAML-form value (no validation: see `parsePlan`). */
export function planFromYamlValue(value: unknown): PlanOverrides {
  return convert(value, PLAN_SPEC, true) as PlanOverrides;
}

/**
 * Lays `overrides` over `base` and returns a new plan (neither input is
 * changed): sections and nested mappings (`schedule`, `early_stopping`)
 * merge key by key; a value — a number, a string, `num_neighbors`, a
 * strategy — replaces the base's whole; `null` clears an optional field
 * (`data.*`) and is ignored elsewhere. Validate the result with
 * {@link validatePlan}.
 */
export function mergePlan(base: ModelPlan, overrides: PlanOverrides): ModelPlan {
  const merge = (b: unknown, o: unknown, spec: Spec): unknown => {
    if (o === undefined) return structuredClone(b);
    if (spec.kind === "group" && isRecord(o)) {
      const out: Json = isRecord(b) ? structuredClone(b) : {};
      for (const [yk, sub] of Object.entries(spec.fields)) {
        const k = tsKey(yk);
        if (!(k in o)) continue;
        if (o[k] === null) {
          if ((sub as Leaf).optional) delete out[k];
          continue;
        }
        out[k] = merge(out[k], o[k], sub);
      }
      return out;
    }
    return o === null ? structuredClone(b) : structuredClone(o);
  };
  return merge(base, overrides, PLAN_SPEC) as ModelPlan;
}

/** Options of {@link planToYaml}. */
export interface PlanYamlOptions {
  /** Comment written at the top (lines without `#`). */
  header?: string;
  /** Write each field's choices or meaning as a comment (default true). */
  comments?: boolean;
}

/**
 * Writes a plan (or overrides) as YAML in the order of the sections above,
 * with each field's choices as a comment; `parsePlan` reads it back to an
 * equal value.
 */
export function planToYaml(plan: ModelPlan | PlanOverrides, opts: PlanYamlOptions = {}): string {
  const doc = new Document(planToYamlValue(plan));
  if (opts.header) {
    doc.commentBefore = opts.header.split("\n").map((l) => (l ? ` ${l}` : "")).join("\n");
  }
  const annotate = (node: unknown, spec: Spec) => {
    if (!isMap(node) || spec.kind !== "group") return;
    for (const pair of (node as YAMLMap).items) {
      const sub = spec.fields[String((pair.key as Scalar).value)];
      if (!sub) continue;
      if (sub.kind === "group") annotate(pair.value, sub);
      else if (isScalar(pair.value)) (pair.value as Scalar).comment = ` ${sub.doc}`;
      else if (isScalar(pair.key)) (pair.key as Scalar).commentBefore = ` ${sub.doc}`;
    }
  };
  if (opts.comments !== false) annotate(doc.contents, PLAN_SPEC);
  return doc.toString({ lineWidth: 100 });
}

/** Options of {@link validatePlan}. */
export interface ValidatePlanOptions {
  /** The task: the loss and metric must fit it. */
  task?: TaskType;
  /** The graph: `sampling` must compile against it (edge types, metapaths). */
  graph?: GraphStore | GraphData;
  /** Prefix of each message (default "plan"). */
  source?: string;
}

/** The problems of a complete plan (see {@link validatePlan}), as messages without the source. */
export function completePlanProblems(plan: ModelPlan, opts: ValidatePlanOptions = {}): string[] {
  const graph = opts.graph && "data" in opts.graph ? opts.graph.data : opts.graph;
  const edgeTypes = graph?.edges.map((e) => e.name);
  const out = planProblems(planToYamlValue(plan), { partial: false, edgeTypes }).map(
    formatProblem,
  );
  if (out.length > 0) return out;
  const { model, training, sampling } = plan;
  const hops = sampling.num_neighbors.length;
  if (model.layers > hops) {
    out.push(
      `model.layers: ${model.layers} layers but sampling.num_neighbors has ${hops} ` +
        `hop${hops === 1 ? "" : "s"}; a layer aggregates one sampled hop (use at most ${hops})`,
    );
  }
  if (model.architecture !== "sage" && model.channels % model.heads !== 0) {
    out.push(
      `model.heads: ${model.heads} heads do not divide model.channels ${model.channels} ` +
        `(${model.architecture} splits the channels between heads)`,
    );
  }
  if (opts.task) {
    const c = TASK_CHOICES[opts.task];
    if (!c.losses.includes(training.loss)) {
      out.push(
        `training.loss: "${training.loss}" does not fit a ${opts.task} task; valid: ${
          c.losses.join(", ")
        }`,
      );
    }
    const m = training.earlyStopping.metric.replace(/@\d+$/, "@k");
    if (!c.metrics.includes(m)) {
      out.push(
        `training.early_stopping.metric: "${training.earlyStopping.metric}" does not fit a ` +
          `${opts.task} task; valid: ${c.metrics.join(", ")}`,
      );
    }
  }
  if (graph) {
    try {
      compileSampling(graph, sampling.num_neighbors, sampling.strategy);
    } catch (e) {
      out.push(`sampling: ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * Checks a complete plan: every field present with a valid value, at most
 * as many layers as sampled hops, heads that divide the channels (gat,
 * transformer); with `task`, a loss and metric that fit it; with `graph`,
 * sampling that compiles against it. Throws a {@link PlanError} naming each
 * field (`training.batch_size: ...`) and the valid choices.
 */
export function validatePlan(plan: ModelPlan, opts: ValidatePlanOptions = {}): void {
  const problems = completePlanProblems(plan, opts);
  const source = opts.source ?? "plan";
  if (problems.length > 0) throw new PlanError(problems.map((p) => `${source}: ${p}`));
}
