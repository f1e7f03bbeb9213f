import assert from "node:assert/strict";
import fc from "fast-check";
import { Database, DataError } from "./database.ts";
import { loadSchema } from "./schema.ts";
import { F1_DIR, openError, openYaml, withDir } from "./test_util.ts";

const T = (y: number, m: number, d: number, h = 0, mi = 0, s = 0) =>
  Date.UTC(y, m - 1, d, h, mi, s) / 1000;

Deno.test("loads CSVs: \\N and empty fields are nulls, __row is dense in file order", async () => {
  await withDir({
    "a.csv": 'id,name,score\n3,"x, y",1.5\n1,\\N,\n2,,\\N\n',
  }, async (dir) => {
    const db = await openYaml(dir, "tables:\n  a:\n    file: a.csv\n    primary_key: id\n");
    try {
      assert.deepEqual(await db.query('select * from "a" order by __row'), [
        { id: 3, name: "x, y", score: 1.5, __row: 0 },
        { id: 1, name: null, score: null, __row: 1 },
        { id: 2, name: null, score: null, __row: 2 },
      ]);
      assert.equal(db.rowCount("a"), 3);
      assert.deepEqual(db.warnings, []);
      assert.equal(db.timeRange(), null);
      assert.deepEqual(db.table("a").columns.map((c) => c.name), ["id", "name", "score"]);
      assert.equal(db.table("a").columns[0].stype, "id");
    } finally {
      db.close();
    }
  });
});

Deno.test("time columns: ISO dates and date-times, YYYY/MM/DD, offsets, mixed in one column", async () => {
  const csv = "id,t\n1,2024-01-31\n2,2024-01-31 12:30:00\n3,2024-01-31T12:30:00Z\n" +
    "4,2024/01/31\n5,2024-01-31T12:30:00+02:00\n6,2024/01/31 08:15\n7,20240131\n";
  await withDir({ "e.csv": csv }, async (dir) => {
    const db = await openYaml(
      dir,
      "tables:\n  e:\n    file: e.csv\n    primary_key: id\n    time_column: t\n",
    );
    try {
      const { t } = await db.columns("select t from e order by __row");
      assert.ok(t instanceof Float64Array);
      assert.deepEqual([...t], [
        T(2024, 1, 31),
        T(2024, 1, 31, 12, 30),
        T(2024, 1, 31, 12, 30),
        T(2024, 1, 31),
        T(2024, 1, 31, 10, 30),
        T(2024, 1, 31, 8, 15),
        T(2024, 1, 31),
      ]);
      const [{ type }] = await db.query(
        "select data_type as type from information_schema.columns " +
          "where table_name = 'e' and column_name = 't'",
      );
      assert.equal(type, "TIMESTAMP");
      assert.deepEqual(db.timeRange(), { min: T(2024, 1, 31), max: T(2024, 1, 31, 12, 30) });
    } finally {
      db.close();
    }
  });
});

Deno.test("time columns: 8-digit YYYYMMDD integers and DATE columns", async () => {
  await withDir({
    "m.csv": "id,day\n1,19991231\n2,20240229\n",
    "r.csv": "rid,when\n1,1999-12-31\n",
  }, async (dir) => {
    const db = await openYaml(
      dir,
      "tables:\n  m:\n    file: m.csv\n    primary_key: id\n    time_column: day\n" +
        "  r:\n    file: r.csv\n    time_column: when\n",
    );
    try {
      const { day } = await db.columns("select day from m order by __row");
      assert.deepEqual([...day as Float64Array], [T(1999, 12, 31), T(2024, 2, 29)]);
      const { when } = await db.columns('select "when" from r');
      assert.deepEqual([...when as Float64Array], [T(1999, 12, 31)]);
      assert.deepEqual(db.timeRange(), { min: T(1999, 12, 31), max: T(2024, 2, 29) });
    } finally {
      db.close();
    }
  });
});

Deno.test("missing file: names the table and lists the data files there", async () => {
  const { message, dir } = await openError(
    { "races.csv": "raceId\n1\n", "other.parquet.txt": "x\n" },
    "tables:\n  races:\n    file: race.csv\n",
  );
  assert.equal(
    message,
    `table "races": file "race.csv" not found in ${dir}; data files there: other.parquet.txt, ` +
      `races.csv (did you mean "races.csv"?)`,
  );
});

