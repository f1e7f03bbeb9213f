/**
 * `fanout predict`: scores entities with a trained run's model, at a given
 * time, with exactly the sampler settings, feature store and output scaling
 * the model was trained with (all read from the run directory and its
 * checkpoint), so training and scoring cannot drift apart.
 *
 * ```ts
 * const r = await predict({ run: "out/run", backend, at: "2024-12-01", out: "preds.csv" });
 * ```
 *
 * Which entities: the given primary keys, or every row of the entity table
 * that exists at the scoring time (its time, when the table has one, at or
 * before it) and passes the query's `WHERE` filter (its aggregates computed
 * at the scoring time). The scoring time defaults to the latest time in the
 * database.
 *
 * Output columns: the entity's primary key (named as in the schema),
 * `anchor_time` (ISO 8601, UTC), then `probability` (binary), `prediction`
 * (regression), or `class` and one `p_<class>` per class (multiclass). Link
 * prediction writes k rows per entity, best first: `rank` (1 = best),
 * `target_<target primary key>` and `score`, ranking the targets that exist
 * at the scoring time exactly as training's validation did. A path ending in
 * `.parquet` is written by DuckDB's `COPY`; anything else is CSV.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { FeatureReader } from "../store/features/reader.ts";
import { openManifest } from "../store/features/manifest.ts";
import { seedTick } from "../store/ticks.ts";
import { parseTime } from "../store/pql/time.ts";
import type { TimeInput } from "../store/training_table.ts";
import { compileSampling } from "../sampler/config.ts";
import { defaultWorkers, SamplerPool } from "../sampler/pool.ts";
import { buildGraphModel } from "./gnn.ts";
import { hasCheckpoint, loadCheckpoint, manifestHash } from "./checkpoint.ts";
import { openRunData, runPaths } from "./train_setup.ts";
import { scoreSeeds, toPredictions } from "./scoring.ts";
import type { JobRecord } from "./train_types.ts";
import { argmaxRows } from "./metrics.ts";
import type { Database } from "../store/database.ts";
import { compileEntityFilter } from "../store/pql/compile.ts";
import { resolveQuery } from "../store/pql/semantic.ts";
import { historyPath, listDistinctVia, PastLinks, rankEntities, TargetCandidates } from "./link.ts";
import { asLinkModel } from "./train_link.ts";

/** What to score. */
export interface PredictJob {
  /** A training run's output directory. */
  run: string;
  /** Where tensors live. */
  backend: Backend;
  /** Which checkpoint (default "best"). */
  checkpoint?: "best" | "last";
  /** Scoring time (epoch seconds, Date or ISO text); default the latest time in the database. */
  at?: TimeInput;
  /** Primary keys of the entities to score; default every entity existing at `at`. */
  entities?: (string | number)[];
  /** Output file (`.csv` or `.parquet`); none written when omitted. */
  out?: string;
  /** Seeds per batch (default: the training batch size). */
  batchSize?: number;
  /** Sampler workers (default `defaultWorkers()`). */
  workers?: number;
  /** Link prediction: targets per entity (default the metric's k the model was trained with). */
  k?: number;
  /** Log lines. */
  onLog?: (message: string) => void;
}

/** What `predict` returns. */
export interface PredictResult {
  /** Entity primary keys, in output order. */
  keys: (string | number)[];
  /** The scoring time, epoch seconds. */
  at: number;
  /** Output column names after the key and the time. */
  columns: string[];
  /** Values, row-major `keys.length × columns.length` (multiclass `class` is the class index). */
  values: Float64Array;
  /** Link prediction: the target's primary key of each output row (`keys` repeats per rank). */
  targets?: (string | number)[];
  /** The file written, if any. */
  out?: string;
  /** Seconds spent scoring (sampling, gathering and the model). */
  scoringSeconds: number;
}

