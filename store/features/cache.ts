/**
 * The feature store's page cache: `PAGE_BYTES` pages of the rows files (and
 * of their checksum files) in one preallocated buffer, replaced by CLOCK, and
 * the checksum verification of every page read from disk.
 *
 * Layout, all fixed at construction (no object per page): page `s` of the
 * pool lives at bytes `[s * PAGE_BYTES, (s+1) * PAGE_BYTES)` of `pool`; typed
 * arrays hold each slot's (file key, page), its CLOCK reference bit and its
 * pin count; an open-addressing `Int32Array` hash table (linear probing,
 * backward-shift deletion, load at most 1/2) maps (file key, page) to a slot.
 * File key `2i` is rows file `i`, `2i + 1` its checksum file.
 *
 * Checksums (4 bytes per page, 1/1024 of the data): when all of them fit in
 * an eighth of the budget they are read once, at construction, and kept
 * (charged to the budget), so a cold random read costs one disk read, not
 * two; otherwise their pages go through this cache like data pages. Either
 * way memory is bounded by the budget alone. A data page is hashed (XXH32) when it is first
 * read from disk, before any byte of it reaches a caller or the pool; a
 * mismatch throws an error naming the file and the page. A bit and a 4-bit
 * counter per data page (when they fit in an eighth of the budget) remember
 * which pages this cache has verified and how often each page was asked for:
 *
 * - verified pages are not hashed again when re-read, so a reader can fetch
 *   just the bytes of a row of a verified page. This trusts that the file is
 *   not rewritten in place while open (stores are written once, into a fresh
 *   directory, and renamed); truncation is still caught by short reads.
 * - admission (TinyLFU): every access to a data page (a hit, or a miss
 *   reported by `wantsAdmission`) adds one to its counter (saturating at 15),
 *   and all counters are halved every `10 × slots` accesses, so they estimate
 *   recent frequency. A missed page enters the pool only from its second
 *   access on, and, once the pool is full, only when its count before this
 *   access exceeds that of the page CLOCK would evict for it (the count
 *   before, so that a halving between the two pages' accesses does not make
 *   the newcomer look more frequent). A scan of one-off rows does not flush
 *   the pages that are reused, and a loop over more pages than the pool holds
 *   keeps a stable part of them cached instead of cycling every page through
 *   it (which costs whole-page reads and copies and hits nothing).
 *
 * Without the bits (files too large for the budget) every read from disk is
 * verified and every page read whole is admitted.
 *
 * Budget: `budgetBytes` covers the pool, the slot arrays, the hash table and
 * the bits and counters; nothing else grows with the files' size.
 *
 * @module
 */

import { xxh32 } from "../checksum.ts";
import { PAGE_BYTES } from "./format.ts";
import { FeatureStoreError } from "./manifest.ts";
import type { RawFile } from "./pread.ts";

/** One rows file and its checksum file, as the cache sees them. */
export interface PagedFile {
  /** Name used in error messages (e.g. the rows file's path). */
  label: string;
  /** The rows file. */
  data: RawFile;
  /** The checksum file: one little-endian XXH32 (u32) per page of `data`. */
  sums: RawFile;
}

/** Counters of a page cache. */
export interface PageCacheStats {
  /** Lookups that found the page. */
  hits: number;
  /** Lookups that did not. */
  misses: number;
  /** Pages inserted. */
  inserts: number;
  /** Pages evicted to make room. */
  evictions: number;
  /** Data pages hashed. */
  verified: number;
}

/** Bytes of slot metadata per pool page: file key, page, ref bit, pin count, 2 hash entries. */
const SLOT_META = 4 + 4 + 1 + 1 + 8;
/** Access counters are halved every `AGE_PER_SLOT × slots` recorded accesses. */
const AGE_PER_SLOT = 10;
/** Smallest pool: runs of pinned pages need room beside them. */
export const MIN_CACHE_PAGES = 16;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** A CLOCK page cache under a byte budget, verifying checksums (see the module doc). */
export class PageCache {
  /** The budget given. */
  readonly budgetBytes: number;
  /** Number of pool pages. */
  readonly slots: number;
  /** The pool: slot `s` at `s * PAGE_BYTES`. */
  readonly pool: Uint8Array;
  /** Whether the verified bits and access counters are kept (see the module doc). */
  readonly tracking: boolean;
  /** Counters. */
  readonly stats: PageCacheStats = { hits: 0, misses: 0, inserts: 0, evictions: 0, verified: 0 };
  readonly #files: readonly PagedFile[];
  readonly #pages: Int32Array; // data pages per file
  readonly #words: Uint32Array; // the pool as u32 (checksum lookups)
  readonly #slotKey: Int32Array;
  readonly #slotPage: Int32Array;
  readonly #ref: Uint8Array;
  readonly #pin: Uint8Array;
  readonly #table: Int32Array;
  readonly #mask: number;
  #hand = 0;
  #used = 0;
  // Per data file: verified bits (one u32 per 32 pages) and 4-bit access counters (two per byte).
  readonly #verifiedBits: Uint32Array[] = [];
  readonly #counts: Uint8Array[] = [];
  #accesses = 0; // recorded since the counters were last halved
  readonly #sumsScratch = new Uint8Array(PAGE_BYTES);
  readonly #sums: Uint32Array[] | null = null; // all checksums, when they fit

