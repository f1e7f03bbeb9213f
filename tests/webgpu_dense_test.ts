/**
 * The WebGPU dense kernels (matmul, element-wise ops, dropout, reductions,
 * losses, optimizer updates, casts) against the CPU float64 reference, kernel
 * by kernel at the `Backend` level, on shapes and values drawn by fast-check.
 * The tolerance model is described in dense_util.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { BinaryOp, OptimizerKind, ReduceAxis, Storage, UnaryOp } from "../core/backend.ts";
import { dropoutKeep, roundF16 } from "../core/cpu/mod.ts";
import { clipGradNorm } from "../core/optim.ts";
import { Rng } from "../core/random.ts";
import { tensor, zeros } from "../core/tensor.ts";
import type { KernelContext } from "../core/webgpu/backend.ts";
import { elementwiseKernels } from "../core/webgpu/kernels_elementwise.ts";
import { matmulKernel, type MatmulVariant, splitK } from "../core/webgpu/kernels_matmul.ts";
import { optimKernels } from "../core/webgpu/kernels_optim.ts";
import { GpuStorage } from "../core/webgpu/storage.ts";
import {
  both,
  check,
  cpu,
  dimArb,
  f32Values,
  gpuBackend,
  gpuTest,
  kernelContext,
  LOSSES,
  maxAbs,
  modeArb,
  noGpu,
  operandSize,
  readCpu,
  readGpu,
  releaseAll,
  RUNS,
  seedArb,
  UNARY_OPS,
} from "./dense_util.ts";

// ---- matmul -------------------------------------------------------------------------------

/** Runs one product on `kernel` and on the CPU and checks it. */
async function checkMatmul(
  kernel: ReturnType<typeof matmulKernel>,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
  rng: Rng,
  what: string,
): Promise<void> {
  const a = f32Values(rng, m * k), b = f32Values(rng, k * n);
  const A = both(a), B = both(b);
  const attrs = { m, k, n, transA, transB };
  const ref = await readCpu(cpu.matmul(A[0], B[0], attrs));
  // k-term dot products: S = √k·max|a|·max|b| (see the module comment).
  const s = Math.sqrt(k) * maxAbs(a) * maxAbs(b);
  check(await readGpu(kernel.matmul(A[1], B[1], attrs)), ref, () => s, what);
  releaseAll(A, B);
}

gpuTest("matmul matches the reference for every transpose combination", async () => {
  const ctx = kernelContext();
  const variants: Record<Exclude<MatmulVariant, "auto">, ReturnType<typeof matmulKernel>> = {
    t8: matmulKernel(ctx, { variant: "t8" }),
    t16: matmulKernel(ctx, { variant: "t16" }),
  };
  await fc.assert(
    fc.asyncProperty(
      dimArb,
      fc.oneof(fc.constantFrom(1, 3, 16, 17, 64), fc.integer({ min: 1, max: 200 })),
      dimArb,
      fc.boolean(),
      fc.boolean(),
      fc.constantFrom<"t8" | "t16">("t8", "t16"),
      seedArb,
      async (m, k, n, transA, transB, variant, seed) => {
        await checkMatmul(
          variants[variant],
          m,
          k,
          n,
          transA,
          transB,
          new Rng(seed),
          `matmul ${variant} ${m}x${k}x${n} ${transA ? "T" : "N"}${transB ? "T" : "N"}`,
        );
      },
    ),
    { numRuns: 25 },
  );
});

gpuTest("matmul splits long k over few tiles (split-K) and still matches", async () => {
  const g = gpuBackend!;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 130 }),
      fc.integer({ min: 600, max: 3000 }),
      fc.integer({ min: 1, max: 130 }),
      fc.boolean(),
      fc.boolean(),
      seedArb,
      async (m, k, n, transA, transB, seed) => {
        if (splitK(m, k, n).split < 2) throw new Error(`${m}x${k}x${n} was not split`);
        await checkMatmul(g, m, k, n, transA, transB, new Rng(seed), `split-K ${m}x${k}x${n}`);
      },
    ),
    { numRuns: 8 },
  );
});

