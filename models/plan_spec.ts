/**
 * The fields of the model plan (models/plan.ts) as data — key, kind, range
 * or choices, and a one-line description — and the check of a plan value
 * in its YAML form against them, which reports each problem with its path
 * so that the parser can point at the line and column.
 *
 * @module
 */

import { STRATEGIES } from "../sampler/types.ts";
import { MAX_HOPS, parseHalfLife } from "../sampler/config.ts";
import { parseTime } from "../store/pql/time.ts";
import { didYouMean, listChoices } from "../store/messages.ts";

/** A field holding one value. */
export type Leaf =
  & { doc: string; optional?: boolean }
  & (
    | { kind: "int"; min: number; max?: number }
    | { kind: "number"; min: number; max?: number; minOpen?: boolean; maxOpen?: boolean }
    | { kind: "enum"; choices: readonly string[] }
    | { kind: "metric" | "time" | "num_neighbors" | "strategy" }
  );

/** A mapping of fields. */
export interface Group {
  /** Always "group". */
  kind: "group";
  /** Fields by YAML key, in the order they are written. */
  fields: Record<string, Spec>;
}

/** A field or a mapping of fields. */
export type Spec = Leaf | Group;

const group = (fields: Record<string, Spec>): Group => ({ kind: "group", fields });
const choice = (choices: readonly string[]): Leaf => ({
  kind: "enum",
  choices,
  doc: choices.join(" | "),
});

/** The plan's fields by YAML key (see models/plan.ts for their meaning). */
export const PLAN_SPEC: Group = group({
  sampling: group({
    num_neighbors: {
      kind: "num_neighbors",
      doc: "fanouts per hop: default and per edge type (-1 all, 0 none)",
    },
    strategy: {
      kind: "strategy",
      doc: `${STRATEGIES.join(" | ")}, or a map per edge type / metapath`,
    },
  }),
  model: group({
    architecture: choice(["sage", "gat", "transformer"]),
    channels: { kind: "int", min: 1, max: 4096, doc: "hidden width" },
    layers: { kind: "int", min: 1, max: 16, doc: "message-passing layers (at most the hops)" },
    aggregation: choice(["mean", "sum", "max"]),
    dropout: { kind: "number", min: 0, max: 1, maxOpen: true, doc: "dropout probability" },
    norm: choice(["layer", "none"]),
    heads: { kind: "int", min: 1, max: 64, doc: "attention heads (gat, transformer)" },
  }),
  training: group({
    loss: choice(["bce", "ce", "l1", "mse"]),
    epochs: { kind: "int", min: 1, doc: "passes over the training rows" },
    batch_size: { kind: "int", min: 1, doc: "seeds per batch" },
    optimizer: choice(["adam", "adamw", "sgd"]),
    lr: { kind: "number", min: 0, minOpen: true, doc: "base learning rate" },
    weight_decay: { kind: "number", min: 0, doc: "weight decay" },
    schedule: group({
      kind: choice(["cosine", "step", "constant"]),
      warmup: { kind: "int", min: 0, doc: "linear warmup steps" },
      every: { kind: "int", min: 1, doc: "step: epochs between decays" },
      gamma: { kind: "number", min: 0, max: 1, minOpen: true, doc: "step: factor per decay" },
    }),
    clip: { kind: "number", min: 0, doc: "global gradient-norm clip (0: off)" },
    early_stopping: group({
      patience: { kind: "int", min: 0, doc: "epochs without improvement (0: never stop)" },
      metric: { kind: "metric", doc: "primary metric (model selection)" },
    }),
    max_steps_per_epoch: { kind: "int", min: 0, doc: "0: every training batch" },
  }),
  data: group({
    val_cutoff: { kind: "time", optional: true, doc: "ISO 8601 or epoch seconds" },
    test_cutoff: { kind: "time", optional: true, doc: "ISO 8601 or epoch seconds" },
    max_train_anchors: { kind: "int", min: 1, optional: true, doc: "most training anchors" },
  }),
});

/** Metric names (`@k` metrics take a positive integer k, as `map@10`). */
export const METRICS: readonly string[] = [
  "auroc",
  "ap",
  "accuracy",
  "f1",
  "mae",
  "rmse",
  "r2",
  "macro_f1",
  "map@k",
  "precision@k",
  "recall@k",
];

/** A problem of a plan value: the path to it (YAML keys and list indices), and what is wrong. */
export interface PlanProblem {
  /** Path from the root, as `["training", "batch_size"]`. */
  path: (string | number)[];
  /** True when the problem is the key at `path` itself (an unknown key). */
  key?: boolean;
  /** The message (the path is not in it). */
  message: string;
}

/** Options of {@link planProblems}. */
export interface PlanProblemOptions {
  /** Overrides: fields may be missing (default true). */
  partial?: boolean;
  /** Edge types of the graph: names in `num_neighbors` and `strategy` must be among them. */
  edgeTypes?: readonly string[];
}

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const show = (
  v: unknown,
): string => (typeof v === "string" ? `"${v}"` : JSON.stringify(v) ?? String(v));

