/**
 * Heterogeneous SAGE / GAT: shapes, trim by hop against the untrimmed
 * reference, finite-difference gradients of the encoder and of each layer on
 * the CPU float64 backend, overfitting a tiny graph, and WebGPU against the
 * CPU reference.
 */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { noGrad } from "../core/autograd.ts";
import type { Backend } from "../core/backend.ts";
import { cpuBackend } from "../core/cpu/mod.ts";
import { values } from "../core/cpu/testing.ts";
import { Adam } from "../core/optim.ts";
import { bceWithLogits, concatCols, mul, sum } from "../core/ops.ts";
import { Rng } from "../core/random.ts";
import { scope, type Tensor, tensor } from "../core/tensor.ts";
import type { GpuBatch } from "../sampler/batch.ts";
import { gpuBackend, noGpu } from "../tests/gpu_env.ts";
import { NodeEncoder } from "./encoder.ts";
import { GatLayer } from "./gat.ts";
import { buildGraphModel, HeteroGNN } from "./gnn.ts";
import { type HeteroLayer, planHops, rowsUpToHop } from "./message_passing.ts";
import { SageLayer } from "./sage.ts";
import {
  TINY_EDGE_TYPES,
  TINY_NODE_TYPES,
  tinyBatch,
  type TinySample,
  tinySample,
  tinySpec,
} from "./gnn_testing.ts";
import type { Architecture } from "./types.ts";

const cpu = cpuBackend();

/**
 * Central finite differences of `L = Σ w ⊙ build()` with respect to every
 * element of every leaf (inputs and parameters, f64 CPU storages), against
 * autograd: `|a − n| ≤ rtol·max(|a|, |n|) + atol·max(1, Σ|w ⊙ out|)`.
 */
function checkGrads(build: () => Tensor, leaves: Tensor[], what: string) {
  const eps = 1e-6, rtol = 1e-6, atol = 1e-8;
  const rng = new Rng(99);
  let w = new Float64Array(0), magnitude = 0;
  const analytic = scope(() => {
    for (const p of leaves) p.grad = null;
    const out = build();
    w = Float64Array.from({ length: out.size }, () => 2 * rng.next() - 1);
    const ov = values(out);
    ov.forEach((v, i) => magnitude += Math.abs(v * w[i]));
    sum(mul(out, tensor(w, out.shape, { backend: cpu }))).backward();
    // A leaf the output does not depend on gets no gradient: its differences must vanish.
    return leaves.map((p) => {
      const g = p.grad ? values(p.grad) : new Float64Array(p.size);
      p.grad = null;
      return g;
    });
  });
  const loss = () =>
    noGrad(() =>
      scope(() => {
        const out = build();
        return values(sum(mul(out, tensor(w, out.shape, { backend: cpu }))))[0];
      })
    );
  const allowance = atol * Math.max(1, magnitude);
  leaves.forEach((p, k) => {
    const data = Float64Array.from(values(p));
    for (let j = 0; j < data.length; j++) {
      const x0 = data[j];
      data[j] = x0 + eps;
      cpu.write(p.storage, data);
      const fp = loss();
      data[j] = x0 - eps;
      cpu.write(p.storage, data);
      const fm = loss();
      data[j] = x0;
      cpu.write(p.storage, data);
      const num = (fp - fm) / (2 * eps), a = analytic[k][j];
      const err = Math.abs(a - num);
      assert(
        err <= rtol * Math.max(Math.abs(a), Math.abs(num)) + allowance,
        `${what}: leaf ${k} [${p.shape}] element ${j}: autograd ${a}, numeric ${num}`,
      );
    }
  });
}

function randomInputs(rows: Map<string, number>, channels: number, seed: number) {
  const rng = new Rng(seed);
  const h = new Map<string, Tensor>();
  for (const [t, r] of rows) {
    const d = Float64Array.from({ length: r * channels }, () => rng.normal());
    h.set(t, tensor(d, [r, channels], { backend: cpu, requiresGrad: true }).keep());
  }
  return h;
}

function layerOf(kind: string, channels: number): HeteroLayer {
  const opts = {
    backend: cpu,
    rng: new Rng(3),
    channels,
    nodeTypes: TINY_NODE_TYPES.map((t) => t.name),
    edgeTypes: TINY_EDGE_TYPES,
  };
  if (kind === "gat") return new GatLayer({ ...opts, heads: 2 });
  return new SageLayer({ ...opts, aggregation: kind as "mean" | "sum" | "max" });
}

/** The outputs of every node type, flattened into one `[1, Σ size]` row. */
function flatOutputs(out: Map<string, Tensor>): Tensor {
  return concatCols([...out.values()].map((t) => t.reshape([1, t.size])));
}

async function forwardValues(model: HeteroGNN, batch: GpuBatch): Promise<Float64Array> {
  return Float64Array.from(await noGrad(() => scope(() => model.forward(batch).keep())).data());
}

