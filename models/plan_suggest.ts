/**
 * `fanout plan`: a suggested model plan (models/plan.ts) from the schema,
 * the task and the graph's degree statistics.
 *
 * - **Hops** by sparsity: the mean number of neighbours of a seed (over
 *   every edge type leaving the seed type) is its degree; 2 hops when it is
 *   at least {@link SPARSE_DEGREE}, 3 when it is lower (a sparse seed needs
 *   a wider radius to see enough rows). Fewer when the budget cannot hold
 *   even the child→parent edges over that many hops. Layers = hops.
 * - **Fanouts** by degree: sampler/auto.ts `autoFanouts` for a budget of
 *   sampled nodes per seed (default {@link DEFAULT_BUDGET}): child→parent
 *   edges 1, the others proportional to their mean degree, halving per hop.
 *   The budget is measured on the training seeds when given (`seeds` at
 *   `seedTimes`, a spread sample of {@link CALIBRATION_SEEDS}): the
 *   entities a query selects are seldom like random rows of their table
 *   (tennis: 65k players, most without a tour-level match, against the
 *   active players a query asks about).
 * - **Strategy**: `recency` with a 30-day half-life when any table has a
 *   time column, else `uniform`.
 * - **Loss and metric** by task: binary bce / auroc, regression l1 / mae,
 *   multiclass ce / accuracy, link ce / map@10 (the budget also holds for
 *   seeds of the link's target type).
 * - The rest: sage, 64 channels, sum aggregation, dropout 0.1, layer norm,
 *   4 heads; adamw at lr 3e-3, weight decay 0.01, cosine decay after a
 *   linear warmup of 5% of the steps (20 without `trainRows`), clipping at
 *   1.0, 10 epochs, patience 3, batches of 512 (fewer for small tables:
 *   the largest power of two, at least 32, that gives an epoch
 *   {@link MIN_STEPS} steps; 256 for 18,500 training rows).
 *
 * @module
 */

import type { GraphData, GraphStore } from "../store/graph.ts";
import type { Schema, TaskType } from "../store/types.ts";
import { autoFanouts } from "../sampler/auto.ts";
import type { NumNeighbors } from "../sampler/config.ts";
import { defaultPlan, type ModelPlan } from "./plan.ts";
import { toTick } from "../store/ticks.ts";

/** Training seeds the fanout budget is measured on (a spread sample of the training rows). */
export const CALIBRATION_SEEDS = 256;

/** Sampled nodes per seed that the suggested fanouts aim at. */
export const DEFAULT_BUDGET = 256;
/** A seed type whose mean degree is below this gets 3 hops instead of 2. */
export const SPARSE_DEGREE = 4;
/** Small tables get smaller batches, so that an epoch has at least this many steps. */
export const MIN_STEPS = 64;

/** Inputs of {@link suggestPlan}. */
export interface SuggestPlanOptions {
  /** The graph store. */
  graph: GraphStore | GraphData;
  /** The schema (tables with or without time columns). */
  schema: Schema;
  /** Node type of the seeds (the query's entity table). */
  seedType: string;
  /** The task. */
  task: TaskType;
  /** Mean sampled nodes per seed (default {@link DEFAULT_BUDGET}). */
  budget?: number;
  /** Training rows: sizes the batch and the warmup. */
  trainRows?: number;
  /** Hops, instead of the rule by sparsity. */
  hops?: number;
  /** Link prediction: the target node type, also a seed type (the budget holds for it too). */
  targetType?: string;
  /** Training seeds (dense ids of `seedType`), to measure the budget on; default random rows. */
  seeds?: Int32Array;
  /** Their anchor times (epoch seconds), with `seeds`. */
  seedTimes?: ArrayLike<number>;
}

/** A suggested plan and why. */
export interface SuggestedPlan {
  /** The plan. */
  plan: ModelPlan;
  /** One line per choice made from the data (for a header comment or a log). */
  notes: string[];
}

/** Mean number of neighbours of a node of `seedType` over every edge type leaving it. */
export function seedDegree(graph: GraphStore | GraphData, seedType: string): number {
  const data = "data" in graph ? graph.data : graph;
  const node = data.nodes.find((n) => n.name === seedType);
  if (!node) {
    throw new Error(
      `unknown seed type "${seedType}"; node types: ${data.nodes.map((n) => n.name).join(", ")}`,
    );
  }
  let edges = 0;
  for (const e of data.edges) if (e.src === seedType) edges += e.nbr.length + e.delta.nbr.length;
  const count = node.count + node.delta.count;
  return count > 0 ? edges / count : 0;
}

