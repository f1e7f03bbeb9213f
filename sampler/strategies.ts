/**
 * Temporal sampling strategies: exact definitions, the seeded random number
 * generator, and the pick functions the sampler calls in its inner loop.
 *
 * ## Definitions
 *
 * Sampling expands a node `v` over an edge type `e` with fanout `k` for a
 * seed whose (root) seed tick is `T` (ticks.ts `seedTick`; a tick above
 * `TICK_MAX` is treated as `TICK_MAX`, so a `NEVER_TIME` neighbour is never
 * visible). The **visible** neighbours of `v` are those with tick `<= T`;
 * static neighbours (tick `STATIC_TIME`) are always visible. Let `n` be
 * their number. With `k = -1` or `n <= k` every visible neighbour is taken
 * (whatever the strategy); `k = 0` takes none. Otherwise, with `0 < k < n`:
 *
 * - **`uniform`**: a uniformly random `k`-subset of the `n` visible
 *   neighbours (sampling without replacement: every subset has probability
 *   `1 / C(n, k)`), emitted in an unspecified order.
 * - **`last`**: the `k` most recent visible neighbours, in the order of
 *   (tick, id): the last `k` of the visible neighbours sorted by tick
 *   ascending, ties broken by neighbour id (a larger id counts as more
 *   recent). Emitted oldest first. Deterministic.
 * - **`recency`**: `k` neighbours drawn one after another without
 *   replacement, each draw picking a remaining neighbour `j` with
 *   probability `w_j / Σ w` over the remaining ones, where
 *   `w_j = 2^(-(T - t_j) / H)`, `t_j` the neighbour's tick and `H` the
 *   half-life in ticks; a static neighbour has weight 1 (age 0). With
 *   `k = 1` this is exactly `P(j) = w_j / Σ w`. Implemented for `k <= 8` as
 *   `k` successive draws (one `exp` per candidate, a linear scan per draw,
 *   weights relative to the newest candidate so they never all underflow),
 *   otherwise with Gumbel-top-k keys `age_j·ln2/H + ln(-ln u_j)` (the `k`
 *   smallest win; equivalent to Efraimidis–Spirakis `u^(1/w)` without its
 *   underflow for very old neighbours). **Approximation:** only the most recent
 *   `M = max(64·k, 1024)` visible neighbours of the base adjacency run (and
 *   as many of the appended run, graph.ts) are candidates; for a
 *   half-life that is short compared with the time those `M` neighbours
 *   span, the weight left out is negligible; for a very long half-life
 *   the draw is close to uniform over the `M` most recent. Emitted in an
 *   unspecified order.
 * - **`static`**: ignores time in choosing: a uniform k-subset of the
 *   visible neighbours, with no ordering or weighting by age (the same draw
 *   as `uniform`; it names the intent for relations whose times carry no
 *   signal). Visibility is never relaxed: no strategy shows a seed anything
 *   newer than its own time.
 *
 * Randomness comes from xoshiro128** seeded by splitmix32 from
 * `(randomSeed, batchIndex)` (`seedRng`), so a batch samples the same
 * wherever it runs.
 *
 * @module
 */

import { STRATEGIES, type Strategy } from "./types.ts";

/** Strategy code of `uniform` (its index in `STRATEGIES`). */
export const UNIFORM = 0;
/** Strategy code of `last`. */
export const LAST = 1;
/** Strategy code of `recency`. */
export const RECENCY = 2;
/** Strategy code of `static`. */
export const STATIC = 3;

/** The code of a strategy name (its index in `STRATEGIES`), or -1. */
export function strategyCode(s: string): number {
  return STRATEGIES.indexOf(s as Strategy);
}

/** Number of candidates `recency` considers per run for fanout `k` (see the module doc). */
export function recencyWindow(k: number): number {
  return Math.max(64 * k, 1024);
}

// ---- random numbers: xoshiro128** over four 32-bit words ----

let s0 = 1, s1 = 2, s2 = 3, s3 = 4;

function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Seeds the generator from a random seed (any integer up to 2^53) and a stream (batch index). */
export function seedRng(randomSeed: number, stream: number): void {
  const lo = randomSeed >>> 0, hi = Math.floor(randomSeed / 4294967296) >>> 0;
  let x = splitmix32(lo ^ splitmix32(hi ^ 0x5bd1e995));
  x = splitmix32(x ^ Math.imul(stream >>> 0, 0x27d4eb2f)) ^
    splitmix32(Math.floor(stream / 4294967296));
  s0 = splitmix32(x);
  s1 = splitmix32(s0 ^ 0x68e31da4);
  s2 = splitmix32(s1 ^ 0xb5297a4d);
  s3 = splitmix32(s2 ^ 0x1b56c4e9);
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;
}

