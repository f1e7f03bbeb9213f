/**
 * The `fanout` command line: argument parsing and progress output only; the
 * work is library code.
 *
 * ```sh
 * deno task train                                   # synthetic database, default query
 * deno task train --query "<PQL>"                   # synthetic database, another query
 * deno task train --data <dir> --schema <file> --query "<PQL>" [--plan plan.yaml] [--out DIR]
 * deno task train --data <dir> --schema <file> --table <file> --task binary --entity <table>
 * deno task train --out DIR --resume                # continue a killed run
 * deno run -A cli.ts plan [--data <dir> --schema <file> --query "<PQL>"]
 * deno run -A cli.ts predict --run DIR [--at TIME] [--entities k1,k2] [--out preds.csv] [--k N]
 * deno run -A cli.ts schema <data dir> [--out schema.yaml] [--overwrite true]
 * deno run -A cli.ts graph <data dir> --schema <file> [--out DIR]
 * deno run -A cli.ts info
 * deno run -A cli.ts help                           # this list (also --help after any command)
 * ```
 *
 * @module
 */

import cliProgress from "cli-progress";
import type { Backend } from "./core/backend.ts";
import { cpuBackend } from "./core/cpu/mod.ts";
import { NoAdapterError, webgpuBackend } from "./core/webgpu/mod.ts";
import {
  type PlanRequest,
  planText,
  predict,
  type RunMetrics,
  type TableInput,
  train as trainRun,
  type TrainEvent,
} from "./models/mod.ts";
import {
  Database,
  graphFromDatabase,
  loadSchema,
  saveGraph,
  type TaskType,
  type TrainingTableOptions,
  writeSchemaFile,
} from "./store/mod.ts";

const TRAIN_FLAGS = `--data DIR --schema FILE
            (--query "PQL" [--val-cutoff T] [--test-cutoff T] [--val-anchors N]
                           [--test-anchors N] [--max-train-anchors N] [--step N]
             | --table FILE --task T --entity TABLE [--key-column C] [--time-column C (time)]
                           [--label-column C (label)] [--split-column C] [--target-table T])`;

const USAGE = `usage: fanout <command> [options]
commands:
  train    train a graph model; with no data, on the embedded synthetic database
           [${TRAIN_FLAGS}]
           [--plan FILE] [--out DIR (out/train)] [--resume] [--epochs N] [--seed N]
           [--backend webgpu|cpu (webgpu)] [--workers N] [--checkpoint-every STEPS (200)]
  plan     print the suggested model plan (YAML) for a database and query
           [${TRAIN_FLAGS}]
  predict  score entities with a trained run, with its sampler settings
           --run DIR [--checkpoint best|last] [--at TIME (latest)] [--entities K1,K2,...]
           [--entities-file FILE] [--out FILE.csv|FILE.parquet] [--backend webgpu|cpu]
           [--k N (link: targets per entity; default the trained metric's k)]
  schema   write a starting schema inferred from a folder of CSV/Parquet files
           fanout schema <dir> [--out <dir>/schema.yaml] [--overwrite true]
  graph    load a database, validate it, build and save its temporal graph
           fanout graph <dir> --schema <file> [--out <dir>/graph] [--dangling fail|drop]
  info     describe the WebGPU adapter
  help     this text (also --help or -h after any command)`;

/**
 * Parses `--key value` pairs and the boolean `--key` flags in `booleans`; a
 * flag that is not allowed is an error naming the valid ones.
 */
export function parseFlags(
  args: string[],
  allowed: string[],
  booleans: string[] = [],
): Map<string, string> {
  const flags = new Map<string, string>();
  const all = [...allowed, ...booleans];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const key = a.replace(/^--/, "");
    if (!a.startsWith("--") || !all.includes(key)) {
      throw new Error(`unknown argument "${a}"; valid: ${all.map((k) => `--${k}`).join(", ")}`);
    }
    if (booleans.includes(key)) {
      flags.set(key, "true");
      continue;
    }
    const value = args[i + 1];
    if (value === undefined || value.startsWith("--")) throw new Error(`${a} needs a value`);
    flags.set(key, value);
    i++;
  }
  return flags;
}

function positiveInt(
  flags: Map<string, string>,
  key: string,
  fallback?: number,
): number | undefined {
  const raw = flags.get(key);
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v <= 0) {
    throw new Error(`--${key} must be a positive integer, got "${raw}"`);
  }
  return v;
}