  /**
   * A cache for `files` within `budgetBytes` (at least `PageCache.minBudget(files)`).
   * The pool is allocated here, once.
   */
  constructor(budgetBytes: number, files: readonly PagedFile[]) {
    if (!LITTLE_ENDIAN) throw new Error("fanout: the feature store needs a little-endian host");
    this.budgetBytes = budgetBytes;
    this.#files = files;
    this.#pages = Int32Array.from(files, (f) => Math.ceil(f.data.size / PAGE_BYTES));
    let bitBytes = 0;
    for (const p of this.#pages) bitBytes += 4 * Math.ceil(p / 32) + Math.ceil(p / 2);
    this.tracking = bitBytes <= budgetBytes / 8;
    let sumBytes = 0;
    for (const p of this.#pages) sumBytes += 4 * p;
    if (sumBytes <= budgetBytes / 8) {
      this.#sums = files.map((f, i) => {
        const bytes = new Uint8Array(4 * this.#pages[i]);
        checkSumsSize(f, this.#pages[i]);
        f.sums.readExact(bytes, 0);
        return new Uint32Array(bytes.buffer);
      });
    }
    const rest = budgetBytes - (this.tracking ? bitBytes : 0) - (this.#sums ? sumBytes : 0);
    const slots = Math.floor(rest / (PAGE_BYTES + SLOT_META));
    if (!(slots >= MIN_CACHE_PAGES)) {
      throw new RangeError(
        `fanout: a feature cache budget of ${budgetBytes} bytes is too small; ` +
          `give at least ${PageCache.minBudget(files)} bytes`,
      );
    }
    this.slots = slots;
    const tableSize = 2 ** Math.ceil(Math.log2(slots * 2));
    this.#mask = tableSize - 1;
    this.#table = new Int32Array(tableSize);
    this.pool = new Uint8Array(slots * PAGE_BYTES);
    this.#words = new Uint32Array(this.pool.buffer);
    this.#slotKey = new Int32Array(slots).fill(-1);
    this.#slotPage = new Int32Array(slots);
    this.#ref = new Uint8Array(slots);
    this.#pin = new Uint8Array(slots);
    if (this.tracking) {
      for (const p of this.#pages) {
        this.#verifiedBits.push(new Uint32Array(Math.ceil(p / 32)));
        this.#counts.push(new Uint8Array(Math.ceil(p / 2)));
      }
    }
  }

  /** The smallest budget accepted for `files` (`MIN_CACHE_PAGES` pool pages, bits not kept). */
  static minBudget(_files: readonly PagedFile[] = []): number {
    return MIN_CACHE_PAGES * (PAGE_BYTES + SLOT_META);
  }

  /** Pages of data file `f`. */
  pageCount(f: number): number {
    return this.#pages[f];
  }

  /** Bytes of data page `page` of file `f` (`PAGE_BYTES` except for the last page). */
  pageLength(f: number, page: number): number {
    return Math.min(PAGE_BYTES, this.#files[f].data.size - page * PAGE_BYTES);
  }

  // ---- lookup ------------------------------------------------------------------

  #hash(key: number, page: number): number {
    let h = Math.imul(page ^ Math.imul(key + 1, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    return Math.imul(h, 0xc2b2ae35) >>> 0;
  }

  #find(key: number, page: number): number {
    const t = this.#table, mask = this.#mask;
    for (let i = this.#hash(key, page) & mask;; i = (i + 1) & mask) {
      const e = t[i];
      if (e === 0) return -1;
      const s = e - 1;
      if (this.#slotPage[s] === page && this.#slotKey[s] === key) return s;
    }
  }

  /**
   * The pool slot holding data page `page` of file `f`, or -1. A hit is
   * counted and recorded as by `hit`; a miss is counted but not recorded as
   * an access (`wantsAdmission` does that).
   */
  lookup(f: number, page: number): number {
    const s = this.#find(2 * f, page);
    if (s >= 0) this.hit(s);
    else this.stats.misses++;
    return s;
  }

  /** The pool slot holding data page `page` of file `f`, or -1 (no side effects). */
  find(f: number, page: number): number {
    return this.#find(2 * f, page);
  }

  /** Whether data page `page` of file `f` is in the pool (no side effects). */
  has(f: number, page: number): boolean {
    return this.#find(2 * f, page) >= 0;
  }

  /** Counts a hit on slot `s` (found by `find`): marks it referenced and records the access. */
  hit(s: number): void {
    this.#ref[s] = 1;
    this.stats.hits++;
    const key = this.#slotKey[s];
    if (this.tracking && (key & 1) === 0) this.#record(key >> 1, this.#slotPage[s]);
  }

  /** Keeps slot `s` from eviction until `unpin(s)` (pins nest up to 255). */
  pin(s: number): void {
    this.#pin[s]++;
  }

  /** Undoes one `pin(s)`. */
  unpin(s: number): void {
    this.#pin[s]--;
  }

  // ---- insertion ---------------------------------------------------------------

  #remove(s: number): void {
    const t = this.#table, mask = this.#mask;
    let i = this.#hash(this.#slotKey[s], this.#slotPage[s]) & mask;
    while (t[i] !== s + 1) i = (i + 1) & mask;
    // Backward-shift deletion keeps probe chains intact without tombstones.
    for (let j = (i + 1) & mask;; j = (j + 1) & mask) {
      const e = t[j];
      if (e === 0) break;
      const home = this.#hash(this.#slotKey[e - 1], this.#slotPage[e - 1]) & mask;
      // Move e into the hole at i when its home is not cyclically within (i, j].
      if (((j - home) & mask) >= ((j - i) & mask)) {
        t[i] = e;
        i = j;
      }
    }
    t[i] = 0;
    this.#slotKey[s] = -1;
  }

  /**
   * The slot CLOCK evicts next (the pool being full): advances the hand past
   * pinned slots and past referenced ones, clearing their bit, and stops on
   * the first other slot, without evicting it. -1 when every slot is pinned.
   */
  #candidate(): number {
    for (let spins = 0; spins <= 2 * this.slots; spins++) {
      const s = this.#hand;
      if (this.#pin[s] === 0) {
        if (!this.#ref[s]) return s;
        this.#ref[s] = 0;
      }
      this.#hand = s + 1 === this.slots ? 0 : s + 1;
    }
    return -1;
  }

  /** A free slot, evicting by CLOCK when the pool is full; the slot is unmapped. */
  #victim(): number {
    if (this.#used < this.slots) return this.#used++;
    const s = this.#candidate();
    if (s < 0) throw new Error("fanout: feature cache: every page is pinned (runs too long)");
    this.#hand = s + 1 === this.slots ? 0 : s + 1;
    this.#remove(s);
    this.stats.evictions++;
    return s;
  }

  #insertKey(key: number, page: number, src: Uint8Array): number {
    const s = this.#victim();
    this.pool.set(src, s * PAGE_BYTES);
    this.#slotKey[s] = key;
    this.#slotPage[s] = page;
    this.#ref[s] = 0; // must be touched again to survive a sweep
    const t = this.#table, mask = this.#mask;
    let i = this.#hash(key, page) & mask;
    while (t[i] !== 0) i = (i + 1) & mask;
    t[i] = s + 1;
    this.stats.inserts++;
    return s;
  }

  /**
   * Copies data page `page` of file `f` (its `pageLength` bytes in `src`,
   * already verified by `verify`) into the pool, unless it is there; returns
   * its slot.
   */
  insert(f: number, page: number, src: Uint8Array): number {
    const have = this.#find(2 * f, page);
    if (have >= 0) return have;
    this.verify(f, page, src);
    return this.#insertKey(2 * f, page, src);
  }

  /**
   * Records an access to data page `page` of file `f`, missed (not in the
   * pool), and says whether the page should be admitted when read: from its
   * second recent access on, while the pool has free slots; then only when
   * its count before this access exceeds that of the page CLOCK would evict
   * for it (see the module doc). Always true without tracking.
   */
  wantsAdmission(f: number, page: number): boolean {
    if (!this.tracking) return true;
    const n = this.#record(f, page);
    if (n < 2) return false;
    if (this.#used < this.slots) return true;
    const v = this.#candidate();
    if (v < 0) return false;
    const key = this.#slotKey[v];
    // Its count before this access against the victim's: when all counters are halved
    // between the two accesses, a page asked for as often as the victim would otherwise
    // look more frequent. Checksum pages (odd keys) count as never asked for.
    return (key & 1) === 1 || n - 1 > this.#count(key >> 1, this.#slotPage[v]);
  }

  /** The access counter of data page `page` of file `f`. */
  #count(f: number, page: number): number {
    return (this.#counts[f][page >>> 1] >>> ((page & 1) << 2)) & 15;
  }

  /** Adds one access to data page `page` of file `f` (saturating); returns its count. */
  #record(f: number, page: number): number {
    if (++this.#accesses >= AGE_PER_SLOT * this.slots) this.#age();
    const c = this.#counts[f], i = page >>> 1, shift = (page & 1) << 2;
    const n = (c[i] >>> shift) & 15;
    if (n === 15) return n;
    c[i] += 1 << shift;
    return n + 1;
  }

  /** Halves every access counter, so that counts follow recent accesses. */
  #age(): void {
    this.#accesses = 0;
    for (const c of this.#counts) {
      for (let i = 0; i < c.length; i++) c[i] = (c[i] >>> 1) & 0x77;
    }
  }

  /** Whether page `page` of file `f` was verified by this cache before (false without tracking). */
  isVerified(f: number, page: number): boolean {
    return this.tracking && (this.#verifiedBits[f][page >>> 5] & (1 << (page & 31))) !== 0;
  }

  // ---- checksums ---------------------------------------------------------------

  /** The stored checksum of data page `page` of file `f` (its sums page goes through the pool). */
  expectedSum(f: number, page: number): number {
    if (this.#sums) return this.#sums[f][page];
    const key = 2 * f + 1, q = page >>> 10;
    let s = this.#find(key, q);
    if (s < 0) {
      const file = this.#files[f];
      checkSumsSize(file, this.#pages[f]);
      const len = Math.min(PAGE_BYTES, file.sums.size - q * PAGE_BYTES);
      const buf = this.#sumsScratch;
      buf.fill(0);
      file.sums.readExact(buf.subarray(0, len), q * PAGE_BYTES);
      s = this.#insertKey(key, q, buf);
    }
    this.#ref[s] = 1;
    return this.#words[s * (PAGE_BYTES / 4) + (page & 1023)];
  }

  /**
   * Checks `bytes` (data page `page` of file `f`, `pageLength` long) against
   * its stored checksum unless already verified; throws an error naming the
   * file and the page on mismatch.
   */
  verify(f: number, page: number, bytes: Uint8Array): void {
    if (this.isVerified(f, page)) return;
    const want = this.pageLength(f, page);
    if (bytes.length !== want) {
      throw new FeatureStoreError(
        this.#files[f].label,
        `page ${page} has ${bytes.length} bytes, ${want} expected`,
      );
    }
    const got = xxh32(bytes);
    const expected = this.expectedSum(f, page);
    this.stats.verified++;
    if (got !== expected) {
      throw new FeatureStoreError(
        this.#files[f].label,
        `checksum mismatch on page ${page} (bytes ${page * PAGE_BYTES}..${
          page * PAGE_BYTES + want
        }): stored ${hex(expected)}, computed ${hex(got)}; the file is corrupt or was ` +
          `modified: rebuild the feature store`,
      );
    }
    if (this.tracking) this.#verifiedBits[f][page >>> 5] |= 1 << (page & 31);
  }

  /** Forgets every cached page and verification (for cold measurements; loaded checksums stay). */
  clear(): void {
    this.#table.fill(0);
    this.#slotKey.fill(-1);
    this.#ref.fill(0);
    this.#pin.fill(0);
    this.#used = 0;
    this.#hand = 0;
    for (const x of this.#verifiedBits) x.fill(0);
    for (const x of this.#counts) x.fill(0);
    this.#accesses = 0;
  }
}

function checkSumsSize(file: PagedFile, pages: number): void {
  if (file.sums.size < 4 * pages) {
    throw new FeatureStoreError(
      file.sums.path,
      `${file.sums.size} bytes, ${4 * pages} expected for the ${pages} pages of ` +
        `${file.label}: the checksum file is truncated`,
    );
  }
}

function hex(x: number): string {
  return "0x" + x.toString(16).padStart(8, "0");
}
