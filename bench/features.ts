/**
 * `deno task bench features`: the feature store's read path on a 4 GiB file
 * of 256-byte rows (16M rows; `--quick`: 256 MiB), generated once under
 * out/bench/ with pseudo-random bytes and reused.
 *
 * Gathers (JSON lines, `metric` gather_single / gather_run64): random
 * single rows (rows/s) and random runs of 64 consecutive rows (MB/s), 4096
 * rows per gather call, cold and warm, in-process (`workers: 0`) and through
 * a `GatherPool` of 1 and 2 workers (queue depth = threads reading). Each
 * figure stands beside `plain`: a plain FFI `pread` loop over the same
 * offsets at the same queue depth in the same run (the same calls, split the
 * same way across as many threads, each read straight into its output slot;
 * no sort, no cache, no checksum), and `ratio` = reader / plain.
 *
 * Inputs: before each call, untimed, the call's offsets (plain) and its ids
 * (reader) are written into a buffer that each side reuses, as a loader's
 * ids come fresh from the sampler: neither side reads its input from memory
 * that the previous calls' data has evicted from the CPU caches (for runs,
 * the reader would otherwise read 4096 cold ids a call where the plain loop
 * reads 64 offsets that stay cached). Before each call, also untimed, some
 * short-lived garbage is allocated (`churn`), as a training loop allocates
 * between gathers, so that V8 frees the SharedArrayBuffers of past calls.
 *
 * Cold: one untimed pass of each side first (so that neither side's timed
 * passes include compiling its code), then, before each timed pass, the
 * reader's page cache is emptied and the OS page cache of the file is dropped
 * with `posix_fadvise(POSIX_FADV_DONTNEED)` (`dropped` says whether the OS
 * agreed); the mean of four rounds in alternating order (plain first, reader
 * first, reader first, plain first).
 * Warm: after one pass of the plain loop over the same offsets (the OS cache
 * then holds the pages), the reader's first pass is timed alone as
 * `first_touch` (it reads whole pages and verifies their checksums), three
 * more let its cache's admission settle, then `repeats` timed passes of both
 * sides interleaved call by call (each side's call timed alone: plain call
 * `i`, then reader call `(i + calls / 2) % calls`, so that the two never
 * read the same rows back to back; which side goes first alternates between
 * passes), so that both see the same load on a shared machine; the median
 * pass of each side is reported, and `pass_ratios` has reader / plain of
 * each pass. The reader's cache budget is `cacheBytes` (default 256 MiB, per
 * reader, so 16 times smaller than the file).
 *
 * Also: GPU upload throughput (GB/s of f32 data through `Backend.fromArray`,
 * WebGPU when an adapter exists), and the share of a synthetic training
 * step spent waiting on `BatchPipeline` (8192-node batches gathered from
 * this file, a matmul + gather + segment-mean step on the backend).
 *
 * @module
 */

import { FeatureReader } from "../store/features/reader.ts";
import { GatherPool } from "../store/features/gather_pool.ts";
import { openRawFile } from "../store/features/pread.ts";
import { writeTestStore } from "../store/features/reader_testing.ts";
import { emit, median } from "./report.ts";
import { plainLoop } from "./features_worker.ts";
import { benchLoaderWait, benchUpload } from "./features_gpu.ts";

/** Options of `benchFeatures`. */
export interface FeaturesBenchOptions {
  /** A 256 MiB file and fewer reads. */
  quick?: boolean;
  /** Page cache budget per reader (default 256 MiB). */
  cacheBytes?: number;
  /** Timed warm passes (default 7). */
  repeats?: number;
}

const ROW = 256;
const RUN = 64;
const PER_CALL = 4096; // rows per gather call
const TABLE = "rows";

/** The bench store (generated when missing or of another size). */
export async function featureBenchStore(quick: boolean): Promise<{ dir: string; rows: number }> {
  const bytes = quick ? 256 << 20 : 4 * 2 ** 30;
  const rows = bytes / ROW;
  const dir = `out/bench/features-${quick ? "256m" : "4g"}`;
  try {
    const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
    if (m.tables?.[TABLE]?.rows === rows) return { dir, rows };
  } catch { /* generate */ }
  const t0 = performance.now();
  await writeTestStore(dir, [{
    name: TABLE,
    rows,
    numWidth: ROW / 4,
    catWidth: 0,
    fill: "random",
  }]);
  const sec = (performance.now() - t0) / 1000;
  emit({ bench: "features", metric: "generate", value: bytes / sec / 1e6, unit: "MB/s", bytes });
  return { dir, rows };
}

/** One side of a comparison: runs calls and drops caches. */
interface Side {
  /** Writes call `i`'s input into the buffer the side reuses (untimed). */
  prepare(i: number): void;
  call(i: number): void | Promise<void>;
  drop(): boolean | Promise<boolean>;
  close(): void | Promise<void>;
}