function nonNegativeInt(flags: Map<string, string>, key: string): number | undefined {
  const raw = flags.get(key);
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0) {
    throw new Error(`--${key} must be an integer >= 0, got "${raw}"`);
  }
  return v;
}

async function pickBackend(name: string): Promise<Backend> {
  if (name === "cpu") return cpuBackend();
  if (name !== "webgpu") throw new Error(`--backend must be webgpu or cpu, got "${name}"`);
  try {
    return await webgpuBackend();
  } catch (e) {
    if (!(e instanceof NoAdapterError)) throw e;
    console.error(`${e.message}\nFalling back to the CPU reference backend.`);
    return cpuBackend();
  }
}

const DATA_FLAGS = [
  "data",
  "schema",
  "query",
  "table",
  "task",
  "entity",
  "key-column",
  "time-column",
  "label-column",
  "split-column",
  "target-table",
];
const SCHEDULE_FLAGS = [
  "val-cutoff",
  "test-cutoff",
  "val-anchors",
  "test-anchors",
  "max-train-anchors",
  "step",
];
const TASKS = ["binary", "regression", "multiclass", "link"];

/** Anchor schedule options of a query's training table. */
function scheduleFlags(flags: Map<string, string>): TrainingTableOptions | undefined {
  const o: TrainingTableOptions = {};
  const time = (k: string) => {
    const v = flags.get(k);
    return v === undefined ? undefined : /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  };
  o.valCutoff = time("val-cutoff");
  o.testCutoff = time("test-cutoff");
  o.valAnchors = positiveInt(flags, "val-anchors");
  o.testAnchors = positiveInt(flags, "test-anchors");
  o.maxTrainAnchors = positiveInt(flags, "max-train-anchors");
  const step = flags.get("step");
  if (step !== undefined) {
    o.step = Number(step);
    if (!(o.step > 0)) throw new Error(`--step must be a positive number, got "${step}"`);
  }
  const set = Object.entries(o).filter(([, v]) => v !== undefined);
  if (set.length && flags.has("table")) {
    throw new Error(`${SCHEDULE_FLAGS.map((k) => `--${k}`).join(", ")} go with --query`);
  }
  return set.length ? Object.fromEntries(set) : undefined;
}

/** The data part of train/plan flags. */
function dataFlags(flags: Map<string, string>): PlanRequest {
  const table = flags.get("table");
  const tableOnly = DATA_FLAGS.slice(4).filter((k) => flags.has(k));
  if (!table && tableOnly.length) {
    throw new Error(`${tableOnly.map((k) => `--${k}`).join(", ")} go with --table`);
  }
  let t: TableInput | undefined;
  if (table) {
    const task = flags.get("task");
    const entity = flags.get("entity");
    if (!task || !TASKS.includes(task)) {
      throw new Error(`--table needs --task (${TASKS.join(", ")})`);
    }
    if (!entity) throw new Error("--table needs --entity <entity table>");
    t = {
      path: table,
      task: task as TaskType,
      entityTable: entity,
      keyColumn: flags.get("key-column"),
      timeColumn: flags.get("time-column") ?? "time",
      labelColumn: flags.get("label-column") ?? "label",
      splitColumn: flags.get("split-column"),
      targetTable: flags.get("target-table"),
    };
  }
  if (flags.has("query") && t) throw new Error("give --query or --table, not both");
  if (!flags.has("data") && (flags.has("schema") || t)) {
    throw new Error(
      "--schema and --table need --data <dir> (a --query alone runs on the synthetic database)",
    );
  }
  if (flags.has("data") && !flags.has("schema")) {
    throw new Error("--data needs --schema <file> (write one with: fanout schema <dir>)");
  }
  if (flags.has("data") && !flags.has("query") && !t) {
    throw new Error('--data needs --query "<PQL>" or --table <file>');
  }
  return {
    data: flags.get("data"),
    schema: flags.get("schema"),
    query: flags.get("query"),
    table: t,
    tableOptions: scheduleFlags(flags),
  };
}

function fmt(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? "n/a" : x.toFixed(4);
}

