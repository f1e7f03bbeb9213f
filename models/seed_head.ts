/**
 * Which head a seed type goes through: a model's `head` for its entity seeds and, for link
 * prediction, `targetHead` for seeds of the target type (models/link.ts scores an entity
 * against a target by the dot product of the two embeddings).
 *
 * @module
 */

import type { ModelSpec } from "./types.ts";

/** Whether a model of `spec` has a separate head for link targets (a target type other than the seed type). */
export function hasTargetHead(spec: ModelSpec): boolean {
  return spec.targetType !== undefined && spec.targetType !== spec.seedType;
}

/**
 * The head for seeds of `seedType`: `head` for the spec's seed type, `targetHead` for its link
 * target type; any other type is an error naming the valid ones.
 */
export function headOf<H>(spec: ModelSpec, seedType: string, head: H, targetHead: H | null): H {
  if (seedType === spec.seedType) return head;
  if (seedType === spec.targetType && targetHead) return targetHead;
  const valid = [spec.seedType, ...(spec.targetType ? [spec.targetType] : [])];
  throw new Error(
    `fanout: batch seeds are "${seedType}" rows; the model embeds ${
      valid.map((v) => `"${v}"`).join(" or ")
    } seeds`,
  );
}
