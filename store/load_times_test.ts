import assert from "node:assert/strict";
import { Database } from "./database.ts";
import { openError, openYaml, withDir } from "./test_util.ts";

const T = (y: number, m: number, d: number, h = 0, mi = 0) => Date.UTC(y, m - 1, d, h, mi) / 1000;

/** races (8-digit times) ← results (time_from raceId) ← laps (time_from resultId). */
const FILES = {
  "races.csv": "raceId,day\n1,20200105\n2,20210310\n3,20190720\n",
  "drivers.csv": "driverId,name\n7,a\n8,b\n",
  "results.csv": "resultId,raceId,driverId\n100,2,7\n101,1,8\n102,3,7\n103,2,8\n",
  "laps.csv": "lap,resultId\n1,103\n2,100\n3,102\n4,101\n5,103\n",
};
const YAML = `tables:
  laps:
    file: laps.csv
    time_from: resultId
    foreign_keys: { resultId: results }
  races:
    file: races.csv
    primary_key: raceId
    time_column: day
  drivers:
    file: drivers.csv
    primary_key: driverId
  results:
    file: results.csv
    primary_key: resultId
    time_from: raceId
    foreign_keys: { raceId: races, driverId: drivers }
`;

Deno.test("time_from: the inherited time equals the parent's, over a two-level chain", async () => {
  await withDir(FILES, async (dir) => {
    const db = await openYaml(dir, YAML);
    try {
      const { __time: results } = await db.columns("select __time from results order by __row");
      const race = { 1: T(2020, 1, 5), 2: T(2021, 3, 10), 3: T(2019, 7, 20) };
      assert.deepEqual([...results as Float64Array], [race[2], race[1], race[3], race[2]]);
      const joined = await db.query(
        "select count(*) as n from results r join races p using (raceId) where r.__time = p.day",
      );
      assert.deepEqual(joined, [{ n: 4 }]);
      const { __time: laps } = await db.columns("select __time from laps order by __row");
      assert.deepEqual([...laps as Float64Array], [race[2], race[2], race[3], race[1], race[2]]);
      const [{ type }] = await db.query(
        "select data_type as type from information_schema.columns " +
          "where table_name = 'laps' and column_name = '__time'",
      );
      assert.equal(type, "TIMESTAMP");
      const t = db.table("results");
      assert.equal(t.timeColumn, "__time");
      assert.equal(t.timeFrom, "raceId");
      assert.deepEqual(t.columns.map((c) => `${c.name}:${c.stype}`), [
        "resultId:id",
        "raceId:id",
        "driverId:id",
        "__time:timestamp",
      ]);
      assert.equal(db.table("laps").timeColumn, "__time");
      assert.equal(db.table("drivers").timeColumn, undefined);
      assert.deepEqual(db.timeRange(), { min: T(2019, 7, 20), max: T(2021, 3, 10) });
      // db.schema (the resolved form) opens again to the same tables.
      const again = await Database.open(dir, db.schema);
      try {
        assert.deepEqual(again.schema, db.schema);
        assert.deepEqual(
          await again.query("select * from laps order by __row"),
          await db.query("select * from laps order by __row"),
        );
      } finally {
        again.close();
      }
    } finally {
      db.close();
    }
  });
});

Deno.test("time_from: string keys, ISO date-times, and a table without a primary key", async () => {
  await withDir({
    "u.csv": "uid,joined\nu-1,2024-01-31T12:30:00+02:00\nu-2,2024/02/01 08:15\n",
    "e.csv": "uid,what\nu-2,x\nu-1,y\n",
  }, async (dir) => {
    const db = await openYaml(
      dir,
      "tables:\n  u:\n    file: u.csv\n    primary_key: uid\n    time_column: joined\n" +
        "  e:\n    file: e.csv\n    time_from: uid\n    foreign_keys: { uid: u }\n",
    );
    try {
      const { __time } = await db.columns("select __time from e order by __row");
      assert.deepEqual([...__time as Float64Array], [T(2024, 2, 1, 8, 15), T(2024, 1, 31, 10, 30)]);
    } finally {
      db.close();
    }
  });
});

Deno.test("time_from: an empty key is an error with lines, like an empty time", async () => {
  const { message } = await openError(
    { ...FILES, "results.csv": "resultId,raceId,driverId\n100,2,7\n101,,8\n102,\\N,7\n" },
    YAML.replace(/ {2}laps:[^]*?(?= {2}races:)/, ""),
  );
  assert.equal(
    message,
    'results.csv (table "results"): time_from "raceId" is empty in 2 rows: lines 3, 4 ' +
      "(every row of a table with a time needs a time, taken here from races through " +
      '"raceId"; fill it in, or leave time_from out to make the table static)',
  );
});

Deno.test("time_from in a chain: an empty key is reported where it is, not below", async () => {
  const { message } = await openError(
    { ...FILES, "results.csv": "resultId,raceId,driverId\n100,2,7\n101,,8\n102,3,7\n103,2,8\n" },
    YAML,
  );
  assert.equal(
    message,
    'results.csv (table "results"): time_from "raceId" is empty in 1 row: line 3 (every row ' +
      "of a table with a time needs a time, taken here from races through " +
      '"raceId"; fill it in, or leave time_from out to make the table static)',
  );
});

Deno.test("time_from with drop: dangling rows are dropped first, then times resolve", async () => {
  await withDir({
    ...FILES,
    // 101 points to a missing race; 102 has no race but a missing driver, so it is dropped.
    "results.csv": "resultId,raceId,driverId\n100,2,7\n101,9,8\n102,,99\n103,1,8\n",
  }, async (dir) => {
    await assert.rejects(() => openYaml(dir, YAML), {
      message: /^results\.csv \(table "results"\): foreign key "raceId" -> races\.raceId: 1 row/,
    });
    const db = await openYaml(dir, YAML, { danglingForeignKeys: "drop" });
    try {
      assert.equal(db.warnings.length, 3); // results.raceId, results.driverId, laps.resultId
      assert.deepEqual(
        await db.query("select resultId, epoch(__time) as t, __row from results order by __row"),
        [
          { resultId: 100, t: T(2021, 3, 10), __row: 0 },
          { resultId: 103, t: T(2020, 1, 5), __row: 1 },
        ],
      );
      assert.deepEqual(
        await db.query("select lap, epoch(__time) as t, __row from laps order by __row"),
        [
          { lap: 1, t: T(2020, 1, 5), __row: 0 },
          { lap: 2, t: T(2021, 3, 10), __row: 1 },
          { lap: 5, t: T(2020, 1, 5), __row: 2 },
        ],
      );
    } finally {
      db.close();
    }
  });
});

Deno.test("time_from: an empty key is an error with drop too; __time in the file is reserved", async () => {
  const empty = await openError(
    { ...FILES, "results.csv": "resultId,raceId,driverId\n100,,7\n" },
    YAML,
    { danglingForeignKeys: "drop" },
  );
  assert.match(
    empty.message,
    /^results\.csv \(table "results"\): time_from "raceId" is empty in 1 row: line 2 /,
  );
  const reserved = await openError(
    { ...FILES, "laps.csv": "lap,resultId,__time\n1,103,x\n" },
    YAML,
  );
  assert.equal(
    reserved.message,
    'laps.csv (table "laps"): column "__time" is reserved for the time inherited through ' +
      "time_from; rename it",
  );
});
