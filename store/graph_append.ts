/**
 * Appending rows to a built or loaded graph without a rebuild, for online
 * scoring of new entities, and compacting the appended rows into new base
 * arrays.
 *
 * `appendRows` gives the new rows ids after the existing ones, records their
 * ticks and keys in the node type's delta, resolves their foreign keys
 * (parents may be base rows, appended rows, or rows of the same batch) and
 * merges the new edges — child→parent and parent→child — into each edge
 * type's delta CSR (see graph.ts for how readers combine base and delta).
 * Base arrays are never written. Every append builds new delta arrays and
 * leaves the old ones as they were, so a worker holding an older snapshot
 * (`toShared()` data sent before the append) stays consistent; cost is linear in the delta size plus the batch, so
 * call `compactGraph` when deltas grow large (saving does it).
 *
 * @module
 */

import {
  type EdgeData,
  type EdgeDelta,
  emptyEdgeDelta,
  emptyNodeDelta,
  findSorted,
  GraphStore,
  type NodeData,
  type NodeDelta,
} from "./graph.ts";
import { extendKeyIndex } from "./keys.ts";
import { sharedInt32 } from "./shared.ts";
import { STATIC_TIME, toTick } from "./ticks.ts";

/** Rows to append to one table, column by column. */
export interface AppendInput {
  /** Primary-key values (required when the table has a primary key). */
  keys?: ArrayLike<number | string> | null;
  /** Times in epoch seconds (required when the table has a time column; NaN = null). */
  times?: ArrayLike<number> | null;
  /** Per foreign-key column, the parent key values (null = no parent). Every FK column is required. */
  fks?: Record<string, ArrayLike<number | string | null>>;
}

/** What `appendRows` added. */
export interface AppendResult {
  /** Dense ids of the new rows, in input order. */
  ids: Int32Array;
  /** Edges added, over all edge types (both directions). */
  edges: number;
}

interface NewEdges {
  src: number[];
  nbr: number[];
  time: number[];
}

/**
 * Appends rows to `table` of `graph` (in place; `graph.version` goes up).
 * Everything is checked before anything changes: a duplicate or missing key,
 * a foreign key that matches no row, a time outside the graph's range, or a
 * missing column throws and leaves the graph as it was.
 */
