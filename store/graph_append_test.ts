import assert from "node:assert/strict";
import fc from "fast-check";
import { buildGraph } from "./graph_build.ts";
import { appendRows, compactGraph, hasDelta } from "./graph_append.ts";
import { loadGraph, saveGraph } from "./graph_io.ts";
import { GraphStore } from "./graph.ts";
import {
  arbDb,
  assertSameGraph,
  buildInputOf,
  checkAgainstBrute,
  type RandomDb,
  throwsWith,
} from "./graph_testing.ts";

/**
 * Splits a random database into a base (a prefix of each table) and batches
 * of appended rows, nulling foreign keys that would point at rows not yet
 * present when their child arrives. Returns the adjusted full database, the
 * base database, and the batches (table, rows) in append order.
 */
function splitDb(db: RandomDb, cuts: number[], batchSeed: number) {
  const tables = db.tables.map((t, i) => ({ t, cut: Math.min(cuts[i] ?? 0, t.keys.length) }));
  // Append order: tables' tails in round-robin chunks of 1–3 rows.
  const batchOf = tables.map(({ t }) => new Array<number>(t.keys.length).fill(-1));
  const batches: { table: number; rows: number[] }[] = [];
  const next = tables.map(({ cut }) => cut);
  let s = batchSeed >>> 0;
  const rnd = (n: number) => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n;
  for (;;) {
    const open = tables.map((_, i) => i).filter((i) => next[i] < tables[i].t.keys.length);
    if (!open.length) break;
    const ti = open[rnd(open.length)];
    const size = Math.min(1 + rnd(3), tables[ti].t.keys.length - next[ti]);
    const rows = Array.from({ length: size }, (_, j) => next[ti] + j);
    for (const r of rows) batchOf[ti][r] = batches.length;
    batches.push({ table: ti, rows });
    next[ti] += size;
  }
  const index = new Map(db.tables.map((t, i) => [t.name, i]));
  const fks = db.fks.map((fk) => {
    const c = index.get(fk.table)!, p = index.get(fk.parent)!;
    const parentRow = fk.parentRow.map((pr, cr) => {
      if (pr < 0) return -1;
      const cb = batchOf[c][cr], pb = batchOf[p][pr];
      const ok = pb === -1 || (cb !== -1 && pb <= cb);
      return ok ? pr : -1;
    });
    return { ...fk, parentRow };
  });
  const full: RandomDb = { ...db, fks };
  const base: RandomDb = {
    tables: tables.map(({ t, cut }) => ({
      name: t.name,
      stringKeys: t.stringKeys,
      times: t.times ? t.times.slice(0, cut) : null,
      keys: t.keys.slice(0, cut),
    })),
    fks: fks.map((fk) => ({
      ...fk,
      parentRow: fk.parentRow.slice(0, tables[index.get(fk.table)!].cut),
    })),
    shuffleSeed: db.shuffleSeed,
  };
  return { full, base, batches };
}

function applyBatches(g: GraphStore, full: RandomDb, batches: { table: number; rows: number[] }[]) {
  for (const { table, rows } of batches) {
    const t = full.tables[table];
    const fks: Record<string, (number | string | null)[]> = {};
    for (const fk of full.fks.filter((f) => f.table === t.name)) {
      const parent = full.tables.find((p) => p.name === fk.parent)!;
      fks[fk.column] = rows.map((r) => (fk.parentRow[r] < 0 ? null : parent.keys[fk.parentRow[r]]));
    }
    const res = appendRows(g, t.name, {
      keys: rows.map((r) => t.keys[r]),
      times: t.times ? rows.map((r) => t.times![r]) : null,
      fks,
    });
    assert.deepEqual([...res.ids], rows);
  }
}

