/**
 * Reading a query result as typed-array columns, chunk by chunk, without an
 * object per row: what the graph builder uses for millions of rows.
 *
 * Output per column, by DuckDB type:
 * - integers of any width (TINYINT … BIGINT, unsigned too): `Int32Array` when
 *   every value is non-null and fits in 32 bits; otherwise `Float64Array`, with
 *   NaN for nulls (exact up to 2^53). So keys and `__row` come back as
 *   Int32Array; check with `instanceof` when a column may hold nulls.
 * - FLOAT, DOUBLE, DECIMAL, HUGEINT: `Float64Array`, NaN for nulls.
 * - DATE, TIMESTAMP (any precision, with or without time zone): `Float64Array`
 *   of epoch seconds (UTC), NaN for nulls. TIME: seconds since midnight.
 * - BOOLEAN: as an integer column (0/1).
 * - VARCHAR and everything else (cast to VARCHAR): `(string | null)[]`.
 *
 * The query runs to completion in DuckDB (a materialised result), then each
 * 2048-row chunk's vectors are copied into preallocated arrays.
 *
 * @module
 */

import { type DuckDBConnection, type DuckDBDataChunk, DuckDBTypeId } from "./deps.ts";
import { quoteIdent } from "./duck.ts";

/** One column as {@link readColumns} returns it. */
export type ColumnArray = Float64Array | Int32Array | (string | null)[];

/** How a result column is read. */
type Reader = "int" | "float" | "date" | "timestamp" | "string";

/** DuckDB types read straight from the vectors; others are converted in SQL first. */
const NATIVE: Partial<Record<DuckDBTypeId, Reader>> = {
  [DuckDBTypeId.TINYINT]: "int",
  [DuckDBTypeId.SMALLINT]: "int",
  [DuckDBTypeId.INTEGER]: "int",
  [DuckDBTypeId.BIGINT]: "int",
  [DuckDBTypeId.UTINYINT]: "int",
  [DuckDBTypeId.USMALLINT]: "int",
  [DuckDBTypeId.UINTEGER]: "int",
  [DuckDBTypeId.UBIGINT]: "int",
  [DuckDBTypeId.FLOAT]: "float",
  [DuckDBTypeId.DOUBLE]: "float",
  [DuckDBTypeId.DATE]: "date",
  [DuckDBTypeId.TIMESTAMP]: "timestamp",
  [DuckDBTypeId.TIMESTAMP_TZ]: "timestamp",
  [DuckDBTypeId.VARCHAR]: "string",
};

/** SQL converting a column of a non-native type, and how the converted column is read. */
function conversion(id: DuckDBTypeId, col: string): [string, Reader] {
  switch (id) {
    case DuckDBTypeId.BOOLEAN:
      return [`CAST(${col} AS INTEGER)`, "int"];
    case DuckDBTypeId.DECIMAL:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT:
      return [`CAST(${col} AS DOUBLE)`, "float"];
    case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_MS:
    case DuckDBTypeId.TIMESTAMP_NS:
      return [`epoch(${col})`, "float"];
    case DuckDBTypeId.TIME:
      return [`epoch(${col})`, "float"];
    default:
      return [`CAST(${col} AS VARCHAR)`, "string"];
  }
}

/** A vector's values: a typed array over DuckDB's memory. */
type Items = ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number };

/** The parts of node-api vectors read directly (present at runtime in the pinned version). */
interface RawVector {
  items?: Items;
  validity?: { data?: BigUint64Array | null };
  getItem(i: number): unknown;
}

/** Bytes of a vector's validity mask (bit i set = row i valid), or null when all are valid. */
function validityBytes(v: RawVector): Uint8Array | null {
  const data = v.validity?.data;
  return data ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
}

/** Accumulates one output column over the chunks. */
class Column {
  ints: Int32Array | null;
  floats: Float64Array | null = null;
  strings: (string | null)[] | null = null;

  constructor(readonly reader: Reader, readonly n: number) {
    this.ints = reader === "int" ? new Int32Array(n) : null;
    if (reader === "float" || reader === "date" || reader === "timestamp") {
      this.floats = new Float64Array(n);
    }
    if (reader === "string") this.strings = new Array(n);
  }

  /** Switches an integer column to Float64Array (on a null or a value beyond 32 bits). */
  widen(filled: number): Float64Array {
    const f = new Float64Array(this.n);
    for (let i = 0; i < filled; i++) f[i] = this.ints![i];
    this.ints = null;
    this.floats = f;
    return f;
  }

  result(): ColumnArray {
    return this.ints ?? this.floats ?? this.strings!;
  }

