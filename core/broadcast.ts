/**
 * Broadcast operand sizes, shared by both backends and the tests.
 *
 * @module
 */

import type { Broadcast } from "./backend.ts";

/**
 * Elements an operand of broadcast `mode` holds for a `rows × cols` output
 * (see `Broadcast`): `rows·cols` (full), `cols` (row), `rows` (col), 1 (scalar).
 */
export function operandSize(mode: Broadcast, rows: number, cols: number): number {
  return mode === "full" ? rows * cols : mode === "row" ? cols : mode === "col" ? rows : 1;
}
