/**
 * Brute-force evaluation of a resolved predictive query over in-memory rows:
 * the oracle the compiled SQL is tested against. It loops over anchors ×
 * entities × rows, so it is only for small databases.
 *
 * Rows are plain objects keyed by column name; a row's dense id is its index;
 * time columns hold epoch seconds (or null). Semantics are those documented in
 * compile.ts, written out independently.
 *
 * @module
 */

import type { CompareOp } from "./ast.ts";
import { shiftUs } from "./time.ts";
import type { Anchor } from "./compile.ts";
import type { ResolvedAggregate, ResolvedCond, ResolvedQuery } from "./semantic.ts";

/** A cell value. */
export type Value = number | string | boolean | null;

/** Rows per table name. */
export type RefData = Record<string, Record<string, Value>[]>;

/** One expected output row. */
export interface RefRow {
  /** Entity dense id. */
  entity: number;
  /** Anchor, epoch seconds. */
  anchor: number;
  /** Split. */
  split: number;
  /** Label (number or class text); absent for link tasks. */
  label?: number | string;
  /** Link tasks: sorted distinct target dense ids. */
  targets?: number[];
  /** Static targets on a timed entity table: the entity's time. */
  etime?: number | null;
}

const NUMBER_RE = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/;

/** A value read as a number (like `TRY_CAST(x AS DOUBLE)`), or null. */
export function toNumber(v: Value): number | null {
  if (v === null) return null;
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  return NUMBER_RE.test(v) ? Number(v) : null;
}

/** A value as text (like `CAST(x AS VARCHAR)` for integers, strings and booleans), or null. */
export function toText(v: Value): string | null {
  return v === null ? null : String(v);
}

function cmp(a: number | string, op: CompareOp, b: number | string): boolean {
  switch (op) {
    case "=":
      return a === b;
    case "!=":
      return a !== b;
    case "<":
      return a < b;
    case "<=":
      return a <= b;
    case ">":
      return a > b;
    case ">=":
      return a >= b;
  }
}

function compareValue(v: Value, op: CompareOp, value: number | string, mode: string): boolean {
  const l = mode === "number" ? toNumber(v) : toText(v);
  return l !== null && cmp(l, op, value);
}

/** Evaluates `q` at `anchors` over `data` by brute force; rows sorted like the SQL output. */
export function evaluateReference(
  q: ResolvedQuery,
  data: RefData,
  anchors: readonly Anchor[],
): RefRow[] {
  const e = q.entity.table;
  const entities = data[e.name];
  const out: RefRow[] = [];
  const usOf = (s: number) => Math.round(s * 1e6);

  const aggregate = (g: ResolvedAggregate, key: Value, aUs: number): Value | number[] => {
    const lo = shiftUs(aUs, g.window.start, g.window.unit);
    const hi = shiftUs(aUs, g.window.end, g.window.unit);
    const rows: { row: Record<string, Value>; id: number; t: number }[] = [];
    data[g.table.name].forEach((row, id) => {
      const fk = row[g.fk];
      const t = row[g.timeColumn];
      if (fk === null || key === null || fk !== key || t === null) return;
      const tUs = usOf(t as number);
      if (!(tUs > lo && tUs <= hi)) return;
      if (g.where && !cond(g.where, row)) return;
      rows.push({ row, id, t: tUs });
    });
    const col = g.column?.name;
    const vals = col ? rows.filter((r) => r.row[col] !== null) : rows;
    switch (g.agg) {
      case "COUNT":
        return vals.length;
      case "COUNT_DISTINCT":
        return new Set(vals.map((r) => r.row[col!])).size;
      case "SUM":
      case "AVG":
      case "MIN":
      case "MAX": {
        const xs = vals.map((r) => toNumber(r.row[col!])).filter((x): x is number => x !== null);
        if (g.agg === "SUM") return xs.reduce((s, x) => s + x, 0);
        if (xs.length === 0) return null;
        if (g.agg === "AVG") return xs.reduce((s, x) => s + x, 0) / xs.length;
        return g.agg === "MIN" ? Math.min(...xs) : Math.max(...xs);
      }
      case "FIRST":
      case "LAST": {
        if (vals.length === 0) return null;
        const sorted = [...vals].sort((a, b) => a.t - b.t || a.id - b.id);
        return (g.agg === "FIRST" ? sorted[0] : sorted[sorted.length - 1]).row[col!];
      }
      case "LIST_DISTINCT": {
        const p = g.link!;
        const ids = new Set<number>();
        for (const r of vals) {
          data[p.table.name].forEach((prow, pid) => {
            if (prow[p.key] !== null && prow[p.key] === r.row[col!]) ids.add(pid);
          });
        }
        return [...ids].sort((a, b) => a - b);
      }
    }
  };

  // Aggregate values of the current (entity, anchor), by aggregate id.
  let current = new Map<number, Value | number[]>();
  const cond = (c: ResolvedCond, row: Record<string, Value>): boolean => {
    switch (c.kind) {
      case "and":
        return cond(c.left, row) && cond(c.right, row);
      case "or":
        return cond(c.left, row) || cond(c.right, row);
      case "not":
        return !cond(c.expr, row);
      case "isnull":
        return (row[c.column.name] === null) !== c.negated;
      case "compare": {
        const v = c.left.kind === "column"
          ? row[c.left.column.name]
          : current.get(c.left.agg.id) as Value;
        return compareValue(v, c.op, c.value, c.mode);
      }
    }
  };

  for (const a of anchors) {
    const aUs = usOf(a.time);
    entities.forEach((ent, id) => {
      if (q.target.kind === "aggregate" && e.timeColumn) {
        const t = ent[e.timeColumn];
        if (t === null || usOf(t as number) > aUs) return;
      }
      const key = ent[q.entity.key];
      current = new Map();
      for (const g of q.aggregates) current.set(g.id, aggregate(g, key, aUs));
      if (q.where && !cond(q.where, ent)) return;
      const row: RefRow = { entity: id, anchor: aUs / 1e6, split: a.split };
      const t = q.target;
      if (t.kind === "aggregate" && t.agg.agg === "LIST_DISTINCT") {
        const ids = current.get(t.agg.id) as number[];
        if (ids.length === 0) return;
        row.targets = ids;
      } else {
        const raw = t.kind === "aggregate" ? current.get(t.agg.id) as Value : ent[t.column.name];
        if (raw === null) return;
        let label: number | string | null;
        if (q.compare) {
          label = compareValue(raw, q.compare.op, q.compare.value, q.compare.mode) ? 1 : 0;
        } else label = q.labelType === "text" ? toText(raw) : toNumber(raw);
        if (label === null) return;
        row.label = label;
        if (t.kind === "static" && e.timeColumn) row.etime = ent[e.timeColumn] as number | null;
      }
      out.push(row);
    });
  }
  out.sort((x, y) => x.split - y.split || x.anchor - y.anchor || x.entity - y.entity);
  return out;
}
