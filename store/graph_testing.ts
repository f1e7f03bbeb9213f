/**
 * Test helpers for the graph store: random small relational databases
 * (fast-check arbitraries), their `buildGraph` input, and brute-force
 * neighbour lists to compare the CSR against.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { BuildInput, ForeignKeyInput } from "./graph_build.ts";
import type { GraphStore } from "./graph.ts";
import { edgeTypeName } from "./types.ts";
import { NEVER_TIME, seedTick, STATIC_TIME } from "./ticks.ts";

/** A table of a random database. */
export interface RandomTable {
  /** Name. */
  name: string;
  /** Row times in epoch seconds (NaN = null); null for a static table. */
  times: number[] | null;
  /** Primary keys in row order (unique). */
  keys: (number | string)[];
  /** Key type (also for an empty table). */
  stringKeys: boolean;
}

/** A foreign key of a random database: per child row, the parent row or -1 (null). */
export interface RandomFk {
  /** Child table. */
  table: string;
  /** Column name. */
  column: string;
  /** Parent table. */
  parent: string;
  /** Parent row per child row, -1 for null. */
  parentRow: number[];
}

/** A random relational database. */
export interface RandomDb {
  /** Tables. */
  tables: RandomTable[];
  /** Foreign keys. */
  fks: RandomFk[];
  /** Seed for shuffling the edge input order. */
  shuffleSeed: number;
}

const T0 = 1_600_000_000;

/** Arbitrary random database: 1–4 tables of 0–25 rows, 0–5 foreign keys, times with ties and nulls. */
export function arbDb(): fc.Arbitrary<RandomDb> {
  const table = (i: number) =>
    fc.record({
      count: fc.integer({ min: 0, max: 25 }),
      isStatic: fc.boolean(),
      stringKeys: fc.boolean(),
      seed: fc.integer(),
    }).map(({ count, isStatic, stringKeys, seed }) => {
      let s = seed >>> 0;
      const rnd = (n: number) => {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        return s % n;
      };
      const perm = Array.from({ length: count }, (_, j) => j);
      for (let j = count - 1; j > 0; j--) {
        const k = rnd(j + 1);
        [perm[j], perm[k]] = [perm[k], perm[j]];
      }
      const keys = perm.map((p) => (stringKeys ? `k${p * 7}é` : p * 3 - 20));
      const times = isStatic
        ? null
        : Array.from({ length: count }, () => (rnd(10) === 0 ? NaN : T0 + rnd(12) * 100));
      return { name: `T${i}`, times, keys, stringKeys };
    });
  return fc.integer({ min: 1, max: 4 }).chain((nt) =>
    fc.tuple(
      fc.tuple(...Array.from({ length: nt }, (_, i) => table(i))),
      fc.array(
        fc.record({
          c: fc.nat(nt - 1),
          p: fc.nat(nt - 1),
          picks: fc.array(fc.integer({ min: -1, max: 1000 }), { maxLength: 25 }),
        }),
        { maxLength: 5 },
      ),
      fc.integer(),
    ).map(([tables, fkSpecs, shuffleSeed]) => {
      const fks: RandomFk[] = fkSpecs.map(({ c, p, picks }, i) => {
        const child = tables[c], parent = tables[p];
        const nP = parent.keys.length;
        const parentRow = child.keys.map((_, r) => {
          const v = picks[r % Math.max(1, picks.length)] ?? -1;
          return v < 0 || nP === 0 ? -1 : v % nP;
        });
        return { table: child.name, column: `fk${i}`, parent: parent.name, parentRow };
      });
      return { tables, fks, shuffleSeed };
    })
  );
}

/** `buildGraph` input of a random database (edges given in a shuffled order, null FKs as -1 pairs). */
export function buildInputOf(db: RandomDb): BuildInput {
  let s = db.shuffleSeed >>> 0;
  const rnd = (n: number) => {
    s = (Math.imul(s, 22695477) + 1) >>> 0;
    return s % n;
  };
  const foreignKeys: ForeignKeyInput[] = db.fks.map((fk) => {
    const idx = fk.parentRow.map((_, i) => i);
    for (let j = idx.length - 1; j > 0; j--) {
      const k = rnd(j + 1);
      [idx[j], idx[k]] = [idx[k], idx[j]];
    }
    return {
      table: fk.table,
      column: fk.column,
      parent: fk.parent,
      childRow: Int32Array.from(idx.map((i) => (fk.parentRow[i] < 0 ? -1 : i))),
      parentRow: Int32Array.from(idx.map((i) => fk.parentRow[i])),
    };
  });
  return {
    nodes: db.tables.map((t) => ({
      name: t.name,
      count: t.keys.length,
      times: t.times ? Float64Array.from(t.times) : null,
      timeColumn: t.times ? "ts" : null,
      primaryKey: "id",
      keys: t.stringKeys ? t.keys : Float64Array.from(t.keys as number[]),
    })),
    foreignKeys,
  };
}

/** One expected neighbour: id and time in epoch seconds (NaN null, -Infinity static). */
export interface BruteNeighbor {
  /** Neighbour id. */
  id: number;
  /** Its time in seconds (-Infinity static, NaN null). */
  time: number;
}

