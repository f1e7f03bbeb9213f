/**
 * Time arithmetic shared by the anchor schedule and the brute-force
 * evaluator: shifting a time by a number of window units, in microseconds
 * since the epoch (DuckDB's TIMESTAMP resolution). Days and hours are exact
 * multiples; months are calendar months with the day clamped to the end of
 * the month (2024-01-31 + 1 month = 2024-02-29), as DuckDB adds intervals.
 *
 * @module
 */

import type { TimeUnit } from "./ast.ts";

/** Adds calendar months to microseconds since the epoch, clamping the day. */
export function addMonthsUs(us: number, months: number): number {
  const ms = Math.floor(us / 1000);
  const rest = us - ms * 1000;
  const d = new Date(ms);
  const total = d.getUTCFullYear() * 12 + d.getUTCMonth() + months;
  const y = Math.floor(total / 12);
  const m = total - y * 12;
  const dim = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  const out = new Date(0);
  out.setUTCFullYear(y, m, Math.min(d.getUTCDate(), dim));
  out.setUTCHours(d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds());
  return out.getTime() * 1000 + rest;
}

/** Microseconds of one day or hour. */
export const UNIT_US: Record<Exclude<TimeUnit, "months">, number> = {
  days: 86400e6,
  hours: 3600e6,
};

/** `us + offset unit`, in microseconds. */
export function shiftUs(us: number, offset: number, unit: TimeUnit): number {
  if (unit === "months") return addMonthsUs(us, offset);
  return us + Math.round(offset * UNIT_US[unit]);
}

/** Epoch seconds rounded to whole microseconds. */
export function toUs(seconds: number): number {
  return Math.round(seconds * 1e6);
}

/**
 * A time given by the user: epoch seconds, a `Date`, or an ISO 8601 string
 * (read as UTC when it has no offset). Throws on anything else.
 */
export function parseTime(t: number | Date | string, what: string): number {
  if (typeof t === "number") {
    if (!Number.isFinite(t)) throw new Error(`${what}: not a finite time: ${t}`);
    return t;
  }
  if (t instanceof Date) {
    if (Number.isNaN(t.getTime())) throw new Error(`${what}: invalid Date`);
    return t.getTime() / 1000;
  }
  const s = /^\d{4}-\d{2}-\d{2}$/.test(t)
    ? `${t}T00:00:00Z`
    : /[zZ]|[+-]\d{2}:?\d{2}$/.test(t)
    ? t
    : `${t.replace(" ", "T")}Z`;
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) {
    throw new Error(`${what}: cannot read "${t}" as a time (use epoch seconds or ISO 8601)`);
  }
  return ms / 1000;
}
