/**
 * Link prediction (`PREDICT LIST_DISTINCT(T.fk, …) FOR EACH E.pk`): which target rows an entity
 * will link to in the window after its anchor time.
 *
 * The model is a two-tower over one graph model: an entity seed's sampled neighbourhood goes
 * through the model and its `head`, a target seed's through the same layers and its
 * `targetHead` (`ModelSpec.targetType`), both into `outWidth` columns; the score of an
 * entity–target pair is the dot product of the two embeddings. Both towers see only rows at
 * or before the entity's anchor time: a target is sampled as a seed at that time too.
 *
 * Training (`linkEpoch`, `linkBatchLabels`, `linkLoss`): for each training row one of its true
 * targets is drawn (uniformly, anew each epoch) as its positive, and one target drawn uniformly
 * among those that exist at the row's time as an extra negative. A batch of `r` rows embeds
 * `r` entities and `2r` targets (the `r` positives, then the `r` negatives) and scores all
 * `r × 2r` pairs: every other row's positive is an in-batch negative. The loss is either
 * - `ce`: sampled softmax, cross-entropy of each row's scores against its own positive, the
 *   other columns that are also true targets of the row masked out (no false negatives), and
 *   each column's score less the log of its probability of being drawn (logQ correction); or
 * - `bce`: binary cross-entropy of every pair against whether the column's target is in the
 *   row's true set.
 *
 * Ranking (`rankLinks`): the targets that exist at an anchor time are embedded at that time,
 * once per distinct anchor time, every entity is scored against all of them (a matrix product
 * on the backend) and its top k are kept (`rankTopK`).
 *
 * The per-entity baseline (`historyRanking`) ranks the targets the entity itself linked to up
 * to its anchor time, most often first, then the most popular targets of the training rows.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { noGrad } from "../core/autograd.ts";
import { add, bceWithLogits, crossEntropy, matmul } from "../core/ops.ts";
import { HISTORY_FEATURES, type LinkModel } from "./link_model.ts";
import type { ResolvedQuery } from "../store/pql/semantic.ts";
import { Rng } from "../core/random.ts";
import { scope, type Tensor, tensor } from "../core/tensor.ts";
import type { GraphStore } from "../store/graph.ts";
import { seedTick } from "../store/ticks.ts";
import type { Csr } from "./metrics.ts";
import { rankTopK } from "./heads.ts";

/** Link losses: sampled softmax (`ce`) or pairwise binary cross-entropy (`bce`). */
export type LinkLoss = "ce" | "bce";

/** Logit added to masked pairs of the `ce` loss (their softmax weight underflows to 0). */
const MASKED = -1e4;

function fail(fn: string, msg: string): never {
  throw new Error(`fanout: ${fn}: ${msg}`);
}

/** The k of a link metric name (`map@10` → 10), or `fallback` when the name has none. */
export function metricK(metric: string, fallback = 10): number {
  const m = /@(\d+)$/.exec(metric);
  return m ? Number(m[1]) : fallback;
}

/** Target ids that exist at each tick: a sorted view of the target table's node times. */
export class TargetCandidates {
  /** Target node type. */
  readonly targetType: string;
  /** Target ids in node-time order. */
  readonly byTime: Int32Array;
  /** Node tick of `byTime[i]`. */
  readonly ticks: Int32Array;
  readonly #graph: GraphStore;

  /** Indexes the node times of `targetType`. */
  constructor(graph: GraphStore, targetType: string) {
    this.#graph = graph;
    this.targetType = targetType;
    const n = graph.numNodes(targetType);
    const time = new Int32Array(n);
    for (let i = 0; i < n; i++) time[i] = graph.nodeTime(targetType, i);
    const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) =>
      time[a] - time[b] || a - b
    );
    this.byTime = order;
    this.ticks = Int32Array.from(order, (i) => time[i]);
  }

  /** The tick of an anchor time (epoch seconds), as the sampler computes it. */
  tickOf(time: number): number {
    return seedTick(this.#graph.data, time);
  }

  /** How many targets exist at `tick` (node tick at or before it). */
  countAt(tick: number): number {
    let lo = 0, hi = this.ticks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ticks[mid] <= tick) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The targets that exist at anchor time `time`, ascending by id. */
  at(time: number): Int32Array {
    return this.byTime.slice(0, this.countAt(this.tickOf(time))).sort();
  }
}

