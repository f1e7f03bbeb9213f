import assert from "node:assert/strict";
import fc from "fast-check";
import { buildCsr, buildGraph, timeOrder } from "./graph_build.ts";
import { arbDb, buildInputOf, checkAgainstBrute, throwsWith } from "./graph_testing.ts";
import {
  chooseTimeScale,
  fromTick,
  NEVER_TIME,
  seedTick,
  STATIC_TIME,
  TICK_MIN,
  toTick,
} from "./ticks.ts";
import { sortPermutation } from "./radix.ts";
import { buildKeyIndex, keyAt, lookupKey } from "./keys.ts";

Deno.test("ticks: scale 1 for a century, coarser beyond, reserved ends", () => {
  const ts = chooseTimeScale(-631152000, 1.76e9);
  assert.deepEqual(ts.timeScale, 1);
  assert.ok(toTick(ts, -631152000) > TICK_MIN + 2 ** 29);
  assert.ok(toTick(ts, 2.5e9) < NEVER_TIME - 1);
  assert.deepEqual(fromTick(ts, toTick(ts, 1.5e9)), 1.5e9);
  assert.deepEqual(toTick(ts, NaN), NEVER_TIME);
  assert.throws(() => toTick(ts, 1e12), RangeError);
  assert.deepEqual(seedTick(ts, 1e12), NEVER_TIME - 1);
  assert.deepEqual(seedTick(ts, -1e12), STATIC_TIME);
  const wide = chooseTimeScale(-1e10, 1e10);
  assert.deepEqual(wide.timeScale, 60);
  assert.deepEqual(wide.timeBase % 60, 0);
  assert.deepEqual(toTick(wide, 120) - toTick(wide, 60), 1);
});

Deno.test("radix sortPermutation is a stable sort", () => {
  fc.assert(fc.property(fc.array(fc.integer()), fc.boolean(), (xs, small) => {
    const keys = Int32Array.from(xs.map((x) => (small ? x % 50 : x)));
    const p = sortPermutation(keys) ?? Int32Array.from(keys.keys());
    const want = [...keys.keys()].sort((a, b) => keys[a] - keys[b] || a - b);
    assert.deepEqual([...p], want);
  }));
});

Deno.test("key index: lookup and id → key for int and string keys", () => {
  const ints = buildKeyIndex(Float64Array.from([30, 10, 20, 5e9]));
  assert.deepEqual(ints.kind, "float64");
  assert.deepEqual(
    [lookupKey(ints, 20), lookupKey(ints, 5e9), lookupKey(ints, 7), keyAt(ints, 1)],
    [
      2,
      3,
      -1,
      10,
    ],
  );
  const i32 = buildKeyIndex(Int32Array.from([1, 2, 3]));
  assert.deepEqual([i32.kind, i32.order, lookupKey(i32, "3")], ["int32", null, 2]);
  const strs = buildKeyIndex(["b", "São", "a", ""]);
  assert.deepEqual([lookupKey(strs, "São"), lookupKey(strs, ""), lookupKey(strs, "c")], [1, 3, -1]);
  assert.deepEqual(keyAt(strs, 1), "São");
  throwsWith(() => buildKeyIndex(["x", "y", "x"], "T.id"), "T.id: duplicate key");
  throwsWith(() => buildKeyIndex(Float64Array.from([1, NaN])), "null key");
});

Deno.test("buildCsr sorts rows by neighbour time, then id", () => {
  const time = Int32Array.from([5, 1, 5, 0]);
  const csr = buildCsr(
    2,
    Int32Array.from([0, 0, 0, 0, 1, -1]),
    Int32Array.from([0, 1, 2, 3, 2, 1]),
    time,
    timeOrder(time),
    true,
  );
  assert.deepEqual([...csr.offsets], [0, 4, 5]);
  assert.deepEqual([...csr.nbr], [3, 1, 0, 2, 2]);
  assert.deepEqual([...csr.nbrTime!], [0, 1, 5, 5, 5]);
  assert.throws(
    () => buildCsr(1, Int32Array.of(1), Int32Array.of(0), time, null, false),
    RangeError,
  );
});