/** Random starts; each call reads `PER_CALL` rows (single rows, or runs of RUN). */
function workload(rows: number, calls: number, run: number, seed: number) {
  let x = seed;
  const rnd = () => (x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0);
  const per = PER_CALL / run;
  const starts: Int32Array[] = [];
  for (let c = 0; c < calls; c++) {
    starts.push(Int32Array.from({ length: per }, () => rnd() % (rows - run + 1)));
  }
  return { starts, run };
}
type Workload = ReturnType<typeof workload>;

/** The ids of call `i` (its runs, in order) written into `into`. */
function idsOf(w: Workload, i: number, into: Int32Array): void {
  const s = w.starts[i], run = w.run;
  for (let k = 0; k < s.length; k++) for (let j = 0; j < run; j++) into[k * run + j] = s[k] + j;
}

function plainInProcess(path: string, w: Workload): Side {
  const file = openRawFile(path);
  const out = new Uint8Array(PER_CALL * ROW);
  const starts = new Int32Array(PER_CALL / w.run);
  return {
    prepare: (i) => starts.set(w.starts[i]),
    call: () => plainLoop(file, starts, w.run * ROW, ROW, out),
    drop: () => file.dropCache(),
    close: () => file.close(),
  };
}

async function plainWorkers(path: string, w: Workload, n: number): Promise<Side> {
  const workers = Array.from(
    { length: n },
    () => new Worker(new URL("./features_worker.ts", import.meta.url), { type: "module" }),
  );
  const ask = (wk: Worker, m: unknown) =>
    new Promise<unknown>((resolve, reject) => {
      wk.onmessage = (e) => e.data.error ? reject(new Error(e.data.error)) : resolve(e.data.value);
      wk.postMessage(m);
    });
  await Promise.all(workers.map((wk) => ask(wk, { path })));
  const s = new Int32Array(PER_CALL / w.run);
  return {
    prepare: (i) => s.set(w.starts[i]),
    async call() {
      const per = Math.ceil(s.length / n), bytes = w.run * ROW;
      const buffer = new SharedArrayBuffer(s.length * bytes);
      await Promise.all(workers.map((wk, k) =>
        ask(wk, {
          starts: s.subarray(k * per, (k + 1) * per),
          bytes,
          rowBytes: ROW,
          buffer,
          byteOffset: k * per * bytes,
        })
      ));
    },
    drop: async () =>
      (await Promise.all(workers.map((wk) => ask(wk, { drop: true })))).every(Boolean),
    close: () => workers.forEach((wk) => wk.terminate()),
  };
}

async function readerSide(dir: string, w: Workload, n: number, cacheBytes: number): Promise<Side> {
  const ids = new Int32Array(PER_CALL);
  if (n === 0) {
    const reader = await FeatureReader.open(dir, { cacheBytes });
    const out = new Uint8Array(PER_CALL * ROW);
    return {
      prepare: (i) => idsOf(w, i, ids),
      call: () => void reader.gather(TABLE, ids, out),
      drop: () => reader.dropCaches(),
      close: () => reader.close(),
    };
  }
  const pool = await GatherPool.create(dir, { workers: n, cacheBytes, minSplit: 1 });
  return {
    prepare: (i) => idsOf(w, i, ids),
    call: async () => void await pool.gather(TABLE, ids),
    drop: () => pool.dropCaches(),
    close: () => pool.close(),
  };
}

/**
 * Allocates short-lived garbage, untimed, before each call. Both sides
 * allocate a SharedArrayBuffer per call (the pool's API returns a new one);
 * in a process that does nothing else, V8 seldom collects, so every such
 * buffer stays mapped (RSS grew by gigabytes over a run), and on this
 * machine the memory pressure then slowed both sides alike, which hides the
 * reader's own costs by pulling the ratio towards 1. A training loop allocates plenty between gathers; this keeps the
 * young generation turning over the same way.
 */
function churn(): void {
  garbage = new Array<number>(1 << 16).fill(garbage.length & 1); // kept until the next call
}
let garbage: number[] = [];

/** Seconds of `calls` calls of `side` (each prepared untimed). */
async function pass(side: Side, calls: number): Promise<number> {
  let t = 0;
  for (let i = 0; i < calls; i++) {
    churn();
    side.prepare(i);
    const t0 = performance.now();
    await side.call(i);
    t += performance.now() - t0;
  }
  return t / 1000;
}

/**
 * One pass of each side, interleaved call by call: `a`'s call `i`, then
 * `b`'s call `(i + calls / 2) % calls`, each prepared untimed and timed
 * alone. Returns the seconds of each side.
 */
