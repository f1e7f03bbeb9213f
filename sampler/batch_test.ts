import assert from "node:assert/strict";
import { cpuBackend } from "../core/cpu/mod.ts";
import type { Backend } from "../core/backend.ts";
import { gpuBackend, noGpu } from "../tests/gpu_env.ts";
import { FeatureReader } from "../store/features/reader.ts";
import { GatherPool } from "../store/features/gather_pool.ts";
import { testCode, testValue, writeTestStore } from "../store/features/reader_testing.ts";
import { STATIC_TIME } from "../store/ticks.ts";
import { BatchPipeline, type GpuBatch, parseEdgeEnds, toGpuBatch } from "./batch.ts";
import type { SamplerOutput } from "./types.ts";

const dir = await Deno.makeTempDir({ prefix: "fanout-batch-" });
await writeTestStore(dir, [
  { name: "users", rows: 20, numWidth: 3, catWidth: 2 },
  { name: "items", rows: 10, numWidth: 2, catWidth: 1, numDtype: "f16" },
]);
const HOUR_TICKS = 3600; // one-second ticks

/** Seeds users 4 and 9; users → items (static) → tags (no features). */
function sample(shift = 0): SamplerOutput {
  const i32 = (...x: number[]) => Int32Array.from(x);
  return {
    seedType: "users",
    batchSize: 2,
    seedTicks: i32(100 * HOUR_TICKS, 50 * HOUR_TICKS),
    seedLocal: i32(0, 1),
    nodes: {
      users: {
        ids: i32(4 + shift, 9, 2),
        seed: i32(0, 1, 0),
        hop: Uint8Array.of(0, 0, 2),
        time: i32(100 * HOUR_TICKS, 50 * HOUR_TICKS, 40 * HOUR_TICKS),
        hopOffsets: i32(0, 2, 2, 3),
      },
      items: {
        ids: i32(1, 7),
        seed: i32(0, 1),
        hop: Uint8Array.of(1, 1),
        time: i32(STATIC_TIME, STATIC_TIME),
        hopOffsets: i32(0, 0, 2, 2),
      },
      tags: {
        ids: i32(5),
        seed: i32(0),
        hop: Uint8Array.of(2),
        time: i32(STATIC_TIME),
        hopOffsets: i32(0, 0, 0, 1),
      },
    },
    edges: {
      "users.id->items.uid": {
        src: i32(0, 1, 1),
        dst: i32(0, 0, 1),
        dstOffsets: i32(0, 2, 3, 3),
        hop: Uint8Array.of(1, 1, 1),
      },
      "items.tag->tags.tag": {
        src: i32(0),
        dst: i32(0),
        dstOffsets: i32(0, 1, 1),
        hop: Uint8Array.of(2),
      },
    },
  };
}

async function rowsOf(blocks: { data(): Promise<ArrayLike<number>> }[]): Promise<number[]> {
  const out: number[] = [];
  for (const b of blocks) out.push(...Array.from(await b.data()));
  return out;
}

async function checkBatch(b: GpuBatch, out: SamplerOutput): Promise<void> {
  const widths: Record<string, [number, number]> = { users: [3, 2], items: [2, 1] };
  for (const [type, [nw, cw]] of Object.entries(widths)) {
    const nb = b.nodes[type], ids = out.nodes[type].ids;
    assert.equal(nb.count, ids.length);
    const num = await rowsOf(nb.num);
    assert.deepEqual(
      num,
      [...ids].flatMap((id) => [...Array(nw).keys()].map((k) => testValue(type, id, k))),
    );
    for (let s = 0; s < cw; s++) {
      const codes = nb.cat.flatMap((slots) => [...slots[s].values]);
      assert.deepEqual(codes, [...ids].map((id) => testCode(type, id, s)));
      assert.equal(nb.cat[0][s].range, 50);
    }
    for (const t of nb.num) assert.equal(t.dtype, "f32");
  }
  const days = (h: number) => Math.fround(h / 24);
  assert.deepEqual(await rowsOf(b.nodes.users.relTime!), [0, 0, days(60)]);
  assert.deepEqual(await rowsOf(b.nodes.items.relTime!), [0, 0]);
  assert.deepEqual(b.nodes.tags.num, []);
  assert.deepEqual(b.nodes.tags.cat, []);
  assert.deepEqual([...b.seeds.values], [0, 1]);
  assert.equal(b.seeds.range, 3);
  const ui = b.edges["users.id->items.uid"];
  assert.equal(ui.srcType, "items");
  assert.equal(ui.dstType, "users");
  assert.deepEqual([...ui.src.values], [0, 1, 1]);
  assert.equal(ui.src.range, 2);
  assert.deepEqual([...ui.dst.offsets], [0, 2, 3, 3]);
  assert.equal(b.edges["items.tag->tags.tag"].src.range, 1);
  assert.ok(b.bytesUploaded > 0);
}

