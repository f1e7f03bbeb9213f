import assert from "node:assert/strict";
import fc from "fast-check";
import { loadSchema, parseSchema, SchemaError, schemaToYaml, validateSchema } from "./schema.ts";
import { type Schema, SEMANTIC_TYPES, type SemanticType } from "./types.ts";

const EXAMPLE = `tables:
  races:
    file: races.csv
    primary_key: raceId
    time_column: date
    foreign_keys: { circuitId: circuits }
    columns: { name: text, round: numerical }   # optional overrides; others inferred
  circuits:
    file: circuits.csv
    primary_key: circuitId
`;

/** The message of the SchemaError that `parseSchema(text)` throws. */
function errorOf(text: string, path = "s.yaml"): string {
  try {
    parseSchema(text, path);
  } catch (e) {
    assert.ok(e instanceof SchemaError, `expected a SchemaError, got ${e}`);
    return e.message;
  }
  throw new Error("parseSchema accepted the schema");
}

Deno.test("parseSchema reads the documented format", () => {
  const s = parseSchema(EXAMPLE, "f1.yaml");
  assert.deepEqual(s, {
    tables: [
      {
        name: "races",
        file: "races.csv",
        primaryKey: "raceId",
        timeColumn: "date",
        foreignKeys: [{ column: "circuitId", table: "circuits" }],
        columns: [{ name: "name", stype: "text" }, { name: "round", stype: "numerical" }],
      },
      {
        name: "circuits",
        file: "circuits.csv",
        primaryKey: "circuitId",
        foreignKeys: [],
        columns: [],
      },
    ],
  });
});

Deno.test("parseSchema accepts multi-categorical as a spelling of multicategorical", () => {
  const s = parseSchema(
    "tables:\n  a:\n    file: a.csv\n    columns: { tags: multi-categorical }\n",
    "s",
  );
  assert.equal(s.tables[0].columns[0].stype, "multicategorical");
});

