/**
 * Fitting the column encoders of the feature store: which columns are
 * features, the SQL that reads each as a source value, and the statistics of
 * each encoder, computed by DuckDB aggregates over the rows at or before the
 * training cutoff only (rows of a table with a time column whose time is
 * `<=` the cutoff; every row of a static table), so that no statistic leaks
 * the future. Rows after the cutoff are still encoded and stored, with these
 * statistics.
 *
 * Not features: columns of semantic type "id", the primary key, foreign keys,
 * the time column (ages relative to the seed are computed at batch time from
 * the graph store's node times, so the row's own time is not stored),
 * `__row`, and the columns named in `exclude` (e.g. the column a static
 * predictive query's target is computed from, which would leak the label).
 *
 * @module
 */

import { quoteIdent, sqlString } from "../duck.ts";
import { didYouMean, listChoices } from "../messages.ts";
import type { ColumnArray } from "../columns.ts";
import { type ColumnSchema, ROW_COLUMN, type TableSchema } from "../types.ts";
import type { ColumnLayout, EncoderState } from "./format.ts";
import { encoderBlock, encoderWidth } from "./encoders.ts";

/** What fitting needs of a database (a subset of store/database.ts's `Database`). */
export interface FeatureSource {
  /** The resolved schema (`timeColumn` set for `time_from` tables). */
  readonly schema: { tables: TableSchema[] };
  /** Rows of a table. */
  rowCount(name: string): number;
  /** Runs SQL, rows as objects. */
  query(sql: string): Promise<Record<string, unknown>[]>;
  /** Runs SQL, columns as typed arrays. */
  columns(sql: string): Promise<Record<string, ColumnArray>>;
}

/** Options of {@link fitTable}. */
export interface FitOptions {
  /** Standardised numerical values are clipped to ±clip (default 5). */
  clip?: number;
  /** Minimum count (at or before the cutoff) for a category or item to get a code (default 2). */
  minCount?: number;
  /** Most categories or items kept per column, the most frequent (default 10,000). */
  maxVocab?: number;
  /** Most codes per row of a multicategorical column (default 8). */
  maxSlots?: number;
  /** Hashed n-gram buckets per text column (default 32). */
  textBuckets?: number;
  /** Character n-gram size of text columns (default 3). */
  ngram?: number;
  /** Columns that are not features, per table (e.g. what a static target is computed from). */
  exclude?: Record<string, string[]>;
}

/** A table's fitted encoders with the SQL reading each column's source values. */
export interface FittedTable {
  /** Table name. */
  table: string;
  /** Column layout (offsets within the blocks). */
  columns: ColumnLayout[];
  /** Per layout column, the SQL expression of its source value (over the table's columns). */
  sources: string[];
  /** Numerical values per row. */
  numWidth: number;
  /** Categorical codes per row. */
  catWidth: number;
  /** Vocabulary size of each categorical slot. */
  cardinality: number[];
}

/** Separator joining the items of a list column (DuckDB `VARCHAR[]`) into text. */
export const LIST_SEPARATOR = "\u001f";
const SEPARATORS = ["|", ";", ","] as const;
const TIMESTAMP_FEATURES = ["year", "month", "weekday", "day", "hour", "missing"];

/** The feature columns of a table, in schema order (see the module doc for what is left out). */
export function featureColumns(t: TableSchema, exclude: readonly string[] = []): ColumnSchema[] {
  const names = t.columns.map((c) => c.name);
  for (const x of exclude) {
    if (!names.includes(x)) {
      throw new Error(
        `exclude: table "${t.name}" has no column "${x}"; its columns: ` +
          `${listChoices(names)}${didYouMean(x, names)}`,
      );
    }
  }
  const keys = new Set([
    ...t.foreignKeys.map((f) => f.column),
    ...(t.primaryKey !== undefined ? [t.primaryKey] : []),
    ...(t.timeColumn !== undefined ? [t.timeColumn] : []),
    ROW_COLUMN,
    ...exclude,
  ]);
  return t.columns.filter((c) => c.stype !== "id" && !keys.has(c.name));
}

/** The SQL `WHERE` condition selecting a table's rows at or before `cutoff` (epoch seconds). */
export function cutoffCondition(t: TableSchema, cutoff: number): string {
  if (t.timeColumn === undefined) return "TRUE";
  const micros = Math.floor(cutoff * 1e6);
  return `${quoteIdent(t.timeColumn)} <= make_timestamp(CAST(${micros} AS BIGINT))`;
}