Deno.test("property: appended rows appear (base + delta = brute force), compact and save agree", async () => {
  const root = await Deno.makeTempDir();
  try {
    await fc.assert(
      fc.asyncProperty(
        arbDb(),
        fc.array(fc.nat(25), { minLength: 4, maxLength: 4 }),
        fc.integer(),
        async (db, cuts, seed) => {
          const { full, base, batches } = splitDb(db, cuts, seed);
          const g = buildGraph(buildInputOf(base));
          const ts = { timeBase: g.timeBase, timeScale: g.timeScale };
          applyBatches(g, full, batches);
          assert.equal(g.version, batches.length);
          checkAgainstBrute(g, full);
          for (const t of full.tables) {
            t.keys.forEach((k, i) => {
              assert.equal(g.idOf(t.name, k), i);
              assert.equal(g.keyOf(t.name, i), k);
            });
          }
          // Compaction equals a fresh build of the full database at the same time scale.
          const c = compactGraph(g);
          assert.ok(!hasDelta(c));
          checkAgainstBrute(c, full);
          assertSameGraph(c, buildGraph({ ...buildInputOf(full), timeScale: ts }));
          checkAgainstBrute(g, full); // the original is untouched by compaction
          await saveGraph(g, `${root}/g`);
          assertSameGraph(await loadGraph(`${root}/g`), c);
        },
      ),
      { numRuns: 60 },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

function tiny() {
  return buildGraph({
    nodes: [
      { name: "users", count: 2, primaryKey: "id", keys: Int32Array.of(10, 20) },
      {
        name: "tx",
        count: 2,
        primaryKey: "id",
        keys: Int32Array.of(1, 2),
        times: Float64Array.of(1e9, 1e9 + 10),
      },
    ],
    foreignKeys: [{
      table: "tx",
      column: "user",
      parent: "users",
      childRow: Int32Array.of(0, 1),
      parentRow: Int32Array.of(0, 0),
    }],
  });
}

Deno.test("append: visible to the next read, across toShared, errors leave the graph as it was", () => {
  const g = tiny();
  const shared = GraphStore.fromShared(structuredClone(g.toShared()));
  const before = g.neighbors("users.id->tx.user", 0);
  appendRows(g, "users", { keys: [30] });
  const r = appendRows(g, "tx", {
    keys: [3, 4],
    times: [1e9 + 5, 1e9 + 20],
    fks: { user: [10, 30] },
  });
  assert.deepEqual([...r.ids], [2, 3]);
  assert.equal(r.edges, 4);
  assert.deepEqual([...g.neighbors("users.id->tx.user", 0).ids], [0, 2, 1]);
  assert.deepEqual([...g.neighbors("users.id->tx.user", 2).ids], [3]);
  assert.deepEqual([...g.neighbors("tx.user->users.id", 3).ids], [2]);
  assert.deepEqual([...g.neighbors("users.id->tx.user", 0, g.toTick(1e9 + 5)).ids], [0, 2]);
  assert.equal(g.visibleDegree("users.id->tx.user", 0, g.toTick(1e9 + 4)), 1);
  assert.equal(g.nodeTime("tx", 3), g.toTick(1e9 + 20));
  // A worker's older snapshot is unaffected; a fresh one sees the append.
  assert.deepEqual(shared.neighbors("users.id->tx.user", 0), before);
  const again = GraphStore.fromShared(structuredClone(g.toShared()));
  assert.deepEqual([...again.neighbors("users.id->tx.user", 0).ids], [0, 2, 1]);
  const version = g.version;
  throwsWith(
    () => appendRows(g, "tx", { keys: [5], times: [1e9], fks: { user: [99] } }),
    "matches no row",
  );
  throwsWith(
    () => appendRows(g, "tx", { keys: [3], times: [1e9], fks: { user: [10] } }),
    "duplicate key 3",
  );
  throwsWith(
    () => appendRows(g, "tx", { keys: [6], times: [1e9] }),
    "missing foreign key column user",
  );
  throwsWith(
    () => appendRows(g, "tx", { keys: [7], times: [1e20], fks: { user: [10] } }),
    "outside",
  );
  throwsWith(() => appendRows(g, "users", { keys: [40], times: [1e9] }), "static table");
  throwsWith(
    () => appendRows(g, "tx", { keys: [8, 9], times: [1e9], fks: { user: [10] } }),
    "times has 1",
  );
  assert.equal(g.version, version);
  assert.equal(g.numNodes("tx"), 4);
  appendRows(g, "tx", { keys: [5], times: [NaN], fks: { user: [null] } }); // null time, null FK
  assert.equal(g.numNodes("tx"), 5);
  assert.equal(g.visibleDegree("tx.user->users.id", 4), 0);
});
