/**
 * The graph store on the real Formula 1 database (../shared/data/f1) with the
 * example schema: node and edge counts match the CSV files, every CSR edge
 * is a (foreign key, primary key) pair of the files, node times are the
 * files' dates (the event tables' inherited through `time_from: raceId`),
 * adjacency lists are in time order, and a save → load round trip is exact.
 */
import assert from "node:assert/strict";
import { Database } from "../store/database.ts";
import { loadSchema } from "../store/schema.ts";
import { graphFromDatabase } from "../store/graph_build.ts";
import { loadGraph, saveGraph } from "../store/graph_io.ts";
import { assertSameGraph } from "../store/graph_testing.ts";
import { STATIC_TIME } from "../store/ticks.ts";
import type { GraphStore } from "../store/graph.ts";
import type { TableSchema } from "../store/types.ts";

const DATA = new URL("../../shared/data/f1/", import.meta.url).pathname;
const SCHEMA = new URL("../store/examples/f1.yaml", import.meta.url).pathname;

/** Minimal CSV reader (quoted fields, no embedded newlines): header and rows of strings. */
function readCsv(path: string): { header: string[]; rows: string[][] } {
  const lines = Deno.readTextFileSync(path).split("\n").filter((l) => l.length > 0);
  const parse = (line: string) => {
    const out: string[] = [];
    let cur = "", quoted = false;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i];
      if (quoted) {
        if (ch === '"' && line[i + 1] === '"') cur += line[++i];
        else if (ch === '"') quoted = false;
        else cur += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === ",") {
        out.push(cur);
        cur = "";
      } else cur += ch;
    }
    out.push(cur);
    return out;
  };
  return { header: parse(lines[0]), rows: lines.slice(1).map(parse) };
}

function column(csv: { header: string[]; rows: string[][] }, name: string): string[] {
  const i = csv.header.indexOf(name);
  assert.ok(i >= 0, `column ${name}`);
  return csv.rows.map((r) => r[i]);
}

/**
 * The date of each row of `t` as the CSV files give it: its time column, or,
 * with `time_from`, the date of the parent row its foreign key names.
 */
function expectedDates(t: TableSchema, tables: TableSchema[]): string[] {
  const csv = readCsv(`${DATA}${t.file}`);
  if (t.timeFrom === undefined) return column(csv, t.timeColumn!);
  const parent = tables.find((p) =>
    p.name === t.foreignKeys.find((f) => f.column === t.timeFrom)!.table
  )!;
  const parentCsv = readCsv(`${DATA}${parent.file}`);
  const parentDates = expectedDates(parent, tables);
  const byKey = new Map(column(parentCsv, parent.primaryKey!).map((k, i) => [k, parentDates[i]]));
  return column(csv, t.timeFrom).map((k) => byKey.get(k)!);
}

let cached: { graph: GraphStore; db: Database } | null = null;
async function f1() {
  if (!cached) {
    const db = await Database.open(DATA, await loadSchema(SCHEMA));
    cached = { db, graph: await graphFromDatabase(db) };
  }
  return cached;
}

