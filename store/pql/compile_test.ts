import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import fc from "fast-check";
import { type Anchor, compileQuery } from "./compile.ts";
import { resolveQuery } from "./semantic.ts";
import { evaluateReference, type RefData, type RefRow, type Value } from "./reference.ts";
import {
  type MemoryDatabase,
  memoryDatabase,
  SHOP_SCHEMA as SCHEMA,
  SHOP_TYPES as TYPES,
  TRANSFERS_TABLE,
  TRANSFERS_TYPES,
} from "./test_db.ts";
import type { Schema } from "../types.ts";

/** 2024-01-20T00:00:00Z: month windows cross the end of January and February. */
const BASE = Date.UTC(2024, 0, 20) / 1000;
const HOUR = 3600;

const nullable = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null, freq: 5 });
/** Event times on a day grid, so that window bounds and ties meet them often. */
const times = fc.integer({ min: 0, max: 45 }).map((d) => BASE + d * 24 * HOUR);

const dataArb: fc.Arbitrary<RefData> = fc.record({
  nUsers: fc.integer({ min: 1, max: 6 }),
  nItems: fc.integer({ min: 1, max: 4 }),
}).chain(({ nUsers, nItems }) => {
  const userKey = nullable(fc.integer({ min: 0, max: nUsers })); // nUsers: dangling
  return fc.record({
    users: fc.array(
      fc.record({
        signup: nullable(fc.integer({ min: -20, max: 20 }).map((d) => BASE + d * 86400)),
        age: nullable(fc.integer({ min: 10, max: 60 })),
        country: nullable(fc.constantFrom("fr", "de", "us")),
      }),
      { minLength: nUsers, maxLength: nUsers },
    ).map((us) => us.map((u, i) => ({ id: (i * 7) % nUsers, ...u } as Record<string, Value>))),
    orders: fc.array(
      fc.record({
        user: userKey,
        item: nullable(fc.integer({ min: 0, max: nItems - 1 })),
        ts: times,
        amount: nullable(fc.integer({ min: -5, max: 20 })),
        status: nullable(fc.constantFrom("a", "b", "c")),
        code: nullable(fc.integer({ min: 1, max: 3 })),
      }),
      { minLength: 5, maxLength: 60, size: "max" },
    ).map((os) => os.map((o, i) => ({ oid: i, ...o } as Record<string, Value>))),
    items: fc.constant(
      Array.from(
        { length: nItems },
        (_, i) => ({ iid: nItems - 1 - i, price: i } as Record<string, Value>),
      ),
    ),
    visits: fc.array(
      fc.record({ user: userKey, vt: times, dur: nullable(fc.integer({ min: 0, max: 9 })) }),
      { maxLength: 20, size: "max" },
    ).map((vs) => vs.map((v, i) => ({ vid: i, ...v } as Record<string, Value>))),
  });
});

/** Bounds `[start, end]` and unit text; `past` mirrors them below zero. */
function windowArb(past: boolean): fc.Arbitrary<string> {
  const days = fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 30 }))
    .chain(([s, len]) =>
      fc.constantFrom("", ", days", ", DAY").map((u) => [s, s + len, u] as const)
    );
  const hours = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 8 }))
    .map(([s, len]) => [12 * s, 12 * (s + len), ", hours"] as const);
  const months = fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 1, max: 2 }))
    .map(([s, len]) => [s, s + len, ", months"] as const);
  return fc.oneof(days, hours, months).map(([s, e, u]) =>
    past ? `${-e}, ${-s}${u}` : `${s}, ${e}${u}`
  );
}
const futureWindow = windowArb(false);
const pastWindow = windowArb(true);

const orderAtom = fc.oneof(
  fc.tuple(fc.constantFrom("=", "!=", "<", ">="), fc.constantFrom("'a'", "'b'"))
    .map(([op, v]) => `orders.status ${op} ${v}`),
  fc.tuple(fc.constantFrom("=", "<", "<=", ">", "!="), fc.integer({ min: -2, max: 15 }))
    .map(([op, v]) => `amount ${op} ${v}`),
  fc.constant("code IN (1, 3)"),
  fc.constant("orders.code NOT IN (2)"),
  fc.constant("code = '2'"),
  fc.constant("status IS NULL"),
  fc.constant("status IS NOT NULL"),
);
const boolOf = (atom: fc.Arbitrary<string>) =>
  fc.oneof(
    { weight: 3, arbitrary: atom },
    { weight: 1, arbitrary: fc.tuple(atom, atom).map(([a, b]) => `${a} AND ${b}`) },
    { weight: 1, arbitrary: fc.tuple(atom, atom).map(([a, b]) => `(${a} OR ${b})`) },
    { weight: 1, arbitrary: atom.map((a) => `NOT (${a})`) },
  );
