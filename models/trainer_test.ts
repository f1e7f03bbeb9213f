/**
 * The trainer end to end on a tiny synthetic database: metrics.json, the
 * checkpoints, kill-and-resume, and predict.
 */
import assert from "node:assert/strict";
import { cpuBackend } from "../core/cpu/mod.ts";
import type { Backend } from "../core/backend.ts";
import { gpuBackend, noGpu } from "../tests/gpu_env.ts";
import { type RunMetrics, train, TrainInterrupted, type TrainJob } from "./trainer.ts";
import { CHECKPOINT_FILES, loadCheckpoint } from "./checkpoint.ts";
import { predict } from "./predict.ts";
import { parsePlan } from "./plan_parse.ts";

const SYNTHETIC = { users: 160, items: 40, stores: 8, transactions: 2500, days: 200 };

/** A small plan: narrow model, small batches and fanouts. */
const TINY_PLAN = `
model: { architecture: sage, channels: 16, layers: 2, aggregation: sum, dropout: 0.1 }
sampling:
  num_neighbors:
    - hop1: { default: 4 }
    - hop2: { default: 2 }
training: { batch_size: 64, lr: 0.005, schedule: { warmup: 2 }, early_stopping: { patience: 5 } }
`;

function job(backend: Backend, out: string, extra: Partial<TrainJob> = {}): TrainJob {
  return {
    backend,
    out,
    synthetic: SYNTHETIC,
    plan: parsePlan(TINY_PLAN),
    epochs: 2,
    workers: 0,
    logEvery: 1,
    ...extra,
  };
}

function checkMetrics(m: RunMetrics, epochs: number): void {
  assert.equal(m.task, "binary");
  assert.equal(m.metric, "auroc");
  assert.equal(m.entityTable, "users");
  assert.ok(m.rows.train > 0 && m.rows.val > 0 && m.rows.test > 0);
  for (const split of [m.val, m.test]) {
    for (const who of ["model", "constant", "entity"] as const) {
      assert.deepEqual(Object.keys(split[who]).sort(), ["accuracy", "ap", "auroc", "f1"]);
      for (const v of Object.values(split[who])) assert.ok(v >= 0 && v <= 1, `${who}: ${v}`);
    }
    assert.equal(split.constant.auroc, 0.5);
  }
  assert.equal(m.history.length, epochs);
  assert.ok(m.best.epoch >= 0 && m.best.epoch < epochs);
  assert.ok(m.throughput.seedsPerSecond > 0);
  assert.ok(m.throughput.steps > 0);
  assert.ok(m.throughput.waitShare >= 0 && m.throughput.waitShare <= 1);
  assert.match(m.baselines.constant, /positive rate/);
  assert.match(m.baselines.entity, /logistic regression/);
}

