/**
 * The graph store on the real Formula 1 database (../shared/data/f1) with the
 * example schema: node and edge counts match the CSV files, every CSR edge
 * is a (foreign key, primary key) pair of the files, adjacency lists are in
 * time order, and a save → load round trip is exact.
 */
import assert from "node:assert/strict";
import { Database } from "../store/database.ts";
import { loadSchema } from "../store/schema.ts";
import { graphFromDatabase } from "../store/graph_build.ts";
import { loadGraph, saveGraph } from "../store/graph_io.ts";
import { assertSameGraph } from "../store/graph_testing.ts";
import { STATIC_TIME } from "../store/ticks.ts";
import type { GraphStore } from "../store/graph.ts";

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
      const dates = column(csv, t.timeColumn);
      dates.forEach((d, row) => assert.equal(g.fromTick(node.time[row]), Date.parse(d) / 1000));
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
