/**
 * The graph store: the topology of a relational database in RAM, shared by
 * sampler workers without copying.
 *
 * Every table is a node type (dense ids 0..n-1 = `__row`); every foreign key
 * `CHILD.FK → PARENT.PK` gives two edge types, `CHILD.FK->PARENT.PK` (each
 * child to its parent) and `PARENT.PK->CHILD.FK` (each parent to its
 * children). Per edge type, CSR over Int32Arrays in SharedArrayBuffers:
 *
 * - `offsets` (numSrc+1): the neighbours of source `s` are
 *   `nbr[offsets[s] .. offsets[s+1])`;
 * - `nbr`: destination dense ids, sorted within each source by (neighbour
 *   time, neighbour id), so the part visible at a seed tick is a prefix
 *   found by binary search;
 * - `nbrTime`: the neighbour's tick beside each `nbr`, or **null**, in which
 *   case the neighbour's tick is `nodeTime(dst)[nbr[i]]`. It is left out when
 *   the destination table is static (every tick is `STATIC_TIME`) and for
 *   child→parent edge types (at most one neighbour per source, nothing to
 *   search), which keeps the store within 12 bytes per edge direction.
 *
 * Node ticks: `node(t).time[id]` (STATIC_TIME for static tables, NEVER_TIME
 * for a null time). See ticks.ts for ticks ↔ epoch seconds.
 *
 * **Appended rows** (graph_append.ts) never touch these base arrays. Each
 * node type has a `delta` with the appended rows (ids `count ..
 * count+delta.count-1`, their ticks and keys) and each edge type a `delta`
 * CSR over the sources that gained edges: `src` (sorted, unique), `offsets`,
 * `nbr`, `time` (always present), each run sorted by (time, id). Every
 * append replaces the delta arrays with new ones (the old ones are never
 * written again), so a reader holding an older `toShared()` keeps a
 * consistent older snapshot; `version` counts appends so that a worker pool
 * can tell when to resend (the delta is small; the base is not resent).
 *
 * A reader (the sampler) finds the neighbours of `s` visible at seed tick
 * `T` (ticks.ts `seedTick`) as `visibleDegree` and `neighbors` below do: the
 * base run `[offsets[s], upperBound(T))` when `s < offsets.length - 1` (base
 * edges only point at base nodes, so `nodeTime(dst)` is the base `time`
 * array there), then the run of `s` in `delta` when `delta.src` holds it
 * (binary search), cut the same way over `delta.time`. Each run is in time
 * order; sampling k of the `b + d` visible neighbours can pick indices in
 * `[0, b + d)` and read index `i < b` from the base run, the rest from the
 * delta run. `neighbors` merges the two for one time-ordered list.
 *
 * @module
 */

import { keyAt, type KeyIndex, keyIndexBytes, lookupKey } from "./keys.ts";
import { NEVER_TIME, STATIC_TIME, type TimeScale, toTick } from "./ticks.ts";

/** Rows appended to a node type after the build. */
export interface NodeDelta {
  /** Number of appended rows; their ids follow the base ids. */
  count: number;
  /** Ticks of the appended rows (length `count`). */
  time: Int32Array;
  /** Primary keys of the appended rows, in id order (empty without a primary key). */
  keys: (number | string)[];
  /** Primary key → id of the appended rows. */
  keyIds: Map<number | string, number>;
}

/** One node type (a table). */
export interface NodeData {
  /** Table name. */
  name: string;
  /** Number of base rows (ids 0..count-1). */
  count: number;
  /** Tick of each base row. */
  time: Int32Array;
  /** True for a table without a time column (every tick is STATIC_TIME). */
  isStatic: boolean;
  /** Time column name, or null. */
  timeColumn: string | null;
  /** Primary key column name, or null. */
  primaryKey: string | null;
  /** Primary key index of the base rows, or null without a primary key. */
  keys: KeyIndex | null;
  /** Appended rows. */
  delta: NodeDelta;
}

/** Edges added by appends, as a small CSR over the sources that gained edges. */
export interface EdgeDelta {
  /** Sources with delta edges, ascending, unique. */
  src: Int32Array;
  /** Run of `src[j]` is `[offsets[j], offsets[j+1])` (length src.length+1). */
  offsets: Int32Array;
  /** Destination ids. */
  nbr: Int32Array;
  /** Destination ticks (ascending within each run, ties by id). */
  time: Int32Array;
}

/** One edge type. */
export interface EdgeData {
  /** `SRC.COLUMN->DST.COLUMN`. */
  name: string;
  /** Source node type. */
  src: string;
  /** Source column (the FK for child→parent, the PK for parent→child). */
  srcColumn: string;
  /** Destination node type. */
  dst: string;
  /** Destination column. */
  dstColumn: string;
  /** "forward": child → parent (≤ 1 neighbour per source); "reverse": parent → children. */
  direction: "forward" | "reverse";
  /** Row offsets over the base sources (length = base source count + 1). */
  offsets: Int32Array;
  /** Neighbour ids. */
  nbr: Int32Array;
  /** Neighbour ticks, or null: then read `nodeTime(dst)[nbr[i]]`. */
  nbrTime: Int32Array | null;
  /** Edges added by appends (empty arrays when none). */
  delta: EdgeDelta;
}