Deno.test("schemaToYaml round-trips, with header and notes as comments", () => {
  const s = parseSchema(EXAMPLE, "f1.yaml");
  const text = schemaToYaml(s, { header: "edit me", notes: { races: ["a note"] } });
  assert.match(text, /^# edit me\n/);
  assert.ok(text.includes("  # a note\n  races:"), text);
  assert.deepEqual(parseSchema(text, "again.yaml"), s);
});

Deno.test("schemaToYaml round-trips random schemas (property)", () => {
  const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_ .:-]{0,11}$/);
  const table = fc.record({
    name,
    file: fc.stringMatching(/^[a-z0-9_]{1,8}\.(csv|parquet)$/),
    pk: fc.option(name, { nil: undefined }),
    time: fc.option(name, { nil: undefined }),
    columns: fc.uniqueArray(
      fc.tuple(name, fc.constantFrom(...SEMANTIC_TYPES.filter((t) => t !== "timestamp"))),
      { selector: (c) => c[0], maxLength: 5 },
    ),
  });
  fc.assert(
    fc.property(
      fc.uniqueArray(table, { selector: (t) => t.name, minLength: 1, maxLength: 4 }),
      fc.array(fc.tuple(name, fc.nat()), { maxLength: 4 }),
      (ts, fks) => {
        const schema: Schema = {
          tables: ts.map((t) => ({
            name: t.name,
            file: t.file,
            ...(t.pk === undefined ? {} : { primaryKey: t.pk }),
            ...(t.time === undefined || t.columns.some((c) => c[0] === t.time)
              ? {}
              : { timeColumn: t.time }),
            foreignKeys: [],
            columns: t.columns.map(([n, st]) => ({ name: n, stype: st as SemanticType })),
          })),
        };
        const parents = schema.tables.filter((t) => t.primaryKey);
        for (const [col, k] of fks) {
          if (parents.length === 0) break;
          const child = schema.tables[k % schema.tables.length];
          if (child.foreignKeys.some((f) => f.column === col)) continue;
          child.foreignKeys.push({ column: col, table: parents[k % parents.length].name });
        }
        assert.deepEqual(parseSchema(schemaToYaml(schema), "p.yaml"), schema);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("unknown semantic type: file, line, column, table and the valid types", () => {
  const msg = errorOf("tables:\n  races:\n    file: races.csv\n    columns: { name: txt }\n");
  assert.equal(
    msg,
    's.yaml:4:22: table "races": column "name" has unknown semantic type "txt"; valid: ' +
      'numerical, categorical, multicategorical, text, timestamp, id (did you mean "text"?)',
  );
});

Deno.test("foreign key to an unknown table lists the tables", () => {
  const msg = errorOf(
    "tables:\n  races:\n    file: races.csv\n    foreign_keys:\n      circuitId: circuit\n" +
      "  circuits:\n    file: circuits.csv\n    primary_key: circuitId\n",
  );
  assert.equal(
    msg,
    's.yaml:5:18: table "races": foreign key "circuitId" references unknown table "circuit"; ' +
      'tables: races, circuits (did you mean "circuits"?)',
  );
});

Deno.test("foreign key to a table without a primary key", () => {
  const msg = errorOf(
    "tables:\n  a:\n    file: a.csv\n    foreign_keys: { bId: b }\n  b:\n    file: b.csv\n",
  );
  assert.equal(
    msg,
    's.yaml:4:26: table "a": foreign key "bId" references table "b", which has no ' +
      'primary_key; give "b" a primary_key or drop the foreign key',
  );
});

Deno.test("unknown table key lists the valid keys", () => {
  const msg = errorOf("tables:\n  races:\n    file: races.csv\n    primry_key: raceId\n");
  assert.equal(
    msg,
    's.yaml:4:5: table "races": unknown key "primry_key"; valid: file, primary_key, ' +
      'time_column, time_from, foreign_keys, columns (did you mean "primary_key"?)',
  );
});

Deno.test("a table without a file", () => {
  const msg = errorOf("tables:\n  races:\n    primary_key: raceId\n");
  assert.equal(msg, 's.yaml:2:3: table "races": missing "file" (the CSV or Parquet file)');
});

Deno.test("unknown top-level key, and no tables", () => {
  assert.equal(
    errorOf("tabels:\n  a:\n    file: a.csv\n"),
    's.yaml:1:1: unknown key "tabels"; valid: tables',
  );
  assert.equal(errorOf("# empty\n"), 's.yaml:1:1: expected a mapping with a "tables" key');
  assert.equal(errorOf("tables: {}\n"), "s.yaml:1:9: the schema has no tables");
});

Deno.test("YAML syntax errors and duplicate keys give the position", () => {
  assert.equal(
    errorOf("tables:\n  races:\n    file: races.csv\n    file: other.csv\n"),
    "s.yaml:4:5: invalid YAML: duplicate key (each table, key and column may appear once)",
  );
  assert.match(errorOf("tables:\n  races: [a\n"), /^s\.yaml:3:1: invalid YAML: /);
});

Deno.test("wrong shapes: a table or foreign_keys that is not a mapping", () => {
  assert.equal(
    errorOf("tables:\n  races: races.csv\n"),
    's.yaml:2:10: table "races" must be a mapping with keys file, primary_key, time_column, ' +
      "time_from, foreign_keys, columns",
  );
  assert.equal(
    errorOf("tables:\n  races:\n    file: r.csv\n    foreign_keys: [circuitId]\n"),
    's.yaml:4:19: table "races": "foreign_keys" must be a mapping of column: table',
  );
  assert.equal(
    errorOf("tables:\n  races:\n    file: r.csv\n    primary_key: [a, b]\n"),
    's.yaml:4:18: table "races": "primary_key" must be a column name',
  );
});

Deno.test("the time column must be typed timestamp; __row is reserved", () => {
  assert.equal(
    errorOf("tables:\n  r:\n    file: r.csv\n    time_column: d\n    columns: { d: numerical }\n"),
    's.yaml:5:19: table "r": column "d" is the time column, so its type must be "timestamp", ' +
      'not "numerical"',
  );
  assert.equal(
    errorOf("tables:\n  r:\n    file: r.csv\n    columns: { __row: id }\n"),
    's.yaml:4:23: table "r": column name "__row" is reserved',
  );
});

Deno.test("several problems are reported together", () => {
  const e = errorOf(
    "tables:\n  a:\n    file: a.csv\n    pk: x\n  b:\n    fiel: b.csv\n",
  );
  assert.equal(e.split("\n").length, 3);
});

Deno.test("validateSchema checks schemas built in code", () => {
  const schema: Schema = {
    tables: [
      {
        name: "a",
        file: "a.csv",
        foreignKeys: [{ column: "x", table: "nope" }],
        columns: [{ name: "y", stype: "numeric" as SemanticType }],
      },
    ],
  };
  assert.throws(() => validateSchema(schema), (e: Error) => {
    assert.ok(e instanceof SchemaError);
    assert.deepEqual(e.problems, [
      'schema: table "a": column "y" has unknown semantic type "numeric"; valid: numerical, ' +
      'categorical, multicategorical, text, timestamp, id (did you mean "numerical"?)',
      'schema: table "a": foreign key "x" references unknown table "nope"; tables: a',
    ]);
    return true;
  });
});

Deno.test("loadSchema reads the f1 example and reports a missing file", async () => {
  const s = await loadSchema(new URL("./examples/f1.yaml", import.meta.url).pathname);
  assert.equal(s.tables.length, 13);
  const races = s.tables.find((t) => t.name === "races")!;
  assert.equal(races.timeColumn, "date");
  assert.deepEqual(races.foreignKeys, [
    { column: "circuitId", table: "circuits" },
    { column: "year", table: "seasons" },
  ]);
  const inheriting = s.tables.filter((t) => t.timeFrom !== undefined).map((t) => t.name);
  assert.deepEqual(inheriting, [
    "results",
    "sprint_results",
    "qualifying",
    "driver_standings",
    "constructor_standings",
    "constructor_results",
    "pit_stops",
  ]);
  for (const t of s.tables) {
    if (t.timeFrom !== undefined) assert.equal(t.timeFrom, "raceId", t.name);
  }
  await assert.rejects(
    () => loadSchema("/nonexistent/schema.yaml"),
    { message: "/nonexistent/schema.yaml: no such schema file" },
  );
});

/** Races (timed), results (time_from raceId), and laps (time_from resultId): a chain. */
const CHAIN = `tables:
  races:
    file: races.csv
    primary_key: raceId
    time_column: date
  drivers:
    file: drivers.csv
    primary_key: driverId
  results:
    file: results.csv
    primary_key: resultId
    time_from: raceId
    foreign_keys: { raceId: races, driverId: drivers }
  laps:
    file: laps.csv
    time_from: resultId
    foreign_keys: { resultId: results }
`;

Deno.test("time_from: parsed, written back, and a chain is valid", () => {
  const s = parseSchema(CHAIN, "c.yaml");
  const results = s.tables.find((t) => t.name === "results")!;
  assert.equal(results.timeFrom, "raceId");
  assert.equal(results.timeColumn, undefined);
  assert.equal(s.tables.find((t) => t.name === "laps")!.timeFrom, "resultId");
  const text = schemaToYaml(s);
  assert.ok(text.includes("    time_from: raceId\n"), text);
  assert.deepEqual(parseSchema(text, "again.yaml"), s);
});

Deno.test("time_from: the resolved form of db.schema is valid and written as time_from", () => {
  const s = parseSchema(CHAIN, "c.yaml");
  const resolved: Schema = {
    tables: s.tables.map((t) =>
      t.timeFrom === undefined ? t : {
        ...t,
        timeColumn: "__time",
        columns: [...t.columns, { name: "__time", stype: "timestamp" as const }],
      }
    ),
  };
  validateSchema(resolved);
  assert.deepEqual(parseSchema(schemaToYaml(resolved), "r.yaml"), s);
});

Deno.test("time_from and time_column exclude each other", () => {
  const msg = errorOf(CHAIN.replace(
    "    time_from: raceId\n",
    "    time_from: raceId\n" +
      "    time_column: date\n",
  ));
  assert.equal(
    msg,
    's.yaml:12:16: table "results": time_column "date" and time_from "raceId" exclude each ' +
      "other (a table has a time of its own or takes its parent's); keep one",
  );
});

Deno.test("time_from must be a foreign key: lists those whose table has a time", () => {
  const msg = errorOf(CHAIN.replace("time_from: raceId", "time_from: raceid"));
  assert.equal(
    msg,
    's.yaml:12:16: table "results": time_from "raceid" is not one of its foreign keys; ' +
      'foreign keys whose table has a time: raceId (did you mean "raceId"?)',
  );
  assert.equal(
    errorOf("tables:\n  a:\n    file: a.csv\n    time_from: bId\n"),
    's.yaml:4:16: table "a": time_from "bId" is not one of its foreign keys; foreign keys ' +
      "whose table has a time: (none)",
  );
});

Deno.test("time_from to a table without a time", () => {
  const msg = errorOf(CHAIN.replace("time_from: raceId", "time_from: driverId"));
  assert.equal(
    msg,
    's.yaml:12:16: table "results": time_from "driverId" references table "drivers", which ' +
      "has no time (neither time_column nor time_from); foreign keys whose table has a time: " +
      'raceId (or leave time_from out to make "results" static)',
  );
});

Deno.test("time_from cycles are reported once, with the chain", () => {
  const msg = errorOf(
    "tables:\n  a:\n    file: a.csv\n    primary_key: id\n    time_from: bId\n" +
      "    foreign_keys: { bId: b }\n" +
      "  b:\n    file: b.csv\n    primary_key: id\n    time_from: aId\n" +
      "    foreign_keys: { aId: a }\n" +
      "  c:\n    file: c.csv\n    time_from: aId\n    foreign_keys: { aId: a }\n",
  );
  assert.equal(
    msg,
    's.yaml:5:16: table "a": time_from forms a cycle (a.bId -> b, b.aId -> a); a table on ' +
      "it needs a time_column of its own instead",
  );
  const self = errorOf(
    "tables:\n  e:\n    file: e.csv\n    primary_key: id\n    time_from: bossId\n" +
      "    foreign_keys: { bossId: e }\n",
  );
  assert.equal(
    self,
    's.yaml:5:16: table "e": time_from forms a cycle (e.bossId -> e); a table on it needs a ' +
      "time_column of its own instead",
  );
});

Deno.test("time_from: __time is a reserved column name in such a table", () => {
  const msg = errorOf(
    CHAIN.replace(
      "    time_from: resultId\n",
      "    time_from: resultId\n" +
        "    columns: { __time: text }\n",
    ),
  );
  assert.equal(
    msg,
    's.yaml:17:24: table "laps": column name "__time" is reserved in a table with time_from ' +
      "(it holds the inherited time)",
  );
});
