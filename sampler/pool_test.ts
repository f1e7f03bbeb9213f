import assert from "node:assert/strict";
import { appendRows } from "../store/graph_append.ts";
import { seedTick } from "../store/ticks.ts";
import { type SampleRequest, SamplerPool } from "./pool.ts";
import { assertSameOutput, rng, smallGraph, SPAN, T0, testConfig } from "./pool_testing.ts";
import type { SamplerOutput } from "./types.ts";

const graph = smallGraph();
const config = testConfig(graph);

/** Batch `b` of `size` random users with random seed times. */
function batch(b: number, size = 32, randomSeed = 7): SampleRequest {
  const r = rng(1000 + b);
  const users = graph.numNodes("users");
  const seeds = Int32Array.from({ length: size }, () => r(users));
  const seedTicks = Int32Array.from({ length: size }, () => seedTick(graph.data, T0 + r(SPAN)));
  return { seedType: "users", seeds, seedTicks, batchIndex: b, randomSeed };
}

async function sampleAll(workers: number, reqs: SampleRequest[]): Promise<SamplerOutput[]> {
  using pool = await SamplerPool.create({ graph, config, workers });
  assert.equal(pool.workers, workers);
  return await Promise.all(reqs.map((r) => pool.sample(r)));
}

Deno.test("pool: the same batch gives the same output twice, and with 0, 1 or 2 workers", async () => {
  const reqs = Array.from({ length: 12 }, (_, b) => batch(b, 16 + 8 * b));
  const [w0, w1, w2] = [
    await sampleAll(0, reqs),
    await sampleAll(1, reqs),
    await sampleAll(2, reqs),
  ];
  const again = await sampleAll(2, [...reqs].reverse());
  for (let b = 0; b < reqs.length; b++) {
    assertSameOutput(w0[b], w1[b], `batch ${b}, 0 vs 1 worker`);
    assertSameOutput(w0[b], w2[b], `batch ${b}, 0 vs 2 workers`);
    assertSameOutput(w0[b], again[reqs.length - 1 - b], `batch ${b}, twice`);
    assert.equal(w2[b].batchSize, reqs[b].seeds.length);
  }
  // Different batch indices draw differently (sanity: the index matters).
  const other = await sampleAll(0, [{ ...reqs[3], batchIndex: 99 }]);
  assert.notDeepEqual(other[0], w0[3]);
});

Deno.test("pool: outputs come back as plain transferred buffers; inputs stay with the caller", async () => {
  using pool = await SamplerPool.create({ graph, config, workers: 1 });
  const req = batch(1);
  const out = await pool.sample(req);
  for (const n of Object.values(out.nodes)) {
    assert.ok(!(n.ids.buffer instanceof SharedArrayBuffer));
  }
  assert.equal(req.seeds.length, 32, "the caller's seeds are not detached");
  assert.equal(req.seedTicks.length, 32);
});

Deno.test("pool: workers share the graph's SharedArrayBuffers (a main-thread write is seen)", async () => {
  using pool = await SamplerPool.create({ graph, config, workers: 2 });
  const time = graph.node("users").time;
  const before = time[3];
  try {
    assert.deepEqual(await Promise.all([pool.probe(0, "users", 3), pool.probe(1, "users", 3)]), [
      before,
      before,
    ]);
    time[3] = 123456;
    assert.deepEqual(await Promise.all([pool.probe(0, "users", 3), pool.probe(1, "users", 3)]), [
      123456,
      123456,
    ]);
  } finally {
    time[3] = before;
  }
});

Deno.test("pool: an error inside a worker rejects with the worker's message", async () => {
  const bad: SampleRequest = { ...batch(0), seedType: "no_such_table" };
  const range: SampleRequest = { ...batch(1), seeds: Int32Array.of(0, 1, 1 << 30, 2) };
  const messages = async (workers: number) => {
    using pool = await SamplerPool.create({ graph, config, workers });
    const m1 = await pool.sample(bad).then(() => "", (e: Error) => e.message);
    const m2 = await pool.sample(range).then(() => "", (e: Error) => e.message);
    const m3 = await pool.sample({ ...batch(2), seedTicks: new Int32Array(3) }).then(
      () => "",
      (e: Error) => e.message,
    );
    // The pool keeps working after a failed batch.
    assert.equal((await pool.sample(batch(2))).batchSize, 32);
    return [m1, m2, m3];
  };
  const inProcess = await messages(0), inWorker = await messages(2);
  for (const m of inProcess) assert.ok(m.length > 0, "in-process sampling throws");
  assert.match(inProcess[0], /no_such_table/);
  assert.match(inProcess[2], /32 seeds but 3 seed ticks/);
  assert.deepEqual(inWorker, inProcess);
});

