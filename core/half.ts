/**
 * IEEE 754 half precision (binary16) on the host, through the runtime's
 * `Float16Array` (one rounding from float64, to nearest, ties to even; with
 * subnormals, infinities and NaN). One implementation for uploads, the CPU
 * reference and checkpoints.
 *
 * @module
 */

const h16 = new Float16Array(1);
const b16 = new Uint16Array(h16.buffer);

/** The binary16 bit pattern nearest to `value`. */
export function f32ToF16Bits(value: number): number {
  h16[0] = value;
  return b16[0];
}

/** The value of a binary16 bit pattern. */
export function f16BitsToNumber(h: number): number {
  b16[0] = h;
  return h16[0];
}

/** `value` rounded to the nearest binary16 value. */
export function roundF16(value: number): number {
  return Math.f16round(value);
}

/** Converts values to binary16 bit patterns. */
export function f32ToF16(values: ArrayLike<number>): Uint16Array {
  return new Uint16Array(Float16Array.from(values).buffer);
}

/** Converts binary16 bit patterns to float32 values. */
export function f16BitsToF32(bits: ArrayLike<number>): Float32Array {
  const u = bits instanceof Uint16Array ? bits : Uint16Array.from(bits);
  return Float32Array.from(new Float16Array(u.buffer, u.byteOffset, u.length));
}