export function appendRows(graph: GraphStore, table: string, rows: AppendInput): AppendResult {
  const node = graph.node(table);
  const forward = graph.data.edges.filter((e) => e.direction === "forward" && e.src === table);
  const lengths: [string, number][] = [];
  if (rows.keys) lengths.push(["keys", rows.keys.length]);
  if (rows.times) lengths.push(["times", rows.times.length]);
  for (const [c, v] of Object.entries(rows.fks ?? {})) lengths.push([`fks.${c}`, v.length]);
  if (!lengths.length) throw new Error(`appendRows(${table}): no columns given`);
  const n = lengths[0][1];
  for (const [what, len] of lengths) {
    if (len !== n) {
      throw new Error(`appendRows(${table}): ${what} has ${len} values, expected ${n}`);
    }
  }
  const first = node.count + node.delta.count;
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = first + i;
  // Times.
  const ticks = new Int32Array(n);
  if (node.isStatic) {
    if (rows.times) throw new Error(`appendRows(${table}): a static table takes no times`);
    ticks.fill(STATIC_TIME);
  } else {
    if (!rows.times) throw new Error(`appendRows(${table}): times are required`);
    for (let i = 0; i < n; i++) ticks[i] = toTick(graph.data, rows.times[i]);
  }
  // Keys.
  const batchKeys = new Map<number | string, number>();
  const keys: (number | string)[] = [];
  if (node.keys) {
    if (!rows.keys) throw new Error(`appendRows(${table}): keys (${node.primaryKey}) are required`);
    for (let i = 0; i < n; i++) {
      const k = normalizeKey(node, rows.keys[i], table);
      if (graph.idOf(table, k) >= 0 || batchKeys.has(k)) {
        throw new Error(`appendRows(${table}): duplicate key ${JSON.stringify(k)}`);
      }
      batchKeys.set(k, ids[i]);
      keys.push(k);
    }
  } else if (rows.keys) throw new Error(`appendRows(${table}): the table has no primary key`);
  // Foreign keys → edges per edge type.
  const added = new Map<EdgeData, NewEdges>();
  const push = (e: EdgeData, s: number, d: number, t: number) => {
    let a = added.get(e);
    if (!a) added.set(e, a = { src: [], nbr: [], time: [] });
    a.src.push(s);
    a.nbr.push(d);
    a.time.push(t);
  };
  let edges = 0;
  for (const fwd of forward) {
    const values = rows.fks?.[fwd.srcColumn];
    if (!values) {
      throw new Error(
        `appendRows(${table}): missing foreign key column ${fwd.srcColumn} (give nulls for none)`,
      );
    }
    const parent = graph.node(fwd.dst);
    const rev = graph.data.edges.find((e) =>
      e.direction === "reverse" && e.src === fwd.dst && e.dst === table &&
      e.dstColumn === fwd.srcColumn
    )!;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v === null || v === undefined || (typeof v === "number" && Number.isNaN(v))) continue;
      const k = normalizeKey(parent, v, fwd.dst);
      let p = graph.idOf(fwd.dst, k);
      if (p < 0 && fwd.dst === table) p = batchKeys.get(k) ?? -1;
      if (p < 0) {
        throw new Error(
          `appendRows(${table}): ${table}.${fwd.srcColumn} = ${
            JSON.stringify(v)
          } matches no row of ${fwd.dst}`,
        );
      }
      const inBatch = fwd.dst === table && p >= first;
      const pTick = inBatch ? ticks[p - first] : graph.nodeTime(fwd.dst, p);
      push(fwd, ids[i], p, pTick);
      push(rev, p, ids[i], ticks[i]);
      edges += 2;
    }
  }
  // Apply.
  const old = node.delta;
  const time = sharedInt32(old.count + n);
  time.set(old.time);
  time.set(ticks, old.count);
  // Keys: the map and list grow in place (a worker gets its own copy with the metadata).
  for (const [k, id] of batchKeys) old.keyIds.set(k, id);
  for (const k of keys) old.keys.push(k);
  node.delta = { count: old.count + n, time, keys: old.keys, keyIds: old.keyIds };
  for (const [e, a] of added) e.delta = mergeDelta(e.delta, a);
  graph.data.version++;
  return { ids, edges };
}

function normalizeKey(node: NodeData, k: number | string | null, table: string): number | string {
  if (k === null || k === undefined) throw new Error(`appendRows(${table}): null key`);
  if (node.keys?.kind === "string") return String(k);
  const v = Number(k);
  if (Number.isNaN(v)) {
    throw new Error(`appendRows(${table}): key ${JSON.stringify(k)} is not a number`);
  }
  return v;
}

/** Merges new edges into a delta CSR: linear in the old delta, k log k in the k new edges. */
function mergeDelta(old: EdgeDelta, a: NewEdges): EdgeDelta {
  const k = a.src.length, oldM = old.nbr.length;
  const idx = Array.from({ length: k }, (_, i) => i)
    .sort((x, y) => a.src[x] - a.src[y] || a.time[x] - a.time[y] || a.nbr[x] - a.nbr[y]);
  const m = oldM + k;
  const nbr = sharedInt32(m), time = sharedInt32(m);
  const srcBuf = new Int32Array(old.src.length + k),
    offBuf = new Int32Array(old.src.length + k + 1);
  let runs = 0;
  let j = 0; // run of the old edge r
  let r = 0, b = 0;
  for (let out = 0; out < m; out++) {
    while (r < oldM && r >= old.offsets[j + 1]) j++;
    let takeOld = r < oldM;
    if (takeOld && b < k) {
      const i = idx[b], so = old.src[j], sn = a.src[i];
      takeOld = so < sn ||
        (so === sn &&
          (old.time[r] < a.time[i] || (old.time[r] === a.time[i] && old.nbr[r] <= a.nbr[i])));
    }
    let s: number;
    if (takeOld) {
      s = old.src[j];
      nbr[out] = old.nbr[r];
      time[out] = old.time[r++];
    } else {
      const i = idx[b++];
      s = a.src[i];
      nbr[out] = a.nbr[i];
      time[out] = a.time[i];
    }
    if (runs === 0 || srcBuf[runs - 1] !== s) {
      srcBuf[runs] = s;
      offBuf[runs++] = out;
    }
  }
  offBuf[runs] = m;
  const src = sharedInt32(runs);
  src.set(srcBuf.subarray(0, runs));
  const offsets = sharedInt32(runs + 1);
  offsets.set(offBuf.subarray(0, runs + 1));
  return { src, offsets, nbr, time };
}

