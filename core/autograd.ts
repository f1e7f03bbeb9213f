/**
 * Reverse-mode autograd: each op that touches a tensor requiring gradients
 * records a tape node (op name, inputs, attributes); `backward()` walks the
 * nodes reachable from a scalar in reverse topological order and applies the
 * gradient rules of `grad_rules.ts`, accumulating into the leaves' `.grad`.
 *
 * @module
 */

import type { Tensor } from "./tensor.ts";
import type { OpAttrs, OpName } from "./ops.ts";

/** One recorded op. */
export interface TapeNode<K extends OpName = OpName> {
  /** Which op produced the output. */
  readonly op: K;
  /** Its tensor inputs, in the order of the gradient rule's outputs. */
  readonly inputs: readonly Tensor[];
  /** Attributes the gradient rule needs. */
  readonly attrs: OpAttrs[K];
  /** Tensors the op saved for its rule, owned by the node and freed with it. */
  readonly saved?: readonly Tensor[];
}

let gradEnabled = true;

/** Whether ops currently record tape nodes. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Runs `fn` without recording: inference, evaluation, optimizer updates.
 *
 * @example
 * ```ts
 * const scores = noGrad(() => model.forward(batch));
 * ```
 */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** `noGrad` for async functions. */
export async function noGradAsync<T>(fn: () => Promise<T>): Promise<T> {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return await fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Whether an op on `inputs` records a node now. */
export function willRecord(inputs: readonly Tensor[]): boolean {
  return gradEnabled && inputs.some((t) => t.requiresGrad);
}

/**
 * Attaches a tape node to `out` when grad mode is on and any input requires
 * grad. `saved` tensors belong to the node; when no node is recorded they are
 * freed at once.
 */
export function record<K extends OpName>(
  out: Tensor,
  op: K,
  inputs: readonly Tensor[],
  attrs: OpAttrs[K],
  saved: readonly Tensor[] = [],
): Tensor {
  if (willRecord(inputs)) {
    out.requiresGrad = true;
    for (const t of saved) t.keep(); // owned by the node, not by a scope
    out.node = { op, inputs, attrs, saved } as TapeNode;
  } else {
    for (const t of saved) t.dispose();
  }
  return out;
}

/** Frees what `t`'s node saved and unlinks the node (the graph is used once). */
export function freeNode(t: Tensor): void {
  for (const s of t.node?.saved ?? []) s.dispose();
  t.node = null;
}

function checkAlive(t: Tensor): void {
  if (t.disposed) {
    throw new Error(
      `fanout: backward() reached a disposed tensor of shape [${t.shape}]: ` +
        "run backward() inside the scope that built the graph",
    );
  }
  if (!t.isLeaf && !t.node) {
    throw new Error(
      `fanout: backward() through a freed graph (tensor of shape [${t.shape}]): ` +
        "each graph can be walked once; recompute the forward pass",
    );
  }
}

/** Reverse topological order of the nodes reachable from `root` (root first). */
export function reverseTopo(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: graphs of deep GNNs can exceed the JS stack.
  checkAlive(root);
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i];
      if (child.requiresGrad && !seen.has(child)) {
        checkAlive(child);
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}
