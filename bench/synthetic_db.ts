/**
 * A synthetic relational database for benchmarks: `users`, `items` and
 * `transactions` written as Parquet by DuckDB, plus `schema.yaml`, in a
 * cached directory (reruns reuse it; a `.complete` marker says it was
 * written in full). Each transaction has a uniform time over two years
 * (2023–2024, whole seconds), a uniform user and a uniform item; a user's or
 * an item's time is its first transaction's (a uniform time in the two years
 * when it has none). Deterministic: values come from DuckDB's `hash`, not
 * from a random generator. Transactions are in time order (ids ascending
 * with time), as an event log is.
 *
 * Used by the store benchmark and, later, the sampler benchmark.
 *
 * @module
 */

import { DuckDBInstance } from "../store/deps.ts";

/** Sizes of the synthetic database. */
export interface SyntheticSizes {
  /** Number of users (default 1,000,000). */
  users?: number;
  /** Number of items (default 200,000). */
  items?: number;
  /** Number of transactions (default 10,000,000). */
  transactions?: number;
}

/** A written synthetic database. */
export interface SyntheticDb {
  /** Directory with the Parquet files and `schema.yaml`. */
  dir: string;
  /** Path of `schema.yaml`. */
  schemaPath: string;
  /** The sizes. */
  users: number;
  /** The sizes. */
  items: number;
  /** The sizes. */
  transactions: number;
  /** True when this call wrote the files (false: reused from the cache). */
  generated: boolean;
  /** Seconds spent generating (0 when reused). */
  seconds: number;
}

/** The schema of the synthetic database (the YAML of store/schema.ts). */
export const SYNTHETIC_SCHEMA = `# Synthetic users/items/transactions (bench/synthetic_db.ts).
tables:
  users:
    file: users.parquet
    primary_key: user_id
    time_column: created_at
    columns: { age: numerical, country: categorical }
  items:
    file: items.parquet
    primary_key: item_id
    time_column: created_at
    columns: { category: categorical, price: numerical }
  transactions:
    file: transactions.parquet
    primary_key: tx_id
    time_column: ts
    foreign_keys: { user_id: users, item_id: items }
    columns: { amount: numerical }
`;

const START = "2023-01-01 00:00:00";
const SPAN = 2 * 365 * 86400;

/**
 * Writes (or reuses) the synthetic database under `root` (default
 * `out/bench/`), in `synthetic-u<users>-i<items>-t<transactions>/`.
 */
export async function syntheticDb(
  sizes: SyntheticSizes = {},
  root = new URL("../out/bench/", import.meta.url).pathname,
): Promise<SyntheticDb> {
  const users = sizes.users ?? 1_000_000;
  const items = sizes.items ?? 200_000;
  const transactions = sizes.transactions ?? 10_000_000;
  const dir = `${root.replace(/\/+$/, "")}/synthetic-u${users}-i${items}-t${transactions}`;
  const schemaPath = `${dir}/schema.yaml`;
  const result = { dir, schemaPath, users, items, transactions };
  try {
    await Deno.stat(`${dir}/.complete`);
    return { ...result, generated: false, seconds: 0 };
  } catch { /* generate */ }
  const t0 = performance.now();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  try {
    await conn.run("SET TimeZone = 'UTC'");
    await conn.run("SET preserve_insertion_order = true");
    const ts = (expr: string) =>
      `TIMESTAMP '${START}' + to_seconds(CAST(${expr} % ${SPAN} AS BIGINT))`;
    await conn.run(`
      CREATE TABLE tx AS
      SELECT CAST(row_number() OVER (ORDER BY t, i) - 1 AS BIGINT) AS tx_id, user_id, item_id,
             t AS ts, amount
      FROM (
        SELECT i,
          CAST(hash(i, 1) % ${users} AS BIGINT) AS user_id,
          CAST(hash(i, 2) % ${items} AS BIGINT) AS item_id,
          ${ts("hash(i, 3)")} AS t,
          CAST(hash(i, 4) % 100000 AS DOUBLE) / 100 AS amount
        FROM range(${transactions}) r(i)
      ) ORDER BY tx_id`);
    const entity = (key: string, n: number, salt: number, extra: string) => `
      SELECT r.id AS ${key}, coalesce(f.t, ${ts(`hash(r.id, ${salt})`)}) AS created_at, ${extra}
      FROM range(${n}) r(id)
      LEFT JOIN (SELECT ${key}, min(ts) AS t FROM tx GROUP BY ${key}) f ON f.${key} = r.id
      ORDER BY r.id`;
    const copy = (select: string, file: string) =>
      conn.run(`COPY (${select}) TO '${dir}/${file}' (FORMAT PARQUET)`);
    await copy(
      entity(
        "user_id",
        users,
        5,
        `CAST(18 + hash(r.id, 6) % 60 AS INTEGER) AS age, ` +
          `'c' || CAST(hash(r.id, 7) % 40 AS VARCHAR) AS country`,
      ),
      "users.parquet",
    );
    await copy(
      entity(
        "item_id",
        items,
        8,
        `'cat' || CAST(hash(r.id, 9) % 100 AS VARCHAR) AS category, ` +
          `CAST(hash(r.id, 10) % 50000 AS DOUBLE) / 100 AS price`,
      ),
      "items.parquet",
    );
    await copy("SELECT * FROM tx ORDER BY tx_id", "transactions.parquet");
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
  await Deno.writeTextFile(schemaPath, SYNTHETIC_SCHEMA);
  const seconds = (performance.now() - t0) / 1000;
  await Deno.writeTextFile(`${dir}/.complete`, JSON.stringify({ ...result, seconds }) + "\n");
  return { ...result, generated: true, seconds };
}
