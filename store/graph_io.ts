/**
 * Saving and loading the graph store: a directory holding `manifest.json`
 * (format version, node and edge metadata, and per array file its type,
 * byte length and XXH32 checksum) and one little-endian binary file per
 * typed array. Saving writes everything into `<dir>.tmp-<random>` and then
 * renames it into place, so a reader never sees half a graph. Loading reads
 * each file straight into a SharedArrayBuffer and verifies its length and
 * checksum (an error names the file); it never touches the tables.
 *
 * Rows appended since the build are compacted into the base arrays first.
 *
 * @module
 */

import { xxh32 } from "./checksum.ts";
import {
  type EdgeData,
  emptyEdgeDelta,
  emptyNodeDelta,
  GraphStore,
  type NodeData,
} from "./graph.ts";
import { compactGraph, hasDelta } from "./graph_append.ts";
import { type KeyIndex, keyIndexArrays } from "./keys.ts";

/** Format tag in the manifest. */
export const GRAPH_FORMAT = "fanout-graph";
/** Version of the on-disk layout; loading refuses any other. */
export const GRAPH_FORMAT_VERSION = 1;
/** Name of the manifest file. */
export const MANIFEST = "manifest.json";

/** Element type of a saved array. */
export type ArrayDType = "int32" | "float64" | "uint8";
type Arr = Int32Array | Float64Array | Uint8Array;

/** One array file in the manifest. */
export interface FileEntry {
  /** Element type. */
  dtype: ArrayDType;
  /** Byte length. */
  bytes: number;
  /** XXH32 (seed 0) of the bytes, 8 hex digits. */
  xxh32: string;
}

/** A node type in the manifest. */
export interface NodeEntry {
  /** Table name. */
  name: string;
  /** Rows. */
  count: number;
  /** Static table. */
  isStatic: boolean;
  /** Time column. */
  timeColumn: string | null;
  /** Primary key column. */
  primaryKey: string | null;
  /** Key index kind, or null. */
  keyKind: KeyIndex["kind"] | null;
  /** Role → file name (time, keys, keyOrder, keyBytes, keyOffsets). */
  arrays: Record<string, string>;
}

/** An edge type in the manifest. */
export interface EdgeEntry {
  /** Edge type name. */
  name: string;
  /** Source table. */
  src: string;
  /** Source column. */
  srcColumn: string;
  /** Destination table. */
  dst: string;
  /** Destination column. */
  dstColumn: string;
  /** Direction. */
  direction: "forward" | "reverse";
  /** Role → file name (offsets, nbr, nbrTime). */
  arrays: Record<string, string>;
}