/** The next 32-bit unsigned random integer. */
export function nextU32(): number {
  const m = Math.imul(s1, 5);
  const r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
  const t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  s1 ^= s2;
  s0 ^= s3;
  s2 ^= t;
  s3 = (s3 << 11) | (s3 >>> 21);
  return r;
}

/** A random integer in `[0, n)` for `1 <= n < 2^31` (bias below n / 2^32). */
export function randBelow(n: number): number {
  return Math.floor(nextU32() * n * 2.3283064365386963e-10);
}

/** A random float in the open interval (0, 1). */
export function randOpen01(): number {
  return (nextU32() + 0.5) * 2.3283064365386963e-10;
}

// ---- scratch ----

let perm = new Int32Array(1024);
let setKeys = new Int32Array(1024);
let setGen = new Int32Array(1024);
let gen = 0;
let heapKey = new Float64Array(64);
let heapIdx = new Int32Array(64);

// ---- uniform ----

/**
 * Writes a uniformly random `k`-subset of `[0, n)` into `out[0..k)` (for
 * `0 < k < n`) and returns `k`. Floyd's algorithm (membership by a linear
 * scan for `k <= 32`, by a stamped hash set otherwise), or a partial
 * Fisher–Yates shuffle on a scratch when `k` is a large part of `n`.
 */
export function pickUniform(n: number, k: number, out: Int32Array): number {
  if (k <= 32) {
    let c = 0;
    for (let j = n - k; j < n; j++) {
      const t = randBelow(j + 1);
      let seen = false;
      for (let q = 0; q < c; q++) {
        if (out[q] === t) {
          seen = true;
          break;
        }
      }
      out[c++] = seen ? j : t;
    }
    return k;
  }
  if (n <= 16 * k) {
    if (perm.length < n) perm = new Int32Array(Math.max(n, 2 * perm.length));
    const p = perm;
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = 0; i < k; i++) {
      const j = i + randBelow(n - i);
      const v = p[j];
      p[j] = p[i];
      p[i] = v;
      out[i] = v;
    }
    return k;
  }
  let size = setKeys.length;
  if (size < 4 * k) {
    while (size < 4 * k) size *= 2;
    setKeys = new Int32Array(size);
    setGen = new Int32Array(size);
    gen = 0;
  }
  if (++gen === 0x7fffffff) {
    setGen.fill(0);
    gen = 1;
  }
  const mask = size - 1, g = gen, keys = setKeys, gens = setGen;
  let c = 0;
  for (let j = n - k; j < n; j++) {
    const t = randBelow(j + 1);
    if (insertSet(keys, gens, mask, g, t)) out[c++] = t;
    else {
      insertSet(keys, gens, mask, g, j); // j > every member: always new
      out[c++] = j;
    }
  }
  return k;
}

/** Inserts `x` into the stamped set; false when it was already there. */
function insertSet(
  keys: Int32Array,
  gens: Int32Array,
  mask: number,
  g: number,
  x: number,
): boolean {
  let h = (Math.imul(x, 0x9e3779b1) >>> 0) & mask;
  while (gens[h] === g) {
    if (keys[h] === x) return false;
    h = (h + 1) & mask;
  }
  gens[h] = g;
  keys[h] = x;
  return true;
}

// ---- last ----

/**
 * `last` over two time-ordered runs given by their tails: base ticks/ids
 * `bt/bi[0..bn)` and appended ticks/ids `dt/di[0..dn)`, each sorted by
 * (tick, id). Writes the positions of the `k` most recent (by (tick, id))
 * into `out[0..k)`, oldest first: position `p < bn` is base tail entry `p`,
 * `p >= bn` is appended tail entry `p - bn`. Requires `k <= bn + dn`.
 */
export function pickLastMerged(
  bt: Int32Array,
  bi: Int32Array,
  bn: number,
  dt: Int32Array,
  di: Int32Array,
  dn: number,
  k: number,
  out: Int32Array,
): number {
  let a = bn - 1, b = dn - 1;
  for (let c = k - 1; c >= 0; c--) {
    const takeA = b < 0 || (a >= 0 && (bt[a] > dt[b] || (bt[a] === dt[b] && bi[a] > di[b])));
    out[c] = takeA ? a-- : bn + b--;
  }
  return k;
}

