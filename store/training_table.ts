/**
 * Training tables from predictive queries: the anchor schedule, running the
 * compiled SQL, and packing the result into a columnar `TrainingTable`.
 *
 * Anchor schedule (window targets), with `unit` the target window's unit and
 * `[start, end]` its bounds:
 * - `step` (in `unit`s) defaults to the window length `end - start`;
 * - the time range is that of the target table's time column;
 * - the test cutoff defaults to `max time - end`, so that test windows are
 *   complete; the validation cutoff to `test cutoff - step`;
 * - test anchors are `testCutoff + i·step` (`testAnchors`, default 1);
 *   validation anchors `valCutoff + i·step` (`valAnchors`, default 1);
 *   training anchors `valCutoff - i·step` for `i = 1, 2, ...` down to
 *   `min time + minHistory` (default: one step of history), at most
 *   `maxTrainAnchors` (default 100);
 * - train and validation labels see only rows with time `<=` the test
 *   cutoff: an anchor whose window would end after it is excluded (not
 *   truncated). Test windows start after the test cutoff.
 *
 * Static targets (`PREDICT E.col FOR EACH E.key`) have one row per entity;
 * the anchor is the latest time in the database (0 without time columns), so
 * the whole history is visible. Entities are split by their own time when the
 * entity table has a time column (the latest `test` fraction is test, the
 * `val` fraction before it validation, entities without a time count as the
 * earliest), else at random with `seed`.
 *
 * Rows come ordered by split, anchor, entity. Multiclass labels index
 * `classes`, the distinct label values sorted (numerically when all are
 * numbers). Link tasks have one row per (entity, anchor) with at least one
 * target; `link.targets[offsets[i]..offsets[i+1])` are row i's targets.
 *
 * @module
 */

import type { Schema, TaskType, TrainingTable } from "./types.ts";
import { Split } from "./types.ts";
import { type Anchor, compileQuery, ident } from "./pql/compile.ts";
import { type ResolvedQuery, resolveQuery } from "./pql/semantic.ts";
import { parseTime, shiftUs, toUs } from "./pql/time.ts";
import type { Window } from "./pql/ast.ts";

export { loadTrainingTable, type LoadTrainingTableOptions } from "./training_table_load.ts";

/** A result column, as `Database.columns` returns it. */
export type ResultColumn = Float64Array | Int32Array | (string | null)[];

/** What training tables need of a database (`Database` in store/database.ts has it). */
export interface SqlDatabase {
  /** The completed schema. */
  readonly schema: Schema;
  /** Rows of a small result as objects. */
  query(sql: string): Promise<Record<string, unknown>[]>;
  /** A result as columns. */
  columns(sql: string): Promise<Record<string, ResultColumn>>;
}

/** A time given by the user: epoch seconds, a Date, or an ISO 8601 string (UTC). */
export type TimeInput = number | Date | string;

/** Options of {@link trainingTable}. */
export interface TrainingTableOptions {
  /** Validation cutoff; default `testCutoff - step`. */
  valCutoff?: TimeInput;
  /** Test cutoff; default `max time of the target table - window end`. */
  testCutoff?: TimeInput;
  /** Distance between anchors, in the target window's unit; default its length. */
  step?: number;
  /** Most training anchors (default 100). */
  maxTrainAnchors?: number;
  /** Validation anchors (default 1). */
  valAnchors?: number;
  /** Test anchors (default 1). */
  testAnchors?: number;
  /** History before the earliest training anchor, in window units; default `step`. */
  minHistory?: number;
  /** Static targets: seed of the random split (default 0). */
  seed?: number;
  /** Static targets: fractions of entities for validation and test (default 0.1 each). */
  staticFractions?: { val: number; test: number };
}

/** A training table with how it was built. */
export interface BuiltTrainingTable extends TrainingTable {
  /** The resolved query. */
  query: ResolvedQuery;
  /** The SQL that produced the rows. */
  sql: string;
  /** Anchors used, with their splits. */
  anchors: Anchor[];
  /** Validation cutoff, epoch seconds (window targets). */
  valCutoff?: number;
  /** Test cutoff, epoch seconds (window targets). */
  testCutoff?: number;
}

/** The anchors of a window target (see the module doc). */
export interface AnchorSchedule {
  /** Anchors, train (latest first), then validation, then test. */
  anchors: Anchor[];
  /** Validation cutoff, epoch seconds. */
  valCutoff: number;
  /** Test cutoff, epoch seconds. */
  testCutoff: number;
}

function positiveInt(x: number | undefined, dflt: number, what: string, min = 1): number {
  const v = x ?? dflt;
  if (!Number.isInteger(v) || v < min) {
    throw new Error(`${what} must be an integer >= ${min}, not ${v}`);
  }
  return v;
}

/**
 * Anchors for a target window over data spanning `range` (epoch seconds of
 * the target table's first and last row). Throws when the range is too
 * short for a training, validation and test anchor.
 */
