import assert from "node:assert/strict";
import { inferSchema, inferSchemaDetailed, inferSchemaYaml, writeSchemaFile } from "./infer.ts";
import { parseSchema } from "./schema.ts";
import { Database } from "./database.ts";
import type { Schema, TableSchema } from "./types.ts";
import { F1_DIR, sharedData, withDir } from "./test_util.ts";

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

Deno.test("foreign keys by values: key-like names, names holding a table's name, ambiguity noted", async () => {
  const players = Array.from({ length: 30 }, (_, i) => `${100 + i},p${i}`).join("\n");
  const matches = Array.from(
    { length: 40 },
    (_, i) => `${i},${100 + (i % 30)},${100 + ((i + 7) % 30)}`,
  )
    .join("\n");
  await withDir({
    "players.csv": `player_id,name\n${players}\n`,
    "matches.csv": `match_id,winner_id,loser_id\n${matches}\n`,
    "rankings.csv": "player,rank\n100,1\n101,2\n102,3\n",
    "genres.csv": "genre_id,name\n1,a\n2,b\n3,c\n4,d\n",
    "moods.csv": "mood_id,name\n1,a\n2,b\n3,c\n",
    // small values fit genres and moods: left to the user; wrong kind (text) never fits
    "songs.csv": "song_id,TagId,code_id,key_id\n1,1,x,1\n2,2,y,2\n3,1,z,3\n",
    // few distinct values and only one table they fit: noted, not taken without a name
    "plays.csv": "play_id,ref_id\n1,100\n2,101\n3,100\n",
  }, async (dir) => {
    const { schema, notes } = await inferSchemaDetailed(dir);
    assert.deepEqual(table(schema, "matches").foreignKeys, [
      { column: "winner_id", table: "players" },
      { column: "loser_id", table: "players" },
    ]);
    assert.deepEqual(notes.matches, [
      'foreign key "winner_id" -> players: found by its values (names do not match); check it',
      'foreign key "loser_id" -> players: found by its values (names do not match); check it',
    ]);
    assert.deepEqual(table(schema, "rankings").foreignKeys, [{
      column: "player",
      table: "players",
    }]);
    assert.equal(table(schema, "rankings").columns.find((c) => c.name === "player")?.stype, "id");
    assert.deepEqual(table(schema, "songs").foreignKeys, []); // key_id: unique, a row number
    assert.deepEqual(notes.songs, [
      '"TagId" may be a foreign key: its values are among the keys of genres.genre_id, ' +
      "matches.match_id, moods.mood_id, plays.play_id; add the one it references under foreign_keys",
    ]);
    assert.deepEqual(table(schema, "plays").foreignKeys, []);
    assert.deepEqual(notes.plays, [
      '"ref_id" may be a foreign key: its values are among the keys of players.player_id; ' +
      "add the one it references under foreign_keys",
    ]);
  });
});

Deno.test("primary keys repeated in other files; row numbers every file has are not keys", async () => {
  await withDir({
    "tournaments.csv": "key_id,tourney_id,name\n1,T-1,a\n2,T-2,b\n",
    "matches.csv": "key_id,match_id,tourney_id\n1,M-1,T-1\n2,M-2,T-1\n3,M-3,T-2\n",
    // unique here, repeated in members: but it names the users table, so it is users' key
    "profiles.csv": "user_id,bio\n1,x\n2,y\n",
    "users.csv": "user_id,name\n1,a\n2,b\n",
    "members.csv": "member_no,user_id\n1,1\n2,1\n",
  }, async (dir) => {
    const { schema, notes } = await inferSchemaDetailed(dir);
    assert.equal(table(schema, "tournaments").primaryKey, "tourney_id");
    assert.deepEqual(notes.tournaments, [
      'primary key "tourney_id": unique here, and repeated in matches; check it',
    ]);
    assert.equal(table(schema, "matches").primaryKey, "match_id");
    assert.deepEqual(table(schema, "matches").foreignKeys, [
      { column: "tourney_id", table: "tournaments" },
    ]);
    assert.equal(table(schema, "profiles").primaryKey, undefined);
    assert.deepEqual(table(schema, "profiles").foreignKeys, [{
      column: "user_id",
      table: "users",
    }]);
    assert.equal(table(schema, "users").primaryKey, "user_id");
  });
});

Deno.test("integer YYYYMMDD columns named like dates are timestamp features", async () => {
  await withDir({
    "people.csv": "id,dob,birth_day,height\n" +
      Array.from(
        { length: 200 },
        (_, i) => `${i},${1800 + i}0315,${i === 0 ? "19890000" : `${1800 + i}1231`},${150 + i}`,
      )
        .join("\n") +
      "\n",
    "odd.csv": "id,start_day\n1,20200101\n2,20200199\n3,20200102\n4,20200198\n",
  }, async (dir) => {
    const schema = await inferSchema(dir);
    const stype = (t: string, c: string) =>
      table(schema, t).columns.find((x) => x.name === c)?.stype;
    assert.equal(stype("people", "dob"), "timestamp");
    assert.equal(stype("people", "birth_day"), "numerical"); // one month-less date in 200
    assert.equal(stype("people", "height"), "numerical");
    assert.equal(stype("odd", "start_day"), "numerical"); // half of it is not a date
    const db = await Database.open(dir, schema);
    db.close();
  });
});

Deno.test("the shared databases: tennis, chinook and worldcup keys as a user would draw them", async () => {
  const tennis = await inferSchemaDetailed(sharedData("tennis_atp"));
  const t = tennis.schema;
  assert.equal(table(t, "players").primaryKey, "player_id");
  assert.equal(table(t, "tournaments").primaryKey, "tourney_id");
  assert.deepEqual(table(t, "matches").foreignKeys.map((f) => `${f.column}->${f.table}`), [
    "tourney_id->tournaments",
    "winner_id->players",
    "loser_id->players",
  ]);
  assert.equal(table(t, "matches").timeColumn, "tourney_date");
  assert.deepEqual(table(t, "rankings").foreignKeys, [{ column: "player", table: "players" }]);
  assert.equal(table(t, "players").columns.find((c) => c.name === "dob")?.stype, "numerical");
  assert.match(
    tennis.notes.players.join("\n"),
    /"dob" holds YYYYMMDD dates, but 102 values are not/,
  );
  const chinook = await inferSchemaDetailed(sharedData("chinook"));
  assert.deepEqual(table(chinook.schema, "InvoiceLine").foreignKeys.map((f) => f.table), [
    "Invoice",
    "Track",
  ]);
  assert.equal(table(chinook.schema, "InvoiceLine").timeFrom, "InvoiceId");
  assert.deepEqual(table(chinook.schema, "Customer").foreignKeys, []); // SupportRepId: a note
  assert.match(
    chinook.notes.Customer.join("\n"),
    /"SupportRepId" may be a foreign key: .*Employee/,
  );
  const wc = await inferSchemaDetailed(sharedData("worldcup"));
  // key_id is a row number in all 27 files: never a key
  assert.ok(wc.schema.tables.every((x) => x.primaryKey !== "key_id"));
  assert.deepEqual(
    table(wc.schema, "team_appearances").foreignKeys.find((f) => f.column === "opponent_id"),
    { column: "opponent_id", table: "teams" },
  );
  assert.equal(table(wc.schema, "matches").primaryKey, "match_id");
});