/**
 * The problems of a plan value in its YAML form: unknown keys (with the
 * valid ones and a suggestion), values of the wrong kind or out of range,
 * unknown choices, malformed `num_neighbors` and strategies, and (with
 * `edgeTypes`) unknown edge types. With `partial: false`, missing fields
 * too.
 */
export function planProblems(value: unknown, opts: PlanProblemOptions = {}): PlanProblem[] {
  const out: PlanProblem[] = [];
  const partial = opts.partial ?? true;
  const walk = (v: unknown, spec: Spec, path: (string | number)[]) => {
    if (spec.kind !== "group") {
      if (v === null && (partial || spec.optional)) return;
      for (const p of leafProblems(v, spec, opts.edgeTypes)) {
        out.push({ path: [...path, ...p.path], key: p.key, message: p.message });
      }
      return;
    }
    const keys = Object.keys(spec.fields);
    const what = path.length ? `"${path.join(".")}"` : "a plan";
    if (v === null && path.length && partial) return;
    if (!isRecord(v)) {
      out.push({ path, message: `${what} must be a mapping with keys ${keys.join(", ")}` });
      return;
    }
    for (const [k, sub] of Object.entries(v)) {
      if (!(k in spec.fields)) {
        out.push({
          path: [...path, k],
          key: true,
          message: `unknown key "${k}"; valid: ${keys.join(", ")}${didYouMean(k, keys)}`,
        });
      } else walk(sub, spec.fields[k], [...path, k]);
    }
    if (!partial) {
      for (const k of keys) {
        const sub = spec.fields[k];
        if (v[k] === undefined && !(sub.kind !== "group" && sub.optional)) {
          out.push({ path, message: `missing "${k}"` });
        }
      }
    }
  };
  walk(value, PLAN_SPEC, []);
  return out;
}

/**
 * A problem as a message: `field: message`, the field being the path in
 * dotted form (`sampling.num_neighbors[1].hop2`, `sampling.strategy["a.b->c.d"]`); for a
 * problem with a key,
 * the mapping that holds the key.
 */
export function formatProblem(p: PlanProblem): string {
  const path = p.key ? p.path.slice(0, -1) : p.path;
  const field = path.map((s, i) =>
    typeof s === "number"
      ? `[${s}]`
      : /^[A-Za-z_][A-Za-z0-9_]*$/.test(s)
      ? (i ? `.${s}` : s)
      : `[${JSON.stringify(s)}]`
  ).join("");
  return field ? `${field}: ${p.message}` : p.message;
}

type Sub = { path: (string | number)[]; key?: boolean; message: string };

function leafProblems(v: unknown, spec: Leaf, edgeTypes?: readonly string[]): Sub[] {
  const at = (message: string): Sub[] => [{ path: [], message }];
  switch (spec.kind) {
    case "int":
    case "number": {
      const int = spec.kind === "int";
      const range = `${spec.kind === "int" ? "an integer" : "a number"} ${
        spec.max === undefined
          ? `${spec.kind === "number" && spec.minOpen ? ">" : ">="} ${spec.min}`
          : `in ${spec.kind === "number" && spec.minOpen ? "(" : "["}${spec.min}, ${spec.max}${
            spec.kind === "number" && spec.maxOpen ? ")" : "]"
          }`
      }`;
      if (typeof v !== "number" || !Number.isFinite(v) || (int && !Number.isInteger(v))) {
        return at(`must be ${range}, got ${show(v)}`);
      }
      const lowOk = spec.kind === "number" && spec.minOpen ? v > spec.min : v >= spec.min;
      const highOk = spec.max === undefined ||
        (spec.kind === "number" && spec.maxOpen ? v < spec.max : v <= spec.max);
      return lowOk && highOk ? [] : at(`must be ${range}, got ${v}`);
    }
    case "enum":
      return typeof v === "string" && spec.choices.includes(v) ? [] : at(
        `unknown value ${show(v)}; valid: ${spec.choices.join(", ")}${
          typeof v === "string" ? didYouMean(v, spec.choices) : ""
        }`,
      );
    case "metric": {
      const m = typeof v === "string" ? v.replace(/@[1-9][0-9]*$/, "@k") : "";
      const plain = m === v && !m.endsWith("@k"), withK = m !== v;
      if (METRICS.includes(m) && (plain || withK)) return [];
      return at(
        `unknown metric ${show(v)}; valid: ${METRICS.join(", ")} (k a positive integer, e.g. ` +
          `map@10)${typeof v === "string" ? didYouMean(v, METRICS) : ""}`,
      );
    }
    case "time":
      if (typeof v !== "number" && typeof v !== "string") {
        return at(`must be a time (ISO 8601 like 2024-10-01, or epoch seconds), got ${show(v)}`);
      }
      try {
        parseTime(v, "time");
        return [];
      } catch {
        return at(
          `cannot read ${show(v)} as a time (use ISO 8601 like 2024-10-01, or epoch seconds)`,
        );
      }
    case "num_neighbors":
      return numNeighborsProblems(v, edgeTypes);
    case "strategy":
      return strategyProblems(v, edgeTypes);
  }
}

