/**
 * Every gradient rule, in one table. `GRADS` is typed as a complete map over
 * `OpName`, so adding an op to `OpAttrs` without a rule fails type checking.
 *
 * Rules run in no-grad mode and are written with the same ops as the forward
 * pass, plus a few gradient-only kernels (unaryGrad, segmentMaxGrad,
 * segmentSoftmaxGrad, layerNormGrad, lossGrad) that return plain tensors.
 *
 * @module
 */

import type { Broadcast, Storage } from "./backend.ts";
import { freeNode, noGrad, reverseTopo } from "./autograd.ts";
import {
  binary,
  cast,
  concatCols,
  dropout,
  gather,
  matmul,
  mul,
  neg,
  type OpAttrs,
  type OpName,
  reshape,
  scale,
  segmentReduce,
  sliceCols,
  sum,
} from "./ops.ts";
import { full, installHooks, scope, Tensor } from "./tensor.ts";

/** What a rule sees: the node's inputs, its output, and its recorded attributes. */
export interface GradContext<K extends OpName> {
  /** The op's tensor inputs. */
  readonly inputs: readonly Tensor[];
  /** The op's output (its value is still valid). */
  readonly out: Tensor;
  /** The recorded attributes. */
  readonly attrs: OpAttrs[K];
}

/** A gradient rule: the gradient of each input (null where not needed) from the output's. */
export type GradRule<K extends OpName> = (ctx: GradContext<K>, dy: Tensor) => (Tensor | null)[];