const orderFilter = fc.option(boolOf(orderAtom).map((f) => ` WHERE ${f}`), { nil: "" });

const num = fc.integer({ min: -1, max: 8 });
const cmpOp = fc.constantFrom("=", "!=", "<", "<=", ">", ">=");
const numericCompare = fc.option(fc.tuple(cmpOp, num).map(([op, v]) => ` ${op} ${v}`), { nil: "" });

const targetArb = fc.oneof(
  fc.tuple(
    fc.constantFrom("orders.*", "orders.status", "visits.*"),
    orderFilter,
    futureWindow,
    numericCompare,
  )
    .map(([c, f, w, cmp]) => `COUNT(${c}${c.startsWith("orders") ? f : ""}, ${w})${cmp}`),
  fc.tuple(fc.constantFrom("SUM", "AVG", "MIN", "MAX"), orderFilter, futureWindow, numericCompare)
    .map(([a, f, w, cmp]) => `${a}(orders.amount${f}, ${w})${cmp}`),
  fc.tuple(fc.constantFrom("SUM", "AVG"), futureWindow).map(([a, w]) => `${a}(visits.dur, ${w})`),
  fc.tuple(
    fc.constantFrom("orders.status", "orders.code", "orders.item"),
    orderFilter,
    futureWindow,
  )
    .map(([c, f, w]) => `COUNT_DISTINCT(${c}${f}, ${w})`),
  fc.tuple(
    fc.constantFrom("FIRST", "LAST"),
    fc.constantFrom("amount", "status", "code"),
    orderFilter,
    futureWindow,
    fc.boolean(),
  ).map(([a, c, f, w, cmp]) =>
    `${a}(orders.${c}${f}, ${w})` +
    (cmp ? (c === "amount" ? " > 5" : c === "status" ? " = 'b'" : " >= 2") : "")
  ),
  fc.tuple(
    fc.constantFrom("FIRST", "LAST"),
    fc.constantFrom("amount", "status", "code"),
    orderFilter,
    futureWindow,
    fc.boolean(),
  ).map(([a, c, f, w, cmp]) =>
    `${a}(orders.${c}${f}, ${w})` +
    (cmp ? (c === "amount" ? " > 5" : c === "status" ? " = 'b'" : " >= 2") : "")
  ),
  fc.tuple(orderFilter, futureWindow).map(([f, w]) => `LIST_DISTINCT(orders.item${f}, ${w})`),
  fc.constantFrom("users.age", "users.age > 30", "users.country", "users.country = 'fr'"),
);

const entityAtom = fc.oneof(
  fc.tuple(pastWindow, cmpOp, fc.integer({ min: 0, max: 2 }))
    .map(([w, op, v]) => `COUNT(orders.*, ${w}) ${op} ${v}`),
  fc.tuple(pastWindow).map(([w]) => `SUM(visits.dur, ${w}) > 3`),
  fc.tuple(pastWindow).map(([w]) => `LAST(orders.status WHERE amount > 0, ${w}) = 'a'`),
  fc.constant("users.age >= 30"),
  fc.constant("users.country IN ('fr', 'us')"),
  fc.constant("users.age IS NULL"),
);
const entityFilter = fc.option(boolOf(entityAtom).map((f) => ` WHERE ${f}`), { nil: "" });

const anchorsArb = fc.uniqueArray(fc.integer({ min: -1, max: 2 * 45 }).map((h) => h * 12), {
  minLength: 1,
  maxLength: 4,
}).chain((hs) =>
  fc.array(fc.integer({ min: 0, max: 2 }), { minLength: hs.length, maxLength: hs.length })
    .map((splits) => hs.map((h, i): Anchor => ({ time: BASE + h * HOUR, split: splits[i] })))
);

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