// ---- recency ----

/**
 * `recency` over `m` candidates with ticks `ticks[0..m)`: writes the
 * positions of `k` (< m) of them into `out[0..k)`, drawn without replacement
 * with weights `2^(-(seedTick - tick) / halfLife)` (static candidates: weight
 * 1). `lnPerTick` is `ln 2 / halfLife` (half-life in ticks).
 */
export function pickRecency(
  ticks: Int32Array,
  m: number,
  k: number,
  seedTick: number,
  lnPerTick: number,
  out: Int32Array,
): number {
  if (k <= 8) return recencySequential(ticks, m, k, seedTick, lnPerTick, out);
  if (heapKey.length < k) {
    heapKey = new Float64Array(Math.max(k, 2 * heapKey.length));
    heapIdx = new Int32Array(heapKey.length);
  }
  const hk = heapKey, hi = heapIdx;
  // Max-heap of the k smallest keys so far.
  let size = 0;
  for (let j = 0; j < m; j++) {
    const t = ticks[j];
    const age = t === -2147483648 ? 0 : seedTick - t;
    const key = age * lnPerTick + Math.log(-Math.log(randOpen01()));
    if (size < k) {
      let c = size++;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (hk[p] >= key) break;
        hk[c] = hk[p];
        hi[c] = hi[p];
        c = p;
      }
      hk[c] = key;
      hi[c] = j;
    } else if (key < hk[0]) {
      let c = 0;
      for (;;) {
        const l = 2 * c + 1;
        if (l >= size) break;
        const r = l + 1;
        const big = r < size && hk[r] > hk[l] ? r : l;
        if (hk[big] <= key) break;
        hk[c] = hk[big];
        hi[c] = hi[big];
        c = big;
      }
      hk[c] = key;
      hi[c] = j;
    }
  }
  for (let c = 0; c < size; c++) out[c] = hi[c];
  return size;
}

let weights = new Float64Array(1024);

/**
 * `pickRecency` for small `k`: `k` successive weighted draws, each a linear
 * scan over the remaining weight. One `exp` per candidate and no logarithms,
 * cheaper than the keys when `k` is small. Weights are taken relative to the
 * most recent candidate (so they never all underflow).
 */
function recencySequential(
  ticks: Int32Array,
  m: number,
  k: number,
  seedTick: number,
  lnPerTick: number,
  out: Int32Array,
): number {
  if (weights.length < m) weights = new Float64Array(Math.max(m, 2 * weights.length));
  const w = weights;
  let ref = -2147483648;
  for (let j = 0; j < m; j++) {
    const t = ticks[j] === -2147483648 ? seedTick : ticks[j];
    if (t > ref) ref = t;
  }
  let total = 0;
  for (let j = 0; j < m; j++) {
    const t = ticks[j] === -2147483648 ? seedTick : ticks[j];
    const x = Math.exp((t - ref) * lnPerTick);
    w[j] = x;
    total += x;
  }
  for (let c = 0; c < k; c++) {
    const r = randOpen01() * total;
    let acc = 0, j = 0, last = -1;
    for (; j < m; j++) {
      const x = w[j];
      if (x === 0) continue;
      last = j;
      acc += x;
      if (acc > r) break;
    }
    if (j >= m) j = last; // rounding: r at the very top of the total
    out[c] = j;
    total -= w[j];
    w[j] = 0;
    if (total <= 0) {
      // Only underflowed weights left (or rounding): recompute relative to the newest remaining.
      total = renormalize(ticks, w, m, seedTick, lnPerTick, out, c + 1);
    }
  }
  return k;
}

/** Recomputes the weights of the candidates not yet in `out[0..taken)`; returns their total. */
function renormalize(
  ticks: Int32Array,
  w: Float64Array,
  m: number,
  seedTick: number,
  lnPerTick: number,
  out: Int32Array,
  taken: number,
): number {
  let ref = -2147483648;
  const isTaken = (j: number) => {
    for (let c = 0; c < taken; c++) if (out[c] === j) return true;
    return false;
  };
  for (let j = 0; j < m; j++) {
    const t = ticks[j] === -2147483648 ? seedTick : ticks[j];
    if (!isTaken(j) && t > ref) ref = t;
  }
  let total = 0;
  for (let j = 0; j < m; j++) {
    const t = ticks[j] === -2147483648 ? seedTick : ticks[j];
    w[j] = isTaken(j) ? 0 : Math.exp((t - ref) * lnPerTick);
    total += w[j];
  }
  return total;
}