Deno.test("malformed CSV: wrong field count or an open quote, with the line", async () => {
  const fields = await openError(
    { "a.csv": "id,x\n1,2\n3,4,5\n" },
    "tables:\n  a:\n    file: a.csv\n",
  );
  assert.equal(fields.message, 'a.csv (table "a"): line 3 has 3 fields, but the header has 2');
  const quote = await openError(
    { "a.csv": 'id,x\n1,2\n3,"4\n5,6\n' },
    "tables:\n  a:\n    file: a.csv\n",
  );
  assert.equal(quote.message, 'a.csv (table "a"): the quote opened on line 3 is never closed');
  const kind = await openError({ "a.xlsx": "" }, "tables:\n  a:\n    file: a.xlsx\n");
  assert.equal(
    kind.message,
    'table "a": file "a.xlsx" is neither CSV (.csv, .tsv, .txt, optionally .gz) nor ' +
      "Parquet (.parquet)",
  );
});

Deno.test("gzipped CSVs load, and their messages give lines", async () => {
  await withDir({}, async (dir) => {
    const text = "id,t\n1,2020-01-01\n2,never\n";
    const gz = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
    await Deno.writeFile(`${dir}/e.csv.gz`, gz);
    await assert.rejects(
      () => openYaml(dir, "tables:\n  e:\n    file: e.csv.gz\n    time_column: t\n"),
      {
        message:
          /^e\.csv\.gz \(table "e"\): time column "t" has 1 value that is not a date or time: "never" \(line 3\)/,
      },
    );
    const db = await openYaml(dir, "tables:\n  e:\n    file: e.csv.gz\n");
    try {
      assert.equal(db.rowCount("e"), 2);
    } finally {
      db.close();
    }
  });
});

Deno.test("missing column: names file, table, where the schema names it, and the file's columns", async () => {
  const { message } = await openError(
    { "races.csv": "raceId,date,name\n1,2020-01-01,x\n" },
    "tables:\n  races:\n    file: races.csv\n    primary_key: raceId\n    time_column: dat\n",
  );
  assert.equal(
    message,
    'races.csv (table "races"): no column "dat" (named in time_column); the file\'s columns: ' +
      'raceId, date, name (did you mean "date"?)',
  );
});

Deno.test("duplicate primary keys: count, example keys and their lines", async () => {
  const { message } = await openError(
    { "a.csv": "id,v\n1,a\n2,b\n1,c\n3,d\n2,e\n2,f\n" },
    "tables:\n  a:\n    file: a.csv\n    primary_key: id\n",
  );
  assert.equal(
    message,
    'a.csv (table "a"): primary key "id" has 2 duplicated values in 5 rows: ' +
      "1 (lines 2, 4), 2 (lines 3, 6, 7)",
  );
});

Deno.test("nulls in a primary key: count and lines", async () => {
  const { message } = await openError(
    { "a.csv": "id,v\n1,a\n,b\n\\N,c\n" },
    "tables:\n  a:\n    file: a.csv\n    primary_key: id\n",
  );
  assert.equal(message, 'a.csv (table "a"): primary key "id" is empty in 2 rows: lines 3, 4');
});

Deno.test("unparseable times: examples with line numbers (multi-line fields counted)", async () => {
  const { message } = await openError(
    {
      "e.csv": 'id,note,t\n1,"two\nlines",2020-01-01\n2,x,2020-13-45\n3,y,soon\n\n4,z,2020-02-02\n',
    },
    "tables:\n  e:\n    file: e.csv\n    primary_key: id\n    time_column: t\n",
  );
  assert.equal(
    message,
    'e.csv (table "e"): time column "t" has 2 values that are not a date or time: ' +
      '"2020-13-45" (line 4), "soon" (line 5); accepted: ISO 8601 dates and date-times ' +
      "(2024-01-31, 2024-01-31 12:30:00, 2024-01-31T12:30:00.5Z, 2024-01-31T12:30:00+02:00), " +
      "2024/01/31 with an optional 12:30[:00], and 8-digit YYYYMMDD numbers (20240131)",
  );
});

