/**
 * The graph transformer on hand-made batches, on the CPU float64 backend:
 * shapes, attention confined to each seed's subgraph, finite-difference
 * gradients of one block and of the whole model, overfitting a tiny graph;
 * and the WebGPU forward and gradients against the CPU ones when an adapter
 * exists.
 */

import assert from "node:assert/strict";
import type { Backend } from "../core/backend.ts";
import { cpuBackend } from "../core/cpu/mod.ts";
import { gradCheck, values } from "../core/cpu/testing.ts";
import { Index } from "../core/index.ts";
import { Adam } from "../core/optim.ts";
import { bceWithLogits } from "../core/ops.ts";
import { Rng } from "../core/random.ts";
import { scope, tensor } from "../core/tensor.ts";
import type { GpuBatch, NodeBatch } from "../sampler/batch.ts";
import type { SampledNodes } from "../sampler/types.ts";
import { gpuBackend, noGpu } from "../tests/gpu_env.ts";
import {
  concatRows,
  GraphTransformer,
  seedAttentionPairs,
  TransformerBlock,
} from "./transformer.ts";
import type { ModelSpec } from "./types.ts";

const cpu = cpuBackend();

/** Host description of one node type's rows. */
interface HostNodes {
  num: number[][];
  cat: number[][];
  seed: number[];
  hop: number[];
  days: number[];
}

function spec(over: Partial<ModelSpec> = {}): ModelSpec {
  return {
    architecture: "transformer",
    channels: 8,
    layers: 2,
    aggregation: "mean",
    dropout: 0,
    norm: "layer",
    heads: 2,
    seedType: "users",
    outWidth: 1,
    task: "binary",
    nodeTypes: [
      { name: "users", numWidth: 2, cardinality: [3], temporal: true },
      { name: "tx", numWidth: 1, cardinality: [], temporal: true },
      { name: "items", numWidth: 0, cardinality: [4], temporal: false },
    ],
    edgeTypes: [
      { name: "users.id->tx.user", srcType: "tx", dstType: "users" },
      { name: "tx.item->items.id", srcType: "items", dstType: "tx" },
    ],
    ...over,
  };
}

/** A `GpuBatch` on `backend` from host rows (no edges: the transformer does not read them). */
function makeBatch(
  backend: Backend,
  s: ModelSpec,
  nodes: Record<string, HostNodes>,
  seedLocal: number[],
): GpuBatch {
  const on = { backend };
  const batch: GpuBatch = {
    seedType: s.seedType,
    batchSize: seedLocal.length,
    seeds: new Index(seedLocal, nodes[s.seedType].seed.length),
    sample: {
      seedType: s.seedType,
      batchSize: seedLocal.length,
      seedTicks: new Int32Array(seedLocal.length),
      seedLocal: Int32Array.from(seedLocal),
      nodes: {},
      edges: {},
    },
    nodes: {},
    edges: {},
    bytesUploaded: 0,
    dispose() {},
  };
  for (const t of s.nodeTypes) {
    const h = nodes[t.name];
    if (!h) continue;
    const n = h.seed.length;
    const sampled: SampledNodes = {
      ids: Int32Array.from({ length: n }, (_, i) => i),
      seed: Int32Array.from(h.seed),
      hop: Uint8Array.from(h.hop),
      time: new Int32Array(n),
      hopOffsets: new Int32Array([0, n]),
    };
    batch.sample.nodes[t.name] = sampled;
    const nb: NodeBatch = {
      type: t.name,
      count: n,
      ids: sampled.ids,
      blockRows: n,
      num: t.numWidth > 0 ? [tensor(h.num.flat(), [n, t.numWidth], on)] : [],
      cat: t.cardinality.length
        ? [t.cardinality.map((card, k) => new Index(h.cat.map((r) => r[k]), card))]
        : [],
      cardinality: t.cardinality,
      relTime: [tensor(h.days, [n, 1], on)],
    };
    batch.nodes[t.name] = nb;
  }
  return batch;
}

