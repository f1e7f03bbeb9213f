/**
 * The trainer: a relational database and a predictive query (or a training
 * table) in, a trained graph model, its checkpoints and `metrics.json` out.
 *
 * ```ts
 * const result = await train({ backend: await webgpuBackend(), out: "out/run" });
 * console.log(result.metrics.test);
 * ```
 *
 * What `train(job)` does:
 *
 * 1. **Data.** Opens the database (`job.data` + `job.schema`; without them
 *    the embedded synthetic database is generated under `<out>/data` and
 *    the default query is used), builds the training table (from the
 *    query, or read from `job.table`), the graph store, and the feature
 *    store in `<out>/features`, whose encoders are fitted on rows at or
 *    before the validation cutoff only (the earliest validation or test
 *    anchor), so no statistic sees validation or test time; a static
 *    target's column is excluded from the features.
 * 2. **Plan.** The suggested plan for the graph and task (models/plan.ts),
 *    with `job.plan` merged over it; written to `<out>/plan.yaml`.
 * 3. **Loop.** Per epoch, the training rows in a seeded shuffled order are
 *    cut into batches; a `SamplerPool` samples them in workers (prefetched,
 *    in order), a `BatchPipeline` gathers their feature rows and uploads
 *    the next batch while the current one computes; each step runs forward,
 *    the task's loss, backward, global-norm clipping and an AdamW step with
 *    linear warmup and cosine decay, submitting without waiting. The loss is
 *    read back every `logEvery` steps only.
 * 4. **Validation** after each epoch with the task's primary metric; the
 *    best epoch's checkpoint is kept in `<out>/checkpoints/best`, the latest
 *    position in `<out>/checkpoints/last` (also every `checkpointEvery`
 *    steps), and training stops early after `patience` epochs without
 *    improvement.
 * 5. **Report.** The best checkpoint is evaluated on the validation and test
 *    rows beside two baselines: a constant (global mean, positive rate or
 *    class frequencies) and a linear model on the entity's own features and
 *    own history (models/entity_features.ts). Everything, with the
 *    throughput figures, goes to `<out>/metrics.json`.
 *
 * `job.resume` continues from `<out>/checkpoints/last`: same data, plan,
 * feature store, sampler settings and loop position; the step after the
 * resume has the same loss as it would have had without the interruption
 * (models/checkpoint.ts says why).
 *
 * @module
 */

import { Adam, AdamW, isBiasOrNorm, SGD } from "../core/optim.ts";
import { LRScheduler } from "../core/schedule.ts";
import { Rng } from "../core/random.ts";
import type { Database } from "../store/database.ts";
import type { GraphStore } from "../store/graph.ts";
import { Split } from "../store/types.ts";
import { buildFeatureStore } from "../store/features/build.ts";
import { openManifest } from "../store/features/manifest.ts";
import type { FeatureManifest } from "../store/features/format.ts";
import { FeatureReader } from "../store/features/reader.ts";
import { compileSampling } from "../sampler/config.ts";
import { defaultWorkers, SamplerPool } from "../sampler/pool.ts";
import { buildGraphModel } from "./gnn.ts";
import { lossFor } from "./heads.ts";
import { type Baselines, fitBaselines } from "./train_baselines.ts";
import {
  type CheckpointMeta,
  copyCheckpoint,
  type FeaturesRef,
  hasCheckpoint,
  initialState,
  loadCheckpoint,
  manifestHash,
  type SamplerSettings,
} from "./checkpoint.ts";
import { defaultPlan, mergePlan, type ModelPlan, planToYaml, validatePlan } from "./plan.ts";
import { parsePlan } from "./plan_parse.ts";
import { suggestPlanExplained } from "./plan_suggest.ts";
import {
  buildTable,
  deviceName,
  featureCutoff,
  jobRecord,
  mixSeed,
  modelSpec,
  openRunData,
  outputTransform,
  pick,
  planOverrides,
  rowsOf,
  runPaths,
  scheduleOf,
  secs,
  writeJson,
} from "./train_setup.ts";
import type { JobRecord, RunMetrics, RunPaths, TrainJob, TrainResult } from "./train_types.ts";
import { type Fit, type LoopStats, type Prepared, runEpochs, splitMetrics } from "./train_loop.ts";
import { prepareLink, withTargets } from "./train_link.ts";