gpuTest("matmul at 65536x128x128 is right on sampled outputs", async () => {
  const g = gpuBackend!;
  const m = 65536, k = 128, n = 128;
  const rng = new Rng(7);
  const a = f32Values(rng, m * k), b = f32Values(rng, k * n);
  const A = g.fromArray(a, "f32"), B = g.fromArray(b, "f32");
  for (const transB of [false, true]) {
    const out = await readGpu(g.matmul(A, B, { m, k, n, transA: false, transB }));
    const s = Math.sqrt(k) * maxAbs(a) * maxAbs(b);
    for (let t = 0; t < 300; t++) {
      const i = rng.int(m), j = rng.int(n);
      let ref = 0;
      for (let p = 0; p < k; p++) ref += a[i * k + p] * (transB ? b[j * k + p] : b[p * n + j]);
      check([out[i * n + j]], [ref], () => s, `65536x128x128 [${i},${j}]`);
    }
  }
  g.release(A);
  g.release(B);
});

gpuTest("matmul temporaries go back to the pool", async () => {
  const g = gpuBackend!;
  const rng = new Rng(3);
  const A = g.fromArray(f32Values(rng, 2000 * 40), "f32");
  const B = g.fromArray(f32Values(rng, 2000 * 50), "f32");
  const attrs = { m: 40, k: 2000, n: 50, transA: true, transB: false };
  g.release(g.matmul(A, B, attrs)); // warm the pool (split-K partials)
  await g.sync();
  const before = g.runtime.stats.buffersCreated;
  for (let i = 0; i < 5; i++) g.release(g.matmul(A, B, attrs));
  await g.sync();
  if (g.runtime.stats.buffersCreated !== before) {
    throw new Error(`matmul created ${g.runtime.stats.buffersCreated - before} buffers when warm`);
  }
  g.release(A);
  g.release(B);
});

// ---- element-wise ---------------------------------------------------------------------------

gpuTest("binary ops match the reference for every broadcast pair", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<BinaryOp>("add", "sub", "mul", "div"),
      modeArb,
      modeArb,
      fc.integer({ min: 0, max: 70 }),
      fc.integer({ min: 1, max: 70 }),
      seedArb,
      async (op, aMode, bMode, rows, cols, seed) => {
        const rng = new Rng(seed);
        const a = f32Values(rng, operandSize(aMode, rows, cols));
        // Divisors kept away from 0.
        const b = op === "div"
          ? f32Values(rng, operandSize(bMode, rows, cols), 0.25, 2)
          : f32Values(rng, operandSize(bMode, rows, cols));
        const A = both(a), B = both(b);
        const attrs = { rows, cols, aMode, bMode };
        const ref = await readCpu(cpu.binary(op, A[0], B[0], attrs));
        // + − × are correctly rounded and ÷ is within 2.5 ulp: relative only.
        check(
          await readGpu(gpuBackend!.binary(op, A[1], B[1], attrs)),
          ref,
          () => 0,
          `${op} ${aMode}/${bMode}`,
        );
        releaseAll(A, B);
      },
    ),
    { numRuns: RUNS },
  );
});

function unaryInputs(op: UnaryOp, rng: Rng, n: number): Float32Array {
  if (op === "log" || op === "sqrt") return f32Values(rng, n, 0.01, 4);
  const x = f32Values(rng, n, -4, 4);
  for (let i = 0; i < n; i += 7) x[i] = Math.fround(x[i] * 1e-3);
  return x;
}

/** S of the forward value (see the module comment). */
function unaryScale(op: UnaryOp, x: number, alpha: number, beta: number): number {
  if (op === "gelu") return Math.abs(x);
  if (op === "affine") return Math.abs(alpha * x) + Math.abs(beta);
  if (op === "log") return 0.01;
  return 0;
}