/**
 * The SQL expression reading a column as an encoder's source value, given
 * its DuckDB type: DOUBLE for numerical (dates, times and intervals as
 * seconds; text parsed, else null) and timestamp columns (epoch seconds),
 * VARCHAR for the others (a list's items joined with {@link LIST_SEPARATOR}).
 */
export function sourceExpr(c: ColumnSchema, duckType: string): string {
  const q = quoteIdent(c.name);
  const isList = duckType.endsWith("[]");
  const isTime = /^(DATE|TIMESTAMP|TIME|INTERVAL)/.test(duckType);
  switch (c.stype) {
    case "numerical":
      if (isTime) return `epoch(${q})`;
      if (duckType === "VARCHAR" || isList) return `TRY_CAST(CAST(${q} AS VARCHAR) AS DOUBLE)`;
      return `TRY_CAST(${q} AS DOUBLE)`;
    case "timestamp":
      if (isTime) return `epoch(${q})`;
      if (duckType === "VARCHAR") return `epoch(TRY_CAST(${q} AS TIMESTAMP))`;
      return `TRY_CAST(${q} AS DOUBLE)`;
    case "multicategorical":
      if (isList) return `array_to_string(${q}, ${sqlString(LIST_SEPARATOR)})`;
      return `CAST(${q} AS VARCHAR)`;
    default:
      return `CAST(${q} AS VARCHAR)`;
  }
}

/**
 * Fits the encoders of table `name` on its rows at or before `cutoff`
 * (epoch seconds) and lays out its row: columns in schema order, each at the
 * next free offset of its block.
 */
export async function fitTable(
  db: FeatureSource,
  name: string,
  cutoff: number,
  opts: FitOptions = {},
): Promise<FittedTable> {
  const t = db.schema.tables.find((x) => x.name === name);
  if (!t) throw new Error(`no table "${name}"`);
  const cols = featureColumns(t, opts.exclude?.[name] ?? []);
  const types = new Map(
    (await db.query(`DESCRIBE ${quoteIdent(name)}`)).map((
      r,
    ) => [String(r.column_name), String(r.column_type)]),
  );
  const sources = cols.map((c) => sourceExpr(c, types.get(c.name) ?? "VARCHAR"));
  const from = `(SELECT ${sources.map((s, i) => `${s} AS c${i}`).join(", ")}, ` +
    `${quoteIdent(ROW_COLUMN)} AS r FROM ${quoteIdent(name)} WHERE ${cutoffCondition(t, cutoff)})`;
  const moments = await fitMoments(db, cols, from);
  const states: EncoderState[] = [];
  for (const [i, c] of cols.entries()) {
    const v = `c${i}`;
    switch (c.stype) {
      case "numerical": {
        const [q1, med, q3] = moments.get(i) ?? [0, 0, 0];
        states.push({
          kind: "numerical",
          median: med,
          scale: robustScale(q1, q3),
          clip: opts.clip ?? 5,
        });
        break;
      }
      case "timestamp": {
        const [q1, med, q3, withHours] = moments.get(i) ?? [0, 0, 0, 0];
        states.push({
          kind: "timestamp",
          features: TIMESTAMP_FEATURES.filter((f) => f !== "hour" || withHours),
          yearCentre: med,
          yearScale: robustScale(q1, q3),
        });
        break;
      }
      case "categorical":
        states.push({
          kind: "categorical",
          vocab: await fitVocab(db, `SELECT ${v} AS item FROM ${from}`, opts),
          minCount: opts.minCount ?? 2,
        });
        break;
      case "multicategorical":
        states.push(await fitMulti(db, from, v, sourceIsList(types.get(c.name)), opts));
        break;
      case "text":
        states.push({ kind: "text", buckets: opts.textBuckets ?? 32, ngram: opts.ngram ?? 3 });
        break;
      default:
        throw new Error(`column "${c.name}": no encoder for semantic type "${c.stype}"`);
    }
  }
  const next = { num: 0, cat: 0 };
  const columns: ColumnLayout[] = cols.map((c, i) => {
    const encoder = states[i];
    const block = encoderBlock(encoder);
    const width = encoderWidth(encoder);
    const offset = next[block];
    next[block] += width;
    return { name: c.name, stype: c.stype, block, offset, width, encoder };
  });
  const cardinality: number[] = [];
  for (const c of columns) {
    if (c.encoder.kind === "categorical") cardinality.push(c.encoder.vocab.length + 1);
    if (c.encoder.kind === "multicategorical") {
      for (let k = 0; k < c.encoder.slots; k++) cardinality.push(c.encoder.vocab.length + 1);
    }
  }
  return { table: name, columns, sources, numWidth: next.num, catWidth: next.cat, cardinality };
}