/** Sums a broadcast gradient back to the operand's shape. */
function unbroadcast(g: Tensor, mode: Broadcast, shape: readonly number[]): Tensor {
  const r = mode === "full" ? g : mode === "row" ? sum(g, 0) : mode === "col" ? sum(g, 1) : sum(g);
  return sameShape(r.shape, shape) ? r : reshape(r, shape);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A tensor that owns one more reference to `s` (for sharing a backend-owned storage). */
function borrow(s: Storage, shape: readonly number[]): Tensor {
  s.backend.retain(s);
  return new Tensor(s, shape);
}

const need = (t: Tensor): boolean => t.requiresGrad;

/** The gradient table. */
export const GRADS: { readonly [K in OpName]: GradRule<K> } = {
  reshape: ({ attrs }, dy) => [reshape(dy, attrs.from)],

  cast: ({ attrs }, dy) => [cast(dy, attrs.from)],

  matmul: ({ inputs: [a, b], attrs: { transA, transB } }, dy) => [
    need(a)
      ? transA
        ? matmul(b, dy, { transA: transB, transB: true })
        : matmul(dy, b, { transB: !transB })
      : null,
    need(b)
      ? transB
        ? matmul(dy, a, { transA: true, transB: transA })
        : matmul(a, dy, { transA: !transA })
      : null,
  ],

  binary: ({ inputs: [a, b], out, attrs }, dy) => {
    let ga: Tensor | null = null, gb: Tensor | null = null;
    switch (attrs.op) {
      case "add":
        ga = need(a) ? dy : null;
        gb = need(b) ? dy : null;
        break;
      case "sub":
        ga = need(a) ? dy : null;
        gb = need(b) ? neg(dy) : null;
        break;
      case "mul":
        ga = need(a) ? mul(dy, b) : null;
        gb = need(b) ? mul(dy, a) : null;
        break;
      case "div":
        ga = need(a) ? binary("div", dy, b) : null;
        gb = need(b) ? neg(mul(dy, binary("div", out, b))) : null;
        break;
    }
    return [
      ga && unbroadcast(ga, attrs.aMode, a.shape),
      gb && unbroadcast(gb, attrs.bMode, b.shape),
    ];
  },

  unary: ({ inputs: [x], out, attrs }, dy) => [
    new Tensor(
      x.backend.unaryGrad(attrs.op, x.storage, out.storage, dy.storage, {
        n: x.size,
        alpha: attrs.alpha,
        beta: attrs.beta,
      }),
      x.shape,
    ),
  ],

  dropout: ({ attrs }, dy) => [dropout(dy, attrs.p, { seed: attrs.seed, training: true })],

  reduceSum: ({ inputs: [x], attrs }, dy) => {
    const [rows, cols] = x.shape.length === 2 ? x.shape : [1, x.size];
    const mode: Broadcast = attrs.axis === "all" ? "scalar" : attrs.axis === "rows" ? "row" : "col";
    const zero = x.backend.full(1, 0, "f32");
    const s = x.backend.binary("add", dy.storage, zero, {
      rows,
      cols,
      aMode: mode,
      bMode: "scalar",
    });
    x.backend.release(zero);
    return [new Tensor(s, x.shape)];
  },

  gather: ({ attrs }, dy) => {
    const { perm, segments } = attrs.index.transposed();
    return [segmentReduce(gather(dy, perm), segments, "sum")];
  },

  sliceCols: ({ inputs: [x], attrs }, dy) => {
    const rows = x.shape[0], cols = x.shape[1];
    const after = cols - attrs.start - attrs.len;
    const parts: Tensor[] = [];
    if (attrs.start > 0) parts.push(full([rows, attrs.start], 0, { backend: x.backend }));
    parts.push(dy);
    if (after > 0) parts.push(full([rows, after], 0, { backend: x.backend }));
    return [parts.length === 1 ? dy : concatCols(parts)];
  },

  concatCols: ({ inputs, attrs }, dy) => {
    let start = 0;
    return inputs.map((t, i) => {
      const g = need(t) ? sliceCols(dy, start, attrs.cols[i]) : null;
      start += attrs.cols[i];
      return g;
    });
  },

  segmentReduce: ({ inputs: [x], out, attrs }, dy) => {
    const { segments, reduce } = attrs;
    const backend = x.backend;
    const rowSeg = segments.rowSegment();
    if (reduce === "sum") return [gather(dy, rowSeg)];
    if (reduce === "mean") {
      const inv = borrow(segments.invCountStorage(backend), [segments.count, 1]);
      return [gather(mul(dy, inv), rowSeg)];
    }
    const argmax = out.node!.saved![0];
    const s = backend.segmentMaxGrad(dy.storage, argmax.storage, rowSeg.storage(backend), {
      rows: x.shape[0],
      cols: x.shape[1],
    });
    return [new Tensor(s, x.shape)];
  },

  segmentSoftmax: ({ out, attrs }, dy) => [
    new Tensor(
      out.backend.segmentSoftmaxGrad(out.storage, dy.storage, attrs.segments.storage(out.backend), {
        segments: attrs.segments.count,
        rows: out.shape[0],
        cols: out.shape[1],
      }),
      out.shape,
    ),
  ],

  layerNorm: ({ inputs: [x, gamma, beta], out }, dy) => {
    const [mean, rstd] = out.node!.saved!;
    const r = x.backend.layerNormGrad(
      x.storage,
      gamma.storage,
      mean.storage,
      rstd.storage,
      dy.storage,
      { rows: x.shape[0], cols: x.shape[1] },
    );
    const grads = [
      new Tensor(r.dx, x.shape),
      new Tensor(r.dgamma, gamma.shape),
      new Tensor(r.dbeta, beta.shape),
    ];
    return grads.map((g, i) => {
      if (need([x, gamma, beta][i])) return g;
      g.dispose();
      return null;
    });
  },

  loss: ({ inputs: [pred, target], attrs: { kind } }, dy) => {
    const [rows, cols] = pred.shape.length === 2 ? pred.shape : [pred.size, 1];
    const gp = new Tensor(
      pred.backend.lossGrad(kind, pred.storage, target.storage, dy.storage, { rows, cols }),
      pred.shape,
    );
    if (!need(target)) return [need(pred) ? gp : null, null];
    // mse and l1 are symmetric in (pred, target): d/dt = −d/dp. For BCE on logits x,
    // d/dt of mean(max(x,0) − x·t + log1p(e^−|x|)) is −x/n.
    const gt = kind === "bce_logits" ? scale(mul(pred, dy), -1 / pred.size) : neg(gp);
    return [need(pred) ? gp : null, reshape(gt, target.shape)];
  },
};

/**
 * Backpropagates from a one-element tensor. Leaves (tensors with
 * `requiresGrad` and no producing op) accumulate into `.grad`, which outlives
 * any enclosing scope until `zeroGrad`. The graph is freed as it is walked.
 */
export function backward(root: Tensor): void {
  root.assertLive();
  if (root.size !== 1) {
    throw new Error(`fanout: backward() needs a one-element tensor, got shape [${root.shape}]`);
  }
  if (!root.requiresGrad) {
    throw new Error("fanout: backward() on a tensor that does not require grad");
  }
  const order = reverseTopo(root);
  noGrad(() => {
    const grads = new Map<Tensor, Tensor>();
    grads.set(root, full(root.shape, 1, { backend: root.backend }));
    const put = (t: Tensor, g: Tensor) => {
      const prev = grads.get(t);
      if (!prev) {
        grads.set(t, g);
        return;
      }
      grads.set(t, binary("add", prev, g));
      prev.dispose();
      g.dispose();
    };
    for (const t of order) {
      const g = grads.get(t);
      grads.delete(t);
      if (!g) {
        if (t.node) freeNode(t);
        continue;
      }
      if (!t.node) {
        accumulateLeaf(t, g);
        continue;
      }
      const node = t.node;
      // deno-lint-ignore no-explicit-any
      const rule = GRADS[node.op] as GradRule<any>;
      // The rule's temporaries die with this scope; the returned gradients survive it.
      const gs = scope(() => rule({ inputs: node.inputs, out: t, attrs: node.attrs }, g));
      const owned = new Set<Tensor>();
      gs.forEach((gi, i) => {
        if (!gi) return;
        const input = node.inputs[i];
        // Each map entry owns its tensor: share a returned dy (or a repeated one) by view.
        const mine = gi === g || owned.has(gi) ? gi.detach() : gi;
        owned.add(gi);
        put(input, mine);
      });
      g.dispose(); // views made above hold their own references
      freeNode(t);
    }
  });
}

function accumulateLeaf(t: Tensor, g: Tensor): void {
  if (!sameShape(g.shape, t.shape)) {
    const r = reshape(g, t.shape);
    g.dispose();
    g = r;
  }
  if (t.grad && !t.grad.disposed) {
    const old = t.grad;
    t.grad = binary("add", old, g).keep();
    old.dispose();
    g.dispose();
  } else {
    t.grad = g.keep();
  }
}

installHooks({ backward });
