/**
 * Test helpers of the worker pool and the loader: a small synthetic
 * users/items/transactions graph, the sampling configuration used on it,
 * and a byte-level comparison of sampler outputs.
 *
 * @module
 */

import assert from "node:assert/strict";
import { buildGraph } from "../store/graph_build.ts";
import type { GraphStore } from "../store/graph.ts";
import { type CompiledSampling, compileSampling } from "./config.ts";
import type { SamplerOutput } from "./types.ts";

/** Start of the synthetic time range (2023-01-01, epoch seconds). */
export const T0 = 1_672_531_200;
/** Length of the synthetic time range (two years, seconds). */
export const SPAN = 2 * 365 * 86400;

/** A deterministic 32-bit random stream. */
export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}

/**
 * A users/items/transactions graph like bench/synthetic_db.ts, small: each
 * transaction has a uniform time, user and item; a user's or item's time is
 * its first transaction's.
 */
export function smallGraph(users = 200, items = 50, transactions = 2000, seed = 1): GraphStore {
  const r = rng(seed);
  const txTime = new Float64Array(transactions);
  const txUser = new Int32Array(transactions), txItem = new Int32Array(transactions);
  const userTime = new Float64Array(users).fill(Infinity);
  const itemTime = new Float64Array(items).fill(Infinity);
  for (let i = 0; i < transactions; i++) {
    txTime[i] = T0 + r(SPAN);
    txUser[i] = r(users);
    txItem[i] = r(items);
    userTime[txUser[i]] = Math.min(userTime[txUser[i]], txTime[i]);
    itemTime[txItem[i]] = Math.min(itemTime[txItem[i]], txTime[i]);
  }
  for (const t of [userTime, itemTime]) {
    for (let i = 0; i < t.length; i++) if (t[i] === Infinity) t[i] = T0 + r(SPAN);
  }
  const ids = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
  return buildGraph({
    nodes: [
      {
        name: "users",
        count: users,
        times: userTime,
        timeColumn: "ts",
        primaryKey: "id",
        keys: ids(users),
      },
      {
        name: "items",
        count: items,
        times: itemTime,
        timeColumn: "ts",
        primaryKey: "id",
        keys: ids(items),
      },
      {
        name: "transactions",
        count: transactions,
        times: txTime,
        timeColumn: "ts",
        primaryKey: "id",
        keys: ids(transactions),
      },
    ],
    foreignKeys: [
      {
        table: "transactions",
        column: "user_id",
        parent: "users",
        childRow: ids(transactions),
        parentRow: txUser,
      },
      {
        table: "transactions",
        column: "item_id",
        parent: "items",
        childRow: ids(transactions),
        parentRow: txItem,
      },
    ],
  });
}

/** The sampling configuration of the tests on `smallGraph`. */
export function testConfig(graph: GraphStore): CompiledSampling {
  return compileSampling(graph, [4, 3], "uniform");
}

/** Asserts that two sampler outputs hold the same typed arrays, byte for byte. */
export function assertSameOutput(a: SamplerOutput, b: SamplerOutput, what = "output"): void {
  assert.deepStrictEqual(a, b, what);
  assert.deepStrictEqual(outputBytes(a), outputBytes(b), `${what} bytes`);
}

/** All bytes of an output's arrays, in a fixed order (types, then names, sorted). */
export function outputBytes(o: SamplerOutput): Uint8Array {
  const parts: ArrayBufferView[] = [o.seedTicks, o.seedLocal];
  for (const k of Object.keys(o.nodes).sort()) parts.push(...Object.values(o.nodes[k]));
  for (const k of Object.keys(o.edges).sort()) parts.push(...Object.values(o.edges[k]));
  const n = parts.reduce((s, p) => s + p.byteLength, 0);
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), off);
    off += p.byteLength;
  }
  return out;
}

/** Sum of the sampled edges of an output. */
export function edgeCount(o: SamplerOutput): number {
  let n = 0;
  for (const e of Object.values(o.edges)) n += e.src.length;
  return n;
}