/** Runs the compiled SQL and regroups link rows into target lists. */
async function runSql(db: MemoryDatabase, sql: string): Promise<RefRow[]> {
  const rows = await db.query(sql);
  const out: RefRow[] = [];
  for (const r of rows) {
    const base = {
      entity: r.entity as number,
      anchor: r.anchor as number,
      split: r.split as number,
    };
    if ("target" in r) {
      const last = out[out.length - 1];
      if (last && last.entity === base.entity && last.anchor === base.anchor) {
        last.targets!.push(r.target as number);
      } else out.push({ ...base, targets: [r.target as number] });
    } else {
      const row: RefRow = { ...base, label: r.label as number | string };
      if ("etime" in r) row.etime = r.etime as number | null;
      out.push(row);
    }
  }
  return out;
}

function sameRows(got: RefRow[], want: RefRow[]): string | null {
  if (got.length !== want.length) return `row count ${got.length} != ${want.length}`;
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    const ok = g.entity === w.entity && close(g.anchor, w.anchor) && g.split === w.split &&
      (typeof w.label === "number"
        ? typeof g.label === "number" && close(g.label, w.label)
        : g.label === w.label) &&
      JSON.stringify(g.targets) === JSON.stringify(w.targets) &&
      (w.etime === undefined || g.etime === w.etime);
    if (!ok) return `row ${i}: got ${JSON.stringify(g)}, want ${JSON.stringify(w)}`;
  }
  return null;
}

Deno.test("compiled SQL matches the brute-force evaluation on random databases", async () => {
  const db = await memoryDatabase(SCHEMA, TYPES);
  try {
    await fc.assert(
      fc.asyncProperty(
        dataArb,
        targetArb,
        entityFilter,
        anchorsArb,
        async (data, target, filter, anchors) => {
          const text = `PREDICT ${target} FOR EACH users.id${filter}`;
          const q = resolveQuery(text, SCHEMA);
          await db.load(data);
          const got = await runSql(db, compileQuery(q, anchors));
          const want = evaluateReference(q, data, anchors);
          const diff = sameRows(got, want);
          if (diff) throw new Error(`${text}\n${diff}`);
        },
      ),
      { numRuns: 250 },
    );
  } finally {
    db.close();
  }
});

/** A fixed database for the hand-checked cases. */
function fixed(): RefData {
  const d = (day: number, h = 0) => BASE + day * 86400 + h * HOUR;
  return {
    users: [
      { id: 10, signup: d(-5), age: 20, country: "fr" },
      { id: 11, signup: d(3), age: null, country: "de" },
    ],
    orders: [
      { oid: 0, user: 10, item: 0, ts: d(1), amount: 5, status: "a", code: 1 },
      { oid: 1, user: 10, item: 1, ts: d(1), amount: 7, status: "b", code: 2 },
      { oid: 2, user: 10, item: 1, ts: d(10), amount: null, status: "c", code: 3 },
      { oid: 3, user: 11, item: 0, ts: d(4), amount: 2, status: "a", code: 1 },
    ],
    items: [{ iid: 1, price: 1 }, { iid: 0, price: 2 }],
    visits: [],
  };
}

Deno.test("windows are (anchor + start, anchor + end]; FIRST/LAST break time ties by file order", async () => {
  const db = await memoryDatabase(SCHEMA, TYPES);
  try {
    await db.load(fixed());
    const anchors: Anchor[] = [{ time: BASE, split: 0 }, { time: BASE + 86400, split: 1 }];
    const run = (t: string) =>
      db.query(compileQuery(resolveQuery(`PREDICT ${t} FOR EACH users.id`, SCHEMA), anchors));
    // At BASE: (d0, d1] holds orders 0 and 1 of user 10; user 11 does not exist yet.
    assertEquals(
      (await run("COUNT(orders.*, 0, 1)")).map((r) => [r.entity, r.split, r.label]),
      [[0, 0, 2], [0, 1, 0]],
    );
    assertEquals((await run("FIRST(orders.status, 0, 1)")).map((r) => r.label), ["a"]);
    assertEquals((await run("LAST(orders.status, 0, 1)")).map((r) => r.label), ["b"]);
    // AVG over no rows drops the row; SUM over no rows is 0.
    assertEquals((await run("AVG(orders.amount, 0, 1)")).length, 1);
    assertEquals((await run("SUM(orders.amount, 0, 1)")).map((r) => r.label), [12, 0]);
    // A month window from 2024-01-20 reaches 2024-02-20.
    assertEquals((await run("COUNT(orders.*, 0, 1, months) > 2")).map((r) => r.label), [1, 0]);
    const link = await run("LIST_DISTINCT(orders.item, 0, 30)");
    // items are stored in reverse key order: key 0 is row 1, key 1 is row 0.
    assertEquals(link.map((r) => [r.anchor, r.entity, r.target]), [
      [BASE, 0, 0],
      [BASE, 0, 1],
      [BASE + 86400, 0, 0],
    ]);
    const stat = await run("users.country");
    assertEquals(stat.map((r) => [r.entity, r.label, r.etime]).slice(0, 2), [
      [0, "fr", BASE - 5 * 86400],
      [1, "de", BASE + 3 * 86400],
    ]);
    assert((await run("users.age")).every((r) => r.entity === 0), "NULL static label dropped");
  } finally {
    db.close();
  }
});

