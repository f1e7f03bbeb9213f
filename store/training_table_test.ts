import { deepStrictEqual as assertEquals, ok as assert, rejects, throws } from "node:assert/strict";
import { DuckDBInstance } from "@duckdb/node-api";
import { Split } from "./types.ts";
import { Database } from "./database.ts";
import { loadSchema, parseSchema } from "./schema.ts";
import { F1_DIR, openYaml, tempDir } from "./test_util.ts";
import { anchorSchedule, trainingTable } from "./training_table.ts";
import type { Window } from "./pql/ast.ts";

const DAY = 86400;
const iso = (s: string) => Date.parse(s) / 1000;

/** f1 drivers and results, each result dated by its race (a schema cannot derive that yet). */
async function openF1(): Promise<{ db: Database; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "fanout_tt_" });
  const inst = await DuckDBInstance.create(":memory:");
  const c = await inst.connect();
  const read = (f: string) => `read_csv('${F1_DIR}/${f}', nullstr = '\\N')`;
  await c.run(
    `COPY (SELECT r.resultId, r.driverId, r.points, r.positionOrder, r.statusId, ra.date ` +
      `FROM ${read("results.csv")} r JOIN ${read("races.csv")} ra USING (raceId) ` +
      `ORDER BY r.resultId) TO '${dir}/results.csv' (HEADER)`,
  );
  c.closeSync();
  inst.closeSync();
  await Deno.copyFile(`${F1_DIR}/drivers.csv`, `${dir}/drivers.csv`);
  const schema = parseSchema(
    `tables:
  drivers: { file: drivers.csv, primary_key: driverId }
  results:
    file: results.csv
    primary_key: resultId
    time_column: date
    foreign_keys: { driverId: drivers }
    columns: { statusId: categorical }
`,
    "f1_results.yaml",
  );
  return { db: await Database.open(dir, schema), dir };
}

