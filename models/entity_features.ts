/**
 * Features of the per-entity baseline: what a model that looks only at the
 * entity itself can know at the anchor time, as a dense float64 matrix for
 * `fitLinearBaseline`.
 *
 * Per training row (entity `e`, anchor `a`):
 *
 * - the entity's own encoded row from the feature store (numerical values as
 *   stored; each categorical slot of at most `maxOneHot` codes one-hot);
 * - the entity's age at the anchor, `log1p(days)`, when its table has a time
 *   column;
 * - for every direct child table `C` (a foreign key of `C` to the entity
 *   table) with a time column, over the rows of `C` of `e` with time `<= a`:
 *   `log1p(count)` in the last 7, 30, 90 and 365 days and overall,
 *   `log1p(days since the latest)` (missing when none), and the mean of each
 *   numerical column of `C` (up to `maxNumeric`) over the last 365 days and
 *   overall (missing when none); static child tables give `log1p(count)`.
 *
 * Everything is computed by DuckDB in one range join per child table against
 * the distinct anchor times, so no row after the anchor is ever read.
 * Missing values are NaN (`fitLinearBaseline` imputes the training mean).
 *
 * @module
 */

import type { ColumnArray, Database } from "../store/database.ts";
import { ROW_COLUMN, type TableSchema } from "../store/types.ts";
import { ident } from "../store/pql/compile.ts";
import type { FeatureReader } from "../store/features/reader.ts";
import type { FeatureMatrix } from "./baselines.ts";

/** Options of {@link entityFeatures}. */
export interface EntityFeatureOptions {
  /** Categorical slots with at most this many codes are one-hot encoded (default 64). */
  maxOneHot?: number;
  /** Numerical columns per child table whose means are taken (default 8). */
  maxNumeric?: number;
  /** Count windows, days (default 7, 30, 90, 365). */
  windowsDays?: number[];
}

/** The matrix and the name of each column. */
export interface EntityFeatures extends FeatureMatrix {
  /** Column names (for logs). */
  names: string[];
}

const DAY = 86400;

/**
 * The per-entity feature matrix of rows `(entity[i], anchorTime[i])` of
 * `entityTable` (see the module doc). `reader` gives the entity's own
 * encoded row; without it the own row is left out.
 */