/** The metrics table printed after training. */
export function metricsTable(m: RunMetrics): string {
  const names = Object.keys(m.val.model);
  const rows: [string, keyof RunMetrics["val"]][] = [
    ["model", "model"],
    ["constant baseline", "constant"],
    ["entity baseline", "entity"],
  ];
  const head = ["", ...names.map((n) => `val ${n}`), ...names.map((n) => `test ${n}`)];
  const body = rows.map(([label, k]) => [
    label,
    ...names.map((n) => fmt(m.val[k][n])),
    ...names.map((n) => fmt(m.test[k][n])),
  ]);
  const widths = head.map((_, j) => Math.max(...[head, ...body].map((r) => r[j].length)));
  const line = (r: string[]) =>
    r.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join("  ");
  return [
    line(head),
    ...body.map(line),
    `constant baseline: ${m.baselines.constant}`,
    `entity baseline: ${m.baselines.entity}`,
  ].join("\n");
}

async function train(args: string[]): Promise<void> {
  const flags = parseFlags(
    args,
    [
      ...DATA_FLAGS,
      ...SCHEDULE_FLAGS,
      "plan",
      "out",
      "epochs",
      "backend",
      "seed",
      "workers",
      "checkpoint-every",
    ],
    ["resume"],
  );
  const resume = flags.get("resume") === "true";
  const data = resume && !flags.has("data") ? {} : dataFlags(flags);
  const backend = await pickBackend(flags.get("backend") ?? "webgpu");
  const out = flags.get("out") ?? "out/train";
  const t0 = performance.now();
  let bar: cliProgress.SingleBar | null = null;
  const stopBar = () => {
    bar?.stop();
    bar = null;
  };
  const onEvent = (e: TrainEvent) => {
    if (e.kind === "log") {
      stopBar();
      console.log(e.message);
    } else if (e.kind === "step") {
      if (!bar) {
        bar = new cliProgress.SingleBar({
          format: `epoch ${e.epoch + 1}/${e.epochs} |{bar}| {value}/{total} batches | ` +
            "loss {loss} | {rate} seeds/s | waiting {wait}%",
          hideCursor: true,
          noTTYOutput: true,
          notTTYSchedule: 10000,
        }, cliProgress.Presets.shades_classic);
        bar.start(e.batches, e.batch, { loss: "-", rate: "-", wait: "-" });
      }
      bar.update(e.batch, {
        loss: e.loss === undefined ? "-" : e.loss.toFixed(4),
        rate: Math.round(e.seedsPerSecond),
        wait: (100 * e.waitShare).toFixed(0),
      });
    } else {
      stopBar();
      const r = e.record;
      console.log(
        `epoch ${r.epoch + 1}: train loss ${fmt(r.trainLoss)}, val ${e.metric} ` +
          `${fmt(r.val[e.metric])}${e.best ? " (best)" : ""}${e.stop ? "; stopping" : ""}`,
      );
    }
  };
  console.log(
    `fanout train on ${backend.name}${data.data ? "" : " (embedded synthetic database)"}`,
  );
  const r = await trainRun({
    backend,
    out,
    ...data,
    plan: flags.get("plan"),
    resume,
    epochs: positiveInt(flags, "epochs"),
    seed: nonNegativeInt(flags, "seed"),
    workers: nonNegativeInt(flags, "workers"),
    checkpointEvery: positiveInt(flags, "checkpoint-every"),
    onEvent,
  });
  stopBar();
  const m = r.metrics;
  console.log(`\n${m.task} task on "${m.entityTable}": ${m.query}`);
  console.log(
    `rows: ${m.rows.train} train, ${m.rows.val} validation, ${m.rows.test} test; ` +
      `best epoch ${m.best.epoch + 1} (primary metric: ${m.metric})\n`,
  );
  console.log(metricsTable(m));
  const tp = m.throughput;
  console.log(
    `\nthroughput ${Math.round(tp.seedsPerSecond)} seeds/s over ${tp.steps} steps ` +
      `(batch ${tp.batchSize}), waiting for data ${(100 * tp.waitShare).toFixed(1)}% of the ` +
      `loop; ${m.device}`,
  );
  console.log(
    `wall time ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s; metrics in ${r.out}/metrics.json, ` +
      `best checkpoint in ${r.bestCheckpoint}`,
  );
}

async function plan(args: string[]): Promise<void> {
  const flags = parseFlags(args, [...DATA_FLAGS, ...SCHEDULE_FLAGS]);
  console.log(await planText(dataFlags(flags)));
}

