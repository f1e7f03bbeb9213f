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