Deno.test("f1: PREDICT COUNT(results.*, 0, 365) > 0 FOR EACH drivers.driverId", async () => {
  const { db, dir } = await openF1();
  try {
    const tt = await trainingTable(
      db,
      "PREDICT COUNT(results.*, 0, 365) > 0 FOR EACH drivers.driverId",
      {
        maxTrainAnchors: 40,
      },
    );
    assertEquals(tt.task, "binary");
    assertEquals(tt.entityTable, "drivers");
    // Results end 2025-10-05: the test cutoff is a year before, the validation cutoff a year earlier.
    assertEquals(tt.testCutoff, iso("2024-10-05T00:00:00Z"));
    assertEquals(tt.valCutoff, iso("2023-10-06T00:00:00Z"));
    // drivers has no time column: every driver is a row at every anchor.
    const counts = [0, 0, 0];
    for (const s of tt.split) counts[s]++;
    assertEquals(counts, [864 * 40, 864, 864]);
    const n = tt.entity.length;
    const maxOf = (s: Split) => Math.max(...tt.anchorTime.filter((_, i) => tt.split[i] === s));
    const minOf = (s: Split) => Math.min(...tt.anchorTime.filter((_, i) => tt.split[i] === s));
    assert(maxOf(Split.Train) < minOf(Split.Val) && maxOf(Split.Val) < minOf(Split.Test));
    assertEquals(minOf(Split.Test), tt.testCutoff);
    // Train and validation windows end at or before the test cutoff.
    for (let i = 0; i < n; i++) {
      if (tt.split[i] !== Split.Test) assert(tt.anchorTime[i] + 365 * DAY <= tt.testCutoff!);
    }
    // Labels recomputed in TypeScript; train/val ones from rows up to the test cutoff only.
    const r = await db.columns(
      `SELECT d.__row AS e, epoch(r.date) AS t FROM results r JOIN drivers d USING (driverId)`,
    );
    const active = (a: number, cutoff: number) => {
      const s = new Set<number>();
      for (let j = 0; j < r.e.length; j++) {
        const t = r.t[j] as number;
        if (t > a && t <= a + 365 * DAY && t <= cutoff) s.add(r.e[j] as number);
      }
      return s;
    };
    const cache = new Map<number, Set<number>>();
    let positives = 0;
    for (let i = 0; i < n; i++) {
      const a = tt.anchorTime[i];
      if (!cache.has(a)) {
        cache.set(a, active(a, tt.split[i] === Split.Test ? Infinity : tt.testCutoff!));
      }
      const want = cache.get(a)!.has(tt.entity[i]) ? 1 : 0;
      assertEquals(tt.label[i], want, `row ${i}`);
      positives += want;
    }
    assert(positives > 500, `${positives} positives`);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("f1: the shipped schema (results timed through time_from) gives the same table", async () => {
  // store/examples/f1.yaml dates results by `time_from: raceId`; the hand-dated copy
  // above joins the race date into the file. The training tables must agree exactly.
  const q = "PREDICT COUNT(results.*, 0, 365) > 0 FOR EACH drivers.driverId";
  const { db, dir } = await openF1();
  const shipped = await Database.open(
    F1_DIR,
    await loadSchema(new URL("./examples/f1.yaml", import.meta.url).pathname),
  );
  try {
    const a = await trainingTable(db, q, { maxTrainAnchors: 10 });
    const b = await trainingTable(shipped, q, { maxTrainAnchors: 10 });
    assert(a.entity.length > 1000, `only ${a.entity.length} rows`);
    assertEquals(b.entity, a.entity);
    assertEquals(b.anchorTime, a.anchorTime);
    assertEquals(b.split, a.split);
    assertEquals(b.label, a.label);
  } finally {
    db.close();
    shipped.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("f1: a filtered regression and a multiclass target", async () => {
  const { db, dir } = await openF1();
  try {
    const reg = await trainingTable(
      db,
      "PREDICT SUM(results.points, 0, 365) FOR EACH drivers.driverId WHERE COUNT(results.*, -365, 0) > 0",
      { maxTrainAnchors: 5 },
    );
    assertEquals(reg.task, "regression");
    const counts = [0, 0, 0];
    for (const s of reg.split) counts[s]++;
    // A season has 20 to 30 drivers.
    assert(counts[1] >= 18 && counts[1] <= 35 && counts[2] >= 18 && counts[2] <= 35, `${counts}`);
    assert(reg.label.some((x) => x > 300), "a champion scores over 300 points");
    const mc = await trainingTable(
      db,
      "PREDICT FIRST(results.statusId, 0, 30) FOR EACH drivers.driverId",
      { maxTrainAnchors: 3 },
    );
    assertEquals(mc.task, "multiclass");
    assert(mc.classes!.includes("1"), "status 1 (Finished) is a class");
    assert(mc.label.every((x) => Number.isInteger(x) && x >= 0 && x < mc.classes!.length));
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

const W = (start: number, end: number, unit: Window["unit"] = "days"): Window => ({
  start,
  end,
  unit,
  pos: 0,
});

Deno.test("anchor schedule: defaults, explicit cutoffs and steps, months", () => {
  const range = { min: iso("2020-01-01T00:00:00Z"), max: iso("2021-01-01T00:00:00Z") };
  const s = anchorSchedule(range, W(0, 30));
  assertEquals(s.testCutoff, range.max - 30 * DAY);
  assertEquals(s.valCutoff, range.max - 60 * DAY);
  const train = s.anchors.filter((a) => a.split === Split.Train).map((a) => a.time);
  assertEquals(train[0], s.valCutoff - 30 * DAY);
  assert(train.every((t, i) => i === 0 || train[i - 1] - t === 30 * DAY));
  assert(train[train.length - 1] >= range.min + 30 * DAY);
  assertEquals(train.length, 9); // Jan 31 (30 days of history) to Oct 3
  const t = anchorSchedule(range, W(0, 30), {
    testCutoff: "2020-12-01",
    valCutoff: new Date("2020-11-01T00:00:00Z"),
    step: 7,
    maxTrainAnchors: 3,
    valAnchors: 5,
    testAnchors: 2,
    minHistory: 0,
  });
  assertEquals(
    t.anchors.map((a) => [new Date(a.time * 1000).toISOString().slice(0, 10), a.split]),
    [
      ["2020-10-25", 0],
      ["2020-10-18", 0],
      ["2020-10-11", 0],
      ["2020-11-01", 1], // 11-08 would end after the test cutoff: excluded
      ["2020-12-01", 2],
      ["2020-12-08", 2],
    ],
  );
  // Months step by calendar months from the cutoffs, clamping the day (March 30 - 1 = Feb 29).
  const m = anchorSchedule({ min: range.min, max: iso("2020-05-31T00:00:00Z") }, W(0, 1, "months"));
  assertEquals(
    m.anchors.map((a) => [new Date(a.time * 1000).toISOString().slice(0, 10), a.split]),
    [
      ["2020-02-29", 0], // 2020-01-30 is before 2020-02-01, one month after the data starts
      ["2020-03-30", 1],
      ["2020-04-30", 2],
    ],
  );
});

Deno.test("anchor schedule errors", () => {
  const range = { min: iso("2020-01-01T00:00:00Z"), max: iso("2020-03-01T00:00:00Z") };
  throws(
    () => anchorSchedule(range, W(0, 30), { step: 0 }),
    /step must be a positive number of days/,
  );
  throws(
    () => anchorSchedule(range, W(0, 1, "months"), { step: 0.5 }),
    /positive whole number of months/,
  );
  throws(
    () => anchorSchedule(range, W(0, 30), { maxTrainAnchors: 0 }),
    /maxTrainAnchors must be an integer >= 1/,
  );
  throws(
    () => anchorSchedule(range, W(0, 30), { valAnchors: 1.5 }),
    /valAnchors must be an integer/,
  );
  throws(() => anchorSchedule(range, W(0, 30), { minHistory: -1 }), /minHistory must be >= 0/);
  throws(
    () => anchorSchedule(range, W(0, 30), { valCutoff: "2020-02-01", testCutoff: "2020-01-15" }),
    /the validation cutoff 2020-02-01T00:00:00.000Z must be before the test cutoff/,
  );
  throws(
    () => anchorSchedule(range, W(0, 30), { testCutoff: "yesterday" }),
    /testCutoff: cannot read "yesterday"/,
  );
  throws(
    () => anchorSchedule(range, W(0, 30), { testCutoff: NaN }),
    /testCutoff: not a finite time/,
  );
  throws(
    () => anchorSchedule(range, W(0, 30), { valCutoff: new Date("x") }),
    /valCutoff: invalid Date/,
  );
  throws(() => anchorSchedule(range, W(0, 30)), /no training anchors: the first one \(2019-12-02/);
  throws(
    () =>
      anchorSchedule({ ...range, min: 0 }, W(0, 30), {
        valCutoff: "2020-01-25",
        testCutoff: "2020-02-01",
      }),
    /no validation anchors: the window from the validation cutoff 2020-01-25T00:00:00.000Z ends at 2020-02-24/,
  );
});

const SMALL_YAML = `tables:
  users: { file: users.csv, primary_key: id, time_column: signup, columns: { country: categorical } }
  items: { file: items.csv, primary_key: iid }
  orders:
    file: orders.csv
    primary_key: oid
    time_column: ts
    foreign_keys: { user: users, item: items }
`;

const SMALL = {
  "users.csv": "id,signup,age,country\n" +
    Array.from(
      { length: 20 },
      (_, i) =>
        `${100 + i},2020-01-${String(i + 1).padStart(2, "0")},${20 + i},${
          ["fr", "de", "us"][i % 3]
        }`,
    ).join("\n") + "\n",
  "items.csv": "iid,price\n7,1.5\n8,2.5\n9,3.5\n",
  "orders.csv": "oid,user,item,ts,amount\n" +
    Array.from(
      { length: 60 },
      (_, i) =>
        `${i},${100 + (i % 20)},${7 + (i % 3)},2020-0${1 + (i % 6)}-${
          String(1 + (i % 27)).padStart(2, "0")
        },${i}`,
    ).join("\n") + "\n",
};

Deno.test("static targets: one row per entity, split by entity time; link targets as CSR", async () => {
  const dir = await tempDir(SMALL);
  const db = await openYaml(dir, SMALL_YAML);
  try {
    const st = await trainingTable(db, "PREDICT users.country FOR EACH users.id");
    assertEquals(st.task, "multiclass");
    assertEquals(st.classes, ["de", "fr", "us"]);
    assertEquals(st.entity.length, 20);
    // The two latest users (signup Jan 19, 20) are test, the two before validation.
    assertEquals([...st.entity.slice(16)], [16, 17, 18, 19]);
    assertEquals([...st.split.slice(15)], [0, 1, 1, 2, 2]);
    assertEquals(st.label[0], 1); // user 0 is "fr"
    assert(st.anchorTime.every((t) => t === iso("2020-06-27T00:00:00Z")), "anchor: latest time");
    const link = await trainingTable(
      db,
      "PREDICT LIST_DISTINCT(orders.item, 0, 30) FOR EACH users.id",
      {
        maxTrainAnchors: 2,
      },
    );
    assertEquals(link.task, "link");
    assertEquals(link.link!.targetTable, "items");
    assertEquals(link.label.length, 0);
    const { offsets, targets } = link.link!;
    assert(link.entity.length > 10, `${link.entity.length} rows`);
    assertEquals(offsets.length, link.entity.length + 1);
    assertEquals(offsets[offsets.length - 1], targets.length);
    for (let i = 0; i < link.entity.length; i++) {
      assert(offsets[i + 1] > offsets[i], "no empty target lists");
      const ts = [...targets.slice(offsets[i], offsets[i + 1])];
      assertEquals(ts, [...new Set(ts)].sort(), "distinct and sorted");
      // Order j: user row j % 20, item row j % 3, time 2020-(1 + j % 6)-(1 + j % 27).
      const a = link.anchorTime[i];
      const want = new Set<number>();
      for (let j = 0; j < 60; j++) {
        const t = Date.UTC(2020, j % 6, 1 + (j % 27)) / 1000;
        if (j % 20 === link.entity[i] && t > a && t <= a + 30 * DAY) want.add(j % 3);
      }
      assertEquals(ts, [...want].sort());
    }
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("static targets without entity time split at random, reproducibly by seed", async () => {
  const dir = await tempDir({
    ...SMALL,
    "users.csv": SMALL["users.csv"].replace("signup", "joined"),
  });
  const db = await openYaml(dir, SMALL_YAML.replace("time_column: signup, ", ""));
  try {
    const a = await trainingTable(db, "PREDICT users.age > 30 FOR EACH users.id", { seed: 1 });
    const b = await trainingTable(db, "PREDICT users.age > 30 FOR EACH users.id", { seed: 1 });
    const c = await trainingTable(db, "PREDICT users.age > 30 FOR EACH users.id", {
      seed: 2,
      staticFractions: { val: 0.25, test: 0.25 },
    });
    assertEquals(a.task, "binary");
    assertEquals([...a.entity], [...b.entity]);
    const count = (s: Uint8Array, k: number) => s.filter((x) => x === k).length;
    assertEquals([count(a.split, 0), count(a.split, 1), count(a.split, 2)], [16, 2, 2]);
    assertEquals([count(c.split, 0), count(c.split, 1), count(c.split, 2)], [10, 5, 5]);
    await rejects(
      trainingTable(db, "PREDICT users.age FOR EACH users.id", {
        staticFractions: { val: 0.5, test: 0.5 },
      }),
      /staticFractions/,
    );
    await rejects(
      trainingTable(db, "PREDICT users.agee FOR EACH users.id"),
      /unknown column 'agee'/,
    );
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});