/** The whole store as plain data: SharedArrayBuffer-backed arrays plus small metadata. */
export interface GraphData extends TimeScale {
  /** Format tag. */
  format: "fanout-graph";
  /** Number of appends applied since the build or load. */
  version: number;
  /** Node types, in schema order. */
  nodes: NodeData[];
  /** Edge types: per foreign key, forward then reverse, in schema order. */
  edges: EdgeData[];
}

/** Memory accounting of a graph store, in bytes. */
export interface GraphBytes {
  /** Node tick arrays (base). */
  nodeTime: number;
  /** Edge arrays (offsets, nbr, nbrTime; base). */
  edges: number;
  /** Primary key indexes (base). */
  keys: number;
  /** Delta arrays of appended rows (typed arrays only). */
  delta: number;
  /** Sum of the above. */
  total: number;
  /** Stored edge directions (base). */
  edgeDirections: number;
  /** (edges + nodeTime) / edgeDirections: the budget figure (≤ 12). */
  perEdge: number;
}

/** A neighbour list in time order. */
export interface Neighbors {
  /** Neighbour ids. */
  ids: Int32Array;
  /** Their ticks. */
  ticks: Int32Array;
}

/** An empty edge delta. */
export function emptyEdgeDelta(): EdgeDelta {
  const z = () => new Int32Array(new SharedArrayBuffer(0));
  const offsets = new Int32Array(new SharedArrayBuffer(4));
  return { src: z(), offsets, nbr: z(), time: z() };
}

/** An empty node delta. */
export function emptyNodeDelta(): NodeDelta {
  return { count: 0, time: new Int32Array(new SharedArrayBuffer(0)), keys: [], keyIds: new Map() };
}

/** First index in `[lo, hi)` whose tick (`times[i]`) is above `maxTick` (binary search). */
export function upperBound(times: Int32Array, lo: number, hi: number, maxTick: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (times[mid] <= maxTick) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Like `upperBound`, reading the tick of `nbr[i]` from the destination's node ticks. */
export function upperBoundIndirect(
  nbr: Int32Array,
  dstTime: Int32Array,
  lo: number,
  hi: number,
  maxTick: number,
): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (dstTime[nbr[mid]] <= maxTick) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of `s` in the sorted `src`, or -1. */
export function findSorted(src: Int32Array, s: number): number {
  let lo = 0, hi = src.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (src[mid] < s) lo = mid + 1;
    else hi = mid;
  }
  return lo < src.length && src[lo] === s ? lo : -1;
}

/** A temporal graph over a relational database. See the module doc for the layout. */
export class GraphStore {
  /** The plain data (what `toShared` hands out). */
  readonly data: GraphData;
  #nodes = new Map<string, NodeData>();
  #edges = new Map<string, EdgeData>();

  /** Wraps plain graph data (as built, loaded or received from another thread). */
  constructor(data: GraphData) {
    if (data?.format !== "fanout-graph") throw new Error("not fanout graph data");
    this.data = data;
    for (const n of data.nodes) this.#nodes.set(n.name, n);
    for (const e of data.edges) this.#edges.set(e.name, e);
  }

  /** Epoch seconds of tick 0. */
  get timeBase(): number {
    return this.data.timeBase;
  }

  /** Seconds per tick. */
  get timeScale(): number {
    return this.data.timeScale;
  }

  /** Appends applied so far. */
  get version(): number {
    return this.data.version;
  }

  /** Tick of an epoch-seconds time (see ticks.ts `toTick`). */
  toTick(epochSeconds: number): number {
    return toTick(this.data, epochSeconds);
  }

  /** Epoch seconds at the start of a tick (±Infinity for STATIC_TIME / NEVER_TIME). */
  fromTick(tick: number): number {
    if (tick === STATIC_TIME) return -Infinity;
    if (tick === NEVER_TIME) return Infinity;
    return this.data.timeBase + tick * this.data.timeScale;
  }

  /** Node type names, in schema order. */
  nodeTypes(): string[] {
    return this.data.nodes.map((n) => n.name);
  }

  /** Edge type names. */
  edgeTypes(): string[] {
    return this.data.edges.map((e) => e.name);
  }

  /** A node type; throws listing the valid names when unknown. */
  node(name: string): NodeData {
    const n = this.#nodes.get(name);
    if (!n) {
      throw new Error(`unknown node type "${name}"; node types: ${this.nodeTypes().join(", ")}`);
    }
    return n;
  }

  /** An edge type; throws listing the valid names when unknown. */
  edgeType(name: string): EdgeData {
    const e = this.#edges.get(name);
    if (!e) {
      throw new Error(`unknown edge type "${name}"; edge types: ${this.edgeTypes().join(", ")}`);
    }
    return e;
  }

  /** Number of nodes of a type, appended rows included. */
  numNodes(type: string): number {
    const n = this.node(type);
    return n.count + n.delta.count;
  }

  /** Tick of node `id` of `type` (base or appended). */
  nodeTime(type: string, id: number): number {
    const n = this.node(type);
    return id < n.count ? n.time[id] : n.delta.time[id - n.count];
  }

