/**
 * The sampling configuration: Kumo's `num_neighbors` and the temporal
 * strategies, parsed, validated against a graph's edge types, and compiled
 * into flat typed arrays for the sampler (plain data: it can be posted to
 * workers).
 *
 * ## `num_neighbors`
 *
 * Kumo's YAML form, verbatim: a list of `hopN` maps (`hop1`, `hop2`, … in
 * order), each with a `default` fanout and overrides keyed by edge type;
 * or the short form `[16, 8]` (defaults only). A fanout is an integer:
 * `k > 0` samples up to `k` neighbours, `0` disables the edge type at that
 * hop, `-1` takes every visible neighbour. Given as YAML text (optionally a
 * document with a top-level `num_neighbors` key) or an already parsed value.
 *
 * ## Strategies
 *
 * A strategy name (`uniform`, `last`, `recency`, `static`; definitions in
 * strategies.ts) or a rule `{ strategy, half_life }` for everything, or a
 * map (YAML text or parsed; a document with a top-level `strategy` key is
 * unwrapped):
 *
 * ```yaml
 * default: recency          # default for unlisted edge types (default: recency)
 * half_life: 30d            # default half-life of recency (default: 30d)
 * USERS.USER_ID->TRANSACTIONS.USER_ID: last            # per edge type, any hop
 * USERS.USER_ID->TRANSACTIONS.USER_ID / TRANSACTIONS.ITEM_ID->ITEMS.ITEM_ID:
 *   { strategy: recency, half_life: 12h }              # per metapath
 * ```
 *
 * A half-life is a number of seconds or a number with a unit `s`, `m`,
 * `h`, `d` or `w` (`"12h"`, `"1.5d"`). A **metapath** is a sequence of edge
 * types joined by `/`, anchored at the seed: it applies to the last edge
 * type of the path when a node is expanded whose path from its seed is the
 * metapath's prefix. The path of a node is the one along which it was first
 * reached in its seed's tree (dedup keeps the first). Precedence: metapath,
 * then edge type, then `default`.
 *
 * ## Compiled form
 *
 * Fanouts are `fanout[hop - 1][edgeTypeIndex]`. Strategies depend on the
 * path from the seed, so they are looked up through a small automaton:
 * every sampled node carries a state; the seeds start in `rootState`;
 * expanding over edge type `e` from a node in state `s` uses
 * `strategy[s·E + e]` (with half-life `lnPerTick[s·E + e] = ln 2 / ticks`)
 * and gives the new neighbour state `next[s·E + e]`. States are the trie of
 * metapath prefixes plus state 0, "off every metapath", whose row holds the
 * per-edge-type rules. Without metapaths there is a single state 0.
 *
 * @module
 */

import { parseYaml } from "./deps.ts";
import type { GraphData } from "../store/graph.ts";
import { GraphStore } from "../store/graph.ts";
import { STRATEGIES, type Strategy } from "./types.ts";
import { strategyCode } from "./strategies.ts";
import { didYouMean } from "../store/messages.ts";

/** One hop of Kumo's `num_neighbors`: `default` plus per-edge-type overrides. */
export type HopFanouts = Record<string, number>;

/** Kumo's `num_neighbors`: `[{ hop1: {...} }, { hop2: {...} }, ...]`. */
export type NumNeighbors = Record<string, HopFanouts>[];

/** A per-edge-type or per-metapath strategy rule. */
export interface StrategyRule {
  /** The strategy. */
  strategy: Strategy;
  /** Half-life of `recency` (seconds, or a string like "30d"). */
  half_life?: number | string;
}

/** Default strategy. */
export const DEFAULT_STRATEGY: Strategy = "recency";
/** Default half-life of `recency`. */
export const DEFAULT_HALF_LIFE = "30d";
/** Most hops a configuration may have (hops are stored as bytes). */
export const MAX_HOPS = 254;