function edgeTypeProblem(name: string, edgeTypes?: readonly string[]): string | null {
  if (!edgeTypes || edgeTypes.includes(name)) return null;
  return `unknown edge type "${name}"${didYouMean(name, edgeTypes)}; edge types: ${
    listChoices(edgeTypes)
  }`;
}

function fanoutProblem(v: unknown): string | null {
  return typeof v === "number" && Number.isInteger(v) && v >= -1 && v <= 0x7fffffff
    ? null
    : `fanout must be an integer >= -1 (-1 all, 0 none, k > 0 at most k), got ${show(v)}`;
}

function numNeighborsProblems(v: unknown, edgeTypes?: readonly string[]): Sub[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_HOPS) {
    return [{
      path: [],
      message: `must be a list of 1 to ${MAX_HOPS} hops ([{hop1: {default: 16}}, ...] or ` +
        `[16, 8]), got ${Array.isArray(v) ? `${v.length} hops` : show(v)}`,
    }];
  }
  const out: Sub[] = [];
  v.forEach((item, h) => {
    const hopKey = `hop${h + 1}`;
    if (!isRecord(item)) {
      const p = fanoutProblem(item);
      if (p) out.push({ path: [h], message: p });
      return;
    }
    const keys = Object.keys(item);
    if (keys.length !== 1 || keys[0] !== hopKey) {
      out.push({
        path: [h],
        message: `expected a single key "${hopKey}" (hops in order), got ${
          keys.map((k) => `"${k}"`).join(", ") || "none"
        }`,
      });
      return;
    }
    const hop = item[hopKey];
    if (!isRecord(hop)) {
      const p = fanoutProblem(hop);
      if (p) out.push({ path: [h, hopKey], message: p });
      return;
    }
    if (!("default" in hop)) {
      out.push({
        path: [h, hopKey],
        message: `no "default" fanout (every hop needs one; overrides are keyed by edge type)`,
      });
    }
    for (const [k, f] of Object.entries(hop)) {
      const bad = fanoutProblem(f);
      if (bad) out.push({ path: [h, hopKey, k], message: bad });
      const et = k === "default" ? null : edgeTypeProblem(k, edgeTypes);
      if (et) out.push({ path: [h, hopKey, k], key: true, message: et });
    }
  });
  return out;
}

function ruleProblems(v: unknown, path: (string | number)[]): Sub[] {
  const name = (s: unknown): string | null =>
    typeof s === "string" && (STRATEGIES as readonly string[]).includes(s) ? null : `unknown ` +
      `strategy ${show(s)}${typeof s === "string" ? didYouMean(s, STRATEGIES) : ""}; strategies: ${
        STRATEGIES.join(", ")
      }`;
  if (!isRecord(v)) {
    const p = name(v);
    return p ? [{ path, message: p }] : [];
  }
  const out: Sub[] = [];
  for (const k of Object.keys(v)) {
    if (k !== "strategy" && k !== "half_life") {
      out.push({
        path: [...path, k],
        message: `unknown key "${k}" (expected strategy, half_life)`,
      });
    }
  }
  const p = name(v.strategy);
  if (p) out.push({ path, message: p });
  if (v.half_life !== undefined) {
    try {
      parseHalfLife(v.half_life);
      if (v.strategy !== "recency") {
        out.push({
          path: [...path, "half_life"],
          message: `half_life applies only to the recency strategy, not ${show(v.strategy)}`,
        });
      }
    } catch (e) {
      out.push({ path: [...path, "half_life"], message: (e as Error).message });
    }
  }
  return out;
}

function strategyProblems(v: unknown, edgeTypes?: readonly string[]): Sub[] {
  if (typeof v === "string") return ruleProblems(v, []);
  if (!isRecord(v)) {
    return [{
      path: [],
      message: `expected a strategy name (${STRATEGIES.join(", ")}) or a map ` +
        `{default, half_life, EDGE_TYPE: strategy}, got ${show(v)}`,
    }];
  }
  if ("strategy" in v) return ruleProblems(v, []);
  const out: Sub[] = [];
  for (const [k, r] of Object.entries(v)) {
    if (k === "half_life") {
      try {
        parseHalfLife(r);
      } catch (e) {
        out.push({ path: [k], message: (e as Error).message });
      }
      continue;
    }
    out.push(...ruleProblems(r, [k]));
    if (k === "default") continue;
    for (const part of k.split("/").map((p) => p.trim())) {
      const et = edgeTypeProblem(part, edgeTypes);
      if (et) out.push({ path: [k], key: true, message: et });
    }
  }
  return out;
}
