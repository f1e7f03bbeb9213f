/**
 * The relational database: the tables of a schema loaded from CSV or Parquet
 * files into an embedded, in-memory DuckDB, validated, with the conventions
 * of store/types.ts (tables named as in the schema, `__row` dense in file
 * order, time columns as TIMESTAMP, and for a table with `time_from` its
 * parent's time as the TIMESTAMP column `__time`, which `db.schema` names as
 * its `timeColumn`).
 *
 * ```ts
 * const db = await Database.open("data/f1", await loadSchema("f1.yaml"));
 * const { raceId, __row } = await db.columns(`select "raceId", "__row" from races`);
 * db.close();
 * ```
 *
 * @module
 */

import { closeDuck, type Duck, openDuck, queryRows, quoteIdent } from "./duck.ts";
import { type ColumnArray, readColumns } from "./columns.ts";
import { type DanglingPolicy, loadTables } from "./loader.ts";
import { validateSchema } from "./schema.ts";
import { didYouMean, listChoices } from "./messages.ts";
import type { Schema, TableSchema } from "./types.ts";

export { DataError } from "./loader.ts";
export type { DanglingPolicy } from "./loader.ts";
export type { ColumnArray } from "./columns.ts";

/** Options of {@link Database.open}. */
export interface OpenOptions {
  /**
   * Rows whose foreign key matches no parent: "fail" (default) stops with an
   * error listing them; "drop" drops them (and, in turn, rows that pointed to
   * them) and records a warning per foreign key in `warnings`.
   */
  danglingForeignKeys?: DanglingPolicy;
}

/** A loaded, validated relational database. */
export class Database {
  /**
   * The schema, completed: every column of every file, each with a semantic
   * type; a table with `timeFrom` keeps it and has `timeColumn` `__time` (a
   * column of type `timestamp` at the end of its columns).
   */
  readonly schema: Schema;
  /** The data folder the files were read from. */
  readonly dir: string;
  /** Warnings from loading (rows dropped for dangling foreign keys). */
  readonly warnings: string[];
  #duck: Duck | null;
  #rowCounts: Map<string, number>;
  #timeRange: { min: number; max: number } | null;

  private constructor(
    duck: Duck,
    dir: string,
    schema: Schema,
    warnings: string[],
    rowCounts: Map<string, number>,
    timeRange: { min: number; max: number } | null,
  ) {
    this.#duck = duck;
    this.dir = dir;
    this.schema = schema;
    this.warnings = warnings;
    this.#rowCounts = rowCounts;
    this.#timeRange = timeRange;
  }

  /**
   * Loads the tables of `schema` from the files in `dir` and validates them.
   * Throws `SchemaError` for an inconsistent schema and {@link DataError} for
   * data that does not match it (missing files or columns, duplicate or empty
   * primary keys, missing or unreadable times, values that do not fit a
   * declared type, dangling foreign keys unless dropped, empty `time_from`
   * keys), with messages that name the file, table, column and lines.
   * Inherited times (`time_from`) are resolved after dangling rows are
   * dropped, parents first; a row whose `time_from` key is empty is an
   * error (as an empty time column is), never dropped.
   */
  static async open(dir: string, schema: Schema, opts: OpenOptions = {}): Promise<Database> {
    const policy = opts.danglingForeignKeys ?? "fail";
    if (policy !== "fail" && policy !== "drop") {
      throw new Error(`danglingForeignKeys must be "fail" or "drop", not "${policy}"`);
    }
    validateSchema(schema);
    const duck = await openDuck();
    try {
      const loaded = await loadTables(duck.conn, dir, schema, policy);
      const range = await timeRangeOf(duck, loaded.schema);
      return new Database(duck, dir, loaded.schema, loaded.warnings, loaded.rowCounts, range);
    } catch (e) {
      closeDuck(duck);
      throw e;
    }
  }

  get #conn() {
    if (!this.#duck) throw new Error("the database is closed");
    return this.#duck.conn;
  }

  /** The schema of a table; an unknown name is an error listing the tables. */
  table(name: string): TableSchema {
    const t = this.schema.tables.find((x) => x.name === name);
    if (!t) {
      const names = this.schema.tables.map((x) => x.name);
      throw new Error(
        `no table "${name}"; tables: ${listChoices(names)}${didYouMean(name, names)}`,
      );
    }
    return t;
  }

  /** Rows of a table (counted when it was loaded). */
  rowCount(name: string): number {
    return this.#rowCounts.get(this.table(name).name)!;
  }

  /**
   * Runs SQL and returns its rows as objects: for small results. BIGINTs are
   * numbers when they fit exactly (else bigint), DATE/TIMESTAMP are `Date`s.
   */
  query(sql: string): Promise<Record<string, unknown>[]> {
    return queryRows(this.#conn, sql);
  }

  /**
   * Runs SQL and returns its columns as typed arrays, reading DuckDB's result
   * chunk by chunk with no object per row: integers as Int32Array when all
   * are non-null and fit in 32 bits (else Float64Array with NaN for nulls),
   * floats as Float64Array, DATE/TIMESTAMP as Float64Array of epoch seconds,
   * strings as arrays. See store/columns.ts.
   */
  columns(sql: string): Promise<Record<string, ColumnArray>> {
    return readColumns(this.#conn, sql);
  }

  /** Earliest and latest time over all time columns, in epoch seconds; null if none. */
  timeRange(): { min: number; max: number } | null {
    return this.#timeRange ? { ...this.#timeRange } : null;
  }

  /** Frees DuckDB's memory; the database cannot be used afterwards. */
  close(): void {
    if (this.#duck) closeDuck(this.#duck);
    this.#duck = null;
  }
}

async function timeRangeOf(duck: Duck, schema: Schema) {
  const parts = schema.tables.filter((t) => t.timeColumn).map((t) =>
    `SELECT min(epoch(${quoteIdent(t.timeColumn!)})) AS lo, ` +
    `max(epoch(${quoteIdent(t.timeColumn!)})) AS hi FROM ${quoteIdent(t.name)}`
  );
  if (parts.length === 0) return null;
  const [r] = await queryRows(
    duck.conn,
    `SELECT min(lo) AS lo, max(hi) AS hi FROM (${parts.join(" UNION ALL ")})`,
  );
  return r.lo === null ? null : { min: Number(r.lo), max: Number(r.hi) };
}
