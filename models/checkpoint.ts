/**
 * Training checkpoints: one directory per checkpoint, written atomically.
 *
 * ```
 * <dir>/
 *   weights.safetensors     model parameters by dotted name (PyTorch-readable)
 *   optimizer.safetensors   optimizer state tensors ("<param>.exp_avg", …)
 *   state.json              loop position and counters (see `TrainState`), optimizer
 *                           step counts, scheduler position, early-stopping state
 *   plan.yaml               the model plan the run was trained with
 *   sampler.json            sampler settings (num_neighbors, strategy, seed type, batch size, seeds)
 *   model.json              the ModelSpec the model was built from
 *   features.json           which feature store the encoders come from (path, cutoff, checksum)
 *   output.json             how raw outputs become predictions (regression scaling, classes)
 * ```
 *
 * Atomicity: everything goes into a fresh sibling `<dir>.tmp-<random>`; each
 * file is fsynced, `state.json` is written last, then the directory is
 * renamed onto `<dir>` (an older checkpoint is moved aside first and deleted
 * after). `<dir>` therefore always holds a complete checkpoint or nothing; a
 * run killed while saving leaves a `<dir>.tmp-*` that the next save deletes.
 *
 * Resuming restores the weights, the optimizer state (moments and per
 * parameter step counts), the scheduler position and the loop position
 * (epoch, batch within the epoch, global step). Randomness needs no saved
 * state: shuffles depend on (seed, epoch), sampling on (seed, batch index),
 * and dropout is reseeded from (seed, step) before every step, so the step
 * after a resume sees exactly what it would have seen without the kill.
 *
 * @module
 */

import type { Module } from "../core/module.ts";
import type { Optimizer, OptimizerStateInput } from "../core/optim.ts";
import {
  encodeSafetensors,
  loadSafetensors,
  type SafetensorInput,
  type SafetensorsDType,
} from "../core/safetensors.ts";
import type { Tensor } from "../core/tensor.ts";
import type { HostTensor } from "../core/module.ts";
import type { ModelSpec } from "./types.ts";
import { parentOf, randomTag, replaceDir, syncDir } from "../store/atomic_dir.ts";

/** Format tag of `state.json`. */
export const CHECKPOINT_FORMAT = "fanout-checkpoint";
/** Format version; readers refuse others. */
export const CHECKPOINT_VERSION = 1;

/** Validation result of one epoch. */
export interface EpochRecord {
  /** Epoch (0-based). */
  epoch: number;
  /** Optimizer steps done at its end. */
  step: number;
  /** Mean training loss over the loss readbacks of the epoch. */
  trainLoss: number;
  /** Validation metrics of the model. */
  val: Record<string, number>;
  /** Seconds since the start of training (including earlier sessions). */
  seconds: number;
}

/** Everything about the loop that a resume needs besides tensors. */
export interface TrainState {
  /** Always CHECKPOINT_FORMAT. */
  format: string;
  /** Always CHECKPOINT_VERSION. */
  version: number;
  /** Optimizer steps done. */
  step: number;
  /** Epoch in progress (0-based); `epochs` when training is over. */
  epoch: number;
  /** Next batch of `epoch` to train on. */
  batch: number;
  /** Batches per epoch (a resume checks it). */
  batchesPerEpoch: number;
  /** Run seed (shuffles, sampling, dropout). */
  seed: number;
  /** Scheduler position. */
  scheduler: { t: number };
  /** Optimizer counters (the tensors are in optimizer.safetensors). */
  optimizer: { step: number; paramSteps: Record<string, number> };
  /** Primary validation metric of the best epoch so far, or null. */
  bestMetric: number | null;
  /** Epoch of the best metric (-1 when none). */
  bestEpoch: number;
  /** Epochs since the last improvement (early stopping). */
  badEpochs: number;
  /** Per-epoch records. */
  history: EpochRecord[];
  /** Seeds trained on so far. */
  seedsSeen: number;
  /** Seconds of training so far (all sessions). */
  trainSeconds: number;
  /** Whether training is finished (early stop or last epoch). */
  done: boolean;
  /** Last training loss read back, or null. */
  lastLoss: number | null;
}

/** Sampler settings of a run (what predict must reuse). */
export interface SamplerSettings {
  /** Node type of the seeds. */
  seedType: string;
  /** Kumo's num_neighbors, every hop with its default and overrides. */
  numNeighbors: unknown;
  /** Temporal strategy (name, rule or map), as given to `compileSampling`. */
  strategy: unknown;
  /** Seeds per batch. */
  batchSize: number;
  /** Random seed of the sampling. */
  randomSeed: number;
}

/** Which feature store the model's encoders read. */
export interface FeaturesRef {
  /** Directory of the store (as given to the trainer; relative paths are relative to the run's cwd). */
  dir: string;
  /** Encoder cutoff of the store (epoch seconds). */
  cutoff: number;
  /** A hash of its manifest (`manifestHash`): a different store is refused at resume. */
  manifestHash: string;
}