Deno.test("unparseable 8-digit times and a time column of the wrong type", async () => {
  const bad = await openError(
    { "m.csv": "id,day\n1,19991231\n2,18890000\n" },
    "tables:\n  m:\n    file: m.csv\n    time_column: day\n",
  );
  assert.match(
    bad.message,
    /^m\.csv \(table "m"\): time column "day" has 1 value that is not a date or time: 18890000 \(line 3\); accepted: /,
  );
  const typed = await openError(
    { "m.csv": "id,x\n1,1.5\n" },
    "tables:\n  m:\n    file: m.csv\n    time_column: x\n",
  );
  assert.match(
    typed.message,
    /^m\.csv \(table "m"\): time column "x" has type DOUBLE, which does not hold times; expected ISO 8601/,
  );
});

Deno.test("nulls in a time column: count and lines", async () => {
  const { message } = await openError(
    { "e.csv": "id,t\n1,2020-01-01\n2,\n3,\\N\n" },
    "tables:\n  e:\n    file: e.csv\n    time_column: t\n",
  );
  assert.equal(
    message,
    'e.csv (table "e"): time column "t" is empty in 2 rows: lines 3, 4 (every row of a table ' +
      "with a time column needs a time; leave time_column out to make the table static)",
  );
});

const FK_FILES = {
  "p.csv": "pid,name\n1,a\n2,b\n",
  "c.csv": "cid,pid\n10,1\n11,7\n12,2\n13,9\n14,\n",
  "g.csv": "gid,cid\n100,10\n101,11\n102,13\n103,12\n",
};
const FK_YAML = "tables:\n  p:\n    file: p.csv\n    primary_key: pid\n" +
  "  c:\n    file: c.csv\n    primary_key: cid\n    foreign_keys: { pid: p }\n" +
  "  g:\n    file: g.csv\n    primary_key: gid\n    foreign_keys: { cid: c }\n";

Deno.test("dangling foreign keys fail by default: count and examples with lines", async () => {
  const { message } = await openError(FK_FILES, FK_YAML);
  assert.equal(
    message,
    'c.csv (table "c"): foreign key "pid" -> p.pid: 2 rows reference values missing from p: ' +
      '7 (line 3), 9 (line 5) (fix the data, or open with danglingForeignKeys "drop" to drop ' +
      "such rows with a warning)",
  );
});

Deno.test("dangling foreign keys with drop: rows dropped in cascade, warnings, __row dense", async () => {
  await withDir(FK_FILES, async (dir) => {
    const db = await openYaml(dir, FK_YAML, { danglingForeignKeys: "drop" });
    try {
      assert.deepEqual(db.warnings, [
        'c.csv (table "c"): dropped 2 rows whose foreign key "pid" -> p.pid has no match: ' +
        "7 (line 3), 9 (line 5)",
        'g.csv (table "g"): dropped 2 rows whose foreign key "cid" -> c.cid has no match: ' +
        "11 (line 3), 13 (line 4) (2 of them pointed to rows of c dropped before)",
      ]);
      assert.deepEqual(await db.query("select cid, pid, __row from c order by __row"), [
        { cid: 10, pid: 1, __row: 0 },
        { cid: 12, pid: 2, __row: 1 },
        { cid: 14, pid: null, __row: 2 },
      ]);
      assert.deepEqual(await db.query("select gid, __row from g order by __row"), [
        { gid: 100, __row: 0 },
        { gid: 103, __row: 1 },
      ]);
      assert.equal(db.rowCount("g"), 2);
    } finally {
      db.close();
    }
  });
});

Deno.test("declared types: numerical values that are not numbers; text keeps leading zeros", async () => {
  const { message } = await openError(
    { "a.csv": "id,v\n1,2.5\n2,n/a\n" },
    "tables:\n  a:\n    file: a.csv\n    columns: { v: numerical }\n",
  );
  assert.equal(
    message,
    'a.csv (table "a"): column "v" is declared numerical, but 1 value is not numbers: ' +
      '"n/a" (line 3)',
  );
  await withDir({ "a.csv": "id,zip\n1,0171\n2,10115\n" }, async (dir) => {
    const db = await openYaml(dir, "tables:\n  a:\n    file: a.csv\n    columns: { zip: text }\n");
    try {
      assert.deepEqual(await db.query("select zip from a order by __row"), [
        { zip: "0171" },
        { zip: "10115" },
      ]);
    } finally {
      db.close();
    }
  });
});

