import assert from "node:assert/strict";
import { inferSchema, inferSchemaDetailed, inferSchemaYaml, writeSchemaFile } from "./infer.ts";
import { parseSchema } from "./schema.ts";
import { Database } from "./database.ts";
import type { Schema, TableSchema } from "./types.ts";
import { F1_DIR, withDir } from "./test_util.ts";

function table(s: Schema, name: string): TableSchema {
  const t = s.tables.find((x) => x.name === name);
  assert.ok(t, `no table ${name}`);
  return t;
}

Deno.test("f1: sensible keys, foreign keys and time columns; the inferred schema loads", async () => {
  const schema = await inferSchema(F1_DIR);
  assert.equal(schema.tables.length, 13);
  const races = table(schema, "races");
  assert.equal(races.primaryKey, "raceId");
  assert.equal(races.timeColumn, "date"); // the only date column that is never empty
  assert.deepEqual(races.foreignKeys, [{ column: "circuitId", table: "circuits" }]);
  const results = table(schema, "results");
  assert.equal(results.primaryKey, "resultId");
  assert.equal(results.timeColumn, undefined);
  assert.equal(results.timeFrom, "raceId"); // races is the only parent with a time
  const inheriting = schema.tables.filter((t) => t.timeFrom).map((t) => `${t.name}.${t.timeFrom}`);
  assert.deepEqual(inheriting.sort(), [
    "constructor_results.raceId",
    "constructor_standings.raceId",
    "driver_standings.raceId",
    "pit_stops.raceId",
    "qualifying.raceId",
    "results.raceId",
    "sprint_results.raceId",
  ]);
  assert.deepEqual(results.foreignKeys.map((f) => `${f.column}->${f.table}`), [
    "raceId->races",
    "driverId->drivers",
    "constructorId->constructors",
    "statusId->status",
  ]);
  assert.equal(table(schema, "drivers").primaryKey, "driverId");
  assert.equal(table(schema, "drivers").timeColumn, undefined); // dob is a birth date
  assert.equal(table(schema, "qualifying").primaryKey, "qualifyId");
  assert.equal(table(schema, "sprint_results").primaryKey, "resultId");
  assert.equal(table(schema, "driver_standings").primaryKey, "driverStandingsId");
  assert.equal(table(schema, "pit_stops").primaryKey, undefined); // composite natural key
  const stype = (t: string, c: string) => table(schema, t).columns.find((x) => x.name === c)?.stype;
  assert.equal(stype("results", "points"), "numerical");
  assert.equal(stype("results", "positionText"), "categorical");
  assert.equal(stype("races", "url"), "text");
  assert.equal(stype("races", "raceId"), "id");
  assert.equal(stype("races", "date"), "timestamp");
  const db = await Database.open(F1_DIR, schema);
  try {
    assert.equal(db.rowCount("results"), 27118);
    assert.equal(db.table("results").timeColumn, "__time");
  } finally {
    db.close();
  }
});

Deno.test("ambiguity is left to the user, with notes", async () => {
  await withDir({
    "events.csv":
      "eventId,start_date,end_date,userId\n1,2020-01-01,2020-01-02,1\n2,2020-01-03,2020-01-04,2\n",
    "users.csv": "userId,dob,signup_day,name\n1,1990-01-01,20200101,a\n2,1991-01-01,20200102,b\n",
    "visits.csv": "id,visitId,userId\n1,1,1\n2,2,3\n3,3,4\n",
  }, async (dir) => {
    const { schema, notes } = await inferSchemaDetailed(dir);
    const events = table(schema, "events");
    assert.equal(events.primaryKey, "eventId");
    assert.equal(events.timeColumn, undefined);
    assert.deepEqual(events.foreignKeys, [{ column: "userId", table: "users" }]);
    assert.deepEqual(notes.events, [
      "time column: several candidates (start_date, end_date); pick one as time_column",
    ]);
    const users = table(schema, "users");
    assert.equal(users.timeColumn, "signup_day"); // 8-digit YYYYMMDD; dob is skipped
    assert.equal(users.primaryKey, "userId");
    const visits = table(schema, "visits");
    assert.equal(visits.primaryKey, undefined);
    assert.deepEqual(notes.visits, [
      "primary key: several candidates (id, visitId); pick one",
      '"userId" looks like a foreign key to users, but only 33.3% of its values are there; left out',
    ]);
    assert.deepEqual(visits.foreignKeys, []);
  });
});