/** What a checkpoint holds besides the model and optimizer tensors. */
export interface CheckpointMeta {
  /** Loop state. */
  state: TrainState;
  /** The plan as YAML text. */
  planYaml: string;
  /** Sampler settings. */
  sampler: SamplerSettings;
  /** The model spec. */
  spec: ModelSpec;
  /** The feature store reference. */
  features: FeaturesRef;
  /** How raw outputs become predictions (regression scaling, classes). */
  output: OutputSettings;
}

/** How raw model outputs become predictions (see the trainer's `toPredictions`). */
export interface OutputSettings {
  /** Task. */
  task: "binary" | "regression" | "multiclass" | "link";
  /** Regression: output × scale + shift. */
  shift: number;
  /** Regression scale. */
  scale: number;
  /** Regression: clamp range (±Infinity when none). */
  min: number;
  /** Regression clamp range. */
  max: number;
  /** Multiclass: number of classes. */
  classes: number;
  /** Multiclass: class names (the training table's), when known. */
  classNames?: string[];
  /** Link: targets ranked per entity (the metrics' cut-off). */
  k?: number;
}

/** A checkpoint read back: host tensors and the metadata. */
export interface LoadedCheckpoint extends CheckpointMeta {
  /** Model parameters by name. */
  weights: Map<string, HostTensor>;
  /** Optimizer state, ready for `optimizer.loadStateDict`. */
  optimizer: OptimizerStateInput;
}

/** The file names of a checkpoint directory. */
export const CHECKPOINT_FILES = {
  weights: "weights.safetensors",
  optimizer: "optimizer.safetensors",
  state: "state.json",
  plan: "plan.yaml",
  sampler: "sampler.json",
  spec: "model.json",
  features: "features.json",
  output: "output.json",
} as const;

/** A short hex digest (SHA-256 prefix) of a text, e.g. a feature manifest. */
export async function manifestHash(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d).slice(0, 12), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

/** A fresh training state. */
export function initialState(seed: number, batchesPerEpoch: number): TrainState {
  return {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    step: 0,
    epoch: 0,
    batch: 0,
    batchesPerEpoch,
    seed,
    scheduler: { t: 0 },
    optimizer: { step: 0, paramSteps: {} },
    bestMetric: null,
    bestEpoch: -1,
    badEpochs: 0,
    history: [],
    seedsSeen: 0,
    trainSeconds: 0,
    done: false,
    lastLoss: null,
  };
}

/**
 * Writes a checkpoint of `model` and `optimizer` with `meta` into `dir`,
 * atomically (see the module doc). Reads the tensors back once each.
 */
