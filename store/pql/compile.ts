/**
 * Compiles a resolved predictive query and a list of anchor times into one
 * DuckDB SQL statement that produces the training rows.
 *
 * Output columns, ordered by `split, anchor, entity` (then `target`):
 * - `entity` INTEGER: the entity's dense id (`__row`);
 * - `anchor` DOUBLE: the anchor time, epoch seconds;
 * - `split` INTEGER: the split given with the anchor;
 * - `label`: DOUBLE (binary 0/1, regression value) or VARCHAR (multiclass
 *   class name) — absent for link tasks, which instead have
 *   - `target` INTEGER: one row per distinct target dense id;
 * - `etime` DOUBLE (static targets on a table with a time column only): the
 *   entity's own time, epoch seconds (NULL when missing).
 *
 * Semantics (see also semantic.ts):
 * - an aggregate of entity `e` at anchor `a` runs over the rows `r` of its
 *   table with `r.fk = e.key` and `a + start < r.time <= a + end` (days and
 *   hours exactly, months as calendar months with the day clamped to the end
 *   of the month, like DuckDB's `TIMESTAMP + INTERVAL`), after the row filter;
 * - `COUNT`, `COUNT_DISTINCT` and `SUM` over no rows are 0; `AVG`, `MIN`,
 *   `MAX`, `FIRST`, `LAST` over no rows are missing, and a row whose label is
 *   missing (also a static target whose value is NULL, or a comparison of a
 *   missing value) is dropped; `LIST_DISTINCT` with no targets drops the row;
 * - NULL values are skipped by every aggregate; `FIRST` / `LAST` take the
 *   non-NULL value of the earliest / latest row by time, ties broken by file
 *   order (`__row`: the lowest for FIRST, the highest for LAST);
 * - a comparison involving a missing value is false (two-valued logic:
 *   `NOT (x > 3)` holds when `x` is NULL); numeric comparisons read both
 *   sides as numbers (`TRY_CAST(... AS DOUBLE)`), text comparisons compare
 *   `CAST(... AS VARCHAR)` with the string;
 * - for window targets an entity appears at an anchor only if it exists then
 *   (its time, when its table has one, is `<=` the anchor); static targets
 *   take every entity.
 *
 * Cost: anchors come from one `unnest` CTE; each aggregate is one range join
 * of its table against the anchors' windows, grouped by (anchor, entity), so
 * its work grows with the rows × the windows each row falls in (about one
 * when the step equals the window length); the entities × anchors grid is
 * LEFT JOINed to the aggregates on one struct key. Measured on 2 busy cores,
 * 100k entities, 1M rows: 100 anchors take 1–7 s; 1000 anchors with a 30-day
 * filter window overlapping 40-fold (21M output rows) about a minute.
 *
 * @module
 */

import { ROW_COLUMN } from "../types.ts";
import type { ResolvedAggregate, ResolvedCond, ResolvedQuery } from "./semantic.ts";
import type { TimeUnit } from "./ast.ts";
import { UNIT_US } from "./time.ts";

/** One anchor: time in epoch seconds and the split its rows belong to. */
export interface Anchor {
  /** Anchor time, epoch seconds (rounded to microseconds). */
  time: number;
  /** Split id (0 train, 1 val, 2 test), copied to the output. */
  split: number;
}

/** Quotes an SQL identifier. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quotes an SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** A finite number as an SQL DOUBLE literal. */
export function sqlNumber(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`not a finite number: ${x}`);
  return `(${x})::DOUBLE`;
}

/** SQL for `anchor + offset unit` as a TIMESTAMP (anchor columns `a_us`, `a_ts`). */
function bound(offset: number, unit: TimeUnit): string {
  if (unit === "months") return offset === 0 ? "a_ts" : `a_ts + to_months(${offset})`;
  const us = Math.round(offset * UNIT_US[unit]);
  return us === 0 ? "a_ts" : `make_timestamp(a_us + (${us})::BIGINT)`;
}

/** Value of aggregate `g` as joined in the final query (0 for empty counts and sums). */
function aggValue(g: ResolvedAggregate): string {
  const v = `g${g.id}.v`;
  return g.agg === "COUNT" || g.agg === "COUNT_DISTINCT" || g.agg === "SUM"
    ? `COALESCE(${v}, 0)`
    : v;
}

