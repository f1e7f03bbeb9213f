/**
 * The schema file: parsing a schema YAML into a {@link Schema}, checking it,
 * and writing one back.
 *
 * ```yaml
 * tables:
 *   races:
 *     file: races.csv
 *     primary_key: raceId
 *     time_column: date
 *     foreign_keys: { circuitId: circuits }
 *     columns: { name: text, round: numerical }   # optional; the rest is inferred
 *   results:
 *     file: results.csv
 *     primary_key: resultId
 *     time_from: raceId        # no date of its own: each row has its race's time
 *     foreign_keys: { raceId: races, driverId: drivers }
 * ```
 *
 * `time_from` names one of the table's foreign keys; the table then takes
 * its time from the parent row (which has a `time_column` or a `time_from`
 * itself; chains resolve, cycles are an error). It excludes `time_column`.
 *
 * A parsed schema lists only the columns the file names under `columns`;
 * `Database.open` reads the files and completes it (every column, each with
 * a semantic type). Errors name the file, line and column, the table, and the
 * valid choices.
 *
 * @module
 */

import { Document, isMap, isScalar, type Node, type Scalar, type YAMLMap } from "./deps.ts";
import {
  type ColumnSchema,
  type ForeignKey,
  INHERITED_TIME_COLUMN,
  ROW_COLUMN,
  type Schema,
  SEMANTIC_TYPES,
  type SemanticType,
  type TableSchema,
} from "./types.ts";
import { didYouMean, listChoices } from "./messages.ts";
import { timeFromCycles, timeFromProblems } from "./time_from.ts";
import { openYamlDoc } from "./yaml_doc.ts";

/** A schema that cannot be used; `problems` holds one message per problem. */
export class SchemaError extends Error {
  /** Each problem, one message each (the message joins them with newlines). */
  readonly problems: string[];
  /** Creates the error from its problems. */
  constructor(problems: string[]) {
    super(problems.join("\n"));
    this.name = "SchemaError";
    this.problems = problems;
  }
}

/** The keys a table entry may have, in the order they are written. */
export const TABLE_KEYS = [
  "file",
  "primary_key",
  "time_column",
  "time_from",
  "foreign_keys",
  "columns",
] as const;

/** Other spellings accepted for semantic types. */
const STYPE_ALIASES: Record<string, SemanticType> = {
  "multi-categorical": "multicategorical",
  "multi_categorical": "multicategorical",
};

/** Where a problem is: a table, optionally one of its keys, optionally an entry under it. */
export interface ProblemPlace {
  /** Table name. */
  table?: string;
  /** Key of the table entry (`file`, `foreign_keys`, ...). */
  field?: (typeof TABLE_KEYS)[number];
  /** Entry under the field (a column name of `foreign_keys` or `columns`). */
  entry?: string;
}

/** A problem with a schema and where it is. */
export interface SchemaProblem extends ProblemPlace {
  /** The message, without the place. */
  message: string;
}

/**
 * The problems of a schema that do not need the data: duplicate or reserved
 * names, unknown semantic types, foreign keys to unknown tables or to tables
 * without a primary key, a time column typed as something else, a
 * `time_from` that is not a foreign key, leads to a table without a time,
 * comes with a `time_column`, or forms a cycle.
 *
 * A table with `timeFrom` and `timeColumn` set to `__time` (the form
 * `Database.open` puts in `db.schema`) is accepted.
 */
export function schemaProblems(schema: Schema): SchemaProblem[] {
  const out: SchemaProblem[] = [];
  const names = schema.tables.map((t) => t.name);
  const byName = new Map(schema.tables.map((t) => [t.name, t]));
  if (schema.tables.length === 0) out.push({ message: "the schema has no tables" });
  const seen = new Set<string>();
  for (const t of schema.tables) {
    const table = t.name;
    const at = `table "${table}"`;
    if (seen.has(table)) out.push({ table, message: `${at} is defined twice` });
    seen.add(table);
    if (table === "" || table.startsWith("__")) {
      out.push({ table, message: `${at}: table names must not be empty or start with "__"` });
    }
    if (!t.file) out.push({ table, field: "file", message: `${at}: "file" is empty` });
    for (const c of t.columns) {
      if (c.name === ROW_COLUMN) {
        out.push({
          table,
          field: "columns",
          entry: c.name,
          message: `${at}: column name "${ROW_COLUMN}" is reserved`,
        });
      }
      if (!SEMANTIC_TYPES.includes(c.stype)) {
        out.push({
          table,
          field: "columns",
          entry: c.name,
          message: `${at}: column "${c.name}" has unknown semantic type "${c.stype}"; valid: ${
            SEMANTIC_TYPES.join(", ")
          }${didYouMean(String(c.stype), SEMANTIC_TYPES)}`,
        });
      }
      if (c.name === t.timeColumn && c.stype !== "timestamp") {
        out.push({
          table,
          field: "columns",
          entry: c.name,
          message: `${at}: column "${c.name}" is the time column, so its type must be ` +
            `"timestamp", not "${c.stype}"`,
        });
      }
    }
    for (const fk of t.foreignKeys) {
      const parent = byName.get(fk.table);
      const place = { table, field: "foreign_keys" as const, entry: fk.column };
      if (!parent) {
        out.push({
          ...place,
          message: `${at}: foreign key "${fk.column}" references unknown table "${fk.table}"; ` +
            `tables: ${listChoices(names)}${didYouMean(fk.table, names)}`,
        });
      } else if (!parent.primaryKey) {
        out.push({
          ...place,
          message: `${at}: foreign key "${fk.column}" references table "${fk.table}", ` +
            `which has no primary_key; give "${fk.table}" a primary_key or drop the foreign key`,
        });
      }
    }
    out.push(...timeFromProblems(t, byName));
  }
  out.push(...timeFromCycles(schema.tables, byName));
  return out;
}

