/**
 * Resolving `time_from` while loading (see store/time_from.ts): after the
 * foreign keys are checked (and dangling rows dropped), each table with
 * `time_from` gets the time of its parent row, parents first, into a
 * temporary table `(rec, k, f, t)`: the record index in the file, the
 * table's primary key (for its own children), the foreign key and the time.
 * `finishTable` in store/loader.ts adds `t` as the TIMESTAMP column `__time`.
 *
 * A kept row whose `time_from` key is empty has no time: that is an error
 * naming the file and lines, as for empty values in a time column (the
 * strict choice; such rows are not dropped, even with "drop").
 *
 * @module
 */

import type { DuckDBConnection } from "./deps.ts";
import type { TableSchema } from "./types.ts";
import { queryRows, quoteIdent } from "./duck.ts";
import { joinPlaces, rowPlaces } from "./csv_lines.ts";
import { EXAMPLES, keyEquals, label, type Staged } from "./load_checks.ts";
import { plural } from "./messages.ts";
import { timeFromKey, timeFromOrder } from "./time_from.ts";

/** A staged table as the loader holds it, with what time resolution needs. */
export interface TimedStaged extends Staged {
  /** Its schema entry (`time_from` as the user wrote it). */
  schema: TableSchema;
  /** Final column expressions by column name (the time column's conversion among them). */
  exprs: Map<string, string>;
  /** Table of dropped record indices, or null. */
  dropTable: string | null;
  /** Quoted temporary table `(rec, k, f, t)` once its time is resolved, else null. */
  timeTable: string | null;
}

/** `(k, t)` of a table with a time: its primary key and time per record. */
function timeSource(t: TimedStaged): string {
  if (t.timeTable) return t.timeTable;
  const time = t.schema.timeColumn!;
  const expr = t.exprs.get(time) ?? quoteIdent(time);
  return `(SELECT ${quoteIdent(t.schema.primaryKey!)} AS k, ${expr} AS t FROM ${t.relation})`;
}

/** The first kept records of a time table matching `where`, and how many there are. */
async function firstRecords(conn: DuckDBConnection, t: TimedStaged, where: string) {
  const kept = t.dropTable ? ` AND rec NOT IN (SELECT rec FROM ${t.dropTable})` : "";
  const from = `FROM ${t.timeTable} WHERE ${where}${kept}`;
  const [{ n }] = await queryRows(conn, `SELECT count(*) AS n ${from}`);
  if (Number(n) === 0) return { count: 0, places: "" };
  const rows = await queryRows(conn, `SELECT rec ${from} ORDER BY rec LIMIT ${EXAMPLES}`);
  const places = await rowPlaces(t.path, rows.map((r) => Number(r.rec)));
  return { count: Number(n), places: joinPlaces(places) + (Number(n) > EXAMPLES ? ", …" : "") };
}

/**
 * Resolves the time of every table with `time_from` into its `timeTable`
 * (parents first) and returns the problems: kept rows whose `time_from` key
 * is empty, or (only when a parent had such rows) whose parent has no time.
 */
export async function resolveInheritedTimes(
  conn: DuckDBConnection,
  tables: TimedStaged[],
): Promise<string[]> {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const problems: string[] = [];
  const failed = new Set<string>();
  for (const child of timeFromOrder(tables)) {
    const fk = timeFromKey(child.schema)!;
    const parent = byName.get(fk.table)!;
    const pk = child.schema.primaryKey;
    child.timeTable = quoteIdent(`__time_${child.relation.slice(1, -1)}`);
    const f = quoteIdent(fk.column);
    await conn.run(
      `CREATE TEMP TABLE ${child.timeTable} AS SELECT c.rowid AS rec, ` +
        `${pk === undefined ? "NULL" : `c.${quoteIdent(pk)}`} AS k, c.${f} AS f, p.t AS t ` +
        `FROM ${child.relation} c LEFT JOIN ${timeSource(parent)} p ON ` +
        keyEquals(child, fk.column, parent, parent.schema.primaryKey!, "k"),
    );
    const at = `${label(child)}: time_from "${fk.column}"`;
    const empty = await firstRecords(conn, child, "f IS NULL");
    if (empty.count > 0) {
      failed.add(child.name);
      problems.push(
        `${at} is empty in ${plural(empty.count, "row")}: ${empty.places} (every row of a ` +
          `table with a time needs a time, taken here from ${parent.name} through ` +
          `"${fk.column}"; fill it in, or leave time_from out to make the table static)`,
      );
    }
    const timeless = await firstRecords(conn, child, "f IS NOT NULL AND t IS NULL");
    if (timeless.count > 0) {
      failed.add(child.name);
      if (!failed.has(parent.name)) {
        problems.push(
          `${at}: ${plural(timeless.count, "row")} point to rows of ${parent.name} without a ` +
            `time: ${timeless.places}`,
        );
      }
    }
  }
  return problems;
}