gpuTest("unary functions and their gradients match the reference", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...UNARY_OPS),
      fc.integer({ min: 1, max: 3000 }),
      fc.double({ min: -2, max: 2, noNaN: true }).map(Math.fround),
      fc.double({ min: -2, max: 2, noNaN: true }).map(Math.fround),
      seedArb,
      async (op, n, alpha, beta, seed) => {
        const rng = new Rng(seed);
        const x = unaryInputs(op, rng, n), dy = f32Values(rng, n);
        const attrs = { n, alpha, beta };
        const X = both(x), DY = both(dy);
        const ref = await readCpu(cpu.unary(op, X[0], attrs));
        const exact = op === "relu" || op === "neg" || op === "abs";
        check(
          await readGpu(gpuBackend!.unary(op, X[1], attrs)),
          ref,
          exact ? null : (i) => unaryScale(op, x[i], alpha, beta),
          op,
        );
        // The gradient kernel gets the same f32 forward output on both backends.
        const y = Float32Array.from(ref);
        const Y = both(y);
        const gref = await readCpu(cpu.unaryGrad(op, X[0], Y[0], DY[0], attrs));
        const gscale = (i: number) => {
          const d = Math.abs(dy[i]);
          if (op === "gelu") return d * (1 + Math.abs(x[i]) * (1 + x[i] * x[i]));
          if (op === "tanh") return d * y[i] * y[i];
          return 0;
        };
        check(
          await readGpu(gpuBackend!.unaryGrad(op, X[1], Y[1], DY[1], attrs)),
          gref,
          gscale,
          `${op} gradient`,
        );
        releaseAll(X, DY, Y);
      },
    ),
    { numRuns: 25 },
  );
});

gpuTest("dropout keeps exactly the reference's elements", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 5000 }),
      fc.oneof(fc.constantFrom(0, 0.5, 0.999), fc.double({ min: 0, max: 0.99, noNaN: true })),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      seedArb,
      async (n, p, seed, dataSeed) => {
        const x = f32Values(new Rng(dataSeed), n, 0.5, 2); // never 0: a zero means dropped
        const X = both(x);
        const attrs = { n, p, seed };
        const ref = await readCpu(cpu.dropout(X[0], attrs));
        const got = await readGpu(gpuBackend!.dropout(X[1], attrs));
        for (let i = 0; i < n; i++) {
          if ((got[i] === 0) !== (ref[i] === 0)) {
            throw new Error(`dropout mask differs at ${i} (p ${p}, seed ${seed})`);
          }
        }
        check(got, ref, () => 0, "dropout values");
        releaseAll(X);
      },
    ),
    { numRuns: RUNS },
  );
});

gpuTest("element-wise kernels cover more than 65535 workgroups", async () => {
  const g = gpuBackend!;
  const cols = 1000, rows = Math.ceil((65535 * 256 + 1) / cols) + 3;
  const n = rows * cols;
  const a = new Float32Array(n), b = new Float32Array(cols);
  for (let i = 0; i < n; i++) a[i] = (i % 9973) - 4000;
  for (let c = 0; c < cols; c++) b[c] = c * 0.5;
  const A = g.fromArray(a, "f32"), B = g.fromArray(b, "f32");
  const sum = await readGpu(g.binary("add", A, B, { rows, cols, aMode: "full", bMode: "row" }));
  for (let i = 0; i < n; i++) {
    if (sum[i] !== a[i] + b[i % cols]) throw new Error(`add at ${i}: ${sum[i]}`);
  }
  const seed = 0xdeadbeef, p = 0.3;
  const d = await readGpu(g.dropout(A, { n, p, seed }));
  const scale = Math.fround(1 / (1 - p));
  for (let i = 0; i < n; i++) {
    const want = dropoutKeep(seed, i, p) ? Math.fround(a[i] * scale) : 0;
    if (d[i] !== want) throw new Error(`dropout at ${i}: ${d[i]}, expected ${want}`);
  }
  g.release(A);
  g.release(B);
});

