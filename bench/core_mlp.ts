/**
 * One full training step (forward, backward, AdamW) of a 3-layer, 128-wide
 * MLP on 65536 rows: WebGPU beside the plain TypeScript reference backend.
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { cpuBackend } from "../core/cpu/mod.ts";
import { MLP } from "../core/nn.ts";
import { AdamW } from "../core/optim.ts";
import { mseLoss } from "../core/ops.ts";
import { Rng } from "../core/random.ts";
import { scope, tensor } from "../core/tensor.ts";
import { emit, timeBatched, timeIt } from "./report.ts";
import { MlpStepTs } from "./baselines.ts";

async function stepsPerSecond(backend: Backend, rows: number, width: number, repeats: number) {
  const rng = new Rng(3);
  const x = tensor(Float32Array.from({ length: rows * width }, () => rng.normal()), [rows, width], {
    backend,
  }).keep();
  const y = tensor(Float32Array.from({ length: rows }, () => rng.normal()), [rows, 1], { backend })
    .keep();
  const model = new MLP([width, width, width, 1], { backend, rng });
  const opt = new AdamW(model.parameters(), { lr: 1e-3 });
  const step = () =>
    scope(() => {
      opt.zeroGrad();
      const loss = mseLoss(model.forward(x), y);
      loss.backward();
      opt.step();
    });
  // Steps are recorded without waiting; one sync closes a batch of them.
  const sec = await timeBatched(step, () => backend.sync(), { repeats });
  opt.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
  return 1 / sec;
}

/** Emits steps/s on `gpu` and on the CPU reference backend. */
export async function benchMlpStep(gpu: Backend, quick: boolean): Promise<void> {
  const rows = 65536, width = 128;
  const common = {
    bench: "core",
    metric: "mlp_train_step",
    unit: "steps/s",
    rows,
    width,
    layers: 3,
  };
  emit({
    ...common,
    value: await stepsPerSecond(gpu, rows, width, quick ? 3 : 10),
    impl: "webgpu",
  });
  const rng = new Rng(4);
  const x = Float32Array.from({ length: rows * width }, () => rng.normal());
  const y = Float32Array.from({ length: rows }, () => rng.normal());
  const ts = new MlpStepTs([width, width, width, 1], () => rng.next());
  const tsSec = await timeIt(() => ts.step(x, y, rows), { warmup: 1, repeats: quick ? 1 : 3 });
  emit({ ...common, value: 1 / tsSec, impl: "typescript" });
  // The float64 reference backend through the same tensor API, for scale.
  emit({
    ...common,
    value: await stepsPerSecond(cpuBackend(), rows, width, 1),
    impl: "cpu-f64-reference-backend",
  });
}
