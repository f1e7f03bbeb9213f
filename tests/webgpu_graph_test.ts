/**
 * The WebGPU graph kernels (gather, sliceCols, concatCols, segment
 * reductions, segment softmax, layer norm) against the CPU float64 reference,
 * on shapes, values and segment layouts drawn by fast-check: kernel by kernel
 * at the `Backend` level, then gradients through the tensor API.
 *
 * Inputs are generated already rounded to f32, so both backends see the same
 * numbers and the only differences are the GPU's f32 arithmetic.
 *
 * Tolerance. An element passes when `|gpu − ref| ≤ 1e-4·|ref| + floor`. The
 * floor is a forward error bound proportional to the accumulated magnitude
 * `M` (the sum of the absolute values of the terms that make up the
 * element): recursive f32 summation of `n` terms is within `γ(n)·M` of the
 * exact sum with `γ(n) ≈ n·u`, `u = 2⁻²⁴` (Higham, Accuracy and Stability of
 * Numerical Algorithms, §4.2), and each further rounding step (a product, a
 * division, a square root) adds `u` relative. Each kernel's floor below is
 * `(n + c)·u·M` with `c` counting those extra steps (and the WGSL `exp`
 * accuracy of `3 + 2|x|` ULP where softmax is involved). A relative test
 * alone would be wrong wherever cancellation makes an element small against
 * its terms; the floor is never a fudge factor. Copies and selections
 * (gather, slices, concat, max, its gradient) must match exactly, and so must
 * argmax, ties included (ties resolve to the first row on both backends, and
 * the f32-exact inputs tie identically on both).
 */

import fc from "fast-check";
import type { SegmentReduce, Storage } from "../core/backend.ts";
import { cpuBackend } from "../core/cpu/mod.ts";
import { Index, Segments } from "../core/index.ts";
import * as ops from "../core/ops.ts";
import { Rng } from "../core/random.ts";
import { forceRowLayout } from "../core/webgpu/kernels_norm.ts";
import { gpuBackend, noGpu } from "./gpu_env.ts";
import { gradsBoth } from "./dense_util.ts";

const U = 2 ** -24;
const RTOL = 1e-4;
const RUNS = 20;

const cpu = cpuBackend();

// ---- helpers ----------------------------------------------------------------------------

/** Uniform f32-exact values in [lo, hi). */
function f32Values(rng: Rng, n: number, lo = -4, hi = 4): Float32Array {
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = lo + (hi - lo) * rng.next();
  return d;
}

/** Distinct f32-exact values (a shuffled arithmetic sequence): no ties anywhere. */
function distinctValues(rng: Rng, n: number): Float32Array {
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = (i - n / 2) / 8;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [d[i], d[j]] = [d[j], d[i]];
  }
  return d;
}

/** Small integers: ties everywhere. */
function tiedValues(rng: Rng, n: number): Float32Array {
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.int(5) - 2;
  return d;
}

async function readCpu(s: Storage): Promise<Float64Array | Int32Array> {
  const d = await cpu.read(s) as Float64Array | Int32Array;
  cpu.release(s);
  return d;
}

async function readGpu(s: Storage): Promise<Float32Array | Int32Array> {
  const g = gpuBackend!;
  const d = await g.read(s) as Float32Array | Int32Array;
  g.release(s);
  return d;
}

/** Uploads the same data to both backends. */
function both(data: ArrayLike<number>, dtype: "f32" | "i32" = "f32"): [Storage, Storage] {
  return [cpu.fromArray(data, dtype), gpuBackend!.fromArray(data, dtype)];
}

function releaseAll(...pairs: [Storage, Storage][]): void {
  for (const [c, g] of pairs) {
    cpu.release(c);
    gpuBackend!.release(g);
  }
}

/**
 * Checks `|actual − expected| ≤ RTOL·|expected| + floor(i)`; `floor` null
 * means exact (after rounding the reference to f32).
 */
