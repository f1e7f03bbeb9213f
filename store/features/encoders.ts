/**
 * Column encoders of the feature store: how one fitted {@link EncoderState}
 * turns a source value into numerical values or categorical codes. Fitting
 * (statistics from rows at or before the training cutoff) is in fit.ts; this
 * module is pure and also serves online scoring (one row at a time).
 *
 * Source values are what the SQL expressions of fit.ts yield: numbers (NaN
 * for null) for numerical and timestamp columns (epoch seconds, UTC), strings
 * or null for categorical, multicategorical and text columns.
 *
 * Widths (values a column occupies in its block):
 * - numerical: 2 numerical values, the robust standardised value
 *   `clip((x - median) / scale, -clip, clip)` (0 when missing) and a missing
 *   indicator (1 when the value is null or NaN). Infinities clip to ±clip.
 * - categorical: 1 code; 0 for null or a category not in the vocabulary.
 * - multicategorical: `slots` codes: the row's items in source order (split on
 *   the separator, spaces trimmed, empty items and items outside the
 *   vocabulary dropped), the first `slots` kept, 0 padding.
 * - timestamp: per calendar feature, in the order of `features`: "year" 1
 *   value (standardised and clipped to ±{@link TIMESTAMP_CLIP}); "month",
 *   "weekday", "day", "hour" 2 values each (sin, cos of the phase); "missing"
 *   1 value (1 when null, and then every other value is 0). UTC calendar.
 * - text: `buckets` values, the counts of the lowercased text's character
 *   n-grams (padded with one space at each end; FNV-1a hash modulo
 *   `buckets`), L2-normalised; all zero for null or empty text. Only the first
 *   {@link MAX_TEXT_CHARS} characters count.
 *
 * @module
 */

import type { ColumnArray } from "../columns.ts";
import type { ColumnLayout, EncoderState } from "./format.ts";

/** Standardised years are clipped to this magnitude. */
export const TIMESTAMP_CLIP = 5;
/** Characters of a text value that are hashed (the rest is ignored). */
export const MAX_TEXT_CHARS = 4096;

/** Values (in its block) a column with this fitted encoder occupies. */
export function encoderWidth(e: EncoderState): number {
  switch (e.kind) {
    case "numerical":
      return 2;
    case "categorical":
      return 1;
    case "multicategorical":
      return e.slots;
    case "timestamp":
      return e.features.reduce((s, f) => s + (f === "year" || f === "missing" ? 1 : 2), 0);
    case "text":
      return e.buckets;
  }
}

/** The block an encoder writes to: numerical values or categorical codes. */
export function encoderBlock(e: EncoderState): "num" | "cat" {
  return e.kind === "categorical" || e.kind === "multicategorical" ? "cat" : "num";
}

/** Vocabulary size (code 0 included) of each categorical slot of an encoder; [] for numerical ones. */
export function encoderCardinality(e: EncoderState): number[] {
  if (e.kind === "categorical") return [e.vocab.length + 1];
  if (e.kind === "multicategorical") return new Array(e.slots).fill(e.vocab.length + 1);
  return [];
}

/** A source value: a number (NaN for null) or a string (or null). */
export type SourceValue = number | string | null;

/**
 * A fitted encoder ready to apply: `encode` writes one source value into
 * `out` at `at` (its `width` values; the caller zeroes nothing).
 */
export interface PreparedEncoder {
  /** The state it was prepared from. */
  readonly state: EncoderState;
  /** Values written per source value. */
  readonly width: number;
  /** Encodes one value into `out[at .. at + width)`. */
  encode(value: SourceValue, out: Float32Array | Uint32Array, at: number): void;
}

/** Prepares a fitted encoder (builds its vocabulary lookup once). */
export function prepareEncoder(state: EncoderState): PreparedEncoder {
  const width = encoderWidth(state);
  switch (state.kind) {
    case "numerical": {
      const { median, scale, clip } = state;
      return {
        state,
        width,
        encode(v, out, at) {
          const x = typeof v === "number" ? v : v === null ? NaN : Number(v);
          if (Number.isNaN(x)) {
            out[at] = 0;
            out[at + 1] = 1;
            return;
          }
          const z = (x - median) / scale;
          out[at] = z > clip ? clip : z < -clip ? -clip : z;
          out[at + 1] = 0;
        },
      };
    }
    case "categorical": {
      const codes = vocabCodes(state.vocab);
      return {
        state,
        width,
        encode(v, out, at) {
          out[at] = v === null ? 0 : codes.get(String(v)) ?? 0;
        },
      };
    }
    case "multicategorical": {
      const codes = vocabCodes(state.vocab);
      const { separator, slots } = state;
      return {
        state,
        width,
        encode(v, out, at) {
          let k = 0;
          if (v !== null) {
            for (const piece of String(v).split(separator)) {
              if (k === slots) break;
              const code = codes.get(trimSpaces(piece));
              if (code !== undefined) out[at + k++] = code;
            }
          }
          for (; k < slots; k++) out[at + k] = 0;
        },
      };
    }
    case "timestamp":
      return {
        state,
        width,
        encode(v, out, at) {
          const t = typeof v === "number" ? v : v === null ? NaN : Number(v);
          calendarFeatures(state, t, out, at);
        },
      };
    case "text": {
      const { buckets, ngram } = state;
      return {
        state,
        width,
        encode(v, out, at) {
          hashedNgrams(v === null ? "" : String(v), ngram, buckets, out, at);
        },
      };
    }
  }
}

