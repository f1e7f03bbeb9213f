/**
 * The trainer on a link-prediction query (LIST_DISTINCT) end to end on a tiny synthetic
 * database: metrics.json with ranked metrics and both baselines, kill-and-resume, and
 * `predict` writing ranked targets; and `predict` applying a query's WHERE filter.
 */
import assert from "node:assert/strict";
import { cpuBackend } from "../core/cpu/mod.ts";
import { train, TrainInterrupted, type TrainJob } from "./trainer.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { predict } from "./predict.ts";
import { parsePlan } from "./plan_parse.ts";
import { generateSyntheticDb } from "./synthetic.ts";

const SYNTHETIC = { users: 120, items: 30, stores: 6, transactions: 2000, days: 200 };
const LINK_QUERY = "PREDICT LIST_DISTINCT(transactions.item_id, 0, 30) FOR EACH users.user_id";

const TINY_PLAN = `
model: { architecture: sage, channels: 16, layers: 2, aggregation: sum, dropout: 0.1 }
sampling:
  num_neighbors:
    - hop1: { default: 4 }
    - hop2: { default: 2 }
training: { batch_size: 32, lr: 0.005, schedule: { warmup: 2 }, early_stopping: { patience: 5 } }
`;

function job(out: string, extra: Partial<TrainJob> = {}): TrainJob {
  return {
    backend: cpuBackend(),
    out,
    synthetic: SYNTHETIC,
    query: LINK_QUERY,
    plan: parsePlan(TINY_PLAN),
    epochs: 2,
    workers: 0,
    logEvery: 1,
    ...extra,
  };
}

/** Parses the rows of a CSV without quoted fields. */
async function csvRows(path: string): Promise<string[][]> {
  const text = (await Deno.readTextFile(path)).trim();
  return text.split("\n").map((l) => l.split(","));
}