function check(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  floor: ((i: number) => number) | null,
  what: string,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: ${actual.length} values, expected ${expected.length}`);
  }
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const ok = floor === null
      ? a === Math.fround(e)
      : Math.abs(a - e) <= RTOL * Math.abs(e) + floor(i);
    if (!ok) {
      throw new Error(
        `${what}[${i}] = ${a}, expected ${e}` +
          (floor ? ` (|diff| ${Math.abs(a - e)} > ${RTOL * Math.abs(e) + floor(i)})` : " exactly"),
      );
    }
  }
}

// ---- generators -------------------------------------------------------------------------

/** Column counts: narrow, multiples of 4 (vec4 kernels) and odd ones (scalar kernels). */
const colsArb = fc.oneof(
  fc.integer({ min: 1, max: 7 }),
  fc.constantFrom(4, 8, 12, 16, 36, 128),
  fc.integer({ min: 9, max: 70 }),
);

/** Segment sizes: mixed with empties, all single rows, one giant segment, skewed. */
const layoutArb: fc.Arbitrary<number[]> = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 40 }),
  fc.integer({ min: 1, max: 60 }).map((n) => new Array<number>(n).fill(1)),
  fc.tuple(
    fc.integer({ min: 0, max: 3 }),
    fc.integer({ min: 200, max: 2000 }),
    fc.integer({ min: 0, max: 3 }),
  ).map(([a, n, b]) => [...new Array<number>(a).fill(0), n, ...new Array<number>(b).fill(0)]),
  fc.tuple(
    fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 20 }),
    fc.integer({ min: 100, max: 1000 }),
  ).map(([s, g]) => [...s, g, ...s.toReversed()]),
);

function offsetsOf(sizes: readonly number[], start = 0): Int32Array {
  const o = new Int32Array(sizes.length + 1);
  o[0] = start;
  sizes.forEach((n, i) => o[i + 1] = o[i] + n);
  return o;
}

const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });

const gpuTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `webgpu graph: ${name}`, ignore: noGpu, fn });

// ---- indexing ---------------------------------------------------------------------------

gpuTest("gather matches the reference exactly (f32 and i32)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 50 }),
      colsArb,
      fc.integer({ min: 0, max: 120 }),
      seedArb,
      async (srcRows, cols, n, seed) => {
        const rng = new Rng(seed);
        const x = f32Values(rng, srcRows * cols);
        const idx = Int32Array.from({ length: n }, () => rng.int(srcRows));
        const X = both(x), I = both(idx, "i32");
        const attrs = { srcRows, cols };
        const ref = await readCpu(cpu.gather(X[0], I[0], attrs));
        check(await readGpu(gpuBackend!.gather(X[1], I[1], attrs)), ref, null, "gather");
        // i32 storages move bit for bit too.
        const xi = Int32Array.from(x, (v) => Math.round(v * 1e6));
        const XI = gpuBackend!.fromArray(xi, "i32");
        const gi = await readGpu(gpuBackend!.gather(XI, I[1], attrs));
        gpuBackend!.release(XI);
        check(
          gi,
          Array.from(idx).flatMap((r) => Array.from(xi.subarray(r * cols, r * cols + cols))),
          null,
          "gather i32",
        );
        releaseAll(X, I);
      },
    ),
    { numRuns: RUNS },
  );
});

gpuTest("sliceCols and concatCols match the reference exactly", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 40 }),
      fc.array(fc.integer({ min: 0, max: 13 }), { minLength: 1, maxLength: 4 }),
      seedArb,
      async (rows, widths, seed) => {
        const rng = new Rng(seed);
        const parts = widths.map((w) => both(f32Values(rng, rows * w)));
        const attrs = { rows, cols: widths };
        const ref = await readCpu(cpu.concatCols(parts.map((p) => p[0]), attrs));
        const out = await readGpu(gpuBackend!.concatCols(parts.map((p) => p[1]), attrs));
        check(out, ref, null, "concatCols");
        const total = widths.reduce((a, b) => a + b, 0);
        const [X] = [both(ref)];
        for (let k = 0; k < 3; k++) {
          const start = rng.int(total + 1), len = rng.int(total - start + 1);
          const a = { rows, cols: total, start, len };
          const r = await readCpu(cpu.sliceCols(X[0], a));
          check(
            await readGpu(gpuBackend!.sliceCols(X[1], a)),
            r,
            null,
            `sliceCols ${start}+${len}`,
          );
        }
        releaseAll(X, ...parts);
      },
    ),
    { numRuns: RUNS },
  );
});

// ---- segments ---------------------------------------------------------------------------

gpuTest("segmentReduce sum/mean/max and argmax match the reference", async () => {
  await fc.assert(
    fc.asyncProperty(
      layoutArb,
      colsArb,
      fc.constantFrom<SegmentReduce>("sum", "mean", "max"),
      fc.constantFrom("uniform", "distinct", "tied"),
      seedArb,
      async (sizes, cols, reduce, values, seed) => {
        const rng = new Rng(seed);
        const off = offsetsOf(sizes), rows = off[sizes.length], segments = sizes.length;
        const n = rows * cols;
        const x = values === "uniform"
          ? f32Values(rng, n)
          : values === "distinct"
          ? distinctValues(rng, n)
          : tiedValues(rng, n);
        const X = both(x), O = both(off, "i32");
        const attrs = { segments, cols, reduce };
        const r = cpu.segmentReduce(X[0], O[0], attrs);
        const g = gpuBackend!.segmentReduce(X[1], O[1], attrs);
        const ref = await readCpu(r.out);
        const out = await readGpu(g.out);
        if (reduce === "max") {
          check(out, ref, null, "segment max");
          check(await readGpu(g.argmax!), await readCpu(r.argmax!), null, "argmax");
        } else {
          // M = Σ|x| over the segment's column, n terms: (n − 1)·u·M for the sum,
          // one more rounding for the mean's division (and M/n for its scale).
          const floor = (i: number) => {
            const s = Math.floor(i / cols), c = i % cols, len = sizes[s];
            let m = 0;
            for (let row = off[s]; row < off[s + 1]; row++) m += Math.abs(x[row * cols + c]);
            return reduce === "mean" ? (len + 1) * U * m / Math.max(1, len) : len * U * m;
          };
          check(out, ref, floor, `segment ${reduce}`);
        }
        releaseAll(X, O);
      },
    ),
    { numRuns: 25 },
  );
});

gpuTest("segmentMaxGrad matches the reference exactly", async () => {
  await fc.assert(
    fc.asyncProperty(layoutArb, colsArb, seedArb, async (sizes, cols, seed) => {
      const rng = new Rng(seed);
      const off = offsetsOf(sizes), rows = off[sizes.length], segments = sizes.length;
      const X = both(distinctValues(rng, rows * cols)), O = both(off, "i32");
      const r = cpu.segmentReduce(X[0], O[0], { segments, cols, reduce: "max" });
      cpu.release(r.out);
      const argmax = await readCpu(r.argmax!);
      const rowSeg = new Int32Array(rows);
      sizes.forEach((_, s) => rowSeg.fill(s, off[s], off[s + 1]));
      const A = both(argmax, "i32"), RS = both(rowSeg, "i32");
      const DY = both(f32Values(rng, segments * cols));
      const attrs = { rows, cols };
      const ref = await readCpu(cpu.segmentMaxGrad(DY[0], A[0], RS[0], attrs));
      const out = await readGpu(gpuBackend!.segmentMaxGrad(DY[1], A[1], RS[1], attrs));
      check(out, ref, null, "segmentMaxGrad");
      releaseAll(X, O, A, RS, DY);
    }),
    { numRuns: RUNS },
  );
});

/** Segment of each row (-1 outside every segment). */
function rowSegments(off: Int32Array, rows: number): Int32Array {
  const seg = new Int32Array(rows).fill(-1);
  for (let s = 0; s + 1 < off.length; s++) seg.fill(s, off[s], off[s + 1]);
  return seg;
}

/**
 * Relative error bound of a segment softmax output over a segment of `n`
 * rows, inputs in [-4, 4] (so |x − max| ≤ 8): WGSL's exp is within
 * 3 + 2·8 = 19 ULP ≤ 38u relative, once in the numerator and n times in the
 * denominator's terms, plus n − 1 additions and the division: (n + 77)·u.
 */
const softmaxRel = (n: number) => (n + 77) * U;

gpuTest("segmentSoftmax and segmentSoftmaxGrad match the reference", async () => {
  await fc.assert(
    fc.asyncProperty(
      layoutArb,
      colsArb,
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 3 }),
      seedArb,
      async (sizes, cols, lead, trail, seed) => {
        const rng = new Rng(seed);
        // Rows before the first and after the last segment belong to none: 0 on both.
        const off = offsetsOf(sizes, lead), rows = off[sizes.length] + trail;
        const segments = sizes.length;
        const seg = rowSegments(off, rows);
        const X = both(f32Values(rng, rows * cols)), O = both(off, "i32");
        const attrs = { segments, rows, cols };
        const y = await readCpu(cpu.segmentSoftmax(X[0], O[0], attrs));
        const yg = await readGpu(gpuBackend!.segmentSoftmax(X[1], O[1], attrs));
        // Outputs are positive sums of positive terms: relative error only.
        check(
          yg,
          y,
          (i) =>
            softmaxRel(seg[Math.floor(i / cols)] < 0 ? 0 : sizes[seg[Math.floor(i / cols)]]) * y[i],
          "segmentSoftmax",
        );

        // Gradient kernel on the same (f32-rounded) y: dx = y ⊙ (dy − Σ dy⊙y);
        // M = y·(|dy| + Σ|dy⊙y|), n terms in the dot, three more roundings.
        const yf = Float32Array.from(y);
        const dy = f32Values(rng, rows * cols);
        const Y = both(yf), DY = both(dy);
        const dx = await readCpu(cpu.segmentSoftmaxGrad(Y[0], DY[0], O[0], attrs));
        const dxg = await readGpu(gpuBackend!.segmentSoftmaxGrad(Y[1], DY[1], O[1], attrs));
        const floor = (i: number) => {
          const r = Math.floor(i / cols), c = i % cols, s = seg[r];
          if (s < 0) return 0;
          let dot = 0;
          for (let q = off[s]; q < off[s + 1]; q++) {
            dot += Math.abs(dy[q * cols + c] * yf[q * cols + c]);
          }
          return (sizes[s] + 3) * U * yf[i] * (Math.abs(dy[i]) + dot);
        };
        check(dxg, dx, floor, "segmentSoftmaxGrad");
        releaseAll(X, O, Y, DY);
      },
    ),
    { numRuns: RUNS },
  );
});

gpuTest("segment kernels fold dispatches past 65535 workgroups", async () => {
  // 2^22 + 4096 single-row segments of one column: 65600 workgroups of 64 threads.
  const segments = 2 ** 22 + 4096;
  const x = new Float32Array(segments);
  for (let i = 0; i < segments; i++) x[i] = (i % 1000) - 500;
  const off = Int32Array.from({ length: segments + 1 }, (_, i) => i);
  const g = gpuBackend!;
  const X = g.fromArray(x, "f32"), O = g.fromArray(off, "i32");
  const r = g.segmentReduce(X, O, { segments, cols: 1, reduce: "max" });
  check(await readGpu(r.out), x, null, "single-row segment max");
  check(await readGpu(r.argmax!), off.subarray(0, segments), null, "single-row argmax");
  g.release(X);
  g.release(O);
});

// ---- layer norm ---------------------------------------------------------------------------

gpuTest("layerNorm and layerNormGrad match the reference (both row layouts)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 300 }),
      fc.oneof(colsArb, fc.constantFrom(256, 1000, 1024)),
      fc.double({ min: 1e-6, max: 1e-2, noNaN: true }),
      seedArb,
      async (rows, cols, eps, seed) => {
        const rng = new Rng(seed);
        const shift = rng.next() < 0.5 ? 0 : 2; // rows whose mean is not 0 as well
        const x = f32Values(rng, rows * cols, -4 + shift, 4 + shift);
        const gamma = f32Values(rng, cols, -2, 2), beta = f32Values(rng, cols, -1, 1);
        const dy = f32Values(rng, rows * cols);
        const X = both(x), G = both(gamma), B = both(beta), DY = both(dy);
        const attrs = { rows, cols, eps };
        const r = cpu.layerNorm(X[0], G[0], B[0], attrs);
        const [y, mean, rstd] = [await readCpu(r.y), await readCpu(r.mean), await readCpu(r.rstd)];
        // The gradient kernel gets the same f32 mean and rstd on both backends.
        const mf = Float32Array.from(mean), rf = Float32Array.from(rstd);
        const M = both(mf), R = both(rf);
        const rg = cpu.layerNormGrad(X[0], G[0], M[0], R[0], DY[0], { rows, cols });
        const [dx, dgamma, dbeta] = [
          await readCpu(rg.dx),
          await readCpu(rg.dgamma),
          await readCpu(rg.dbeta),
        ];

        const absMean = new Float64Array(rows);
        for (let i = 0; i < rows * cols; i++) {
          absMean[Math.floor(i / cols)] += Math.abs(x[i]) / cols;
        }
        // y = (x − mean)·rstd·γ + β with M = |γ|·rstd·(|x| + mean|x|) + |β|:
        // the mean's error, rstd's relative error and 4 roundings, doubled for
        // the products of error terms (2·(n + 8)·u·M).
        const floorY = (i: number) => {
          const rr = Math.floor(i / cols), c = i % cols;
          const m = Math.abs(gamma[c]) * rstd[rr] * (Math.abs(x[i]) + absMean[rr]) +
            Math.abs(beta[c]);
          return 2 * (cols + 8) * U * m;
        };
        const xhatAbs = (i: number) => {
          const rr = Math.floor(i / cols);
          return (Math.abs(x[i]) + Math.abs(mf[rr])) * rf[rr];
        };
        // dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·γ: M = rstd·(|g| +
        // mean|g| + |x̂|·mean|g·x̂|) with |x̂| taken as (|x| + |mean|)·rstd (the
        // magnitude x̂ is computed from); n terms per mean, 6 more roundings.
        const mg = new Float64Array(rows), mgx = new Float64Array(rows);
        const sg = new Float64Array(cols), sb = new Float64Array(cols);
        for (let i = 0; i < rows * cols; i++) {
          const rr = Math.floor(i / cols), gv = Math.abs(dy[i] * gamma[i % cols]);
          mg[rr] += gv / cols;
          mgx[rr] += gv * xhatAbs(i) / cols;
          sg[i % cols] += Math.abs(dy[i]) * xhatAbs(i);
          sb[i % cols] += Math.abs(dy[i]);
        }
        const floorDx = (i: number) => {
          const rr = Math.floor(i / cols);
          const m = rf[rr] * (Math.abs(dy[i] * gamma[i % cols]) + mg[rr] + xhatAbs(i) * mgx[rr]);
          return 2 * (cols + 6) * U * m;
        };

        for (const layout of ["gpu", "software"] as const) {
          forceRowLayout(layout);
          try {
            const g = gpuBackend!.layerNorm(X[1], G[1], B[1], attrs);
            const [yg, meang, rstdg] = [
              await readGpu(g.y),
              await readGpu(g.mean),
              await readGpu(g.rstd),
            ];
            // mean: n terms and a division, M = mean|x|. rstd: relative only —
            // the centred sum of squares is exact up to (n + 3)·u relative (an
            // error δ in the mean changes it by δ² only), halved by the square
            // root, plus the sqrt and the division: within RTOL for these widths.
            check(meang, mean, (i) => (cols + 1) * U * absMean[i], `${layout}: layerNorm mean`);
            check(rstdg, rstd, () => 0, `${layout}: layerNorm rstd`);
            check(yg, y, floorY, `${layout}: layerNorm y`);

            const gg = gpuBackend!.layerNormGrad(X[1], G[1], M[1], R[1], DY[1], { rows, cols });
            const [dxg, dgammag, dbetag] = [
              await readGpu(gg.dx),
              await readGpu(gg.dgamma),
              await readGpu(gg.dbeta),
            ];
            check(dxg, dx, floorDx, `${layout}: layerNormGrad dx`);
            // dgamma = Σ_rows dy·x̂, dbeta = Σ_rows dy: rows terms, 3 more
            // roundings in x̂·dy.
            check(dgammag, dgamma, (c) => (rows + 3) * U * sg[c], `${layout}: dgamma`);
            check(dbetag, dbeta, (c) => rows * U * sb[c], `${layout}: dbeta`);
          } finally {
            forceRowLayout(null);
          }
        }
        releaseAll(X, G, B, M, R, DY);
      },
    ),
    { numRuns: RUNS },
  );
});

// ---- gradients through the tensor API ---------------------------------------------------------

gpuTest("gradients of gather, sliceCols and concatCols match the CPU", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 30 }),
      colsArb,
      fc.integer({ min: 0, max: 80 }),
      seedArb,
      async (rows, cols, n, seed) => {
        const rng = new Rng(seed);
        const ids = Int32Array.from({ length: n }, () => rng.int(rows));
        const index = new Index(ids, rows);
        const x = f32Values(rng, rows * cols), y = f32Values(rng, rows * 3);
        const start = rng.int(cols + 3), len = rng.int(cols + 3 - start) + 1;
        const r = await gradsBoth(
          ([a, b]) => ops.sliceCols(ops.concatCols([a, b]), start, len),
          [{ data: x, shape: [rows, cols] }, { data: y, shape: [rows, 3] }],
          seed,
        );
        check(r.gpu[0], r.cpu[0], null, "d slice(concat) / dx");
        check(r.gpu[1], r.cpu[1], null, "d slice(concat) / dy");
        // Gather: dx[j] = Σ_{i: idx[i] = j} w[i]: count(j) terms of magnitude Σ|w|.
        const gr = await gradsBoth(([a]) => ops.gather(a, index), [{
          data: x,
          shape: [rows, cols],
        }], seed);
        const counts = new Int32Array(rows), mags = new Float64Array(rows * cols);
        ids.forEach((j, i) => {
          counts[j]++;
          for (let c = 0; c < cols; c++) mags[j * cols + c] += Math.abs(gr.w[i * cols + c]);
        });
        check(
          gr.gpu[0],
          gr.cpu[0],
          (i) => counts[Math.floor(i / cols)] * U * mags[i],
          "d gather / dx",
        );
        index.dispose();
      },
    ),
    { numRuns: 15 },
  );
});

gpuTest("gradients of segmentSum/Mean/Max match the CPU", async () => {
  await fc.assert(
    fc.asyncProperty(
      layoutArb,
      colsArb,
      fc.constantFrom<SegmentReduce>("sum", "mean", "max"),
      seedArb,
      async (sizes, cols, reduce, seed) => {
        const rng = new Rng(seed);
        const segs = new Segments(offsetsOf(sizes));
        const x = distinctValues(rng, segs.rows * cols);
        const r = await gradsBoth(
          ([a]) => ops.segmentReduce(a, segs, reduce),
          [{ data: x, shape: [segs.rows, cols] }],
          seed,
        );
        // sum and max move w (a copy, a selection); mean multiplies it by the
        // f32 1/count on both backends: one rounding, within RTOL.
        check(r.gpu[0], r.cpu[0], reduce === "mean" ? () => 0 : null, `d segment ${reduce} / dx`);
        segs.dispose();
      },
    ),
    { numRuns: RUNS },
  );
});

gpuTest("gradient of segmentSoftmax matches the CPU", async () => {
  await fc.assert(
    fc.asyncProperty(layoutArb, colsArb, seedArb, async (sizes, cols, seed) => {
      const rng = new Rng(seed);
      const segs = new Segments(offsetsOf(sizes));
      const rows = segs.rows, off = segs.offsets;
      const x = f32Values(rng, rows * cols);
      const r = await gradsBoth(([a]) => ops.segmentSoftmax(a, segs), [{
        data: x,
        shape: [rows, cols],
      }], seed);
      // dx = y ⊙ (w − Σ w⊙y), M = y·(|w| + Σ|w|·y): the kernel's (n + 3)·u·M
      // plus the forward y's relative error softmaxRel(n) carried through M.
      const y = new Float64Array(rows * cols), dot = new Float64Array(sizes.length * cols);
      sizes.forEach((_, s) => {
        for (let c = 0; c < cols; c++) {
          let m = -Infinity, z = 0;
          for (let q = off[s]; q < off[s + 1]; q++) m = Math.max(m, x[q * cols + c]);
          for (let q = off[s]; q < off[s + 1]; q++) z += Math.exp(x[q * cols + c] - m);
          for (let q = off[s]; q < off[s + 1]; q++) {
            y[q * cols + c] = Math.exp(x[q * cols + c] - m) / z;
            dot[s * cols + c] += Math.abs(r.w[q * cols + c]) * y[q * cols + c];
          }
        }
      });
      const seg = rowSegments(off, rows);
      check(r.gpu[0], r.cpu[0], (i) => {
        const s = seg[Math.floor(i / cols)], n = sizes[s];
        const m = y[i] * (Math.abs(r.w[i]) + dot[s * cols + (i % cols)]);
        return ((n + 3) * U + softmaxRel(n)) * m;
      }, "d segmentSoftmax / dx");
      segs.dispose();
    }),
    { numRuns: RUNS },
  );
});

gpuTest("gradients of layerNorm match the CPU", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 200 }),
      colsArb,
      seedArb,
      async (rows, cols, seed) => {
        const rng = new Rng(seed);
        const x = f32Values(rng, rows * cols);
        const gamma = f32Values(rng, cols, -2, 2), beta = f32Values(rng, cols, -1, 1);
        const eps = 1e-5;
        const r = await gradsBoth(
          ([a, g, b]) => ops.layerNorm(a, g, b, eps),
          [
            { data: x, shape: [rows, cols] },
            { data: gamma, shape: [cols] },
            { data: beta, shape: [cols] },
          ],
          seed,
        );
        const w = r.w;
        // Magnitudes as in the kernel test, with x̂ computed on the GPU from the
        // GPU's mean and rstd: their errors ((n + 8)·u relative to the magnitude
        // x̂ is computed from) add n + 8 to each bound's count of roundings.
        const mean = new Float64Array(rows), rstd = new Float64Array(rows);
        const absMean = new Float64Array(rows);
        for (let rr = 0; rr < rows; rr++) {
          let s = 0, q = 0, a = 0;
          for (let c = 0; c < cols; c++) s += x[rr * cols + c];
          mean[rr] = s / cols;
          for (let c = 0; c < cols; c++) {
            q += (x[rr * cols + c] - mean[rr]) ** 2;
            a += Math.abs(x[rr * cols + c]);
          }
          rstd[rr] = 1 / Math.sqrt(q / cols + eps);
          absMean[rr] = a / cols;
        }
        const xhatAbs = (i: number) => {
          const rr = Math.floor(i / cols);
          return (Math.abs(x[i]) + absMean[rr]) * rstd[rr];
        };
        const mg = new Float64Array(rows), mgx = new Float64Array(rows);
        const sg = new Float64Array(cols), sb = new Float64Array(cols);
        for (let i = 0; i < rows * cols; i++) {
          const rr = Math.floor(i / cols), c = i % cols, gv = Math.abs(w[i] * gamma[c]);
          mg[rr] += gv / cols;
          mgx[rr] += gv * xhatAbs(i) / cols;
          sg[c] += Math.abs(w[i]) * xhatAbs(i);
          sb[c] += Math.abs(w[i]);
        }
        check(r.gpu[0], r.cpu[0], (i) => {
          const rr = Math.floor(i / cols);
          const m = rstd[rr] * (Math.abs(w[i] * gamma[i % cols]) + mg[rr] + xhatAbs(i) * mgx[rr]);
          return 2 * (2 * cols + 14) * U * m;
        }, "d layerNorm / dx");
        check(r.gpu[1], r.cpu[1], (c) => (rows + cols + 11) * U * sg[c], "d layerNorm / dgamma");
        check(r.gpu[2], r.cpu[2], (c) => rows * U * sb[c], "d layerNorm / dbeta");
      },
    ),
    { numRuns: RUNS },
  );
});
