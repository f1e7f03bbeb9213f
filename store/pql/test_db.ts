/**
 * Test helper: an in-memory DuckDB loaded from plain rows with the
 * conventions of `Database` (store/types.ts: table named as in the schema,
 * the columns plus `__row BIGINT`, the time column a TIMESTAMP), exposing
 * the `SqlDatabase` surface that training_table.ts needs. Used by the
 * brute-force property tests, which need many tiny databases quickly.
 *
 * @module
 */

import { DuckDBInstance } from "../deps.ts";
import { ROW_COLUMN, type Schema, type TableSchema } from "../types.ts";
import { ident, sqlString } from "./compile.ts";
import type { RefData, Value } from "./reference.ts";

/** Column values of a query result. */
export type Columns = Record<string, Float64Array | Int32Array | (string | null)[]>;

/** An in-memory database of plain rows. */
export interface MemoryDatabase {
  /** The schema. */
  readonly schema: Schema;
  /** Rows as objects (BIGINT as number, TIMESTAMP as epoch seconds). */
  query(sql: string): Promise<Record<string, unknown>[]>;
  /** Result columns: numbers as Float64Array (NULL as NaN), text as arrays. */
  columns(sql: string): Promise<Columns>;
  /** Replaces the tables' contents with `data`. */
  load(data: RefData): Promise<void>;
  /** Closes DuckDB. */
  close(): void;
}

function plain(v: unknown): unknown {
  if (typeof v === "bigint") return Number(v);
  if (v instanceof Date) return v.getTime() / 1000;
  return v;
}

function literal(v: Value, type: string): string {
  if (v === null) return "NULL";
  if (type === "TIMESTAMP") return `make_timestamp(${Math.round((v as number) * 1e6)}::BIGINT)`;
  if (typeof v === "string") return sqlString(v);
  return `${v}::${type}`;
}

/**
 * Opens an in-memory database for `schema`; `types` gives each column's
 * DuckDB type (time columns are TIMESTAMP whatever is given).
 */
export async function memoryDatabase(
  schema: Schema,
  types: Record<string, Record<string, string>>,
): Promise<MemoryDatabase> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  await conn.run("SET TimeZone = 'UTC'");
  const colTypes = (table: string) =>
    schema.tables.find((t) => t.name === table)!.columns.map((c) => ({
      name: c.name,
      type: c.name === schema.tables.find((t) => t.name === table)!.timeColumn
        ? "TIMESTAMP"
        : types[table][c.name],
    }));
  const db: MemoryDatabase = {
    schema,
    async query(sql) {
      const r = await conn.runAndReadAll(sql);
      return (r.getRowObjectsJS() as Record<string, unknown>[]).map((row) =>
        Object.fromEntries(Object.entries(row).map(([k, v]) => [k, plain(v)]))
      );
    },
    async columns(sql) {
      const r = await conn.runAndReadAll(sql);
      const out: Columns = {};
      for (const [k, vs] of Object.entries(r.getColumnsObjectJS())) {
        const xs = (vs as unknown[]).map(plain);
        out[k] = xs.some((x) => typeof x === "string")
          ? xs.map((x) => x === null ? null : String(x))
          : Float64Array.from(xs, (x) => x === null ? NaN : Number(x));
      }
      return out;
    },
    async load(data) {
      for (const t of schema.tables) {
        const cols = colTypes(t.name);
        const defs = cols.map((c) => `${ident(c.name)} ${c.type}`).join(", ");
        await conn.run(
          `CREATE OR REPLACE TABLE ${ident(t.name)} (${defs}, ${ident(ROW_COLUMN)} BIGINT)`,
        );
        const rows = data[t.name] ?? [];
        if (rows.length === 0) continue;
        const values = rows.map((row, i) =>
          `(${cols.map((c) => literal(row[c.name] ?? null, c.type)).join(", ")}, ${i})`
        );
        await conn.run(`INSERT INTO ${ident(t.name)} VALUES ${values.join(", ")}`);
      }
    },
    close() {
      conn.closeSync();
      instance.closeSync();
    },
  };
  return db;
}

/** A small shop: users <- orders -> items, users <- visits; items is static. */
export const SHOP_SCHEMA: Schema = {
  tables: [
    {
      name: "users",
      file: "users.csv",
      primaryKey: "id",
      foreignKeys: [],
      timeColumn: "signup",
      columns: [
        { name: "id", stype: "id" },
        { name: "signup", stype: "timestamp" },
        { name: "age", stype: "numerical" },
        { name: "country", stype: "categorical" },
      ],
    },
    {
      name: "orders",
      file: "orders.csv",
      primaryKey: "oid",
      foreignKeys: [{ column: "user", table: "users" }, { column: "item", table: "items" }],
      timeColumn: "ts",
      columns: [
        { name: "oid", stype: "id" },
        { name: "user", stype: "id" },
        { name: "item", stype: "id" },
        { name: "ts", stype: "timestamp" },
        { name: "amount", stype: "numerical" },
        { name: "status", stype: "categorical" },
        { name: "code", stype: "categorical" },
      ],
    },
    {
      name: "items",
      file: "items.csv",
      primaryKey: "iid",
      foreignKeys: [],
      columns: [{ name: "iid", stype: "id" }, { name: "price", stype: "numerical" }],
    },
    {
      name: "visits",
      file: "visits.csv",
      primaryKey: "vid",
      foreignKeys: [{ column: "user", table: "users" }],
      timeColumn: "vt",
      columns: [
        { name: "vid", stype: "id" },
        { name: "user", stype: "id" },
        { name: "vt", stype: "timestamp" },
        { name: "dur", stype: "numerical" },
      ],
    },
  ],
};

/** DuckDB types of the shop tables. */
export const SHOP_TYPES: Record<string, Record<string, string>> = {
  users: { id: "INTEGER", age: "INTEGER", country: "VARCHAR" },
  orders: {
    oid: "INTEGER",
    user: "INTEGER",
    item: "INTEGER",
    amount: "DOUBLE",
    status: "VARCHAR",
    code: "INTEGER",
  },
  items: { iid: "INTEGER", price: "DOUBLE" },
  visits: { vid: "INTEGER", user: "INTEGER", dur: "DOUBLE" },
};

/**
 * Transfers between users: two foreign keys to `users` (`src` sends `amount` to
 * `dst`), so aggregates over it from `users` need `VIA src` or `VIA dst`.
 */
export const TRANSFERS_TABLE: TableSchema = {
  name: "transfers",
  file: "transfers.csv",
  primaryKey: "tid",
  foreignKeys: [{ column: "src", table: "users" }, { column: "dst", table: "users" }],
  timeColumn: "at",
  columns: [
    { name: "tid", stype: "id" },
    { name: "src", stype: "id" },
    { name: "dst", stype: "id" },
    { name: "at", stype: "timestamp" },
    { name: "amount", stype: "numerical" },
    { name: "kind", stype: "categorical" },
  ],
};

/** DuckDB types of `TRANSFERS_TABLE`. */
export const TRANSFERS_TYPES: Record<string, string> = {
  tid: "INTEGER",
  src: "INTEGER",
  dst: "INTEGER",
  amount: "DOUBLE",
  kind: "VARCHAR",
};
