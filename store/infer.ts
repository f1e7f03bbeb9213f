/**
 * `fanout schema <dir>`: a starting schema inferred from the CSV and Parquet
 * files of a folder, for the user to edit.
 *
 * - Each file is a table named after the file (`races.csv` → `races`).
 * - Column types: by DuckDB type and cardinality over a sample (store/stypes.ts).
 * - Primary key: a unique, never-null column named `id`, `<table>Id`,
 *   `<table>_id` or `<singular>Id` (case and underscores ignored); failing
 *   that, `<x>Id` where the table name starts or ends with `x`; failing that,
 *   a key-like column (`…Id`, `…_id`) that other files hold under the same
 *   name and that names no other table (tennis `tournaments.tourney_id`,
 *   with a note). Only when exactly one column of a tier qualifies.
 * - Foreign keys: a column named like exactly one other table's primary key
 *   (or ending with it, as `home_team_id` → `team_id`) whose values are at
 *   least 95% found there. Failing a name match, by values (with a note): a
 *   key-like column, or one whose name holds a table's name (`player`), whose
 *   values are at least 95% among one other table's primary keys of the same
 *   kind (integer or text): the one such table whose name the column holds,
 *   else the only such table at all (and then only for a column of at least
 *   {@link MIN_VALUE_KEYS} distinct values, as small counts fit any
 *   1..n key by chance), never for a column of unique values that names no
 *   table (a row number); several are left to the user in a note (tennis
 *   `winner_id` → `players`, chinook `SupportRepId`: a note).
 * - Time column: the one column that is a DATE/TIMESTAMP, or an integer named
 *   like a date holding 8-digit YYYYMMDD values, and is never null; birth
 *   dates (`dob`, `…birth…`) are features, not row times. Other integer
 *   columns named like dates (`dob`) whose values are all YYYYMMDD are
 *   `timestamp` features, not numbers.
 * - `time_from`: a table with no time column (and no candidate for one) whose
 *   foreign keys lead to exactly one table with a time (its own, or one
 *   inherited this way: parents are decided first) takes its time from that
 *   parent, when the key is never empty; with a note, as it is a guess that
 *   the rows are events at their parent's time (f1's results and races).
 *
 * Ambiguities are written as comments above the table in the YAML.
 *
 * @module
 */

import type { DuckDBConnection } from "./deps.ts";
import type { ColumnSchema, ForeignKey, Schema, TableSchema } from "./types.ts";
import {
  closeDuck,
  type DuckColumn,
  fileKind,
  isDateType,
  isIntegerType,
  loadFile,
  openDuck,
  queryRows,
  quoteIdent,
} from "./duck.ts";
import { columnStats, guessStype, looksLikeId } from "./stypes.ts";
import { schemaToYaml } from "./schema.ts";
import { plural } from "./messages.ts";
import { timeExpr } from "./times.ts";

/** A schema with the inference's notes (ambiguities), by table name. */
export interface InferredSchema {
  /** The inferred schema, every column typed. */
  schema: Schema;
  /** Remarks per table, written as comments by {@link inferSchemaYaml}. */
  notes: Record<string, string[]>;
}

/** One file being inferred. */
interface FileInfo {
  table: string;
  file: string;
  relation: string;
  columns: DuckColumn[];
  rows: number;
  primaryKey?: string;
  timeColumn?: string;
  /** Whether some column could be the time column (then no `time_from` is proposed). */
  timeCandidates: boolean;
  notes: string[];
}

