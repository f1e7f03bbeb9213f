import fc from "fast-check";
import { cpuBackend } from "./cpu/mod.ts";
import { scope, setDefaultBackend, type Tensor, tensor } from "./tensor.ts";
import type { HostTensor } from "./module.ts";
import {
  Adam,
  AdamW,
  clipGradNorm,
  type GradClip,
  isBiasOrNorm,
  type Optimizer,
  type OptimizerStateInput,
  SGD,
} from "./optim.ts";

const cpu = cpuBackend();
setDefaultBackend(cpu);

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-10): void {
  if (actual.length !== expected.length) {
    throw new Error(`length ${actual.length}, expected ${expected.length}`);
  }
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (!(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)))) {
      throw new Error(
        `[${i}] = ${a}, expected ${e}\nactual:   [${[...Array.from(actual)]}]\nexpected: [${[
          ...Array.from(expected),
        ]}]`,
      );
    }
  }
}

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function assertThrows(fn: () => unknown, includes: string): void {
  try {
    fn();
  } catch (e) {
    const m = (e as Error).message;
    if (!m.includes(includes)) throw new Error(`message "${m}" does not include "${includes}"`);
    return;
  }
  throw new Error(`expected a throw including "${includes}"`);
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

// ---- float64 reference updates (PyTorch's formulas) -------------------------------------

interface RefCfg {
  kind: "sgd" | "adam" | "adamw";
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  beta1?: number;
  beta2?: number;
  eps?: number;
  wd?: number;
}

interface RefState {
  p: number[];
  s1: number[];
  s2: number[];
  t: number;
}

/** One reference step; `clip` multiplies the gradient first. */
function refStep(cfg: RefCfg, st: RefState, grad: readonly number[], clip = 1): void {
  st.t++;
  const wd = cfg.wd ?? 0, mu = cfg.momentum ?? 0;
  const b1 = cfg.beta1 ?? 0.9, b2 = cfg.beta2 ?? 0.999, eps = cfg.eps ?? 1e-8;
  for (let i = 0; i < st.p.length; i++) {
    let g = grad[i] * clip;
    if (cfg.kind === "sgd") {
      g += wd * st.p[i];
      if (mu > 0) {
        st.s1[i] = st.t === 1 ? g : mu * st.s1[i] + g;
        g = cfg.nesterov ? g + mu * st.s1[i] : st.s1[i];
      }
      st.p[i] -= cfg.lr * g;
      continue;
    }
    if (cfg.kind === "adamw") st.p[i] *= 1 - cfg.lr * wd;
    else g += wd * st.p[i];
    st.s1[i] = b1 * st.s1[i] + (1 - b1) * g;
    st.s2[i] = b2 * st.s2[i] + (1 - b2) * g * g;
    const mHat = st.s1[i] / (1 - b1 ** st.t);
    const vHat = st.s2[i] / (1 - b2 ** st.t);
    st.p[i] -= cfg.lr * mHat / (Math.sqrt(vHat) + eps);
  }
}

function makeOpt(cfg: RefCfg, params: Tensor[]): Optimizer {
  if (cfg.kind === "sgd") {
    return new SGD(params, {
      lr: cfg.lr,
      momentum: cfg.momentum,
      nesterov: cfg.nesterov,
      weightDecay: cfg.wd,
    });
  }
  const o = {
    lr: cfg.lr,
    betas: [cfg.beta1!, cfg.beta2!] as const,
    eps: cfg.eps,
    weightDecay: cfg.wd,
  };
  return cfg.kind === "adam" ? new Adam(params, o) : new AdamW(params, o);
}

function setGrad(p: Tensor, g: ArrayLike<number>): void {
  p.grad?.dispose();
  p.grad = tensor(g, p.shape, { backend: p.backend }).keep();
}

const P0 = [0.5, -1.25, 2, 0.125, -0.75, 1];
const GRADS = [
  [0.1, -0.2, 0.3, -0.4, 0.5, -0.6],
  [-0.3, 0.2, 0.05, 0.4, -0.1, 0.9],
  [0.7, 0.7, -0.2, 0.0, 0.25, -0.5],
  [0.01, -0.02, 0.03, 1.5, -1.5, 0.2],
];

async function runAgainstRef(cfg: RefCfg, grads: number[][] = GRADS): Promise<void> {
  const p = tensor(P0, [2, 3], { requiresGrad: true }).keep();
  const opt = makeOpt(cfg, [p]);
  const ref: RefState = { p: [...P0], s1: P0.map(() => 0), s2: P0.map(() => 0), t: 0 };
  for (const g of grads) {
    setGrad(p, g);
    opt.step();
    refStep(cfg, ref, g);
    assertClose(await p.data(), ref.p);
  }
  opt.dispose();
  p.grad?.dispose();
  p.dispose();
}

Deno.test("SGD matches the reference: plain, momentum, nesterov, weight decay", async () => {
  await runAgainstRef({ kind: "sgd", lr: 0.1 });
  await runAgainstRef({ kind: "sgd", lr: 0.05, momentum: 0.9 });
  await runAgainstRef({ kind: "sgd", lr: 0.05, momentum: 0.8, nesterov: true });
  await runAgainstRef({ kind: "sgd", lr: 0.05, momentum: 0.9, wd: 0.01 });
  await runAgainstRef({ kind: "sgd", lr: 0.2, wd: 0.1 });
});

Deno.test("Adam matches the reference, with and without L2 weight decay", async () => {
  await runAgainstRef({ kind: "adam", lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
  await runAgainstRef({ kind: "adam", lr: 0.1, beta1: 0.8, beta2: 0.99, eps: 1e-6, wd: 0.1 });
});

Deno.test("AdamW matches the reference (decoupled decay, default 0.01)", async () => {
  await runAgainstRef({ kind: "adamw", lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, wd: 0.01 });
  await runAgainstRef({ kind: "adamw", lr: 0.1, beta1: 0.5, beta2: 0.9, eps: 1e-3, wd: 0.5 });
  const p = tensor([1], [1], { requiresGrad: true }).keep();
  const opt = new AdamW([p]);
  assert(opt.weightDecay === 0.01 && opt.lr === 1e-3, "AdamW defaults");
  opt.dispose();
  p.dispose();
});

Deno.test("optimizers match the reference on random hyperparameters (property)", async () => {
  const cfgArb = fc.oneof(
    fc.record({
      kind: fc.constant("sgd" as const),
      lr: fc.double({ min: 1e-4, max: 0.5, noNaN: true }),
      momentum: fc.constantFrom(0, 0.5, 0.9),
      nesterov: fc.boolean(),
      wd: fc.constantFrom(0, 0.01, 0.3),
    }).map((c) => ({ ...c, nesterov: c.momentum > 0 && c.nesterov })),
    fc.record({
      kind: fc.constantFrom("adam" as const, "adamw" as const),
      lr: fc.double({ min: 1e-4, max: 0.5, noNaN: true }),
      beta1: fc.double({ min: 0, max: 0.99, noNaN: true }),
      beta2: fc.double({ min: 0.5, max: 0.9999, noNaN: true }),
      eps: fc.constantFrom(1e-8, 1e-6, 1e-3),
      wd: fc.constantFrom(0, 0.01, 0.3),
    }),
  );
  const gradsArb = fc.array(
    fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 6, maxLength: 6 }),
    { minLength: 1, maxLength: 5 },
  );
  await fc.assert(
    fc.asyncProperty(cfgArb, gradsArb, async (cfg, grads) => {
      await runAgainstRef(cfg as RefCfg, grads);
    }),
    { numRuns: 60 },
  );
});

Deno.test("step() encodes without awaiting and skips parameters without gradients", async () => {
  const a = tensor([1, 2], [2], { requiresGrad: true }).keep();
  const b = tensor([3, 4], [2], { requiresGrad: true }).keep();
  const frozen = tensor([5], [1]).keep(); // requiresGrad false: accepted, never updated
  const opt = new SGD([a, b, frozen, a], { lr: 0.5 });
  assert(opt.params.length === 3, "duplicates dropped");
  setGrad(a, [1, 1]);
  const r = opt.step() as unknown;
  assert(r === undefined, "step() returns nothing (no promise)");
  assertClose(await a.data(), [0.5, 1.5]);
  assertClose(await b.data(), [3, 4]);
  assertClose(await frozen.data(), [5]);
  assert(opt.stepCount === 1);
  opt.zeroGrad();
  assert(a.grad === null && b.grad === null, "zeroGrad nulls gradients");
  opt.dispose();
  for (const t of [a, b, frozen]) t.dispose();
});

Deno.test("noDecay excludes parameters from weight decay", async () => {
  const w = tensor([1, 1, 1, 1], [2, 2], { requiresGrad: true }).keep();
  const bias = tensor([1, 1], [2], { requiresGrad: true }).keep();
  const opt = new SGD([["lin.weight", w], ["lin.bias", bias]], {
    lr: 0.1,
    weightDecay: 0.5,
    noDecay: isBiasOrNorm,
  });
  setGrad(w, [0, 0, 0, 0]);
  setGrad(bias, [0, 0]);
  opt.step();
  assertClose(await w.data(), [0.95, 0.95, 0.95, 0.95]);
  assertClose(await bias.data(), [1, 1]);
  opt.dispose();
  w.dispose();
  bias.dispose();
});

Deno.test("clipGradNorm computes the global norm on the device; clipping scales big grads", async () => {
  const a = tensor([0, 0, 0], [3], { requiresGrad: true }).keep();
  const b = tensor([0, 0], [1, 2], { requiresGrad: true }).keep();
  const c = tensor([0], [1], { requiresGrad: true }).keep(); // no grad: counts as zero
  setGrad(a, [3, 0, 4]);
  setGrad(b, [0, 12]);
  const clip = clipGradNorm([a, b, c], 6.5);
  assert(clip.normSq.size === 1);
  assertClose([await clip.norm()], [13]);
  assertClose([await clip.scale()], [6.5 / (13 + 1e-6)]);
  const opt = new SGD([a, b, c], { lr: 1 });
  opt.step({ clip });
  const s = 6.5 / (13 + 1e-6);
  assertClose(await a.data(), [-3 * s, 0, -4 * s]);
  assertClose(await b.data(), [0, -12 * s]);
  assert(!clip.disposed, "a caller-owned clip is left alive");
  clip.dispose();
  opt.zeroGrad();

  // Small gradients are left alone.
  setGrad(a, [0.1, 0.2, 0.2]);
  const small = opt.clip(1);
  assertClose([await small.norm()], [0.3]);
  opt.step();
  assertClose(await a.data(), [-3 * s - 0.1, -0.2, -4 * s - 0.2]);
  opt.dispose();
  assert(small.disposed, "dispose() frees the optimizer-owned clip");
  for (const t of [a, b, c]) {
    t.grad?.dispose();
    t.dispose();
  }
});

Deno.test("clip() / maxGradNorm: optimizer-owned norms are replaced, not leaked", async () => {
  const p = tensor([0, 0], [2], { requiresGrad: true }).keep();
  const opt = new Adam([p], { lr: 0.1, maxGradNorm: 1 });
  const ref: RefState = { p: [0, 0], s1: [0, 0], s2: [0, 0], t: 0 };
  const cfg: RefCfg = { kind: "adam", lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
  const seen: GradClip[] = [];
  for (const g of [[30, 40], [0.3, 0.4], [-6, 8]]) {
    setGrad(p, g);
    opt.step(); // clips itself through maxGradNorm
    const clip = opt.lastClip!;
    seen.push(clip);
    const norm = Math.hypot(g[0], g[1]);
    assertClose([await clip.norm()], [norm]);
    refStep(cfg, ref, g, Math.min(1, 1 / (norm + 1e-6)));
    assertClose(await p.data(), ref.p);
  }
  assert(seen[0].disposed && seen[1].disposed && !seen[2].disposed, "older clips are freed");
  // An explicit clip() takes precedence over maxGradNorm for the next step.
  setGrad(p, [3, 4]);
  const c = opt.clip(2.5);
  opt.step();
  refStep(cfg, ref, [3, 4], Math.min(1, 2.5 / (5 + 1e-6)));
  assertClose(await p.data(), ref.p);
  assert(opt.lastClip === c);
  opt.dispose();
  p.grad?.dispose();
  p.dispose();
});

Deno.test("clipping works inside a scope: the norm tensor survives it", async () => {
  const p = tensor([1, 1], [2], { requiresGrad: true }).keep();
  const opt = new SGD([p], { lr: 1 });
  setGrad(p, [6, 8]);
  const clip = scope(() => opt.clip(5));
  opt.step();
  assertClose([await clip.norm()], [10]);
  assertClose(await p.data(), [1 - 3 * (5 / (5 + 5e-7)) / 1, 1 - 4 * (5 / (5 + 5e-7))], 1e-6);
  opt.dispose();
  p.grad?.dispose();
  p.dispose();
});

Deno.test("stateDict / loadStateDict resume training exactly", async () => {
  const cfg: RefCfg = { kind: "adamw", lr: 0.05, beta1: 0.9, beta2: 0.99, eps: 1e-8, wd: 0.1 };
  const p = tensor(P0, [2, 3], { requiresGrad: true }).keep();
  const opt = makeOpt(cfg, [p]);
  for (const g of GRADS.slice(0, 2)) {
    setGrad(p, g);
    opt.step();
  }
  const state = opt.stateDict();
  assert(state.step === 2 && state.paramSteps["0"] === 2);
  assert([...state.tensors.keys()].join() === "0.exp_avg,0.exp_avg_sq", "state keys");
  // Snapshot to host data, as a checkpoint would.
  const host: OptimizerStateInput & { tensors: Map<string, HostTensor> } = {
    step: state.step,
    paramSteps: { ...state.paramSteps },
    tensors: new Map(),
  };
  for (const [k, t] of state.tensors) {
    host.tensors.set(k, { shape: [...t.shape], data: await t.data() });
  }
  const q = tensor(await p.data(), [2, 3], { requiresGrad: true }).keep();
  const opt2 = makeOpt(cfg, [q]);
  await opt2.loadStateDict(host);
  assert(opt2.stepCount === 2);
  for (const g of GRADS.slice(2)) {
    setGrad(p, g);
    setGrad(q, g);
    opt.step();
    opt2.step();
    assertClose(await q.data(), await p.data(), 0);
  }
  // Mismatches are reported with the key and shapes.
  const bad: OptimizerStateInput = {
    step: 1,
    paramSteps: {},
    tensors: new Map([["0.exp_avg", { shape: [3, 2], data: [1, 2, 3, 4, 5, 6] }], [
      "7.exp_avg",
      { shape: [1], data: [0] },
    ]]),
  };
  await assertRejects(
    () => opt2.loadStateDict(bad),
    `"0.exp_avg" has shape [3,2] in the state dict but [2,3] in the target; unexpected key "7.exp_avg"`,
  );
  for (const o of [opt, opt2]) o.dispose();
  for (const t of [p, q]) {
    t.grad?.dispose();
    t.dispose();
  }
});

Deno.test("SGD momentum state round-trips through stateDict", async () => {
  const p = tensor([1, 2, 3], [3], { requiresGrad: true }).keep();
  const opt = new SGD([["w", p]], { lr: 0.1, momentum: 0.9 });
  setGrad(p, [1, 1, 1]);
  opt.step();
  const st = opt.stateDict();
  assert([...st.tensors.keys()].join() === "w.momentum_buffer");
  assertClose(await st.tensors.get("w.momentum_buffer")!.data(), [1, 1, 1]);
  const q = tensor(await p.data(), [3], { requiresGrad: true }).keep();
  const opt2 = new SGD([["w", q]], { lr: 0.1, momentum: 0.9 });
  await opt2.loadStateDict(st); // tensors are read back
  setGrad(p, [0.5, -1, 2]);
  setGrad(q, [0.5, -1, 2]);
  opt.step();
  opt2.step();
  assertClose(await q.data(), await p.data(), 0);
  for (const o of [opt, opt2]) o.dispose();
  for (const t of [p, q]) {
    t.grad?.dispose();
    t.dispose();
  }
});

Deno.test("optimizer options are validated", () => {
  const p = tensor([1], [1], { requiresGrad: true }).keep();
  assertThrows(() => new SGD([p], { nesterov: true }), "nesterov needs momentum > 0");
  assertThrows(() => new Adam([p], { betas: [1, 0.9] }), "betas must be in [0, 1)");
  assertThrows(() => new Adam([p], { lr: -1 }), "lr must be");
  assertThrows(() => new SGD([]), "no parameters");
  p.dispose();
});
