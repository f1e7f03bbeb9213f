/**
 * `deno task bench store`: the graph store on a synthetic database of 1M
 * users, 200k items and 10M transactions (bench/synthetic_db.ts, Parquet,
 * cached under out/bench/): ingestion rows/s (`Database.open`), graph build
 * seconds (SQL extraction and CSR build), RAM bytes per stored edge
 * direction, save seconds, and load seconds of the saved graph beside a
 * plain `Deno.readFile` of the same files in the same run; also the cost of
 * appending rows to the loaded graph. `--quick` uses a 10× smaller database.
 *
 * @module
 */

import { Database } from "../store/database.ts";
import { loadSchema } from "../store/schema.ts";
import { buildGraph, graphInputFromDatabase } from "../store/graph_build.ts";
import { graphFiles, loadGraph, saveGraph } from "../store/graph_io.ts";
import { appendRows } from "../store/graph_append.ts";
import { emit, median } from "./report.ts";
import { syntheticDb } from "./synthetic_db.ts";

/** Options of `benchStore`. */
export interface StoreBenchOptions {
  /** 100k users, 20k items, 1M transactions instead of the full sizes. */
  quick?: boolean;
  /** Timed repeats of the load comparison (default 3). */
  repeats?: number;
}

const secondsSince = (t0: number) => (performance.now() - t0) / 1000;
const r4 = (x: number) => Number(x.toPrecision(4));

/** Runs the store benchmarks, printing JSON lines. */
export async function benchStore(opts: StoreBenchOptions = {}): Promise<void> {
  const scale = opts.quick ? 10 : 1;
  const syn = await syntheticDb({
    users: 1_000_000 / scale,
    items: 200_000 / scale,
    transactions: 10_000_000 / scale,
  });
  const params = { users: syn.users, items: syn.items, transactions: syn.transactions };
  const common = { bench: "store", ...params };
  if (syn.generated) {
    emit({ ...common, metric: "synthetic_generate", value: syn.seconds, unit: "s" });
  }

  let t0 = performance.now();
  const db = await Database.open(syn.dir, await loadSchema(syn.schemaPath));
  const ingest = secondsSince(t0);
  const rows = db.schema.tables.reduce((s, t) => s + db.rowCount(t.name), 0);
  emit({
    ...common,
    metric: "ingest",
    value: rows / ingest,
    unit: "rows/s",
    rows,
    seconds: ingest,
  });

  t0 = performance.now();
  const input = await graphInputFromDatabase(db);
  const extract = secondsSince(t0);
  db.close();
  t0 = performance.now();
  const graph = buildGraph(input);
  const build = secondsSince(t0);
  emit({
    ...common,
    metric: "graph_build",
    value: extract + build,
    unit: "s",
    sql_extract_s: r4(extract),
    csr_build_s: r4(build),
  });

  const b = graph.bytes();
  emit({
    ...common,
    metric: "ram_per_edge",
    value: b.perEdge,
    unit: "B/edge",
    budget: 12,
    pyg_lib: 14.5,
    edge_directions: b.edgeDirections,
    edge_bytes: b.edges,
    node_time_bytes: b.nodeTime,
    key_bytes: b.keys,
  });

  const dir = `${syn.dir}/graph`;
  t0 = performance.now();
  await saveGraph(graph, dir);
  const save = secondsSince(t0);
  const files = await graphFiles(dir);
  let bytes = 0;
  for (const f of files) bytes += (await Deno.stat(f)).size;
  emit({ ...common, metric: "graph_save", value: save, unit: "s", bytes });

  // Load beside a plain read of the same files, interleaved, medians of `repeats`.
  const times: Record<string, number[]> = {
    plain_readFile: [],
    loadGraph: [],
    loadGraph_noverify: [],
  };
  for (let r = 0; r < (opts.repeats ?? 3); r++) {
    t0 = performance.now();
    let n = 0;
    for (const f of files) n += (await Deno.readFile(f)).byteLength;
    times.plain_readFile.push(secondsSince(t0));
    if (n !== bytes) throw new Error("plain read size mismatch");
    t0 = performance.now();
    await loadGraph(dir);
    times.loadGraph.push(secondsSince(t0));
    t0 = performance.now();
    await loadGraph(dir, { verify: false });
    times.loadGraph_noverify.push(secondsSince(t0));
  }
  const plain = median(times.plain_readFile);
  for (const [impl, ts] of Object.entries(times)) {
    const s = median(ts);
    emit({
      ...common,
      metric: "graph_load",
      value: s,
      unit: "s",
      impl,
      bytes,
      gb_per_s: r4(bytes / s / 1e9),
      vs_plain_read: r4(s / plain),
    });
  }

  // Online appends: batches of new transactions for existing users and items.
  const loaded = await loadGraph(dir);
  const batch = 100, batches = 50;
  const end = loaded.fromTick(
    loaded.node("transactions").time[loaded.node("transactions").count - 1],
  );
  t0 = performance.now();
  for (let k = 0; k < batches; k++) {
    const keys = [], times = [], users = [], items = [];
    for (let i = 0; i < batch; i++) {
      const j = k * batch + i;
      keys.push(syn.transactions + j);
      times.push(end + j);
      users.push((j * 7919) % syn.users);
      items.push((j * 104729) % syn.items);
    }
    appendRows(loaded, "transactions", { keys, times, fks: { user_id: users, item_id: items } });
  }
  const append = secondsSince(t0);
  emit({
    ...common,
    metric: "append",
    value: (batch * batches) / append,
    unit: "rows/s",
    batch,
    batches,
  });
  // One new user with one transaction at a time, as online scoring sees them.
  const lat: number[] = [];
  for (let k = 0; k < 200; k++) {
    const t = end + batch * batches + k;
    t0 = performance.now();
    appendRows(loaded, "users", { keys: [syn.users + k], times: [t] });
    appendRows(loaded, "transactions", {
      keys: [syn.transactions + batch * batches + k],
      times: [t],
      fks: { user_id: [syn.users + k], item_id: [k % syn.items] },
    });
    lat.push(secondsSince(t0) * 1e6);
  }
  emit({
    ...common,
    metric: "append_latency",
    value: median(lat),
    unit: "us",
    rows: 2,
    delta_rows: loaded.numNodes("transactions") - loaded.node("transactions").count,
  });
}
