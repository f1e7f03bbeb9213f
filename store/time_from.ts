/**
 * `time_from`: tables without a time of their own that take their parent's
 * time through a foreign key (f1's results happen at their race's date).
 * The schema checks of `time_from`, and the order in which inherited times
 * resolve (parents first). `Database.open` does the resolving
 * (store/load_times.ts).
 *
 * @module
 */

import { type ForeignKey, INHERITED_TIME_COLUMN, type TableSchema } from "./types.ts";
import { didYouMean, listChoices } from "./messages.ts";
import type { SchemaProblem } from "./schema.ts";

/** Whether a table has a time: a time column, or one inherited through `time_from`. */
export function hasTime(t: TableSchema): boolean {
  return t.timeColumn !== undefined || t.timeFrom !== undefined;
}

/** The problems of one table's `time_from` that do not involve other tables' `time_from`. */
export function timeFromProblems(
  t: TableSchema,
  byName: Map<string, TableSchema>,
): SchemaProblem[] {
  const from = t.timeFrom;
  if (from === undefined) return [];
  const at = `table "${t.name}"`;
  const place = { table: t.name, field: "time_from" as const };
  const out: SchemaProblem[] = [];
  const resolved = t.timeColumn === INHERITED_TIME_COLUMN;
  if (t.timeColumn !== undefined && !resolved) {
    out.push({
      ...place,
      message: `${at}: time_column "${t.timeColumn}" and time_from "${from}" exclude each ` +
        `other (a table has a time of its own or takes its parent's); keep one`,
    });
  }
  if (!resolved && t.columns.some((c) => c.name === INHERITED_TIME_COLUMN)) {
    out.push({
      table: t.name,
      field: "columns",
      entry: INHERITED_TIME_COLUMN,
      message: `${at}: column name "${INHERITED_TIME_COLUMN}" is reserved in a table with ` +
        `time_from (it holds the inherited time)`,
    });
  }
  const timed = t.foreignKeys.filter((f) => {
    const p = byName.get(f.table);
    return p !== undefined && hasTime(p);
  }).map((f) => f.column);
  const fk = t.foreignKeys.find((f) => f.column === from);
  if (!fk) {
    const cols = t.foreignKeys.map((f) => f.column);
    out.push({
      ...place,
      message: `${at}: time_from "${from}" is not one of its foreign keys; foreign keys ` +
        `whose table has a time: ${listChoices(timed)}${didYouMean(from, cols)}`,
    });
    return out;
  }
  const parent = byName.get(fk.table);
  if (parent && !hasTime(parent)) {
    out.push({
      ...place,
      message: `${at}: time_from "${from}" references table "${fk.table}", which has no ` +
        `time (neither time_column nor time_from); foreign keys whose table has a time: ` +
        `${listChoices(timed)} (or leave time_from out to make "${t.name}" static)`,
    });
  }
  return out;
}

/** Cycles of `time_from` (a table that would take its time from itself), each reported once. */
export function timeFromCycles(
  tables: TableSchema[],
  byName: Map<string, TableSchema>,
): SchemaProblem[] {
  const next = (t: TableSchema): TableSchema | undefined => {
    const fk = t.foreignKeys.find((f) => f.column === t.timeFrom);
    return t.timeFrom === undefined || !fk ? undefined : byName.get(fk.table);
  };
  const out: SchemaProblem[] = [];
  const reported = new Set<TableSchema>();
  for (const start of tables) {
    const path: TableSchema[] = [];
    let cur: TableSchema | undefined = start;
    while (cur && !path.includes(cur)) {
      path.push(cur);
      cur = next(cur);
    }
    if (cur !== start || reported.has(start)) continue;
    for (const p of path) reported.add(p);
    const chain = path.map((p) => `${p.name}.${p.timeFrom} -> ${next(p)!.name}`).join(", ");
    out.push({
      table: start.name,
      field: "time_from",
      message: `table "${start.name}": time_from forms a cycle (${chain}); a table on it ` +
        `needs a time_column of its own instead`,
    });
  }
  return out;
}

/** The foreign key a table takes its time through, or undefined without `time_from`. */
export function timeFromKey(t: TableSchema): ForeignKey | undefined {
  return t.timeFrom === undefined ? undefined : t.foreignKeys.find((f) => f.column === t.timeFrom);
}

/**
 * The tables with `time_from`, each after the table it takes its time from
 * when that one inherits too. Expects a schema without problems (no cycles).
 */
export function timeFromOrder<T extends { schema: TableSchema }>(tables: T[]): T[] {
  const byName = new Map(tables.map((t) => [t.schema.name, t]));
  const out: T[] = [];
  const done = new Set<T>();
  const visit = (t: T) => {
    if (done.has(t) || t.schema.timeFrom === undefined) return;
    done.add(t);
    const parent = byName.get(timeFromKey(t.schema)?.table ?? "");
    if (parent) visit(parent);
    out.push(t);
  };
  for (const t of tables) visit(t);
  return out;
}

/**
 * A table as the user writes it: a resolved table of `db.schema` (`timeFrom`
 * with `timeColumn` `__time` and a `__time` column) back without the
 * resolution, so that `Database.open(dir, db.schema)` works. Others as they are.
 */
export function unresolved(t: TableSchema): TableSchema {
  if (t.timeFrom === undefined || t.timeColumn !== INHERITED_TIME_COLUMN) return t;
  const { timeColumn: _, ...rest } = t;
  return { ...rest, columns: t.columns.filter((c) => c.name !== INHERITED_TIME_COLUMN) };
}