/** Lower-case letters and digits only: `raceId`, `race_id` and `RaceID` agree. */
function norm(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/** A crude English singular: `races` → `race`, `categories` → `category`. */
function singular(word: string): string {
  if (/ies$/.test(word)) return word.slice(0, -3) + "y";
  if (/(ss|x|ch|sh)es$/.test(word)) return word.slice(0, -2);
  if (/[^s]s$/.test(word)) return word.slice(0, -1);
  return word;
}

/** The table name for a file: its name without extensions. */
function tableName(file: string): string {
  return file.replace(/(\.(csv|tsv|txt|parquet))?(\.(gz|zst))?$/i, "");
}

/** Infers a schema and notes from the data files of `dir`. */
export async function inferSchemaDetailed(dir: string): Promise<InferredSchema> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && fileKind(e.name)) names.push(e.name);
  }
  names.sort();
  if (names.length === 0) throw new Error(`${dir}: no CSV or Parquet files to infer a schema from`);
  const duck = await openDuck();
  try {
    const files: FileInfo[] = [];
    const seen = new Map<string, string>();
    for (const [i, file] of names.entries()) {
      const table = tableName(file);
      if (seen.has(table)) {
        const first = files.find((f) => f.table === table);
        first?.notes.push(`${file} was skipped: table "${table}" is read from ${seen.get(table)}`);
        continue;
      }
      seen.set(table, file);
      const relation = quoteIdent(`__infer${i}`);
      const columns = await loadFile(duck.conn, `${dir}/${file}`, `__infer${i}`);
      const [{ n }] = await queryRows(duck.conn, `SELECT count(*) AS n FROM ${relation}`);
      files.push({
        table,
        file,
        relation,
        columns,
        rows: Number(n),
        timeCandidates: false,
        notes: [],
      });
    }
    for (const f of files) {
      f.primaryKey = await inferPrimaryKey(duck.conn, f, files);
      f.timeColumn = await inferTimeColumn(duck.conn, f);
    }
    const tables: TableSchema[] = [];
    for (const f of files) {
      const foreignKeys = await inferForeignKeys(duck.conn, f, files);
      const keyCols = new Set([f.primaryKey, ...foreignKeys.map((k) => k.column)]);
      const rest = f.columns.filter((c) => !keyCols.has(c.name) && c.name !== f.timeColumn);
      const stats = new Map(
        (await columnStats(duck.conn, f.relation, rest)).map((s) => [s.name, s]),
      );
      const dates = await dateFeatures(duck.conn, f, rest);
      const columns: ColumnSchema[] = f.columns.map((c) => ({
        name: c.name,
        stype: keyCols.has(c.name)
          ? "id"
          : c.name === f.timeColumn || dates.has(c.name)
          ? "timestamp"
          : guessStype(stats.get(c.name)!),
      }));
      const t: TableSchema = { name: f.table, file: f.file, foreignKeys, columns };
      if (f.primaryKey) t.primaryKey = f.primaryKey;
      if (f.timeColumn) t.timeColumn = f.timeColumn;
      tables.push(t);
    }
    await inferTimeFrom(duck.conn, files, tables);
    const notes: Record<string, string[]> = {};
    for (const f of files) if (f.notes.length > 0) notes[f.table] = f.notes;
    return { schema: { tables }, notes };
  } finally {
    closeDuck(duck);
  }
}

/** Infers a schema from the data files of `dir` (see the module doc for the rules). */
export async function inferSchema(dir: string): Promise<Schema> {
  return (await inferSchemaDetailed(dir)).schema;
}

/** The header of an inferred schema file. */
function header(dir: string): string {
  return [
    `fanout schema, inferred from the files in ${dir}.`,
    "Check it and edit it: keys and time columns are filled in only where names and",
    "values make them unambiguous, and column types are guesses from a sample.",
    "  file:          the CSV or Parquet file, relative to the data folder",
    "  primary_key:   the column that identifies a row (unique, never empty)",
    "  time_column:   when a row becomes visible; leave it out for static tables",
    "  time_from:     instead of time_column: a foreign key whose row's time each row takes",
    "  foreign_keys:  column: table whose primary key the column holds",
    "  columns:       column: numerical | categorical | multicategorical | text | timestamp | id",
    "                 (columns left out are inferred when the data is loaded)",
  ].join("\n");
}

/** The inferred schema as YAML, with a header telling the user to edit it and notes. */
export async function inferSchemaYaml(dir: string): Promise<string> {
  const { schema, notes } = await inferSchemaDetailed(dir);
  return schemaToYaml(schema, { header: header(dir), notes });
}

/** Options of {@link writeSchemaFile}. */
export interface WriteSchemaOptions {
  /** Replace an existing file (default false: refuse, so that edits are not lost). */
  overwrite?: boolean;
}

/**
 * Infers the schema of `dir` and writes it to `outPath` atomically (a
 * temporary file beside it, then a rename). Returns the inferred schema.
 */
