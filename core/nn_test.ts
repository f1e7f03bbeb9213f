import fc from "fast-check";
import { cpuBackend } from "./cpu/mod.ts";
import type { Backend, Storage } from "./backend.ts";
import { scope, setDefaultBackend, type Tensor, tensor } from "./tensor.ts";
import { mseLoss, sum } from "./ops.ts";
import { noGrad } from "./autograd.ts";
import { Index } from "./index.ts";
import { manualSeed, Rng } from "./random.ts";
import {
  Activation,
  Dropout,
  Embedding,
  LayerNorm,
  Linear,
  MLP,
  Module,
  ModuleList,
  parameter,
  Sequential,
} from "./nn.ts";
import { Adam } from "./optim.ts";

const cpu = cpuBackend();
setDefaultBackend(cpu);

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-9): void {
  if (actual.length !== expected.length) {
    throw new Error(`length ${actual.length}, expected ${expected.length}`);
  }
  for (let i = 0; i < actual.length; i++) {
    if (!(Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])))) {
      throw new Error(
        `[${i}] = ${actual[i]}, expected ${expected[i]}\nactual:   [${Array.from(actual)}]`,
      );
    }
  }
}

async function assertRejects(fn: () => Promise<unknown>, includes: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const m = (e as Error).message;
    if (!m.includes(includes)) throw new Error(`message "${m}" does not include "${includes}"`);
    return;
  }
  throw new Error(`expected a rejection including "${includes}"`);
}

/**
 * Tracks every storage the backend hands out (by wrapping its methods on the
 * instance) so that a test can count the live ones; `stop()` unwraps.
 */
function trackStorages(
  backend: Backend,
): { live: () => number; sizes: () => string; stop: () => void } {
  const seen = new Set<Storage>();
  const rec = (v: unknown, depth = 0): void => {
    if (!v || typeof v !== "object" || depth > 2) return;
    if ("dtype" in v && "size" in v && "backend" in v) seen.add(v as Storage);
    else for (const x of Object.values(v)) rec(x, depth + 1);
  };
  const target = backend as unknown as Record<string, unknown>;
  const names: string[] = [];
  for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(backend))) {
    const f = target[name];
    if (name === "constructor" || typeof f !== "function") continue;
    names.push(name);
    target[name] = (...args: unknown[]) => {
      const r = (f as (...a: unknown[]) => unknown).apply(backend, args);
      rec(r);
      return r;
    };
  }
  return {
    live: () => [...seen].filter((s) => !(s as unknown as { released: boolean }).released).length,
    sizes: () =>
      [...seen].filter((s) => !(s as unknown as { released: boolean }).released)
        .map((s) => `${s.dtype}[${s.size}]`).join(),
    stop: () => {
      for (const n of names) delete target[n];
    },
  };
}

