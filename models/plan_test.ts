import assert from "node:assert/strict";
import { buildGraph } from "../store/graph_build.ts";
import { graphFromDatabase } from "../store/graph_build.ts";
import { Database } from "../store/database.ts";
import { loadSchema } from "../store/schema.ts";
import type { Schema } from "../store/types.ts";
import { compileSampling } from "../sampler/config.ts";
import { sampleBatch } from "../sampler/sample.ts";
import {
  defaultPlan,
  mergePlan,
  type ModelPlan,
  PlanError,
  planToYaml,
  planToYamlValue,
  validatePlan,
} from "./plan.ts";
import { loadPlan, parsePlan } from "./plan_parse.ts";
import { seedDegree, suggestPlan, suggestPlanExplained } from "./plan_suggest.ts";
import { generateSyntheticDb } from "./synthetic.ts";

/** The messages of the PlanError that `fn` throws. */
function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof PlanError) return e.problems;
    throw e;
  }
  throw new Error("no PlanError was thrown");
}

const EDGES = ["tx.uid->users.uid", "users.uid->tx.uid"];

Deno.test("plan: parse errors name file:line:col, the field and the valid choices", () => {
  const text = [
    "model:", //                                   1
    "  architecture: sagee", //                    2
    "  channels: 0", //                            3
    "  dropout: 1.5", //                           4
    "training:", //                                5
    "  batchsize: 64", //                          6
    "  optimizer: adam", //                        7
    "  early_stopping: { metric: mapk }", //       8
    "  schedule: { kind: linear }", //             9
    "sampling:", //                                10
    "  num_neighbors:", //                         11
    "    - hop1: { default: 4, users.uid->txs.uid: 2 }", // 12
    "    - hop3: { default: 1 }", //               13
    "  strategy: { default: recent }", //          14
    "data: { val_cutoff: tomorrow }", //           15
    "extra: 1", //                                 16
  ].join("\n");
  const p = problems(() => parsePlan(text, "my.yaml", { edgeTypes: EDGES }));
  const expect = [
    'my.yaml:2:17: model.architecture: unknown value "sagee"; valid: sage, gat, transformer ' +
    '(did you mean "sage"?)',
    "my.yaml:3:13: model.channels: must be an integer in [1, 4096], got 0",
    "my.yaml:4:12: model.dropout: must be a number in [0, 1), got 1.5",
    'my.yaml:6:3: training: unknown key "batchsize"; valid: loss, epochs, batch_size,',
    'my.yaml:8:29: training.early_stopping.metric: unknown metric "mapk"; valid: auroc,',
    'my.yaml:9:21: training.schedule.kind: unknown value "linear"; valid: cosine, step, constant',
    'my.yaml:12:27: sampling.num_neighbors[0].hop1: unknown edge type "users.uid->txs.uid" ' +
    '(did you mean "users.uid->tx.uid"?)',
    'my.yaml:13:7: sampling.num_neighbors[1]: expected a single key "hop2"',
    'my.yaml:14:24: sampling.strategy.default: unknown strategy "recent" (did you mean "recency"?)',
    'my.yaml:15:21: data.val_cutoff: cannot read "tomorrow" as a time',
    'my.yaml:16:1: unknown key "extra"; valid: sampling, model, training, data',
  ];
  assert.equal(p.length, expect.length, p.join("\n"));
  expect.forEach((e, i) => assert.ok(p[i].startsWith(e), `${p[i]}\n  expected: ${e}`));
  assert.ok(p[3].includes('(did you mean "batch_size"?)'));

  // Invalid YAML and duplicate keys, with positions.
  assert.match(
    problems(() => parsePlan("model: [1,\n", "a.yaml"))[0],
    /^a\.yaml:\d+:\d+: invalid YAML/,
  );
  assert.match(
    problems(() => parsePlan("model:\n  layers: 2\n  layers: 3\n", "b.yaml"))[0],
    /^b\.yaml:3:3: invalid YAML: duplicate key/,
  );
  // Sections must be mappings; values of the wrong kind.
  assert.deepEqual(problems(() => parsePlan("model: 3\n", "c.yaml")), [
    'c.yaml:1:8: model: "model" must be a mapping with keys architecture, channels, layers, ' +
    "aggregation, dropout, norm, heads",
  ]);
  assert.deepEqual(problems(() => parsePlan("training: { lr: fast }\n", "d.yaml")), [
    'd.yaml:1:17: training.lr: must be a number > 0, got "fast"',
  ]);
  const rule = "sampling: { strategy: { default: { strategy: last, half_life: 3d } } }";
  assert.deepEqual(problems(() => parsePlan(rule, "e.yaml")), [
    `e.yaml:1:${rule.indexOf("3d") + 1}: sampling.strategy.default.half_life: half_life applies ` +
    'only to the recency strategy, not "last"',
  ]);
});