gpuTest("scalar fallbacks (buffers not whole vec4s) match the vec4 kernels exactly", async () => {
  // Pooled buffers are multiples of 16 bytes, so the backend always takes the
  // vec4 entries; a buffer clipped to a binding limit need not be. Exact-size
  // buffers (4n bytes, n odd) force the one-element-per-thread entries, which
  // do the same f32 arithmetic and must agree bit for bit.
  const g = gpuBackend!, rt = g.runtime;
  const made: GPUBuffer[] = [];
  const exact = (size: number): GpuStorage => {
    const b = rt.device.createBuffer({
      size: Math.max(4, size * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    made.push(b);
    return new GpuStorage(g, b, size, "f32");
  };
  const ctx: KernelContext = { rt, backend: g, out: (size) => exact(size) };
  const upload = (d: Float32Array) => {
    const s = exact(d.length);
    rt.upload(s.buffer, d);
    return s;
  };
  const ew = elementwiseKernels(ctx), opt = optimKernels(ctx);
  const read = async (s: Storage) => Float32Array.from(await g.read(s));
  const same = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
    for (let i = 0; i < b.length; i++) {
      if (!Object.is(a[i], b[i])) throw new Error(`${what}[${i}]: scalar ${a[i]}, vec4 ${b[i]}`);
    }
  };
  const rng = new Rng(11);
  for (const n of [1, 5, 4099]) {
    const x = f32Values(rng, n, 0.1, 3), y = f32Values(rng, n), cols = n === 4099 ? 4099 : 1;
    const [X, Y, XV, YV] = [upload(x), upload(y), g.fromArray(x, "f32"), g.fromArray(y, "f32")];
    for (const op of UNARY_OPS) {
      const attrs = { n, alpha: 0.3, beta: -0.2 };
      same(await read(ew.unary(op, X, attrs)), await readGpu(g.unary(op, XV, attrs)), op);
      same(
        await read(ew.unaryGrad(op, X, X, Y, attrs)),
        await readGpu(g.unaryGrad(op, XV, XV, YV, attrs)),
        `${op} gradient`,
      );
    }
    const d = { n, p: 0.4, seed: 99 };
    same(await read(ew.dropout(X, d)), await readGpu(g.dropout(XV, d)), "dropout");
    const b = { rows: n / cols, cols, aMode: "full" as const, bMode: "full" as const };
    same(await read(ew.binary("div", Y, X, b)), await readGpu(g.binary("div", YV, XV, b)), "div");
    // Plain SGD (momentum 0: the `sgd` entries), SGD with Nesterov momentum,
    // Adam and AdamW, each on the scalar and the vec4 entries (bit for bit)
    // and on the CPU reference. Gradient x ∈ [0.1, 3), states start at x,
    // the squared norm 4 with maxNorm 1 clips the gradient by c ≈ 0.5.
    const rules = [
      { kind: "sgd", momentum: 0 },
      { kind: "sgd", momentum: 0.9 },
      { kind: "adam", momentum: 0 },
      { kind: "adamw", momentum: 0 },
    ] as const;
    for (const { kind, momentum } of rules) {
      const P = upload(y), M = upload(x), V = upload(x), N = upload(new Float32Array([4]));
      const PV = g.fromArray(y, "f32"), MV = g.fromArray(x, "f32"), VV = g.fromArray(x, "f32");
      const NV = g.fromArray([4], "f32");
      const [PC, GC, MC, VC] = [y, x, x, x].map((d) => cpu.fromArray(d, "f32"));
      const NC = cpu.fromArray([4], "f32");
      const attrs = {
        kind,
        lr: 0.1,
        momentum,
        nesterov: true,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        weightDecay: 0.01,
        step: 2,
        n,
        maxNorm: 1,
      };
      opt.optimizerStep(P, X, M, V, N, attrs);
      g.optimizerStep(PV, XV, MV, VV, NV, attrs);
      cpu.optimizerStep(PC, GC, MC, VC, NC, attrs);
      const what = `${kind} (momentum ${momentum}) n ${n}`;
      const usesS1 = kind !== "sgd" || momentum > 0, usesS2 = kind !== "sgd";
      const [p, m, v] = [await read(P), await read(M), await read(V)];
      same(p, await g.read(PV) as Float32Array, `${what} param`);
      same(m, await g.read(MV) as Float32Array, `${what} state1`);
      same(v, await g.read(VV) as Float32Array, `${what} state2`);
      const [pc, mc, vc] = [await readCpu(PC), await readCpu(MC), await readCpu(VC)];
      // Per element, the terms added are the old value and the update (the
      // parameter), or the decayed state and the new (clipped, L2-decayed)
      // gradient g' = c·x + wd·y, or its square; none of them cancel much
      // (x ≥ 0.1 > 0, |wd·y| ≤ 0.02), so S is the sum of their magnitudes.
      const gp = (i: number) => 0.5 * x[i] + 0.01 * Math.abs(y[i]);
      // state1: μ·b + g' (SGD momentum) or β₁·m + (1−β₁)·g' (Adam); state2: β₂·v + (1−β₂)·g'².
      const s1 = (i: number) => 0.9 * x[i] + (kind === "sgd" ? 1 : 0.1) * gp(i);
      check(p, pc, (i) => Math.abs(y[i]) + Math.abs(pc[i] - y[i]), `${what}: param vs cpu`);
      // A state the rule does not use is left alone.
      if (usesS1) check(m, mc, s1, `${what}: state1 vs cpu`);
      else check(m, x, null, `${what}: unused state1`);
      if (usesS2) check(v, vc, (i) => 0.99 * x[i] + 0.01 * gp(i) ** 2, `${what}: state2 vs cpu`);
      else check(v, x, null, `${what}: unused state2`);
      for (const s of [PV, MV, VV, NV]) g.release(s);
      for (const s of [GC, NC]) cpu.release(s);
    }
    g.release(XV);
    g.release(YV);
  }
  await g.sync();
  for (const b of made) b.destroy();
});

// ---- reductions ---------------------------------------------------------------------------

gpuTest("reduceSum matches the reference on every axis", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 })),
        fc.tuple(fc.integer({ min: 1000, max: 70000 }), fc.integer({ min: 1, max: 5 })),
        fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1000, max: 50000 })),
      ),
      fc.constantFrom<ReduceAxis>("all", "rows", "cols"),
      seedArb,
      async ([rows, cols], axis, seed) => {
        const x = f32Values(new Rng(seed), rows * cols);
        const X = both(x);
        const attrs = { rows, cols, axis };
        const ref = await readCpu(cpu.reduceSum(X[0], attrs));
        const terms = axis === "all" ? rows * cols : axis === "rows" ? rows : cols;
        // Sums of `terms` values: S = √terms·max|x|.
        const s = Math.sqrt(terms) * maxAbs(x);
        check(
          await readGpu(gpuBackend!.reduceSum(X[1], attrs)),
          ref,
          () => s,
          `sum ${axis} ${rows}x${cols}`,
        );
        releaseAll(X);
      },
    ),
    { numRuns: RUNS },
  );
});

