/**
 * The `fanout` command line: argument parsing and progress output only; the
 * work is library code.
 *
 * ```sh
 * deno task train [--steps N] [--batch N] [--backend webgpu|cpu] [--out DIR]
 * deno run -A cli.ts schema <data dir> [--out schema.yaml] [--overwrite true]
 * deno run -A cli.ts graph <data dir> --schema <file> [--out DIR]
 * deno run -A cli.ts info
 * ```
 *
 * @module
 */

import cliProgress from "cli-progress";
import type { Backend } from "./core/backend.ts";
import { cpuBackend } from "./core/cpu/mod.ts";
import { NoAdapterError, webgpuBackend } from "./core/webgpu/mod.ts";
import { trainMlpDemo } from "./models/mod.ts";
import {
  Database,
  graphFromDatabase,
  loadSchema,
  saveGraph,
  writeSchemaFile,
} from "./store/mod.ts";

const USAGE = `usage: fanout <command> [options]
commands:
  train   train on the embedded default data
          --steps N (300)  --batch N (1024)  --backend webgpu|cpu (webgpu)  --out DIR (out)
  schema  write a starting schema inferred from a folder of CSV/Parquet files
          fanout schema <dir> [--out <dir>/schema.yaml] [--overwrite true]
  graph   load a database, validate it, build and save its temporal graph
          fanout graph <dir> --schema <file> [--out <dir>/graph] [--dangling fail|drop]
  info    describe the WebGPU adapter`;

/** Parses `--key value` pairs; a flag that is not in `allowed` is an error naming the valid ones. */
export function parseFlags(args: string[], allowed: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const key = a.replace(/^--/, "");
    if (!a.startsWith("--") || !allowed.includes(key)) {
      throw new Error(`unknown argument "${a}"; valid: ${allowed.map((k) => `--${k}`).join(", ")}`);
    }
    const value = args[i + 1];
    if (value === undefined || value.startsWith("--")) throw new Error(`${a} needs a value`);
    flags.set(key, value);
    i++;
  }
  return flags;
}

function positiveInt(flags: Map<string, string>, key: string, fallback: number): number {
  const raw = flags.get(key);
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v <= 0) {
    throw new Error(`--${key} must be a positive integer, got "${raw}"`);
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

async function train(args: string[]): Promise<void> {
  const flags = parseFlags(args, ["steps", "batch", "backend", "out"]);
  const steps = positiveInt(flags, "steps", 300);
  const batch = positiveInt(flags, "batch", 1024);
  const backend = await pickBackend(flags.get("backend") ?? "webgpu");
  const outDir = flags.get("out") ?? "out";
  const device = "info" in backend
    ? (backend as { info: { description: string } }).info.description
    : "CPU float64 reference";
  console.log(
    "fanout: the relational trainer (graph store, sampler, GNNs) is not built yet;\n" +
      "running the largest end-to-end job that exists: an MLP learning a synthetic teacher\n" +
      `function with AdamW, warmup + cosine schedule and gradient clipping on ${backend.name} (${device}).`,
  );
  const bar = new cliProgress.SingleBar({
    format: "train |{bar}| {value}/{total} steps | loss {loss} | {rate} rows/s",
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 5000,
  }, cliProgress.Presets.shades_classic);
  bar.start(steps, 0, { loss: "-", rate: "-" });
  const t0 = performance.now();
  const result = await trainMlpDemo({
    backend,
    steps,
    batch,
    outDir,
    onStep(step, loss) {
      const rate = Math.round(((step + 1) * batch) / ((performance.now() - t0) / 1000));
      bar.update(step + 1, loss === undefined ? { rate } : { loss: loss.toFixed(4), rate });
    },
  });
  bar.stop();
  console.log(
    `held-out MSE ${result.testMse.toFixed(4)} (baseline, the training mean: ${
      result.baselineMse.toFixed(4)
    }), R² ${result.r2.toFixed(3)}`,
  );
  console.log(
    `throughput ${Math.round(result.rowsPerSecond)} rows/s; checkpoint ${result.checkpoint}`,
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
    if (command === "train") await train(rest);
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
