/**
 * Checks a parsed predictive query against a `Schema` and resolves its names.
 *
 * Rules (Kumo-like):
 * - `FOR EACH E.K`: `E` is a table and `K` its primary key.
 * - An aggregate `AGG(T.col [VIA fk], start, end[, unit])` runs over the rows
 *   of a table `T` with a foreign key to `E` (a direct child of `E`), whose
 *   foreign key equals the entity's key and whose time lies in
 *   `(anchor + start, anchor + end]`. `T` must have a time column. When `T`
 *   has several foreign keys to `E`, `VIA fk` names the one to follow (it
 *   must be one of them); without VIA that is an error. Target
 *   windows lie in the future (`0 <= start < end`), filter windows in the past
 *   (`start < end <= 0`); month windows take whole numbers.
 * - `SUM`, `AVG`, `MIN`, `MAX` need a numerical column; `FIRST` / `LAST` a
 *   numerical (regression) or categorical (multiclass) one; `COUNT` and
 *   `COUNT_DISTINCT` take any column (`COUNT(T.*)` counts rows);
 *   `LIST_DISTINCT(T.col)` needs `col` to be a foreign key of `T` to a table
 *   with a primary key (link prediction onto that table).
 * - A static target `PREDICT E.col` is a column of the entity table:
 *   numerical gives regression, categorical multiclass.
 * - A comparison with a constant makes any target but LIST_DISTINCT binary.
 * - Row filters inside an aggregate use columns of `T` only; the entity filter
 *   after WHERE uses columns of `E` and aggregates (with past windows).
 * - Comparisons: a numerical column (or numeric aggregate) compares only with
 *   numbers (TRUE/FALSE read as 1/0); other columns compare with strings (as
 *   text) or numbers (as numbers); timestamp columns cannot be compared.
 *
 * Table and column names match exactly, or case-insensitively when that is
 * unambiguous. Unknown names are reported with the list of valid ones.
 *
 * @module
 */

import type { ColumnSchema, Schema, TableSchema, TaskType } from "../types.ts";
import type {
  AggName,
  Aggregate,
  BoolExpr,
  ColumnRef,
  CompareOp,
  Literal,
  Query,
  Window,
} from "./ast.ts";
import { PqlError } from "./lexer.ts";
import { didYouMean, listChoices } from "../messages.ts";
import { parseQuery } from "./parser.ts";

/** A resolved aggregate over the child table `table` of the entity table. */
export interface ResolvedAggregate {
  /** Index among the query's aggregates (0 is the target when it is an aggregate). */
  id: number;
  /** Aggregation. */
  agg: AggName;
  /** Aggregated table (a direct child of the entity table). */
  table: TableSchema;
  /** Column of `table` that references the entity table (the VIA column when given). */
  fk: string;
  /** Time column of `table`. */
  timeColumn: string;
  /** Aggregated column; absent for `COUNT(T.*)`. */
  column?: ColumnSchema;
  /** Row filter over `table`'s rows. */
  where?: ResolvedCond;
  /** Window. */
  window: Window;
  /** LIST_DISTINCT: the table the column references and its primary key. */
  link?: { table: TableSchema; key: string };
}

/** How a comparison is evaluated: as numbers or as text. */
export type CompareMode = "number" | "text";

/** A resolved boolean condition (row filter or entity filter). */
export type ResolvedCond =
  | { kind: "and" | "or"; left: ResolvedCond; right: ResolvedCond }
  | { kind: "not"; expr: ResolvedCond }
  | {
    kind: "compare";
    left: { kind: "column"; column: ColumnSchema } | { kind: "aggregate"; agg: ResolvedAggregate };
    op: CompareOp;
    value: number | string;
    mode: CompareMode;
  }
  | { kind: "isnull"; column: ColumnSchema; negated: boolean };

/** A query checked against a schema, ready to compile. */
export interface ResolvedQuery {
  /** Query text. */
  text: string;
  /** Task type implied by the query. */
  task: TaskType;
  /** Entity table and its key column. */
  entity: { table: TableSchema; key: string };
  /** Target: an aggregate (id 0) or a static column of the entity table. */
  target:
    | { kind: "aggregate"; agg: ResolvedAggregate }
    | { kind: "static"; column: ColumnSchema };
  /** Comparison turning the target into a binary label. */
  compare?: { op: CompareOp; value: number | string; mode: CompareMode };
  /** Whether labels before comparison are text (multiclass) or numbers. */
  labelType: "number" | "text";
  /** Entity filter. */
  where?: ResolvedCond;
  /** Every aggregate of the query, target first. */
  aggregates: ResolvedAggregate[];
}