Deno.test("f1 graph: node and edge counts match the CSV files; edges are key pairs", async () => {
  const { graph: g, db } = await f1();
  for (const t of db.schema.tables) {
    const csv = readCsv(`${DATA}${t.file}`);
    assert.equal(g.numNodes(t.name), csv.rows.length, `${t.name} rows`);
    const node = g.node(t.name);
    assert.equal(node.isStatic, !t.timeColumn);
    if (t.primaryKey) {
      const keys = column(csv, t.primaryKey);
      keys.forEach((k, row) => assert.equal(g.keyOf(t.name, row), Number(k)));
    }
    if (t.timeColumn) {
      const dates = expectedDates(t, db.schema.tables);
      dates.forEach((d, row) =>
        assert.equal(g.fromTick(node.time[row]), Date.parse(d) / 1000, `${t.name} ${row}`)
      );
    } else assert.ok(node.time.every((x) => x === STATIC_TIME));
    for (const fk of t.foreignKeys) {
      const parent = db.table(fk.table);
      const fwd = g.edgeType(`${t.name}.${fk.column}->${parent.name}.${parent.primaryKey}`);
      const rev = g.edgeType(`${parent.name}.${parent.primaryKey}->${t.name}.${fk.column}`);
      const values = column(csv, fk.column);
      const nonNull = values.filter((v) => v !== "\\N").length;
      assert.equal(fwd.nbr.length, nonNull, `${fwd.name} edges`);
      assert.equal(rev.nbr.length, nonNull, `${rev.name} edges`);
      // Child → parent: exactly the parent whose key is the child's FK value.
      for (let c = 0; c < values.length; c++) {
        const got = [...g.neighbors(fwd.name, c).ids].map((p) => g.keyOf(parent.name, p));
        assert.deepEqual(got, values[c] === "\\N" ? [] : [Number(values[c])], `${fwd.name} ${c}`);
      }
      // Parent → children: every child listed has the parent's key, and counts add up.
      const parentKey = (p: number) => String(g.keyOf(parent.name, p));
      let seen = 0;
      for (let p = 0; p < g.numNodes(parent.name); p++) {
        const { ids } = g.neighbors(rev.name, p);
        for (const c of ids) assert.equal(values[c], parentKey(p), `${rev.name} ${p}→${c}`);
        seen += ids.length;
      }
      assert.equal(seen, nonNull);
    }
  }
});

Deno.test("f1 graph: event tables are timed; a result's time is its race's date", async () => {
  const { graph: g, db } = await f1();
  const events = db.schema.tables.filter((t) => t.foreignKeys.some((f) => f.table === "races"));
  assert.deepEqual(events.map((t) => t.name).sort(), [
    "constructor_results",
    "constructor_standings",
    "driver_standings",
    "pit_stops",
    "qualifying",
    "results",
    "sprint_results",
  ]);
  for (const t of events) {
    assert.equal(t.timeFrom, "raceId", t.name);
    assert.ok(!g.node(t.name).isStatic, t.name);
  }
  const results = readCsv(`${DATA}results.csv`), races = readCsv(`${DATA}races.csv`);
  const raceDate = new Map(column(races, "raceId").map((id, i) => [id, column(races, "date")[i]]));
  const time = g.node("results").time;
  column(results, "raceId").forEach((raceId, row) => {
    const want = Date.parse(raceDate.get(raceId)!) / 1000;
    assert.equal(g.fromTick(time[row]), want, `results row ${row} (race ${raceId})`);
  });
  // Through the graph too: each result's race neighbour has the result's tick.
  const toRace = g.edgeType("results.raceId->races.raceId");
  const raceNode = g.node("races");
  for (let row = 0; row < time.length; row++) {
    const [race] = g.neighbors(toRace.name, row).ids;
    assert.equal(raceNode.time[race], time[row], `results row ${row}`);
  }
});

Deno.test("f1 graph: adjacency lists are sorted by neighbour time", async () => {
  const { graph: g } = await f1();
  let timed = 0;
  for (const name of g.edgeTypes()) {
    const e = g.edgeType(name), dst = g.node(e.dst);
    if (e.nbrTime) assert.ok(!dst.isStatic && e.direction === "reverse");
    for (let s = 0; s + 1 < e.offsets.length; s++) {
      for (let i = e.offsets[s] + 1; i < e.offsets[s + 1]; i++) {
        const t0 = e.nbrTime ? e.nbrTime[i - 1] : dst.time[e.nbr[i - 1]];
        const t1 = e.nbrTime ? e.nbrTime[i] : dst.time[e.nbr[i]];
        assert.ok(t0 < t1 || (t0 === t1 && e.nbr[i - 1] < e.nbr[i]), `${name} row ${s}`);
        if (!dst.isStatic) timed++;
      }
    }
  }
  assert.ok(timed > 1000, "races adjacency (circuits, seasons → races) is checked");
  const b = g.bytes();
  assert.ok(b.perEdge <= 12, `${b.perEdge} bytes per edge direction`);
});

Deno.test("f1 graph: save → load is exact", async () => {
  const { graph: g, db } = await f1();
  const dir = await Deno.makeTempDir();
  try {
    await saveGraph(g, `${dir}/f1`);
    assertSameGraph(await loadGraph(`${dir}/f1`), g);
  } finally {
    await Deno.remove(dir, { recursive: true });
    db.close();
  }
});