/**
 * Up to {@link CALIBRATION_SEEDS} of `opts.seeds` at evenly spaced positions, with their
 * anchor ticks; undefined without seeds.
 */
function calibrationSeeds(
  graph: GraphStore | GraphData,
  opts: SuggestPlanOptions,
): { seeds: Int32Array; seedTicks: Int32Array } | undefined {
  const { seeds: all, seedTimes } = opts;
  if (!all || all.length === 0) return undefined;
  if (!seedTimes || seedTimes.length !== all.length) {
    throw new Error(
      `suggestPlan: seedTimes must give one time per seed (${all.length} seeds, ` +
        `${seedTimes?.length ?? 0} times)`,
    );
  }
  const data = "data" in graph ? graph.data : graph;
  const m = Math.min(all.length, CALIBRATION_SEEDS);
  const seeds = new Int32Array(m), seedTicks = new Int32Array(m);
  for (let i = 0; i < m; i++) {
    const r = Math.floor(((i + 0.5) * all.length) / m);
    seeds[i] = all[r];
    seedTicks[i] = toTick(data, seedTimes[r]);
  }
  return { seeds, seedTicks };
}

/** {@link suggestPlan} with a note per choice. */
export function suggestPlanExplained(opts: SuggestPlanOptions): SuggestedPlan {
  const { graph, schema, seedType, task } = opts;
  const budget = opts.budget ?? DEFAULT_BUDGET;
  const notes: string[] = [];
  const degree = seedDegree(graph, seedType);
  let hops = opts.hops ?? (degree >= SPARSE_DEGREE ? 2 : 3);
  if (opts.hops === undefined) {
    notes.push(
      `hops ${hops}: a ${seedType} row has ${degree.toFixed(1)} neighbours on average ` +
        `(${degree >= SPARSE_DEGREE ? ">=" : "<"} ${SPARSE_DEGREE})`,
    );
  }
  const calibration = calibrationSeeds(graph, opts);
  let fanouts: NumNeighbors | undefined;
  while (!fanouts) {
    try {
      fanouts = autoFanouts(graph, seedType, {
        budget,
        hops,
        alsoSeedTypes: opts.targetType ? [opts.targetType] : [],
        ...calibration,
      });
    } catch (e) {
      if (hops <= 1 || !/budget .* is too small/.test((e as Error).message)) throw e;
      notes.push(
        `${hops} hops do not fit a budget of ${budget} nodes per seed; trying ${hops - 1}`,
      );
      hops--;
    }
  }
  notes.push(
    `fanouts: auto for ${budget} sampled nodes per seed over ${hops} hops` +
      (calibration ? `, measured on ${calibration.seeds.length} training seeds` : "") +
      (opts.targetType ? ` (${seedType} and ${opts.targetType} seeds)` : ""),
  );
  const plan = defaultPlan(task);
  plan.sampling.num_neighbors = fanouts;
  plan.model.layers = hops;
  const timed = schema.tables.some((t) => t.timeColumn !== undefined || t.timeFrom !== undefined);
  if (!timed) {
    plan.sampling.strategy = "uniform";
    notes.push("strategy: uniform (no table has a time column)");
  }
  const t = plan.training;
  if (opts.trainRows !== undefined && opts.trainRows > 0) {
    if (opts.trainRows < MIN_STEPS * t.batchSize) {
      t.batchSize = Math.max(32, 2 ** Math.floor(Math.log2(opts.trainRows / MIN_STEPS)));
      notes.push(
        `batch size ${t.batchSize}: ${opts.trainRows} training rows, at least ` +
          `${MIN_STEPS} steps per epoch`,
      );
    }
    const steps = t.epochs * Math.ceil(opts.trainRows / t.batchSize);
    t.schedule.warmup = Math.min(500, Math.max(1, Math.round(0.05 * steps)));
  }
  notes.push(`loss ${t.loss}, metric ${t.earlyStopping.metric}: a ${task} task`);
  return { plan, notes };
}

/**
 * The suggested plan for seeds of `seedType` and a `task` over `graph`
 * (see the module doc for the rules). The result compiles with
 * `compileSampling(graph, plan.sampling.num_neighbors, plan.sampling.strategy)`.
 */
export function suggestPlan(opts: SuggestPlanOptions): ModelPlan {
  return suggestPlanExplained(opts).plan;
}