Deno.test("suffix foreign keys (home_team_id -> team_id) and string keys", async () => {
  await withDir({
    "teams.csv": "team_id,team_name\nT-1,a\nT-2,b\n",
    "matches.csv": "match_id,home_team_id,away_team_id\nM-1,T-1,T-2\nM-2,T-2,T-1\n",
  }, async (dir) => {
    const schema = await inferSchema(dir);
    assert.deepEqual(table(schema, "matches").foreignKeys, [
      { column: "home_team_id", table: "teams" },
      { column: "away_team_id", table: "teams" },
    ]);
    assert.equal(table(schema, "matches").primaryKey, "match_id");
  });
});

Deno.test("inferSchemaYaml has a header telling the user to edit, and parses back", async () => {
  await withDir({ "a.csv": "id,x\n1,2\n" }, async (dir) => {
    const text = await inferSchemaYaml(dir);
    assert.match(text, /^# fanout schema, inferred from the files in .*\n# Check it and edit it/);
    assert.deepEqual(parseSchema(text, "a.yaml"), await inferSchema(dir));
  });
});

Deno.test("writeSchemaFile writes atomically and refuses to overwrite by default", async () => {
  await withDir({ "a.csv": "id,x\n1,2\n" }, async (dir) => {
    const out = `${dir}/schema.yaml`;
    const schema = await writeSchemaFile(dir, out);
    assert.deepEqual(parseSchema(await Deno.readTextFile(out), out), schema);
    await assert.rejects(() => writeSchemaFile(dir, out), {
      message: `${out} already exists; remove it or overwrite it explicitly`,
    });
    await writeSchemaFile(dir, out, { overwrite: true });
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names.sort(), ["a.csv", "schema.yaml"]);
  });
});

Deno.test("a folder without data files is an error", async () => {
  await withDir({ "notes.md": "hi\n" }, async (dir) => {
    await assert.rejects(() => inferSchema(dir), {
      message: `${dir}: no CSV or Parquet files to infer a schema from`,
    });
  });
});

Deno.test("time_from is proposed only when unambiguous, through chains, with notes", async () => {
  await withDir({
    "users.csv": "userId,signup\n1,2020-01-01\n2,2020-02-01\n",
    "shops.csv": "shopId,opened\n1,2019-01-01\n",
    "kinds.csv": "kindId,name\n1,a\n",
    "orders.csv": "orderId,userId,kindId\n1,1,1\n2,2,1\n",
    "items.csv": "itemId,orderId\n1,1\n2,2\n3,1\n",
    "visits.csv": "visitId,userId,shopId\n1,1,1\n2,2,1\n",
    "reviews.csv": "reviewId,orderId\n1,1\n2,\n",
  }, async (dir) => {
    const { schema, notes } = await inferSchemaDetailed(dir);
    const from = (t: string) => table(schema, t).timeFrom;
    assert.equal(from("orders"), "userId"); // kinds has no time
    assert.equal(from("items"), "orderId"); // orders inherits
    assert.equal(from("visits"), undefined); // users and shops both have a time
    assert.equal(from("reviews"), undefined); // orderId is empty in a row
    assert.equal(from("users"), undefined);
    assert.deepEqual(notes.orders, [
      'time_from "userId": no time column, so each row takes the time of its users row (the ' +
      "only parent with a time); remove it if the rows are not events at that time",
    ]);
    assert.deepEqual(notes.visits, [
      "time_from: several foreign keys lead to a table with a time (userId -> users, " +
      "shopId -> shops); pick one as time_from if the rows are events at that table's time",
    ]);
    assert.deepEqual(notes.reviews, [
      'time_from: "orderId" would give each row the time of its orders row, but it is empty ' +
      "in 1 row; left out",
    ]);
    const text = await inferSchemaYaml(dir);
    assert.ok(text.includes("    time_from: orderId\n"), text);
    assert.deepEqual(parseSchema(text, "i.yaml"), schema);
    const db = await Database.open(dir, schema);
    try {
      const { t } = await db.columns("select epoch(__time) as t from items order by __row");
      assert.deepEqual([...t as Float64Array], [1577836800, 1580515200, 1577836800]);
    } finally {
      db.close();
    }
  });
});