/** Throws a {@link SchemaError} when {@link schemaProblems} finds any; `source` prefixes each. */
export function validateSchema(schema: Schema, source = "schema"): void {
  const problems = schemaProblems(schema);
  if (problems.length > 0) throw new SchemaError(problems.map((p) => `${source}: ${p.message}`));
}

/** Parses a schema YAML; `path` is used in messages. Throws {@link SchemaError}. */
export function parseSchema(text: string, path: string): Schema {
  const { doc, where, errors } = openYamlDoc(
    text,
    path,
    "each table, key and column may appear once",
  );
  if (errors.length > 0) throw new SchemaError(errors);
  const problems: string[] = [];
  const root = doc.contents;
  if (!isMap(root)) {
    throw new SchemaError([`${where(root)}: expected a mapping with a "tables" key`]);
  }
  let tablesNode: YAMLMap | undefined;
  for (const pair of root.items) {
    const key = scalarString(pair.key);
    if (key === "tables") {
      if (isMap(pair.value)) tablesNode = pair.value;
      else problems.push(`${where(keyNode(pair))}: "tables" must be a mapping of table names`);
    } else {
      problems.push(`${where(keyNode(pair))}: unknown key "${key}"; valid: tables`);
    }
  }
  if (!tablesNode && problems.length === 0) {
    problems.push(`${where(root)}: no "tables" key; the schema lists its tables under "tables:"`);
  }
  const tables: TableSchema[] = [];
  for (const pair of tablesNode?.items ?? []) {
    const t = parseTable(pair.key as Node, pair.value as Node | null, where, problems);
    if (t) tables.push(t);
  }
  if (problems.length > 0) throw new SchemaError(problems);
  const schema = { tables };
  const cross = schemaProblems(schema).map((p) => {
    const node = placeNode(tablesNode, p) ?? tablesNode ?? root;
    return `${where(node)}: ${p.message}`;
  });
  if (cross.length > 0) throw new SchemaError(cross);
  return schema;
}

/** Reads and parses a schema file. */
export async function loadSchema(path: string): Promise<Schema> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new SchemaError([`${path}: no such schema file`]);
    throw e;
  }
  return parseSchema(text, path);
}

/** Options of {@link schemaToYaml}. */
export interface SchemaYamlOptions {
  /** Comment written at the top (lines without `#`). */
  header?: string;
  /** Comments written above a table's entry, by table name. */
  notes?: Record<string, string[]>;
}

/**
 * Writes a schema as YAML; {@link parseSchema} reads it back to an equal
 * schema. A table of `db.schema` that inherits its time (`timeFrom`, with
 * `timeColumn` `__time`) is written with `time_from` only and without the
 * `__time` column, as the user would write it.
 */
export function schemaToYaml(schema: Schema, opts: SchemaYamlOptions = {}): string {
  const tables: Record<string, unknown> = {};
  for (const t of schema.tables) {
    const entry: Record<string, unknown> = { file: t.file };
    const resolved = t.timeFrom !== undefined && t.timeColumn === INHERITED_TIME_COLUMN;
    if (t.primaryKey !== undefined) entry.primary_key = t.primaryKey;
    if (t.timeColumn !== undefined && !resolved) entry.time_column = t.timeColumn;
    if (t.timeFrom !== undefined) entry.time_from = t.timeFrom;
    if (t.foreignKeys.length > 0) {
      entry.foreign_keys = Object.fromEntries(t.foreignKeys.map((f) => [f.column, f.table]));
    }
    const columns = resolved
      ? t.columns.filter((c) => c.name !== INHERITED_TIME_COLUMN)
      : t.columns;
    if (columns.length > 0) {
      entry.columns = Object.fromEntries(columns.map((c) => [c.name, c.stype]));
    }
    tables[t.name] = entry;
  }
  const doc = new Document({ tables });
  if (opts.header) doc.commentBefore = prefixLines(opts.header);
  const tablesMap = doc.get("tables") as YAMLMap;
  for (const pair of tablesMap.items) {
    const note = opts.notes?.[String((pair.key as Scalar).value)];
    if (note && note.length > 0) (pair.key as Scalar).commentBefore = prefixLines(note.join("\n"));
  }
  return doc.toString({ lineWidth: 100 });
}

