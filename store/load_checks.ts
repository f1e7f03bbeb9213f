/**
 * Row-level checks of a table being loaded: primary keys (nulls,
 * duplicates), times that are missing or unreadable, values that do not fit a
 * declared type, and foreign keys without a parent. Each returns messages that
 * name the file, table and column, and the line numbers of the first rows.
 *
 * @module
 */

import type { DuckDBConnection } from "./deps.ts";
import { queryRows, quoteIdent } from "./duck.ts";
import { joinPlaces, rowPlaces } from "./csv_lines.ts";
import { plural } from "./messages.ts";
import { ACCEPTED_TIMES } from "./times.ts";

/** How many example rows a message shows. */
export const EXAMPLES = 5;

/** A table in the middle of loading: where it came from and its staging table. */
export interface Staged {
  /** Schema table name. */
  name: string;
  /** File as written in the schema. */
  file: string;
  /** Path the file was read from. */
  path: string;
  /** Quoted name of the staging table (its rowid is the record index in the file). */
  relation: string;
  /** DuckDB type of each file column. */
  types: Map<string, string>;
}

/** `races.csv (table "races")`: how messages name a table. */
export function label(t: Staged): string {
  return `${t.file} (table "${t.name}")`;
}

/** Formats a value for a message: strings quoted, others as they print. */
export function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return String(v);
}

/** `"x" (line 3), "y" (line 7)`: values with the place of their row. */
async function examples(t: Staged, rows: { r: number; v: unknown }[]): Promise<string> {
  const places = await rowPlaces(t.path, rows.map((x) => x.r));
  return rows.map((x, i) => `${show(x.v)} (${places[i]})`).join(", ");
}

/** Counts the rows matching `where` and returns the first ones (record index and `value`). */
async function firstRows(
  conn: DuckDBConnection,
  t: Staged,
  where: string,
  value = "NULL",
): Promise<{ count: number; rows: { r: number; v: unknown }[] }> {
  const [{ n }] = await queryRows(conn, `SELECT count(*) AS n FROM ${t.relation} WHERE ${where}`);
  if (n === 0) return { count: 0, rows: [] };
  const rows = await queryRows(
    conn,
    `SELECT rowid AS r, ${value} AS v FROM ${t.relation} WHERE ${where} ORDER BY rowid LIMIT ${EXAMPLES}`,
  );
  return { count: Number(n), rows: rows.map((x) => ({ r: Number(x.r), v: x.v })) };
}

/** Nulls and duplicates in the primary key. */
export async function checkPrimaryKey(
  conn: DuckDBConnection,
  t: Staged,
  pk: string,
): Promise<string[]> {
  const out: string[] = [];
  const q = quoteIdent(pk);
  const nulls = await firstRows(conn, t, `${q} IS NULL`);
  if (nulls.count > 0) {
    const places = await rowPlaces(t.path, nulls.rows.map((x) => x.r));
    out.push(
      `${label(t)}: primary key "${pk}" is empty in ${plural(nulls.count, "row")}: ` +
        `${joinPlaces(places)}${nulls.count > EXAMPLES ? ", …" : ""}`,
    );
  }
  const [dup] = await queryRows(
    conn,
    `SELECT count(*) AS keys, coalesce(sum(n), 0) AS n FROM (SELECT count(*) AS n ` +
      `FROM ${t.relation} WHERE ${q} IS NOT NULL GROUP BY ${q} HAVING count(*) > 1)`,
  );
  if (Number(dup.keys) > 0) {
    const ex = await queryRows(
      conn,
      `SELECT ${q} AS v, list(rowid ORDER BY rowid)[1:3] AS rows FROM ${t.relation} ` +
        `WHERE ${q} IS NOT NULL GROUP BY ${q} HAVING count(*) > 1 ORDER BY min(rowid) ` +
        `LIMIT ${EXAMPLES}`,
    );
    const parts: string[] = [];
    for (const e of ex) {
      const places = await rowPlaces(t.path, (e.rows as number[]).map(Number));
      parts.push(`${show(e.v)} (${joinPlaces(places)})`);
    }
    out.push(
      `${label(t)}: primary key "${pk}" has ${plural(Number(dup.keys), "duplicated value")} ` +
        `in ${dup.n} rows: ${parts.join(", ")}${Number(dup.keys) > EXAMPLES ? ", …" : ""}`,
    );
  }
  return out;
}

/**
 * Checks a time column: no nulls, every value readable by `expr` (the
 * conversion to TIMESTAMP, null when the type cannot hold times).
 */