/** The aggregate expression over rows `t` (time column quoted in `time`). */
function aggExpr(g: ResolvedAggregate): string {
  const col = g.column ? `t.${ident(g.column.name)}` : "";
  const time = `t.${ident(g.timeColumn)}`;
  const row = `t.${ident(ROW_COLUMN)}`;
  switch (g.agg) {
    case "COUNT":
      return col ? `count(${col})` : "count(*)";
    case "COUNT_DISTINCT":
      return `count(DISTINCT ${col})`;
    case "SUM":
      return `sum(TRY_CAST(${col} AS DOUBLE))`;
    case "AVG":
      return `avg(TRY_CAST(${col} AS DOUBLE))`;
    case "MIN":
      return `min(TRY_CAST(${col} AS DOUBLE))`;
    case "MAX":
      return `max(TRY_CAST(${col} AS DOUBLE))`;
    case "FIRST":
      return `first(${col} ORDER BY ${time} ASC, ${row} ASC) FILTER (WHERE ${col} IS NOT NULL)`;
    case "LAST":
      return `first(${col} ORDER BY ${time} DESC, ${row} DESC) FILTER (WHERE ${col} IS NOT NULL)`;
    case "LIST_DISTINCT":
      throw new Error("LIST_DISTINCT is not a scalar aggregate");
  }
}

/** SQL of a condition; `alias` is the table alias its columns belong to. */
function condSql(c: ResolvedCond, alias: string): string {
  switch (c.kind) {
    case "and":
      return `(${condSql(c.left, alias)} AND ${condSql(c.right, alias)})`;
    case "or":
      return `(${condSql(c.left, alias)} OR ${condSql(c.right, alias)})`;
    case "not":
      return `(NOT ${condSql(c.expr, alias)})`;
    case "isnull":
      return `(${alias}.${ident(c.column.name)} IS ${c.negated ? "NOT " : ""}NULL)`;
    case "compare": {
      const left = c.left.kind === "column"
        ? `${alias}.${ident(c.left.column.name)}`
        : aggValue(c.left.agg);
      return compareSql(left, c.op, c.value, c.mode);
    }
  }
}

/** `left op value`, false when either side is missing. */
function compareSql(left: string, op: string, value: number | string, mode: string): string {
  const l = mode === "number" ? `TRY_CAST(${left} AS DOUBLE)` : `CAST(${left} AS VARCHAR)`;
  const r = mode === "number" ? sqlNumber(value as number) : sqlString(String(value));
  return `COALESCE(${l} ${op} ${r}, FALSE)`;
}

/**
 * The CTE computing aggregate `g` per (anchor, entity) over its windows. Its
 * join key `ak` packs the anchor and the entity's `__row` into one struct, so
 * that the final query joins every aggregate on the whole key: with separate
 * columns DuckDB may join two aggregates on the anchor alone (an anchor-wise
 * cross product) before the entities. Going through the entity table also
 * makes the key types agree whatever the foreign key's type.
 */
function aggCte(g: ResolvedAggregate, q: ResolvedQuery): string {
  const w = g.window;
  const time = `t.${ident(g.timeColumn)}`;
  const fk = `t.${ident(g.fk)}`;
  const row = `e.${ident(ROW_COLUMN)}`;
  const where = g.where ? ` WHERE ${condSql(g.where, "t")}` : "";
  const windows = `(SELECT DISTINCT a_us, ${bound(w.start, w.unit)} AS lo, ` +
    `${bound(w.end, w.unit)} AS hi FROM __anchors)`;
  const from = `${ident(g.table.name)} t ` +
    `JOIN ${ident(q.entity.table.name)} e ON e.${ident(q.entity.key)} = ${fk} ` +
    `JOIN ${windows} w ON ${time} > w.lo AND ${time} <= w.hi`;
  const ak = `{'a': w.a_us, 'r': ${row}} AS ak`;
  if (g.agg === "LIST_DISTINCT") {
    const p = g.link!;
    const col = `t.${ident(g.column!.name)}`;
    return `g${g.id} AS (SELECT DISTINCT ${ak}, p.${ident(ROW_COLUMN)} AS target FROM ${from} ` +
      `JOIN ${ident(p.table.name)} p ON p.${ident(p.key)} = ${col}${where})`;
  }
  return `g${g.id} AS (SELECT ${ak}, ${aggExpr(g)} AS v FROM ${from}${where} ` +
    `GROUP BY w.a_us, ${row})`;
}

/**
 * The SQL producing the training rows of `q` at `anchors` (see the module
 * doc for the columns). Anchor times must be distinct.
 */