export function anchorSchedule(
  range: { min: number; max: number },
  window: Window,
  opts: TrainingTableOptions = {},
): AnchorSchedule {
  const { unit, end } = window;
  const step = opts.step ?? window.end - window.start;
  if (!(step > 0) || (unit === "months" && !Number.isInteger(step))) {
    throw new Error(
      `step must be a positive${unit === "months" ? " whole" : ""} number of ${unit}`,
    );
  }
  const maxTrain = positiveInt(opts.maxTrainAnchors, 100, "maxTrainAnchors");
  const nVal = positiveInt(opts.valAnchors, 1, "valAnchors");
  const nTest = positiveInt(opts.testAnchors, 1, "testAnchors");
  const history = opts.minHistory ?? step;
  if (!(history >= 0)) throw new Error(`minHistory must be >= 0, not ${history}`);
  const tc = opts.testCutoff !== undefined
    ? toUs(parseTime(opts.testCutoff, "testCutoff"))
    : shiftUs(toUs(range.max), -end, unit);
  const vc = opts.valCutoff !== undefined
    ? toUs(parseTime(opts.valCutoff, "valCutoff"))
    : shiftUs(tc, -step, unit);
  const iso = (us: number) => new Date(us / 1000).toISOString();
  if (vc >= tc) {
    throw new Error(`the validation cutoff ${iso(vc)} must be before the test cutoff ${iso(tc)}`);
  }
  const fits = (a: number) => shiftUs(a, end, unit) <= tc;
  const anchors: Anchor[] = [];
  const earliest = shiftUs(toUs(range.min), history, unit);
  for (let i = 1; anchors.length < maxTrain; i++) {
    const a = shiftUs(vc, -i * step, unit);
    if (a < earliest) break;
    if (fits(a)) anchors.push({ time: a / 1e6, split: Split.Train });
  }
  if (anchors.length === 0) {
    throw new Error(
      `no training anchors: the first one (${iso(shiftUs(vc, -step, unit))}) would be ` +
        `before ${iso(earliest)} (the data starts ${
          iso(toUs(range.min))
        }, plus ${history} ${unit} ` +
        `of history); choose a later valCutoff, a smaller step or minHistory`,
    );
  }
  let nv = 0;
  for (let i = 0; i < nVal; i++) {
    const a = shiftUs(vc, i * step, unit);
    if (a < tc && fits(a)) {
      anchors.push({ time: a / 1e6, split: Split.Val });
      nv++;
    }
  }
  if (nv === 0) {
    throw new Error(
      `no validation anchors: the window from the validation cutoff ${iso(vc)} ends at ` +
        `${iso(shiftUs(vc, end, unit))}, after the test cutoff ${iso(tc)}; ` +
        `choose an earlier valCutoff`,
    );
  }
  for (let i = 0; i < nTest; i++) {
    anchors.push({ time: shiftUs(tc, i * step, unit) / 1e6, split: Split.Test });
  }
  return { anchors, valCutoff: vc / 1e6, testCutoff: tc / 1e6 };
}

/** Numbers of a result column. */
function numbers(col: ResultColumn | undefined, name: string): ArrayLike<number> {
  if (!col) throw new Error(`result has no column ${name}`);
  if (Array.isArray(col)) return Float64Array.from(col, (x) => (x === null ? NaN : Number(x)));
  return col;
}

