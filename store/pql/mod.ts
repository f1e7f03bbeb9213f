/**
 * Predictive queries (PQL): `PREDICT <target> FOR EACH <TABLE>.<PK> [WHERE
 * <filter>]`, parsed (parser.ts), checked against a schema (semantic.ts) and
 * compiled to DuckDB SQL that produces training rows (compile.ts).
 * store/training_table.ts schedules the anchors and builds the
 * `TrainingTable`; reference.ts is the brute-force evaluator the tests check
 * the SQL against. An aggregate `AGG(T.col [VIA fk] [WHERE filter], start,
 * end[, unit])` runs over the rows of a child table `T` of the entity table;
 * `VIA fk` picks the foreign key to follow when `T` has several to it
 * (`COUNT(matches.* VIA winner_id, 0, 90)`).
 *
 * ```ts
 * const q = resolveQuery("PREDICT COUNT(orders.*, 0, 30) > 0 FOR EACH users.id", schema);
 * q.task; // "binary"
 * const sql = compileQuery(q, [{ time: Date.UTC(2024, 0, 1) / 1000, split: 0 }]);
 * ```
 *
 * @module
 */

export type {
  AggName,
  Aggregate,
  BoolExpr,
  ColumnRef,
  CompareOp,
  Literal,
  Query,
  Target,
  TimeUnit,
  Window,
} from "./ast.ts";
export { AGG_NAMES, COMPARE_OPS } from "./ast.ts";
export { lineColumn, PqlError, type Token, tokenize, type TokenKind } from "./lexer.ts";
export { parseQuery } from "./parser.ts";
export {
  type CompareMode,
  type ResolvedAggregate,
  type ResolvedCond,
  type ResolvedQuery,
  resolveQuery,
} from "./semantic.ts";
export { type Anchor, compileEntityFilter, compileQuery } from "./compile.ts";
export { addMonthsUs, parseTime, shiftUs } from "./time.ts";