export async function checkTimeColumn(
  conn: DuckDBConnection,
  t: Staged,
  column: string,
  expr: string | null,
): Promise<string[]> {
  const at = `${label(t)}: time column "${column}"`;
  if (expr === null) {
    return [
      `${at} has type ${
        t.types.get(column)
      }, which does not hold times; expected ${ACCEPTED_TIMES}`,
    ];
  }
  const out: string[] = [];
  const q = quoteIdent(column);
  const nulls = await firstRows(conn, t, `${q} IS NULL`);
  if (nulls.count > 0) {
    const places = await rowPlaces(t.path, nulls.rows.map((x) => x.r));
    out.push(
      `${at} is empty in ${plural(nulls.count, "row")}: ${joinPlaces(places)}` +
        `${nulls.count > EXAMPLES ? ", …" : ""} (every row of a table with a time column needs ` +
        `a time; leave time_column out to make the table static)`,
    );
  }
  const bad = await firstRows(conn, t, `${q} IS NOT NULL AND (${expr}) IS NULL`, q);
  if (bad.count > 0) {
    out.push(
      `${at} has ${plural(bad.count, "value")} that ${bad.count === 1 ? "is" : "are"} not a ` +
        `date or time: ${await examples(t, bad.rows)}${bad.count > EXAMPLES ? ", …" : ""}; ` +
        `accepted: ${ACCEPTED_TIMES}`,
    );
  }
  return out;
}

/**
 * Checks that a column declared with semantic type `stype` can be read by
 * `expr` (the conversion to its DuckDB type) in every non-null row.
 */
export async function checkConvertible(
  conn: DuckDBConnection,
  t: Staged,
  column: string,
  stype: string,
  expr: string,
  expected: string,
): Promise<string[]> {
  const q = quoteIdent(column);
  const bad = await firstRows(conn, t, `${q} IS NOT NULL AND (${expr}) IS NULL`, q);
  if (bad.count === 0) return [];
  return [
    `${label(t)}: column "${column}" is declared ${stype}, but ${plural(bad.count, "value")} ` +
    `${bad.count === 1 ? "is" : "are"} not ${expected}: ${await examples(t, bad.rows)}` +
    `${bad.count > EXAMPLES ? ", …" : ""}`,
  ];
}

/** Rows of a child whose foreign key has no parent. */
export interface Dangling {
  /** How many rows. */
  count: number;
  /** The first rows, as `value (line n)`. */
  examples: string;
  /** How many of them match a parent row that was itself dropped. */
  cascaded: number;
}

/** SQL for the rows of a staged table that are still kept, as a subquery with `__rec`. */
export function keptRows(t: Staged, dropTable: string | null): string {
  const notDropped = dropTable ? ` WHERE rowid NOT IN (SELECT rec FROM ${dropTable})` : "";
  return `(SELECT *, rowid AS __rec FROM ${t.relation}${notDropped})`;
}

/**
 * The join condition of a foreign key, `c.column = p.pk` over the staged
 * columns (aliases `c` and `p`, or `pk` under the name `pkAs` in `p`),
 * compared as strings when their types differ.
 */
export function keyEquals(
  child: Staged,
  column: string,
  parent: Staged,
  pk: string,
  pkAs = pk,
): string {
  const sameType = child.types.get(column) === parent.types.get(pk);
  const key = (alias: string, col: string) =>
    sameType ? `${alias}.${quoteIdent(col)}` : `CAST(${alias}.${quoteIdent(col)} AS VARCHAR)`;
  return `${key("c", column)} = ${key("p", pkAs)}`;
}

/**
 * Finds the rows of `child` whose foreign key `column` matches no `pk` of
 * `parent`, leaving out rows listed in the drop tables; with `dropInto`,
 * adds their record indices to that table.
 */
export async function danglingRows(
  conn: DuckDBConnection,
  child: Staged,
  column: string,
  parent: Staged,
  pk: string,
  drops: { child: string | null; parent: string | null },
  dropInto?: string,
): Promise<Dangling> {
  const on = keyEquals(child, column, parent, pk);
  const from = `FROM ${keptRows(child, drops.child)} c ANTI JOIN ${
    keptRows(parent, drops.parent)
  } p ON ${on} WHERE c.${quoteIdent(column)} IS NOT NULL`;
  const [{ n }] = await queryRows(conn, `SELECT count(*) AS n ${from}`);
  if (n === 0) return { count: 0, examples: "", cascaded: 0 };
  const rows = await queryRows(
    conn,
    `SELECT c.__rec AS r, c.${quoteIdent(column)} AS v ${from} ORDER BY c.__rec LIMIT ${EXAMPLES}`,
  );
  let cascaded = 0;
  if (drops.parent) {
    const [r] = await queryRows(
      conn,
      `SELECT count(*) AS n FROM (SELECT c.* ${from}) c SEMI JOIN ${
        keptRows(parent, null)
      } p ON ${on}`,
    );
    cascaded = Number(r.n);
  }
  if (dropInto) await conn.run(`INSERT INTO ${dropInto} SELECT c.__rec ${from}`);
  const first = rows.map((x) => ({ r: Number(x.r), v: x.v }));
  const more = Number(n) > EXAMPLES ? ", …" : "";
  return { count: Number(n), examples: (await examples(child, first)) + more, cascaded };
}