/** One epoch of link training pairs (see the module doc). */
export interface LinkEpoch {
  /** Entity seeds in training order. */
  entities: Int32Array;
  /** Their anchor times. */
  times: Float64Array;
  /** The true target sets of the rows, in training order. */
  sets: Csr;
  /** Target seeds: per batch of `r` rows, the `r` positives then the `r` negatives. */
  targets: Int32Array;
  /** Anchor time of each target seed (its row's). */
  targetTimes: Float64Array;
  /** Rows per batch (the target loader takes `2 × batchSize`). */
  batchSize: number;
  /**
   * Log of the probability that a target is drawn as a column (half the columns are positives
   * drawn with the rows, half uniform negatives), per target id: the `ce` loss subtracts it
   * from every column's score (the logQ correction of sampled softmax), so the scores learn
   * an entity's preference including the target's popularity rather than divided by it.
   */
  logQ: Float32Array;
}

/** Options of {@link linkEpoch}. */
export interface LinkEpochOptions {
  /** Entity ids of the training rows. */
  entities: Int32Array;
  /** Anchor times of the training rows. */
  times: Float64Array;
  /** True target sets of the training rows (every set non-empty). */
  sets: Csr;
  /** Training order: row indices into the above. */
  order: Int32Array;
  /** Rows per batch. */
  batchSize: number;
  /** Draws of positives and negatives. */
  seed: number;
  /** The targets by existence time (negatives exist at their row's time). */
  candidates: TargetCandidates;
}

/** Draws one epoch's positives and negatives; see the module doc. */
export function linkEpoch(o: LinkEpochOptions): LinkEpoch {
  const n = o.order.length, B = o.batchSize;
  if (!Number.isInteger(B) || B < 1) fail("linkEpoch", `batchSize must be >= 1, got ${B}`);
  const rng = new Rng(o.seed);
  const entities = new Int32Array(n), times = new Float64Array(n);
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    const r = o.order[i];
    const len = o.sets.offsets[r + 1] - o.sets.offsets[r];
    if (len < 1) fail("linkEpoch", `training row ${r} has no true target`);
    offsets[i + 1] = offsets[i] + len;
  }
  const setTargets = new Int32Array(offsets[n]);
  for (let i = 0; i < n; i++) {
    const r = o.order[i];
    entities[i] = o.entities[r];
    times[i] = o.times[r];
    for (let j = o.sets.offsets[r], k = offsets[i]; j < o.sets.offsets[r + 1]; j++, k++) {
      setTargets[k] = o.sets.targets[j];
    }
  }
  const targets = new Int32Array(2 * n), targetTimes = new Float64Array(2 * n);
  const c = o.candidates;
  const m = c.byTime.length, q = new Float64Array(m).fill(0.5 / Math.max(1, m));
  for (let i = 0; i < n; i++) {
    const len = offsets[i + 1] - offsets[i];
    for (let j = offsets[i]; j < offsets[i + 1]; j++) {
      const t = setTargets[j];
      if (t < 0 || t >= m) fail("linkEpoch", `target ${t} is not a row of "${c.targetType}"`);
      q[t] += 0.5 / (n * len);
    }
  }
  const logQ = Float32Array.from(q, Math.log);
  for (let lo = 0; lo < n; lo += B) {
    const r = Math.min(B, n - lo), base = 2 * lo;
    for (let i = 0; i < r; i++) {
      const row = lo + i, len = offsets[row + 1] - offsets[row];
      const pos = setTargets[offsets[row] + Math.floor(rng.next() * len)];
      targets[base + i] = pos;
      targetTimes[base + i] = targetTimes[base + r + i] = times[row];
      // Uniform among the targets that exist at the row's time (the list is in time order).
      const alive = c.countAt(c.tickOf(times[row]));
      targets[base + r + i] = alive > 0 ? c.byTime[Math.floor(rng.next() * alive)] : pos;
    }
  }
  return {
    entities,
    times,
    sets: { offsets, targets: setTargets },
    targets,
    targetTimes,
    batchSize: B,
    logQ,
  };
}