/** Parses (when given text) and resolves a query against `schema`; throws `PqlError`. */
export function resolveQuery(query: string | Query, schema: Schema): ResolvedQuery {
  const q = typeof query === "string" ? parseQuery(query) : query;
  return new Resolver(q, schema).resolve();
}

/** Finds a name exactly, else case-insensitively when unique. */
function findName<T extends { name: string }>(items: readonly T[], name: string): T | undefined {
  const exact = items.find((x) => x.name === name);
  if (exact) return exact;
  const lower = name.toLowerCase();
  const ci = items.filter((x) => x.name.toLowerCase() === lower);
  return ci.length === 1 ? ci[0] : undefined;
}

const NUMERIC_AGGS: readonly AggName[] = ["SUM", "AVG", "MIN", "MAX"];

/** A name as PQL reads it back: bare when a plain identifier, else in double quotes. */
function pqlName(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

class Resolver {
  private readonly aggregates: ResolvedAggregate[] = [];
  private entity!: TableSchema;

  constructor(private readonly q: Query, private readonly schema: Schema) {}

  resolve(): ResolvedQuery {
    const q = this.q;
    this.entity = this.table(q.entity.table!, q.entity.pos);
    const key = this.column(this.entity, q.entity.column, q.entity.columnPos);
    if (!this.entity.primaryKey) {
      this.fail(q.entity.pos, `entity table '${this.entity.name}' has no primary key`);
    }
    if (key.name !== this.entity.primaryKey) {
      this.fail(
        q.entity.columnPos,
        `'${this.entity.name}.${key.name}' is not the primary key of '${this.entity.name}' ` +
          `(its primary key is '${this.entity.primaryKey}')`,
      );
    }
    const t = q.target;
    let target: ResolvedQuery["target"];
    let task: TaskType;
    let labelType: "number" | "text" = "number";
    let valueKind: "number" | "text" | "link";
    if (t.expr.kind === "aggregate") {
      const agg = this.aggregate(t.expr, true);
      target = { kind: "aggregate", agg };
      if (agg.agg === "LIST_DISTINCT") {
        task = "link";
        valueKind = "link";
      } else if ((agg.agg === "FIRST" || agg.agg === "LAST") && agg.column) {
        valueKind = this.predictable(agg.column, agg.table, t.expr.ref.columnPos, agg.agg);
        task = valueKind === "number" ? "regression" : "multiclass";
      } else {
        task = "regression";
        valueKind = "number";
      }
    } else {
      const table = this.table(t.expr.table!, t.expr.pos);
      if (table !== this.entity) {
        this.fail(
          t.expr.pos,
          `a static target must be a column of the entity table '${this.entity.name}', ` +
            `found '${table.name}.${t.expr.column}'`,
        );
      }
      const column = this.column(table, t.expr.column, t.expr.columnPos);
      valueKind = this.predictable(column, table, t.expr.columnPos, "a static target");
      task = valueKind === "number" ? "regression" : "multiclass";
      target = { kind: "static", column };
    }
    if (valueKind === "text") labelType = "text";
    let compare: ResolvedQuery["compare"];
    if (t.compare) {
      if (valueKind === "link") {
        this.fail(t.compare.pos, "LIST_DISTINCT cannot be compared with a constant");
      }
      const mode: CompareMode = valueKind === "number" ? "number" : "text";
      compare = { op: t.compare.op, ...this.literal(t.compare.value, mode, "target") };
      task = "binary";
    }
    const where = q.where ? this.cond(q.where, undefined) : undefined;
    return {
      text: q.text,
      task,
      entity: { table: this.entity, key: key.name },
      target,
      compare,
      labelType,
      where,
      aggregates: this.aggregates,
    };
  }

  /** Value kind of a column used as a label. */
  private predictable(
    column: ColumnSchema,
    table: TableSchema,
    pos: number,
    what: string,
  ): "number" | "text" {
    if (column.stype === "numerical") return "number";
    if (column.stype === "categorical") return "text";
    return this.fail(
      pos,
      `${what} needs a numerical or categorical column; ` +
        `'${table.name}.${column.name}' is ${column.stype}`,
    );
  }

  private aggregate(a: Aggregate, isTarget: boolean): ResolvedAggregate {
    const table = this.table(a.ref.table!, a.ref.pos);
    const w = a.window;
    if (!(w.start < w.end)) {
      this.fail(w.pos, `window start (${w.start}) must be less than window end (${w.end})`);
    }
    if (w.unit === "months" && (!Number.isInteger(w.start) || !Number.isInteger(w.end))) {
      this.fail(w.pos, "month windows need whole numbers");
    }
    if (isTarget && w.start < 0) {
      this.fail(
        w.pos,
        `a target window must lie in the future (start >= 0), found start ${w.start}`,
      );
    }
    if (!isTarget && w.end > 0) {
      this.fail(w.pos, `a filter window must lie in the past (end <= 0), found end ${w.end}`);
    }
    if (!table.timeColumn) {
      this.fail(
        a.ref.pos,
        `${a.agg} takes a window over static table '${table.name}' (it has no time column)`,
      );
    }
    const fks = table.foreignKeys.filter((f) => f.table === this.entity.name);
    if (fks.length === 0) {
      const children = this.schema.tables.filter((x) =>
        x.foreignKeys.some((f) => f.table === this.entity.name)
      ).map((x) => x.name);
      this.fail(
        a.ref.pos,
        `table '${table.name}' has no foreign key to entity table '${this.entity.name}'; ` +
          `aggregates need a table that references it directly (` +
          (children.length ? `tables that do: ${children.join(", ")}` : "none does") + ")",
      );
    }
    let fk = fks[0].column;
    if (a.via) fk = this.via(a.via, table, fks.map((f) => f.column));
    else if (fks.length > 1) {
      const [first, ...rest] = fks.map((f) => pqlName(f.column));
      const col = a.ref.column === "*" ? "*" : pqlName(a.ref.column);
      this.fail(
        a.ref.pos,
        `table '${table.name}' has several foreign keys to '${this.entity.name}' ` +
          `(${fks.map((f) => f.column).join(", ")}); which one to follow is ambiguous: ` +
          `write ${a.agg}(${pqlName(table.name)}.${col} VIA ${first}, ...)` +
          rest.map((f) => ` or VIA ${f}`).join(""),
      );
    }
    let column: ColumnSchema | undefined;
    if (a.ref.column !== "*") column = this.column(table, a.ref.column, a.ref.columnPos);
    const colName = column ? `'${table.name}.${column.name}'` : "";
    if (column && NUMERIC_AGGS.includes(a.agg) && column.stype !== "numerical") {
      this.fail(
        a.ref.columnPos,
        `${a.agg} needs a numerical column; ${colName} is ${column.stype}`,
      );
    }
    if (column && column.stype === "timestamp" && a.agg !== "COUNT" && a.agg !== "COUNT_DISTINCT") {
      this.fail(a.ref.columnPos, `${a.agg} of timestamp column ${colName} is not supported`);
    }
    let link: ResolvedAggregate["link"];
    if (a.agg === "LIST_DISTINCT") {
      const fk = table.foreignKeys.find((f) => f.column === column!.name);
      if (!fk) {
        const names = table.foreignKeys.map((f) => f.column);
        this.fail(
          a.ref.columnPos,
          `LIST_DISTINCT needs a foreign key column; ${colName} is not one ` +
            `(foreign keys of '${table.name}': ${names.length ? names.join(", ") : "none"})`,
        );
      }
      const target = this.schema.tables.find((x) => x.name === fk.table);
      if (!target || !target.primaryKey) {
        this.fail(
          a.ref.columnPos,
          `LIST_DISTINCT target table '${fk.table}' is missing or has no primary key`,
        );
      }
      link = { table: target, key: target.primaryKey };
    }
    const id = this.aggregates.length;
    const resolved: ResolvedAggregate = {
      id,
      agg: a.agg,
      table,
      fk,
      timeColumn: table.timeColumn,
      column,
      window: w,
      link,
    };
    this.aggregates.push(resolved);
    if (a.where) resolved.where = this.cond(a.where, table);
    return resolved;
  }

  /** The foreign key named by `VIA`: a column of `table` among `fks`, its keys to the entity. */
  private via(via: ColumnRef, table: TableSchema, fks: string[]): string {
    if (via.table !== undefined && this.table(via.table, via.pos) !== table) {
      // The parser compares names case-insensitively; this catches two tables differing by case.
      this.fail(
        via.pos,
        `VIA takes a foreign key of the aggregated table '${table.name}', ` +
          `found '${via.table}.${via.column}'`,
      );
    }
    const choices = `VIA takes a foreign key of '${table.name}' to entity table ` +
      `'${this.entity.name}': ${fks.join(", ")}`;
    const column = findName(table.columns, via.column);
    if (!column) {
      this.fail(
        via.columnPos,
        `unknown column '${via.column}' in table '${table.name}'; ${choices}` +
          didYouMean(via.column, fks),
      );
    }
    if (!fks.includes(column.name)) {
      const other = table.foreignKeys.find((f) => f.column === column.name);
      this.fail(
        via.columnPos,
        `'${table.name}.${column.name}' ` +
          (other
            ? `is a foreign key to '${other.table}', not to '${this.entity.name}'`
            : "is not a foreign key") +
          `; ${choices}`,
      );
    }
    return column.name;
  }

  /** Resolves a condition; `rowTable` is set inside an aggregate's row filter. */
  private cond(e: BoolExpr, rowTable: TableSchema | undefined): ResolvedCond {
    switch (e.kind) {
      case "and":
      case "or":
        return {
          kind: e.kind,
          left: this.cond(e.left, rowTable),
          right: this.cond(e.right, rowTable),
        };
      case "not":
        return { kind: "not", expr: this.cond(e.expr, rowTable) };
      case "isnull":
        return { kind: "isnull", column: this.condColumn(e.ref, rowTable), negated: e.negated };
      case "in": {
        // IN is an OR of equalities, each literal with its own comparison mode.
        const column = this.condColumn(e.ref, rowTable);
        const colMode = this.columnMode(column, e.ref);
        const eqs: ResolvedCond[] = e.values.map((v) => ({
          kind: "compare",
          left: { kind: "column", column },
          op: "=",
          ...this.literal(v, colMode, `'${column.name}'`),
        }));
        return eqs.reduce((left, right) => ({ kind: "or", left, right }));
      }
      case "compare": {
        if (e.left.kind === "aggregate") {
          const agg = this.aggregate(e.left, false);
          let mode: CompareMode = "number";
          if ((agg.agg === "FIRST" || agg.agg === "LAST") && agg.column?.stype !== "numerical") {
            mode = "text";
          }
          const lit = this.literal(e.right, mode, `${agg.agg}(...)`);
          return { kind: "compare", left: { kind: "aggregate", agg }, op: e.op, ...lit };
        }
        const column = this.condColumn(e.left, rowTable);
        const mode = this.columnMode(column, e.left);
        const lit = this.literal(e.right, mode, `'${column.name}'`);
        return { kind: "compare", left: { kind: "column", column }, op: e.op, ...lit };
      }
    }
  }

  private condColumn(ref: ColumnRef, rowTable: TableSchema | undefined): ColumnSchema {
    const home = rowTable ?? this.entity;
    const table = ref.table === undefined ? home : this.table(ref.table, ref.pos);
    if (table !== home) {
      this.fail(
        ref.pos,
        rowTable
          ? `the row filter of an aggregate over '${home.name}' can only use its columns, ` +
            `found '${table.name}.${ref.column}'`
          : `the entity filter can only use columns of '${home.name}' and aggregates, ` +
            `found '${table.name}.${ref.column}'`,
      );
    }
    return this.column(table, ref.column, ref.columnPos);
  }

  private columnMode(column: ColumnSchema, ref: ColumnRef): CompareMode {
    if (column.stype === "timestamp") {
      this.fail(
        ref.columnPos,
        `comparisons with timestamp column '${column.name}' are not supported`,
      );
    }
    return column.stype === "numerical" ? "number" : "text";
  }

  /** Checks a literal against the comparison mode; text mode keeps numbers as numbers. */
  private literal(
    lit: Literal,
    mode: CompareMode,
    what: string,
  ): { value: number | string; mode: CompareMode } {
    if (lit.kind === "string") {
      if (mode === "number") this.fail(lit.pos, `cannot compare numerical ${what} with a string`);
      return { value: lit.value, mode: "text" };
    }
    const value = lit.kind === "boolean" ? (lit.value ? 1 : 0) : lit.value;
    return { value, mode: "number" };
  }

  private table(name: string, pos: number): TableSchema {
    const t = findName(this.schema.tables, name);
    if (!t) {
      const names = this.schema.tables.map((x) => x.name);
      this.fail(
        pos,
        `unknown table '${name}'; tables: ${listChoices(names)}${didYouMean(name, names)}`,
      );
    }
    return t;
  }

  private column(table: TableSchema, name: string, pos: number): ColumnSchema {
    const c = findName(table.columns, name);
    if (!c) {
      const names = table.columns.map((x) => x.name);
      this.fail(
        pos,
        `unknown column '${name}' in table '${table.name}'; columns: ` +
          listChoices(names) + didYouMean(name, names),
      );
    }
    return c;
  }

  private fail(pos: number, detail: string): never {
    throw new PqlError(this.q.text, pos, detail);
  }
}
