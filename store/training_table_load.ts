/**
 * Training tables supplied by the user: a CSV or Parquet file with the
 * entity key, an anchor time, a label and optionally a split column, plus the
 * task type. The file is read by the database's DuckDB and checked; every
 * problem is reported with its count and up to five examples (data row
 * numbers, 1-based, and values).
 *
 * - keys are matched to the entity table's primary key (cast to its type);
 * - anchor times are read like time columns of the schema (store/times.ts);
 * - labels: binary 0/1 (also true/false), regression any finite number,
 *   multiclass any non-empty value (classes sorted, numerically when all are
 *   numbers), link the key of a row of `targetTable` (one file row per
 *   (entity, anchor, target); rows are grouped into CSR);
 * - split: `train`/`val`/`test` (also `valid`, `validation`, or 0/1/2).
 *   Without a split column: by `valCutoff`/`testCutoff` when both are given
 *   (anchor >= test cutoff is test, >= val cutoff validation); else, when
 *   there are at least three distinct anchor times, the latest is test and
 *   the one before validation; else a seeded random 80/10/10 split of rows.
 *
 * Rows come back ordered by split, anchor, entity (then target).
 *
 * @module
 */

import { Split, type TaskType, type TrainingTable } from "./types.ts";
import { fileKind, readerSql } from "./duck.ts";
import { timeExpr } from "./times.ts";
import { didYouMean, listChoices } from "./messages.ts";
import { ident, sqlString } from "./pql/compile.ts";
import { parseTime } from "./pql/time.ts";
import {
  mulberry32,
  packRows,
  type ResultColumn,
  type SqlDatabase,
  type TimeInput,
} from "./training_table.ts";

/** Options of {@link loadTrainingTable}. */
export interface LoadTrainingTableOptions {
  /** Entity table (its primary key is what the key column holds). */
  entityTable: string;
  /** File column with entity keys; default: the entity table's primary key name. */
  keyColumn?: string;
  /** File column with anchor times. */
  timeColumn: string;
  /** File column with labels (for link tasks: keys of `targetTable`). */
  labelColumn: string;
  /** File column with the split of each row. */
  splitColumn?: string;
  /** Task type. */
  task: TaskType;
  /** Link tasks: the table the labels are keys of. */
  targetTable?: string;
  /** Without a split column: the validation cutoff (with `testCutoff`). */
  valCutoff?: TimeInput;
  /** Without a split column: the test cutoff (with `valCutoff`). */
  testCutoff?: TimeInput;
  /** Seed of the random split (default 0). */
  seed?: number;
}

const TASKS: readonly TaskType[] = ["binary", "regression", "multiclass", "link"];

const SPLIT_SQL = (c: string) =>
  `CASE lower(trim(CAST(${c} AS VARCHAR))) WHEN 'train' THEN 0 WHEN '0' THEN 0 ` +
  `WHEN 'val' THEN 1 WHEN 'valid' THEN 1 WHEN 'validation' THEN 1 WHEN '1' THEN 1 ` +
  `WHEN 'test' THEN 2 WHEN '2' THEN 2 END`;

