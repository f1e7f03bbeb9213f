/**
 * Building the graph store: `buildGraph` from typed arrays (node counts,
 * times and keys; foreign keys as (child row, parent row) pairs), and
 * `graphFromDatabase`, which pulls those arrays out of a loaded `Database`
 * with SQL joins on the key columns.
 *
 * Each CSR is built in linear time without an object per edge: the
 * destination nodes are ranked by (time, id) once per node type (LSD radix
 * sort), the edges are bucketed by destination in that rank order (a
 * counting sort, skipped when the input already follows it or when no
 * source has two edges), then scattered stably by source.
 *
 * @module
 */

import {
  type EdgeData,
  emptyEdgeDelta,
  emptyNodeDelta,
  GraphStore,
  type NodeData,
} from "./graph.ts";
import { buildKeyIndex, type KeyColumn } from "./keys.ts";
import { sortPermutation } from "./radix.ts";
import { sharedInt32 } from "./shared.ts";
import { chooseTimeScale, STATIC_TIME, ticksOf, type TimeScale } from "./ticks.ts";
import { edgeTypeName, ROW_COLUMN, type Schema } from "./types.ts";

/** A node type to build. */
export interface NodeInput {
  /** Table name. */
  name: string;
  /** Number of rows (ids 0..count-1). */
  count: number;
  /** Time of each row in epoch seconds (NaN = null); absent or null for a static table. */
  times?: Float64Array | null;
  /** Time column name (metadata). */
  timeColumn?: string | null;
  /** Primary key column name; required for a table that foreign keys reference. */
  primaryKey?: string | null;
  /** Primary key values in id order (integer typed array or strings); null without a key. */
  keys?: KeyColumn | null;
}

/** A foreign key with its resolved edges. */
export interface ForeignKeyInput {
  /** Child table. */
  table: string;
  /** Foreign-key column of the child table. */
  column: string;
  /** Parent table. */
  parent: string;
  /** Parent column (default: the parent's primary key). */
  parentColumn?: string;
  /** Child row of each edge (a negative value means no edge, e.g. a null key). */
  childRow: Int32Array;
  /** Parent row of each edge. */
  parentRow: Int32Array;
}

/** Everything `buildGraph` needs. */
export interface BuildInput {
  /** Node types, in schema order. */
  nodes: NodeInput[];
  /** Foreign keys, in schema order. */
  foreignKeys: ForeignKeyInput[];
  /** Tick mapping; chosen from the times when absent. */
  timeScale?: TimeScale;
}

/** CSR arrays of one edge type. */
export interface CsrArrays {
  /** numSrc+1 row offsets. */
  offsets: Int32Array;
  /** Neighbour ids, by (time, id) within each row. */
  nbr: Int32Array;
  /** Neighbour ticks, or null when not asked for. */
  nbrTime: Int32Array | null;
}

/** A node type's ids ordered by (tick, id), or null when that is 0..n-1. */
export function timeOrder(time: Int32Array): Int32Array | null {
  return sortPermutation(time);
}

/**
 * CSR of edges `src[i] → dst[i]` (negative entries skipped), rows sorted by
 * (destination tick, destination id). `dstOrder` is `timeOrder(dstTime)`.
 * With `withTime`, also the neighbour ticks. Throws on an id out of range.
 */
