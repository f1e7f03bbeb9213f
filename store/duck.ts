/**
 * Small DuckDB helpers shared by the schema inference and the database:
 * opening an in-memory instance, quoting, reading a data file as a relation,
 * and turning DuckDB values into plain JavaScript ones.
 *
 * @module
 */

import { type DuckDBConnection, DuckDBInstance } from "./deps.ts";
import { csvStructureProblem } from "./csv_lines.ts";
import { csvDelimiter, fileKind } from "./files.ts";

export { fileKind } from "./files.ts";

/** An open in-memory DuckDB: the instance and one connection to it. */
export interface Duck {
  /** The instance (owns the memory). */
  instance: DuckDBInstance;
  /** The connection every statement runs on. */
  conn: DuckDBConnection;
}

/**
 * Opens an in-memory DuckDB with UTC as its time zone and file order
 * preserved. Spills go to a private folder under the system temp directory
 * (DuckDB's default is `.tmp` in the working directory), removed on close.
 */
export async function openDuck(): Promise<Duck> {
  const spill = await Deno.makeTempDir({ prefix: "fanout-duckdb-" });
  const instance = await DuckDBInstance.create(":memory:", { temp_directory: spill });
  spillDirs.set(instance, spill);
  const conn = await instance.connect();
  await conn.run("SET TimeZone = 'UTC'");
  await conn.run("SET preserve_insertion_order = true");
  return { instance, conn };
}

/** Closes a DuckDB opened with {@link openDuck}. */
export function closeDuck(duck: Duck): void {
  duck.conn.closeSync();
  duck.instance.closeSync();
  const spill = spillDirs.get(duck.instance);
  if (spill) Deno.removeSync(spill, { recursive: true });
}

const spillDirs = new WeakMap<DuckDBInstance, string>();

/** Quotes an SQL identifier (table or column name) for DuckDB. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quotes a string as an SQL literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** Options of {@link readerSql}. */
export interface ReaderOptions {
  /** CSV only: columns forced to a DuckDB type (e.g. VARCHAR to keep leading zeros). */
  types?: Record<string, string>;
  /** CSV only: sniff types from every row instead of a sample. */
  sampleAll?: boolean;
}

/**
 * A table function call reading a CSV or Parquet file. CSVs have a header
 * row on the first line (`skip = 0`: DuckDB would otherwise skip lines it
 * finds inconsistent); `.csv` is comma-separated and `.tsv` tab-separated,
 * with `"` quotes; `\N` and empty fields are nulls.
 */
export function readerSql(path: string, opts: ReaderOptions = {}): string {
  if (fileKind(path) === "parquet") return `read_parquet(${sqlString(path)})`;
  const parts = [sqlString(path), "header = true", "skip = 0", `nullstr = ['\\N', '']`];
  const delim = csvDelimiter(path);
  if (delim) parts.push(`delim = ${sqlString(delim)}`, `quote = '"'`, `escape = '"'`);
  const types = Object.entries(opts.types ?? {});
  if (types.length > 0) {
    const fields = types.map(([c, t]) => `${sqlString(c)}: ${sqlString(t)}`);
    parts.push(`types = {${fields.join(", ")}}`);
  }
  if (opts.sampleAll) parts.push("sample_size = -1");
  return `read_csv(${parts.join(", ")})`;
}

/** A column of a relation: its name and DuckDB type as DESCRIBE prints it. */
export interface DuckColumn {
  /** Column name. */
  name: string;
  /** DuckDB type, e.g. `BIGINT`, `VARCHAR`, `DECIMAL(10,2)`. */
  type: string;
}

/** The columns of a relation (a table name or a parenthesised query). */
export async function describe(conn: DuckDBConnection, relation: string): Promise<DuckColumn[]> {
  const rows = await queryRows(conn, `DESCRIBE SELECT * FROM ${relation}`);
  return rows.map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
}

/** Converts a value read from DuckDB: BIGINTs become numbers when safe; lists and structs recurse. */
export function plainValue(v: unknown): unknown {
  if (typeof v === "bigint") {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v;
  }
  if (Array.isArray(v)) return v.map(plainValue);
  if (v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = plainValue(x);
    return out;
  }
  return v;
}

/** Runs a query and returns its rows as objects of plain values (see {@link plainValue}). */
export async function queryRows(
  conn: DuckDBConnection,
  sql: string,
): Promise<Record<string, unknown>[]> {
  const reader = await conn.runAndReadAll(sql);
  const rows = reader.getRowObjectsJS() as Record<string, unknown>[];
  for (const row of rows) {
    for (const k of Object.keys(row)) row[k] = plainValue(row[k]);
  }
  return rows;
}

/** Whether a DuckDB type is an integer type. */
export function isIntegerType(type: string): boolean {
  return /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT)$/
    .test(type);
}

/** Whether a DuckDB type is a floating-point or decimal type. */
export function isFloatType(type: string): boolean {
  return /^(FLOAT|DOUBLE|REAL|DECIMAL.*)$/.test(type);
}