export {
  type JobRecord,
  type PlanRequest,
  type RunData,
  type RunMetrics,
  type RunPaths,
  type SplitMetrics,
  type TableInput,
  type Throughput,
  type TrainEvent,
  TrainInterrupted,
  type TrainJob,
  type TrainResult,
} from "./train_types.ts";
export {
  buildTable,
  deviceName,
  lowerIsBetterMetric,
  mixSeed,
  modelSpec,
  openRunData,
  runPaths,
  scheduleOf,
} from "./train_setup.ts";
export {
  type OutputTransform,
  pipelineOptions,
  sampledBatches,
  scoreSeeds,
  toPredictions,
} from "./scoring.ts";
export { planText } from "./plan_cli.ts";

/** Resources a run opens, closed when it ends. */
interface Resources {
  pool: SamplerPool | null;
  reader: FeatureReader | null;
  owned: { dispose(): void }[];
}

/** Trains a model for `job`; see the module doc. */
export async function train(job: TrainJob): Promise<TrainResult> {
  const wall0 = performance.now();
  const paths = runPaths(job.out);
  const log = (message: string) => job.onEvent?.({ kind: "log", message });
  await Deno.mkdir(paths.out, { recursive: true });
  const { record, resuming } = await jobRecord(job, paths, log);
  const { db, graph } = await openRunData(record, log);
  const res: Resources = { pool: null, reader: null, owned: [] };
  try {
    const run = await prepare(job, { paths, log, resuming, record, db, graph }, res);
    const fit = await buildFit(run, res);
    // CPU, before the loop so their cost is not in the throughput.
    const baselines = await fitBaselines(run);
    const setupSeconds = (performance.now() - wall0) / 1000;
    const loop = await runEpochs(job, run, fit);
    const preds = await finalMetrics(run, fit);
    const metrics = runMetrics(run, fit, baselines, loop, preds, {
      wallSeconds: (performance.now() - wall0) / 1000,
      setupSeconds,
    });
    await writeJson(paths.metrics, metrics);
    return { metrics, out: paths.out, bestCheckpoint: paths.best };
  } finally {
    for (const x of res.owned) x.dispose();
    res.pool?.close();
    res.reader?.close();
    db.close();
  }
}

// ---- prepare (table, plan, features, sampler, labels) ----

/** What `prepare` starts from: the run's paths, record and opened data. */
interface Opened {
  paths: RunPaths;
  log: (m: string) => void;
  resuming: boolean;
  record: JobRecord;
  db: Database;
  graph: GraphStore;
}