export function buildCsr(
  numSrc: number,
  src: Int32Array,
  dst: Int32Array,
  dstTime: Int32Array,
  dstOrder: Int32Array | null,
  withTime: boolean,
): CsrArrays {
  const m = src.length, numDst = dstTime.length;
  if (dst.length !== m) throw new Error("buildCsr: src and dst lengths differ");
  const offsets = sharedInt32(numSrc + 1);
  let edges = 0, maxDeg = 0;
  for (let i = 0; i < m; i++) {
    const s = src[i], d = dst[i];
    if (s < 0 || d < 0) continue;
    if (s >= numSrc) throw new RangeError(`buildCsr: source ${s} out of range (${numSrc} nodes)`);
    if (d >= numDst) throw new RangeError(`buildCsr: target ${d} out of range (${numDst} nodes)`);
    const c = ++offsets[s + 1];
    if (c > maxDeg) maxDeg = c;
    edges++;
  }
  for (let s = 0; s < numSrc; s++) offsets[s + 1] += offsets[s];
  // Edge visiting order: by destination (tick, id) unless already so or pointless.
  let perm: Int32Array | null = null;
  if (maxDeg > 1) {
    let rank: Int32Array | null = null;
    if (dstOrder) {
      rank = new Int32Array(numDst);
      for (let k = 0; k < numDst; k++) rank[dstOrder[k]] = k;
    }
    let prev = -1, inOrder = true;
    for (let i = 0; i < m && inOrder; i++) {
      if (src[i] < 0 || dst[i] < 0) continue;
      const r = rank ? rank[dst[i]] : dst[i];
      if (r < prev) inOrder = false;
      prev = r;
    }
    if (!inOrder) {
      const start = new Int32Array(numDst);
      for (let i = 0; i < m; i++) if (src[i] >= 0 && dst[i] >= 0) start[dst[i]]++;
      let acc = 0;
      for (let k = 0; k < numDst; k++) {
        const d = dstOrder ? dstOrder[k] : k;
        const c = start[d];
        start[d] = acc;
        acc += c;
      }
      perm = new Int32Array(edges);
      for (let i = 0; i < m; i++) if (src[i] >= 0 && dst[i] >= 0) perm[start[dst[i]]++] = i;
    }
  }
  const nbr = sharedInt32(edges);
  const nbrTime = withTime ? sharedInt32(edges) : null;
  // Scatter with offsets[s] as the cursor of row s (it ends at the start of
  // row s+1), then shift back: no cursor array to allocate.
  const n = perm ? perm.length : m;
  for (let k = 0; k < n; k++) {
    const i = perm ? perm[k] : k;
    const s = src[i], d = dst[i];
    if (s < 0 || d < 0) continue;
    const p = offsets[s]++;
    nbr[p] = d;
    if (nbrTime) nbrTime[p] = dstTime[d];
  }
  offsets.copyWithin(1, 0, numSrc);
  offsets[0] = 0;
  return { offsets, nbr, nbrTime };
}