/** Every edge type of a random database with the brute-force neighbour lists of every source. */
export function bruteForce(db: RandomDb): Map<string, BruteNeighbor[][]> {
  const table = new Map(db.tables.map((t) => [t.name, t]));
  const timeOf = (t: RandomTable, i: number) => (t.times ? t.times[i] : -Infinity);
  const sortKey = (a: BruteNeighbor, b: BruteNeighbor) => {
    const ta = Number.isNaN(a.time) ? Infinity : a.time,
      tb = Number.isNaN(b.time) ? Infinity : b.time;
    return ta < tb ? -1 : ta > tb ? 1 : a.id - b.id;
  };
  const out = new Map<string, BruteNeighbor[][]>();
  for (const fk of db.fks) {
    const c = table.get(fk.table)!, p = table.get(fk.parent)!;
    const fwd: BruteNeighbor[][] = c.keys.map(() => []);
    const rev: BruteNeighbor[][] = p.keys.map(() => []);
    fk.parentRow.forEach((pr, cr) => {
      if (pr < 0) return;
      fwd[cr].push({ id: pr, time: timeOf(p, pr) });
      rev[pr].push({ id: cr, time: timeOf(c, cr) });
    });
    rev.forEach((l) => l.sort(sortKey));
    out.set(edgeTypeName(c.name, fk.column, p.name, "id"), fwd);
    out.set(edgeTypeName(p.name, "id", c.name, fk.column), rev);
  }
  return out;
}

/** Asserts that `fn` throws an Error whose message contains `text`. */
export function throwsWith(fn: () => unknown, text: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error && e.message.includes(text), `expected "${text}" in: ${e}`);
    return true;
  });
}

/** Asserts that two graph stores hold the same base arrays and metadata (deltas ignored). */
export function assertSameGraph(a: GraphStore, b: GraphStore): void {
  assert.equal(a.timeBase, b.timeBase);
  assert.equal(a.timeScale, b.timeScale);
  const plain = (x: ArrayLike<number> | null | undefined) => (x ? Array.from(x) : x);
  assert.deepEqual(a.nodeTypes(), b.nodeTypes());
  for (const name of a.nodeTypes()) {
    const n = a.node(name), m = b.node(name);
    const { delta: _d1, time: t1, keys: k1, ...meta1 } = n;
    const { delta: _d2, time: t2, keys: k2, ...meta2 } = m;
    assert.deepEqual(meta1, meta2);
    assert.deepEqual(plain(t1), plain(t2), `${name} times`);
    assert.equal(k1?.kind, k2?.kind);
    if (k1 && k2) {
      assert.deepEqual(plain(k1.order), plain(k2.order), `${name} key order`);
      if (k1.kind === "string" && k2.kind === "string") {
        assert.deepEqual(plain(k1.bytes), plain(k2.bytes));
        assert.deepEqual(plain(k1.offsets), plain(k2.offsets));
      } else if (k1.kind !== "string" && k2.kind !== "string") {
        assert.deepEqual(plain(k1.keys), plain(k2.keys));
      }
    }
  }
  assert.deepEqual(a.edgeTypes(), b.edgeTypes());
  for (const name of a.edgeTypes()) {
    const e = a.edgeType(name), f = b.edgeType(name);
    const { delta: _d1, offsets: o1, nbr: n1, nbrTime: t1, ...meta1 } = e;
    const { delta: _d2, offsets: o2, nbr: n2, nbrTime: t2, ...meta2 } = f;
    assert.deepEqual(meta1, meta2);
    assert.deepEqual(plain(o1), plain(o2), `${name} offsets`);
    assert.deepEqual(plain(n1), plain(n2), `${name} nbr`);
    assert.deepEqual(plain(t1), plain(t2), `${name} nbrTime`);
  }
}

/** Checks every neighbour list (and its visible prefixes) of `g` against the brute-force join. */
export function checkAgainstBrute(g: GraphStore, db: RandomDb): void {
  const brute = bruteForce(db);
  assert.deepEqual(new Set(g.edgeTypes()), new Set(brute.keys()));
  const tick = (t: number) =>
    t === -Infinity ? STATIC_TIME : Number.isNaN(t) ? NEVER_TIME : g.toTick(t);
  for (const [name, lists] of brute) {
    const e = g.edgeType(name);
    assert(
      e.nbr.buffer instanceof SharedArrayBuffer && e.offsets.buffer instanceof SharedArrayBuffer,
    );
    lists.forEach((want, src) => {
      const got = g.neighbors(name, src);
      assert.deepEqual([...got.ids], want.map((w) => w.id), `${name} ${src}`);
      assert.deepEqual([...got.ticks], want.map((w) => tick(w.time)), `${name} ${src} ticks`);
      for (const t of [STATIC_TIME, seedTick(g.data, 1_600_000_000 + 550), NEVER_TIME - 1]) {
        const vis = want.filter((w) => tick(w.time) <= t).map((w) => w.id);
        assert.deepEqual([...g.neighbors(name, src, t).ids], vis);
        assert.deepEqual(g.visibleDegree(name, src, t), vis.length);
      }
    });
  }
}
