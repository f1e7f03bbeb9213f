/**
 * Loading the tables of a schema into DuckDB, with validation: files and
 * columns first (all tables), then keys, times and declared types per table,
 * then foreign keys across tables; then times inherited through `time_from`
 * (store/load_times.ts); then each table is written under its schema name
 * with `__row` (see `ROW_COLUMN` in store/types.ts) and, with `time_from`,
 * `__time`; and the schema is completed with the inferred types of the
 * columns it left out.
 *
 * @module
 */

import type { DuckDBConnection } from "./deps.ts";
import {
  type ColumnSchema,
  INHERITED_TIME_COLUMN,
  ROW_COLUMN,
  type Schema,
  type SemanticType,
  type TableSchema,
} from "./types.ts";
import {
  describe,
  describeFile,
  type DuckColumn,
  FileReadError,
  isDateType,
  loadFile,
  queryRows,
  quoteIdent,
} from "./duck.ts";
import { fileKind } from "./files.ts";
import {
  checkConvertible,
  checkPrimaryKey,
  checkTimeColumn,
  danglingRows,
  label,
} from "./load_checks.ts";
import { didYouMean, listChoices, plural } from "./messages.ts";
import { timeExpr } from "./times.ts";
import { columnStats, guessStype } from "./stypes.ts";
import { resolveInheritedTimes, type TimedStaged } from "./load_times.ts";
import { unresolved } from "./time_from.ts";

/** What to do with rows whose foreign key has no parent. */
export type DanglingPolicy = "fail" | "drop";

/** Data that does not match its schema; `problems` holds one message per problem. */
export class DataError extends Error {
  /** Each problem (the message joins them with newlines). */
  readonly problems: string[];
  /** Creates the error from its problems. */
  constructor(problems: string[]) {
    super(problems.join("\n"));
    this.name = "DataError";
    this.problems = problems;
  }
}

/** The result of {@link loadTables}. */
export interface Loaded {
  /** The schema with every column of every file, each typed. */
  schema: Schema;
  /** Warnings (rows dropped for dangling foreign keys). */
  warnings: string[];
  /** Rows per table after loading. */
  rowCounts: Map<string, number>;
}

/**
 * A staged table with its schema entry, the SQL of each final column
 * (absent: the column as it is), its dropped records and inherited time.
 */
type Table = TimedStaged;

function resolvePath(dir: string, file: string): string {
  return file.startsWith("/") ? file : `${dir.replace(/\/+$/, "")}/${file}`;
}

async function listDataFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isFile && fileKind(e.name)) out.push(e.name);
  } catch {
    return [];
  }
  return out.sort();
}

/** Semantic types whose values are read as strings whatever the file's type. */
const STRING_STYPES: SemanticType[] = ["text", "multicategorical"];

/** Phase 1: every file exists and has every column the schema names. */
async function checkFiles(conn: DuckDBConnection, dir: string, schema: Schema) {
  const problems: string[] = [];
  const found = new Map<string, DuckColumn[]>();
  for (const t of schema.tables) {
    const path = resolvePath(dir, t.file);
    if (!fileKind(t.file)) {
      problems.push(
        `table "${t.name}": file "${t.file}" is neither CSV (.csv, .tsv, .txt, optionally .gz) ` +
          `nor Parquet (.parquet)`,
      );
      continue;
    }
    try {
      await Deno.stat(path);
    } catch {
      const files = await listDataFiles(dir);
      problems.push(
        `table "${t.name}": file "${t.file}" not found in ${dir}; data files there: ` +
          `${listChoices(files)}${didYouMean(t.file, files)}`,
      );
      continue;
    }
    let cols: DuckColumn[];
    try {
      cols = await describeFile(conn, path);
    } catch (e) {
      if (!(e instanceof FileReadError)) throw e;
      problems.push(`${t.file} (table "${t.name}"): ${e.detail}`);
      continue;
    }
    found.set(t.name, cols);
    const names = cols.map((c) => c.name);
    const wanted: [string, string][] = [];
    if (t.primaryKey !== undefined) wanted.push([t.primaryKey, "primary_key"]);
    if (t.timeColumn !== undefined) wanted.push([t.timeColumn, "time_column"]);
    for (const fk of t.foreignKeys) wanted.push([fk.column, "foreign_keys"]);
    for (const c of t.columns) wanted.push([c.name, "columns"]);
    const reported = new Set<string>();
    for (const [col, field] of wanted) {
      if (names.includes(col) || reported.has(col)) continue;
      reported.add(col);
      problems.push(
        `${t.file} (table "${t.name}"): no column "${col}" (named in ${field}); ` +
          `the file's columns: ${listChoices(names)}${didYouMean(col, names)}`,
      );
    }
    if (names.includes(ROW_COLUMN)) {
      problems.push(
        `${t.file} (table "${t.name}"): column "${ROW_COLUMN}" is reserved for row ids; rename it`,
      );
    }
    if (t.timeFrom !== undefined && names.includes(INHERITED_TIME_COLUMN)) {
      problems.push(
        `${t.file} (table "${t.name}"): column "${INHERITED_TIME_COLUMN}" is reserved for the ` +
          `time inherited through time_from; rename it`,
      );
    }
  }
  if (problems.length > 0) throw new DataError(problems);
  return found;
}

