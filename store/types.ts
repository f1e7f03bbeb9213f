/**
 * The contracts of store/: the schema a user writes (or `fanout schema`
 * infers), the conventions of the DuckDB database it is loaded into, the
 * graph store's layout, and training tables.
 *
 * @module
 */

/** How a column is used: as a feature of some kind, as a key, or as a time. */
export type SemanticType =
  | "numerical"
  | "categorical"
  | "multicategorical"
  | "text"
  | "timestamp"
  | "id";

/** The semantic types, for validation messages. */
export const SEMANTIC_TYPES: readonly SemanticType[] = [
  "numerical",
  "categorical",
  "multicategorical",
  "text",
  "timestamp",
  "id",
];

/** One column of a table. */
export interface ColumnSchema {
  /** Column name as in the file. */
  name: string;
  /** Semantic type (inferred when the schema file omits it). */
  stype: SemanticType;
}

/** A foreign key: `column` of this table references the primary key of `table`. */
export interface ForeignKey {
  /** Column in the child table. */
  column: string;
  /** Parent table (its primary key is the target). */
  table: string;
}

/** One table. */
export interface TableSchema {
  /** Table name; node type name; used verbatim in edge type names. */
  name: string;
  /** File path (CSV or Parquet), relative to the data directory. */
  file: string;
  /** Primary key column, if the table has one. */
  primaryKey?: string;
  /** Foreign keys. */
  foreignKeys: ForeignKey[];
  /** Time column: each row becomes visible at this time. Static when absent. */
  timeColumn?: string;
  /**
   * A foreign key column whose parent's time this row takes (schema key
   * `time_from`), for event tables without a date of their own (f1's results
   * happen at their race's date). `Database.open` resolves it into a TIMESTAMP
   * column `__time` and sets `timeColumn` to it in `db.schema`, so consumers
   * only ever see `timeColumn`. Chains (a parent that inherits too) resolve in
   * dependency order.
   */
  timeFrom?: string;
  /** Every column of the file with its semantic type (keys and time included). */
  columns: ColumnSchema[];
}

/** A relational database description. */
export interface Schema {
  /** Tables in the order of the schema file. */
  tables: TableSchema[];
}

/**
 * DuckDB conventions of a loaded `Database` (store/database.ts):
 * - each table is a DuckDB table named exactly as in the schema (quoted),
 *   with the file's columns plus `__row BIGINT`, the dense node id 0..n-1 in
 *   file order;
 * - the time column, when there is one, is a TIMESTAMP column of the same name;
 * - rows dropped for dangling foreign keys (option "drop") are removed before
 *   `__row` is assigned, so `__row` is always dense;
 * - a table with `timeFrom` gets a TIMESTAMP column {@link INHERITED_TIME_COLUMN}
 *   (`__time`), its parent's time, and `timeColumn` names it.
 */
export const ROW_COLUMN = "__row";

/**
 * The column `Database.open` adds to a table with `time_from`: the time of
 * the row's parent (through that foreign key), as TIMESTAMP. Reserved in
 * such tables.
 */
export const INHERITED_TIME_COLUMN = "__time";

/** Edge type name for a foreign key, in Kumo's format: `CHILD.FK->PARENT.PK` or reversed. */
export function edgeTypeName(
  src: string,
  srcColumn: string,
  dst: string,
  dstColumn: string,
): string {
  return `${src}.${srcColumn}->${dst}.${dstColumn}`;
}

/** The two edge types of a foreign key. */
export interface EdgeTypePair {
  /** `CHILD.FK->PARENT.PK`: each child row to its parent. */
  forward: string;
  /** `PARENT.PK->CHILD.FK`: each parent to its children. */
  reverse: string;
}

/**
 * Times in the graph store are Int32 ticks: `tick = floor((epochSeconds -
 * timeBase) / timeScale)`, with `timeBase` and `timeScale` chosen per graph so
 * that every time fits; static rows hold `STATIC_TIME`, the smallest Int32,
 * so that `time <= seedTime` is true for them without a special case.
 */
export const STATIC_TIME: number = -2147483648;

/** Task types a training table can have. */
export type TaskType = "binary" | "regression" | "multiclass" | "link";

/** Which split a training row belongs to. */
export const enum Split {
  Train = 0,
  Val = 1,
  Test = 2,
}

/**
 * A training table: one row per (entity, anchor time), with a label.
 * Columnar typed arrays; no object per row.
 */
export interface TrainingTable {
  /** Task type, following from the query (or given with a supplied table). */
  task: TaskType;
  /** Entity table (node type of the seeds). */
  entityTable: string;
  /** Dense node ids of the entities (`__row`). */
  entity: Int32Array;
  /** Anchor (seed) time of each row, epoch seconds. */
  anchorTime: Float64Array;
  /** Split of each row. */
  split: Uint8Array;
  /** Labels: binary 0/1, regression values, or multiclass class index. Empty for link tasks. */
  label: Float32Array;
  /** Class names for multiclass (label is an index into it). */
  classes?: string[];
  /** Link tasks: the target table and, per row, its target dense ids as CSR. */
  link?: { targetTable: string; offsets: Int32Array; targets: Int32Array };
}