const backends: [string, Backend | null][] = [["cpu", cpuBackend()], ["webgpu", gpuBackend]];
for (const [name, backend] of backends) {
  Deno.test({
    name: `toGpuBatch holds the sampled features, codes, times and edges (${name})`,
    ignore: backend === null,
    fn: async () => {
      const reader = await FeatureReader.open(dir, { cacheBytes: 1 << 20 });
      try {
        const out = sample();
        const b = await toGpuBatch(out, reader, backend!, { secondsPerTick: 1 });
        await checkBatch(b, out);
        b.dispose();
        assert.ok(b.nodes.users.num[0].disposed);
        assert.equal(b.seeds.storageCount(), 0);
        // Row blocks: a 12-byte binding holds one row of users' 3 f32 features.
        const split = await toGpuBatch(out, reader, backend!, {
          secondsPerTick: 1,
          maxBindingBytes: 12,
        });
        assert.equal(split.nodes.users.blockRows, 1);
        assert.equal(split.nodes.users.num.length, 3);
        assert.deepEqual(split.nodes.users.num.map((t) => t.shape), [[1, 3], [1, 3], [1, 3]]);
        await checkBatch(split, out);
        split.dispose();
      } finally {
        reader.close();
      }
    },
  });
}

Deno.test({
  name: "toGpuBatch on WebGPU splits by the device's binding limit",
  ignore: noGpu,
  fn: async () => {
    const reader = await FeatureReader.open(dir, { cacheBytes: 1 << 20 });
    try {
      const b = await toGpuBatch(sample(), reader, gpuBackend!);
      assert.equal(b.nodes.users.blockRows, 3); // far below the limit: one block
      assert.equal(b.nodes.users.num.length, 1);
      b.dispose();
    } finally {
      reader.close();
    }
  },
});

Deno.test("toGpuBatch refuses what cannot be laid out, with clear errors", async () => {
  const reader = await FeatureReader.open(dir, { cacheBytes: 1 << 20 });
  try {
    const cpu = cpuBackend();
    await assert.rejects(
      toGpuBatch(sample(), reader, cpu, { maxBindingBytes: 8 }),
      /one row of "users"/,
    );
    await assert.rejects(
      toGpuBatch(sample(), reader, cpu, { edgeEnds: () => ({ from: "items", to: "users" }) }),
      /destination segments/,
    );
    await assert.rejects(toGpuBatch(sample(30), reader, cpu), /\[0, 20\)/);
    assert.deepEqual(parseEdgeEnds("A.B.x->C.y"), { from: "A.B", to: "C" });
    assert.throws(() => parseEdgeEnds("nonsense"), /SRC.COLUMN->DST.COLUMN/);
  } finally {
    reader.close();
  }
});

async function* samples(n: number, delayMs = 0): AsyncGenerator<SamplerOutput> {
  for (let i = 0; i < n; i++) {
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    yield sample(i);
  }
}

Deno.test("BatchPipeline delivers batches in order, prefetching, and frees them", async () => {
  const pool = await GatherPool.create(dir, { workers: 2, cacheBytes: 1 << 20 });
  try {
    const pipe = new BatchPipeline(samples(4), pool, cpuBackend(), { secondsPerTick: 1 });
    const seen: GpuBatch[] = [];
    for await (const b of pipe) {
      if (seen.length) assert.ok(seen[seen.length - 1].nodes.users.num[0].disposed);
      assert.equal(b.nodes.users.ids[0], 4 + seen.length);
      await checkBatch(b, b.sample);
      seen.push(b);
      await new Promise((r) => setTimeout(r, 5)); // "compute"
    }
    assert.equal(seen.length, 4);
    assert.ok(seen[3].nodes.users.num[0].disposed);
    const s = pipe.stats();
    assert.equal(s.batches, 4);
    assert.ok(s.waitShare >= 0 && s.waitShare < 1, `${s.waitShare}`);
    assert.ok(s.bytesUploaded > 0);

    // Breaking out early frees the current and the prefetched batches.
    const early = new BatchPipeline(samples(5), pool, cpuBackend(), { prefetch: 2 });
    let first: GpuBatch | null = null;
    for await (const b of early) {
      first = b;
      break;
    }
    assert.ok(first!.nodes.users.num[0].disposed);

    // A failing batch rejects the iteration.
    const bad = new BatchPipeline(samples(3), pool, cpuBackend(), {
      edgeEnds: () => ({ from: "x", to: "y" }),
    });
    await assert.rejects(async () => {
      for await (const _ of bad) { /* nothing */ }
    }, /destination segments/);
  } finally {
    await pool.close();
  }
});

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* already gone */ }
});