Deno.test("edge types, names and errors", () => {
  const g = buildGraph({
    nodes: [
      { name: "users", count: 2, primaryKey: "uid", keys: Int32Array.of(7, 9) },
      { name: "tx", count: 3, times: Float64Array.of(1e9, 1e9 + 5, 1e9 + 1) },
    ],
    foreignKeys: [{
      table: "tx",
      column: "uid",
      parent: "users",
      childRow: Int32Array.of(0, 1, 2),
      parentRow: Int32Array.of(1, 1, 0),
    }],
  });
  assert.deepEqual(g.edgeTypes(), ["tx.uid->users.uid", "users.uid->tx.uid"]);
  assert.deepEqual(g.edgeType("tx.uid->users.uid").nbrTime, null);
  assert.deepEqual([...g.neighbors("users.uid->tx.uid", 1).ids], [0, 1]);
  assert.deepEqual(g.idOf("users", 9), 1);
  assert.deepEqual(g.keyOf("users", 0), 7);
  throwsWith(() => g.edgeType("nope"), "edge types: tx.uid->users.uid, users.uid->tx.uid");
  throwsWith(() => g.node("nope"), "node types: users, tx");
  const b = g.bytes();
  assert.deepEqual(b.edgeDirections, 6);
  assert.equal(b.edges, (4 + 3) * 4 + (3 + 3 + 3) * 4);
  assert.equal(b.nodeTime, 5 * 4);
  assert.equal(b.perEdge, 84 / 6);
});

Deno.test("property: CSR neighbours and times match a brute-force join", () => {
  fc.assert(
    fc.property(arbDb(), (db) => {
      const g = buildGraph(buildInputOf(db));
      checkAgainstBrute(g, db);
      for (const t of db.tables) {
        t.keys.forEach((k, i) => {
          assert.deepEqual(g.idOf(t.name, k), i);
          assert.deepEqual(g.keyOf(t.name, i), k);
        });
        for (const e of g.edgeTypes().map((n) => g.edgeType(n))) {
          for (let s = 0; s + 1 < e.offsets.length; s++) {
            const times = e.nbrTime ?? e.nbr.map((d) => g.node(e.dst).time[d]);
            for (let i = e.offsets[s] + 1; i < e.offsets[s + 1]; i++) {
              assert(times[i - 1] <= times[i], "adjacency sorted by time");
            }
          }
        }
      }
    }),
    { numRuns: 150 },
  );
});

Deno.test("toShared hands the arrays to a worker without copying", async () => {
  const g = buildGraph({
    nodes: [
      { name: "a", count: 2, primaryKey: "id", keys: Int32Array.of(1, 2) },
      { name: "b", count: 3, times: Float64Array.of(1e9 + 2, 1e9, 1e9 + 1) },
    ],
    foreignKeys: [{
      table: "b",
      column: "a",
      parent: "a",
      childRow: Int32Array.of(0, 1, 2),
      parentRow: Int32Array.of(0, 0, 0),
    }],
  });
  const graphUrl = new URL("./graph.ts", import.meta.url).href;
  const code = `import { GraphStore } from "${graphUrl}";
    self.onmessage = (m) => {
      const g = GraphStore.fromShared(m.data.graph);
      const e = g.edgeType("a.id->b.a");
      Atomics.wait(m.data.flag, 0, 0); // until the main thread has written the sentinel
      self.postMessage({ ids: [...g.neighbors("a.id->b.a", 0).ids], sentinel: e.nbr[0] });
    };`;
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  try {
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const reply = new Promise<{ ids: number[]; sentinel: number }>((resolve) => {
      worker.onmessage = (m) => resolve(m.data);
    });
    worker.postMessage({ graph: g.toShared(), flag });
    const nbr = g.edgeType("a.id->b.a").nbr;
    const before = [...nbr];
    nbr[0] = 12345; // a write after posting is seen by the worker: the buffer is shared
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    const got = await reply;
    assert.equal(got.sentinel, 12345);
    assert.equal(got.ids.length, 3);
    assert.deepEqual(before, [1, 2, 0]);
  } finally {
    worker.terminate();
    URL.revokeObjectURL(url);
  }
});
