/**
 * Syntax tree of a predictive query, as the parser builds it (names are not
 * yet checked against a schema; see semantic.ts for that). Every node keeps
 * `pos`, the offset of its first character, so that semantic errors can point
 * at it.
 *
 * @module
 */

/** A column reference `TABLE.COLUMN`; `table` is absent for a bare column inside an aggregate filter. */
export interface ColumnRef {
  /** Node kind. */
  kind: "column";
  /** Table name as written (resolved later, case-insensitively when unambiguous). */
  table?: string;
  /** Column name as written, or `*` in `COUNT(T.*)`. */
  column: string;
  /** Offset of the reference. */
  pos: number;
  /** Offset of the column name. */
  columnPos: number;
}

/** A constant in a comparison. */
export type Literal =
  | { kind: "number"; value: number; pos: number }
  | { kind: "string"; value: string; pos: number }
  | { kind: "boolean"; value: boolean; pos: number };

/** Comparison operators (`<>` is read as `!=`). */
export type CompareOp = "=" | "!=" | "<" | "<=" | ">" | ">=";

/** The comparison operators. */
export const COMPARE_OPS: readonly CompareOp[] = ["=", "!=", "<", "<=", ">", ">="];

/** Aggregations over a window of rows. */
export type AggName =
  | "COUNT"
  | "SUM"
  | "AVG"
  | "MIN"
  | "MAX"
  | "COUNT_DISTINCT"
  | "FIRST"
  | "LAST"
  | "LIST_DISTINCT";

/** The aggregation names, upper case. */
export const AGG_NAMES: readonly AggName[] = [
  "COUNT",
  "SUM",
  "AVG",
  "MIN",
  "MAX",
  "COUNT_DISTINCT",
  "FIRST",
  "LAST",
  "LIST_DISTINCT",
];

/** Unit of window bounds. */
export type TimeUnit = "days" | "hours" | "months";

/** A window `(anchor + start, anchor + end]` in `unit`s. */
export interface Window {
  /** Start offset (exclusive bound). */
  start: number;
  /** End offset (inclusive bound). */
  end: number;
  /** Unit of both offsets (`days` when not written). */
  unit: TimeUnit;
  /** Offset of the start number. */
  pos: number;
}

/** `AGG(T.col [VIA fk] [WHERE filter], start, end[, unit])`. */
export interface Aggregate {
  /** Node kind. */
  kind: "aggregate";
  /** Aggregation. */
  agg: AggName;
  /** Aggregated column (`*` only for COUNT). */
  ref: ColumnRef;
  /**
   * `VIA fk`: the foreign key of the aggregated table to follow to the entity
   * table, needed when it has several (`COUNT(matches.* VIA winner_id, 0, 90)`).
   * `table` is absent when the column is written bare; when written, the parser
   * has checked it names the aggregated table (case-insensitively).
   */
  via?: ColumnRef;
  /** Row filter on the rows of the aggregated table. */
  where?: BoolExpr;
  /** Window relative to the anchor time. */
  window: Window;
  /** Offset of the aggregation name. */
  pos: number;
}

/** A row-level or entity-level boolean expression. */
export type BoolExpr =
  | { kind: "and" | "or"; left: BoolExpr; right: BoolExpr; pos: number }
  | { kind: "not"; expr: BoolExpr; pos: number }
  | { kind: "compare"; left: ColumnRef | Aggregate; op: CompareOp; right: Literal; pos: number }
  | { kind: "isnull"; ref: ColumnRef; negated: boolean; pos: number }
  | { kind: "in"; ref: ColumnRef; values: Literal[]; pos: number };

/** What to predict: an aggregate or a static column, optionally compared with a constant. */
export interface Target {
  /** An aggregate over a window, or a static column of the entity table. */
  expr: Aggregate | ColumnRef;
  /** Comparison that turns the target into a binary label. */
  compare?: { op: CompareOp; value: Literal; pos: number };
  /** Offset of the target. */
  pos: number;
}

/** `PREDICT target FOR EACH TABLE.KEY [WHERE filter]`. */
export interface Query {
  /** The query text (for error messages). */
  text: string;
  /** Target. */
  target: Target;
  /** `TABLE.KEY` after FOR EACH. */
  entity: ColumnRef;
  /** Entity filter after WHERE. */
  where?: BoolExpr;
}