/** True when rows were appended to `graph` since its build, load or compaction. */
export function hasDelta(graph: GraphStore): boolean {
  return graph.data.nodes.some((n) => n.delta.count > 0) ||
    graph.data.edges.some((e) => e.delta.nbr.length > 0);
}

/**
 * A new graph store whose base arrays hold the appended rows too (deltas
 * empty); unchanged arrays are shared with `graph`, which stays valid.
 */
export function compactGraph(graph: GraphStore): GraphStore {
  const nodes = graph.data.nodes.map((n): NodeData => {
    if (n.delta.count === 0) return { ...n, delta: emptyNodeDelta() };
    const d: NodeDelta = n.delta;
    const time = sharedInt32(n.count + d.count);
    time.set(n.time);
    time.set(d.time, n.count);
    const what = `${n.name}.${n.primaryKey}`;
    return {
      ...n,
      count: n.count + d.count,
      time,
      keys: n.keys ? extendKeyIndex(n.keys, d.keys, what) : null,
      delta: emptyNodeDelta(),
    };
  });
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const edges = graph.data.edges.map((e): EdgeData => {
    const srcCount = byName.get(e.src)!.count, dst = graph.node(e.dst);
    const baseSrc = e.offsets.length - 1, d = e.delta;
    if (d.nbr.length === 0 && baseSrc === srcCount) return { ...e, delta: emptyEdgeDelta() };
    const offsets = sharedInt32(srcCount + 1);
    for (let s = 0; s < srcCount; s++) {
      offsets[s + 1] = s < baseSrc ? e.offsets[s + 1] - e.offsets[s] : 0;
    }
    for (let j = 0; j < d.src.length; j++) offsets[d.src[j] + 1] += d.offsets[j + 1] - d.offsets[j];
    for (let s = 0; s < srcCount; s++) offsets[s + 1] += offsets[s];
    if (d.nbr.length === 0) {
      return { ...e, offsets, delta: emptyEdgeDelta() };
    }
    const m = offsets[srcCount];
    const nbr = sharedInt32(m);
    const keepTime = e.direction === "reverse" && !dst.isStatic;
    const nbrTime = keepTime ? sharedInt32(m) : null;
    const baseTime = (i: number) => (e.nbrTime ? e.nbrTime[i] : dst.time[e.nbr[i]]);
    for (let s = 0; s < srcCount; s++) {
      let a = s < baseSrc ? e.offsets[s] : 0;
      const aEnd = s < baseSrc ? e.offsets[s + 1] : 0;
      const j = findSorted(d.src, s);
      let b = j < 0 ? 0 : d.offsets[j];
      const bEnd = j < 0 ? 0 : d.offsets[j + 1];
      for (let o = offsets[s]; o < offsets[s + 1]; o++) {
        const takeA = b >= bEnd ||
          (a < aEnd &&
            (baseTime(a) < d.time[b] || (baseTime(a) === d.time[b] && e.nbr[a] <= d.nbr[b])));
        const t = takeA ? baseTime(a) : d.time[b];
        nbr[o] = takeA ? e.nbr[a++] : d.nbr[b++];
        if (nbrTime) nbrTime[o] = t;
      }
    }
    return { ...e, offsets, nbr, nbrTime, delta: emptyEdgeDelta() };
  });
  return new GraphStore({ ...graph.data, version: 0, nodes, edges });
}