/** Whether a DuckDB type is a date or timestamp type (a point in time, not a time of day). */
export function isDateType(type: string): boolean {
  return /^(DATE|TIMESTAMP.*)$/.test(type);
}

/**
 * Creates table `table` holding all rows of a data file, in file order (its
 * `rowid` is the record index). When DuckDB's type sniffing, which samples
 * rows, guesses a type that a later row breaks, the file is read again with
 * every row sniffed. Errors name the file.
 */
export async function loadFile(
  conn: DuckDBConnection,
  path: string,
  table: string,
  opts: ReaderOptions = {},
): Promise<DuckColumn[]> {
  const create = (o: ReaderOptions) =>
    conn.run(
      `CREATE OR REPLACE TEMP TABLE ${quoteIdent(table)} AS SELECT * FROM ${readerSql(path, o)}`,
    );
  try {
    await create(opts);
  } catch (first) {
    if (fileKind(path) !== "csv") throw await readError(path, first);
    try {
      await create({ ...opts, sampleAll: true });
    } catch (e) {
      throw await readError(path, e);
    }
  }
  const columns = await describe(conn, quoteIdent(table));
  if (fileKind(path) !== "csv") return columns;
  const forced = new Set(Object.keys(opts.types ?? {}));
  const strings = columns.filter((c) => c.type === "VARCHAR" && !forced.has(c.name));
  return await refineTypes(conn, table, columns, strings);
}

/**
 * DuckDB sniffs CSV types from a sample of the first rows: a column empty in
 * the sample is read as VARCHAR even when every value is a number or a date.
 * Such columns are converted (numbers with leading zeros, like postal codes,
 * stay text).
 */
/** Rows DuckDB's CSV sniffer samples by default. */
const SNIFF_ROWS = 20480;

async function refineTypes(
  conn: DuckDBConnection,
  table: string,
  columns: DuckColumn[],
  strings: DuckColumn[],
): Promise<DuckColumn[]> {
  if (strings.length === 0) return columns;
  const sampled = strings.map((c, i) =>
    `count(${quoteIdent(c.name)}) FILTER (WHERE rowid < ${SNIFF_ROWS}) AS s${i}`
  );
  const [seen] = await queryRows(conn, `SELECT ${sampled.join(", ")} FROM ${quoteIdent(table)}`);
  strings = strings.filter((_, i) => seen[`s${i}`] === 0);
  if (strings.length === 0) return columns;
  const aggs = strings.flatMap((c, i) => {
    const q = quoteIdent(c.name);
    return [
      `count(${q}) AS n${i}`,
      `count(try_cast(${q} AS BIGINT)) AS i${i}`,
      `count(try_cast(${q} AS DOUBLE)) AS f${i}`,
      `count(try_cast(${q} AS DATE)) AS d${i}`,
      `count(try_cast(${q} AS TIMESTAMP)) AS t${i}`,
      `count(*) FILTER (WHERE regexp_matches(${q}, '^\\s*[-+]?0[0-9]')) AS z${i}`,
    ];
  });
  const [r] = await queryRows(conn, `SELECT ${aggs.join(", ")} FROM ${quoteIdent(table)}`);
  let changed = false;
  for (const [i, c] of strings.entries()) {
    const n = r[`n${i}`];
    if (n === 0) continue;
    const numeric = r[`z${i}`] === 0;
    const type = numeric && r[`i${i}`] === n
      ? "BIGINT"
      : numeric && r[`f${i}`] === n
      ? "DOUBLE"
      : r[`d${i}`] === n
      ? "DATE"
      : r[`t${i}`] === n
      ? "TIMESTAMP"
      : null;
    if (!type) continue;
    await conn.run(
      `ALTER TABLE ${quoteIdent(table)} ALTER ${quoteIdent(c.name)} SET DATA TYPE ${type}`,
    );
    changed = true;
  }
  return changed ? await describe(conn, quoteIdent(table)) : columns;
}

/** An error reading a data file: what is wrong with it, without the file's name. */
export class FileReadError extends Error {
  /** What is wrong (e.g. `line 3 has 3 fields, but the header has 2`). */
  readonly detail: string;
  /** Creates the error for `path`. */
  constructor(path: string, detail: string) {
    super(`${path}: ${detail}`);
    this.name = "FileReadError";
    this.detail = detail;
  }
}

/** Explains why DuckDB could not read a file: the CSV's first structural problem, else DuckDB's words. */
async function readError(path: string, e: unknown): Promise<FileReadError> {
  if (fileKind(path) === "csv") {
    const problem = await csvStructureProblem(path, csvDelimiter(path) ?? ",").catch(() => null);
    if (problem) return new FileReadError(path, problem);
  }
  const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0];
  return new FileReadError(path, `cannot be read as ${fileKind(path) ?? "a data file"}: ${msg}`);
}

/** The columns of a data file (read from its header or metadata); errors as {@link loadFile}. */
export async function describeFile(conn: DuckDBConnection, path: string): Promise<DuckColumn[]> {
  try {
    return await describe(conn, readerSql(path));
  } catch (e) {
    throw await readError(path, e);
  }
}