async function prepare(job: TrainJob, o: Opened, res: Resources): Promise<Prepared> {
  const { paths, log, resuming, record, db, graph } = o;
  const overrides = resuming ? {} : await planOverrides(job, record, paths, graph);

  // ---- training table ----
  let t0 = performance.now();
  const { table, exclude, queryText } = await buildTable(db, record);
  const task = table.task;
  let train = rowsOf(table, Split.Train);
  const val = rowsOf(table, Split.Val), test = rowsOf(table, Split.Test);
  if (task === "link") {
    // A training row needs a positive; validation and test rows keep their (empty) sets.
    const kept = withTargets(table, train);
    if (kept.length < train.length) {
      log(`training table: ${train.length - kept.length} training rows have no target, skipped`);
    }
    train = kept;
  }
  if (train.length === 0 || val.length === 0 || test.length === 0) {
    throw new Error(
      `the training table needs train, validation and test rows; it has ${train.length}, ` +
        `${val.length} and ${test.length}`,
    );
  }
  const classes = task === "multiclass" ? table.classes?.length ?? 0 : 0;
  log(
    `training table: ${task} on ${table.entityTable}, ${train.length} train / ${val.length} ` +
      `val / ${test.length} test rows (${secs(t0)})`,
  );

  // ---- plan ----
  let plan: ModelPlan;
  if (resuming) {
    const path = `${paths.last}/plan.yaml`;
    plan = mergePlan(defaultPlan(task), parsePlan(await Deno.readTextFile(path), path));
  } else {
    const suggested = suggestPlanExplained({
      graph,
      schema: db.schema,
      seedType: table.entityTable,
      task,
      targetType: table.link?.targetTable,
      trainRows: train.length,
      seeds: pick(table.entity, train),
      seedTimes: pick(table.anchorTime, train),
    });
    for (const n of suggested.notes) log(`plan: ${n}`);
    plan = mergePlan(suggested.plan, overrides);
  }
  if (job.epochs !== undefined) plan.training.epochs = job.epochs;
  validatePlan(plan, { task, graph, source: resuming ? `${paths.last}/plan.yaml` : "plan" });
  if (!resuming) await Deno.writeTextFile(paths.plan, planToYaml(plan));
  const T = plan.training, M = plan.model;
  const metric = T.earlyStopping.metric;
  log(
    `plan: ${M.architecture}, ${M.layers} layers × ${M.channels} channels, ${M.aggregation} ` +
      `aggregation; ${T.optimizer} lr ${T.lr}, batch ${T.batchSize}, ${T.epochs} epochs, ` +
      `selecting on ${metric}`,
  );

  // ---- feature store ----
  t0 = performance.now();
  let manifest: FeatureManifest;
  const cutoff = featureCutoff(table);
  if (resuming) {
    manifest = await openManifest(paths.features);
    const ref: FeaturesRef = JSON.parse(await Deno.readTextFile(`${paths.last}/features.json`));
    const hash = await manifestHash(JSON.stringify(manifest));
    if (hash !== ref.manifestHash) {
      throw new Error(`${paths.features} is not the feature store the checkpoint was trained with`);
    }
  } else {
    manifest = await buildFeatureStore(db, paths.features, { cutoff, exclude });
    log(
      `feature store ${paths.features}: encoders fitted on rows up to ` +
        `${new Date(cutoff * 1000).toISOString()} (${secs(t0)})`,
    );
  }
  const featuresRef: FeaturesRef = {
    dir: paths.features,
    cutoff: manifest.cutoff,
    manifestHash: await manifestHash(JSON.stringify(manifest)),
  };
  const reader = res.reader = await FeatureReader.open(paths.features, { cacheBytes: 256 << 20 });

  // ---- sampler ----
  const sampling = compileSampling(graph, plan.sampling.num_neighbors, plan.sampling.strategy);
  const pool = res.pool = await SamplerPool.create({
    graph,
    config: sampling,
    workers: job.workers ?? defaultWorkers(),
  });

  // ---- labels ----
  const link = task === "link"
    ? prepareLink({
      graph,
      schema: db.schema,
      table,
      rows: { train, val, test },
      metric,
      loss: T.loss,
      query: record.query,
    })
    : null;
  if (link) {
    log(
      `link prediction: ${link.candidates.byTime.length} "${link.targetType}" targets, ` +
        `${link.loss} loss over in-batch and sampled negatives, top ${link.k} ranked`,
    );
  }
  const trainLabels = link ? new Float32Array(0) : pick(table.label, train);
  const transform = outputTransform(task, classes, table.classes, trainLabels);
  if (link) transform.k = link.k;
  return {
    paths,
    log,
    backend: job.backend,
    resuming,
    record,
    seed: record.seed,
    db,
    graph,
    table,
    queryText,
    task,
    classes,
    rows: { train, val, test },
    trainLabels,
    truth: link
      ? { val: new Float32Array(0), test: new Float32Array(0) }
      : { val: pick(table.label, val), test: pick(table.label, test) },
    link,
    evalOpts: task === "multiclass" ? { classes } : {},
    plan,
    metric,
    reader,
    pool,
    transform,
    manifest,
    sampling,
    featuresRef,
  };
}

// ---- model, optimizer, schedule (restored on resume) ----

