/**
 * The end-to-end job `deno task train` runs until the relational trainer
 * exists: an MLP learns a synthetic teacher function on the GPU with the full
 * training loop (AdamW, linear warmup then cosine decay, gradient clipping,
 * held-out evaluation against a baseline, a safetensors checkpoint).
 *
 * @module
 */

import type { Backend } from "../core/backend.ts";
import { AdamW } from "../core/optim.ts";
import { cosine, linearWarmup, LRScheduler } from "../core/schedule.ts";
import { MLP } from "../core/nn.ts";
import { mean, mseLoss, mul, sub } from "../core/ops.ts";
import { noGrad } from "../core/autograd.ts";
import { Rng } from "../core/random.ts";
import { scope, scopeAsync, type Tensor, tensor } from "../core/tensor.ts";
import { saveSafetensors } from "../core/safetensors.ts";

/** Options of `trainMlpDemo`. */
export interface MlpDemoOptions {
  /** Where tensors live. */
  backend: Backend;
  /** Optimizer steps (default 300). */
  steps?: number;
  /** Rows per batch (default 1024). */
  batch?: number;
  /** Hidden width (default 128). */
  width?: number;
  /** Seed of data and initialisation (default 7). */
  seed?: number;
  /** Directory for the checkpoint; none written when omitted. */
  outDir?: string;
  /** Called after each step; `loss` is given on the steps where it was read back. */
  onStep?: (step: number, loss: number | undefined) => void;
  /** Read the loss back every this many steps (default 25; each read costs a GPU round trip). */
  logEvery?: number;
}

/** Figures of a finished demo run. */
export interface MlpDemoResult {
  /** Last training loss read back. */
  trainLoss: number;
  /** Held-out mean squared error of the model. */
  testMse: number;
  /** Held-out mean squared error of predicting the training mean. */
  baselineMse: number;
  /** 1 − testMse / baselineMse. */
  r2: number;
  /** Training rows per second over the whole run, readbacks included. */
  rowsPerSecond: number;
  /** Checkpoint path, when written. */
  checkpoint?: string;
}

const IN = 32;

/** A fixed random teacher: y = Σ tanh(x·W1) · w2 + noise. */
function makeData(rows: number, rng: Rng, teacher: { w1: Float32Array; w2: Float32Array }) {
  const hidden = teacher.w2.length;
  const x = new Float32Array(rows * IN), y = new Float32Array(rows);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  for (let r = 0; r < rows; r++) {
    let out = 0;
    for (let h = 0; h < hidden; h++) {
      let z = 0;
      for (let c = 0; c < IN; c++) z += x[r * IN + c] * teacher.w1[c * hidden + h];
      out += Math.tanh(z) * teacher.w2[h];
    }
    y[r] = out + 0.05 * rng.normal();
  }
  return { x, y };
}

/** Trains the demo MLP and evaluates it on held-out rows. */
export async function trainMlpDemo(opts: MlpDemoOptions): Promise<MlpDemoResult> {
  const { backend } = opts;
  const steps = opts.steps ?? 300, batch = opts.batch ?? 1024, width = opts.width ?? 128;
  const logEvery = opts.logEvery ?? 25;
  const rng = new Rng(opts.seed ?? 7);
  const hidden = 16;
  const teacher = {
    w1: Float32Array.from({ length: IN * hidden }, () => rng.normal() / Math.sqrt(IN)),
    w2: Float32Array.from({ length: hidden }, () => rng.normal() / Math.sqrt(hidden)),
  };
  const trainRows = batch * 16;
  const train = makeData(trainRows, rng, teacher);
  const test = makeData(8192, rng, teacher);

  const on = { backend };
  const model = new MLP([IN, width, width, 1], { activation: "gelu", backend, rng });
  const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 1e-4 });
  const warmup = Math.min(20, steps);
  const sched = new LRScheduler(opt, linearWarmup(warmup, cosine(steps - warmup, 3e-5)));
  // The whole training set lives on the device; batches are row blocks of it.
  const xs: Tensor[] = [], ys: Tensor[] = [];
  for (let b = 0; b < trainRows / batch; b++) {
    xs.push(tensor(train.x.subarray(b * batch * IN, (b + 1) * batch * IN), [batch, IN], on).keep());
    ys.push(tensor(train.y.subarray(b * batch, (b + 1) * batch), [batch, 1], on).keep());
  }

  let trainLoss = NaN;
  const t0 = performance.now();
  for (let step = 0; step < steps; step++) {
    const b = step % xs.length;
    const loss = scope(() => {
      opt.zeroGrad();
      const l = mseLoss(model.forward(xs[b]), ys[b]);
      l.backward();
      opt.step({ clip: opt.clip(1.0) });
      sched.step();
      return l;
    });
    let read: number | undefined;
    if ((step + 1) % logEvery === 0 || step === steps - 1) {
      read = trainLoss = await loss.item();
    } else {
      backend.flush();
    }
    loss.dispose();
    opts.onStep?.(step, read);
  }
  const seconds = (performance.now() - t0) / 1000;

  // Held-out evaluation beside the constant baseline (the training mean).
  let trainMean = 0;
  for (const v of train.y) trainMean += v / trainRows;
  model.eval();
  const [testMse, baselineMse] = await scopeAsync(async () => {
    const x = tensor(test.x, [test.y.length, IN], on);
    const y = tensor(test.y, [test.y.length, 1], on);
    const mse = await noGrad(() => {
      const err = sub(model.forward(x), y);
      return mean(mul(err, err));
    }).item();
    let base = 0;
    for (const v of test.y) base += (v - trainMean) ** 2 / test.y.length;
    return [mse, base];
  });

  let checkpoint: string | undefined;
  if (opts.outDir) {
    await Deno.mkdir(opts.outDir, { recursive: true });
    checkpoint = `${opts.outDir}/mlp_demo.safetensors`;
    await saveSafetensors(checkpoint, model.stateDict(), { job: "mlp_demo", steps: `${steps}` });
  }
  for (const t of [...xs, ...ys]) t.dispose();
  opt.dispose();
  model.dispose();
  return {
    trainLoss,
    testMse,
    baselineMse,
    r2: 1 - testMse / baselineMse,
    rowsPerSecond: (steps * batch) / seconds,
    checkpoint,
  };
}