/** The labels of one batch's `r × 2r` score matrix, for either loss. */
export interface LinkBatchLabels {
  /** Rows in the batch. */
  rows: number;
  /**
   * `ce`: added to the scores: minus the column's `logQ`, and a large negative on the other
   * true targets of the row (not negatives).
   */
  mask: Float32Array;
  /** `ce`: the column of each row's positive (its own row index). */
  classes: Int32Array;
  /** `bce`: 1 where the column's target is in the row's true set, else 0. */
  truth: Float32Array;
  /** History features of every pair, row-major `r × 2r × HISTORY_FEATURES` (`PastLinks`). */
  history: Float32Array;
}

/**
 * Labels of batch `b` of `epoch` (rows `b·B … b·B + r − 1`), and the history features of its
 * pairs from `past` (zero without it).
 */
export function linkBatchLabels(
  epoch: LinkEpoch,
  b: number,
  past: PastLinks | null = null,
): LinkBatchLabels {
  const B = epoch.batchSize, n = epoch.entities.length, lo = b * B;
  if (!Number.isInteger(b) || b < 0 || lo >= n) fail("linkBatchLabels", `no batch ${b}`);
  const r = Math.min(B, n - lo), cols = 2 * r;
  const cand = epoch.targets.subarray(2 * lo, 2 * lo + cols);
  const mask = new Float32Array(r * cols), truth = new Float32Array(r * cols);
  const classes = Int32Array.from({ length: r }, (_, i) => i);
  const history = new Float32Array(r * cols * HISTORY_FEATURES);
  const { offsets, targets } = epoch.sets;
  for (let i = 0; i < r; i++) {
    const row = lo + i, set = new Set<number>();
    if (past) {
      const own = past.of(epoch.entities[row], epoch.times[row]);
      for (let j = 0; j < cols; j++) {
        past.features(own, cand[j], history, (i * cols + j) * HISTORY_FEATURES);
      }
    }
    for (let j = offsets[row]; j < offsets[row + 1]; j++) set.add(targets[j]);
    for (let j = 0; j < cols; j++) {
      mask[i * cols + j] = -epoch.logQ[cand[j]];
      if (!set.has(cand[j])) continue;
      truth[i * cols + j] = 1;
      if (j !== i) mask[i * cols + j] = MASKED;
    }
  }
  return { rows: r, mask, classes, truth, history };
}

/**
 * The loss of a batch from its `r × 2r` pair scores (`LinkModel.pairScores`): `ce` (sampled
 * softmax against the row's own positive, logQ-corrected, other true targets masked) or
 * `bce` (every pair against its truth).
 */
export function linkLoss(scores: Tensor, labels: LinkBatchLabels, loss: LinkLoss): Tensor {
  const r = labels.rows;
  if (scores.shape[0] !== r || scores.shape[1] !== 2 * r) {
    fail("linkLoss", `scores are [${scores.shape}] for ${r} rows (expected [${r}, ${2 * r}])`);
  }
  const backend = scores.backend;
  if (loss === "ce") {
    const masked = add(scores, tensor(labels.mask, [r, 2 * r], { backend }));
    return crossEntropy(masked, tensor(labels.classes, [r], { backend, dtype: "i32" }));
  }
  if (loss === "bce") return bceWithLogits(scores, tensor(labels.truth, [r, 2 * r], { backend }));
  return fail("linkLoss", `unknown loss "${loss}"; valid: ce, bce`);
}

/** Row-major embeddings: `rows × dim`. */
export interface Embeddings {
  /** Values. */
  data: Float32Array;
  /** Columns. */
  dim: number;
}