export async function entityFeatures(
  db: Database,
  entityTable: string,
  entity: Int32Array,
  anchorTime: Float64Array,
  reader: FeatureReader | null,
  opts: EntityFeatureOptions = {},
): Promise<EntityFeatures> {
  const n = entity.length;
  const maxOneHot = opts.maxOneHot ?? 64, maxNumeric = opts.maxNumeric ?? 8;
  const windows = opts.windowsDays ?? [7, 30, 90, 365];
  const blocks: { names: string[]; fill: (out: Float64Array, cols: number, at: number) => void }[] =
    [];

  // Own row.
  if (reader && reader.tables().includes(entityTable)) {
    const meta = reader.table(entityTable);
    const d = reader.gatherDecoded(entityTable, entity);
    const nw = meta.numWidth, cw = meta.catWidth;
    const names: string[] = [];
    for (let j = 0; j < nw; j++) names.push(`${entityTable}.num${j}`);
    const onehot: { slot: number; card: number; at: number }[] = [];
    for (let s = 0; s < cw; s++) {
      const card = meta.cardinality[s];
      if (card > maxOneHot) continue;
      onehot.push({ slot: s, card, at: names.length });
      for (let c = 0; c < card; c++) names.push(`${entityTable}.cat${s}=${c}`);
    }
    blocks.push({
      names,
      fill(out, cols, at) {
        for (let i = 0; i < n; i++) {
          const o = i * cols + at;
          for (let j = 0; j < nw; j++) out[o + j] = d.num[i * nw + j];
          for (const h of onehot) {
            const code = d.cat[i * cw + h.slot];
            if (code < h.card) out[o + h.at + code] = 1;
          }
        }
      },
    });
  }

  const schema = db.schema;
  const et = schema.tables.find((t) => t.name === entityTable);
  if (!et) throw new Error(`entityFeatures: no table "${entityTable}"`);
  const us = (a: number) => Math.round(a * 1e6);
  const anchors = [...new Set(Array.from(anchorTime, us))].sort((a, b) => a - b);
  const anchorIndex = new Map(anchors.map((a, i) => [a, i]));
  const rows = db.rowCount(entityTable);
  const key = (a: number, row: number) => anchorIndex.get(us(a))! * rows + row;
  const anchorCte = `anchors AS (SELECT unnest([${
    anchors.join(", ")
  }]::BIGINT[]) AS a_us), a AS (SELECT a_us, make_timestamp(a_us) AS a_ts FROM anchors)`;

  // Age of the entity.
  if (et.timeColumn) {
    const cols = await db.columns(
      `SELECT ${ident(ROW_COLUMN)} AS r, epoch(${ident(et.timeColumn)}) AS t FROM ${
        ident(et.name)
      } ORDER BY r`,
    );
    const t = cols.t as ArrayLike<number>, r = cols.r as ArrayLike<number>;
    const time = new Float64Array(rows).fill(NaN);
    for (let i = 0; i < r.length; i++) time[r[i]] = t[i];
    blocks.push({
      names: [`${entityTable}.age`],
      fill(out, cols, at) {
        for (let i = 0; i < n; i++) {
          const age = (anchorTime[i] - time[entity[i]]) / DAY;
          out[i * cols + at] = Number.isFinite(age) ? Math.log1p(Math.max(0, age)) : NaN;
        }
      },
    });
  }

  // Direct child tables.
  for (const c of schema.tables) {
    for (const fk of c.foreignKeys) {
      if (fk.table !== entityTable || !et.primaryKey) continue;
      const label = `${c.name}.${fk.column}`;
      const join = `JOIN ${ident(et.name)} e ON e.${ident(et.primaryKey)} = c.${ident(fk.column)}`;
      if (!c.timeColumn) {
        const res = await db.columns(
          `SELECT e.${ident(ROW_COLUMN)} AS r, count(*)::DOUBLE AS n FROM ${
            ident(c.name)
          } c ${join} GROUP BY 1`,
        );
        const count = new Float64Array(rows);
        const rr = res.r as ArrayLike<number>, nn = res.n as ArrayLike<number>;
        for (let i = 0; i < rr.length; i++) count[rr[i]] = nn[i];
        blocks.push({
          names: [`${label}.count`],
          fill(out, cols, at) {
            for (let i = 0; i < n; i++) out[i * cols + at] = Math.log1p(count[entity[i]]);
          },
        });
        continue;
      }
      const tc = `c.${ident(c.timeColumn)}`;
      const numeric = numericColumns(c, fk.column).slice(0, maxNumeric);
      const sel: string[] = [];
      const names: string[] = [];
      for (const w of windows) {
        sel.push(
          `count(*) FILTER (WHERE ${tc} > make_timestamp(a.a_us - ${w * DAY * 1e6}::BIGINT))` +
            `::DOUBLE`,
        );
        names.push(`${label}.count${w}d`);
      }
      sel.push("count(*)::DOUBLE");
      names.push(`${label}.count`);
      sel.push(`(a.a_us / 1e6 - max(epoch(${tc}))) / ${DAY}`);
      names.push(`${label}.days_since_last`);
      for (const col of numeric) {
        const v = `TRY_CAST(c.${ident(col)} AS DOUBLE)`;
        sel.push(
          `avg(${v}) FILTER (WHERE ${tc} > make_timestamp(a.a_us - ${365 * DAY * 1e6}::BIGINT))`,
        );
        names.push(`${label}.${col}.mean365d`);
        sel.push(`avg(${v})`);
        names.push(`${label}.${col}.mean`);
      }
      const sql = `WITH ${anchorCte} SELECT a.a_us::DOUBLE AS anchor, e.${
        ident(ROW_COLUMN)
      } AS r, ${sel.map((s, i) => `${s} AS f${i}`).join(", ")} FROM a JOIN ${
        ident(c.name)
      } c ON ${tc} <= a.a_ts ${join} GROUP BY a.a_us, e.${ident(ROW_COLUMN)}`;
      const res = await db.columns(sql);
      const width = sel.length;
      const index = new Map<number, number>();
      const an = res.anchor as ArrayLike<number>, rr = res.r as ArrayLike<number>;
      const vals: ColumnArray[] = Array.from({ length: width }, (_, j) => res[`f${j}`]);
      for (let i = 0; i < rr.length; i++) {
        const k = anchorIndex.get(an[i]);
        if (k !== undefined) index.set(k * rows + rr[i], i);
      }
      const countCols = windows.length + 1;
      blocks.push({
        names,
        fill(out, cols, at) {
          for (let i = 0; i < n; i++) {
            const o = i * cols + at;
            const hit = index.get(key(anchorTime[i], entity[i]));
            for (let j = 0; j < width; j++) {
              let v: number;
              if (hit === undefined) v = j < countCols ? 0 : NaN;
              else {
                const x = vals[j][hit];
                v = x === null || x === undefined ? NaN : Number(x);
              }
              if (j < countCols) v = Math.log1p(v);
              else if (j === countCols) v = Number.isNaN(v) ? NaN : Math.log1p(Math.max(0, v));
              out[o + j] = v;
            }
          }
        },
      });
    }
  }

  const names = blocks.flatMap((b) => b.names);
  const cols = names.length;
  const data = new Float64Array(n * cols);
  let at = 0;
  for (const b of blocks) {
    b.fill(data, cols, at);
    at += b.names.length;
  }
  return { data, rows: n, cols, names };
}

/** Numerical feature columns of a table (keys and time excluded). */
function numericColumns(t: TableSchema, ...exclude: string[]): string[] {
  const keys = new Set([
    t.primaryKey,
    t.timeColumn,
    ROW_COLUMN,
    ...t.foreignKeys.map((f) => f.column),
    ...exclude,
  ]);
  return t.columns.filter((c) => c.stype === "numerical" && !keys.has(c.name)).map((c) => c.name);
}
