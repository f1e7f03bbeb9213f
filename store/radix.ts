/**
 * Sorting helpers over typed arrays (no object per element): stable
 * permutations by Int32 or integer-valued keys via LSD radix sort, the
 * graph build's workhorse.
 *
 * @module
 */

/** The identity permutation 0..n-1. */
export function iota(n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return p;
}

/** True when `keys` is non-decreasing. */
export function isSorted(keys: ArrayLike<number>): boolean {
  for (let i = 1; i < keys.length; i++) if (keys[i] < keys[i - 1]) return false;
  return true;
}

/**
 * Stable permutation of 0..n-1 ordering `keys` ascending (ties keep index
 * order), or null when `keys` is already sorted. `keys` must hold integers
 * whose range (max - min) is below 2^32; LSD radix sort, one or two passes of
 * 16 bits.
 */
export function sortPermutation(keys: Int32Array | Float64Array): Int32Array | null {
  const n = keys.length;
  if (isSorted(keys)) return null;
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < n; i++) {
    const k = keys[i];
    if (k < min) min = k;
    if (k > max) max = k;
  }
  if (!(max - min < 2 ** 32)) throw new RangeError("sortPermutation: key range must be below 2^32");
  const range = max - min;
  const rel = (i: number) => (keys[i] - min) >>> 0;
  if (range < 65536) return countingPass(n, iota(n), range + 1, (i) => rel(i));
  const low = countingPass(n, iota(n), 65536, (i) => rel(i) & 0xffff);
  return countingPass(n, low, (range >>> 16) + 1, (i) => rel(i) >>> 16);
}

/** One stable counting-sort pass of the permutation `perm` by `bucket(index)`. */
function countingPass(
  n: number,
  perm: Int32Array,
  buckets: number,
  bucket: (i: number) => number,
): Int32Array {
  const count = new Int32Array(buckets + 1);
  for (let i = 0; i < n; i++) count[bucket(i) + 1]++;
  for (let b = 0; b < buckets; b++) count[b + 1] += count[b];
  const out = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = perm[k];
    out[count[bucket(i)]++] = i;
  }
  return out;
}

/**
 * Stable permutation of 0..n-1 ordering numeric `keys` ascending: radix sort
 * for integer keys with a range below 2^32, a comparison sort otherwise.
 * Null when already sorted. NaN is not allowed.
 */
export function sortPermutationAny(keys: Int32Array | Float64Array): Int32Array | null {
  if (isSorted(keys)) return null;
  let integral = true, min = Infinity, max = -Infinity;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    if (!Number.isInteger(k)) {
      integral = false;
      break;
    }
    if (k < min) min = k;
    if (k > max) max = k;
  }
  if (integral && max - min < 2 ** 32) return sortPermutation(keys);
  return iota(keys.length).sort((a, b) => keys[a] - keys[b] || a - b);
}