/** Options of {@link rankLinks}. */
export interface RankLinksOptions {
  /** Entity embeddings, one row per ranked row. */
  entity: Embeddings;
  /** Anchor time of each row. */
  times: Float64Array;
  /** Embeds targets at a time (the target tower): `ids.length × dim`. */
  embedTargets: (ids: Int32Array, time: number) => Promise<Embeddings>;
  /** The targets by existence time. */
  candidates: TargetCandidates;
  /** Targets kept per row. */
  k: number;
  /** Backend of the score products. */
  backend: Backend;
  /** Score matrix elements per product (default 8M: 32 MiB of f32). */
  chunkElements?: number;
  /** The history term of the scores: past links of each row's entity and their weights. */
  history?: { past: PastLinks; entities: Int32Array; weights: ArrayLike<number> };
}

/** Ranked targets per row, best first, and their scores; see the module doc. */
export interface RankedLinks extends Csr {
  /** Offsets into `targets`, per row. */
  offsets: Int32Array;
  /** Target ids. */
  targets: Int32Array;
  /** Score of each ranked target. */
  scores: Float32Array;
}

/** Each row's top-k targets among those that exist at its anchor time. */
export async function rankLinks(o: RankLinksOptions): Promise<RankedLinks> {
  const n = o.times.length, d = o.entity.dim;
  if (o.entity.data.length !== n * d) {
    fail("rankLinks", `${o.entity.data.length} entity values for ${n} rows of ${d}`);
  }
  const byTime = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const list = byTime.get(o.times[i]);
    if (list) list.push(i);
    else byTime.set(o.times[i], [i]);
  }
  const lists: Int32Array[] = new Array(n), listScores: Float32Array[] = new Array(n);
  for (const [time, rows] of byTime) {
    const ids = o.candidates.at(time);
    if (ids.length === 0) {
      for (const i of rows) [lists[i], listScores[i]] = [new Int32Array(0), new Float32Array(0)];
      continue;
    }
    const t = await o.embedTargets(ids, time);
    if (t.dim !== d || t.data.length !== ids.length * d) {
      fail("rankLinks", `target embeddings are ${t.data.length} values of ${t.dim}, not ${d}`);
    }
    const m = ids.length;
    const chunk = Math.max(1, Math.floor((o.chunkElements ?? 8 << 20) / m));
    const targetT = tensor(t.data, [m, d], { backend: o.backend });
    try {
      for (let lo = 0; lo < rows.length; lo += chunk) {
        const part = rows.slice(lo, lo + chunk), c = part.length;
        const e = new Float32Array(c * d);
        part.forEach((row, j) => e.set(o.entity.data.subarray(row * d, (row + 1) * d), j * d));
        const s = noGrad(() =>
          scope(() => matmul(tensor(e, [c, d], { backend: o.backend }), targetT, { transB: true }))
        );
        const scores = (await s.data()) as Float32Array;
        s.dispose();
        if (o.history) addHistory(scores, part, ids, o.history, time);
        const top = rankTopK(scores, m, o.k);
        part.forEach((row, j) => {
          const a = top.offsets[j], b = top.offsets[j + 1];
          lists[row] = Int32Array.from(top.targets.subarray(a, b), (x) => ids[x]);
          listScores[row] = Float32Array.from(
            top.targets.subarray(a, b),
            (x) => scores[j * m + x],
          );
        });
      }
    } finally {
      targetT.dispose();
    }
  }
  return concatLists(lists, listScores);
}

/** Options of {@link rankEntities}. */
export interface RankEntitiesOptions {
  /** The link model. */
  model: LinkModel;
  /** Runs the model (eval mode) on seeds of a type at times: `ids.length × outWidth`. */
  score: (seedType: string, ids: Int32Array, times: Float64Array) => Promise<Float32Array>;
  /** Entities to rank for. */
  entities: Int32Array;
  /** Their anchor times. */
  times: Float64Array;
  /** The targets by existence time. */
  candidates: TargetCandidates;
  /** Past links (the history term), or null. */
  past: PastLinks | null;
  /** Targets kept per entity. */
  k: number;
  /** Backend of the score products. */
  backend: Backend;
}