gpuTest("sumSquares matches the reference for any list of storages", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          fc.constantFrom(0, 1, 3, 4, 2047, 2048, 2049),
          fc.integer({ min: 0, max: 30000 }),
        ),
        { maxLength: 6 },
      ),
      seedArb,
      async (sizes, seed) => {
        const rng = new Rng(seed);
        const data = sizes.map((n) => f32Values(rng, n));
        const X = data.map((d) => both(d));
        const attrs = { sizes };
        const ref = await readCpu(cpu.sumSquares(X.map((x) => x[0]), attrs));
        // A sum of N squares bounded by max x²: S = √N·max x².
        const n = sizes.reduce((a, b) => a + b, 0);
        const s = Math.sqrt(n) * Math.max(0, ...data.map(maxAbs)) ** 2;
        const out = await readGpu(gpuBackend!.sumSquares(X.map((x) => x[1]), attrs));
        assert.equal(out.length, 1);
        check(out, ref, () => s, `sumSquares [${sizes}]`);
        releaseAll(...X);
      },
    ),
    { numRuns: RUNS },
  );
});

gpuTest("sumSquares: hand values, many partials, one pass per storage", async () => {
  const g = gpuBackend!, rt = g.runtime;
  // 3² + 4² + 12² + (−0.5)² = 169.25: every partial sum is exact in f32.
  const hand = [[3, 4], [], [12, -0.5]].map((d) => g.fromArray(d, "f32"));
  assert.deepEqual([...await readGpu(g.sumSquares(hand, { sizes: [2, 0, 2] }))], [169.25]);
  assert.deepEqual([...await readGpu(g.sumSquares([], { sizes: [] }))], [0]);
  assert.throws(() => g.sumSquares(hand, { sizes: [2, 1, 2] }), /xs\[1\] has 0 elements/);
  assert.throws(() => g.sumSquares(hand, { sizes: [2, 0] }), /3 storages but 2 sizes/);
  for (const h of hand) g.release(h);

  // Two storages past the partial cap (1024 workgroups each) and a small
  // one: 2049 partials, so the final reduction takes two passes. All ones
  // and twos: the sum, 4·(2²¹ + 7) + 2²¹ + 7 + 3, is exact in f32.
  const big = 2 ** 21 + 7;
  const xs = [
    g.full(big, 2, "f32"),
    g.full(big, 1, "f32"),
    g.fromArray([1, 1, 1], "f32"),
  ];
  assert.deepEqual(
    [...await readGpu(g.sumSquares(xs, { sizes: [big, big, 3] }))],
    [5 * big + 3],
  );
  for (const x of xs) g.release(x);

  // One dispatch per storage and one for the total (5 partials ≤ 2048).
  const sizes = [1000, 5000, 0, 3];
  const ys = sizes.map((n) => g.fromArray(f32Values(new Rng(n), n), "f32"));
  await g.sync();
  const before = rt.stats.dispatches;
  const out = g.sumSquares(ys, { sizes });
  assert.equal(rt.stats.dispatches - before, 3 + 1);
  g.release(out);
  for (const y of ys) g.release(y);
});

