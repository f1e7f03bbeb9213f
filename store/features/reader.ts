/**
 * `FeatureReader`: reads rows of a feature store (format.ts) by id, in the
 * order asked, with synchronous positioned reads (FFI `pread`, pread.ts) and
 * a page cache bounded by a byte budget (cache.ts).
 *
 * ```ts
 * const reader = await FeatureReader.open("out/store/features", { cacheBytes: 256 << 20 });
 * const rows = reader.gather("users", Int32Array.of(7, 3, 7)); // 3 × rowBytes bytes
 * reader.close();
 * ```
 *
 * How a gather reads: the ids are checked against the table's row count and
 * cut into pieces (maximal runs of consecutive ids asked at consecutive
 * positions: a run of 64 rows is one piece); the pieces are sorted by first
 * id and coalesced into groups whose bytes lie on the same or adjacent pages
 * (gaps of at most a page are read through). For each group:
 *
 * - pages in the cache are copied from it;
 * - when every page of the group was verified before and none is cached or
 *   due for admission, the group's exact bytes are read with one `pread`,
 *   straight into the output when the ids and their output positions are both
 *   consecutive (a run of rows asked in order), else into a scratch buffer and
 *   scattered;
 * - otherwise the missing pages are read whole (one `pread` per stretch of
 *   adjacent missing pages), checksummed, copied out, and admitted to the
 *   cache by its policy. Streaming groups (`BYPASS_PAGES` pages or more, or
 *   the largest group a small cache allows, at least half of their bytes
 *   asked for) never enter the cache: a scan would flush it.
 *
 * Duplicated ids are read once (overlapping pieces copy the same bytes).
 * Memory: the cache budget (`cacheBytes`, which includes the scratch buffer),
 * the output, and 12 bytes per id of the largest gather so far (its pieces);
 * nothing grows with the files. A reader belongs to one thread: in workers, each
 * worker opens its own reader with its own budget (gather_pool.ts), so a
 * process with `w` workers uses up to `w × cacheBytes`.
 *
 * @module
 */

import { PAGE_BYTES } from "./format.ts";
import type { FeatureManifest, FeatureTableManifest } from "./format.ts";
import { openRawFile, type RawFile } from "./pread.ts";
import { PageCache, type PageCacheStats } from "./cache.ts";
import { type DecodedRows, decodeRows } from "./encoded_rows.ts";
import { FeatureStoreError, openManifest, storePath } from "./manifest.ts";

/** Default cache budget: 256 MiB. */
export const DEFAULT_CACHE_BYTES = 256 << 20;
/** Groups spanning this many pages or more, mostly asked for, bypass the cache. */
export const BYPASS_PAGES = 32;
/** Largest scratch buffer (one group's pages at most). */
const MAX_SCRATCH = 1 << 20;
/** Keys of a sort pack (id, position) into one float64 when there are at most 2^22 ids. */
const POS_BITS = 2 ** 22;

/** Options of `FeatureReader.open`. */
export interface FeatureReaderOptions {
  /** RAM budget of this reader's page cache and scratch, bytes (default 256 MiB). */
  cacheBytes?: number;
  /** Use FFI `pread` when available (default true; false forces the `Deno.FsFile` fallback). */
  ffi?: boolean;
}

/**
 * Counters of a reader. `hits` and `misses` count cache lookups: groups read
 * straight from the file (verified pages not due for admission, streaming
 * groups) make no lookup.
 */
export interface ReaderStats extends PageCacheStats {
  /** Rows returned (duplicates included). */
  rows: number;
  /** `pread` calls made for data (checksum pages excluded). */
  reads: number;
  /** Bytes those calls read. */
  bytesRead: number;
}

interface Table {
  meta: FeatureTableManifest;
  file: RawFile;
  index: number;
}

/** Reads rows of a feature store by id; see the module doc. */
export class FeatureReader {
  /** The store directory. */
  readonly dir: string;
  /** The parsed and validated manifest. */
  readonly manifest: FeatureManifest;
  /** The page cache (shared by every table of this reader). */
  readonly cache: PageCache;
  /** Whether reads go through FFI `pread`. */
  readonly ffi: boolean;
  readonly #tables = new Map<string, Table>();
  readonly #files: RawFile[] = [];
  #scratch: Uint8Array;
  readonly #maxGroupPages: number;
  readonly #slots: Int32Array;
  readonly #bypassPages: number;
  #pid = new Int32Array(0); // pieces of the current gather: first id, length, position
  #plen = new Int32Array(0);
  #ppos = new Int32Array(0);
  #rows = 0;
  #reads = 0;
  #bytesRead = 0;
  #closed = false;

