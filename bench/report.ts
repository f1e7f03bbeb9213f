/**
 * Benchmark records: one JSON object per line on stdout, and timing helpers.
 *
 * @module
 */

/** One measured figure. Extra keys carry the parameters. */
export interface BenchRecord {
  /** Subsystem, e.g. "core". */
  bench: string;
  /** What was measured, e.g. "matmul". */
  metric: string;
  /** The figure. */
  value: number;
  /** Its unit, e.g. "GFLOP/s". */
  unit: string;
  /** Parameters and context. */
  [key: string]: unknown;
}

/** Prints a record as one JSON line. */
export function emit(r: BenchRecord): void {
  console.log(JSON.stringify({ ...r, value: Number(r.value.toPrecision(4)) }));
}

/** Median of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Median seconds per call of `fn` over `repeats` timed runs after `warmup`
 * runs. `fn` may be async (GPU work ends with one sync inside it).
 */
export async function timeIt(
  fn: () => unknown | Promise<unknown>,
  opts: { warmup?: number; repeats?: number } = {},
): Promise<number> {
  for (let i = 0; i < (opts.warmup ?? 1); i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < (opts.repeats ?? 5); i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

/**
 * Median seconds per call of `op` when calls are recorded back to back and
 * closed by one `sync`: the batch size is calibrated so that one batch runs
 * for at least `minSeconds`, so that Deno's ~10 ms per wait does not cap the
 * figure on a fast GPU.
 */
export async function timeBatched(
  op: () => void,
  sync: () => Promise<void>,
  opts: { minSeconds?: number; repeats?: number } = {},
): Promise<number> {
  const minSeconds = opts.minSeconds ?? 0.2;
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) op();
    await sync();
    const sec = (performance.now() - t0) / 1000;
    if (sec >= minSeconds || n >= 1 << 16) break;
    n = Math.min(1 << 16, Math.max(n * 2, Math.ceil((n * minSeconds * 1.2) / Math.max(sec, 1e-6))));
  }
  const perCall = await timeIt(async () => {
    for (let i = 0; i < n; i++) op();
    await sync();
  }, { warmup: 0, repeats: opts.repeats ?? 5 });
  return perCall / n;
}
