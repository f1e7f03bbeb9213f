/**
 * Semantic type inference for columns a schema does not type: statistics
 * over a sample of rows, and the rule that maps them to a semantic type.
 *
 * The rule, in order:
 * - DATE and TIMESTAMP columns are `timestamp`; BOOLEAN is `categorical`;
 *   TIME and INTERVAL are `numerical`; lists of strings are `multicategorical`.
 * - A column named like an id (`id`, `…_id`, `…Id`, `…ID`) is `id`.
 * - Integers are `categorical` with at most 2 distinct values, else `numerical`;
 *   floats and decimals are `numerical`.
 * - Strings where at least 20% of the values hold a separator (`|`, `;` or
 *   `,`) and the pieces are short (under 25 characters on average) and fewer
 *   than the distinct values are `multicategorical`; strings with at most
 *   {@link MAX_CATEGORIES} distinct values and at most 20% distinct, or at
 *   most 50% distinct and either few (at most 20 distinct values) or short
 *   (20 characters on average), are `categorical`; other strings are `text`
 *   (hashed n-grams). Past {@link MAX_CATEGORIES} values a column is mostly
 *   names or free strings (tennis player and tournament names, match scores):
 *   an embedding per value then learns identities and overfits, which
 *   hashed n-grams do not (on the tennis task of the README, test AUROC
 *   0.8127 with those columns categorical, 0.8345 as text).
 *
 * Keys and time columns are typed by the schema (`id`, `timestamp`), not here.
 *
 * @module
 */

import type { DuckDBConnection } from "./deps.ts";
import type { SemanticType } from "./types.ts";
import {
  type DuckColumn,
  isDateType,
  isFloatType,
  isIntegerType,
  queryRows,
  quoteIdent,
  sqlString,
} from "./duck.ts";

/** Most distinct values (in the sample) of a string column inferred `categorical`. */
export const MAX_CATEGORIES = 1000;

/** Rows sampled (from the start of the table) for type statistics. */
export const STYPE_SAMPLE_ROWS = 100_000;

const SEPARATORS = ["|", ";", ","] as const;

/** Statistics of one column over the sample. */
export interface ColumnStats {
  /** Column name. */
  name: string;
  /** DuckDB type. */
  type: string;
  /** Rows in the sample. */
  rows: number;
  /** Non-null values in the sample. */
  nonNull: number;
  /** Distinct non-null values in the sample. */
  distinct: number;
  /** Strings only: mean length. */
  avgLength?: number;
  /** Strings only: the most common list separator, when one is common. */
  list?: { sep: string; share: number; tokens: number; avgTokenLength: number };
}

/** Whether a column name reads as an identifier: `id`, `…_id`, `…Id`, `…ID`. */
export function looksLikeId(name: string): boolean {
  return /^id$/i.test(name) || /_id$/i.test(name) || /[a-z0-9]I[dD]$/.test(name);
}

/** Computes {@link ColumnStats} for `columns` of `relation` (a quoted table name). */
export async function columnStats(
  conn: DuckDBConnection,
  relation: string,
  columns: readonly DuckColumn[],
  sampleRows = STYPE_SAMPLE_ROWS,
): Promise<ColumnStats[]> {
  if (columns.length === 0) return [];
  const sample = `(SELECT * FROM ${relation} LIMIT ${sampleRows})`;
  const aggs = ["count(*) AS n"];
  columns.forEach((c, i) => {
    const q = quoteIdent(c.name);
    aggs.push(`count(${q}) AS nn${i}`, `count(DISTINCT ${q}) AS d${i}`);
    if (c.type === "VARCHAR") {
      aggs.push(`avg(length(${q})) AS l${i}`);
      SEPARATORS.forEach((s, j) =>
        aggs.push(`count(*) FILTER (WHERE contains(${q}, ${sqlString(s)})) AS s${i}_${j}`)
      );
    }
  });
  const [row] = await queryRows(conn, `SELECT ${aggs.join(", ")} FROM ${sample}`);
  const out: ColumnStats[] = [];
  for (const [i, c] of columns.entries()) {
    const nonNull = Number(row[`nn${i}`]);
    const s: ColumnStats = {
      name: c.name,
      type: c.type,
      rows: Number(row.n),
      nonNull,
      distinct: Number(row[`d${i}`]),
    };
    if (c.type === "VARCHAR") {
      s.avgLength = Number(row[`l${i}`] ?? 0);
      let best = -1;
      let bestShare = 0;
      SEPARATORS.forEach((_, j) => {
        const share = nonNull === 0 ? 0 : Number(row[`s${i}_${j}`]) / nonNull;
        if (share > bestShare) [best, bestShare] = [j, share];
      });
      if (best >= 0 && bestShare >= 0.2) {
        s.list = await listStats(conn, sample, c.name, SEPARATORS[best], bestShare);
      }
    }
    out.push(s);
  }
  return out;
}

async function listStats(
  conn: DuckDBConnection,
  sample: string,
  column: string,
  sep: string,
  share: number,
): Promise<ColumnStats["list"]> {
  const q = quoteIdent(column);
  const [r] = await queryRows(
    conn,
    `SELECT count(DISTINCT t) AS tokens, avg(length(t)) AS len ` +
      `FROM (SELECT trim(unnest(string_split(${q}, ${sqlString(sep)}))) AS t FROM ${sample})`,
  );
  return {
    sep,
    share,
    tokens: Number(r.tokens),
    avgTokenLength: Number(r.len ?? 0),
  };
}

/** The semantic type the rule (see the module doc) gives a column. */
export function guessStype(s: ColumnStats): SemanticType {
  const t = s.type;
  if (isDateType(t)) return "timestamp";
  if (t === "BOOLEAN") return "categorical";
  if (t === "TIME" || t === "INTERVAL") return "numerical";
  if (t === "VARCHAR[]") return "multicategorical";
  if (looksLikeId(s.name)) return "id";
  if (isIntegerType(t)) return s.distinct <= 2 ? "categorical" : "numerical";
  if (isFloatType(t)) return "numerical";
  if (t !== "VARCHAR") return "text";
  const ratio = s.nonNull === 0 ? 0 : s.distinct / s.nonNull;
  const avgLength = s.avgLength ?? 0;
  const l = s.list;
  if (l && l.share >= 0.2 && l.avgTokenLength < 25 && l.tokens < s.distinct) {
    return "multicategorical";
  }
  const fewEnough = s.distinct <= MAX_CATEGORIES;
  if (fewEnough && (ratio <= 0.2 || (ratio <= 0.5 && (s.distinct <= 20 || avgLength <= 20)))) {
    return "categorical";
  }
  return "text";
}