/** The manifest of a saved graph. */
export interface GraphManifest {
  /** Always "fanout-graph". */
  format: string;
  /** Layout version. */
  formatVersion: number;
  /** Byte order of the array files. */
  endianness: "little";
  /** Epoch seconds of tick 0. */
  timeBase: number;
  /** Seconds per tick. */
  timeScale: number;
  /** Node types. */
  nodes: NodeEntry[];
  /** Edge types. */
  edges: EdgeEntry[];
  /** File name → entry. */
  files: Record<string, FileEntry>;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const CHUNK = 64 << 20;

function dtypeOf(a: Arr): ArrayDType {
  return a instanceof Int32Array ? "int32" : a instanceof Float64Array ? "float64" : "uint8";
}

function bytesOf(a: Arr): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function hex(h: number): string {
  return h.toString(16).padStart(8, "0");
}

function randomSuffix(): string {
  return hex(crypto.getRandomValues(new Uint32Array(1))[0]);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Saves `graph` into directory `dir` (created or replaced atomically by a
 * rename; an existing `dir` must be a saved graph). Appended rows are
 * compacted into the saved base arrays. Returns the manifest.
 */
export async function saveGraph(graph: GraphStore, dir: string): Promise<GraphManifest> {
  if (!LITTLE_ENDIAN) throw new Error("saveGraph: big-endian hosts are not supported");
  dir = dir.replace(/\/+$/, "");
  if (await exists(dir)) {
    let ok = false;
    try {
      ok = JSON.parse(await Deno.readTextFile(`${dir}/${MANIFEST}`)).format === GRAPH_FORMAT;
    } catch { /* not a graph */ }
    if (!ok) throw new Error(`saveGraph: ${dir} exists and is not a saved graph; not replacing it`);
  }
  const g = hasDelta(graph) ? compactGraph(graph) : graph;
  const tmp = `${dir}.tmp-${randomSuffix()}`;
  await Deno.mkdir(tmp, { recursive: true });
  try {
    const files: Record<string, FileEntry> = {};
    const put = async (name: string, a: Arr) => {
      const b = bytesOf(a);
      await Deno.writeFile(`${tmp}/${name}`, b);
      files[name] = { dtype: dtypeOf(a), bytes: b.byteLength, xxh32: hex(xxh32(b)) };
      return name;
    };
    const nodes: NodeEntry[] = [];
    for (const [i, n] of g.data.nodes.entries()) {
      const arrays: Record<string, string> = { time: await put(`n${i}.time.i32`, n.time) };
      if (n.keys) {
        for (const [role, a] of Object.entries(keyIndexArrays(n.keys))) {
          arrays[role] = await put(`n${i}.${role}.${ext(a)}`, a);
        }
      }
      nodes.push({
        name: n.name,
        count: n.count,
        isStatic: n.isStatic,
        timeColumn: n.timeColumn,
        primaryKey: n.primaryKey,
        keyKind: n.keys?.kind ?? null,
        arrays,
      });
    }
    const edges: EdgeEntry[] = [];
    for (const [i, e] of g.data.edges.entries()) {
      const arrays: Record<string, string> = {
        offsets: await put(`e${i}.offsets.i32`, e.offsets),
        nbr: await put(`e${i}.nbr.i32`, e.nbr),
      };
      if (e.nbrTime) arrays.nbrTime = await put(`e${i}.nbrTime.i32`, e.nbrTime);
      const { name, src, srcColumn, dst, dstColumn, direction } = e;
      edges.push({ name, src, srcColumn, dst, dstColumn, direction, arrays });
    }
    const manifest: GraphManifest = {
      format: GRAPH_FORMAT,
      formatVersion: GRAPH_FORMAT_VERSION,
      endianness: "little",
      timeBase: g.timeBase,
      timeScale: g.timeScale,
      nodes,
      edges,
      files,
    };
    await Deno.writeTextFile(`${tmp}/${MANIFEST}`, JSON.stringify(manifest, null, 1));
    if (await exists(dir)) {
      const old = `${dir}.old-${randomSuffix()}`;
      await Deno.rename(dir, old);
      await Deno.rename(tmp, dir);
      await Deno.remove(old, { recursive: true });
    } else await Deno.rename(tmp, dir);
    return manifest;
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

function ext(a: Arr): string {
  return a instanceof Int32Array ? "i32" : a instanceof Float64Array ? "f64" : "u8";
}

/** Options of `loadGraph`. */
export interface LoadOptions {
  /** Verify the checksum of every file (default true). Lengths are always checked. */
  verify?: boolean;
}

/** Reads the whole file `path` (expected `bytes` long) into a new SharedArrayBuffer. */
export function readShared(path: string, bytes: number): SharedArrayBuffer {
  const file = Deno.openSync(path);
  try {
    const size = file.statSync().size;
    if (size !== bytes) {
      throw new Error(
        `${path}: ${
          size < bytes ? "truncated" : "too long"
        } (${size} bytes; the manifest says ${bytes})`,
      );
    }
    const sab = new SharedArrayBuffer(bytes);
    const u = new Uint8Array(sab);
    let off = 0;
    while (off < bytes) {
      const n = file.readSync(u.subarray(off, Math.min(bytes, off + CHUNK)));
      if (n === null || n === 0) throw new Error(`${path}: truncated while reading (${off} bytes)`);
      off += n;
    }
    return sab;
  } finally {
    file.close();
  }
}

/** Reads and checks `manifest.json` of a saved graph. */
export async function readManifest(dir: string): Promise<GraphManifest> {
  const path = `${dir}/${MANIFEST}`;
  let m: GraphManifest;
  try {
    m = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`${path}: cannot read the graph manifest: ${(e as Error).message}`);
  }
  if (m?.format !== GRAPH_FORMAT) throw new Error(`${path}: not a fanout graph manifest`);
  if (m.formatVersion !== GRAPH_FORMAT_VERSION) {
    throw new Error(
      `${path}: graph format version ${m.formatVersion}; this build reads version ${GRAPH_FORMAT_VERSION} (rebuild the graph)`,
    );
  }
  if (m.endianness !== "little" || !LITTLE_ENDIAN) {
    throw new Error(`${path}: byte order ${m.endianness} does not match this host`);
  }
  return m;
}

/** Loads a graph saved by `saveGraph`: reads the arrays into SharedArrayBuffers and checks them. */
export async function loadGraph(dir: string, opts: LoadOptions = {}): Promise<GraphStore> {
  dir = dir.replace(/\/+$/, "");
  const m = await readManifest(dir);
  const verify = opts.verify ?? true;
  const load = (name: string | undefined, dtype: ArrayDType): Arr => {
    const f = name === undefined ? undefined : m.files[name];
    if (!name || !f) throw new Error(`${dir}/${MANIFEST}: missing array file entry ${name}`);
    if (f.dtype !== dtype) throw new Error(`${dir}/${name}: type ${f.dtype}, expected ${dtype}`);
    const path = `${dir}/${name}`;
    const sab = readShared(path, f.bytes);
    if (verify) {
      const h = hex(xxh32(new Uint8Array(sab)));
      if (h !== f.xxh32) {
        throw new Error(
          `${path}: checksum mismatch (file xxh32 ${h}, manifest ${f.xxh32}): corrupt`,
        );
      }
    }
    return dtype === "int32"
      ? new Int32Array(sab)
      : dtype === "float64"
      ? new Float64Array(sab)
      : new Uint8Array(sab);
  };
  const i32 = (name: string | undefined) => load(name, "int32") as Int32Array;
  const nodes: NodeData[] = m.nodes.map((n) => {
    const a = n.arrays;
    let keys: KeyIndex | null = null;
    const order = a.keyOrder ? i32(a.keyOrder) : null;
    if (n.keyKind === "string") {
      const bytes = load(a.keyBytes, "uint8") as Uint8Array;
      keys = { kind: "string", bytes, offsets: i32(a.keyOffsets), order };
    } else if (n.keyKind) {
      const k = load(a.keys, n.keyKind === "int32" ? "int32" : "float64") as Int32Array;
      keys = { kind: n.keyKind, keys: k, order };
    }
    const time = i32(a.time);
    if (time.length !== n.count) throw new Error(`${dir}: ${n.name} has ${time.length} times`);
    return {
      name: n.name,
      count: n.count,
      time,
      isStatic: n.isStatic,
      timeColumn: n.timeColumn,
      primaryKey: n.primaryKey,
      keys,
      delta: emptyNodeDelta(),
    };
  });
  const edges: EdgeData[] = m.edges.map((e) => {
    const offsets = i32(e.arrays.offsets), nbr = i32(e.arrays.nbr);
    const nbrTime = e.arrays.nbrTime ? i32(e.arrays.nbrTime) : null;
    if (offsets[offsets.length - 1] !== nbr.length || (nbrTime && nbrTime.length !== nbr.length)) {
      throw new Error(`${dir}: edge type ${e.name} has inconsistent array lengths`);
    }
    const { name, src, srcColumn, dst, dstColumn, direction } = e;
    return {
      name,
      src,
      srcColumn,
      dst,
      dstColumn,
      direction,
      offsets,
      nbr,
      nbrTime,
      delta: emptyEdgeDelta(),
    };
  });
  return new GraphStore({
    format: "fanout-graph",
    version: 0,
    timeBase: m.timeBase,
    timeScale: m.timeScale,
    nodes,
    edges,
  });
}

/** The array files of a saved graph (paths), e.g. to time a plain read of the same bytes. */
export async function graphFiles(dir: string): Promise<string[]> {
  const m = await readManifest(dir);
  return Object.keys(m.files).map((f) => `${dir}/${f}`);
}