/** Class names sorted numerically when all are numbers, else as text; and each label's index. */
export function classIndex(
  values: readonly (string | null)[],
): { classes: string[]; label: Float32Array } {
  const distinct = [...new Set(values.filter((v): v is string => v !== null))];
  const numeric = distinct.every((v) => v.trim() !== "" && Number.isFinite(Number(v)));
  distinct.sort(numeric ? (a, b) => Number(a) - Number(b) : (a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const index = new Map(distinct.map((c, i) => [c, i]));
  return { classes: distinct, label: Float32Array.from(values, (v) => index.get(v!) ?? NaN) };
}

/** Packs query result columns into a training table (link rows grouped into CSR). */
export function packRows(
  task: TaskType,
  entityTable: string,
  cols: Record<string, ResultColumn>,
  targetTable?: string,
): TrainingTable {
  const entity = numbers(cols.entity, "entity");
  const anchor = numbers(cols.anchor, "anchor");
  const split = numbers(cols.split, "split");
  const n = entity.length;
  if (task === "link") {
    const target = numbers(cols.target, "target");
    const starts: number[] = [];
    for (let i = 0; i < n; i++) {
      if (
        i === 0 || entity[i] !== entity[i - 1] || anchor[i] !== anchor[i - 1] ||
        split[i] !== split[i - 1]
      ) starts.push(i);
    }
    const m = starts.length;
    const offsets = new Int32Array(m + 1);
    starts.forEach((s, j) => (offsets[j] = s));
    offsets[m] = n;
    return {
      task,
      entityTable,
      entity: Int32Array.from(starts, (s) => entity[s]),
      anchorTime: Float64Array.from(starts, (s) => anchor[s]),
      split: Uint8Array.from(starts, (s) => split[s]),
      label: new Float32Array(0),
      link: { targetTable: targetTable!, offsets, targets: Int32Array.from(target) },
    };
  }
  const out: TrainingTable = {
    task,
    entityTable,
    entity: Int32Array.from(entity),
    anchorTime: Float64Array.from(anchor),
    split: Uint8Array.from(split),
    label: new Float32Array(n),
  };
  if (task === "multiclass") {
    const raw = cols.label;
    const text = Array.isArray(raw) ? raw : Array.from(numbers(raw, "label"), (x) => String(x));
    const { classes, label } = classIndex(text);
    out.classes = classes;
    out.label = label;
  } else {
    out.label = Float32Array.from(numbers(cols.label, "label"));
  }
  return out;
}

/** A small deterministic PRNG (mulberry32) in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Split ids for `n` rows: the last `test` fraction of `order` is test, the `val` before it val. */
function splitByOrder(order: number[], fractions: { val: number; test: number }): Uint8Array {
  const n = order.length;
  const nTest = Math.round(n * fractions.test);
  const nVal = Math.round(n * fractions.val);
  const split = new Uint8Array(n);
  order.forEach((row, rank) => {
    split[row] = rank >= n - nTest
      ? Split.Test
      : rank >= n - nTest - nVal
      ? Split.Val
      : Split.Train;
  });
  return split;
}

/** Latest time over every time column of the schema, epoch seconds; 0 when none. */
async function latestTime(db: SqlDatabase): Promise<number> {
  const parts = db.schema.tables.filter((t) => t.timeColumn).map((t) =>
    `SELECT max(epoch_us(${ident(t.timeColumn!)})) AS m FROM ${ident(t.name)}`
  );
  if (parts.length === 0) return 0;
  const [r] = await db.query(`SELECT max(m) AS m FROM (${parts.join(" UNION ALL ")})`);
  return r.m === null || r.m === undefined ? 0 : Number(r.m) / 1e6;
}

/**
 * Builds the training table of a predictive query (text or already
 * resolved) over `db`. Throws `PqlError` for a bad query and `Error` for a
 * schedule that does not fit the data (see the module doc for defaults).
 */
export async function trainingTable(
  db: SqlDatabase,
  query: string | ResolvedQuery,
  opts: TrainingTableOptions = {},
): Promise<BuiltTrainingTable> {
  const q = typeof query === "string" ? resolveQuery(query, db.schema) : query;
  const entityTable = q.entity.table.name;
  if (q.target.kind === "static") {
    const anchors = [{ time: await latestTime(db), split: Split.Train }];
    const sql = compileQuery(q, anchors);
    const cols = await db.columns(sql);
    const table = packRows(q.task, entityTable, cols);
    const fractions = opts.staticFractions ?? { val: 0.1, test: 0.1 };
    if (!(fractions.val >= 0 && fractions.test >= 0 && fractions.val + fractions.test < 1)) {
      throw new Error("staticFractions: val and test must be >= 0 and sum to less than 1");
    }
    const n = table.entity.length;
    const order = Array.from({ length: n }, (_, i) => i);
    if (q.entity.table.timeColumn) {
      const et = numbers(cols.etime, "etime");
      const key = (i: number) => (Number.isNaN(et[i]) ? -Infinity : et[i]);
      order.sort((a, b) => key(a) - key(b) || table.entity[a] - table.entity[b]);
    } else {
      const rand = mulberry32(opts.seed ?? 0);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
    }
    const split = splitByOrder(order, fractions);
    const perm = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
      split[a] - split[b] || table.entity[a] - table.entity[b]
    );
    return {
      ...table,
      entity: Int32Array.from(perm, (i) => table.entity[i]),
      anchorTime: Float64Array.from(perm, (i) => table.anchorTime[i]),
      split: Uint8Array.from(perm, (i) => split[i]),
      label: Float32Array.from(perm, (i) => table.label[i]),
      query: q,
      sql,
      anchors,
    };
  }
  const g = q.target.agg;
  const [r] = await db.query(
    `SELECT epoch_us(min(${ident(g.timeColumn)})) AS lo, epoch_us(max(${ident(g.timeColumn)})) ` +
      `AS hi FROM ${ident(g.table.name)}`,
  );
  if (r.lo === null || r.lo === undefined) {
    throw new Error(`table '${g.table.name}' has no rows with a time: cannot place anchors`);
  }
  const schedule = anchorSchedule(
    { min: Number(r.lo) / 1e6, max: Number(r.hi) / 1e6 },
    g.window,
    opts,
  );
  const sql = compileQuery(q, schedule.anchors);
  const table = packRows(q.task, entityTable, await db.columns(sql), g.link?.table.name);
  return {
    ...table,
    query: q,
    sql,
    anchors: schedule.anchors,
    valCutoff: schedule.valCutoff,
    testCutoff: schedule.testCutoff,
  };
}
