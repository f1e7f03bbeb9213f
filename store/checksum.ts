/**
 * XXH32 (xxHash, 32-bit) over bytes, written by hand so that checksumming a
 * saved graph costs about as much as reading it: whole 32-bit words are read
 * through an `Int32Array` view when the bytes are 4-byte aligned (they always
 * are for the graph store's typed arrays), and the four lanes give the CPU
 * independent work.
 *
 * @module
 */

const P1 = 0x9e3779b1 | 0;
const P2 = 0x85ebca77 | 0;
const P3 = 0xc2b2ae3d | 0;
const P4 = 0x27d4eb2f | 0;
const P5 = 0x165667b1 | 0;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/**
 * XXH32 of `bytes` with `seed` (default 0), as an unsigned 32-bit integer;
 * the same value as the reference implementation (e.g. `xxh32("abc") ===
 * 0x32d153ff`). Works on views over `ArrayBuffer`s and `SharedArrayBuffer`s.
 */
export function xxh32(bytes: Uint8Array, seed = 0): number {
  const len = bytes.byteLength;
  const words = len >>> 2;
  let w: Int32Array | null = null;
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
    w = new Int32Array(bytes.buffer, bytes.byteOffset, words);
  }
  const word = (i: number): number =>
    w ? w[i] : bytes[4 * i] | (bytes[4 * i + 1] << 8) | (bytes[4 * i + 2] << 16) |
      (bytes[4 * i + 3] << 24);
  let h: number;
  let i = 0;
  if (len >= 16) {
    let v1 = (seed + P1 + P2) | 0;
    let v2 = (seed + P2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - P1) | 0;
    const stripes = words & ~3;
    if (w) {
      for (; i < stripes; i += 4) {
        v1 = Math.imul(rotl((v1 + Math.imul(w[i], P2)) | 0, 13), P1);
        v2 = Math.imul(rotl((v2 + Math.imul(w[i + 1], P2)) | 0, 13), P1);
        v3 = Math.imul(rotl((v3 + Math.imul(w[i + 2], P2)) | 0, 13), P1);
        v4 = Math.imul(rotl((v4 + Math.imul(w[i + 3], P2)) | 0, 13), P1);
      }
    } else {
      for (; i < stripes; i += 4) {
        v1 = Math.imul(rotl((v1 + Math.imul(word(i), P2)) | 0, 13), P1);
        v2 = Math.imul(rotl((v2 + Math.imul(word(i + 1), P2)) | 0, 13), P1);
        v3 = Math.imul(rotl((v3 + Math.imul(word(i + 2), P2)) | 0, 13), P1);
        v4 = Math.imul(rotl((v4 + Math.imul(word(i + 3), P2)) | 0, 13), P1);
      }
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = (seed + P5) | 0;
  }
  h = (h + len) | 0;
  for (; i < words; i++) h = Math.imul(rotl((h + Math.imul(word(i), P3)) | 0, 17), P4);
  for (let b = words * 4; b < len; b++) {
    h = Math.imul(rotl((h + Math.imul(bytes[b], P5)) | 0, 11), P1);
  }
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}

/** `xxh32` of the bytes of any typed array (its view, not its whole buffer). */
export function checksumOf(a: ArrayBufferView): number {
  return xxh32(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}