export function compileQuery(q: ResolvedQuery, anchors: readonly Anchor[]): string {
  if (anchors.length === 0) throw new Error("compileQuery: no anchors");
  const us = anchors.map((a) => Math.round(a.time * 1e6));
  if (new Set(us).size !== us.length) {
    throw new Error("compileQuery: anchor times must be distinct");
  }
  for (const a of anchors) {
    if (!Number.isFinite(a.time)) {
      throw new Error(`compileQuery: not a finite anchor time: ${a.time}`);
    }
    if (!Number.isInteger(a.split)) throw new Error(`compileQuery: bad split ${a.split}`);
  }
  const ctes = [
    `__anchors AS (SELECT a_us, split, make_timestamp(a_us) AS a_ts FROM (SELECT ` +
    `unnest([${us.join(",")}]::BIGINT[]) AS a_us, ` +
    `unnest([${anchors.map((a) => a.split).join(",")}]::INTEGER[]) AS split))`,
    ...q.aggregates.map((g) => aggCte(g, q)),
  ];
  const e = q.entity.table;
  // The entities × anchors grid, with the aggregates' join key as one column
  // (an expression over two relations in the ON clause can make DuckDB build
  // their cross product before joining).
  const exists = q.target.kind === "aggregate" && e.timeColumn
    ? ` WHERE e.${ident(e.timeColumn)} <= a.a_ts`
    : "";
  const grid = `(SELECT e.*, a.a_us AS __a_us, a.split AS __split, ` +
    `{'a': a.a_us, 'r': e.${ident(ROW_COLUMN)}} AS __ak ` +
    `FROM ${ident(e.name)} e CROSS JOIN __anchors a${exists}) e`;
  const joins = q.aggregates.map((g) =>
    `${g.agg === "LIST_DISTINCT" ? "JOIN" : "LEFT JOIN"} g${g.id} ON g${g.id}.ak = e.__ak`
  );
  const where: string[] = [];
  if (q.where) where.push(condSql(q.where, "e"));
  const cols = [
    `e.${ident(ROW_COLUMN)}::INTEGER AS entity`,
    `(e.__a_us / 1e6)::DOUBLE AS anchor`,
    `e.__split::INTEGER AS split`,
  ];
  const order = ["split", "anchor", "entity"];
  const t = q.target;
  if (t.kind === "aggregate" && t.agg.agg === "LIST_DISTINCT") {
    cols.push(`g${t.agg.id}.target::INTEGER AS target`);
    order.push("target");
  } else {
    const raw = t.kind === "aggregate" ? aggValue(t.agg) : `e.${ident(t.column.name)}`;
    let label: string;
    if (q.compare) {
      const cmp = compareSql(raw, q.compare.op, q.compare.value, q.compare.mode);
      label = `CASE WHEN ${raw} IS NULL THEN NULL WHEN ${cmp} THEN 1.0 ELSE 0.0 END::DOUBLE`;
    } else if (q.labelType === "text") {
      label = `CAST(${raw} AS VARCHAR)`;
    } else {
      label = `TRY_CAST(${raw} AS DOUBLE)`;
    }
    cols.push(`${label} AS label`);
    if (t.kind === "static" && e.timeColumn) {
      cols.push(`(epoch_us(e.${ident(e.timeColumn)}) / 1e6)::DOUBLE AS etime`);
    }
  }
  const body = `SELECT ${cols.join(", ")} FROM ${grid} ${joins.join(" ")}` +
    (where.length ? ` WHERE ${where.join(" AND ")}` : "");
  const notNull = cols.some((c) => c.endsWith(" AS label")) ? " WHERE label IS NOT NULL" : "";
  return `WITH ${ctes.join(",\n")}\nSELECT * FROM (${body}) r${notNull} ORDER BY ${
    order.join(", ")
  }`;
}

/**
 * The SQL listing the entities a query scores at one time (column `entity`, the dense id,
 * ascending): those that exist then (their time, when their table has one, at or before it)
 * and pass the query's `WHERE` filter, its aggregates computed over their windows relative to
 * that time. The target is not computed: scoring happens before its window.
 */
export function compileEntityFilter(q: ResolvedQuery, time: number): string {
  if (!Number.isFinite(time)) throw new Error(`compileEntityFilter: not a finite time: ${time}`);
  const us = Math.round(time * 1e6);
  const target = q.target.kind === "aggregate" ? q.target.agg : null;
  const aggs = q.aggregates.filter((g) => g !== target);
  const ctes = [
    `__anchors AS (SELECT ${us}::BIGINT AS a_us, 0 AS split, make_timestamp(${us}::BIGINT) AS a_ts)`,
    ...aggs.map((g) => aggCte(g, q)),
  ];
  const e = q.entity.table;
  const exists = e.timeColumn ? ` WHERE e.${ident(e.timeColumn)} <= a.a_ts` : "";
  const grid = `(SELECT e.*, {'a': a.a_us, 'r': e.${ident(ROW_COLUMN)}} AS __ak ` +
    `FROM ${ident(e.name)} e CROSS JOIN __anchors a${exists}) e`;
  const joins = aggs.map((g) => `LEFT JOIN g${g.id} ON g${g.id}.ak = e.__ak`).join(" ");
  const where = q.where ? ` WHERE ${condSql(q.where, "e")}` : "";
  return `WITH ${ctes.join(",\n")}\nSELECT e.${ident(ROW_COLUMN)}::INTEGER AS entity ` +
    `FROM ${grid} ${joins}${where} ORDER BY entity`;
}