// ---- losses -------------------------------------------------------------------------------

gpuTest("losses and their gradients match the reference", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...LOSSES),
      fc.integer({ min: 1, max: 600 }),
      fc.integer({ min: 1, max: 40 }),
      fc.double({ min: -3, max: 3, noNaN: true }).map(Math.fround),
      seedArb,
      async (kind, rows, cols, dy, seed) => {
        const rng = new Rng(seed);
        const pred = f32Values(rng, rows * cols, -6, 6);
        const ce = kind === "cross_entropy";
        const target = ce
          ? Int32Array.from({ length: rows }, () => rng.int(cols))
          : kind === "bce_logits"
          ? Float32Array.from({ length: rows * cols }, () => rng.int(2))
          : f32Values(rng, rows * cols, -6, 6);
        const P = both(pred), T = both(target, ce ? "i32" : "f32"), DY = both([dy]);
        const attrs = { rows, cols };
        // The mean of non-negative terms, each a few roundings of its parts:
        // S = the mean magnitude of the parts that cancel inside a term.
        const nTerms = ce ? rows : rows * cols;
        let parts = 0;
        for (let i = 0; i < nTerms; i++) {
          if (ce) parts += Math.log(cols) + 2 * maxAbs(pred.subarray(i * cols, i * cols + cols));
          else parts += Math.abs(pred[i]) + Math.abs(target[i]) * (Math.abs(pred[i]) + 1) + 1;
        }
        const lossScale = (kind === "mse" ? 2 * maxAbs(pred) + 6 : 1) * parts / nTerms;
        const ref = await readCpu(cpu.loss(kind, P[0], T[0], attrs));
        check(await readGpu(gpuBackend!.loss(kind, P[1], T[1], attrs)), ref, () => lossScale, kind);

        const gref = await readCpu(cpu.lossGrad(kind, P[0], T[0], DY[0], attrs));
        // Gradient elements: (σ(x) − t), 2(x − t), sign(x − t) over n, or
        // (softmax − onehot) over rows, times dy: S = |dy|·(|parts|)/count.
        const gscale = (i: number) => {
          const t = ce ? 1 : Math.abs(target[i]);
          const part = kind === "mse" ? 2 * (Math.abs(pred[i]) + t) : 1 + t;
          return Math.abs(dy) * part / nTerms;
        };
        check(
          await readGpu(gpuBackend!.lossGrad(kind, P[1], T[1], DY[1], attrs)),
          gref,
          gscale,
          `${kind} gradient`,
        );
        releaseAll(P, T, DY);
      },
    ),
    { numRuns: RUNS },
  );
});

// ---- optimizers ---------------------------------------------------------------------------