/** A compiled sampling configuration (plain data: structured-cloneable). */
export interface CompiledSampling {
  /** Number of hops. */
  hops: number;
  /** Edge type names, in the graph's order (index = edge type index). */
  edgeTypes: string[];
  /** `fanout[hop - 1][e]`: -1 all, 0 none, k > 0 at most k. */
  fanout: Int32Array[];
  /** Number of path states (1 without metapaths). */
  numStates: number;
  /** State of the seeds. */
  rootState: number;
  /** `next[s·E + e]`: state of a node reached over `e` from a node in state `s`. */
  next: Int32Array;
  /** `strategy[s·E + e]`: strategy code (index in `STRATEGIES`). */
  strategy: Uint8Array;
  /** `lnPerTick[s·E + e]`: ln 2 / half-life in ticks (recency), else 0. */
  lnPerTick: Float64Array;
  /** The fanouts in Kumo's form, every hop with its default and overrides (for logs). */
  numNeighbors: NumNeighbors;
}

/** Re-exported: one did-you-mean for every message in the project. */
export { didYouMean };

function unknownEdgeType(name: string, where: string, edgeTypes: readonly string[]): Error {
  return new Error(
    `${where}: unknown edge type "${name}"${didYouMean(name, edgeTypes)}; edge types: ${
      edgeTypes.join(", ")
    }`,
  );
}

function fanoutValue(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new Error(`${where}: fanout must be an integer (-1 all, 0 none, k > 0), got ${fmt(v)}`);
  }
  if (v < -1) throw new Error(`${where}: fanout ${v} is below -1 (-1 takes all, 0 disables)`);
  if (v > 0x7fffffff) throw new Error(`${where}: fanout ${v} is too large`);
  return v;
}