Deno.test("pool: a worker that fails to load rejects create() with its message", async () => {
  const url = "data:text/javascript,throw new Error('boom while loading')";
  await assert.rejects(
    SamplerPool.create({ graph, config, workers: 2, workerUrl: url }),
    /sampler worker \d failed: .*boom while loading/,
  );
});

Deno.test("pool: a worker that dies fails its pending batches and later calls", async () => {
  // Answers init, then crashes on the next message.
  const src = `let n = 0; self.onmessage = (e) => {
    const { id } = e.data;
    if (n++ === 0) self.postMessage({ id, type: "RAW", value: 0 });
    else setTimeout(() => { throw new Error("crashed mid-batch"); });
  };`;
  const url = `data:text/javascript,${encodeURIComponent(src)}`;
  using pool = await SamplerPool.create({ graph, config, workers: 1, workerUrl: url });
  await assert.rejects(pool.sample(batch(0)), /sampler worker 0 failed: .*crashed mid-batch/);
  await assert.rejects(pool.sample(batch(1)), /crashed mid-batch/);
});

Deno.test("pool: close() rejects pending batches, terminates workers, and is idempotent", async () => {
  const pool = await SamplerPool.create({ graph, config, workers: 2 });
  const pending = [pool.sample(batch(0, 200)), pool.sample(batch(1, 200)), pool.sample(batch(2))];
  assert.equal(pool.inFlight, 3);
  pool.close();
  for (const p of pending) await assert.rejects(p, /sampler pool is closed/);
  await assert.rejects(pool.sample(batch(3)), /sampler pool is closed/);
  pool.close();
  assert.equal(pool.workers, 0);
});

Deno.test("pool: a big and a small batch in flight together each get their own output", async () => {
  using pool = await SamplerPool.create({ graph, config, workers: 2 });
  const big = batch(0, 2000), small = batch(1, 3);
  const [a, b] = await Promise.all([pool.sample(big), pool.sample(small)]);
  assert.equal(a.batchSize, 2000);
  assert.equal(b.batchSize, 3);
  assert.deepEqual(b.nodes.users.ids.subarray(0, 3), small.seeds);
});

Deno.test("pool: rows appended to the graph reach the workers before the next batch", async () => {
  const g = smallGraph(50, 10, 300, 5);
  const cfg = testConfig(g);
  using p0 = await SamplerPool.create({ graph: g, config: cfg, workers: 0 });
  using p2 = await SamplerPool.create({ graph: g, config: cfg, workers: 2 });
  const t = T0 + SPAN;
  appendRows(g, "users", { keys: [1000], times: [t] });
  appendRows(g, "transactions", {
    keys: [5000, 5001],
    times: [t, t],
    fks: { user_id: [1000, 1000], item_id: [1, 2] },
  });
  const id = g.idOf("users", 1000);
  const req: SampleRequest = {
    seedType: "users",
    seeds: Int32Array.of(id, 0, id),
    seedTicks: Int32Array.of(g.toTick(t + 10), g.toTick(t + 10), g.toTick(t - 10)),
    batchIndex: 0,
    randomSeed: 1,
  };
  const a = await p0.sample(req).catch((e: Error) => e.message);
  const b = await p2.sample(req).catch((e: Error) => e.message);
  const c = await p2.sample(req).catch((e: Error) => e.message);
  assert.ok(typeof a !== "string", `in-process sampling failed: ${a}`);
  // The appended user's two appended transactions are visible to its first seed.
  const tx = g.node("transactions").count;
  assert.ok(a.nodes.transactions.ids.includes(tx) && a.nodes.transactions.ids.includes(tx + 1));
  assert.deepStrictEqual(b, a);
  assert.deepStrictEqual(c, a);
});