async function runEndToEnd(backend: Backend, workers: number): Promise<void> {
  const out = await Deno.makeTempDir({ prefix: "fanout-train-" });
  try {
    const r = await train(job(backend, out, { workers }));
    checkMetrics(r.metrics, 2);
    const onDisk: RunMetrics = JSON.parse(await Deno.readTextFile(`${out}/metrics.json`));
    assert.deepEqual(onDisk.test, r.metrics.test);
    assert.deepEqual(onDisk.throughput, r.metrics.throughput);
    for (const dir of ["best", "last"]) {
      for (const f of Object.values(CHECKPOINT_FILES)) {
        await Deno.stat(`${out}/checkpoints/${dir}/${f}`);
      }
    }
    const last = await loadCheckpoint(`${out}/checkpoints/last`);
    assert.equal(last.state.done, true);
    assert.equal(last.state.step, r.metrics.throughput.steps);
    assert.equal(last.sampler.seedType, "users");
    assert.ok(last.optimizer.tensors.size > 0);
    assert.match(last.planYaml, /num_neighbors/);

    // Predict: all users existing at a time, and a list, as CSV and Parquet.
    const all = await predict({ run: out, backend, at: "2024-05-01", out: `${out}/p.csv` });
    assert.ok(all.keys.length > 0 && all.keys.length <= SYNTHETIC.users);
    assert.deepEqual(all.columns, ["probability"]);
    for (const p of all.values) assert.ok(p >= 0 && p <= 1);
    const csv = (await Deno.readTextFile(`${out}/p.csv`)).trim().split("\n");
    assert.equal(csv[0], "user_id,anchor_time,probability");
    assert.equal(csv.length, all.keys.length + 1);
    const some = await predict({
      run: out,
      backend,
      at: "2024-05-01",
      entities: [String(all.keys[0]), String(all.keys[1])],
      out: `${out}/p.parquet`,
    });
    assert.deepEqual(some.keys, [all.keys[0], all.keys[1]]);
    assert.ok((await Deno.stat(`${out}/p.parquet`)).size > 0);
    await assert.rejects(
      predict({ run: out, backend, entities: ["no-such-user"] }),
      /not in table "users"/,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

Deno.test("train: a tiny synthetic run end to end on the CPU backend, then predict", async () => {
  await runEndToEnd(cpuBackend(), 0);
});

Deno.test({
  name: "train: a tiny synthetic run end to end on WebGPU (sampler workers), then predict",
  ignore: noGpu,
  async fn() {
    await runEndToEnd(gpuBackend!, 1);
  },
});

/**
 * Kill-and-resume: a run interrupted mid-epoch (after step 11, the last
 * checkpoint being at step 8) and resumed has, at every step after the
 * checkpoint, the loss of an uninterrupted run.
 */
async function killAndResume(backend: Backend, exact: boolean): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "fanout-resume-" });
  try {
    const full = new Map<number, number>();
    const a = await train(
      job(backend, `${root}/a`, { checkpointEvery: 4, onLoss: (s, l) => full.set(s, l) }),
    );
    const steps = a.metrics.throughput.steps;
    const perEpoch = steps / 2;
    assert.ok(perEpoch >= 5, `want 5 or more batches per epoch, got ${perEpoch}`);
    const kill = perEpoch + 3; // mid-epoch 2: checkpoints at 4, 8, …, and at the epoch's end
    const lastCheckpoint = Math.max(perEpoch, Math.floor(kill / 4) * 4);

    const before = new Map<number, number>();
    await assert.rejects(
      train(job(backend, `${root}/b`, {
        checkpointEvery: 4,
        interruptAfterStep: kill,
        onLoss: (s, l) => before.set(s, l),
      })),
      TrainInterrupted,
    );
    for (let s = 1; s <= kill; s++) assert.equal(before.get(s), full.get(s), `step ${s}`);
    const ck = await loadCheckpoint(`${root}/b/checkpoints/last`);
    assert.equal(ck.state.step, lastCheckpoint);
    assert.equal(ck.state.epoch, 1);

    const after = new Map<number, number>();
    const b = await train(
      job(backend, `${root}/b`, { resume: true, onLoss: (s, l) => after.set(s, l) }),
    );
    assert.equal(Math.min(...after.keys()), lastCheckpoint + 1, "resumes at the next step");
    for (const [s, l] of after) {
      if (exact) assert.equal(l, full.get(s), `step ${s}`);
      else assert.ok(Math.abs(l - full.get(s)!) <= 1e-5 * Math.abs(l) + 1e-6, `step ${s}: ${l}`);
    }
    assert.equal(b.metrics.throughput.steps, steps);
    if (exact) assert.deepEqual(b.metrics.test.model, a.metrics.test.model);
    assert.deepEqual(b.metrics.test.entity, a.metrics.test.entity);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

// The CPU reference computes in float64 and checkpoints hold float32, so a resumed CPU run
// matches to float32 rounding; on WebGPU (float32 throughout) it matches bit for bit.
Deno.test("train: a run killed mid-epoch and resumed has the uninterrupted run's losses (CPU)", async () => {
  await killAndResume(cpuBackend(), false);
});

Deno.test({
  name: "train: a run killed mid-epoch and resumed has the uninterrupted run's losses (WebGPU)",
  ignore: noGpu,
  async fn() {
    await killAndResume(gpuBackend!, true);
  },
});

Deno.test("train: a `fanout train` process killed with SIGKILL resumes with the same losses", async () => {
  const root = await Deno.makeTempDir({ prefix: "fanout-kill-" });
  try {
    const { generateSyntheticDb, DEFAULT_QUERY } = await import("./synthetic.ts");
    const db = await generateSyntheticDb(`${root}/data`, SYNTHETIC);
    await Deno.writeTextFile(`${root}/plan.yaml`, TINY_PLAN);
    const common = { data: db.dir, schema: db.schemaPath, query: DEFAULT_QUERY };
    const full = new Map<number, number>();
    await train(job(cpuBackend(), `${root}/a`, { ...common, onLoss: (s, l) => full.set(s, l) }));

    const out = `${root}/b`;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../cli.ts", import.meta.url).pathname,
        "train",
        ...["--data", db.dir, "--schema", db.schemaPath, "--query", DEFAULT_QUERY],
        ...["--plan", `${root}/plan.yaml`, "--out", out, "--epochs", "2", "--backend", "cpu"],
        ...["--workers", "0", "--checkpoint-every", "2"],
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Kill once a mid-epoch checkpoint of the second epoch is on disk.
    let killedAt = -1;
    for (let i = 0; i < 2000 && killedAt < 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      try {
        const st = JSON.parse(await Deno.readTextFile(`${out}/checkpoints/last/state.json`));
        if (st.epoch === 1 && st.batch >= 2) {
          child.kill("SIGKILL");
          killedAt = st.step;
        }
      } catch {
        // not written yet
      }
    }
    const status = await child.status;
    assert.ok(killedAt > 0, "the process finished before it could be killed");
    assert.equal(status.success, false);

    const after = new Map<number, number>();
    await train(
      job(cpuBackend(), out, { resume: true, onLoss: (s, l) => after.set(s, l) }),
    );
    const first = Math.min(...after.keys());
    assert.ok(first > killedAt - 1, `resumed at step ${first}, killed after ${killedAt}`);
    for (const [s, l] of after) {
      assert.ok(Math.abs(l - full.get(s)!) <= 1e-5 * Math.abs(l) + 1e-6, `step ${s}: ${l}`);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("train: regression, multiclass (a static target) and a training table file", async () => {
  const root = await Deno.makeTempDir({ prefix: "fanout-tasks-" });
  try {
    const { generateSyntheticDb } = await import("./synthetic.ts");
    const db = await generateSyntheticDb(`${root}/data`, SYNTHETIC);
    const base = { data: db.dir, schema: db.schemaPath, epochs: 1 };
    const backend = cpuBackend();

    const reg = await train(job(backend, `${root}/reg`, {
      ...base,
      query: "PREDICT SUM(transactions.amount, 0, 30) FOR EACH users.user_id",
    }));
    assert.equal(reg.metrics.task, "regression");
    assert.equal(reg.metrics.metric, "mae");
    assert.deepEqual(Object.keys(reg.metrics.test.model).sort(), ["mae", "r2", "rmse"]);
    assert.match(reg.metrics.baselines.constant, /global mean/);
    assert.match(reg.metrics.baselines.entity, /ridge regression/);
    const p = await predict({ run: `${root}/reg`, backend, entities: ["0", "1"] });
    assert.deepEqual(p.columns, ["prediction"]);
    assert.ok(p.values.every(Number.isFinite));

    // A static target: the column is excluded from the features (else it would leak).
    const mc = await train(job(backend, `${root}/mc`, {
      ...base,
      query: "PREDICT users.region FOR EACH users.user_id",
    }));
    assert.equal(mc.metrics.task, "multiclass");
    assert.deepEqual(Object.keys(mc.metrics.test.model).sort(), ["accuracy", "macro_f1"]);
    const manifest = JSON.parse(await Deno.readTextFile(`${root}/mc/features/manifest.json`));
    const userCols = manifest.tables.users.columns.map((c: { name: string }) => c.name);
    assert.ok(userCols.includes("age") && !userCols.includes("region"), String(userCols));
    const pm = await predict({ run: `${root}/mc`, backend, entities: ["3"] });
    assert.equal(pm.columns[0], "class");
    assert.equal(pm.columns.length, 1 + 5); // five regions
    const probs = Array.from(pm.values.subarray(1));
    assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-4);

    // A training table file (random labels: this checks the plumbing only).
    const lines = ["user_id,time,label,split"];
    const splitOf = ["train", "train", "train", "val", "test"];
    for (let u = 0; u < SYNTHETIC.users; u++) {
      for (let k = 0; k < 5; k++) {
        const day = 100 + 20 * k;
        const time = new Date(Date.UTC(2024, 0, 1) + day * 86400e3).toISOString().slice(0, 10);
        lines.push(`${u},${time},${(u * 7 + k) % 3 === 0 ? 1 : 0},${splitOf[k]}`);
      }
    }
    await Deno.writeTextFile(`${root}/table.csv`, lines.join("\n") + "\n");
    const tab = await train(job(backend, `${root}/tab`, {
      ...base,
      table: {
        path: `${root}/table.csv`,
        task: "binary",
        entityTable: "users",
        timeColumn: "time",
        labelColumn: "label",
        splitColumn: "split",
      },
    }));
    assert.equal(tab.metrics.rows.test, SYNTHETIC.users);
    assert.match(tab.metrics.query, /table\.csv/);
    // Encoders see rows up to the first validation anchor only.
    const cutoff = JSON.parse(await Deno.readTextFile(`${root}/tab/features/manifest.json`)).cutoff;
    assert.ok(cutoff < Date.UTC(2024, 0, 1) / 1000 + 160 * 86400, String(cutoff));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("train: bad jobs are refused with a message", async () => {
  const out = await Deno.makeTempDir({ prefix: "fanout-train-bad-" });
  try {
    await assert.rejects(
      train({ backend: cpuBackend(), out, schema: "x.yaml" }),
      /need --data/,
    );
    await assert.rejects(
      train({ backend: cpuBackend(), out, data: "nowhere" }),
      /needs --schema/,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