/** IQR / 1.349 (the standard deviation of a normal distribution), 1 when zero or unknown. */
function robustScale(q1: number, q3: number): number {
  const s = (q3 - q1) / 1.349;
  return Number.isFinite(s) && s > 0 ? s : 1;
}

function sourceIsList(type: string | undefined): boolean {
  return type !== undefined && type.endsWith("[]");
}

/**
 * Quartiles of the numerical columns and of the timestamp columns' UTC
 * years (plus whether any timestamp has a time of day), in one scan.
 */
async function fitMoments(
  db: FeatureSource,
  cols: ColumnSchema[],
  from: string,
): Promise<Map<number, number[]>> {
  const aggs: string[] = [];
  const which: number[] = [];
  for (const [i, c] of cols.entries()) {
    const v = `c${i}`;
    if (c.stype === "numerical") {
      aggs.push(`quantile_cont(${v}, [0.25, 0.5, 0.75]) FILTER (WHERE isfinite(${v})) AS q${i}`);
    } else if (c.stype === "timestamp") {
      aggs.push(
        `quantile_cont(year(to_timestamp(${v})), [0.25, 0.5, 0.75]) ` +
          `FILTER (WHERE isfinite(${v})) AS q${i}`,
        `bool_or(${v} % 86400 <> 0) FILTER (WHERE isfinite(${v})) AS h${i}`,
      );
    } else continue;
    which.push(i);
  }
  const out = new Map<number, number[]>();
  if (aggs.length === 0) return out;
  const [row] = await db.query(`SELECT ${aggs.join(", ")} FROM ${from}`);
  for (const i of which) {
    const q = row[`q${i}`] as number[] | null;
    if (q === null) continue; // no finite value at or before the cutoff
    out.set(i, [...q.map(Number), row[`h${i}`] ? 1 : 0]);
  }
  return out;
}

/** The vocabulary of the non-null, non-empty `item`s of `items`: frequency cut, most frequent first. */
async function fitVocab(db: FeatureSource, items: string, opts: FitOptions): Promise<string[]> {
  const minCount = opts.minCount ?? 2;
  const maxVocab = opts.maxVocab ?? 10_000;
  const rows = await db.query(
    `SELECT item, count(*) AS n FROM (${items}) WHERE item IS NOT NULL AND item <> '' ` +
      `GROUP BY item HAVING count(*) >= ${minCount} ORDER BY n DESC, item LIMIT ${maxVocab}`,
  );
  return rows.map((r) => String(r.item));
}

async function fitMulti(
  db: FeatureSource,
  from: string,
  v: string,
  isList: boolean,
  opts: FitOptions,
): Promise<EncoderState> {
  let separator: string = LIST_SEPARATOR;
  if (!isList) {
    const counts = SEPARATORS.map((s, j) =>
      `count(*) FILTER (WHERE contains(${v}, ${sqlString(s)})) AS s${j}`
    );
    const [row] = await db.query(`SELECT ${counts.join(", ")} FROM ${from}`);
    let best = 0;
    SEPARATORS.forEach((_, j) => {
      if (Number(row[`s${j}`]) > Number(row[`s${best}`])) best = j;
    });
    separator = SEPARATORS[best];
  }
  const items = `SELECT r, trim(unnest(string_split(${v}, ${sqlString(separator)}))) AS item ` +
    `FROM ${from} WHERE ${v} IS NOT NULL`;
  const vocab = await fitVocab(db, items, opts);
  const [row] = await db.query(
    `SELECT max(k) AS k FROM (SELECT count(*) AS k FROM (${items}) WHERE item <> '' GROUP BY r)`,
  );
  const most = Number(row.k ?? 1);
  const slots = Math.max(1, Math.min(opts.maxSlots ?? 8, most));
  return { kind: "multicategorical", vocab, separator, slots };
}
