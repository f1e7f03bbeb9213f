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
 *   asked for) never enter the cache and make no lookup: a scan would flush
 *   it, and a group of several pages gains little from it anyway. Once its
 *   pages are verified, such a group costs one `pread` whose time is mostly
 *   the copy out of the OS page cache, which a hit in this cache would make
 *   too; admitting it costs two more copies of its whole pages (into the
 *   scratch, then into the pool). The cache pays where a `pread` costs more
 *   than the bytes it moves: single rows and short runs.
 *
 * Pieces are sorted by a stable LSD radix sort on their first ids (8-bit
 * digits, skipping digits that all pieces share; insertion sort below
 * `RADIX_MIN` pieces): a few passes over the pieces, no comparison sort.
 *
 * Duplicated ids are read once (overlapping pieces copy the same bytes).
 * Memory: the cache budget (`cacheBytes`, which includes the scratch buffer),
 * the output, and 20 bytes per id of the largest gather so far (its pieces
 * and their sort); nothing grows with the files. A reader belongs to one
 * thread: in workers, each worker opens its own reader with its own budget
 * (gather_pool.ts), so a process with `w` workers uses up to
 * `w × cacheBytes`.
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
/** Groups spanning this many pages or more, mostly asked for, bypass the cache (module doc). */
export const BYPASS_PAGES = 4;
/** Largest scratch buffer (one group's pages at most). */
const MAX_SCRATCH = 1 << 20;
/** Fewer pieces than this are sorted by insertion (a radix sort's passes cost more). */
const RADIX_MIN = 128;
/** The radix sort's digit counts (a thread runs one sort at a time). */
const RADIX_COUNT = new Int32Array(256);

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
  #order = new Int32Array(0); // pieces in file order (a sort's output and its buffer)
  #orderTmp = new Int32Array(0);
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
    const fresh = !out;
    out ??= new Uint8Array(n * rb);
    // Pieces: maximal runs of consecutive ids asked at consecutive positions.
    if (this.#pid.length < n) {
      this.#pid = new Int32Array(n);
      this.#plen = new Int32Array(n);
      this.#ppos = new Int32Array(n);
      this.#order = new Int32Array(n);
      this.#orderTmp = new Int32Array(n);
    }
    const pid = this.#pid, plen = this.#plen, ppos = this.#ppos;
    const maxLen = Math.max(1, Math.floor((this.#maxGroupPages - 1) * PAGE_BYTES / rb));
    // The current piece lives in locals: its first id, the id that would extend it, and the
    // first id that may not (it would pass the table's end or `maxLen`). Its length is stored
    // when it ends. An id that extends a piece is in range: only a piece's first is checked.
    let np = 0, sorted = true, cur = -2, next = -1, limit = -1;
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      if (id === next && id < limit) {
        next++;
        // Inside a run: four ids a step while they continue it.
        while (
          i + 4 < n && next + 3 < limit && ids[i + 1] === next && ids[i + 2] === next + 1 &&
          ids[i + 3] === next + 2 && ids[i + 4] === next + 3
        ) {
          next += 4;
          i += 4;
        }
        continue;
      }
      if (!(id >= 0 && id < rows)) {
        throw new RangeError(
          `fanout: gather from "${table}": id ${id} at position ${i} is outside the table's ` +
            `rows [0, ${rows})`,
        );
      }
      if (np > 0) plen[np - 1] = next - cur;
      if (id < cur) sorted = false;
      pid[np] = cur = id;
      ppos[np++] = i;
      next = id + 1;
      limit = Math.min(rows, id + maxLen);
    }
    if (np > 0) plen[np - 1] = next - cur;
    const order = sorted ? null : sortPieces(pid, np, this.#order, this.#orderTmp);
    if (order && fresh) touchPages(out);
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
    const np = Math.floor((end - 1) / PAGE_BYTES) - p0 + 1, slot = this.#slots;
    // One pass over the pages: which are in the pool, and whether all are verified.
    let direct = true;
    for (let k = 0; k < np; k++) {
      const s = useCache ? cache.find(f, p0 + k) : -1;
      slot[k] = s;
      if (s >= 0 || !cache.isVerified(f, p0 + k)) direct = false;
    }
    // Each missed page's access is recorded once, and says whether to admit it.
    let admit = false;
    if (useCache) {
      for (let k = 0; k < np; k++) {
        if (slot[k] < 0 && cache.wantsAdmission(f, p0 + k)) admit = true;
      }
    }
    if (direct && !admit) {
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
    for (let k = 0; k < np; k++) {
      if (slot[k] >= 0) {
        cache.hit(slot[k]);
        cache.pin(slot[k]);
      } else if (useCache) cache.stats.misses++;
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

/**
 * Writes a zero into each page of `bytes`, in address order. `gather` writes
 * rows in file order, that is all over its output: on fresh memory (never
 * written since it was allocated) the kernel then maps its pages in random
 * order, which costs markedly more per page than in order (on warm gathers
 * of 64-row runs into a new SharedArrayBuffer, a large share of the time).
 * `gather` calls this on the output it allocates; a caller passing fresh
 * memory as `out` (a gather worker's slice of a new SharedArrayBuffer)
 * should call it first. On memory already mapped it costs one store per
 * page.
 */
export function touchPages(bytes: Uint8Array): void {
  for (let o = 0; o < bytes.length; o += PAGE_BYTES) bytes[o] = 0;
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

/**
 * The order of pieces `[0, np)` by first id (stable), in `a` or `b` (two
 * buffers of at least `np` entries): an LSD radix sort on 8-bit digits of the
 * (non-negative) ids, skipping the digits that every piece shares.
 */
function sortPieces(pid: Int32Array, np: number, a: Int32Array, b: Int32Array): Int32Array {
  let max = 0;
  for (let i = 0; i < np; i++) {
    a[i] = i;
    if (pid[i] > max) max = pid[i];
  }
  if (np < RADIX_MIN) {
    // Few pieces: insertion sort (stable).
    for (let i = 1; i < np; i++) {
      const k = a[i], id = pid[k];
      let j = i - 1;
      while (j >= 0 && pid[a[j]] > id) {
        a[j + 1] = a[j];
        j--;
      }
      a[j + 1] = k;
    }
    return a;
  }
  const count = RADIX_COUNT;
  let src = a, dst = b;
  for (let shift = 0; shift < 32 && max >>> shift !== 0; shift += 8) {
    count.fill(0);
    for (let i = 0; i < np; i++) count[(pid[i] >>> shift) & 255]++;
    if (count[(pid[0] >>> shift) & 255] === np) continue; // one digit for all: order unchanged
    for (let d = 0, at = 0; d < 256; d++) {
      const c = count[d];
      count[d] = at;
      at += c;
    }
    for (let i = 0; i < np; i++) {
      const k = src[i];
      dst[count[(pid[k] >>> shift) & 255]++] = k;
    }
    const t = src;
    src = dst;
    dst = t;
  }
  return src;
}