function withBatch<T>(
  s: TinySample,
  backend: Backend,
  fn: (b: GpuBatch) => Promise<T> | T,
): Promise<T> {
  const b = tinyBatch(s, backend);
  return Promise.resolve(fn(b)).finally(() => b.dispose());
}

Deno.test("tiny samples order nodes by hop and edges by destination, sources within one hop", () => {
  const s = tinySample(6, 3);
  for (const e of TINY_EDGE_TYPES) {
    const se = s.sample.edges[e.name];
    if (!se) continue;
    const dstHop = s.sample.nodes[e.dstType].hop, srcHop = s.sample.nodes[e.srcType].hop;
    for (let i = 0; i < se.src.length; i++) {
      if (i > 0) assert(se.dst[i] >= se.dst[i - 1]);
      assert(srcHop[se.src[i]] <= dstHop[se.dst[i]] + 1);
    }
  }
});

for (const arch of ["sage", "gat"] as const) {
  Deno.test(`${arch}: one output row per seed; trimmed = untrimmed; fewer rows computed`, async () => {
    const s = tinySample(5, 3);
    await withBatch(s, cpu, async (batch) => {
      const spec = tinySpec(arch, { outWidth: 3 });
      const trimmed = new HeteroGNN(spec, { backend: cpu, rng: new Rng(8) });
      const full = new HeteroGNN(spec, { backend: cpu, rng: new Rng(8), trim: false });
      const a = await forwardValues(trimmed, batch), b = await forwardValues(full, batch);
      assertEquals(a.length, 5 * 3);
      for (let i = 0; i < a.length; i++) {
        assert(Math.abs(a[i] - b[i]) <= 1e-12, `seed output ${i}: ${a[i]} vs ${b[i]}`);
      }
      // The plan reads hop ≤ 2 for layer 0 and computes hop ≤ 1, then hop 0.
      const plan = planHops(batch, 2, spec.edgeTypes);
      for (const t of Object.keys(batch.nodes)) {
        assertEquals(plan.encoderRows.get(t) ?? 0, rowsUpToHop(batch, t, 2));
        assertEquals(plan.layers[0].outRows.get(t) ?? 0, rowsUpToHop(batch, t, 1));
        assertEquals(plan.layers[1].outRows.get(t) ?? 0, rowsUpToHop(batch, t, 0));
      }
      assert(rowsUpToHop(batch, "txn", 2) < batch.nodes.txn.count, "hop 3 rows exist to trim");
      assertEquals([...plan.layers[1].outRows.keys()], ["user"]);
      trimmed.dispose();
      full.dispose();
    });
  });
}

for (const kind of ["mean", "sum", "max", "gat"]) {
  Deno.test(`${kind} layer: gradients of inputs and parameters match finite differences`, async () => {
    const s = tinySample(3, 3, 2, 5);
    await withBatch(s, cpu, (batch) => {
      const C = 4;
      const layer = layerOf(kind, C);
      const plan = scope(() => {
        const p = planHops(batch, 2, TINY_EDGE_TYPES);
        for (const l of p.layers) for (const e of l.edges) e.src.keep(), e.dst.keep();
        return p;
      });
      for (const [l, lp] of plan.layers.entries()) {
        assert(lp.edges.length > 0, `layer ${l} has edges`);
        const h = randomInputs(lp.inRows, C, 10 + l);
        checkGrads(
          () => flatOutputs(layer.forward(h, lp)),
          [...h.values(), ...layer.parameters()],
          `${kind} layer ${l}`,
        );
        for (const x of h.values()) x.dispose();
      }
      layer.dispose();
    });
  });
}

Deno.test("encoder: gradients match finite differences; feature-less types get their bias", async () => {
  const s = tinySample(3, 2, 2, 6);
  await withBatch(s, cpu, (batch) => {
    for (const t of TINY_NODE_TYPES) {
      const enc = new NodeEncoder(t, 4, { backend: cpu, rng: new Rng(4) });
      const node = batch.nodes[t.name];
      const rows = rowsUpToHop(batch, t.name, 1) || node.count;
      checkGrads(() => enc.forward(node, rows), enc.parameters(), `encoder ${t.name}`);
      if (t.name === "user") {
        const bias = values(enc.bias);
        const out = scope(() => values(enc.forward(node)));
        for (let i = 0; i < out.length; i++) assertEquals(out[i], bias[i % 4]);
      }
      enc.dispose();
    }
  });
});

Deno.test("encoder refuses a node type split into blocks", () => {
  const enc = new NodeEncoder(TINY_NODE_TYPES[1], 4, { backend: cpu });
  const x = tensor(new Float32Array(6), [2, 3], { backend: cpu });
  const node = {
    type: "txn",
    count: 4,
    ids: new Int32Array(4),
    blockRows: 2,
    num: [x, x],
    cat: [],
    cardinality: [4],
    relTime: null,
  };
  throws(() => enc.forward(node), /smaller batches/);
  x.dispose();
  enc.dispose();
});