Deno.test("all problems of all tables are reported together", async () => {
  const { message } = await openError(
    { "a.csv": "id\n1\n1\n", "b.csv": "id,t\n1,x\n" },
    "tables:\n  a:\n    file: a.csv\n    primary_key: id\n" +
      "  b:\n    file: b.csv\n    time_column: t\n",
  );
  assert.equal(message.split("\n").length, 2);
});

Deno.test("table() lists the tables; query() gives numbers; bad options are refused", async () => {
  await withDir({ "a.csv": "id,big\n1,9007199254740993\n" }, async (dir) => {
    const db = await openYaml(dir, "tables:\n  a:\n    file: a.csv\n");
    try {
      assert.throws(() => db.table("b"), { message: 'no table "b"; tables: a' });
      assert.throws(() => db.rowCount("A"), {
        message: 'no table "A"; tables: a (did you mean "a"?)',
      });
      const [row] = await db.query("select id, big, 2::HUGEINT as h from a");
      assert.equal(row.id, 1);
      assert.equal(row.big, 9007199254740993n);
    } finally {
      db.close();
    }
    await assert.rejects(
      () =>
        openYaml(dir, "tables:\n  a:\n    file: a.csv\n", {
          danglingForeignKeys: "skip" as "drop",
        }),
      { message: 'danglingForeignKeys must be "fail" or "drop", not "skip"' },
    );
  });
});

Deno.test("Parquet files load the same way; row-level messages give rows", async () => {
  await withDir({ "a.csv": "id,t\n1,2020-01-01\n2,2020-01-02\n2,2020-01-03\n" }, async (dir) => {
    const tmp = await openYaml(dir, "tables:\n  a:\n    file: a.csv\n");
    await tmp.query(
      `copy (select * exclude (__row) from a) to '${dir}/a.parquet' (format parquet)`,
    );
    tmp.close();
    const db = await openYaml(dir, "tables:\n  a:\n    file: a.parquet\n    time_column: t\n");
    try {
      assert.deepEqual(await db.query("select id, __row from a order by __row"), [
        { id: 1, __row: 0 },
        { id: 2, __row: 1 },
        { id: 2, __row: 2 },
      ]);
    } finally {
      db.close();
    }
    await assert.rejects(
      () => openYaml(dir, "tables:\n  a:\n    file: a.parquet\n    primary_key: id\n"),
      {
        message: 'a.parquet (table "a"): primary key "id" has 1 duplicated value in 2 rows: ' +
          "2 (rows 2, 3)",
      },
    );
  });
});

Deno.test("columns(): typed arrays by type, nulls as NaN, integers widened only when needed", async () => {
  await withDir({ "a.csv": "id\n1\n" }, async (dir) => {
    const db = await openYaml(dir, "tables:\n  a:\n    file: a.csv\n");
    try {
      const c = await db.columns(
        "select * from (values (1, 5000000000, 1.5, 'x', 7::SMALLINT, true, 2.25::DECIMAL(5,2)), " +
          "(NULL, -5, NULL, NULL, 8, false, NULL)) t(i, b, f, s, sm, bo, d)",
      );
      assert.deepEqual(c.i, new Float64Array([1, NaN]));
      assert.deepEqual(c.b, new Float64Array([5000000000, -5]));
      assert.deepEqual(c.f, new Float64Array([1.5, NaN]));
      assert.deepEqual(c.s, ["x", null]);
      assert.deepEqual(c.sm, new Int32Array([7, 8]));
      assert.deepEqual(c.bo, new Int32Array([1, 0]));
      assert.deepEqual(c.d, new Float64Array([2.25, NaN]));
      const big = await db.columns(
        "select range::BIGINT as r, (range * 2)::INTEGER as x, epoch_ms(range * 1000) as ts " +
          "from range(5000)",
      );
      assert.ok(big.r instanceof Int32Array && big.x instanceof Int32Array);
      assert.equal(big.r.length, 5000);
      assert.equal(big.r[4999], 4999);
      assert.equal((big.x as Int32Array)[4999], 9998);
      assert.equal((big.ts as Float64Array)[4999], 4999);
      const empty = await db.columns("select 1::INTEGER as a, 'x' as b where false");
      assert.deepEqual(empty, { a: new Int32Array(0), b: [] });
    } finally {
      db.close();
    }
  });
});

