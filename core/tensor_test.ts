import assert from "node:assert/strict";
import { cpuBackend } from "./cpu/mod.ts";
import {
  add,
  bceWithLogits,
  gather,
  l1Loss,
  matmul,
  mseLoss,
  mul,
  relu,
  reshape,
  segmentSum,
  sum,
  tanh,
} from "./ops.ts";
import { Index, Segments } from "./index.ts";
import { noGrad } from "./autograd.ts";
import { scope, type Tensor, tensor } from "./tensor.ts";

const backend = cpuBackend();
const on = { backend };

Deno.test("scope disposes what it created, except what it returns", () => {
  const x = tensor([1, 2, 3, 4], [2, 2], on);
  let inner: Tensor | null = null;
  const out = scope(() => {
    inner = relu(x);
    return { result: add(inner, x) };
  });
  assert.equal(inner!.disposed, true);
  assert.equal(out.result.disposed, false);
  assert.equal(x.disposed, false, "a tensor created outside the scope is not touched");
});

Deno.test("nested scopes hand kept tensors to the parent, which may dispose them", () => {
  let kept: Tensor | null = null;
  scope(() => {
    kept = scope(() => mul(tensor([2], [1], on), tensor([3], [1], on)));
    assert.equal(kept.disposed, false);
  });
  assert.equal(kept!.disposed, true);
});

Deno.test("keep() survives every scope; a thrown error still cleans up", () => {
  let a: Tensor | null = null, b: Tensor | null = null;
  assert.throws(() =>
    scope(() => {
      a = tensor([1], [1], on).keep();
      b = tensor([2], [1], on);
      throw new Error("boom");
    }), /boom/);
  assert.equal(a!.disposed, false);
  assert.equal(b!.disposed, true);
});

Deno.test("reshape views share storage; the data lives until the last view goes", async () => {
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3], on);
  const v = reshape(x, [3, 2]);
  x.dispose();
  assert.deepEqual(await v.toArray(), [[1, 2], [3, 4], [5, 6]]);
  v.dispose();
  assert.throws(() => v.assertLive(), /disposed tensor/);
});

Deno.test("backward through a reshape view reaches the leaf with its own shape", async () => {
  const w = tensor([1, 2, 3, 4], [4], { ...on, requiresGrad: true });
  const x = tensor([1, 0, 0, 1], [2, 2], on);
  sum(matmul(x, reshape(w, [2, 2]))).backward();
  assert.deepEqual(w.grad!.shape, [4]);
  assert.deepEqual(Array.from(await w.grad!.data()), [1, 1, 1, 1]);
});

Deno.test("noGrad records nothing; grads flow only to tensors that require them", () => {
  const w = tensor([1, 2], [1, 2], { ...on, requiresGrad: true });
  const y = noGrad(() => mul(w, w));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.node, null);
  assert.throws(() => sum(y).backward(), /does not require grad/);
});

Deno.test("backward needs a one-element tensor", () => {
  const w = tensor([1, 2], [2], { ...on, requiresGrad: true });
  assert.throws(() => mul(w, w).backward(), /one-element tensor, got shape \[2\]/);
});

Deno.test("shape errors name the op and the shapes", () => {
  const a = tensor([1, 2, 3, 4, 5, 6], [2, 3], on);
  assert.throws(() => matmul(a, a), /matmul: inner sizes differ: a is \[2, 3\], b is \[2, 3\]/);
  assert.throws(
    () => add(a, tensor([1, 2], [2], on)),
    /add: shapes \[2,3\] and \[2\] do not broadcast/,
  );
  assert.throws(() => tensor([1, 2, 3], [2, 2], on), /3 values do not fill shape \[2,2\]/);
});

Deno.test("a second backward through a freed graph is an error, not a silent no-op", () => {
  const w = tensor([0.5], [1, 1], { ...on, requiresGrad: true });
  const h = tanh(mul(w, tensor([2], [1, 1], on)));
  sum(h).backward();
  assert.throws(() => sum(mul(h, h)).backward(), /freed graph/);
  const l = sum(mul(w, w));
  l.backward();
  assert.throws(() => l.backward(), /freed graph/);
});

Deno.test("backward after the scope that built the graph closed is an error", () => {
  const w = tensor([1, 2], [2], { ...on, requiresGrad: true });
  const loss = scope(() => sum(relu(mul(w, w))));
  assert.throws(() => loss.backward(), /disposed tensor.*inside the scope/);
});

Deno.test("a loss target that requires grad gets its gradient (mse, l1, bce)", async () => {
  for (
    const [lossFn, expect] of [
      // d/dt mean((p−t)²) = −2(p−t)/n; d/dt mean|p−t| = −sign(p−t)/n; d/dt bce = −p/n.
      [mseLoss, (p: number, t: number) => (-2 * (p - t)) / 2],
      [l1Loss, (p: number, t: number) => -Math.sign(p - t) / 2],
      [bceWithLogits, (p: number) => -p / 2],
    ] as const
  ) {
    const p = tensor([0.5, -1], [2], { ...on, requiresGrad: true });
    const t = tensor([0.25, 0.75], [2], { ...on, requiresGrad: true });
    lossFn(p, t).backward();
    const g = Array.from(await t.grad!.data());
    assert.deepEqual(g.map((v) => +v.toFixed(12)), [
      +expect(0.5, 0.25).toFixed(12),
      +expect(-1, 0.75).toFixed(12),
    ]);
  }
});

Deno.test("broadcasting handles zero-size dimensions (an empty batch through Linear)", () => {
  const x = tensor([], [0, 3], on);
  const y = add(matmul(x, tensor([1, 2, 3, 4, 5, 6], [3, 2], on)), tensor([1, 1], [2], on));
  assert.deepEqual(y.shape, [0, 2]);
  assert.deepEqual(add(tensor([], [0], on), tensor([1], [], on)).shape, [0]);
});

Deno.test("Index and Segments made in a scope free their uploads with it", () => {
  let idx: Index | null = null;
  let segs: Segments | null = null;
  const x = tensor([1, 2, 3, 4], [2, 2], on);
  scope(() => {
    idx = new Index([1, 0, 1], 2);
    segs = new Segments([0, 2, 3]);
    segmentSum(gather(x, idx), segs);
  });
  assert.equal(idx!.storageCount(), 0, "index uploads released");
  assert.equal(segs!.storageCount(), 0, "segment uploads released");
});