async function interleaved(a: Side, b: Side, calls: number): Promise<[number, number]> {
  let ta = 0, tb = 0;
  const half = calls >> 1;
  for (let i = 0; i < calls; i++) {
    churn();
    a.prepare(i);
    const t0 = performance.now();
    await a.call(i);
    const t1 = performance.now();
    churn();
    b.prepare((i + half) % calls);
    const t2 = performance.now();
    await b.call((i + half) % calls);
    ta += t1 - t0;
    tb += performance.now() - t2;
  }
  return [ta / 1000, tb / 1000];
}

/** Runs the feature store benchmarks, printing JSON lines. */
export async function benchFeatures(opts: FeaturesBenchOptions = {}): Promise<void> {
  const quick = opts.quick ?? false;
  const cacheBytes = opts.cacheBytes ?? 256 << 20;
  const repeats = opts.repeats ?? 7;
  const { dir, rows } = await featureBenchStore(quick);
  const path = `${dir}/${TABLE}.rows`;
  const ffi = openRawFile(path);
  const fileBytes = ffi.size;
  ffi.close();
  if (!ffi.ffi) console.error("features bench: FFI unavailable, the fallback reads are measured");
  const shapes = [
    { metric: "gather_single", run: 1, cold: quick ? 1 : 6, warm: quick ? 16 : 64 },
    { metric: "gather_run64", run: RUN, cold: quick ? 4 : 64, warm: quick ? 64 : 256 },
  ];
  for (const workers of [0, 1, 2]) {
    for (const [si, shape] of shapes.entries()) {
      const unit = shape.run === 1 ? "rows/s" : "MB/s";
      const rate = (calls: number, sec: number) =>
        shape.run === 1 ? calls * PER_CALL / sec : calls * PER_CALL * ROW / sec / 1e6;
      const common = {
        bench: "features",
        metric: shape.metric,
        unit,
        workers,
        queue_depth: Math.max(1, workers),
        row_bytes: ROW,
        file_bytes: fileBytes,
        cache_bytes: cacheBytes,
        ffi: ffi.ffi,
      };
      for (const temp of ["cold", "warm"] as const) {
        const calls = temp === "cold" ? shape.cold : shape.warm;
        const w = workload(
          rows,
          calls,
          shape.run,
          1000 * workers + 10 * si + (temp === "cold" ? 1 : 2),
        );
        const plain = workers === 0
          ? plainInProcess(path, w)
          : await plainWorkers(path, w, workers);
        const reader = await readerSide(dir, w, workers, cacheBytes);
        const sec: Record<"plain" | "reader", number[]> = { plain: [], reader: [] };
        let dropped = true, firstTouch = 0;
        try {
          if (temp === "cold") {
            await pass(plain, calls); // compiles each side's code (untimed)
            await pass(reader, calls);
            // Alternating order over the rounds, so that neither side always goes first.
            for (let round = 0; round < 4; round++) {
              for (const name of round % 3 === 0 ? ["plain", "reader"] : ["reader", "plain"]) {
                dropped = (await plain.drop()) && dropped;
                dropped = (await reader.drop()) && dropped;
                sec[name as "plain" | "reader"].push(
                  await pass(name === "plain" ? plain : reader, calls),
                );
              }
            }
          } else {
            await pass(plain, calls); // the OS cache now holds the pages
            firstTouch = await pass(reader, calls); // checksums verified on this pass
            for (let r = 0; r < 3; r++) await pass(reader, calls); // the cache settles
            for (let r = 0; r < repeats; r++) {
              const [p, q] = await interleaved(
                r % 2 ? reader : plain,
                r % 2 ? plain : reader,
                calls,
              );
              sec.plain.push(r % 2 ? q : p);
              sec.reader.push(r % 2 ? p : q);
            }
          }
        } finally {
          await plain.close();
          await reader.close();
        }
        const avg = (xs: number[]) =>
          temp === "cold" ? xs.reduce((a, b) => a + b) / xs.length : median(xs);
        const r = rate(calls, avg(sec.reader)), p = rate(calls, avg(sec.plain));
        emit({
          ...common,
          temp,
          value: r,
          plain: Number(p.toPrecision(4)),
          ratio: Number((r / p).toFixed(3)),
          rows_read: calls * PER_CALL,
          // Every timed pass, to show the spread on a shared machine.
          reader_passes: sec.reader.map((x) => Number(rate(calls, x).toPrecision(3))),
          plain_passes: sec.plain.map((x) => Number(rate(calls, x).toPrecision(3))),
          // Warm: reader / plain of each interleaved pass.
          ...(temp === "warm"
            ? { pass_ratios: sec.plain.map((x, k) => Number((x / sec.reader[k]).toFixed(3))) }
            : {}),
          ...(temp === "cold" ? { dropped } : {
            first_touch: Number(rate(calls, firstTouch).toPrecision(4)),
          }),
        });
      }
    }
  }
  await benchUpload(quick);
  await benchLoaderWait(dir, rows, quick, cacheBytes);
}
