/**
 * The training loop on WebGPU: agrees with the CPU float64 reference, and a
 * step allocates nothing once the pool is warm and never reads back.
 */
import { cpuBackend } from "../core/cpu/mod.ts";
import { MLP } from "../core/nn.ts";
import { Adam } from "../core/optim.ts";
import { mseLoss } from "../core/ops.ts";
import { Rng } from "../core/random.ts";
import { scope, tensor } from "../core/tensor.ts";
import type { Backend } from "../core/backend.ts";
import { gpuBackend, noGpu } from "./gpu_env.ts";

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

/** Same data, same initial weights (same seed), Adam for `steps` steps. */
async function trainMlp(backend: Backend, steps: number) {
  const rng = new Rng(11);
  const rows = 256;
  const xs = Float32Array.from({ length: rows * 4 }, () => rng.normal());
  const ys = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    ys[r] = Math.sin(xs[r * 4]) + 0.5 * xs[r * 4 + 1] * xs[r * 4 + 2] - 0.3 * xs[r * 4 + 3];
  }
  const x = tensor(xs, [rows, 4], { backend }).keep();
  const y = tensor(ys, [rows, 1], { backend }).keep();
  const model = new MLP([4, 32, 32, 1], { backend, rng: new Rng(5), activation: "tanh" });
  const opt = new Adam(model.parameters(), { lr: 1e-2 });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const loss = scope(() => {
      opt.zeroGrad();
      const l = mseLoss(model.forward(x), y);
      l.backward();
      opt.step();
      return l;
    });
    if (s === 0 || s === steps - 1) losses.push(await loss.item());
    loss.dispose();
  }
  const params = await Promise.all(model.parameters().map((p) => p.data()));
  return { losses, params, model, opt, x, y };
}

Deno.test({
  name: "MLP + Adam reaches a set loss on WebGPU and on the CPU reference, with matching weights",
  ignore: noGpu,
  async fn() {
    const steps = 150;
    const cpu = await trainMlp(cpuBackend(), steps);
    const gpu = await trainMlp(gpuBackend!, steps);
    // The target is fixed before looking at results: a 20× drop from the initial loss
    // and an absolute level the problem allows.
    for (const [name, r] of [["cpu", cpu], ["webgpu", gpu]] as const) {
      assert(r.losses[1] < 0.05, `${name}: final loss ${r.losses[1]} not below 0.05`);
      assert(r.losses[1] < r.losses[0] / 20, `${name}: ${r.losses}`);
    }
    // Same start, same updates: f32 rounding is all that separates them. Adam's
    // normalised steps keep the drift near lr·√steps·ε_f32-scale; 2e-3 absolute on
    // weights of order 0.1–1 after 150 steps is that bound with margin.
    let worst = 0;
    cpu.params.forEach((p, i) => {
      for (let j = 0; j < p.length; j++) {
        worst = Math.max(worst, Math.abs(p[j] - gpu.params[i][j]));
      }
    });
    assert(worst < 2e-3, `weights differ by ${worst}`);
    for (const r of [cpu, gpu]) {
      r.opt.dispose();
      r.model.dispose();
      r.x.dispose();
      r.y.dispose();
    }
  },
});

Deno.test({
  name: "a warm training step creates no GPU buffer, reads nothing back, and submits once",
  ignore: noGpu,
  async fn() {
    const backend = gpuBackend!;
    const stats = backend.runtime.stats;
    const rng = new Rng(1);
    const x = tensor(Float32Array.from({ length: 512 * 8 }, () => rng.normal()), [512, 8], {
      backend,
    }).keep();
    const y = tensor(Float32Array.from({ length: 512 }, () => rng.normal()), [512, 1], { backend })
      .keep();
    const model = new MLP([8, 64, 64, 1], { backend, rng, norm: "layer", dropout: 0.1 });
    const opt = new Adam(model.parameters(), { lr: 1e-3 });
    const step = () =>
      scope(() => {
        opt.zeroGrad();
        mseLoss(model.forward(x), y).backward();
        opt.step({ clip: opt.clip(1.0) });
      });
    step();
    step();
    await backend.sync();
    const before = { ...stats };
    // Count every buffer the device creates (pool misses, staging for uploads, anything).
    const device = backend.runtime.device;
    const createBuffer = device.createBuffer.bind(device);
    let created = 0;
    device.createBuffer = (d: GPUBufferDescriptor) => {
      created++;
      return createBuffer(d);
    };
    try {
      for (let i = 0; i < 5; i++) {
        step();
        backend.flush();
      }
    } finally {
      device.createBuffer = createBuffer;
    }
    assert(created === 0, `${created} device buffers created by warm steps`);
    assert(
      stats.buffersCreated === before.buffersCreated,
      `${stats.buffersCreated - before.buffersCreated} buffers created`,
    );
    assert(stats.reads === before.reads, "a step read back");
    assert(
      stats.submits - before.submits === 5,
      `${stats.submits - before.submits} submits for 5 steps`,
    );
    opt.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
    await backend.sync();
  },
});