  private constructor(dir: string, manifest: FeatureManifest, opts: FeatureReaderOptions) {
    this.dir = dir;
    this.manifest = manifest;
    const budget = opts.cacheBytes ?? DEFAULT_CACHE_BYTES;
    const paged = [];
    try {
      for (const [name, meta] of Object.entries(manifest.tables)) {
        const file = openRawFile(storePath(dir, meta.rowsFile), { ffi: opts.ffi });
        this.#files.push(file);
        const sums = openRawFile(storePath(dir, meta.sumsFile), { ffi: opts.ffi });
        this.#files.push(sums);
        validateFileSizes(meta, file, sums);
        this.#tables.set(name, { meta, file, index: paged.length });
        paged.push({ label: file.path, data: file, sums });
      }
      this.ffi = this.#files.every((f) => f.ffi);
      const maxRow = Math.max(0, ...Object.values(manifest.tables).map((t) => t.rowBytes));
      const rowPages = Math.ceil(maxRow / PAGE_BYTES) + 1;
      const scratch = Math.max(
        rowPages * PAGE_BYTES,
        Math.min(MAX_SCRATCH, Math.floor(budget / 16 / PAGE_BYTES) * PAGE_BYTES),
      );
      if (!(budget - scratch >= PageCache.minBudget())) {
        throw new RangeError(
          `fanout: a feature cache budget of ${budget} bytes is too small; give at least ` +
            `${PageCache.minBudget() + scratch} bytes`,
        );
      }
      this.cache = new PageCache(budget - scratch, paged);
      this.#maxGroupPages = Math.min(scratch / PAGE_BYTES, Math.floor(this.cache.slots / 4));
      if (this.#maxGroupPages < rowPages) {
        throw new RangeError(
          `fanout: a feature cache budget of ${budget} bytes is too small for rows of ` +
            `${maxRow} bytes; give at least ${(rowPages * 8 + 16) * PAGE_BYTES} bytes`,
        );
      }
      this.#scratch = new Uint8Array(scratch);
      this.#slots = new Int32Array(this.#maxGroupPages + 1);
      this.#bypassPages = Math.min(BYPASS_PAGES, this.#maxGroupPages);
    } catch (e) {
      for (const f of this.#files) f.close();
      throw e;
    }
  }

  /**
   * Opens the store in `dir`: reads and validates `manifest.json` with
   * `openManifest` (format, version, layout, file lengths; errors are
   * `FeatureStoreError`s naming the file) and opens every table's files.
   */
  static async open(dir: string, opts: FeatureReaderOptions = {}): Promise<FeatureReader> {
    return new FeatureReader(dir, await openManifest(dir), opts);
  }

  /** Node types (tables) in the store. */
  tables(): string[] {
    return [...this.#tables.keys()];
  }

  /** The manifest entry of `table`; throws listing the tables when unknown. */
  table(name: string): FeatureTableManifest {
    return this.#table(name).meta;
  }

  #table(name: string): Table {
    const t = this.#tables.get(name);
    if (!t) {
      throw new Error(
        `fanout: the feature store has no table "${name}"; tables: ${this.tables().join(", ")}`,
      );
    }
    if (this.#closed) throw new Error(`fanout: the feature reader of ${this.dir} is closed`);
    return t;
  }

  /** Counters since open. */
  stats(): ReaderStats {
    return {
      ...this.cache.stats,
      rows: this.#rows,
      reads: this.#reads,
      bytesRead: this.#bytesRead,
    };
  }

  /**
   * The rows of `table` with ids `ids` (any order, duplicates allowed), as
   * `ids.length × rowBytes` bytes in the order asked, written into `out` when
   * given (it must hold exactly that many bytes; it may view a
   * SharedArrayBuffer). Throws naming the table and the valid range for an id
   * out of range, and naming the file and page for a checksum mismatch.
   */
  gather(table: string, ids: Int32Array, out?: Uint8Array): Uint8Array {
    const t = this.#table(table);
    const { rows, rowBytes: rb } = t.meta;
    const n = ids.length;
    if (out && out.length !== n * rb) {
      throw new RangeError(
        `fanout: gather from "${table}": the output holds ${out.length} bytes, ` +
          `${n} rows of ${rb} bytes need ${n * rb}`,
      );
    }
    out ??= new Uint8Array(n * rb);
    // Pieces: maximal runs of consecutive ids asked at consecutive positions.
    if (this.#pid.length < n) {
      this.#pid = new Int32Array(n);
      this.#plen = new Int32Array(n);
      this.#ppos = new Int32Array(n);
    }
    const pid = this.#pid, plen = this.#plen, ppos = this.#ppos;
    const maxLen = Math.max(1, Math.floor((this.#maxGroupPages - 1) * PAGE_BYTES / rb));
    let np = 0, sorted = true;
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      if (!(id >= 0 && id < rows)) {
        throw new RangeError(
          `fanout: gather from "${table}": id ${id} at position ${i} is outside the table's ` +
            `rows [0, ${rows})`,
        );
      }
      if (np > 0 && id === pid[np - 1] + plen[np - 1] && plen[np - 1] < maxLen) {
        plen[np - 1]++;
        continue;
      }
      if (np > 0 && id < pid[np - 1]) sorted = false;
      pid[np] = id;
      plen[np] = 1;
      ppos[np++] = i;
    }
    const order = sorted ? null : sortPieces(pid, np);
    let g = 0;
    while (g < np) {
      // A group: pieces whose bytes lie on the same or adjacent pages.
      const first = g, k = order ? order[g] : g;
      const start = pid[k] * rb;
      const p0 = Math.floor(start / PAGE_BYTES);
      let end = start + plen[k] * rb, covered = end - start;
      for (g++; g < np; g++) {
        const q = order ? order[g] : g;
        const s = pid[q] * rb, e = s + plen[q] * rb;
        if (s - end > PAGE_BYTES) break;
        const newEnd = Math.max(end, e);
        if (Math.floor((newEnd - 1) / PAGE_BYTES) - p0 + 1 > this.#maxGroupPages) break;
        covered += newEnd - Math.max(end, s);
        end = newEnd;
      }
      const pages = Math.floor((end - 1) / PAGE_BYTES) - p0 + 1;
      const streaming = pages >= this.#bypassPages && 2 * covered >= end - start;
      this.#readGroup(t, order, first, g, start, end, !streaming, out);
    }
    this.#rows += n;
    return out;
  }

  /** Reads group [first, last) of the sorted pieces, bytes [start, end) of the file. */
  #readGroup(
    t: Table,
    order: Int32Array | null,
    first: number,
    last: number,
    start: number,
    end: number,
    useCache: boolean,
    out: Uint8Array,
  ): void {
    const cache = this.cache, f = t.index, rb = t.meta.rowBytes;
    const pid = this.#pid, plen = this.#plen, ppos = this.#ppos;
    const p0 = Math.floor(start / PAGE_BYTES);
    const p1 = Math.floor((end - 1) / PAGE_BYTES);
    let direct = true;
    for (let p = p0; p <= p1 && direct; p++) {
      if (!cache.isVerified(f, p) || (useCache && cache.has(f, p))) direct = false;
    }
    if (direct && useCache) {
      for (let p = p0; p <= p1 && direct; p++) if (cache.wantsAdmission(f, p)) direct = false;
    }
    if (direct) {
      if (last - first === 1) {
        const o = ppos[order ? order[first] : first] * rb;
        this.#read(t.file, out.subarray(o, o + end - start), start);
        return;
      }
      const scratch = this.#scratch;
      this.#read(t.file, scratch.subarray(0, end - start), start);
      for (let g = first; g < last; g++) {
        const k = order ? order[g] : g, o = pid[k] * rb - start;
        out.set(scratch.subarray(o, o + plen[k] * rb), ppos[k] * rb);
      }
      return;
    }
    // Page path: cached pages from the pool, missing stretches read whole and verified.
    const np = p1 - p0 + 1, slot = this.#slots;
    for (let k = 0; k < np; k++) {
      slot[k] = useCache ? cache.lookup(f, p0 + k) : -1;
      if (slot[k] >= 0) cache.pin(slot[k]);
    }
    try {
      for (let k = 0; k < np;) {
        if (slot[k] >= 0) {
          k++;
          continue;
        }
        let k1 = k + 1;
        while (k1 < np && slot[k1] < 0) k1++;
        const from = (p0 + k) * PAGE_BYTES;
        const to = Math.min((p0 + k1) * PAGE_BYTES, t.file.size);
        this.#read(
          t.file,
          this.#scratch.subarray(k * PAGE_BYTES, k * PAGE_BYTES + to - from),
          from,
        );
        for (let q = k; q < k1; q++) {
          const len = cache.pageLength(f, p0 + q);
          cache.verify(f, p0 + q, this.#scratch.subarray(q * PAGE_BYTES, q * PAGE_BYTES + len));
        }
        k = k1;
      }
      const pool = cache.pool, scratch = this.#scratch;
      for (let g = first; g < last; g++) {
        const q = order ? order[g] : g;
        let at = pid[q] * rb, count = plen[q] * rb, dst = ppos[q] * rb;
        while (count > 0) {
          // Piecewise over the pages the bytes span.
          const k = Math.floor(at / PAGE_BYTES) - p0, inPage = at % PAGE_BYTES;
          const c = Math.min(count, PAGE_BYTES - inPage);
          const o = (slot[k] >= 0 ? slot[k] : k) * PAGE_BYTES + inPage;
          out.set((slot[k] >= 0 ? pool : scratch).subarray(o, o + c), dst);
          at += c;
          dst += c;
          count -= c;
        }
      }
    } finally {
      for (let k = 0; k < np; k++) if (slot[k] >= 0) cache.unpin(slot[k]);
    }
    if (!useCache) return;
    let admit = false;
    for (let k = 0; k < np; k++) {
      if (slot[k] < 0 && cache.wantsAdmission(f, p0 + k)) admit = true;
    }
    if (!admit) return;
    for (let k = 0; k < np; k++) {
      if (slot[k] >= 0) continue;
      const len = cache.pageLength(f, p0 + k);
      cache.insert(f, p0 + k, this.#scratch.subarray(k * PAGE_BYTES, k * PAGE_BYTES + len));
    }
  }

  #read(file: RawFile, buf: Uint8Array, offset: number): void {
    file.readExact(buf, offset);
    this.#reads++;
    this.#bytesRead += buf.length;
  }

  /**
   * `gather`, decoded: the numerical block as float32 (f16 storage widened)
   * and the categorical codes, each row-major `ids.length × width`.
   */
  gatherDecoded(table: string, ids: Int32Array): DecodedRows {
    const meta = this.table(table);
    return decodeRows(meta, this.gather(table, ids), ids.length);
  }

  /** Empties the page cache and asks the OS to drop the files' cached pages (cold reads). Returns whether the OS agreed for every file. */
  dropCaches(): boolean {
    this.cache.clear();
    let ok = true;
    for (const f of this.#files) ok = f.dropCache() && ok;
    return ok;
  }

  /** Closes the files. Further gathers throw. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const f of this.#files) f.close();
  }
}

/** Re-checks lengths on the opened files (the manifest check ran on paths, before opening). */
function validateFileSizes(meta: FeatureTableManifest, file: RawFile, sums: RawFile): void {
  const want = meta.rows * meta.rowBytes;
  if (file.size !== want) {
    throw new FeatureStoreError(
      file.path,
      `${file.size} bytes, expected ${want} (table "${meta.table}"): the file is ${
        file.size < want ? "truncated" : "too long"
      }`,
    );
  }
  const wantSums = Math.ceil(want / PAGE_BYTES) * 4;
  if (sums.size !== wantSums) {
    throw new FeatureStoreError(sums.path, `${sums.size} bytes, expected ${wantSums}`);
  }
}

/** The order of pieces `[0, np)` by first id (stable). */
function sortPieces(pid: Int32Array, np: number): Int32Array {
  const order = new Int32Array(np);
  if (np <= POS_BITS) {
    const keys = new Float64Array(np);
    for (let i = 0; i < np; i++) keys[i] = pid[i] * POS_BITS + i;
    keys.sort();
    for (let i = 0; i < np; i++) order[i] = keys[i] % POS_BITS;
  } else {
    for (let i = 0; i < np; i++) order[i] = i;
    order.sort((a, b) => pid[a] - pid[b] || a - b);
  }
  return order;
}