Deno.test("train: link prediction end to end (CPU): ranked metrics, baselines, predict", async () => {
  const out = await Deno.makeTempDir({ prefix: "fanout-link-" });
  try {
    const r = await train(job(out));
    const m = r.metrics;
    assert.equal(m.task, "link");
    assert.equal(m.metric, "map@10");
    const keys = ["map@10", "precision@10", "recall@10"];
    for (const split of [m.val, m.test]) {
      for (const who of ["model", "constant", "entity"] as const) {
        assert.deepEqual(Object.keys(split[who]).sort(), keys);
        for (const v of Object.values(split[who])) assert.ok(v >= 0 && v <= 1, `${who}: ${v}`);
      }
    }
    assert.match(m.baselines.constant, /most popular targets/);
    assert.match(m.baselines.entity, /own past targets .*transactions\.item_id->items\.item_id/);
    assert.equal(m.history.length, 2);
    assert.ok(m.throughput.steps > 0 && m.throughput.seedsPerSecond > 0);
    const ck = await loadCheckpoint(r.bestCheckpoint);
    assert.equal(ck.spec.targetType, "items");
    assert.equal(ck.output.k, 10);
    assert.ok(ck.weights.has("history"), [...ck.weights.keys()].join(", "));
    const names = [...ck.weights.keys()];
    assert.ok(names.some((k) => k.startsWith("body.targetHead.")), names.join(", "));
    assert.ok(names.some((k) => k.startsWith("body.head.")), names.join(", "));

    // Predict: k ranked targets per entity, ranks 1..k, distinct targets that exist.
    const at = "2024-06-01";
    const p = await predict({
      run: out,
      backend: cpuBackend(),
      at,
      entities: ["0", "5"],
      out: `${out}/p.csv`,
      k: 5,
    });
    assert.deepEqual(p.columns, ["rank", "score"]);
    assert.equal(p.keys.length, 10);
    assert.equal(p.targets!.length, 10);
    const rows = await csvRows(`${out}/p.csv`);
    assert.deepEqual(rows[0], ["user_id", "anchor_time", "rank", "target_item_id", "score"]);
    assert.equal(rows.length, 11);
    for (const user of ["0", "5"]) {
      const mine = rows.slice(1).filter((row) => row[0] === user);
      assert.deepEqual(mine.map((row) => Number(row[2])), [1, 2, 3, 4, 5]);
      const items = mine.map((row) => Number(row[3]));
      assert.equal(new Set(items).size, 5);
      for (const it of items) assert.ok(it >= 0 && it < SYNTHETIC.items, String(it));
      const scores = mine.map((row) => Number(row[4]));
      for (let i = 1; i < scores.length; i++) assert.ok(scores[i] <= scores[i - 1], String(scores));
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("train: a link run killed mid-epoch and resumed has the uninterrupted run's losses", async () => {
  const root = await Deno.makeTempDir({ prefix: "fanout-link-resume-" });
  try {
    const full = new Map<number, number>();
    const a = await train(
      job(`${root}/a`, { checkpointEvery: 2, onLoss: (s, l) => full.set(s, l) }),
    );
    const perEpoch = a.metrics.throughput.steps / 2;
    assert.ok(perEpoch >= 3, `want 3 or more batches per epoch, got ${perEpoch}`);
    const kill = perEpoch + 1;
    await assert.rejects(
      train(job(`${root}/b`, { checkpointEvery: 2, interruptAfterStep: kill })),
      TrainInterrupted,
    );
    const after = new Map<number, number>();
    const b = await train(job(`${root}/b`, { resume: true, onLoss: (s, l) => after.set(s, l) }));
    assert.ok(after.size > 0);
    for (const [s, l] of after) {
      // The CPU reference computes in float64; checkpoints hold float32.
      assert.ok(Math.abs(l - full.get(s)!) <= 1e-5 * Math.abs(l) + 1e-6, `step ${s}: ${l}`);
    }
    assert.equal(b.metrics.throughput.steps, a.metrics.throughput.steps);
    assert.deepEqual(b.metrics.test.entity, a.metrics.test.entity);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("predict: with no entity list, only entities passing the query's WHERE are scored", async () => {
  const root = await Deno.makeTempDir({ prefix: "fanout-where-" });
  try {
    const db = await generateSyntheticDb(`${root}/data`, SYNTHETIC);
    // An entity filter on a static column and on an aggregate over the past 60 days.
    const query = "PREDICT COUNT(transactions.*, 0, 30) > 0 FOR EACH users.user_id " +
      "WHERE users.region = 'r1' AND COUNT(transactions.*, -60, 0) > 0";
    await train(job(`${root}/run`, {
      data: db.dir,
      schema: db.schemaPath,
      synthetic: undefined,
      query,
      epochs: 1,
    }));
    const at = "2024-05-01T00:00:00Z", atSec = Date.parse(at) / 1000;
    const p = await predict({ run: `${root}/run`, backend: cpuBackend(), at });

    // Brute force from the CSV files.
    const users = (await csvRows(`${db.dir}/users.csv`)).slice(1);
    const tx = (await csvRows(`${db.dir}/transactions.csv`)).slice(1);
    const head = (await csvRows(`${db.dir}/transactions.csv`))[0];
    const [iu, it] = [head.indexOf("user_id"), head.indexOf("ts")];
    const secs = (s: string) => Date.parse(s.replace(" ", "T") + "Z") / 1000;
    const active = new Set<string>();
    for (const row of tx) {
      const t = secs(row[it]);
      if (t > atSec - 60 * 86400 && t <= atSec) active.add(row[iu]);
    }
    const expected = users.filter((u) => secs(u[1]) <= atSec && u[3] === "r1" && active.has(u[0]))
      .map((u) => Number(u[0])).sort((a, b) => a - b);
    assert.ok(expected.length > 0 && expected.length < SYNTHETIC.users, String(expected.length));
    assert.deepEqual(p.keys.map(Number).sort((a, b) => a - b), expected);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
