/**
 * The dropout mask hash, shared bit for bit by the CPU reference and the WGSL
 * kernel (which computes it with `u32` arithmetic).
 *
 * @module
 */

/**
 * A 32-bit hash of (`seed`, element index `i`), as an unsigned integer:
 *
 * ```
 * h = (i * 0x9E3779B1) ^ seed
 * h ^= h >> 16;  h *= 0x85EBCA6B
 * h ^= h >> 13;  h *= 0xC2B2AE35
 * h ^= h >> 16
 * ```
 *
 * with every product taken modulo 2^32 and logical shifts.
 */
export function dropoutHash(seed: number, i: number): number {
  let h = (Math.imul(i, 0x9e3779b1) ^ seed) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Whether dropout with probability `p` keeps element `i` under `seed`:
 * `dropoutHash(seed, i) / 2^32 >= p`.
 */
export function dropoutKeep(seed: number, i: number, p: number): boolean {
  return dropoutHash(seed, i) / 4294967296 >= p;
}