function csvField(v: string | number): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Scores entities with a trained run; see the module doc. */
export async function predict(job: PredictJob): Promise<PredictResult> {
  const log = job.onLog ?? (() => {});
  const paths = runPaths(job.run);
  const which = job.checkpoint ?? "best";
  const ckDir = which === "best" ? paths.best : paths.last;
  if (!await hasCheckpoint(ckDir)) {
    throw new Error(`${ckDir}: no checkpoint (train first: fanout train --out ${paths.out})`);
  }
  const record: JobRecord = JSON.parse(await Deno.readTextFile(paths.job));
  const ck = await loadCheckpoint(ckDir);
  const { db, graph } = await openRunData(record, log);
  let pool: SamplerPool | null = null;
  let reader: FeatureReader | null = null;
  try {
    const manifest = await openManifest(paths.features);
    if (await manifestHash(JSON.stringify(manifest)) !== ck.features.manifestHash) {
      throw new Error(`${paths.features} is not the feature store ${ckDir} was trained with`);
    }
    reader = await FeatureReader.open(paths.features, { cacheBytes: 256 << 20 });
    const s = ck.sampler;
    const sampling = compileSampling(graph, s.numNeighbors as never, s.strategy as never);
    pool = await SamplerPool.create({
      graph,
      config: sampling,
      workers: job.workers ?? defaultWorkers(),
    });
    const model = buildGraphModel(ck.spec, { backend: job.backend });
    await model.loadStateDict(ck.weights);

    // Scoring time and entities.
    let at: number;
    if (job.at !== undefined) at = parseTime(job.at, "--at");
    else {
      const range = db.timeRange();
      at = range ? range.max : 0;
    }
    const type = s.seedType;
    let ids: Int32Array;
    if (job.entities) {
      const missing: string[] = [];
      ids = Int32Array.from(job.entities, (k) => {
        const id = graph.idOf(type, k);
        if (id < 0) missing.push(String(k));
        return id;
      });
      if (missing.length) {
        throw new Error(
          `${missing.length} key(s) not in table "${type}": ${missing.slice(0, 5).join(", ")}` +
            (missing.length > 5 ? ", …" : ""),
        );
      }
    } else if (record.query) {
      const q = resolveQuery(record.query, db.schema);
      const rows = await db.query(compileEntityFilter(q, at));
      ids = Int32Array.from(rows, (r) => Number(r.entity));
      if (q.where) log(`${ids.length} "${type}" entities pass the query's WHERE filter`);
    } else {
      const tick = seedTick(graph.data, at), n = graph.numNodes(type), list: number[] = [];
      for (let i = 0; i < n; i++) if (graph.nodeTime(type, i) <= tick) list.push(i);
      ids = Int32Array.from(list);
    }
    const times = new Float64Array(ids.length).fill(at);
    log(
      `scoring ${ids.length} "${type}" entities at ${new Date(at * 1000).toISOString()} with ` +
        `${ckDir}`,
    );
    const t0 = performance.now();
    const score = (seedType: string, seeds: Int32Array, seedTimes: Float64Array) =>
      scoreSeeds(
        model,
        pool!,
        reader!,
        job.backend,
        graph,
        seedType,
        seeds,
        seedTimes,
        job.batchSize ?? s.batchSize,
        s.randomSeed,
      );
    const o = ck.output;
    if (o.task === "link") {
      const query = record.query ? resolveQuery(record.query, db.schema) : null;
      const path = historyPath(graph, type, ck.spec.targetType!, listDistinctVia(query));
      const ranked = await rankEntities({
        model: asLinkModel(model),
        score,
        entities: ids,
        times,
        candidates: new TargetCandidates(graph, ck.spec.targetType!),
        past: path ? new PastLinks(graph, path) : null,
        k: job.k ?? o.k ?? 10,
        backend: job.backend,
      });
      const scoringSeconds = (performance.now() - t0) / 1000;
      model.dispose();
      const targetType = ck.spec.targetType!;
      const keys: (string | number)[] = [], targets: (string | number)[] = [];
      const values = new Float64Array(ranked.targets.length * 2);
      for (let i = 0; i < ids.length; i++) {
        const key = graph.keyOf(type, ids[i]);
        for (let j = ranked.offsets[i], r = 1; j < ranked.offsets[i + 1]; j++, r++) {
          keys.push(key);
          targets.push(graph.keyOf(targetType, ranked.targets[j]));
          values[2 * j] = r;
          values[2 * j + 1] = ranked.scores[j];
        }
      }
      const result: PredictResult = {
        keys,
        at,
        columns: ["rank", "score"],
        values,
        targets,
        scoringSeconds,
      };
      if (job.out) {
        const keyName = db.table(type).primaryKey ?? "entity";
        const targetName = `target_${db.table(targetType).primaryKey ?? "id"}`;
        const iso = new Date(at * 1000).toISOString();
        const lines = [
          [keyName, "anchor_time", "rank", targetName, "score"].map(csvField).join(","),
        ];
        for (let i = 0; i < keys.length; i++) {
          lines.push(
            [keys[i], iso, values[2 * i], targets[i], Number(values[2 * i + 1].toPrecision(7))]
              .map(csvField).join(","),
          );
        }
        await writeTable(db, job.out, lines.join("\n") + "\n", keyName, keys);
        result.out = job.out;
        log(`wrote ${keys.length} rows (${ids.length} entities × top ${o.k ?? 10}) to ${job.out}`);
      }
      return result;
    }
    const raw = await score(type, ids, times);
    const scoringSeconds = (performance.now() - t0) / 1000;
    const preds = toPredictions(raw, ck.output);
    model.dispose();

    // Columns.
    const n = ids.length;
    let columns: string[], values: Float64Array;
    if (o.task === "binary" || o.task === "regression") {
      columns = [o.task === "binary" ? "probability" : "prediction"];
      values = Float64Array.from(preds);
    } else {
      const names = o.classNames ?? Array.from({ length: o.classes }, (_, c) => String(c));
      columns = ["class", ...names.map((c) => `p_${c}`)];
      const arg = argmaxRows(preds, o.classes);
      values = new Float64Array(n * columns.length);
      for (let i = 0; i < n; i++) {
        values[i * columns.length] = arg[i];
        for (let c = 0; c < o.classes; c++) {
          values[i * columns.length + 1 + c] = preds[i * o.classes + c];
        }
      }
    }
    const keys = Array.from(ids, (id) => graph.keyOf(type, id));
    const result: PredictResult = { keys, at, columns, values, scoringSeconds };

    if (job.out) {
      const keyName = db.table(type).primaryKey ?? "entity";
      const iso = new Date(at * 1000).toISOString();
      const w = columns.length;
      const lines = [[keyName, "anchor_time", ...columns].map(csvField).join(",")];
      const classNames = o.classNames;
      for (let i = 0; i < n; i++) {
        const row: (string | number)[] = [keys[i], iso];
        for (let j = 0; j < w; j++) {
          const v = values[i * w + j];
          row.push(
            j === 0 && o.task === "multiclass" ? (classNames?.[v] ?? v) : Number(v.toPrecision(7)),
          );
        }
        lines.push(row.map(csvField).join(","));
      }
      await writeTable(db, job.out, lines.join("\n") + "\n", keyName, keys);
      result.out = job.out;
      log(`wrote ${n} rows to ${job.out}`);
    }
    return result;
  } finally {
    pool?.close();
    reader?.close();
    db.close();
  }
}

/**
 * Writes CSV text to `out` atomically (a temporary file renamed), or as Parquet through
 * DuckDB when `out` ends in `.parquet` (the key column typed from `keys`).
 */
async function writeTable(
  db: Database,
  out: string,
  text: string,
  keyName: string,
  keys: (string | number)[],
): Promise<void> {
  if (out.toLowerCase().endsWith(".parquet")) {
    const tmp = `${out}.tmp-${crypto.randomUUID().slice(0, 8)}.csv`;
    await Deno.writeTextFile(tmp, text);
    try {
      const q = (p: string) => `'${p.replaceAll("'", "''")}'`;
      const keyType = keys.every((k) => Number.isInteger(k))
        ? "BIGINT"
        : typeof keys[0] === "number"
        ? "DOUBLE"
        : "VARCHAR";
      await db.query(
        `COPY (SELECT * FROM read_csv(${q(tmp)}, header = true, ` +
          `types = {${q(keyName)}: '${keyType}'})) TO ${q(out)} (FORMAT parquet)`,
      );
    } finally {
      await Deno.remove(tmp).catch(() => {});
    }
  } else {
    const tmp = `${out}.tmp-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, out);
  }
}