async function arr(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

Deno.test("Linear forward equals x·Wᵀ + b (property over sizes)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 6 }),
      fc.boolean(),
      fc.integer(),
      async (rows, inF, outF, bias, seed) => {
        const lin = new Linear(inF, outF, { bias, rng: new Rng(seed) });
        const rng = new Rng(seed ^ 0x1234);
        const xs = Array.from({ length: rows * inF }, () => rng.normal());
        const W = await arr(lin.weight), b = lin.bias ? await arr(lin.bias) : null;
        const y = scope(() => noGrad(() => lin.forward(tensor(xs, [rows, inF]))).keep());
        assert(y.shape[0] === rows && y.shape[1] === outF, `shape [${y.shape}]`);
        const expected: number[] = [];
        for (let r = 0; r < rows; r++) {
          for (let o = 0; o < outF; o++) {
            let s = b ? b[o] : 0;
            for (let i = 0; i < inF; i++) s += xs[r * inF + i] * W[o * inF + i];
            expected.push(s);
          }
        }
        assertClose(await y.data(), expected);
        y.dispose();
        lin.dispose();
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("Linear init: PyTorch layout and U(-1/sqrt(in), 1/sqrt(in)), seeded", async () => {
  const a = new Linear(16, 8, { rng: new Rng(7) });
  const b = new Linear(16, 8, { rng: new Rng(7) });
  assert(a.weight.shape.join() === "8,16" && a.bias!.shape.join() === "8", "layout");
  const wa = await arr(a.weight), wb = await arr(b.weight);
  assert(wa.every((v, i) => v === wb[i]), "same seed, same weights");
  const bound = 1 / Math.sqrt(16);
  for (const v of [...wa, ...(await arr(a.bias!))]) assert(Math.abs(v) <= bound, `${v} > ${bound}`);
  assert(Math.max(...wa.map(Math.abs)) > bound * 0.8, "spans the range");
  assert(a.weight.requiresGrad && a.bias!.requiresGrad, "parameters require grad");
  manualSeed(3);
  const c = new Linear(4, 4);
  manualSeed(3);
  const d = new Linear(4, 4);
  assert((await arr(c.weight)).join() === (await arr(d.weight)).join(), "manualSeed controls init");
  const noBias = new Linear(3, 2, { bias: false });
  assert(noBias.bias === null && noBias.parameters().length === 1, "bias: false");
  for (const m of [a, b, c, d, noBias]) m.dispose();
});

Deno.test("parameters outlive scopes; intermediates do not", () => {
  const lin = scope(() => new Linear(3, 2));
  assert(!lin.weight.disposed && !lin.bias!.disposed, "parameters kept");
  const p = scope(() => parameter([1, 2], [2]));
  assert(!p.disposed && p.requiresGrad);
  lin.dispose();
  p.dispose();
});

class Block extends Module {
  readonly proj = this.registerModule("proj", new Linear(4, 4));
  readonly norm = this.registerModule("norm", new LayerNorm(4));
  readonly scale = this.registerParameter("scale", parameter([1, 1, 1, 1], [4]));

  forward(x: Tensor): Tensor {
    return this.norm.forward(this.proj.forward(x));
  }
}

Deno.test("namedParameters: dotted names in registration order; train/eval propagate", () => {
  const mlp = new MLP([3, 5, 5, 2], { norm: "layer", dropout: 0.1, activation: "gelu" });
  const names = mlp.namedParameters().map(([n]) => n);
  assert(
    names.join() ===
      "0.weight,0.bias,1.weight,1.bias,4.weight,4.bias,5.weight,5.bias,8.weight,8.bias",
    names.join(),
  );
  assert(mlp.layers[2] instanceof Activation && mlp.layers[3] instanceof Dropout, "layer order");
  const block = new Block();
  const list = new ModuleList([block, new Linear(4, 1)]);
  assert(
    list.namedParameters().map(([n]) => n).join() ===
      "0.scale,0.proj.weight,0.proj.bias,0.norm.weight,0.norm.bias,1.weight,1.bias",
  );
  list.eval();
  assert(!block.training && !block.proj.training && !list.at(1).training, "eval() propagates");
  list.train();
  assert(block.norm.training, "train() propagates");
  // A shared parameter is listed once.
  const shared = new Sequential(block.proj, block.proj);
  assert(shared.parameters().length === 2, "shared parameters deduplicated");
  mlp.dispose();
  list.dispose();
});

Deno.test("Dropout respects the training flag", async () => {
  const drop = new Dropout(0.5);
  const x = tensor(new Array(2000).fill(1), [20, 100]).keep();
  const y = drop.forward(x);
  const v = await arr(y);
  const zeros = v.filter((e) => e === 0).length;
  assert(v.every((e) => e === 0 || Math.abs(e - 2) < 1e-12), "kept values scaled by 1/(1-p)");
  assert(zeros > 800 && zeros < 1200, `dropped ${zeros} of 2000`);
  drop.eval();
  assert(drop.forward(x) === x, "identity in eval mode");
  y.dispose();
  x.dispose();
});

Deno.test("LayerNorm and Embedding forward", async () => {
  const ln = new LayerNorm(3, { eps: 1e-5 });
  await ln.loadStateDict(
    new Map([["weight", { shape: [3], data: [1, 2, 3] }], ["bias", {
      shape: [3],
      data: [0, 1, 0],
    }]]),
  );
  const x = [1, 2, 3, -1, 0, 5];
  const y = noGrad(() => ln.forward(tensor(x, [2, 3])));
  const expected: number[] = [];
  for (let r = 0; r < 2; r++) {
    const row = x.slice(r * 3, r * 3 + 3);
    const m = row.reduce((a, b) => a + b) / 3;
    const v = row.reduce((a, b) => a + (b - m) ** 2, 0) / 3;
    row.forEach((e, c) =>
      expected.push((e - m) / Math.sqrt(v + 1e-5) * [1, 2, 3][c] + [0, 1, 0][c])
    );
  }
  assertClose(await y.data(), expected);
  const emb = new Embedding(5, 2, { rng: new Rng(1) });
  const W = await arr(emb.weight);
  const e = emb.forward(new Index([4, 0, 4], 5));
  assert(e.shape.join() === "3,2");
  assertClose(await e.data(), [W[8], W[9], W[0], W[1], W[8], W[9]], 0);
  let threw = "";
  try {
    emb.forward(new Index([1], 6));
  } catch (err) {
    threw = (err as Error).message;
  }
  assert(threw.includes("got codes with range 6"), threw);
  for (const t of [y, e]) t.dispose();
  ln.dispose();
  emb.dispose();
});

Deno.test("stateDict → loadStateDict round trip reproduces outputs", async () => {
  const a = new MLP([4, 8, 3], { rng: new Rng(1), norm: "layer" });
  const b = new MLP([4, 8, 3], { rng: new Rng(2), norm: "layer" });
  const x = tensor(Array.from({ length: 8 }, (_, i) => Math.sin(i)), [2, 4]).keep();
  const ya = noGrad(() => a.forward(x));
  const yb0 = noGrad(() => b.forward(x));
  assert((await arr(ya)).join() !== (await arr(yb0)).join(), "different before loading");
  await b.loadStateDict(a.stateDict());
  const yb = noGrad(() => b.forward(x));
  assertClose(await yb.data(), await ya.data(), 0);
  for (const t of [x, ya, yb0, yb]) t.dispose();
  a.dispose();
  b.dispose();
});

Deno.test("loadStateDict errors name the key and the shapes; nothing is written", async () => {
  const lin = new Linear(3, 2);
  const before = await arr(lin.weight);
  await assertRejects(
    () =>
      lin.loadStateDict(
        new Map([
          ["weight", { shape: [3, 2], data: [1, 2, 3, 4, 5, 6] }],
          ["extra", { shape: [1], data: [0] }],
        ]),
      ),
    `"weight" has shape [3,2] in the state dict but [2,3] in the target; ` +
      `missing key "bias" (shape [2]); unexpected key "extra"`,
  );
  assert((await arr(lin.weight)).join() === before.join(), "nothing written");
  await assertRejects(
    () => lin.loadStateDict(new Map([["weight", { shape: [2, 3], data: [1] }]]), { strict: false }),
    `"weight" has 1 values for shape [2,3]`,
  );
  // Non-strict loading of a subset works.
  await lin.loadStateDict(new Map([["bias", { shape: [2], data: [7, 8] }]]), { strict: false });
  assert((await arr(lin.bias!)).join() === "7,8");
  lin.dispose();
});

Deno.test("a tiny MLP trained with Adam fits a synthetic regression (loss < 1e-2)", async () => {
  const rng = new Rng(42);
  const n = 64;
  const xs: number[] = [], ys: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = 2 * rng.next() - 1, b = 2 * rng.next() - 1;
    xs.push(a, b);
    ys.push(0.5 * a - 0.3 * b + 0.8 * a * b);
  }
  const tracker = trackStorages(cpu);
  const x = tensor(xs, [n, 2]).keep(), y = tensor(ys, [n, 1]).keep();
  const mlp = new MLP([2, 32, 32, 1], { activation: "tanh", rng: new Rng(0) });
  const opt = new Adam(mlp.namedParameters(), { lr: 1e-2, maxGradNorm: 10 });
  let loss = Infinity, liveAfterFirst = 0;
  for (let step = 0; step < 300; step++) {
    const l = scope(() => {
      const l = mseLoss(mlp.forward(x), y);
      l.backward();
      return l;
    });
    opt.step();
    opt.zeroGrad();
    if (step % 50 === 49) loss = await l.item();
    l.dispose();
    if (step === 0) liveAfterFirst = tracker.live();
  }
  assert(loss < 1e-2, `final loss ${loss}`);
  // Steady state: the loop allocates nothing that outlives a step.
  assert(tracker.live() === liveAfterFirst, `live ${tracker.live()} != ${liveAfterFirst}`);
  const out = scope(() => noGrad(() => sum(mlp.forward(x))));
  assert(Number.isFinite(await out.item()));
  out.dispose();
  opt.dispose();
  mlp.dispose();
  x.dispose();
  y.dispose();
  assert(tracker.live() === 0, `${tracker.live()} storages leaked: ${tracker.sizes()}`);
  tracker.stop();
});