function fmt(v: unknown): string {
  try {
    return typeof v === "string" ? `"${v}"` : JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses YAML text (unwrapping a top-level `key` when given), or returns a parsed value as is. */
function fromYaml(spec: unknown, key: string): unknown {
  let v = spec;
  if (typeof spec === "string") {
    try {
      v = parseYaml(spec);
    } catch (e) {
      throw new Error(`${key || "strategy"}: invalid YAML: ${(e as Error).message}`);
    }
  }
  if (key && isRecord(v) && key in v) v = v[key];
  return v;
}

/**
 * Parses and validates `num_neighbors` against the edge types: returns the
 * fanouts per hop (`[hop - 1][edge type index]`) and the normalized Kumo form.
 */
export function parseNumNeighbors(
  spec: unknown,
  edgeTypes: readonly string[],
): { fanout: Int32Array[]; numNeighbors: NumNeighbors } {
  const v = fromYaml(spec, "num_neighbors");
  if (!Array.isArray(v)) {
    throw new Error(
      `num_neighbors must be a list of hops ([{hop1: {default: 16}}, ...] or [16, 8]), got ${
        fmt(v)
      }`,
    );
  }
  if (v.length === 0) throw new Error("num_neighbors: at least one hop is needed");
  if (v.length > MAX_HOPS) throw new Error(`num_neighbors: ${v.length} hops, at most ${MAX_HOPS}`);
  const index = new Map(edgeTypes.map((e, i) => [e, i]));
  const fanout: Int32Array[] = [];
  const numNeighbors: NumNeighbors = [];
  v.forEach((item, h) => {
    const hopKey = `hop${h + 1}`;
    let hop: unknown = item;
    if (isRecord(item)) {
      const keys = Object.keys(item);
      if (keys.length !== 1 || keys[0] !== hopKey) {
        throw new Error(
          `num_neighbors[${h}]: expected a single key "${hopKey}", got ${
            keys.map((k) => `"${k}"`).join(", ") || "none"
          }`,
        );
      }
      hop = item[hopKey];
    }
    const f = new Int32Array(edgeTypes.length);
    const norm: HopFanouts = {};
    if (typeof hop === "number") {
      const def = fanoutValue(hop, `num_neighbors ${hopKey}`);
      f.fill(def);
      norm.default = def;
    } else if (isRecord(hop)) {
      if (!("default" in hop)) {
        throw new Error(
          `num_neighbors ${hopKey}: no "default" fanout (every hop needs one; overrides are keyed by edge type)`,
        );
      }
      const def = fanoutValue(hop.default, `num_neighbors ${hopKey} default`);
      f.fill(def);
      norm.default = def;
      for (const [k, val] of Object.entries(hop)) {
        if (k === "default") continue;
        const e = index.get(k);
        if (e === undefined) throw unknownEdgeType(k, `num_neighbors ${hopKey}`, edgeTypes);
        f[e] = norm[k] = fanoutValue(val, `num_neighbors ${hopKey} ${k}`);
      }
    } else {
      throw new Error(
        `num_neighbors ${hopKey}: expected a map {default: k, EDGE_TYPE: k} or a number, got ${
          fmt(hop)
        }`,
      );
    }
    fanout.push(f);
    numNeighbors.push({ [hopKey]: norm });
  });
  return { fanout, numNeighbors };
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** A half-life in seconds from a number of seconds or a string like "30d", "12h", "90m", "45s", "2w". */
export function parseHalfLife(v: unknown, where = "half_life"): number {
  let s = NaN;
  if (typeof v === "number") s = v;
  else if (typeof v === "string") {
    const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([smhdw]?)\s*$/i.exec(v);
    if (m) s = Number(m[1]) * UNITS[(m[2] || "s").toLowerCase()];
  }
  if (!(s > 0) || !Number.isFinite(s)) {
    throw new Error(
      `${where}: invalid half-life ${fmt(v)}; use seconds or a number with s, m, h, d or w ("30d")`,
    );
  }
  return s;
}

function strategyName(v: unknown, where: string): Strategy {
  if (typeof v !== "string" || strategyCode(v) < 0) {
    const hint = typeof v === "string" ? didYouMean(v, STRATEGIES) : "";
    throw new Error(
      `${where}: unknown strategy ${fmt(v)}${hint}; strategies: ${STRATEGIES.join(", ")}`,
    );
  }
  return v as Strategy;
}

interface Rule {
  code: number;
  halfLife: number; // seconds
}

function ruleOf(v: unknown, where: string, defaultHalfLife: number): Rule {
  if (isRecord(v)) {
    for (const k of Object.keys(v)) {
      if (k !== "strategy" && k !== "half_life") {
        throw new Error(`${where}: unknown key "${k}" (expected strategy, half_life)`);
      }
    }
    const s = strategyName(v.strategy, where);
    const hl = v.half_life === undefined
      ? defaultHalfLife
      : parseHalfLife(v.half_life, `${where} half_life`);
    if (v.half_life !== undefined && s !== "recency") {
      throw new Error(`${where}: half_life applies only to the recency strategy, not ${s}`);
    }
    return { code: strategyCode(s), halfLife: hl };
  }
  return { code: strategyCode(strategyName(v, where)), halfLife: defaultHalfLife };
}

/**
 * Compiles `num_neighbors` and the strategies against a graph (see the
 * module doc for the accepted forms and the compiled layout). Throws an
 * Error naming the problem and listing the valid edge types or strategies.
 */
export function compileSampling(
  graph: GraphStore | GraphData,
  numNeighbors: unknown,
  strategies: unknown = DEFAULT_STRATEGY,
): CompiledSampling {
  const data = graph instanceof GraphStore ? graph.data : graph;
  const edgeTypes = data.edges.map((e) => e.name);
  const E = edgeTypes.length;
  const { fanout, numNeighbors: norm } = parseNumNeighbors(numNeighbors, edgeTypes);
  const hops = fanout.length;
  const index = new Map(edgeTypes.map((e, i) => [e, i]));

  let spec = fromYaml(strategies, "");
  if (isRecord(spec) && "strategy" in spec) {
    // A rule for everything ({strategy, half_life}), or a document with a `strategy` key.
    const rule = typeof spec.strategy === "string" &&
      Object.keys(spec).every((k) => k === "strategy" || k === "half_life");
    if (!rule) spec = spec.strategy;
    else if (spec.half_life === undefined) spec = { default: spec.strategy };
    else spec = { default: spec.strategy, half_life: spec.half_life };
  }
  if (spec === undefined || spec === null) spec = DEFAULT_STRATEGY;
  if (typeof spec === "string") spec = { default: spec };
  if (!isRecord(spec)) {
    throw new Error(
      `strategy: expected a strategy name or a map {default, half_life, EDGE_TYPE: strategy}, got ${
        fmt(spec)
      }`,
    );
  }
  const halfLife = spec.half_life === undefined
    ? parseHalfLife(DEFAULT_HALF_LIFE)
    : parseHalfLife(spec.half_life, "strategy half_life");
  const def = spec.default === undefined
    ? { code: strategyCode(DEFAULT_STRATEGY), halfLife }
    : ruleOf(spec.default, "strategy default", halfLife);
  const perEdge: Rule[] = edgeTypes.map(() => def);
  const paths: { path: number[]; rule: Rule; key: string }[] = [];
  for (const [key, val] of Object.entries(spec)) {
    if (key === "default" || key === "half_life") continue;
    const where = `strategy "${key}"`;
    const e = index.get(key);
    if (e !== undefined) {
      perEdge[e] = ruleOf(val, where, halfLife);
      continue;
    }
    if (!key.includes("/")) throw unknownEdgeType(key, "strategy", edgeTypes);
    const path = key.split("/").map((p) => p.trim()).map((p) => {
      const i = index.get(p);
      if (i === undefined) throw unknownEdgeType(p, `strategy metapath "${key}"`, edgeTypes);
      return i;
    });
    for (let i = 1; i < path.length; i++) {
      const a = data.edges[path[i - 1]], b = data.edges[path[i]];
      if (a.dst !== b.src) {
        throw new Error(
          `strategy metapath "${key}": ${a.name} ends at ${a.dst} but ${b.name} starts at ${b.src}`,
        );
      }
    }
    if (path.length > hops) {
      throw new Error(
        `strategy metapath "${key}" has ${path.length} edge types but num_neighbors has ${hops} hops`,
      );
    }
    const norm = path.join(",");
    if (paths.some((p) => p.path.join(",") === norm)) {
      throw new Error(`strategy metapath "${key}" is given twice`);
    }
    paths.push({ path, rule: ruleOf(val, where, halfLife), key });
  }

  // Trie of metapath prefixes: state 0 = off every metapath, 1 = root.
  const children: Map<number, number>[] = [new Map()];
  const overrides = new Map<number, Rule>(); // s·E + e → rule
  const rootState = paths.length ? 1 : 0;
  if (paths.length) children.push(new Map());
  for (const { path, rule } of paths) {
    let s = rootState;
    for (let i = 0; i < path.length; i++) {
      if (i === path.length - 1) overrides.set(s * E + path[i], rule);
      let c = children[s].get(path[i]);
      if (c === undefined) {
        c = children.length;
        children.push(new Map());
        children[s].set(path[i], c);
      }
      s = c;
    }
  }
  const numStates = children.length;
  const next = new Int32Array(numStates * E);
  const strategy = new Uint8Array(numStates * E);
  const lnPerTick = new Float64Array(numStates * E);
  for (let s = 0; s < numStates; s++) {
    for (let e = 0; e < E; e++) {
      const r = overrides.get(s * E + e) ?? perEdge[e];
      next[s * E + e] = s === 0 ? 0 : children[s].get(e) ?? 0;
      strategy[s * E + e] = r.code;
      lnPerTick[s * E + e] = r.code === strategyCode("recency")
        ? Math.LN2 / (r.halfLife / data.timeScale)
        : 0;
    }
  }
  return {
    hops,
    edgeTypes,
    fanout,
    numStates,
    rootState,
    next,
    strategy,
    lnPerTick,
    numNeighbors: norm,
  };
}