/** Encodes one value into a new array (for tests and online scoring). */
export function encodeValue(state: EncoderState, value: SourceValue): number[] {
  const p = prepareEncoder(state);
  const out = encoderBlock(state) === "num" ? new Float32Array(p.width) : new Uint32Array(p.width);
  p.encode(value, out, 0);
  return Array.from(out);
}

/**
 * Encodes a chunk of source columns (one per layout column, each `rows`
 * long) into dense row-major blocks: `num` (`rows * numWidth`) and `cat`
 * (`rows * catWidth`), column `c` of row `r` at `r * width + c.offset`.
 */
export function encodeColumns(
  layout: readonly ColumnLayout[],
  encoders: readonly PreparedEncoder[],
  values: readonly ColumnArray[],
  rows: number,
  num: Float32Array,
  numWidth: number,
  cat: Uint32Array,
  catWidth: number,
): void {
  for (let c = 0; c < layout.length; c++) {
    const col = layout[c];
    const enc = encoders[c];
    const src = values[c];
    const [out, stride] = col.block === "num" ? [num, numWidth] : [cat, catWidth];
    let at = col.offset;
    for (let r = 0; r < rows; r++, at += stride) enc.encode(src[r], out, at);
  }
}

function vocabCodes(vocab: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  vocab.forEach((v, i) => m.set(v, i + 1));
  return m;
}

/** Trims spaces (only ' ', as DuckDB's `trim`) at both ends. */
export function trimSpaces(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && s.charCodeAt(a) === 32) a++;
  while (b > a && s.charCodeAt(b - 1) === 32) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

const TAU = 2 * Math.PI;

/** Year, month (1-12) and day (1-31) of a day count since 1970-01-01 (proleptic Gregorian). */
export function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) -
      Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

function calendarFeatures(
  s: Extract<EncoderState, { kind: "timestamp" }>,
  t: number,
  out: Float32Array | Uint32Array,
  at: number,
): void {
  const missing = !Number.isFinite(t);
  const days = missing ? 0 : Math.floor(t / 86400);
  const [y, m, d] = missing ? [0, 1, 1] : civilFromDays(days);
  const weekday = ((days + 3) % 7 + 7) % 7; // Monday = 0 (1970-01-01 was a Thursday)
  const secs = t - days * 86400;
  for (const f of s.features) {
    let phase: number;
    switch (f) {
      case "year": {
        const z = missing ? 0 : (y - s.yearCentre) / s.yearScale;
        out[at++] = z > TIMESTAMP_CLIP ? TIMESTAMP_CLIP : z < -TIMESTAMP_CLIP ? -TIMESTAMP_CLIP : z;
        continue;
      }
      case "missing":
        out[at++] = missing ? 1 : 0;
        continue;
      case "month":
        phase = (m - 1) / 12;
        break;
      case "weekday":
        phase = weekday / 7;
        break;
      case "day":
        phase = (d - 1) / 31;
        break;
      case "hour":
        phase = secs / 86400;
        break;
      default:
        throw new Error(`unknown timestamp feature "${f}"`);
    }
    out[at++] = missing ? 0 : Math.sin(TAU * phase);
    out[at++] = missing ? 0 : Math.cos(TAU * phase);
  }
}

function hashedNgrams(
  text: string,
  n: number,
  buckets: number,
  out: Float32Array | Uint32Array,
  at: number,
): void {
  out.fill(0, at, at + buckets);
  if (text.length === 0) return;
  const s = ` ${text.slice(0, MAX_TEXT_CHARS).toLowerCase()} `;
  const last = Math.max(0, s.length - n);
  for (let i = 0; i <= last; i++) {
    let h = 0x811c9dc5;
    const end = Math.min(s.length, i + n);
    for (let j = i; j < end; j++) h = Math.imul(h ^ s.charCodeAt(j), 0x01000193);
    out[at + (h >>> 0) % buckets] += 1;
  }
  let sq = 0;
  for (let k = 0; k < buckets; k++) sq += out[at + k] * out[at + k];
  const inv = 1 / Math.sqrt(sq);
  for (let k = 0; k < buckets; k++) out[at + k] *= inv;
}
