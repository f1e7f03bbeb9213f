/**
 * Dense kernels: matmul, element-wise ops, reductions (sums and sums of
 * squares), dropout, losses, optimizer updates, casts. The implementations
 * live in `kernels_matmul.ts`, `kernels_elementwise.ts`, `kernels_reduce.ts`
 * and `kernels_optim.ts`; this module assembles them.
 *
 * @module
 */

import type { KernelContext, KernelMethods } from "./backend.ts";
import { elementwiseKernels } from "./kernels_elementwise.ts";
import { matmulKernel } from "./kernels_matmul.ts";
import { optimKernels } from "./kernels_optim.ts";
import { reduceKernels } from "./kernels_reduce.ts";

/**
 * Shader files these kernels use. `cast_f16.wgsl` (`enable f16;`) is only
 * fetched as text here: the runtime compiles a module on its first pipeline,
 * and `cast` asks for one only when the device has `shader-f16`.
 */
export const DENSE_SHADERS: string[] = [
  "matmul.wgsl",
  "elementwise.wgsl",
  "reduce.wgsl",
  "loss.wgsl",
  "optim.wgsl",
  "cast_f16.wgsl",
];

/** The dense kernel methods. */
export function denseKernels(ctx: KernelContext): Pick<
  KernelMethods,
  | "matmul"
  | "binary"
  | "unary"
  | "unaryGrad"
  | "dropout"
  | "reduceSum"
  | "sumSquares"
  | "loss"
  | "lossGrad"
  | "optimizerStep"
  | "cast"
> {
  return {
    ...matmulKernel(ctx),
    ...elementwiseKernels(ctx),
    ...reduceKernels(ctx),
    ...optimKernels(ctx),
  };
}