/** The shop plus `transfers`, with two foreign keys to users (`src`, `dst`). */
const VIA_SCHEMA: Schema = { tables: [...SCHEMA.tables, TRANSFERS_TABLE] };
const VIA_TYPES = { ...TYPES, transfers: TRANSFERS_TYPES };

/** Transfers among three users, so that following `src` or `dst` gives different answers. */
function transfers(): RefData {
  const d = (day: number) => BASE + day * 86400;
  const t = (
    tid: number,
    src: number | null,
    dst: number,
    day: number,
    amount: number,
    kind: string,
  ) => ({
    tid,
    src,
    dst,
    at: d(day),
    amount,
    kind,
  });
  return {
    users: [
      { id: 10, signup: d(-30), age: 20, country: "fr" },
      { id: 11, signup: d(-30), age: 30, country: "de" },
      { id: 12, signup: d(-30), age: 40, country: "us" },
    ],
    orders: [],
    items: [],
    visits: [],
    transfers: [
      t(0, 10, 11, 1, 5, "a"),
      t(1, 10, 12, 2, 3, "b"),
      t(2, 11, 10, 2, 7, "a"),
      t(3, 12, 10, 5, 1, "a"),
      t(4, 10, 10, 3, 2, "b"), // to oneself: counted both ways
      t(5, 11, 12, -3, 4, "a"),
      t(6, null, 11, 1, 9, "a"),
    ],
  };
}

Deno.test("VIA: the SQL follows the chosen foreign key, as the brute-force evaluation does", async () => {
  const db = await memoryDatabase(VIA_SCHEMA, VIA_TYPES);
  try {
    const data = transfers();
    await db.load(data);
    const anchors: Anchor[] = [{ time: BASE, split: 0 }, { time: BASE + 2 * 86400, split: 1 }];
    const queries = [
      "PREDICT COUNT(transfers.* VIA $, 0, 7) FOR EACH users.id",
      "PREDICT SUM(transfers.amount VIA transfers.$ WHERE transfers.kind = 'a', 0, 7) > 6 " +
      "FOR EACH users.id",
      "PREDICT LIST_DISTINCT(transfers.dst VIA $, 0, 7) FOR EACH users.id",
      "PREDICT users.age FOR EACH users.id WHERE COUNT(transfers.* VIA $, -7, 0) > 0",
      "PREDICT COUNT(transfers.* VIA $ WHERE amount > 2, 0, 7) FOR EACH users.id " +
      "WHERE SUM(transfers.amount VIA $, -7, 0) >= 4",
    ];
    for (const text of queries) {
      const want: Record<string, RefRow[]> = {};
      for (const fk of ["src", "dst"]) {
        const q = resolveQuery(text.replaceAll("$", fk), VIA_SCHEMA);
        assert(q.aggregates.every((g) => g.fk === fk), text);
        want[fk] = evaluateReference(q, data, anchors);
        const diff = sameRows(await runSql(db, compileQuery(q, anchors)), want[fk]);
        if (diff) throw new Error(`${text.replaceAll("$", fk)}\n${diff}`);
      }
      assert(JSON.stringify(want.src) !== JSON.stringify(want.dst), `same rows both ways: ${text}`);
    }
    // Hand-checked: at BASE, (d0, d7] holds transfers 0-4 and 6 (src NULL, never matched).
    const count = (fk: string) =>
      evaluateReference(
        resolveQuery(`PREDICT COUNT(transfers.* VIA ${fk}, 0, 7) FOR EACH users.id`, VIA_SCHEMA),
        data,
        [{ time: BASE, split: 0 }],
      ).map((r) => r.label);
    assertEquals(count("src"), [3, 1, 1]);
    assertEquals(count("dst"), [3, 2, 1]);
  } finally {
    db.close();
  }
});