/** Reads and checks a training table file (see the module doc); throws `Error` naming every problem. */
export async function loadTrainingTable(
  db: SqlDatabase,
  path: string,
  opts: LoadTrainingTableOptions,
): Promise<TrainingTable> {
  const where = `training table ${path}`;
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  if (!TASKS.includes(opts.task)) {
    fail(`unknown task "${opts.task}"; valid: ${TASKS.join(", ")}${didYouMean(opts.task, TASKS)}`);
  }
  const tableNames = db.schema.tables.map((t) => t.name);
  const findTable = (name: string, what: string) => {
    const t = db.schema.tables.find((x) => x.name === name);
    if (!t) {
      fail(
        `unknown ${what} "${name}"; tables: ${listChoices(tableNames)}${
          didYouMean(name, tableNames)
        }`,
      );
    }
    if (!t!.primaryKey) fail(`${what} "${name}" has no primary key`);
    return t!;
  };
  const entity = findTable(opts.entityTable, "entity table");
  let target;
  if (opts.task === "link") {
    if (!opts.targetTable) fail(`link tasks need targetTable (the table the labels are keys of)`);
    target = findTable(opts.targetTable!, "target table");
  } else if (opts.targetTable) fail(`targetTable is only for link tasks, not ${opts.task}`);
  if (fileKind(path) === null) fail("not a CSV or Parquet file (by its extension)");
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) fail("not a file");
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) fail("file not found");
    throw e;
  }
  const reader = readerSql(path);
  const described = await db.query(`DESCRIBE SELECT * FROM ${reader}`);
  const types = new Map(described.map((r) => [String(r.column_name), String(r.column_type)]));
  const names = [...types.keys()];
  const need: [string, string | undefined][] = [
    ["keyColumn", opts.keyColumn ?? entity.primaryKey],
    ["timeColumn", opts.timeColumn],
    ["labelColumn", opts.labelColumn],
  ];
  if (opts.splitColumn !== undefined) need.push(["splitColumn", opts.splitColumn]);
  const missing = need.filter(([, c]) => c === undefined || !types.has(c)).map(([o, c]) =>
    `${o} "${c}" is not a column of the file${didYouMean(String(c), names)}`
  );
  if (missing.length) fail(`${missing.join("; ")}; columns: ${listChoices(names)}`);
  const [keyCol, timeCol, labelCol] = need.map(([, c]) => c!);
  const pkType = async (table: string, pk: string) => {
    const d = await db.query(`DESCRIBE SELECT ${ident(pk)} FROM ${ident(table)}`);
    return String(d[0].column_type);
  };
  // Multiclass labels keep the file's text ("1", not "1.0").
  const typedReader = opts.task === "multiclass" && fileKind(path) === "csv"
    ? readerSql(path, { types: { [labelCol]: "VARCHAR" } })
    : reader;
  const time = timeExpr(timeCol, types.get(timeCol)!);
  if (!time) fail(`time column "${timeCol}" has type ${types.get(timeCol)}, which holds no times`);
  const l = `f.${ident(labelCol)}`;
  const labelSql: Record<TaskType, string> = {
    binary: `CASE lower(trim(CAST(${l} AS VARCHAR))) WHEN 'true' THEN 1.0 WHEN 'false' THEN 0.0 ` +
      `ELSE TRY_CAST(${l} AS DOUBLE) END`,
    regression: `TRY_CAST(${l} AS DOUBLE)`,
    multiclass: `NULLIF(trim(CAST(${l} AS VARCHAR)), '')`,
    link: "p.__row",
  };
  let joins = `LEFT JOIN ${ident(entity.name)} e ON e.${ident(entity.primaryKey!)} = ` +
    `TRY_CAST(f.${ident(keyCol)} AS ${await pkType(entity.name, entity.primaryKey!)})`;
  if (target) {
    joins += ` LEFT JOIN ${ident(target.name)} p ON p.${ident(target.primaryKey!)} = ` +
      `TRY_CAST(${l} AS ${await pkType(target.name, target.primaryKey!)})`;
  }
  const s = opts.splitColumn !== undefined ? SPLIT_SQL(`f.${ident(opts.splitColumn)}`) : "0";
  const staged =
    `(SELECT f.__rn AS rn, e.__row AS entity, ${
      time!.replaceAll(ident(timeCol), `f.${ident(timeCol)}`)
    } AS t, ` +
    `${labelSql[opts.task]} AS label, ${s} AS split, CAST(f.${
      ident(keyCol)
    } AS VARCHAR) AS raw_key, ` +
    `CAST(f.${ident(timeCol)} AS VARCHAR) AS raw_time, CAST(${l} AS VARCHAR) AS raw_label, ` +
    `${
      opts.splitColumn !== undefined ? `CAST(f.${ident(opts.splitColumn)} AS VARCHAR)` : "NULL"
    } AS raw_split ` +
    `FROM (SELECT row_number() OVER () AS __rn, * FROM ${typedReader}) f ${joins})`;
  const badLabel = opts.task === "binary"
    ? "label IS NULL OR label NOT IN (0, 1)"
    : opts.task === "regression"
    ? "label IS NULL OR isnan(label) OR isinf(label)"
    : "label IS NULL";
  const checks: [string, string, string][] = [
    ["entity IS NULL", "raw_key", `keys not found in ${entity.name}.${entity.primaryKey}`],
    ["t IS NULL", "raw_time", "anchor times missing or unreadable"],
    [
      badLabel,
      "raw_label",
      opts.task === "link"
        ? `labels that are not keys of ${target!.name}.${target!.primaryKey}`
        : opts.task === "binary"
        ? "labels that are not 0/1 or true/false"
        : opts.task === "regression"
        ? "labels that are not finite numbers"
        : "labels missing",
    ],
    ["split IS NULL", "raw_split", "splits that are not train/val/test or 0/1/2"],
  ];
  const sel = checks.map(([cond, raw], i) =>
    `count(*) FILTER (WHERE ${cond}) AS n${i}, ` +
    `(list('row ' || rn || ': ' || coalesce(${sqlString('"')} || ${raw} || ${
      sqlString('"')
    }, 'empty') ` +
    `ORDER BY rn) FILTER (WHERE ${cond}))[1:5] AS ex${i}`
  );
  const [stats] = await db.query(`SELECT count(*) AS rows, ${sel.join(", ")} FROM ${staged}`);
  if (Number(stats.rows) === 0) fail("the file has no rows");
  const problems: string[] = [];
  checks.forEach(([, , what], i) => {
    const n = Number(stats[`n${i}`]);
    if (n > 0) problems.push(`${n} ${what} (${(stats[`ex${i}`] as string[]).join(", ")})`);
  });
  if (problems.length) fail(problems.join("; "));
  const cols = await db.columns(
    `SELECT entity::INTEGER AS entity, (epoch_us(t) / 1e6)::DOUBLE AS anchor, split::INTEGER ` +
      `AS split, ${opts.task === "link" ? "label::INTEGER AS target" : "label"} FROM ${staged} ` +
      `ORDER BY anchor, entity${opts.task === "link" ? ", target" : ""}, rn`,
  );
  const anchor = cols.anchor as Float64Array;
  const n = anchor.length;
  let split: Uint8Array = Uint8Array.from(cols.split as ArrayLike<number>);
  if (opts.splitColumn === undefined) split = assignSplits(anchor, opts, fail);
  const perm = Array.from({ length: n }, (_, i) => i).sort((a, b) => split[a] - split[b] || a - b);
  const permuted: Record<string, ResultColumn> = {
    split: Float64Array.from(perm, (i) => split[i]),
  };
  for (const [k, v] of Object.entries(cols)) {
    if (k === "split") continue;
    permuted[k] = Array.isArray(v) ? perm.map((i) => v[i]) : Float64Array.from(perm, (i) => v[i]);
  }
  return packRows(opts.task, entity.name, permuted, target?.name);
}