Deno.test("plan: an empty file is no overrides; partial files parse to the TypeScript form", async () => {
  assert.deepEqual(parsePlan("", "empty.yaml"), {});
  assert.deepEqual(parsePlan("# nothing\n", "empty.yaml"), {});
  assert.deepEqual(
    parsePlan(
      "training:\n  batch_size: 64\n  early_stopping: { patience: 0 }\ndata:\n  max_train_anchors: 5\n",
    ),
    { training: { batchSize: 64, earlyStopping: { patience: 0 } }, data: { maxTrainAnchors: 5 } },
  );
  await assert.rejects(() => loadPlan("/nonexistent/plan.yaml"), /no such plan file/);
});

Deno.test("plan: YAML round trip (with and without comments)", () => {
  const plans: ModelPlan[] = [
    defaultPlan("binary"),
    defaultPlan("link"),
    defaultPlan("regression"),
  ];
  const p = defaultPlan("multiclass");
  p.sampling = {
    num_neighbors: [16, 8, -1],
    strategy: { default: "last", "users.uid->tx.uid": { strategy: "recency", half_life: "12h" } },
  };
  p.model.architecture = "transformer";
  p.training.schedule = { kind: "step", warmup: 0, every: 2, gamma: 0.25 };
  p.data = { valCutoff: "2024-10-01", testCutoff: 1730419200, maxTrainAnchors: 12 };
  plans.push(p);
  for (const plan of plans) {
    for (const comments of [true, false]) {
      const text = planToYaml(plan, { comments, header: "suggested by fanout plan" });
      assert.deepEqual(parsePlan(text, "rt.yaml", { edgeTypes: EDGES }), plan, text);
      if (!comments) assert.ok(!text.includes("# sage"), text);
    }
  }
  assert.ok(planToYaml(p).includes("batch_size: 512 # seeds per batch"));
  assert.equal(
    planToYamlValue(p).training && "batch_size" in (planToYamlValue(p).training as object),
    true,
  );
});

Deno.test("plan: merge overrides any field, deep, without changing its inputs", () => {
  const base = defaultPlan("binary");
  const before = structuredClone(base);
  const over = parsePlan([
    "sampling: { num_neighbors: [4] }",
    "model: { channels: 32 }",
    "training: { schedule: { warmup: 7 }, early_stopping: { metric: ap } }",
    "data: { val_cutoff: 2024-09-01 }",
  ].join("\n"));
  const m = mergePlan(base, over);
  assert.deepEqual(base, before);
  assert.deepEqual(m.sampling.num_neighbors, [4]); // replaced whole
  assert.deepEqual(m.sampling.strategy, base.sampling.strategy);
  assert.equal(m.model.channels, 32);
  assert.equal(m.model.architecture, "sage");
  assert.deepEqual(m.training.schedule, { ...base.training.schedule, warmup: 7 });
  assert.deepEqual(m.training.earlyStopping, { patience: 3, metric: "ap" });
  assert.deepEqual(m.data, { valCutoff: "2024-09-01" });
  // null clears an optional field and is ignored elsewhere.
  const cleared = mergePlan(m, { data: { valCutoff: null }, model: { channels: null as never } });
  assert.deepEqual(cleared.data, {});
  assert.equal(cleared.model.channels, 32);
  // A strategy map replaces a strategy name whole, and the reverse.
  const s = mergePlan(base, { sampling: { strategy: "uniform" } });
  assert.equal(s.sampling.strategy, "uniform");
});

