import assert from "node:assert/strict";
import fc from "fast-check";
import { seedTick, type TimeScale } from "../store/ticks.ts";
import { SamplerLoader } from "./loader.ts";
import { type BatchSampler, type SampleRequest, SamplerPool } from "./pool.ts";
import { assertSameOutput, rng, smallGraph, SPAN, T0, testConfig } from "./pool_testing.ts";
import type { SamplerOutput } from "./types.ts";

const graph = smallGraph();
const config = testConfig(graph);

function seedsOf(n: number, seed = 3) {
  const r = rng(seed);
  const seeds = Int32Array.from({ length: n }, () => r(graph.numNodes("users")));
  const seedTimes = Float64Array.from({ length: n }, () => T0 + r(SPAN) + 0.5);
  return { seedType: "users", seeds, seedTimes };
}

/**
 * A stand-in sampler: answers after `delay(batchIndex)` ms with an output
 * whose seeds are the request's, and counts the batches in flight.
 */
class FakeSampler implements BatchSampler {
  readonly ticks: TimeScale = graph.data;
  readonly workers = 2;
  inFlight = 0;
  maxInFlight = 0;
  started: number[] = [];
  constructor(
    readonly delay: (b: number) => number,
    readonly failAt = -1,
  ) {}
  async sample(req: SampleRequest): Promise<SamplerOutput> {
    this.started.push(req.batchIndex);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, this.delay(req.batchIndex)));
      if (req.batchIndex === this.failAt) throw new Error(`batch ${req.batchIndex} failed`);
      return fakeOutput(req);
    } finally {
      this.inFlight--;
    }
  }
}

function fakeOutput(req: SampleRequest): SamplerOutput {
  const n = req.seeds.length;
  return {
    seedType: req.seedType,
    batchSize: n,
    seedTicks: req.seedTicks,
    seedLocal: Int32Array.from({ length: n }, (_, i) => i),
    nodes: {
      [req.seedType]: {
        ids: req.seeds,
        seed: Int32Array.from({ length: n }, (_, i) => i),
        hop: new Uint8Array(n),
        time: req.seedTicks,
        hopOffsets: Int32Array.of(0, n),
      },
    },
    edges: {},
  };
}

Deno.test("loader: batches with 0, 1 and 2 workers are byte-identical and in order", async () => {
  const opts = { ...seedsOf(300), batchSize: 32, shuffle: true, shuffleSeed: 9, randomSeed: 4 };
  const runs: SamplerOutput[][] = [];
  for (const workers of [0, 1, 2]) {
    using pool = await SamplerPool.create({ graph, config, workers });
    const loader = new SamplerLoader(pool, { ...opts, prefetch: 3 });
    const got: SamplerOutput[] = [];
    for await (const b of loader) got.push(b);
    assert.equal(got.length, 10);
    assert.equal(loader.stats().batches, 10);
    assert.equal(loader.stats().seeds, 300);
    runs.push(got);
  }
  using pool = await SamplerPool.create({ graph, config, workers: 0 });
  const loader = new SamplerLoader(pool, opts);
  for (let i = 0; i < 10; i++) {
    const direct = await pool.sample(loader.request(i));
    for (const w of [0, 1, 2]) assertSameOutput(runs[w][i], direct, `batch ${i}, ${w} workers`);
  }
});

Deno.test("loader: requests cover the seeds once, convert times with seedTick, number batches by epoch", () => {
  const s = seedsOf(103);
  const sampler = new FakeSampler(() => 0);
  const plain = new SamplerLoader(sampler, { ...s, batchSize: 10 });
  assert.equal(plain.numBatches, 11);
  assert.equal(plain.request(10).seeds.length, 3);
  const r0 = plain.request(0);
  assert.deepEqual(r0.seeds, s.seeds.subarray(0, 10));
  assert.deepEqual(
    r0.seedTicks,
    Int32Array.from(s.seedTimes.subarray(0, 10), (t) => seedTick(graph.data, t)),
  );
  assert.throws(() => plain.request(11), RangeError);

  const shuffled = (epoch: number, shuffleSeed = 1) =>
    new SamplerLoader(sampler, { ...s, batchSize: 10, shuffle: true, shuffleSeed, epoch });
  const pairs = (l: SamplerLoader) =>
    Array.from({ length: l.numBatches }, (_, i) => l.request(i)).flatMap((r) =>
      Array.from(r.seeds, (id, k) => `${id}@${r.seedTicks[k]}`)
    );
  const all = pairs(plain).sort();
  assert.deepEqual(pairs(shuffled(0)).sort(), all, "a shuffle is a permutation of (seed, time)");
  assert.deepEqual(pairs(shuffled(0)), pairs(shuffled(0)), "deterministic");
  assert.notDeepEqual(pairs(shuffled(1)), pairs(shuffled(0)), "epochs differ");
  assert.notDeepEqual(pairs(shuffled(0, 2)), pairs(shuffled(0)), "shuffle seeds differ");
  assert.equal(shuffled(2).request(3).batchIndex, 2 * 11 + 3);

  const drop = new SamplerLoader(sampler, { ...s, batchSize: 10, dropLast: true });
  assert.equal(drop.numBatches, 10);
});