Deno.test("whole model: every parameter's gradient matches finite differences (sage, max)", async () => {
  const s = tinySample(3, 3, 2, 5);
  await withBatch(s, cpu, (batch) => {
    const plan = scope(() => planHops(batch, 2, TINY_EDGE_TYPES));
    assert(plan.layers.every((l) => l.edges.length > 0), "every layer passes messages");
    const spec = tinySpec("sage", { channels: 4, aggregation: "max", outWidth: 2 });
    const model = new HeteroGNN(spec, { backend: cpu, rng: new Rng(2) });
    checkGrads(() => model.forward(batch), model.parameters(), "model");
    model.dispose();
  });
});

/** Labels that depend on the neighbourhood only (the seeds have no features). */
function neighbourLabels(s: TinySample): Float32Array {
  const e = s.sample.edges["user.id->txn.user_id"];
  const y = new Float32Array(s.sample.batchSize);
  for (let u = 0; u < y.length; u++) {
    let z = 0;
    for (let i = e.dstOffsets[u]; i < e.dstOffsets[u + 1]; i++) z += s.num.txn[e.src[i] * 3];
    y[u] = z > 0 ? 1 : 0;
  }
  return y;
}

async function overfit(arch: Architecture, backend: Backend, steps: number) {
  const s = tinySample(12, 2, 3, 21);
  const y = neighbourLabels(s);
  return await withBatch(s, backend, async (batch) => {
    const spec = tinySpec(arch, { channels: 16, heads: 2 });
    const model = buildGraphModel(spec, { backend, rng: new Rng(5) });
    const opt = new Adam(model.parameters(), { lr: 0.01 });
    const target = tensor(y, [y.length, 1], { backend }).keep();
    let last = Infinity;
    for (let step = 0; step < steps; step++) {
      const loss = scope(() => {
        opt.zeroGrad();
        const l = bceWithLogits(model.forward(batch), target);
        l.backward();
        opt.step();
        return l;
      });
      if (step % 50 === 49 || step === steps - 1) {
        last = await loss.item();
        if (last < 0.02) {
          loss.dispose();
          break;
        }
      }
      loss.dispose();
    }
    target.dispose();
    model.dispose();
    return { last, positives: y.reduce((a, b) => a + b, 0) };
  });
}

for (const arch of ["sage", "gat"] as const) {
  Deno.test(`${arch}: a 2-layer model overfits a tiny graph (BCE < 0.02 in ≤ 300 Adam steps)`, async () => {
    const { last, positives } = await overfit(arch, cpu, 300);
    assert(positives > 0 && positives < 12, `both classes present (${positives} of 12)`);
    assert(last < 0.02, `final loss ${last}`);
  });
}

Deno.test("transformer specs build the graph transformer", () => {
  const m = buildGraphModel(tinySpec("transformer"), { backend: cpu, rng: new Rng(1) });
  assertEquals(m.spec.architecture, "transformer");
  m.dispose();
});

Deno.test("a batch edge type the model does not know is an error", async () => {
  const s = tinySample(2, 2);
  await withBatch(s, cpu, (batch) => {
    const spec = tinySpec("sage", { edgeTypes: TINY_EDGE_TYPES.slice(1) });
    const model = new HeteroGNN(spec, { backend: cpu });
    throws(() => scope(() => model.forward(batch)), /not one of the model's/);
    model.dispose();
  });
});

for (const arch of ["sage", "gat"] as const) {
  Deno.test({
    name: `${arch} on WebGPU matches the CPU reference (forward and gradients)`,
    ignore: noGpu,
    async fn() {
      const gpu = gpuBackend!;
      const s = tinySample(6, 3, 3, 13);
      const y = neighbourLabels(s);
      const spec = tinySpec(arch, { channels: 16, outWidth: 2, heads: 4 });
      const run = (backend: Backend) =>
        withBatch(s, backend, async (batch) => {
          const model = new HeteroGNN(spec, { backend, rng: new Rng(17) });
          const out = await forwardValues(model.eval(), batch);
          const target = tensor([...y, ...y], [y.length, 2], { backend }).keep();
          scope(() => bceWithLogits(model.forward(batch), target).backward());
          const grads = await Promise.all(
            model.parameters().map(async (p) =>
              p.grad ? Float64Array.from(await p.grad.data()) : new Float64Array(p.size)
            ),
          );
          target.dispose();
          model.dispose();
          return { out, grads };
        });
      const ref = await run(cpu), got = await run(gpu);
      // f32 against float64: |Δ| ≤ 1e-4·(1 + |ref|) on outputs of size ~1, and
      // per parameter |Δgrad| ≤ 1e-3·max|grad| + 1e-6.
      ref.out.forEach((v, i) => {
        assert(
          Math.abs(got.out[i] - v) <= 1e-4 * (1 + Math.abs(v)),
          `out ${i}: ${got.out[i]} vs ${v}`,
        );
      });
      ref.grads.forEach((g, k) => {
        const scale = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        g.forEach((v, i) => {
          const d = Math.abs(got.grads[k][i] - v);
          assert(d <= 1e-3 * scale + 1e-6, `grad ${k}[${i}]: ${got.grads[k][i]} vs ${v}`);
        });
      });
    },
  });
}