Deno.test("plan: validatePlan checks a complete plan against the task and the graph", () => {
  const graph = buildGraph({
    nodes: [
      { name: "users", count: 2, primaryKey: "uid", keys: Int32Array.of(7, 9) },
      { name: "tx", count: 3, times: Float64Array.of(1e9, 1e9 + 5, 1e9 + 1) },
    ],
    foreignKeys: [{
      table: "tx",
      column: "uid",
      parent: "users",
      childRow: Int32Array.of(0, 1, 2),
      parentRow: Int32Array.of(1, 1, 0),
    }],
  });
  validatePlan(defaultPlan("binary"), { task: "binary", graph });
  const bad = defaultPlan("binary");
  bad.model.layers = 3;
  bad.model.architecture = "gat";
  bad.model.heads = 3;
  bad.training.loss = "mse";
  bad.sampling.num_neighbors = [{ hop1: { default: 2, "users.uid->tx.id": 1 } }, {
    hop2: { default: 1 },
  }];
  const p = problems(() => validatePlan(bad, { task: "binary", graph, source: "run.yaml" }));
  assert.equal(p.length, 1, p.join("\n"));
  assert.match(
    p[0],
    /^run\.yaml: sampling\.num_neighbors\[0\]\.hop1: unknown edge type "users\.uid->tx\.id"/,
  );
  bad.sampling.num_neighbors = [2, 1];
  assert.deepEqual(problems(() => validatePlan(bad, { task: "binary", graph })), [
    "plan: model.layers: 3 layers but sampling.num_neighbors has 2 hops; a layer aggregates one " +
    "sampled hop (use at most 2)",
    "plan: model.heads: 3 heads do not divide model.channels 64 (gat splits the channels between heads)",
    'plan: training.loss: "mse" does not fit a binary task; valid: bce',
  ]);
  const missing = structuredClone(defaultPlan()) as unknown as Record<
    string,
    Record<string, unknown>
  >;
  delete missing.training.lr;
  assert.deepEqual(problems(() => validatePlan(missing as unknown as ModelPlan)), [
    'plan: training: missing "lr"',
  ]);
  const metric = defaultPlan("link");
  assert.equal(metric.training.earlyStopping.metric, "map@10");
  validatePlan(metric, { task: "link" });
  metric.training.earlyStopping.metric = "auroc";
  assert.match(problems(() => validatePlan(metric, { task: "link" }))[0], /valid: map@k/);
});

Deno.test("plan: hops by sparsity on a sparse graph", () => {
  // 10 users with one transaction each: degree 1 < 4, so 3 hops.
  const n = 10;
  const graph = buildGraph({
    nodes: [
      {
        name: "users",
        count: n,
        primaryKey: "uid",
        keys: Int32Array.from({ length: n }, (_, i) => i),
      },
      { name: "tx", count: n, times: Float64Array.from({ length: n }, (_, i) => 1e9 + i) },
    ],
    foreignKeys: [{
      table: "tx",
      column: "uid",
      parent: "users",
      childRow: Int32Array.from({ length: n }, (_, i) => i),
      parentRow: Int32Array.from({ length: n }, (_, i) => i),
    }],
  });
  const schema: Schema = { tables: [] };
  assert.equal(seedDegree(graph, "users"), 1);
  const { plan, notes } = suggestPlanExplained({
    graph,
    schema,
    seedType: "users",
    task: "regression",
  });
  assert.equal(plan.sampling.num_neighbors.length, 3);
  assert.equal(plan.model.layers, 3);
  assert.equal(plan.sampling.strategy, "uniform"); // no table has a time column in `schema`
  assert.equal(plan.training.loss, "l1");
  assert.equal(plan.training.earlyStopping.metric, "mae");
  assert.match(notes[0], /hops 3: a users row has 1\.0 neighbours/);
  validatePlan(plan, { task: "regression", graph });
  assert.throws(
    () => suggestPlan({ graph, schema, seedType: "user", task: "binary" }),
    /node types: users, tx/,
  );
});

