import assert from "node:assert/strict";
import { xxh32 } from "../checksum.ts";
import { PAGE_BYTES } from "./format.ts";
import { MIN_CACHE_PAGES, PageCache, type PagedFile } from "./cache.ts";
import type { RawFile } from "./pread.ts";

/** Content of data page `p` (deterministic, any size of file without storing it). */
function page(p: number, len = PAGE_BYTES): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (p * 131 + i * 7) & 255;
  return b;
}

/** An in-memory file of `size` bytes whose bytes at `offset` come from `at`. */
function fakeFile(path: string, size: number, at: (offset: number) => number): RawFile {
  return {
    path,
    size,
    ffi: false,
    pread(buf, offset) {
      const n = Math.max(0, Math.min(buf.length, size - offset));
      for (let i = 0; i < n; i++) buf[i] = at(offset + i);
      return n;
    },
    readExact(buf, offset) {
      if (this.pread(buf, offset) !== buf.length) throw new Error("short read");
    },
    dropCache: () => false,
    advise: () => false,
    close() {},
  };
}

/** A data file of `pages` pages (the last one `lastLen` bytes) and its checksum file. */
function fake(pages: number, lastLen = PAGE_BYTES, corrupt = -1): PagedFile {
  const size = (pages - 1) * PAGE_BYTES + lastLen;
  const len = (p: number) => (p === pages - 1 ? lastLen : PAGE_BYTES);
  const sum = (p: number) => (xxh32(page(p, len(p))) ^ (p === corrupt ? 1 : 0)) >>> 0;
  let cachedSum = -1, cachedVal = 0;
  return {
    label: "fake.rows",
    data: fakeFile(
      "fake.rows",
      size,
      (o) => (Math.floor(o / PAGE_BYTES) * 131 + (o % PAGE_BYTES) * 7) & 255,
    ),
    sums: fakeFile("fake.sums", pages * 4, (o) => {
      const p = o >> 2;
      if (p !== cachedSum) [cachedSum, cachedVal] = [p, sum(p)];
      return (cachedVal >>> (8 * (o & 3))) & 255;
    }),
  };
}

function load(c: PageCache, f: number, p: number): number {
  let s = c.lookup(f, p);
  if (s < 0) {
    const bytes = new Uint8Array(c.pageLength(f, p));
    bytes.set(page(p, bytes.length));
    c.verify(f, p, bytes);
    s = c.insert(f, p, bytes);
  }
  return s;
}

Deno.test("the cache keeps pages under its budget, evicting by CLOCK and honouring pins", () => {
  const c = new PageCache(64 * (PAGE_BYTES + 64), [fake(1000, 100)]);
  assert.ok(c.slots >= MIN_CACHE_PAGES && c.slots <= 64, `${c.slots}`);
  assert.equal(c.pool.byteLength, c.slots * PAGE_BYTES);
  const hot = load(c, 0, 0);
  c.pin(hot);
  for (let p = 1; p < 1000; p++) {
    const s = load(c, 0, p);
    assert.deepEqual(
      c.pool.subarray(s * PAGE_BYTES, s * PAGE_BYTES + c.pageLength(0, p)),
      page(p, c.pageLength(0, p)),
    );
  }
  assert.equal(c.lookup(0, 0), hot); // pinned: never evicted
  c.unpin(hot);
  assert.equal(c.pageLength(0, 999), 100);
  assert.ok(c.stats.evictions >= 1000 - c.slots);
  // Every resident page is found again where it was put.
  let found = 0;
  for (let p = 0; p < 1000; p++) found += c.has(0, p) ? 1 : 0;
  assert.equal(found, c.slots);
});

Deno.test("checksums come through the pool when they do not fit beside it; mismatches name the page", () => {
  // 40,000 pages: 160 KB of checksums, more than an eighth of a 300 KB budget.
  const c = new PageCache(300_000, [fake(40_000, PAGE_BYTES, 12_345)]);
  for (const p of [0, 39_999, 20_000, 1]) load(c, 0, p);
  assert.ok(c.stats.verified === 4);
  assert.throws(() => load(c, 0, 12_345), /fake\.rows: checksum mismatch on page 12345 /);
});

Deno.test("without room for the tracking bits every read is verified and admitted", () => {
  // 2^28 pages (1 TiB): 64 MiB of bits, far above an eighth of a 1 MiB budget.
  const c = new PageCache(1 << 20, [fake(2 ** 28)]);
  assert.equal(c.tracking, false);
  assert.equal(c.wantsAdmission(0, 5), true);
  load(c, 0, 2 ** 28 - 1);
  load(c, 0, 2 ** 28 - 1);
  assert.equal(c.isVerified(0, 7), false);
  assert.equal(c.stats.hits, 1);
});

Deno.test("admission needs a second miss; a budget below the minimum is refused", () => {
  const c = new PageCache(1 << 20, [fake(100)]);
  assert.equal(c.tracking, true);
  assert.equal(c.wantsAdmission(0, 3), false);
  assert.equal(c.wantsAdmission(0, 3), true);
  assert.throws(() => new PageCache(1000, [fake(10)]), /too small; give at least/);
});

/** A reader's access to page `p` of file 0: a hit, or a miss that may admit the page. */
function access(c: PageCache, p: number): void {
  const s = c.find(0, p);
  if (s >= 0) return c.hit(s);
  if (!c.wantsAdmission(0, p)) return;
  const bytes = page(p, c.pageLength(0, p));
  c.verify(0, p, bytes);
  c.insert(0, p, bytes);
}

Deno.test("a loop over twice the pool's pages keeps a stable half cached (TinyLFU admission)", () => {
  const c = new PageCache(64 * (PAGE_BYTES + 64), [fake(1000)]);
  const loop = 2 * c.slots;
  for (let round = 0; round < 6; round++) for (let p = 0; p < loop; p++) access(c, p);
  const { hits, inserts } = c.stats;
  for (let round = 0; round < 6; round++) for (let p = 0; p < loop; p++) access(c, p);
  // Every round hits about the pool's worth of pages and admits almost nothing.
  assert.ok(c.stats.hits - hits >= 6 * c.slots * 0.9, `${c.stats.hits - hits} hits`);
  assert.ok(c.stats.inserts - inserts <= 6, `${c.stats.inserts - inserts} inserts`);
});

Deno.test("a page asked for more often than the pool's pages replaces one of them", () => {
  const c = new PageCache(64 * (PAGE_BYTES + 64), [fake(1000)]);
  for (let round = 0; round < 2; round++) for (let p = 0; p < c.slots; p++) access(c, p);
  assert.equal(c.stats.inserts, c.slots); // the pool is full, each page asked for twice
  const hot = 500;
  for (let k = 0; k < 2; k++) access(c, hot);
  assert.ok(!c.has(0, hot)); // as frequent as the pages it would replace
  for (let k = 0; k < 2; k++) access(c, hot);
  assert.ok(c.has(0, hot)); // now more frequent: admitted
  assert.equal(c.stats.evictions, 1);
});