  read(v: RawVector, rows: number, at: number): void {
    const valid = validityBytes(v);
    if (this.reader === "string") {
      const out = this.strings!;
      for (let i = 0; i < rows; i++) out[at + i] = v.getItem(i) as string | null;
      return;
    }
    const items = v.items;
    if (!items) return this.readSlow(v, rows, at);
    const wide = items instanceof BigInt64Array || items instanceof BigUint64Array;
    if (this.reader === "int" && !wide) return this.readInts(items, valid, rows, at);
    if (this.reader === "int") return this.readBigInts(items, valid, rows, at);
    const out = this.floats!;
    if (this.reader === "float") {
      if (!valid) out.set(items as Float64Array, at);
      else for (let i = 0; i < rows; i++) out[at + i] = isValid(valid, i) ? items[i] : NaN;
    } else if (this.reader === "date") {
      for (let i = 0; i < rows; i++) {
        out[at + i] = !valid || isValid(valid, i) ? items[i] * 86400 : NaN;
      }
    } else {
      const w = new Int32Array(items.buffer, items.byteOffset, rows * 2);
      for (let i = 0; i < rows; i++) {
        out[at + i] = !valid || isValid(valid, i)
          ? (w[2 * i + 1] * 4294967296 + (w[2 * i] >>> 0)) / 1e6
          : NaN;
      }
    }
  }

  private readInts(items: Items, valid: Uint8Array | null, rows: number, at: number) {
    if (this.ints && !valid && !(items instanceof Uint32Array)) {
      this.ints.set(items as Int32Array, at);
      return;
    }
    for (let i = 0; i < rows; i++) {
      const ok = !valid || isValid(valid, i);
      const x = items[i];
      if (this.ints && ok && x <= 2147483647) this.ints[at + i] = x;
      else (this.floats ?? this.widen(at + i))[at + i] = ok ? x : NaN;
    }
  }

  private readBigInts(
    items: Items,
    valid: Uint8Array | null,
    rows: number,
    at: number,
  ) {
    const w = new Int32Array(items.buffer, items.byteOffset, rows * 2);
    const unsigned = items instanceof BigUint64Array;
    for (let i = 0; i < rows; i++) {
      const ok = !valid || isValid(valid, i);
      const lo = w[2 * i];
      const hi = w[2 * i + 1];
      if (this.ints && ok && hi === lo >> 31 && !(unsigned && hi !== 0)) {
        this.ints[at + i] = lo;
        continue;
      }
      const f = this.floats ?? this.widen(at + i);
      f[at + i] = !ok ? NaN : (unsigned ? hi >>> 0 : hi) * 4294967296 + (lo >>> 0);
    }
  }

  /** Fallback through getItem, should the vector internals change. */
  private readSlow(v: RawVector, rows: number, at: number) {
    for (let i = 0; i < rows; i++) {
      const x = v.getItem(i) as unknown;
      let num: number;
      if (x === null || x === undefined) num = NaN;
      else if (typeof x === "number" || typeof x === "bigint") num = Number(x);
      else if (typeof x === "object" && "micros" in x) num = Number(x.micros) / 1e6;
      else if (typeof x === "object" && "days" in x) num = Number(x.days) * 86400;
      else num = Number(x);
      if (this.ints && Number.isInteger(num) && Math.abs(num) <= 2147483647) {
        this.ints[at + i] = num;
      } else (this.floats ?? this.widen(at + i))[at + i] = num;
    }
  }
}

function isValid(valid: Uint8Array, i: number): boolean {
  return ((valid[i >> 3] >> (i & 7)) & 1) === 1;
}

/**
 * Runs `sql` and returns its columns as typed arrays (see the module doc for
 * the types). Duplicate column names are made unique (`a`, `a_1`).
 */
export async function readColumns(
  conn: DuckDBConnection,
  sql: string,
): Promise<Record<string, ColumnArray>> {
  sql = sql.trim().replace(/;+$/, "");
  const prepared = await conn.prepare(sql);
  const count = prepared.columnCount;
  const ids: DuckDBTypeId[] = [];
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(prepared.columnTypeId(i));
    names.push(prepared.columnName(i));
  }
  prepared.destroySync();
  const readers: Reader[] = [];
  const exprs: string[] = [];
  let wrap = false;
  for (let i = 0; i < count; i++) {
    const col = quoteIdent(`c${i}`);
    const native = NATIVE[ids[i]];
    if (native) {
      readers.push(native);
      exprs.push(col);
    } else {
      const [expr, reader] = conversion(ids[i], col);
      readers.push(reader);
      exprs.push(`${expr} AS ${col}`);
      wrap = true;
    }
  }
  const aliases = names.map((_, i) => quoteIdent(`c${i}`)).join(", ");
  const run = wrap ? `SELECT ${exprs.join(", ")} FROM (${sql}) AS __q(${aliases})` : sql;
  const result = await conn.run(run);
  const n = result.rowCount;
  const cols = readers.map((r) => new Column(r, n));
  let at = 0;
  for (let c = 0; c < result.chunkCount; c++) {
    const chunk: DuckDBDataChunk = result.getChunk(c);
    const rows = chunk.rowCount;
    for (let i = 0; i < count; i++) {
      cols[i].read(chunk.getColumnVector(i) as unknown as RawVector, rows, at);
    }
    at += rows;
  }
  const out: Record<string, ColumnArray> = {};
  const seen = new Map<string, number>();
  names.forEach((name, i) => {
    let key = name;
    while (key in out) {
      const k = (seen.get(name) ?? 0) + 1;
      seen.set(name, k);
      key = `${name}_${k}`;
    }
    out[key] = cols[i].result();
  });
  return out;
}