Deno.test("f1 with the example schema: row counts match the files, __row dense, times", async () => {
  const schema = await loadSchema(new URL("./examples/f1.yaml", import.meta.url).pathname);
  const db = await Database.open(F1_DIR, schema);
  try {
    assert.deepEqual(db.warnings, []);
    for (const t of db.schema.tables) {
      const text = await Deno.readTextFile(`${F1_DIR}/${t.file}`);
      const lines = text.split("\n").filter((l) => l.length > 0).length - 1;
      assert.equal(db.rowCount(t.name), lines, t.name);
      const [r] = await db.query(
        `select count(*) as n, min(__row) as lo, max(__row) as hi, count(distinct __row) as d ` +
          `from "${t.name}"`,
      );
      assert.deepEqual(r, { n: lines, lo: 0, hi: lines - 1, d: lines }, t.name);
    }
    const races = db.table("races");
    assert.equal(races.timeColumn, "date");
    assert.equal(races.columns.find((c) => c.name === "date")!.stype, "timestamp");
    assert.equal(races.columns.length, 18);
    assert.deepEqual(db.timeRange(), { min: T(1950, 5, 13), max: T(2025, 12, 7) });
    const [first] = await db.query('select "raceId", name from races where __row = 0');
    assert.deepEqual(first, { raceId: 1, name: "Australian Grand Prix" });
    const [{ n }] = await db.query("select count(*) as n from results where position is null");
    assert.equal(n, 10953); // `\N` in results.position (SOURCE.md)
    // Event tables take their race's date through time_from: raceId.
    for (const name of ["results", "qualifying", "pit_stops", "driver_standings"]) {
      const t = db.table(name);
      assert.equal(t.timeFrom, "raceId", name);
      assert.equal(t.timeColumn, "__time", name);
      const [r] = await db.query(
        `select count(*) as n, count(*) filter (where e.__time = r.date) as same ` +
          `from "${name}" e join races r using ("raceId")`,
      );
      assert.deepEqual(r, { n: db.rowCount(name), same: db.rowCount(name) }, name);
    }
  } finally {
    db.close();
  }
});

Deno.test("property: random small tables written as CSV load with the same values", async () => {
  const str = fc.stringMatching(/^[a-z][a-z ,"'\n]{0,8}$/);
  const row = fc.tuple(
    fc.option(fc.integer({ min: -1e9, max: 1e9 }), { nil: null }),
    fc.option(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e12, max: 1e12 }), {
      nil: null,
    }),
    fc.option(str, { nil: null }),
  );
  const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;
  await fc.assert(
    fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 30 }), async (rows) => {
      const csv = "i,f,s\n" +
        rows.map(([i, f, s]) =>
          [i ?? "", f === null ? "\\N" : String(f), s === null ? "" : quote(s)].join(",")
        ).join("\n") + "\n";
      await withDir({ "t.csv": csv }, async (dir) => {
        const db = await openYaml(dir, "tables:\n  t:\n    file: t.csv\n");
        try {
          const got = await db.query("select i, f, s, __row from t order by __row");
          assert.deepEqual(
            got,
            rows.map(([i, f, s], k) => ({ i, f: f === null ? null : f + 0, s, __row: k })),
          );
        } finally {
          db.close();
        }
      });
    }),
    { numRuns: 25 },
  );
});

Deno.test("DataError carries the problems one by one", async () => {
  const { message } = await openError(
    { "a.csv": "id\n1\n1\n" },
    "tables:\n  a:\n    file: a.csv\n    primary_key: id\n",
  );
  const e = new DataError(message.split("\n"));
  assert.equal(e.problems.length, 1);
});