/** Smallest and largest finite value among all node times (NaN when none). */
function timeRange(nodes: NodeInput[]): [number, number] {
  let min = Infinity, max = -Infinity;
  for (const n of nodes) {
    const t = n.times;
    if (!t) continue;
    for (let i = 0; i < t.length; i++) {
      const v = t[i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  return min <= max ? [min, max] : [NaN, NaN];
}

/** Builds the graph store from typed arrays. Pure: reads the inputs, shares nothing with them. */
export function buildGraph(input: BuildInput): GraphStore {
  const ts = input.timeScale ?? chooseTimeScale(...timeRange(input.nodes));
  const nodes: NodeData[] = [];
  const byName = new Map<string, NodeData>();
  for (const n of input.nodes) {
    if (byName.has(n.name)) throw new Error(`duplicate node type "${n.name}"`);
    const time = sharedInt32(n.count);
    const isStatic = !n.times;
    if (n.times) {
      if (n.times.length !== n.count) {
        throw new Error(`${n.name}: ${n.times.length} times for ${n.count} rows`);
      }
      ticksOf(ts, n.times, time);
    } else time.fill(STATIC_TIME);
    let keys = null;
    if (n.keys) {
      if (n.keys.length !== n.count) {
        throw new Error(`${n.name}: ${n.keys.length} keys for ${n.count} rows`);
      }
      keys = buildKeyIndex(n.keys, `${n.name}.${n.primaryKey ?? "primary key"}`);
    }
    const node: NodeData = {
      name: n.name,
      count: n.count,
      time,
      isStatic,
      timeColumn: n.timeColumn ?? null,
      primaryKey: n.primaryKey ?? null,
      keys,
      delta: emptyNodeDelta(),
    };
    nodes.push(node);
    byName.set(n.name, node);
  }
  const orders = new Map<string, Int32Array | null>();
  const orderOf = (n: NodeData) => {
    if (!orders.has(n.name)) orders.set(n.name, n.isStatic ? null : timeOrder(n.time));
    return orders.get(n.name)!;
  };
  const edges: EdgeData[] = [];
  for (const fk of input.foreignKeys) {
    const child = byName.get(fk.table), parent = byName.get(fk.parent);
    if (!child || !parent) {
      throw new Error(
        `foreign key ${fk.table}.${fk.column}: unknown table "${!child ? fk.table : fk.parent}"`,
      );
    }
    const pk = fk.parentColumn ?? parent.primaryKey;
    if (!pk) {
      throw new Error(`foreign key ${fk.table}.${fk.column}: ${fk.parent} has no primary key`);
    }
    const fwd = buildCsr(child.count, fk.childRow, fk.parentRow, parent.time, null, false);
    const rev = buildCsr(
      parent.count,
      fk.parentRow,
      fk.childRow,
      child.time,
      orderOf(child),
      !child.isStatic,
    );
    edges.push({
      name: edgeTypeName(child.name, fk.column, parent.name, pk),
      src: child.name,
      srcColumn: fk.column,
      dst: parent.name,
      dstColumn: pk,
      direction: "forward",
      ...fwd,
      delta: emptyEdgeDelta(),
    });
    edges.push({
      name: edgeTypeName(parent.name, pk, child.name, fk.column),
      src: parent.name,
      srcColumn: pk,
      dst: child.name,
      dstColumn: fk.column,
      direction: "reverse",
      ...rev,
      delta: emptyEdgeDelta(),
    });
  }
  const names = new Set<string>();
  for (const e of edges) {
    if (names.has(e.name)) throw new Error(`duplicate edge type "${e.name}"`);
    names.add(e.name);
  }
  return new GraphStore({
    format: "fanout-graph",
    version: 0,
    timeBase: ts.timeBase,
    timeScale: ts.timeScale,
    nodes,
    edges,
  });
}

/** Column arrays as `Database.columns` returns them. */
export type ColumnArrays = Record<string, Float64Array | Int32Array | (string | null)[]>;

/** What `graphFromDatabase` needs of a `Database` (store/database.ts). */
export interface GraphDatabase {
  /** The schema the database was opened with. */
  readonly schema: Schema;
  /** Rows of a table. */
  rowCount(table: string): number | Promise<number>;
  /** Runs SQL and returns its columns as arrays (TIMESTAMP → epoch seconds). */
  columns(sql: string): ColumnArrays | Promise<ColumnArrays>;
}

/** A quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function asInt32(a: Float64Array | Int32Array | (string | null)[], what: string): Int32Array {
  if (a instanceof Int32Array) return a;
  const out = new Int32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = Number(a[i]);
    if (!Number.isInteger(v)) throw new Error(`${what}: non-integer row id ${a[i]}`);
    out[i] = v;
  }
  return out;
}

function asTimes(a: Float64Array | Int32Array | (string | null)[], what: string): Float64Array {
  if (a instanceof Float64Array) return a;
  if (a instanceof Int32Array) return Float64Array.from(a);
  throw new Error(`${what}: the time column did not come back as a TIMESTAMP (epoch seconds)`);
}

/**
 * Builds the graph store of a loaded database: node counts, times and keys
 * per table; per foreign key, the join of the child's key column with the
 * parent's primary key (child `__row`, parent `__row`); null or unmatched
 * foreign keys give no edge. The time scale is chosen from the data unless
 * given.
 */
export async function graphFromDatabase(
  db: GraphDatabase,
  opts: { timeScale?: TimeScale } = {},
): Promise<GraphStore> {
  return buildGraph({ ...await graphInputFromDatabase(db), timeScale: opts.timeScale });
}

/** The `buildGraph` input of a loaded database (the SQL half of `graphFromDatabase`). */
export async function graphInputFromDatabase(db: GraphDatabase): Promise<BuildInput> {
  const nodes: NodeInput[] = [];
  const foreignKeys: ForeignKeyInput[] = [];
  const tables = new Map(db.schema.tables.map((t) => [t.name, t]));
  for (const t of db.schema.tables) {
    const T = quoteIdent(t.name), R = quoteIdent(ROW_COLUMN);
    const count = await db.rowCount(t.name);
    const node: NodeInput = {
      name: t.name,
      count,
      timeColumn: t.timeColumn ?? null,
      primaryKey: t.primaryKey ?? null,
    };
    if (t.timeColumn) {
      const c = await db.columns(`SELECT ${quoteIdent(t.timeColumn)} AS t FROM ${T} ORDER BY ${R}`);
      node.times = asTimes(c.t, `${t.name}.${t.timeColumn}`);
    }
    if (t.primaryKey) {
      const c = await db.columns(`SELECT ${quoteIdent(t.primaryKey)} AS k FROM ${T} ORDER BY ${R}`);
      node.keys = c.k as KeyColumn;
    }
    nodes.push(node);
  }
  for (const t of db.schema.tables) {
    for (const fk of t.foreignKeys) {
      const parent = tables.get(fk.table);
      if (!parent?.primaryKey) {
        throw new Error(`foreign key ${t.name}.${fk.column}: ${fk.table} has no primary key`);
      }
      const R = quoteIdent(ROW_COLUMN);
      const c = await db.columns(
        `SELECT CAST(c.${R} AS INTEGER) AS s, CAST(p.${R} AS INTEGER) AS d ` +
          `FROM ${quoteIdent(t.name)} c JOIN ${quoteIdent(parent.name)} p ` +
          `ON c.${quoteIdent(fk.column)} = p.${quoteIdent(parent.primaryKey)}`,
      );
      foreignKeys.push({
        table: t.name,
        column: fk.column,
        parent: parent.name,
        parentColumn: parent.primaryKey,
        childRow: asInt32(c.s, `${t.name}.${fk.column}`),
        parentRow: asInt32(c.d, `${t.name}.${fk.column}`),
      });
    }
  }
  return { nodes, foreignKeys };
}
