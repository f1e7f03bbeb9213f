/**
 * The trainer's link-prediction phases (models/link.ts has the method): what a link run
 * prepares (the target sets per split, the candidates, the loss, the history path), one
 * training step over an entity batch and its target batch, ranking table rows for the
 * metrics, and the two baselines (the most popular targets; the entity's own past targets).
 *
 * @module
 */

import { scope, type Tensor } from "../core/tensor.ts";
import type { GraphStore } from "../store/graph.ts";
import type { GpuBatch } from "../sampler/batch.ts";
import { resolveQuery } from "../store/pql/semantic.ts";
import type { Schema, TrainingTable } from "../store/types.ts";
import { constantBaseline } from "./baselines.ts";
import { selectLinkRows } from "./heads.ts";
import {
  type HistoryPath,
  historyPath,
  historyRanking,
  type LinkBatchLabels,
  type LinkLoss,
  linkLoss,
  listDistinctVia,
  metricK,
  PastLinks,
  type RankedLinks,
  rankEntities,
  TargetCandidates,
} from "./link.ts";
import { type Csr, evaluate } from "./metrics.ts";
import { scoreSeeds } from "./scoring.ts";
import type { GraphModel } from "./types.ts";
import { LinkModel } from "./link_model.ts";
import type { Prepared } from "./train_loop.ts";
import { fmt, pick, secs } from "./train_setup.ts";

/** What a link run adds to the prepared run. */
export interface LinkRun {
  /** Target node type. */
  targetType: string;
  /** Targets by existence time. */
  candidates: TargetCandidates;
  /** True target sets of the train, validation and test rows (in the rows' order). */
  sets: { train: Csr; val: Csr; test: Csr };
  /** Cut-off of the metrics and of the ranked lists. */
  k: number;
  /** The loss. */
  loss: LinkLoss;
  /** Where the entity's own past links are (the history baseline), or null. */
  history: HistoryPath | null;
  /** Reads past links along `history` (the model's history features), or null. */
  past: PastLinks | null;
}

/** The rows of a split that have at least one true target (training needs a positive). */
export function withTargets(table: TrainingTable, rows: Int32Array): Int32Array {
  const o = table.link!.offsets;
  return rows.filter((r) => o[r + 1] > o[r]);
}

/**
 * The link part of a run: target sets, candidates, k from the metric name, the loss, and the
 * history path (through the query's `LIST_DISTINCT` table and column when there is a query).
 */
export function prepareLink(o: {
  graph: GraphStore;
  schema: Schema;
  table: TrainingTable;
  rows: { train: Int32Array; val: Int32Array; test: Int32Array };
  metric: string;
  loss: string;
  query?: string;
}): LinkRun {
  const { graph, table, rows } = o;
  if (!table.link) throw new Error("a link training table needs its target sets (table.link)");
  const targetType = table.link.targetTable;
  if (!graph.nodeTypes().includes(targetType)) {
    throw new Error(`link target table "${targetType}" is not a node type of the graph`);
  }
  if (o.loss !== "ce" && o.loss !== "bce") {
    throw new Error(`link prediction trains with loss ce or bce, not "${o.loss}"`);
  }
  const via = o.query ? listDistinctVia(resolveQuery(o.query, o.schema)) : undefined;
  const history = historyPath(graph, table.entityTable, targetType, via);
  return {
    targetType,
    candidates: new TargetCandidates(graph, targetType),
    sets: {
      train: selectLinkRows(table.link, rows.train),
      val: selectLinkRows(table.link, rows.val),
      test: selectLinkRows(table.link, rows.test),
    },
    k: metricK(o.metric),
    loss: o.loss,
    history,
    past: history ? new PastLinks(graph, history) : null,
  };
}

/** The model of a link run (a `LinkModel`: see `buildGraphModel`). */
export function asLinkModel(model: GraphModel): LinkModel {
  if (!(model instanceof LinkModel)) {
    throw new Error("fanout: link prediction needs a LinkModel (a spec with targetType)");
  }
  return model;
}

/** One link training step (forward of both towers, loss, backward, in a scope); the loss, kept. */
export function linkStep(
  model: GraphModel,
  entities: GpuBatch,
  targets: GpuBatch,
  labels: LinkBatchLabels,
  loss: LinkLoss,
): Tensor {
  const m = asLinkModel(model);
  return scope(() => {
    const scores = m.pairScores(m.forward(entities), m.forward(targets), labels.history);
    const l = linkLoss(scores, labels, loss);
    l.backward();
    return l;
  });
}

/** Each row's top-k targets by the model (eval mode), among those that exist at its time. */
export function rankRows(run: Prepared, model: GraphModel, rows: Int32Array): Promise<RankedLinks> {
  const link = run.link!;
  return rankEntities({
    model: asLinkModel(model),
    score: (type, ids, times) =>
      scoreSeeds(
        model,
        run.pool,
        run.reader,
        run.backend,
        run.graph,
        type,
        ids,
        times,
        run.plan.training.batchSize,
        run.seed,
      ),
    entities: pick(run.table.entity, rows),
    times: pick(run.table.anchorTime, rows),
    candidates: link.candidates,
    past: link.past,
    k: link.k,
    backend: run.backend,
  });
}

/** The link metrics of the model on a split. */
export async function linkMetricsOf(
  run: Prepared,
  model: GraphModel,
  split: "val" | "test",
): Promise<Record<string, number>> {
  const ranked = await rankRows(run, model, run.rows[split]);
  return evaluate("link", ranked, run.link!.sets[split], { k: run.link!.k });
}

/** The baselines of a link run: their metrics and descriptions. */
export function linkBaselines(run: Prepared): {
  constant: { val: Record<string, number>; test: Record<string, number> };
  entity: { val: Record<string, number>; test: Record<string, number> };
  constantDescription: string;
  entityDescription: string;
} {
  const link = run.link!, t0 = performance.now();
  const popular = constantBaseline("link", link.sets.train, { k: link.k });
  // Fill-ins after an entity's own targets (up to k of them may already be listed).
  const fill = constantBaseline("link", link.sets.train, { k: 2 * link.k }).values;
  const constant = (n: number): Csr => popular.predict(n);
  const opts = { k: link.k };
  const history = (split: "val" | "test"): Record<string, number> =>
    evaluate(
      "link",
      historyRanking(run.graph, {
        path: link.history!,
        entities: pick(run.table.entity, run.rows[split]),
        times: pick(run.table.anchorTime, run.rows[split]),
        k: link.k,
        popular: fill,
      }),
      link.sets[split],
      opts,
    );
  const out = {
    constant: {
      val: evaluate("link", constant(run.rows.val.length), link.sets.val, opts),
      test: evaluate("link", constant(run.rows.test.length), link.sets.test, opts),
    },
    entity: link.history ? { val: history("val"), test: history("test") } : { val: {}, test: {} },
    constantDescription: `the ${link.k} most popular targets of the training rows`,
    entityDescription: link.history
      ? `the entity's own past targets (${link.history.toFacts} then ${link.history.toTarget}), ` +
        `most often first, then the most popular`
      : "none (no table links the entity to the target)",
  };
  run.log(
    `baselines (${secs(t0)}): val ${run.metric} popular ${
      fmt(out.constant.val[run.metric])
    }, own history ${fmt(out.entity.val[run.metric])}`,
  );
  return out;
}