Deno.test("plan: the suggestion on the synthetic graph compiles with the sampler", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fanout_plan_" });
  try {
    const s = await generateSyntheticDb(dir, {
      users: 400,
      items: 80,
      stores: 10,
      transactions: 8000,
    });
    const db = await Database.open(dir, await loadSchema(s.schemaPath));
    const graph = await graphFromDatabase(db);
    try {
      const plan = suggestPlan({
        graph,
        schema: db.schema,
        seedType: "users",
        task: "binary",
        trainRows: 3000,
      });
      const cfg = compileSampling(graph, plan.sampling.num_neighbors, plan.sampling.strategy);
      assert.equal(cfg.hops, 2); // ~20 transactions per user: dense
      assert.equal(plan.model.layers, 2);
      const e = cfg.edgeTypes.indexOf("users.user_id->transactions.user_id");
      assert.ok(cfg.fanout[0][e] > 0);
      assert.equal(cfg.fanout[0][cfg.edgeTypes.indexOf("transactions.item_id->items.item_id")], 1);
      assert.equal(plan.training.batchSize, 32); // 3000 rows: ≥ 64 steps per epoch
      assert.ok(plan.training.schedule.warmup >= 1);
      validatePlan(plan, { task: "binary", graph });
      // Round trip through YAML with the graph's edge types checked.
      const back = parsePlan(planToYaml(plan), "plan.yaml", { edgeTypes: cfg.edgeTypes });
      assert.deepEqual(mergePlan(defaultPlan(), back), plan);
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("plan: the fanout budget holds for the training seeds, not for random rows", () => {
  // 1000 users, of which the first 10 have 100 transactions each (of 10 items); the rest none.
  const users = 1000, busy = 10, per = 100, n = busy * per;
  const graph = buildGraph({
    nodes: [
      {
        name: "users",
        count: users,
        primaryKey: "uid",
        keys: Int32Array.from({ length: users }, (_, i) => i),
      },
      {
        name: "items",
        count: 10,
        primaryKey: "iid",
        keys: Int32Array.from({ length: 10 }, (_, i) => i),
      },
      { name: "tx", count: n, times: Float64Array.from({ length: n }, (_, i) => 1e9 + i) },
    ],
    foreignKeys: [
      {
        table: "tx",
        column: "uid",
        parent: "users",
        childRow: Int32Array.from({ length: n }, (_, i) => i),
        parentRow: Int32Array.from({ length: n }, (_, i) => Math.floor(i / per)),
      },
      {
        table: "tx",
        column: "iid",
        parent: "items",
        childRow: Int32Array.from({ length: n }, (_, i) => i),
        parentRow: Int32Array.from({ length: n }, (_, i) => i % 10),
      },
    ],
  });
  const base = {
    graph,
    schema: { tables: [] } as Schema,
    seedType: "users",
    task: "binary" as const,
    budget: 32,
  };
  const fanout = (p: ModelPlan) => {
    const cfg = compileSampling(graph, p.sampling.num_neighbors, p.sampling.strategy);
    return cfg.fanout[0][cfg.edgeTypes.indexOf("users.uid->tx.uid")];
  };
  // Random rows: nearly all without transactions, so every transaction fits the budget.
  assert.equal(fanout(suggestPlan({ ...base, hops: 1 })), per);
  // The busy users as training seeds (twice each, at two anchor times).
  const seeds = Int32Array.from({ length: 2 * busy }, (_, i) => i % busy);
  const seedTimes = Float64Array.from(seeds, (_, i) => 1e9 + (i < busy ? n : n / 2));
  const { plan, notes } = suggestPlanExplained({ ...base, hops: 1, seeds, seedTimes });
  const k = fanout(plan);
  assert.ok(k > 0 && k < per, `fanout ${k}`);
  assert.match(notes.join("\n"), /measured on 20 training seeds/);
  const cfg = compileSampling(graph, plan.sampling.num_neighbors, "uniform");
  const out = sampleBatch(
    graph.data,
    cfg,
    "users",
    seeds,
    Int32Array.from(seedTimes, (t) => graph.toTick(t)),
    {
      randomSeed: 0,
      batchIndex: 0,
    },
  );
  let total = 0;
  for (const x of Object.values(out.nodes)) total += x.ids.length;
  assert.ok((total - seeds.length) / seeds.length <= 32, `${total} nodes`);
  assert.throws(
    () => suggestPlan({ ...base, seeds, seedTimes: seedTimes.subarray(1) }),
    /one time per seed/,
  );
});