/** Phase 2: stage one table and check its keys, time and declared types. */
async function stageTable(
  conn: DuckDBConnection,
  dir: string,
  t: TableSchema,
  index: number,
  sniffed: DuckColumn[],
): Promise<{ table: Table; problems: string[] }> {
  const path = resolvePath(dir, t.file);
  const declared = new Map(t.columns.map((c) => [c.name, c.stype]));
  const forced: Record<string, string> = {};
  for (const c of sniffed) {
    const st = declared.get(c.name);
    if (st && STRING_STYPES.includes(st) && c.type !== "VARCHAR") forced[c.name] = "VARCHAR";
  }
  const name = `__src${index}`;
  const csv = fileKind(path) === "csv";
  let cols: DuckColumn[];
  try {
    cols = await loadFile(conn, path, name, { types: csv ? forced : {} });
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    throw new DataError([`${t.file} (table "${t.name}"): ${e.detail}`]);
  }
  const table: Table = {
    name: t.name,
    file: t.file,
    path,
    relation: quoteIdent(name),
    types: new Map(cols.map((c) => [c.name, c.type])),
    schema: t,
    exprs: new Map(),
    dropTable: null,
    timeTable: null,
  };
  const problems: string[] = [];
  if (t.primaryKey !== undefined) {
    problems.push(...await checkPrimaryKey(conn, table, t.primaryKey));
  }
  if (t.timeColumn !== undefined) {
    const expr = timeExpr(t.timeColumn, table.types.get(t.timeColumn)!);
    problems.push(...await checkTimeColumn(conn, table, t.timeColumn, expr));
    if (expr) table.exprs.set(t.timeColumn, expr);
  }
  for (const c of t.columns) {
    if (c.name === t.timeColumn) continue;
    const type = table.types.get(c.name)!;
    const q = quoteIdent(c.name);
    if (STRING_STYPES.includes(c.stype) && type !== "VARCHAR") {
      table.exprs.set(c.name, `CAST(${q} AS VARCHAR)`);
    } else if (c.stype === "numerical" && type === "VARCHAR") {
      const expr = `try_cast(${q} AS DOUBLE)`;
      problems.push(...await checkConvertible(conn, table, c.name, c.stype, expr, "numbers"));
      table.exprs.set(c.name, expr);
    } else if (c.stype === "timestamp" && !isDateType(type)) {
      const expr = timeExpr(c.name, type) ?? `CAST(NULL AS TIMESTAMP)`;
      problems.push(
        ...await checkConvertible(conn, table, c.name, c.stype, expr, "dates or times"),
      );
      table.exprs.set(c.name, expr);
    }
  }
  return { table, problems };
}

/** Phase 3: foreign keys, failing or dropping dangling rows until none is left. */
async function checkForeignKeys(
  conn: DuckDBConnection,
  tables: Table[],
  policy: DanglingPolicy,
): Promise<string[]> {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const problems: string[] = [];
  const warnings: string[] = [];
  for (;;) {
    let dropped = 0;
    for (const child of tables) {
      for (const fk of child.schema.foreignKeys) {
        const parent = byName.get(fk.table)!;
        const pk = parent.schema.primaryKey!;
        if (policy === "drop" && !child.dropTable) {
          child.dropTable = quoteIdent(`__drop_${child.relation.slice(1, -1)}`);
          await conn.run(`CREATE TEMP TABLE ${child.dropTable} (rec BIGINT)`);
        }
        const d = await danglingRows(
          conn,
          child,
          fk.column,
          parent,
          pk,
          { child: child.dropTable, parent: parent.dropTable },
          policy === "drop" ? child.dropTable! : undefined,
        );
        if (d.count === 0) continue;
        const ref = `foreign key "${fk.column}" -> ${parent.name}.${pk}`;
        if (policy === "fail") {
          problems.push(
            `${label(child)}: ${ref}: ${plural(d.count, "row")} ${
              d.count === 1 ? "references a value" : "reference values"
            } missing from ${parent.name}: ${d.examples} (fix the data, or open with ` +
              `danglingForeignKeys "drop" to drop such rows with a warning)`,
          );
        } else {
          dropped += d.count;
          const why = d.cascaded === 0
            ? ""
            : ` (${d.cascaded} of them pointed to rows of ${parent.name} dropped before)`;
          warnings.push(
            `${label(child)}: dropped ${plural(d.count, "row")} whose ${ref} has no match: ` +
              `${d.examples}${why}`,
          );
        }
      }
    }
    if (policy === "fail" || dropped === 0) break;
  }
  if (problems.length > 0) throw new DataError(problems);
  return warnings;
}

