/**
 * Graph-store time: Int32 ticks, `tick = floor((epochSeconds - timeBase) /
 * timeScale)` (see `STATIC_TIME` in types.ts). `chooseTimeScale` picks the
 * finest scale that fits a time range: one second whenever the range spans
 * less than about 136 years, so that `nodeTick <= seedTick` is then exactly
 * `nodeTime <= seedTime` for whole-second times. Wider ranges get a coarser
 * scale (a minute, an hour, a day, …), with `timeBase` a multiple of it so
 * that ticks fall on UTC boundaries.
 *
 * Reserved values: `STATIC_TIME` (-2^31, always visible) and `NEVER_TIME`
 * (2^31-1, a row whose time is unknown: never visible). Real ticks lie in
 * `[TICK_MIN, TICK_MAX]`.
 *
 * @module
 */

import { STATIC_TIME } from "./types.ts";

export { STATIC_TIME };

/** Tick of a row whose time column is null: never visible to any seed. */
export const NEVER_TIME: number = 2147483647;
/** Smallest tick of a real time. */
export const TICK_MIN: number = STATIC_TIME + 1;
/** Largest tick of a real time. */
export const TICK_MAX: number = NEVER_TIME - 1;

/** The mapping between epoch seconds and ticks. */
export interface TimeScale {
  /** Epoch seconds of tick 0. */
  timeBase: number;
  /** Seconds per tick (a positive integer). */
  timeScale: number;
}

const NICE_SCALES = [1, 60, 3600, 86400, 7 * 86400];

/**
 * The finest scale (of 1 s, 1 min, 1 h, 1 day, 1 week, then whole multiples
 * of a week) under which `[minSeconds, maxSeconds]` fits, placed in the
 * middle of the Int32 range so that rows appended later (newer or older)
 * have equal headroom on both sides: about ±68 years around a short range at
 * one second per tick. With no times at all (`minSeconds` not finite) the
 * range is centred on 2001-09-09 (epoch second 1e9).
 */
export function chooseTimeScale(minSeconds: number, maxSeconds: number): TimeScale {
  if (!Number.isFinite(minSeconds) || !Number.isFinite(maxSeconds)) minSeconds = maxSeconds = 1e9;
  if (maxSeconds < minSeconds) throw new RangeError(`time range [${minSeconds}, ${maxSeconds}]`);
  const ticks = TICK_MAX - TICK_MIN; // steps available
  const span = (s: number) => Math.floor(maxSeconds / s) - Math.floor(minSeconds / s);
  let scale = NICE_SCALES.find((s) => span(s) <= ticks);
  if (scale === undefined) {
    const week = 7 * 86400;
    scale = week * Math.ceil((maxSeconds - minSeconds) / ticks / week + 1);
  }
  const pad = Math.floor((ticks - span(scale)) / 2);
  const timeBase = (Math.floor(minSeconds / scale) - TICK_MIN - pad) * scale;
  return { timeBase, timeScale: scale };
}

/**
 * Tick of an epoch-seconds time: `floor((s - timeBase) / timeScale)`; NaN
 * (a null time) gives `NEVER_TIME`. Throws a RangeError for a time outside the
 * graph's range (a graph built on older data cannot hold it: rebuild).
 */
export function toTick(ts: TimeScale, epochSeconds: number): number {
  if (Number.isNaN(epochSeconds)) return NEVER_TIME;
  const t = Math.floor((epochSeconds - ts.timeBase) / ts.timeScale);
  if (!(t >= TICK_MIN && t <= TICK_MAX)) {
    throw new RangeError(
      `time ${iso(epochSeconds)} is outside the graph's time range [${
        iso(fromTick(ts, TICK_MIN))
      }, ${iso(fromTick(ts, TICK_MAX))}]`,
    );
  }
  return t;
}

/**
 * Seed tick for a seed (anchor) time: like `toTick`, but a time past the
 * range gives `TICK_MAX` and one before it `TICK_MIN - 1` (= `STATIC_TIME`:
 * only static rows visible), so any seed time can be compared.
 */
export function seedTick(ts: TimeScale, epochSeconds: number): number {
  if (Number.isNaN(epochSeconds)) throw new RangeError("seed time is NaN");
  const t = Math.floor((epochSeconds - ts.timeBase) / ts.timeScale);
  return t > TICK_MAX ? TICK_MAX : t < TICK_MIN ? STATIC_TIME : t;
}

/**
 * Epoch seconds at the start of a tick; `STATIC_TIME` gives -Infinity and
 * `NEVER_TIME` +Infinity.
 */
export function fromTick(ts: TimeScale, tick: number): number {
  if (tick === STATIC_TIME) return -Infinity;
  if (tick === NEVER_TIME) return Infinity;
  return ts.timeBase + tick * ts.timeScale;
}

/** Writes the ticks of epoch-seconds times (NaN = null) into `out` and returns it. */
export function ticksOf(ts: TimeScale, seconds: ArrayLike<number>, out: Int32Array): Int32Array {
  const base = ts.timeBase, scale = ts.timeScale;
  for (let i = 0; i < seconds.length; i++) {
    const s = seconds[i];
    const t = Math.floor((s - base) / scale);
    out[i] = t >= TICK_MIN && t <= TICK_MAX ? t : toTick(ts, s);
  }
  return out;
}

function iso(seconds: number): string {
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) ? `${seconds} s` : d.toISOString();
}
