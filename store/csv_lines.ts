/**
 * Line numbers of CSV records, for messages that point into a file.
 *
 * DuckDB numbers rows 0..n-1 in file order; a record can span several lines
 * (quoted newlines) and blank lines are skipped, so the line of a record is
 * found by scanning the file. Only error paths call this.
 *
 * @module
 */

import { fileKind } from "./files.ts";

const NL = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;

/** The bytes of a file, gunzipped for `.gz`; null for compressions not handled here. */
async function openBytes(path: string): Promise<ReadableStream<Uint8Array> | null> {
  if (/\.zst$/i.test(path)) return null;
  const file = await Deno.open(path);
  if (!/\.gz$/i.test(path)) return file.readable;
  return file.readable.pipeThrough(new DecompressionStream("gzip"));
}

/**
 * The 1-based line on which each wanted data record starts (record 0 is the
 * first row after the header). Records past the end are left out of the map.
 */
export async function csvRecordLines(
  path: string,
  records: readonly number[],
): Promise<Map<number, number>> {
  const wanted = [...new Set(records)].sort((a, b) => a - b);
  const out = new Map<number, number>();
  if (wanted.length === 0) return out;
  let next = 0; // index into wanted
  let line = 1;
  let record = -2; // -1 is the header
  let inQuotes = false;
  let atLineStart = true;
  let pendingCR = false; // a line start followed by CR: blank if LF follows
  const stream = await openBytes(path);
  if (!stream) return out;
  for await (const buf of stream) {
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i];
      if (atLineStart && !inQuotes) {
        if (b === NL) {
          line++;
          pendingCR = false;
          continue;
        }
        if (b === CR && !pendingCR) {
          pendingCR = true;
          continue;
        }
        atLineStart = false;
        pendingCR = false;
        record++;
        if (record === wanted[next]) {
          out.set(record, line);
          if (++next === wanted.length) return out;
        }
      }
      if (b === QUOTE) inQuotes = !inQuotes;
      else if (b === NL) {
        line++;
        if (!inQuotes) atLineStart = true;
      }
    }
  }
  return out;
}

/**
 * Describes where rows are, for messages: `line 5` / `lines 5, 9` in a CSV,
 * `row 5` / `rows 5, 9` (1-based) in a Parquet file.
 */
export async function rowPlaces(path: string, records: readonly number[]): Promise<string[]> {
  if (fileKind(path) !== "csv") return records.map((r) => `row ${r + 1}`);
  const lines = await csvRecordLines(path, records);
  return records.map((r) => `line ${lines.get(r) ?? r + 2}`);
}

/** Joins places as `lines 3, 7` (or `rows 3, 7`); one place stays `line 3`. */
export function joinPlaces(places: readonly string[]): string {
  if (places.length <= 1) return places[0] ?? "";
  const word = places[0].split(" ")[0];
  return `${word}s ${places.map((p) => p.split(" ")[1]).join(", ")}`;
}

/**
 * The first structural problem of a CSV file, or null: a record with more or
 * fewer fields than the header, or a quote never closed. For messages when
 * DuckDB cannot read a file.
 */
export async function csvStructureProblem(path: string, delimiter = ","): Promise<string | null> {
  const delim = delimiter.charCodeAt(0);
  let line = 1;
  let recordLine = 1;
  let quoteLine = 0;
  let inQuotes = false;
  let fields = 1;
  let empty = true; // the record so far is empty (a blank line)
  let header = -1;
  const endRecord = (): string | null => {
    if (empty) return null;
    if (header < 0) header = fields;
    else if (fields !== header) {
      return `line ${recordLine} has ${fields} fields, but the header has ${header}`;
    }
    return null;
  };
  const stream = await openBytes(path);
  if (!stream) return null;
  for await (const buf of stream) {
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i];
      if (b === QUOTE) {
        inQuotes = !inQuotes;
        if (inQuotes) quoteLine = line;
        empty = false;
      } else if (b === NL) {
        line++;
        if (inQuotes) continue;
        const problem = endRecord();
        if (problem) return problem;
        recordLine = line;
        fields = 1;
        empty = true;
      } else if (b === delim && !inQuotes) {
        fields++;
        empty = false;
      } else if (b !== CR) empty = false;
    }
  }
  if (inQuotes) return `the quote opened on line ${quoteLine} is never closed`;
  return endRecord();
}