/**
 * Phase 5: the final table, named as in the schema, with `__row` dense in
 * file order and, with `time_from`, the inherited time as `__time`.
 */
async function finishTable(conn: DuckDBConnection, t: Table): Promise<void> {
  const cols = [...t.types.keys()].map((c) => {
    const e = t.exprs.get(c);
    return e ? `${e} AS ${quoteIdent(c)}` : quoteIdent(c);
  });
  let from = t.relation, rec = "rowid";
  if (t.timeTable) {
    const time = quoteIdent(INHERITED_TIME_COLUMN);
    from = `(SELECT s.*, s.rowid AS __rec, tt.t AS ${time} FROM ${t.relation} s ` +
      `JOIN ${t.timeTable} tt ON tt.rec = s.rowid)`;
    rec = "__rec";
    cols.push(time);
  }
  const row = quoteIdent(ROW_COLUMN);
  const sql = t.dropTable
    ? `SELECT ${cols.join(", ")}, CAST(row_number() OVER (ORDER BY ${rec}) - 1 AS BIGINT) ` +
      `AS ${row} FROM ${from} WHERE ${rec} NOT IN (SELECT rec FROM ${t.dropTable}) ` +
      `ORDER BY ${rec}`
    : `SELECT ${cols.join(", ")}, CAST(${rec} AS BIGINT) AS ${row} FROM ${from}` +
      (t.timeTable ? ` ORDER BY ${rec}` : "");
  await conn.run(`CREATE TABLE ${quoteIdent(t.name)} AS ${sql}`);
  await conn.run(`DROP TABLE ${t.relation}`);
  if (t.dropTable) await conn.run(`DROP TABLE ${t.dropTable}`);
  if (t.timeTable) await conn.run(`DROP TABLE ${t.timeTable}`);
}

/** Phase 6: every column of the file, typed: declared, keys `id`, time `timestamp`, or inferred. */
async function completeColumns(conn: DuckDBConnection, t: Table): Promise<ColumnSchema[]> {
  const s = t.schema;
  const declared = new Map(s.columns.map((c) => [c.name, c.stype]));
  const keys = new Set([s.primaryKey, ...s.foreignKeys.map((f) => f.column)]);
  const final = (await describe(conn, quoteIdent(t.name))).filter((c) => c.name !== ROW_COLUMN);
  const open = final.filter((c) => !declared.has(c.name) && !keys.has(c.name));
  const stats = new Map(
    (await columnStats(conn, quoteIdent(t.name), open)).map((x) => [x.name, x]),
  );
  return final.map((c): ColumnSchema => ({
    name: c.name,
    stype: declared.get(c.name) ??
      (keys.has(c.name) ? "id" : c.name === s.timeColumn ? "timestamp" : guessStype(
        stats.get(c.name)!,
      )),
  }));
}

/**
 * Loads every table of `schema` from `dir` into DuckDB (see the module doc).
 * Throws {@link DataError} listing the problems found.
 */
export async function loadTables(
  conn: DuckDBConnection,
  dir: string,
  schema: Schema,
  policy: DanglingPolicy = "fail",
): Promise<Loaded> {
  schema = { tables: schema.tables.map(unresolved) };
  const sniffed = await checkFiles(conn, dir, schema);
  const tables: Table[] = [];
  const problems: string[] = [];
  for (const [i, t] of schema.tables.entries()) {
    const staged = await stageTable(conn, dir, t, i, sniffed.get(t.name)!);
    tables.push(staged.table);
    problems.push(...staged.problems);
  }
  if (problems.length > 0) throw new DataError(problems);
  const warnings = await checkForeignKeys(conn, tables, policy);
  const timeProblems = await resolveInheritedTimes(conn, tables);
  if (timeProblems.length > 0) throw new DataError(timeProblems);
  const out: TableSchema[] = [];
  const rowCounts = new Map<string, number>();
  for (const t of tables) {
    await finishTable(conn, t);
    if (t.schema.timeFrom !== undefined) {
      t.schema = { ...t.schema, timeColumn: INHERITED_TIME_COLUMN };
    }
    const [{ n }] = await queryRows(conn, `SELECT count(*) AS n FROM ${quoteIdent(t.name)}`);
    rowCounts.set(t.name, Number(n));
    out.push({ ...t.schema, columns: await completeColumns(conn, t) });
  }
  return { schema: { tables: out }, warnings, rowCounts };
}