/** YAML comments are written without their `#`; keep a space after it. */
function prefixLines(text: string): string {
  return text.split("\n").map((l) => (l ? ` ${l}` : "")).join("\n");
}

function scalarString(node: unknown): string | undefined {
  if (!isScalar(node)) return undefined;
  const v = node.value;
  return typeof v === "string" || typeof v === "number" || typeof v === "boolean"
    ? String(v)
    : undefined;
}

function keyNode(pair: { key: unknown }): Node | undefined {
  return pair.key as Node | undefined;
}

/** Parses one table entry, pushing problems; returns null when it is unusable. */
function parseTable(
  keyN: Node,
  value: Node | null,
  where: (n: Node | null | undefined) => string,
  problems: string[],
): TableSchema | null {
  const name = scalarString(keyN);
  if (name === undefined) {
    problems.push(`${where(keyN)}: table names must be plain strings`);
    return null;
  }
  const at = `table "${name}"`;
  if (!isMap(value)) {
    problems.push(
      `${where(value ?? keyN)}: ${at} must be a mapping with keys ${TABLE_KEYS.join(", ")}`,
    );
    return null;
  }
  const t: TableSchema = { name, file: "", foreignKeys: [], columns: [] };
  let hasFile = false;
  const str = (node: unknown, what: string): string | undefined => {
    const s = isScalar(node) && node.value === null ? undefined : scalarString(node);
    if (s === undefined && !(isScalar(node) && node.value === null)) {
      problems.push(`${where(node as Node)}: ${at}: ${what} must be a column name`);
    }
    return s;
  };
  for (const pair of value.items) {
    const key = scalarString(pair.key);
    const v = pair.value as Node | null;
    switch (key) {
      case "file": {
        const f = scalarString(v);
        hasFile = true;
        if (!f) problems.push(`${where(v ?? keyNode(pair))}: ${at}: "file" must be a file name`);
        else t.file = f;
        break;
      }
      case "primary_key": {
        const s = str(v, '"primary_key"');
        if (s !== undefined) t.primaryKey = s;
        break;
      }
      case "time_column": {
        const s = str(v, '"time_column"');
        if (s !== undefined) t.timeColumn = s;
        break;
      }
      case "time_from": {
        const s = str(v, '"time_from"');
        if (s !== undefined) t.timeFrom = s;
        break;
      }
      case "foreign_keys":
        t.foreignKeys = parseEntries(v, at, "foreign_keys", where, problems)
          .map(([column, table]): ForeignKey => ({ column, table }));
        break;
      case "columns":
        t.columns = parseEntries(v, at, "columns", where, problems).map(
          ([col, stype]): ColumnSchema => ({
            name: col,
            stype: (STYPE_ALIASES[stype] ?? stype) as SemanticType,
          }),
        );
        break;
      default:
        problems.push(
          `${where(keyNode(pair))}: ${at}: unknown key "${key}"; valid: ${TABLE_KEYS.join(", ")}` +
            didYouMean(key ?? "", TABLE_KEYS),
        );
    }
  }
  if (!hasFile) problems.push(`${where(keyN)}: ${at}: missing "file" (the CSV or Parquet file)`);
  return t;
}

/** Parses `{ name: value }` where both are strings. */
function parseEntries(
  node: Node | null,
  at: string,
  field: string,
  where: (n: Node | null | undefined) => string,
  problems: string[],
): [string, string][] {
  if (isScalar(node) && node.value === null) return [];
  const what = field === "columns" ? "column: semantic type" : "column: table";
  if (!isMap(node)) {
    problems.push(`${where(node)}: ${at}: "${field}" must be a mapping of ${what}`);
    return [];
  }
  const out: [string, string][] = [];
  for (const pair of node.items) {
    const k = scalarString(pair.key);
    const v = scalarString(pair.value);
    if (k === undefined || v === undefined) {
      const bad = k === undefined ? keyNode(pair) : (pair.value as Node);
      problems.push(`${where(bad ?? node)}: ${at}: "${field}" entries must be ${what}`);
      continue;
    }
    out.push([k, v]);
  }
  return out;
}

/** The YAML node a problem points at: the entry, else the field, else the table. */
function placeNode(tables: YAMLMap | undefined, p: ProblemPlace): Node | undefined {
  if (!tables || p.table === undefined) return undefined;
  const tablePair = tables.items.find((i) => scalarString(i.key) === p.table);
  if (!tablePair) return undefined;
  const table = tablePair.value;
  if (!isMap(table) || !p.field) return keyNode(tablePair);
  const fieldPair = table.items.find((i) => scalarString(i.key) === p.field);
  if (!fieldPair) return keyNode(tablePair);
  const field = fieldPair.value;
  if (!isMap(field) || p.entry === undefined) return (field as Node) ?? keyNode(fieldPair);
  const entry = field.items.find((i) => scalarString(i.key) === p.entry);
  return (entry?.value as Node | undefined) ?? keyNode(fieldPair);
}