async function predictCmd(args: string[]): Promise<void> {
  const flags = parseFlags(args, [
    "run",
    "checkpoint",
    "at",
    "entities",
    "entities-file",
    "out",
    "backend",
    "workers",
    "batch",
    "k",
  ]);
  const run = flags.get("run");
  if (!run) throw new Error("predict needs --run <training output dir>");
  const ck = flags.get("checkpoint") ?? "best";
  if (ck !== "best" && ck !== "last") throw new Error(`--checkpoint must be best or last`);
  let entities: string[] | undefined = flags.get("entities")?.split(",").map((s) => s.trim());
  const file = flags.get("entities-file");
  if (file) {
    const lines = (await Deno.readTextFile(file)).split(/\r?\n/).map((s) => s.trim());
    entities = [...(entities ?? []), ...lines.filter((l) => l !== "")];
  }
  const backend = await pickBackend(flags.get("backend") ?? "webgpu");
  const out = flags.get("out") ?? `${run.replace(/\/+$/, "")}/predictions.csv`;
  const r = await predict({
    run,
    backend,
    checkpoint: ck,
    at: flags.get("at"),
    entities,
    out,
    workers: nonNegativeInt(flags, "workers"),
    batchSize: positiveInt(flags, "batch"),
    k: positiveInt(flags, "k"),
    onLog: (m) => console.log(m),
  });
  console.log(
    `${r.keys.length} predictions at ${new Date(r.at * 1000).toISOString()} in ` +
      `${r.scoringSeconds.toFixed(1)} s → ${r.out}`,
  );
}

async function schema(args: string[]): Promise<void> {
  const [dir, ...rest] = args;
  if (!dir || dir.startsWith("--")) {
    throw new Error("schema needs a data directory: fanout schema <dir>");
  }
  const flags = parseFlags(rest, ["out", "overwrite"]);
  const out = flags.get("out") ?? `${dir}/schema.yaml`;
  const s = await writeSchemaFile(dir, out, { overwrite: flags.get("overwrite") === "true" });
  console.log(`wrote ${out}: ${s.tables.length} tables; review keys and time columns before use`);
}

async function graph(args: string[]): Promise<void> {
  const [dir, ...rest] = args;
  if (!dir || dir.startsWith("--")) {
    throw new Error("graph needs a data directory: fanout graph <dir> --schema <file>");
  }
  const flags = parseFlags(rest, ["schema", "out", "dangling"]);
  const schemaPath = flags.get("schema");
  if (!schemaPath) {
    throw new Error("graph needs --schema <file> (write one with: fanout schema <dir>)");
  }
  const dangling = flags.get("dangling") ?? "fail";
  if (dangling !== "fail" && dangling !== "drop") {
    throw new Error(`--dangling must be fail or drop, got "${dangling}"`);
  }
  const t0 = performance.now();
  const db = await Database.open(dir, await loadSchema(schemaPath), {
    danglingForeignKeys: dangling,
  });
  for (const w of db.warnings) console.warn(`warning: ${w}`);
  const g = await graphFromDatabase(db);
  db.close();
  const out = flags.get("out") ?? `${dir}/graph`;
  await saveGraph(g, out);
  const b = g.bytes();
  console.log(
    JSON.stringify({
      nodeTypes: g.nodeTypes().length,
      edgeTypes: g.edgeTypes().length,
      bytes: b,
      seconds: (performance.now() - t0) / 1000,
      out,
    }),
  );
}

async function info(): Promise<void> {
  const gpu = await webgpuBackend();
  console.log(JSON.stringify(gpu.info, null, 2));
}

if (import.meta.main) {
  const [command, ...rest] = Deno.args;
  try {
    if (
      ["help", "--help", "-h"].includes(command) || rest.some((a) => a === "--help" || a === "-h")
    ) {
      console.log(USAGE);
    } else if (command === "train") await train(rest);
    else if (command === "plan") await plan(rest);
    else if (command === "predict") await predictCmd(rest);
    else if (command === "schema") await schema(rest);
    else if (command === "graph") await graph(rest);
    else if (command === "info") await info();
    else {
      console.error(command ? `unknown command "${command}"\n${USAGE}` : USAGE);
      Deno.exit(2);
    }
  } catch (e) {
    console.error(`fanout: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