gpuTest("optimizer steps match the reference over several steps", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<OptimizerKind>("sgd", "adam", "adamw"),
      fc.integer({ min: 1, max: 3000 }),
      fc.constantFrom(0, 0.9),
      fc.boolean(),
      fc.constantFrom(0, 0.01),
      fc.constantFrom(0, 0.5, 100),
      seedArb,
      async (kind, n, momentum, nesterov, weightDecay, maxNorm, seed) => {
        const rng = new Rng(seed);
        const p0 = f32Values(rng, n);
        const P = both(p0), S1 = both(new Float32Array(n)), S2 = both(new Float32Array(n));
        const base = {
          kind,
          lr: 0.05,
          momentum,
          nesterov,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay,
        };
        let gmax = 0;
        for (let step = 1; step <= 3; step++) {
          const g = f32Values(rng, n, -1, 1);
          gmax = Math.max(gmax, maxAbs(g));
          let normSq = 0;
          for (const v of g) normSq += v * v;
          const G = both(g), NS = both([Math.fround(normSq)]);
          const attrs = { ...base, step, n, maxNorm };
          cpu.optimizerStep(P[0], G[0], S1[0], S2[0], maxNorm > 0 ? NS[0] : null, attrs);
          gpuBackend!.optimizerStep(P[1], G[1], S1[1], S2[1], maxNorm > 0 ? NS[1] : null, attrs);
          releaseAll(G, NS);
        }
        const what =
          `${kind} momentum ${momentum} nesterov ${nesterov} wd ${weightDecay} clip ${maxNorm}`;
        // Each element is built from a handful of terms of the size of the
        // storage's own values (the parameter, the gradients, their squares).
        const pmax = maxAbs(p0) + 1;
        check(await gpuBackend!.read(P[1]), await cpu.read(P[0]), () => pmax, `${what}: param`);
        if (kind !== "sgd" || momentum > 0) {
          const s1 = gmax + weightDecay * pmax;
          check(await gpuBackend!.read(S1[1]), await cpu.read(S1[0]), () => s1, `${what}: state1`);
        }
        if (kind !== "sgd") {
          const s2 = (gmax + weightDecay * pmax) ** 2;
          check(await gpuBackend!.read(S2[1]), await cpu.read(S2[0]), () => s2, `${what}: state2`);
        }
        releaseAll(P, S1, S2);
      },
    ),
    { numRuns: RUNS },
  );
});

gpuTest("clipGradNorm: one pass per gradient and one reduction, the CPU's value", async () => {
  const g = gpuBackend!, rt = g.runtime;
  const big = f32Values(new Rng(3), 5000);
  const grads = [[3, 0, 4], [0, 12], null, big];
  const shapes = [[3], [1, 2], [1], [50, 100]];
  const normSq: number[] = [];
  for (const backend of [cpu, g]) {
    const ps = shapes.map((shape, i) => {
      const p = zeros(shape, { backend, requiresGrad: true }).keep();
      if (grads[i]) p.grad = tensor(grads[i]!, shape, { backend }).keep();
      return p;
    });
    await backend.sync();
    const before = rt.stats.dispatches;
    const clip = clipGradNorm(ps, 1);
    // 1 + 1 + 3 partials (5000 / 2048 per workgroup): 3 passes + 1 total.
    if (backend === g) assert.equal(rt.stats.dispatches - before, 3 + 1);
    normSq.push(await clip.normSq.item());
    clip.dispose();
    for (const p of ps) p.dispose();
  }
  let want = 3 * 3 + 4 * 4 + 12 * 12;
  for (const v of big) want += v * v;
  // A sum of 5005 squares bounded by 144: S = √5005·144.
  check([normSq[0]], [want], () => 0, "cpu normSq");
  check([normSq[1]], [want], () => Math.sqrt(5005) * 144, "gpu normSq");
});

// ---- casts ------------------------------------------------------------------------------

Deno.test({
  name: "webgpu dense: f32 <-> f16 casts round like the reference",
  ignore: noGpu || !gpuBackend?.supportsF16,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4000 }), seedArb, async (n, seed) => {
        const rng = new Rng(seed);
        // Normal halves, subnormals (|x| < 2^-14) and values at rounding ties.
        const x = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          const r = rng.int(3);
          x[i] = r === 0
            ? (rng.next() - 0.5) * 2 ** (rng.int(30) - 14)
            : r === 1
            ? (rng.next() - 0.5) * 2 ** -13
            : (1 + (rng.int(1024) + 0.5) / 1024) * 2 ** (rng.int(20) - 10);
        }
        const X = both(x);
        const h = [cpu.cast(X[0], "f16"), gpuBackend!.cast(X[1], "f16")];
        check(await gpuBackend!.read(h[1]), await cpu.read(h[0]), null, "f32 -> f16");
        const expect = Array.from(x, roundF16);
        const back = await readGpu(gpuBackend!.cast(h[1], "f32"));
        check(back, expect, null, "f16 -> f32");
        cpu.release(h[0]);
        gpuBackend!.release(h[1]);
        releaseAll(X);
      }),
      { numRuns: 15 },
    );
  },
});