/** Splits without a split column (see the module doc). */
function assignSplits(
  anchor: Float64Array,
  opts: LoadTrainingTableOptions,
  fail: (msg: string) => never,
): Uint8Array {
  const n = anchor.length;
  const split = new Uint8Array(n);
  if ((opts.valCutoff === undefined) !== (opts.testCutoff === undefined)) {
    fail("give both valCutoff and testCutoff, or neither");
  }
  let vc: number, tc: number;
  if (opts.valCutoff !== undefined) {
    vc = parseTime(opts.valCutoff, "valCutoff");
    tc = parseTime(opts.testCutoff!, "testCutoff");
    if (!(vc < tc)) fail("valCutoff must be before testCutoff");
  } else {
    const times = [...new Set(anchor)].sort((a, b) => a - b);
    if (times.length < 3) {
      const rand = mulberry32(opts.seed ?? 0);
      for (let i = 0; i < n; i++) {
        const r = rand();
        split[i] = r < 0.8 ? Split.Train : r < 0.9 ? Split.Val : Split.Test;
      }
      return split;
    }
    tc = times[times.length - 1];
    vc = times[times.length - 2];
  }
  for (let i = 0; i < n; i++) {
    split[i] = anchor[i] >= tc ? Split.Test : anchor[i] >= vc ? Split.Val : Split.Train;
  }
  return split;
}
