import assert from "node:assert/strict";
import { cpuBackend } from "./cpu/mod.ts";
import { add, matmul, mul, relu, reshape, sum } from "./ops.ts";
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