Deno.test("loader: invalid options are refused", () => {
  const s = seedsOf(10);
  const f = new FakeSampler(() => 0);
  assert.throws(
    () => new SamplerLoader(f, { ...s, seedTimes: new Float64Array(9), batchSize: 4 }),
    /10 seeds but 9 seed times/,
  );
  assert.throws(() => new SamplerLoader(f, { ...s, batchSize: 0 }), /batchSize/);
  assert.throws(() => new SamplerLoader(f, { ...s, batchSize: 4, prefetch: 0 }), /prefetch/);
  const times = s.seedTimes.slice();
  times[4] = NaN;
  assert.throws(() => new SamplerLoader(f, { ...s, seedTimes: times, batchSize: 4 }), /NaN/);
});

Deno.test("loader: delivers in order with `prefetch` batches in flight, whatever the batch times", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 60 }),
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 1, max: 5 }),
      fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 8 }),
      async (n, batchSize, prefetch, delays) => {
        const sampler = new FakeSampler((b) => delays[b % delays.length]);
        const s = seedsOf(n);
        const loader = new SamplerLoader(sampler, { ...s, batchSize, prefetch });
        const seen: number[] = [];
        for await (const b of loader) {
          assert.ok(sampler.inFlight <= prefetch);
          seen.push(...b.nodes.users.ids);
        }
        assert.deepEqual(seen, Array.from(s.seeds));
        assert.equal(sampler.maxInFlight, Math.min(prefetch, loader.numBatches));
        assert.deepEqual(sampler.started, Array.from({ length: loader.numBatches }, (_, i) => i));
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("loader: breaking out stops sending batches and settles those in flight", async () => {
  const sampler = new FakeSampler((b) => (b % 2 ? 1 : 5));
  const loader = new SamplerLoader(sampler, { ...seedsOf(200), batchSize: 10, prefetch: 4 });
  let k = 0;
  for await (const _ of loader) if (++k === 3) break;
  assert.equal(sampler.inFlight, 0, "nothing left running after break");
  assert.ok(sampler.started.length <= 3 + 4, `started ${sampler.started.length}`);
  assert.equal(loader.stats().batches, 3);
  // A new pass starts over.
  const again: number[] = [];
  for await (const b of loader) again.push(b.batchSize);
  assert.equal(again.length, 20);
});

Deno.test("loader: a failed batch rejects its delivery and ends the pass", async () => {
  const sampler = new FakeSampler((b) => (b === 3 ? 5 : 0), 3);
  const loader = new SamplerLoader(sampler, { ...seedsOf(100), batchSize: 10, prefetch: 3 });
  const got: number[] = [];
  await assert.rejects(async () => {
    for await (const b of loader) got.push(b.nodes.users.ids[0]);
  }, /batch 3 failed/);
  assert.equal(got.length, 3);
  assert.equal(sampler.inFlight, 0);
});

Deno.test("loader: a pool error reaches the loop with the worker's message", async () => {
  using pool = await SamplerPool.create({ graph, config, workers: 1 });
  const loader = new SamplerLoader(pool, {
    ...seedsOf(40),
    seedType: "no_such_table",
    batchSize: 8,
  });
  await assert.rejects(async () => {
    for await (const _ of loader) { /* nothing */ }
  }, /no_such_table/);
});

Deno.test("loader: reports the share of time the consumer waited", async () => {
  const slow = new SamplerLoader(new FakeSampler(() => 20), {
    ...seedsOf(40),
    batchSize: 10,
    prefetch: 1,
  });
  for await (const _ of slow) { /* a fast consumer waits */ }
  assert.ok(slow.stats().waitShare > 0.7, `waitShare ${slow.stats().waitShare}`);

  const fast = new SamplerLoader(new FakeSampler(() => 0), {
    ...seedsOf(40),
    batchSize: 10,
    prefetch: 2,
  });
  for await (const _ of fast) await new Promise((r) => setTimeout(r, 20)); // a slow consumer
  const st = fast.stats();
  assert.ok(st.waitShare < 0.5, `waitShare ${st.waitShare}`);
  assert.ok(st.elapsedSeconds >= 0.06 && st.waitSeconds >= 0);
});