export async function saveCheckpoint(
  dir: string,
  model: Module,
  optimizer: Optimizer | null,
  meta: CheckpointMeta,
): Promise<void> {
  dir = dir.replace(/(.)\/+$/, "$1");
  await removeStale(dir);
  const weights = encodeSafetensors(await readAll(model.stateDict()), {
    format: "fanout",
    step: String(meta.state.step),
  });
  let optBytes: Uint8Array | null = null;
  const state: TrainState = structuredClone(meta.state);
  if (optimizer) {
    const sd = optimizer.stateDict();
    optBytes = encodeSafetensors(await readAll(sd.tensors));
    state.optimizer = { step: sd.step, paramSteps: { ...sd.paramSteps } };
  }
  const tmp = `${dir}.tmp-${randomTag()}`;
  await Deno.mkdir(tmp, { recursive: true });
  try {
    const text = (o: unknown) => new TextEncoder().encode(JSON.stringify(o, null, 1) + "\n");
    await writeSynced(`${tmp}/${CHECKPOINT_FILES.weights}`, weights);
    if (optBytes) await writeSynced(`${tmp}/${CHECKPOINT_FILES.optimizer}`, optBytes);
    await writeSynced(`${tmp}/${CHECKPOINT_FILES.plan}`, new TextEncoder().encode(meta.planYaml));
    await writeSynced(`${tmp}/${CHECKPOINT_FILES.sampler}`, text(meta.sampler));
    await writeSynced(`${tmp}/${CHECKPOINT_FILES.spec}`, text(meta.spec));
    await writeSynced(`${tmp}/${CHECKPOINT_FILES.features}`, text(meta.features));
    await writeSynced(`${tmp}/${CHECKPOINT_FILES.output}`, text(meta.output));
    await writeSynced(`${tmp}/${CHECKPOINT_FILES.state}`, text(state));
    await syncDir(tmp);
    await replaceDir(tmp, dir);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/**
 * Reads tensors back all at once (one GPU round trip for the lot, where
 * `toEntries` would wait once per tensor).
 */
async function readAll(map: ReadonlyMap<string, Tensor>): Promise<Map<string, SafetensorInput>> {
  const entries = [...map];
  const data = await Promise.all(entries.map(([, t]) => t.data()));
  const dtype = (t: Tensor): SafetensorsDType =>
    t.dtype === "f32" ? "F32" : t.dtype === "f16" ? "F16" : "I32";
  return new Map(
    entries.map(([k, t], i) => [k, { dtype: dtype(t), shape: [...t.shape], data: data[i] }]),
  );
}

/**
 * Whether `dir` holds a complete checkpoint (its `state.json` exists), after
 * recovering one a killed save left aside.
 */
export async function hasCheckpoint(dir: string): Promise<boolean> {
  dir = dir.replace(/(.)\/+$/, "$1");
  await removeStale(dir);
  try {
    return (await Deno.stat(`${dir}/${CHECKPOINT_FILES.state}`)).isFile;
  } catch {
    return false;
  }
}

/** Reads a checkpoint directory; errors name the file and what is wrong. */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const path = (k: keyof typeof CHECKPOINT_FILES) => `${dir}/${CHECKPOINT_FILES[k]}`;
  const json = async <T>(k: keyof typeof CHECKPOINT_FILES): Promise<T> => {
    let text: string;
    try {
      text = await Deno.readTextFile(path(k));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Error(`checkpoint ${dir}: ${CHECKPOINT_FILES[k]} is missing`);
      }
      throw e;
    }
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new Error(`checkpoint ${path(k)}: not valid JSON (${(e as Error).message})`);
    }
  };
  const state = await json<TrainState>("state");
  if (state?.format !== CHECKPOINT_FORMAT) {
    throw new Error(`checkpoint ${path("state")}: not a fanout checkpoint`);
  }
  if (state.version !== CHECKPOINT_VERSION) {
    throw new Error(
      `checkpoint ${path("state")}: version ${state.version}; this build reads ` +
        `${CHECKPOINT_VERSION}`,
    );
  }
  const w = await loadSafetensors(path("weights"));
  const weights = new Map<string, HostTensor>(w.tensors);
  let tensors = new Map<string, HostTensor>();
  try {
    tensors = new Map((await loadSafetensors(path("optimizer"))).tensors);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return {
    state,
    weights,
    optimizer: {
      step: state.optimizer.step,
      paramSteps: state.optimizer.paramSteps,
      tensors,
    },
    planYaml: await Deno.readTextFile(path("plan")),
    sampler: await json<SamplerSettings>("sampler"),
    spec: await json<ModelSpec>("spec"),
    features: await json<FeaturesRef>("features"),
    output: outputFromJson(await json<OutputSettings>("output")),
  };
}

/** JSON has no infinities: an absent clamp range is written as null. */
function outputFromJson(o: OutputSettings): OutputSettings {
  return { ...o, min: o.min ?? -Infinity, max: o.max ?? Infinity };
}

/**
 * Copies a complete checkpoint directory onto `to`, atomically (the best
 * checkpoint is the latest one, copied, when an epoch improves on the best).
 */
export async function copyCheckpoint(from: string, to: string): Promise<void> {
  to = to.replace(/(.)\/+$/, "$1");
  await removeStale(to);
  const tmp = `${to}.tmp-${randomTag()}`;
  await Deno.mkdir(tmp, { recursive: true });
  try {
    for await (const e of Deno.readDir(from)) {
      if (!e.isFile) continue;
      await writeSynced(`${tmp}/${e.name}`, await Deno.readFile(`${from}/${e.name}`));
    }
    await syncDir(tmp);
    await replaceDir(tmp, to);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

async function writeSynced(path: string, bytes: Uint8Array): Promise<void> {
  using f = await Deno.open(path, { write: true, createNew: true });
  let at = 0;
  while (at < bytes.byteLength) at += await f.write(bytes.subarray(at));
  await f.sync();
}

/**
 * Cleans up after a killed save: `<dir>.tmp-*` are deleted; a `<dir>.old-*`
 * is renamed back onto `<dir>` when `<dir>` is missing (the kill fell between
 * the two renames of `commit`), else deleted.
 */
async function removeStale(dir: string): Promise<void> {
  const parent = parentOf(dir);
  const base = dir.slice(dir.lastIndexOf("/") + 1);
  const stale: { name: string; kind: string }[] = [];
  try {
    for await (const e of Deno.readDir(parent)) {
      const m = /^(.*)\.(tmp|old)-[0-9a-f]{12}$/.exec(e.name);
      if (e.isDirectory && m && m[1] === base) stale.push({ name: e.name, kind: m[2] });
    }
  } catch {
    return; // Parent missing: nothing to clean.
  }
  let present = await exists(dir);
  for (const s of stale) {
    const p = `${parent}/${s.name}`;
    if (s.kind === "old" && !present && await exists(`${p}/${CHECKPOINT_FILES.state}`)) {
      await Deno.rename(p, dir);
      present = true;
    } else {
      await Deno.remove(p, { recursive: true }).catch(() => {});
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