/** Each entity's top-k targets by `model` (both towers and the history term) at its time. */
export async function rankEntities(o: RankEntitiesOptions): Promise<RankedLinks> {
  const spec = o.model.spec, dim = spec.outWidth;
  return rankLinks({
    entity: { data: await o.score(spec.seedType, o.entities, o.times), dim },
    times: o.times,
    embedTargets: async (ids, time) => ({
      data: await o.score(spec.targetType!, ids, new Float64Array(ids.length).fill(time)),
      dim,
    }),
    candidates: o.candidates,
    k: o.k,
    backend: o.backend,
    history: o.past
      ? { past: o.past, entities: o.entities, weights: await o.model.historyWeights() }
      : undefined,
  });
}

/** The table and foreign key column of a query's `LIST_DISTINCT` target, if it has one. */
export function listDistinctVia(
  q: ResolvedQuery | null | undefined,
): LinkVia | undefined {
  const t = q?.target;
  return t?.kind === "aggregate" && t.agg.agg === "LIST_DISTINCT" && t.agg.column
    ? { table: t.agg.table.name, column: t.agg.column.name, fk: t.agg.fk }
    : undefined;
}

/** The fact table of a link query, its foreign key to the target and (optionally) to the entity. */
export interface LinkVia {
  /** The fact table (`transactions`). */
  table: string;
  /** Its foreign key to the target table (`item_id`). */
  column: string;
  /** Its foreign key to the entity table (`user_id`; the query's `VIA` when it has several). */
  fk?: string;
}

/** Adds each row's history term to its scores against `ids` (in place). */
function addHistory(
  scores: Float32Array,
  rows: number[],
  ids: Int32Array,
  h: { past: PastLinks; entities: Int32Array; weights: ArrayLike<number> },
  time: number,
): void {
  const m = ids.length, f = new Float32Array(HISTORY_FEATURES);
  const col = new Map<number, number>();
  ids.forEach((id, c) => col.set(id, c));
  rows.forEach((row, j) => {
    const own = h.past.of(h.entities[row], time);
    for (const t of own.count.keys()) {
      const c = col.get(t);
      if (c === undefined) continue;
      h.past.features(own, t, f, 0);
      let v = 0;
      for (let k = 0; k < HISTORY_FEATURES; k++) v += h.weights[k] * f[k];
      scores[j * m + c] += v;
    }
  });
}

/** Per-row lists as CSR. */
function toCsr(lists: Int32Array[]): { offsets: Int32Array; targets: Int32Array } {
  const offsets = new Int32Array(lists.length + 1);
  lists.forEach((l, i) => offsets[i + 1] = offsets[i] + l.length);
  const targets = new Int32Array(offsets[lists.length]);
  lists.forEach((l, i) => targets.set(l, offsets[i]));
  return { offsets, targets };
}

function concatLists(lists: Int32Array[], scores: Float32Array[]): RankedLinks {
  const csr = toCsr(lists);
  const s = new Float32Array(csr.targets.length);
  scores.forEach((l, i) => s.set(l, csr.offsets[i]));
  return { ...csr, scores: s };
}

/** Where an entity's own past links are read: entity → fact rows → their target. */
export interface HistoryPath {
  /** Edge type from the entity to the fact rows (a reverse edge). */
  toFacts: string;
  /** Edge type from a fact row to its target (a forward edge). */
  toTarget: string;
}

/**
 * The graph path of an entity's past links to targets: the fact table `via` (the table of the
 * query's `LIST_DISTINCT` column, `column` the foreign key to the target, `fk` the one to the
 * entity) or, when not given, the first table with foreign keys to both the entity and the
 * target table. Null when none.
 */