export async function writeSchemaFile(
  dir: string,
  outPath: string,
  opts: WriteSchemaOptions = {},
): Promise<Schema> {
  if (!opts.overwrite && await exists(outPath)) {
    throw new Error(`${outPath} already exists; remove it or overwrite it explicitly`);
  }
  const { schema, notes } = await inferSchemaDetailed(dir);
  const text = schemaToYaml(schema, { header: header(dir), notes });
  const tmp = `${outPath}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, outPath);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  return schema;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Whether a column is unique and never null over the whole table (with
 * `nullsAllowed`: unique among its non-null values).
 */
async function isUnique(
  conn: DuckDBConnection,
  f: FileInfo,
  col: string,
  nullsAllowed = false,
): Promise<boolean> {
  const q = quoteIdent(col);
  const [r] = await queryRows(
    conn,
    `SELECT count(*) AS n, count(${q}) AS nn, count(DISTINCT ${q}) AS d FROM ${f.relation}`,
  );
  if (nullsAllowed) return r.nn === r.d;
  return Number(r.n) > 0 && r.n === r.nn && r.n === r.d;
}

/** Whether the stem `x` of a key column (`race` of `raceId`) names table `table`. */
function stemNames(x: string, table: string): boolean {
  const t = norm(table), s = singular(t);
  return x.length >= 3 && [t, s].some((w) => w.startsWith(x) || w.endsWith(x));
}

async function inferPrimaryKey(
  conn: DuckDBConnection,
  f: FileInfo,
  files: readonly FileInfo[],
): Promise<string | undefined> {
  const t = norm(f.table);
  const s = singular(t);
  const exact = new Set(["id", `${t}id`, `${s}id`]);
  const keyable = f.columns.filter((c) => isIntegerType(c.type) || c.type === "VARCHAR");
  const tier1 = keyable.filter((c) => exact.has(norm(c.name)));
  const tier2 = keyable.filter((c) => {
    const n = norm(c.name);
    return n.endsWith("id") && !exact.has(n) && stemNames(n.slice(0, -2), f.table);
  });
  // Repeated in other files under the same name (so they reference it; a row number that
  // every file has is unique everywhere), and naming none of them (else it is their key).
  const others = files.filter((o) => o !== f);
  const holders = async (n: string) => {
    const out: string[] = [];
    for (const o of others) {
      const col = o.columns.find((c) => norm(c.name) === n);
      if (col && !(await isUnique(conn, o, col.name, true))) out.push(o.table);
    }
    return out;
  };
  const tier3 = keyable.filter((c) => {
    const n = norm(c.name);
    if (!looksLikeId(c.name) || n === "id" || tier1.includes(c) || tier2.includes(c)) return false;
    return !others.some((o) => stemNames(n.slice(0, -2), o.table));
  });
  // Filled only when tiers 1 and 2 find nothing (one query per other file and candidate).
  const referencedBy = new Map<string, string[]>();
  for (const tier of [tier1, tier2, tier3]) {
    const ok: string[] = [];
    for (const c of tier) {
      if (tier === tier3) {
        referencedBy.set(c.name, await holders(norm(c.name)));
        if (referencedBy.get(c.name)!.length === 0) continue;
      }
      if (await isUnique(conn, f, c.name)) ok.push(c.name);
    }
    if (ok.length === 1) {
      if (tier === tier3) {
        f.notes.push(
          `primary key "${ok[0]}": unique here, and repeated in ` +
            `${referencedBy.get(ok[0])!.join(", ")}; check it`,
        );
      }
      return ok[0];
    }
    if (ok.length > 1) {
      f.notes.push(`primary key: several candidates (${ok.join(", ")}); pick one`);
      return undefined;
    }
  }
  return undefined;
}

async function inferTimeColumn(conn: DuckDBConnection, f: FileInfo): Promise<string | undefined> {
  const birth = (name: string) => /birth|^dob$|_dob$/i.test(name);
  const candidates: string[] = [];
  for (const c of f.columns) {
    if (c.name === f.primaryKey || birth(c.name)) continue;
    const q = quoteIdent(c.name);
    let check: string | null = null;
    if (isDateType(c.type)) check = `count(${q}) = count(*)`;
    else if (isIntegerType(c.type) && /date|day/i.test(c.name)) {
      check = `count(${timeExpr(c.name, c.type)}) = count(*)`;
    }
    if (!check) continue;
    const [r] = await queryRows(conn, `SELECT ${check} AS ok FROM ${f.relation}`);
    if (r.ok === true) candidates.push(c.name);
  }
  f.timeCandidates = candidates.length > 0;
  if (candidates.length === 1) return candidates[0];
  if (candidates.length > 1) {
    f.notes.push(
      `time column: several candidates (${candidates.join(", ")}); pick one as time_column`,
    );
  }
  return undefined;
}

/** A column of fewer distinct values is matched to a key by values only when its name says which. */
export const MIN_VALUE_KEYS = 20;

/**
 * The integer columns among `cols` named like dates (`dob`, `…date…`,
 * `…day…`, `…birth…`) whose non-null values are all YYYYMMDD dates: those
 * are `timestamp` features (calendar fields, age), not numbers. A column
 * mostly of dates (tennis birth dates like 18890000) stays numerical, with
 * a note, as the loader rejects a timestamp that is not a date.
 */
async function dateFeatures(
  conn: DuckDBConnection,
  f: FileInfo,
  cols: readonly DuckColumn[],
): Promise<Set<string>> {
  const out = new Set<string>();
  for (const c of cols) {
    if (!isIntegerType(c.type) || !/date|day|birth|^dob$|_dob$/i.test(c.name)) continue;
    // The loader's own reading of the column as a time (null where it is not a date).
    const q = quoteIdent(c.name), time = timeExpr(c.name, c.type);
    const [r] = await queryRows(
      conn,
      `SELECT count(${q}) AS nn, count(${time}) AS ok, ` +
        `min(${q}) FILTER (WHERE ${time} IS NULL) AS bad FROM ${f.relation}`,
    );
    const nn = Number(r.nn), ok = Number(r.ok);
    if (nn > 0 && ok === nn) out.add(c.name);
    else if (nn > 0 && ok >= 0.9 * nn) {
      f.notes.push(
        `"${c.name}" holds YYYYMMDD dates, but ${plural(nn - ok, "value")} ` +
          `${nn - ok === 1 ? "is" : "are"} not (${r.bad}); left numerical (a timestamp ` +
          `column must hold dates only)`,
      );
    }
  }
  return out;
}

/** The normalised names a column referencing `parent` may have. */
function referenceNames(parent: FileInfo): string[] {
  const pk = norm(parent.primaryKey!);
  if (pk !== "id") return [pk];
  const t = norm(parent.table);
  return [`${t}id`, `${singular(t)}id`];
}

/** Whether `col` ends with `pk` at a word boundary (`home_team_id`, `homeTeamId`). */
function endsWithKey(col: string, pk: string): boolean {
  if (pk.toLowerCase() === "id" || col.length <= pk.length) return false;
  if (!col.toLowerCase().endsWith(pk.toLowerCase())) return false;
  const before = col[col.length - pk.length - 1];
  const first = col[col.length - pk.length];
  return before === "_" || (first >= "A" && first <= "Z");
}

async function inferForeignKeys(
  conn: DuckDBConnection,
  f: FileInfo,
  files: FileInfo[],
): Promise<ForeignKey[]> {
  const parents = files.filter((p) => p.primaryKey);
  const out: ForeignKey[] = [];
  for (const c of f.columns) {
    if (c.name === f.primaryKey || c.name === f.timeColumn) continue;
    const n = norm(c.name);
    let matches = parents.filter((p) => referenceNames(p).includes(n));
    if (matches.length === 0) matches = parents.filter((p) => endsWithKey(c.name, p.primaryKey!));
    if (matches.length > 1) {
      const list = matches.map((p) => p.table).join(", ");
      f.notes.push(`foreign key "${c.name}": could reference ${list}; pick one`);
      continue;
    }
    if (matches.length === 0) {
      const byValues = await valueForeignKey(conn, f, c, parents);
      if (byValues) out.push(byValues);
      continue;
    }
    const p = matches[0];
    const share = await containedShare(conn, f, c, p);
    if (share >= 0.95) out.push({ column: c.name, table: p.table });
    else if (share > 0) {
      f.notes.push(
        `"${c.name}" looks like a foreign key to ${p.table}, but only ` +
          `${(share * 100).toFixed(1)}% of its values are there; left out`,
      );
    }
  }
  return out;
}

/** Integer or text: the kind of key a DuckDB type can hold, or null. */
function keyKind(type: string): "int" | "text" | null {
  return isIntegerType(type) ? "int" : type === "VARCHAR" ? "text" : null;
}

/**
 * A foreign key for `c` found by its values (see the module doc), or null;
 * notes say what was guessed or why nothing was.
 */
async function valueForeignKey(
  conn: DuckDBConnection,
  f: FileInfo,
  c: DuckColumn,
  parents: readonly FileInfo[],
): Promise<ForeignKey | null> {
  const kind = keyKind(c.type);
  const n = norm(c.name);
  const named = (p: FileInfo) =>
    [norm(p.table), singular(norm(p.table))].some((w) => w.length >= 3 && n.includes(w));
  if (!kind) return null;
  // A key-like name may reference any table; another name only the tables it names.
  const idLike = looksLikeId(c.name);
  // Unique values under a name naming no table: a row number or a code of its own.
  if (!parents.some(named) && await isUnique(conn, f, c.name, true)) return null;
  const fits: FileInfo[] = [];
  for (const p of parents) {
    if (p === f || !(idLike || named(p))) continue;
    const pk = p.columns.find((x) => x.name === p.primaryKey)!;
    if (keyKind(pk.type) !== kind) continue;
    if (await containedShare(conn, f, c, p) >= 0.95) fits.push(p);
  }
  if (fits.length === 0) return null;
  const namedFits = fits.filter(named);
  let pick: FileInfo | undefined;
  if (namedFits.length === 1) pick = namedFits[0];
  else if (fits.length === 1 && namedFits.length === 0) {
    const q = quoteIdent(c.name);
    const [r] = await queryRows(conn, `SELECT count(DISTINCT ${q}) AS d FROM ${f.relation}`);
    if (Number(r.d) >= MIN_VALUE_KEYS) pick = fits[0];
  }
  if (!pick) {
    const list = fits.map((p) => `${p.table}.${p.primaryKey}`).join(", ");
    f.notes.push(
      `"${c.name}" may be a foreign key: its values are among the keys of ${list}; ` +
        `add the one it references under foreign_keys`,
    );
    return null;
  }
  f.notes.push(
    `foreign key "${c.name}" -> ${pick.table}: found by its values (names do not match); check it`,
  );
  return { column: c.name, table: pick.table };
}

/** Share of the non-null rows of `c` whose value is a primary key of `p`. */
async function containedShare(
  conn: DuckDBConnection,
  f: FileInfo,
  c: DuckColumn,
  p: FileInfo,
): Promise<number> {
  const pkType = p.columns.find((x) => x.name === p.primaryKey)!.type;
  const cast = (e: string) => (pkType === c.type ? e : `CAST(${e} AS VARCHAR)`);
  const col = cast(`c.${quoteIdent(c.name)}`);
  const pk = cast(`p.${quoteIdent(p.primaryKey!)}`);
  const [r] = await queryRows(
    conn,
    `SELECT count(*) AS n, count(*) FILTER (WHERE ${col} IN (SELECT ${pk} FROM ${p.relation} p)) ` +
      `AS hit FROM ${f.relation} c WHERE c.${quoteIdent(c.name)} IS NOT NULL`,
  );
  return Number(r.n) === 0 ? 0 : Number(r.hit) / Number(r.n);
}

/**
 * Proposes `time_from` (see the module doc), deciding tables once every
 * parent is decided, so that a proposal never turns ambiguous later.
 */
async function inferTimeFrom(
  conn: DuckDBConnection,
  files: FileInfo[],
  tables: TableSchema[],
): Promise<void> {
  const info = new Map(files.map((f) => [f.table, f]));
  type State = "timed" | "static" | "open";
  const state = new Map<string, State>(tables.map((t) => [
    t.name,
    t.timeColumn ? "timed" : info.get(t.name)!.timeCandidates ? "static" : "open",
  ]));
  for (let changed = true; changed;) {
    changed = false;
    for (const t of tables) {
      if (state.get(t.name) !== "open") continue;
      const parents = t.foreignKeys.filter((k) => k.table !== t.name);
      if (parents.some((k) => state.get(k.table) === "open")) continue;
      changed = true;
      state.set(t.name, "static");
      const f = info.get(t.name)!;
      const timed = parents.filter((k) => state.get(k.table) === "timed");
      if (timed.length > 1) {
        const list = timed.map((k) => `${k.column} -> ${k.table}`).join(", ");
        f.notes.push(
          `time_from: several foreign keys lead to a table with a time (${list}); pick one ` +
            `as time_from if the rows are events at that table's time`,
        );
        continue;
      }
      if (timed.length === 0) continue;
      const k = timed[0];
      const q = quoteIdent(k.column);
      const [{ n }] = await queryRows(
        conn,
        `SELECT count(*) AS n FROM ${f.relation} WHERE ${q} IS NULL`,
      );
      if (Number(n) > 0) {
        f.notes.push(
          `time_from: "${k.column}" would give each row the time of its ${k.table} row, but ` +
            `it is empty in ${plural(Number(n), "row")}; left out`,
        );
        continue;
      }
      t.timeFrom = k.column;
      state.set(t.name, "timed");
      f.notes.push(
        `time_from "${k.column}": no time column, so each row takes the time of its ` +
          `${k.table} row (the only parent with a time); remove it if the rows are not ` +
          `events at that time`,
      );
    }
  }
}