/** The random shop plus random transfers among its users (dangling and NULL keys included). */
const viaDataArb: fc.Arbitrary<RefData> = dataArb.chain((d) => {
  const key = nullable(fc.integer({ min: 0, max: d.users.length }));
  return fc.array(
    fc.record({
      src: key,
      dst: key,
      at: times,
      amount: nullable(fc.integer({ min: -5, max: 20 })),
      kind: nullable(fc.constantFrom("a", "b")),
    }),
    { maxLength: 30, size: "max" },
  ).map((ts) => ({
    ...d,
    transfers: ts.map((t, i) => ({ tid: i, ...t } as Record<string, Value>)),
  }));
});
const viaFk = fc.constantFrom("src", "dst", "transfers.src", "TRANSFERS.dst");
const transferFilter = fc.option(
  fc.constantFrom("kind = 'a'", "amount > 3", "transfers.kind IS NULL OR amount <= 0")
    .map((f) => ` WHERE ${f}`),
  { nil: "" },
);
const viaTargetArb = fc.oneof(
  fc.tuple(viaFk, transferFilter, futureWindow, numericCompare)
    .map(([v, f, w, cmp]) => `COUNT(transfers.* VIA ${v}${f}, ${w})${cmp}`),
  fc.tuple(fc.constantFrom("SUM", "MAX"), viaFk, transferFilter, futureWindow)
    .map(([a, v, f, w]) => `${a}(transfers.amount VIA ${v}${f}, ${w})`),
  fc.tuple(viaFk, futureWindow).map(([v, w]) => `LAST(transfers.kind VIA ${v}, ${w})`),
  fc.tuple(fc.constantFrom("src", "dst"), viaFk, transferFilter, futureWindow)
    .map(([c, v, f, w]) => `LIST_DISTINCT(transfers.${c} VIA ${v}${f}, ${w})`),
  fc.constant("users.age"),
);
const viaEntityFilter = fc.option(
  fc.tuple(viaFk, pastWindow, cmpOp, fc.integer({ min: 0, max: 2 }))
    .map(([v, w, op, n]) => ` WHERE COUNT(transfers.* VIA ${v}, ${w}) ${op} ${n}`),
  { nil: "" },
);

Deno.test("VIA: compiled SQL matches the brute-force evaluation on random transfers", async () => {
  const db = await memoryDatabase(VIA_SCHEMA, VIA_TYPES);
  try {
    await fc.assert(
      fc.asyncProperty(
        viaDataArb,
        viaTargetArb,
        viaEntityFilter,
        anchorsArb,
        async (data, target, filter, anchors) => {
          const text = `PREDICT ${target} FOR EACH users.id${filter}`;
          const q = resolveQuery(text, VIA_SCHEMA);
          await db.load(data);
          const got = await runSql(db, compileQuery(q, anchors));
          const want = evaluateReference(q, data, anchors);
          const diff = sameRows(got, want);
          if (diff) throw new Error(`${text}\n${diff}`);
        },
      ),
      { numRuns: 100 },
    );
  } finally {
    db.close();
  }
});

Deno.test("compileQuery refuses empty or repeated anchors and bad splits", () => {
  const q = resolveQuery("PREDICT COUNT(orders.*, 0, 1) FOR EACH users.id", SCHEMA);
  throws(() => compileQuery(q, []), /compileQuery: no anchors/);
  throws(
    () => compileQuery(q, [{ time: BASE, split: 0 }, { time: BASE, split: 1 }]),
    /anchor times must be distinct/,
  );
  throws(() => compileQuery(q, [{ time: BASE, split: 0.5 }]), /compileQuery: bad split 0.5/);
  throws(() => compileQuery(q, [{ time: NaN, split: 0 }]), /not a finite anchor time/);
});