/** Two seeds: seed 0 with 2 tx and 1 item, seed 1 with `extra` more tx. */
function twoSeeds(seed1Tx: number[], extra = 0): Record<string, HostNodes> {
  const tx1 = [...seed1Tx, ...Array.from({ length: extra }, (_, i) => 0.3 * i)];
  return {
    users: { num: [[0.5, -1], [1, 2]], cat: [[1], [2]], seed: [0, 1], hop: [0, 0], days: [0, 0] },
    tx: {
      num: [[0.2], [-0.7], ...tx1.map((v) => [v])],
      cat: [],
      seed: [0, 0, ...tx1.map(() => 1)],
      hop: [1, 1, ...tx1.map(() => 1)],
      days: [3, 40, ...tx1.map((_, i) => 2 + i)],
    },
    items: {
      num: [],
      cat: [[3], [1], [2]],
      seed: [0, 1, 1],
      hop: [2, 2, 2],
      days: [0, 0, 0],
    },
  };
}

Deno.test("concatRows stacks rows and routes gradients back", () => {
  scope(() => {
    const a = tensor([1, 2, 3, 4], [2, 2], { backend: cpu });
    const b = tensor([5, 6], [1, 2], { backend: cpu });
    const e = tensor([], [0, 2], { backend: cpu });
    assert.deepEqual(Array.from(values(concatRows([a, e, b]))), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(concatRows([a, e, b]).shape, [3, 2]);
    assert.throws(() => concatRows([a, tensor([1, 2, 3], [1, 3], { backend: cpu })]));
  });
  gradCheck((xs) => concatRows(xs), [
    { data: [1, 2, 3, 4], shape: [2, 2] },
    { data: [5, 6], shape: [1, 2] },
  ]);
});

Deno.test("seedAttentionPairs: every token reads the tokens of its own seed", () => {
  scope(() => {
    const seedOf = Int32Array.from([0, 1, 0, 1, 1, 0]);
    const all = seedAttentionPairs(seedOf, 2);
    assert.deepEqual(all.key.length, 3 * 3 + 3 * 3);
    assert.deepEqual(Array.from(all.segments.offsets), [0, 3, 6, 9, 12, 15, 18]);
    assert.deepEqual(Array.from(all.key.values.subarray(0, 6)), [0, 2, 5, 1, 3, 4]);
    assert.deepEqual(Array.from(all.query.values.subarray(0, 6)), [0, 0, 0, 1, 1, 1]);
    assert.deepEqual(all.rows, null);
    const seeds = seedAttentionPairs(seedOf, 2, Int32Array.from([0, 1]));
    assert.deepEqual(Array.from(seeds.key.values), [0, 2, 5, 1, 3, 4]);
    assert.deepEqual(Array.from(seeds.query.values), [0, 0, 0, 1, 1, 1]);
    assert.deepEqual(Array.from(seeds.segments.offsets), [0, 3, 6]);
    assert.deepEqual(Array.from(seeds.rows!.values), [0, 1]);
  });
});

Deno.test("GraphTransformer: output shape, token layout, parameter names", () => {
  scope(() => {
    const s = spec({ outWidth: 3, layers: 3 });
    const model = new GraphTransformer(s, { backend: cpu, rng: new Rng(1) });
    const batch = makeBatch(cpu, s, twoSeeds([0.1, 0.4]), [0, 1]);
    const { x, seedOf, seedRows } = model.tokens(batch);
    assert.deepEqual(x.shape, [2 + 4 + 3, 8]);
    assert.deepEqual(Array.from(seedOf), [0, 1, 0, 0, 1, 1, 0, 1, 1]);
    assert.deepEqual(Array.from(seedRows), [0, 1]);
    const y = model.forward(batch);
    assert.deepEqual(y.shape, [2, 3]);
    assert(Array.from(values(y)).every(Number.isFinite));
    const names = model.namedParameters().map(([n]) => n);
    for (
      const n of ["encoders.2.bias", "hopEmbedding.weight", "blocks.2.qkv.weight", "head.2.bias"]
    ) {
      assert(names.includes(n), `${n} in ${names}`);
    }
    assert.throws(() => new GraphTransformer(spec({ heads: 3 }), { backend: cpu }), /heads/);
    model.dispose();
  });
});

Deno.test("GraphTransformer: attention stays within a seed's subgraph", () => {
  scope(() => {
    const s = spec();
    const model = new GraphTransformer(s, { backend: cpu, rng: new Rng(2) });
    const out = (tx: number[], extra: number) =>
      values(model.forward(makeBatch(cpu, s, twoSeeds(tx, extra), [0, 1])));
    const base = out([0.1, 0.4], 0);
    // Seed 1's neighbours change (values and count): seed 0's output must not.
    for (const other of [out([5, -3], 0), out([0.1, 0.4], 3)]) {
      assert.deepEqual(other[0], base[0]);
      assert(Math.abs(other[1] - base[1]) > 1e-6, "seed 1's output depends on its nodes");
    }
    model.dispose();
  });
});

Deno.test("TransformerBlock: gradients match central differences", () => {
  const N = 5, C = 4;
  const block = new TransformerBlock(C, 2, { backend: cpu, rng: new Rng(3) });
  const rng = new Rng(4);
  const h = Array.from({ length: N * C }, () => rng.normal());
  const seedOf = Int32Array.from([0, 1, 0, 0, 1]);
  // All tokens as queries, then only the seed tokens (the last block's form).
  for (const queries of [null, Int32Array.from([0, 1])]) {
    gradCheck((xs) => block.forward(xs[0], seedAttentionPairs(seedOf, 2, queries)), [
      { data: h, shape: [N, C] },
    ]);
  }
  block.dispose();
});

Deno.test("GraphTransformer: gradients w.r.t. features match central differences", () => {
  const s = spec({ channels: 4, heads: 2, layers: 2 });
  const model = new GraphTransformer(s, { backend: cpu, rng: new Rng(6) });
  const host = twoSeeds([0.1, 0.4]);
  // Numerical features of users and tx, and the tx relative times, as inputs.
  gradCheck((xs) => {
    const batch = makeBatch(cpu, s, host, [0, 1]);
    batch.nodes.users.num = [xs[0]];
    batch.nodes.tx.num = [xs[1]];
    batch.nodes.tx.relTime = [xs[2]];
    return model.forward(batch);
  }, [
    { data: host.users.num.flat(), shape: [2, 2] },
    { data: host.tx.num.flat(), shape: [4, 1] },
    { data: host.tx.days, shape: [4, 1] },
  ]);
  model.dispose();
});

/**
 * Eight seeds whose own rows are identical; a seed's label is whether any of
 * its tx has a positive value, so only attention to the tx tokens can tell.
 */
function tinyGraph(): { nodes: Record<string, HostNodes>; labels: number[] } {
  const rng = new Rng(11);
  const users: HostNodes = { num: [], cat: [], seed: [], hop: [], days: [] };
  const tx: HostNodes = { num: [], cat: [], seed: [], hop: [], days: [] };
  const items: HostNodes = { num: [], cat: [], seed: [], hop: [], days: [] };
  const labels: number[] = [];
  for (let s = 0; s < 8; s++) {
    users.num.push([0.5, -0.5]);
    users.cat.push([1]);
    users.seed.push(s), users.hop.push(0), users.days.push(0);
    const k = 2 + (s % 3);
    let any = 0;
    for (let j = 0; j < k; j++) {
      const v = j === 0 && s % 2 === 0 ? 1 : -0.2 - rng.next();
      any = Math.max(any, v > 0 ? 1 : 0);
      tx.num.push([v]), tx.seed.push(s), tx.hop.push(1), tx.days.push(1 + 10 * rng.next());
      items.cat.push([rng.int(4)]), items.seed.push(s), items.hop.push(2), items.days.push(0);
    }
    labels.push(any);
  }
  return { nodes: { users, tx, items }, labels };
}

Deno.test("GraphTransformer: two layers overfit a tiny graph", () => {
  const s = spec({ channels: 16, heads: 2, layers: 2 });
  const { nodes, labels } = tinyGraph();
  const model = new GraphTransformer(s, { backend: cpu, rng: new Rng(7) });
  const opt = new Adam(model.parameters(), { lr: 1e-2 });
  let loss = Infinity, steps = 0;
  for (; steps < 300 && loss >= 0.05; steps++) {
    loss = scope(() => {
      const batch = makeBatch(cpu, s, nodes, labels.map((_, i) => i));
      opt.zeroGrad();
      const l = bceWithLogits(model.forward(batch), tensor(labels, [8, 1], { backend: cpu }));
      l.backward();
      opt.step();
      return values(l)[0];
    });
  }
  assert(loss < 0.05, `BCE ${loss} after ${steps} steps`);
  console.log(`BCE ${loss.toFixed(4)} after ${steps} steps`);
  opt.dispose();
  model.dispose();
});

/**
 * Tolerance on WebGPU: both models start from the same f32 values (same
 * Rng) and read the same f32 inputs, so the differences are f32 rounding
 * (unit roundoff 6e-8) through about 40 ops per output: two blocks, each
 * with a softmax over up to 5 keys, two LayerNorms (which divide by the
 * row's standard deviation and can amplify absolute errors by 1/std) and
 * sums of up to 32 terms. Outputs must satisfy `|gpu − cpu| ≤ 1e-5 +
 * 1e-4·|cpu|` (observed: below 2e-7); gradients, which chain twice as many
 * ops, `|gpu − cpu| ≤ 1e-5·(1 + max|cpu grad of that parameter|) +
 * 1e-4·|cpu|`. Both leave two orders of magnitude of margin over what is
 * observed while any indexing or wiring error moves values by O(0.1).
 */
Deno.test({
  name: "GraphTransformer: WebGPU forward and gradients match the CPU backend",
  ignore: noGpu,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const gpu = gpuBackend!;
    const s = spec({ channels: 16, heads: 4, layers: 2, outWidth: 2 });
    const { nodes, labels } = tinyGraph();
    const seeds = labels.map((_, i) => i);
    const target = labels.flatMap((l) => [l, 1 - l]);
    const run = async (backend: Backend) => {
      const model = new GraphTransformer(s, { backend, rng: new Rng(9) });
      const y = scope(() => {
        const out = model.forward(makeBatch(backend, s, nodes, seeds));
        bceWithLogits(out, tensor(target, [8, 2], { backend })).backward();
        return out.keep();
      });
      const out = await y.data();
      const grads = new Map<string, ArrayLike<number>>();
      for (const [name, p] of model.namedParameters()) grads.set(name, await p.grad!.data());
      y.dispose();
      model.dispose();
      return { out, grads };
    };
    const ref = await run(cpu), got = await run(gpu);
    assert.equal(got.out.length, ref.out.length);
    let worst = 0;
    for (let i = 0; i < ref.out.length; i++) {
      const err = Math.abs(got.out[i] - ref.out[i]);
      worst = Math.max(worst, err);
      assert(
        err <= 1e-5 + 1e-4 * Math.abs(ref.out[i]),
        `output ${i}: gpu ${got.out[i]}, cpu ${ref.out[i]}`,
      );
    }
    let worstGrad = 0;
    for (const [name, r] of ref.grads) {
      const g = got.grads.get(name)!;
      let big = 0;
      for (let i = 0; i < r.length; i++) big = Math.max(big, Math.abs(r[i]));
      for (let i = 0; i < r.length; i++) {
        const err = Math.abs(g[i] - r[i]);
        worstGrad = Math.max(worstGrad, err / (1 + big));
        assert(
          err <= 1e-5 * (1 + big) + 1e-4 * Math.abs(r[i]),
          `grad ${name}[${i}]: gpu ${g[i]}, cpu ${r[i]}`,
        );
      }
    }
    console.log(
      `max |gpu - cpu|: outputs ${worst.toExponential(2)}, ` +
        `gradients ${worstGrad.toExponential(2)} (relative to 1 + max|grad|)`,
    );
  },
});