export function historyPath(
  graph: GraphStore,
  entityType: string,
  targetType: string,
  via?: LinkVia,
): HistoryPath | null {
  const edges = graph.edgeTypes().map((e) => graph.edgeType(e));
  for (const up of edges) {
    if (up.direction !== "reverse" || up.src !== entityType) continue;
    if (via && (up.dst !== via.table || up.dstColumn === via.column)) continue;
    if (via?.fk !== undefined && up.dstColumn !== via.fk) continue;
    // Back out through another foreign key of the fact row (entity and target may be one type).
    const down = edges.find((e) =>
      e.direction === "forward" && e.src === up.dst && e.dst === targetType &&
      e.srcColumn !== up.dstColumn && (!via || e.srcColumn === via.column)
    );
    if (down) return { toFacts: up.name, toTarget: down.name };
  }
  return null;
}

/** An entity's past links: per target, how many and the tick of the latest. */
export interface OwnLinks {
  /** Link count per target. */
  count: Map<number, number>;
  /** Tick of the latest link per target. */
  last: Map<number, number>;
  /** The anchor tick they were read at. */
  tick: number;
}

/** Days over which the recency feature of a past link decays by e. */
export const RECENCY_DAYS = 30;

/**
 * Reads an entity's past links to targets (at or before an anchor time) along a
 * {@link HistoryPath}, and turns them into a pair's history features: `log(1 + links)` and
 * `exp(−days since the latest / RECENCY_DAYS)`, both 0 for a target never linked.
 */
export class PastLinks {
  readonly #graph: GraphStore;
  readonly #path: HistoryPath;

  /** Reads `path` in `graph`. */
  constructor(graph: GraphStore, path: HistoryPath) {
    this.#graph = graph;
    this.#path = path;
  }

  /** The links of `entity` at or before anchor time `time` (epoch seconds). */
  of(entity: number, time: number): OwnLinks {
    const g = this.#graph, tick = seedTick(g.data, time);
    const facts = g.neighbors(this.#path.toFacts, entity, tick);
    const count = new Map<number, number>(), last = new Map<number, number>();
    for (let f = 0; f < facts.ids.length; f++) {
      const t = g.neighbors(this.#path.toTarget, facts.ids[f]).ids;
      if (t.length === 0) continue;
      count.set(t[0], (count.get(t[0]) ?? 0) + 1);
      last.set(t[0], Math.max(last.get(t[0]) ?? -Infinity, facts.ticks[f]));
    }
    return { count, last, tick };
  }

  /** Writes the `HISTORY_FEATURES` of (entity, `target`) into `out` at `at`. */
  features(own: OwnLinks, target: number, out: Float32Array, at: number): void {
    const c = own.count.get(target);
    if (c === undefined) {
      out[at] = out[at + 1] = 0;
      return;
    }
    const days = Math.max(0, own.tick - own.last.get(target)!) * this.#graph.timeScale / 86400;
    out[at] = Math.log1p(c);
    out[at + 1] = Math.exp(-days / RECENCY_DAYS);
  }
}

/** Options of {@link historyRanking}. */
export interface HistoryRankingOptions {
  /** Path of the entity's links (see {@link historyPath}). */
  path: HistoryPath;
  /** Entity of each row. */
  entities: Int32Array;
  /** Anchor time of each row (links at or before it count). */
  times: Float64Array;
  /** Targets kept per row. */
  k: number;
  /** Fill-ins after the entity's own targets, best first (the popular targets). */
  popular: ArrayLike<number>;
}

/**
 * Per row: the targets the entity linked to at or before its anchor time, most links first
 * (then the most recent, then the lower id), then `popular` ones not already listed, up to k.
 */
export function historyRanking(graph: GraphStore, o: HistoryRankingOptions): Csr {
  const n = o.entities.length, past = new PastLinks(graph, o.path);
  const lists: Int32Array[] = [];
  for (let i = 0; i < n; i++) {
    const { count, last } = past.of(o.entities[i], o.times[i]);
    const own = [...count.keys()].sort((a, b) =>
      count.get(b)! - count.get(a)! || last.get(b)! - last.get(a)! || a - b
    ).slice(0, o.k);
    const seen = new Set(own);
    for (let j = 0; j < o.popular.length && own.length < o.k; j++) {
      if (!seen.has(o.popular[j])) own.push(o.popular[j]);
    }
    lists.push(Int32Array.from(own));
  }
  return toCsr(lists);
}