  /** Dense id of a primary-key value of `type` (base or appended), or -1. */
  idOf(type: string, key: number | string | bigint): number {
    const n = this.node(type);
    if (!n.keys) throw new Error(`node type "${type}" has no primary key`);
    const id = lookupKey(n.keys, key);
    if (id >= 0 || n.delta.count === 0) return id;
    const k = n.keys.kind === "string" ? String(key) : Number(key);
    return n.delta.keyIds.get(k) ?? -1;
  }

  /** Primary-key value of node `id` of `type`. */
  keyOf(type: string, id: number): number | string {
    const n = this.node(type);
    if (!n.keys) throw new Error(`node type "${type}" has no primary key`);
    if (id < 0 || id >= n.count + n.delta.count) {
      throw new RangeError(`node id ${id} out of range for "${type}"`);
    }
    return id < n.count ? keyAt(n.keys, id) : n.delta.keys[id - n.count];
  }

  /**
   * Neighbours of `node` over `edgeType` with tick ≤ `maxTick` (all by
   * default), base and appended merged in (tick, id) order. The reference
   * for the sampler's reads; allocates, so not for hot loops.
   */
  neighbors(edgeType: string, node: number, maxTick: number = NEVER_TIME): Neighbors {
    const e = this.edgeType(edgeType);
    const dst = this.node(e.dst);
    const base = baseRun(e, dst, node, maxTick);
    const d = e.delta;
    const j = findSorted(d.src, node);
    const dLo = j < 0 ? 0 : d.offsets[j];
    const dHi = j < 0 ? 0 : upperBound(d.time, dLo, d.offsets[j + 1], maxTick);
    const n = base.hi - base.lo + dHi - dLo;
    const ids = new Int32Array(n), ticks = new Int32Array(n);
    let a = base.lo, b = dLo;
    const tA = (i: number) => (e.nbrTime ? e.nbrTime[i] : dst.time[e.nbr[i]]);
    for (let k = 0; k < n; k++) {
      const takeA = b >= dHi ||
        (a < base.hi && (tA(a) < d.time[b] || (tA(a) === d.time[b] && e.nbr[a] <= d.nbr[b])));
      if (takeA) {
        ids[k] = e.nbr[a];
        ticks[k] = tA(a++);
      } else {
        ids[k] = d.nbr[b];
        ticks[k] = d.time[b++];
      }
    }
    return { ids, ticks };
  }

  /** Number of neighbours of `node` over `edgeType` with tick ≤ `maxTick` (base + appended). */
  visibleDegree(edgeType: string, node: number, maxTick: number = NEVER_TIME): number {
    const e = this.edgeType(edgeType);
    const base = baseRun(e, this.node(e.dst), node, maxTick);
    const d = e.delta;
    const j = findSorted(d.src, node);
    const delta = j < 0 ? 0 : upperBound(d.time, d.offsets[j], d.offsets[j + 1], maxTick) -
      d.offsets[j];
    return base.hi - base.lo + delta;
  }

  /** Memory accounting (typed arrays; the small metadata is not counted). */
  bytes(): GraphBytes {
    let nodeTime = 0, edges = 0, keys = 0, delta = 0, edgeDirections = 0;
    for (const n of this.data.nodes) {
      nodeTime += n.time.byteLength;
      if (n.keys) keys += keyIndexBytes(n.keys);
      delta += n.delta.time.byteLength;
    }
    for (const e of this.data.edges) {
      edges += e.offsets.byteLength + e.nbr.byteLength + (e.nbrTime?.byteLength ?? 0);
      edgeDirections += e.nbr.length;
      const d = e.delta;
      delta += d.src.byteLength + d.offsets.byteLength + d.nbr.byteLength + d.time.byteLength;
    }
    return {
      nodeTime,
      edges,
      keys,
      delta,
      total: nodeTime + edges + keys + delta,
      edgeDirections,
      perEdge: edgeDirections ? (edges + nodeTime) / edgeDirections : 0,
    };
  }

  /**
   * The store as plain data for `postMessage`: every array lies over a
   * SharedArrayBuffer, so the receiver shares them (no copy); only the
   * metadata (and the appended-key map) is cloned. Rebuild with `fromShared`.
   */
  toShared(): GraphData {
    return this.data;
  }

  /** The store from `toShared()` data received by a worker. */
  static fromShared(data: GraphData): GraphStore {
    return new GraphStore(data);
  }
}

/** The visible base run of `node` in `e` (empty for a source appended after the build). */
function baseRun(
  e: EdgeData,
  dst: NodeData,
  node: number,
  maxTick: number,
): { lo: number; hi: number } {
  if (node < 0 || node >= e.offsets.length - 1) return { lo: 0, hi: 0 };
  const lo = e.offsets[node], end = e.offsets[node + 1];
  if (maxTick >= NEVER_TIME) return { lo, hi: end };
  const hi = e.nbrTime
    ? upperBound(e.nbrTime, lo, end, maxTick)
    : upperBoundIndirect(e.nbr, dst.time, lo, end, maxTick);
  return { lo, hi };
}
