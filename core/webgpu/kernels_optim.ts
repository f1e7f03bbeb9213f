/**
 * Optimizer updates (shaders/optim.wgsl) and f32 ↔ f16 casts
 * (shaders/cast_f16.wgsl).
 *
 * @module
 */

import type { DType, OptimizerAttrs, Storage } from "../backend.ts";
import type { KernelContext, KernelMethods } from "./backend.ts";
import { bytesPer, gpu } from "./storage.ts";
import { fail, operand, wholeVec4 } from "./kernel_util.ts";

/** The optimizer and cast kernel methods. */
export function optimKernels(
  ctx: KernelContext,
): Pick<KernelMethods, "optimizerStep" | "cast"> {
  const { rt } = ctx;
  return {
    optimizerStep(
      param: Storage,
      grad: Storage,
      state1: Storage,
      state2: Storage,
      gradNormSq: Storage | null,
      attrs: OptimizerAttrs & { n: number; maxNorm: number },
    ): void {
      const { n, kind } = attrs;
      const k = `optimizerStep(${kind})`;
      if (kind !== "sgd" && !(Number.isInteger(attrs.step) && attrs.step >= 1)) {
        fail(k, `step must be a positive integer, got ${attrs.step}`);
      }
      const P = operand(k, param, n, "param");
      const G = operand(k, grad, n, "grad");
      const clip = gradNormSq !== null && attrs.maxNorm > 0;
      // Without clipping the norm binding is unused by the math; bind the
      // gradient there (read-only, so the aliasing is allowed).
      const norm = clip ? operand(k, gradNormSq!, 1, "gradNormSq").buffer : G.buffer;
      const params = {
        u: [n, attrs.step, attrs.nesterov ? 1 : 0, clip ? 1 : 0],
        f: [
          attrs.lr,
          attrs.momentum,
          attrs.beta1,
          attrs.beta2,
          attrs.eps,
          attrs.weightDecay,
          attrs.maxNorm,
          1 - attrs.beta1 ** attrs.step,
          1 - attrs.beta2 ** attrs.step,
        ],
      };
      // Four elements per thread (vec4) when every buffer holds whole vec4s.
      const run = (entry: string, bufs: GPUBuffer[], constants: Record<string, number> = {}) => {
        const vec = wholeVec4(bufs);
        const p = rt.pipeline("optim.wgsl", vec ? `${entry}4` : entry, constants);
        rt.dispatch1d(p, [...bufs, norm], params, vec ? Math.ceil(n / 4) : n);
      };
      if (kind === "sgd") {
        if (attrs.momentum > 0) {
          const S1 = operand(k, state1, n, "state1 (momentum buffer)");
          run("sgd_momentum", [P.buffer, G.buffer, S1.buffer]);
        } else {
          run("sgd", [P.buffer, G.buffer]);
        }
        return;
      }
      const S1 = operand(k, state1, n, "state1 (m)");
      const S2 = operand(k, state2, n, "state2 (v)");
      if (S1.buffer === S2.buffer) {
        fail(k, "state1 and state2 must be distinct storages");
      }
      run("adam", [P.buffer, G.buffer, S1.buffer, S2.buffer], {
        DECOUPLED: kind === "adamw" ? 1 : 0,
      });
    },

    cast(x: Storage, dtype: DType): Storage {
      const X = gpu(x);
      if (X.dtype === "i32" || dtype === "i32") {
        fail("cast", `only f32 <-> f16 is supported, got ${X.dtype} -> ${dtype}`);
      }
      if (!rt.hasF16) fail("cast", "this adapter has no shader-f16");
      const n = X.size;
      const out = ctx.out(n, dtype);
      if (dtype === X.dtype) {
        const bytes = Math.ceil((n * bytesPer(dtype)) / 4) * 4;
        if (bytes > 0) rt.copy(X.buffer, 0, out.buffer, 0, bytes);
        return out;
      }
      // cast_f16.wgsl is compiled on this first use only: devices without
      // shader-f16 never compile it (the check above stops them).
      const entry = dtype === "f16" ? "f32_to_f16" : "f16_to_f32";
      rt.dispatch1d(rt.pipeline("cast_f16.wgsl", entry), [X.buffer, out.buffer], { u: [n] }, n);
      return out;
    },
  };
}