async function buildFit(run: Prepared, res: Resources): Promise<Fit> {
  const { graph, db, table, task, classes, seed, paths, log } = run;
  const T = run.plan.training, M = run.plan.model;
  const spec = modelSpec({
    graph,
    db,
    manifest: run.manifest,
    sampling: run.sampling,
    settings: M,
    seedType: table.entityTable,
    task,
    classes: classes || undefined,
    targetType: run.link?.targetType,
  });
  const model = buildGraphModel(spec, {
    backend: run.backend,
    rng: new Rng(mixSeed(seed, 0x1417)),
  });
  res.owned.push(model);
  const loss = lossFor(task, T.loss === "mse" ? "mse" : "l1");
  const optOpts = { lr: T.lr, weightDecay: T.weightDecay, noDecay: isBiasOrNorm };
  const opt = T.optimizer === "sgd"
    ? new SGD(model.namedParameters(), { ...optOpts, momentum: 0.9 })
    : T.optimizer === "adam"
    ? new Adam(model.namedParameters(), optOpts)
    : new AdamW(model.namedParameters(), optOpts);
  res.owned.push(opt);
  const batchesPerEpoch = Math.min(
    Math.ceil(run.rows.train.length / T.batchSize),
    T.maxStepsPerEpoch > 0 ? T.maxStepsPerEpoch : Infinity,
  );
  const sched = new LRScheduler(opt, scheduleOf(T, batchesPerEpoch));
  const samplerSettings: SamplerSettings = {
    seedType: table.entityTable,
    numNeighbors: run.sampling.numNeighbors,
    strategy: run.plan.sampling.strategy,
    batchSize: T.batchSize,
    randomSeed: seed,
  };
  const fit: Fit = {
    model,
    opt,
    sched,
    loss,
    state: initialState(seed, batchesPerEpoch),
    meta: (): CheckpointMeta => ({
      state: { ...fit.state, scheduler: sched.stateDict() },
      planYaml: planToYaml(run.plan),
      sampler: samplerSettings,
      spec,
      features: run.featuresRef,
      output: run.transform,
    }),
    batchesPerEpoch,
  };
  if (run.resuming) {
    const ck = await loadCheckpoint(paths.last);
    if (ck.state.batchesPerEpoch !== batchesPerEpoch) {
      throw new Error(
        `the checkpoint has ${ck.state.batchesPerEpoch} batches per epoch, this run ` +
          `${batchesPerEpoch}: the data or plan changed`,
      );
    }
    await model.loadStateDict(ck.weights);
    await opt.loadStateDict(ck.optimizer);
    sched.loadStateDict(ck.state.scheduler);
    const state = fit.state = ck.state;
    // A resume may change the number of epochs (the schedule follows the new total).
    const patienceOut = T.earlyStopping.patience > 0 &&
      state.badEpochs >= T.earlyStopping.patience;
    state.done = state.epoch >= T.epochs || patienceOut;
    log(`resumed at epoch ${state.epoch + 1}, batch ${state.batch}, step ${state.step}`);
  }
  const params = model.parameters().reduce((s, p) => s + p.size, 0);
  log(
    `model: ${params.toLocaleString("en-US")} parameters over ${spec.nodeTypes.length} node ` +
      `types and ${spec.edgeTypes.length} edge types; ${batchesPerEpoch} batches per epoch`,
  );
  return fit;
}

// ---- final metrics with the best weights ----

async function finalMetrics(
  run: Prepared,
  fit: Fit,
): Promise<{ val: Record<string, number>; test: Record<string, number> }> {
  const { paths } = run;
  if (await hasCheckpoint(paths.best)) {
    const best = await loadCheckpoint(paths.best);
    await fit.model.loadStateDict(best.weights);
  } else {
    await copyCheckpoint(paths.last, paths.best);
  }
  const val = await splitMetrics(run, fit.model, "val");
  const test = await splitMetrics(run, fit.model, "test");
  return { val, test };
}

// ---- metrics.json ----

function runMetrics(
  run: Prepared,
  fit: Fit,
  baselines: Baselines,
  loop: LoopStats,
  preds: { val: Record<string, number>; test: Record<string, number> },
  times: { wallSeconds: number; setupSeconds: number },
): RunMetrics {
  const { task } = run;
  const state = fit.state;
  const { train, val, test } = run.rows;
  return {
    task,
    metric: run.metric,
    query: run.queryText,
    entityTable: run.table.entityTable,
    rows: { train: train.length, val: val.length, test: test.length },
    val: {
      model: preds.val,
      constant: baselines.constant.val,
      entity: baselines.entity.val,
    },
    test: {
      model: preds.test,
      constant: baselines.constant.test,
      entity: baselines.entity.test,
    },
    baselines: { constant: baselines.constantDescription, entity: baselines.entityDescription },
    best: {
      epoch: state.bestEpoch,
      step: state.history.find((h) => h.epoch === state.bestEpoch)?.step ?? state.step,
      metric: state.bestMetric,
    },
    history: state.history,
    throughput: {
      seedsPerSecond: state.trainSeconds > 0 ? state.seedsSeen / state.trainSeconds : 0,
      steps: state.step,
      seeds: state.seedsSeen,
      trainSeconds: state.trainSeconds,
      waitShare: loop.loopSeconds > 0 ? loop.waitSeconds / loop.loopSeconds : 0,
      validationSeconds: loop.validationSeconds,
      batchSize: run.plan.training.batchSize,
    },
    device: deviceName(run.backend),
    wallSeconds: times.wallSeconds,
    setupSeconds: times.setupSeconds,
  };
}
