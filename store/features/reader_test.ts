import assert from "node:assert/strict";
import fc from "fast-check";
import { FeatureReader } from "./reader.ts";
import { GatherPool } from "./gather_pool.ts";
import { FeatureStoreError } from "./manifest.ts";
import { PAGE_BYTES } from "./format.ts";
import { ffiAvailable } from "./pread.ts";
import { testCode, type TestTableSpec, testValue, writeTestStore } from "./reader_testing.ts";

const SPECS: TestTableSpec[] = [
  { name: "a", rows: 3000, numWidth: 5, catWidth: 2, pad: 4 }, // 32-byte rows
  { name: "b", rows: 2500, numWidth: 3, catWidth: 1, numDtype: "f16" }, // 12-byte rows
  { name: "c", rows: 700, numWidth: 70, catWidth: 5 }, // 300-byte rows, straddling pages
  // 32 MiB: long runs stream past the cache; its checksums do not fit beside a small cache.
  { name: "d", rows: 131072, numWidth: 64, catWidth: 0, fill: "random" },
];

const dir = await Deno.makeTempDir({ prefix: "fanout-reader-" });
const manifest = await writeTestStore(dir, SPECS);
const fileBytes: Record<string, Uint8Array> = {};
for (const t of Object.values(manifest.tables)) {
  fileBytes[t.table] = await Deno.readFile(`${dir}/${t.rowsFile}`);
}

function expected(table: string, ids: ArrayLike<number>): Uint8Array {
  const rb = manifest.tables[table].rowBytes, src = fileBytes[table];
  const out = new Uint8Array(ids.length * rb);
  for (let i = 0; i < ids.length; i++) out.set(src.subarray(ids[i] * rb, ids[i] * rb + rb), i * rb);
  return out;
}

/** Random id lists: scattered ids, runs of consecutive ids, duplicates, sorted or not. */
function idLists(rows: number): fc.Arbitrary<number[]> {
  const id = fc.integer({ min: 0, max: rows - 1 });
  const run = fc.tuple(id, fc.integer({ min: 1, max: rows > 10_000 ? 3000 : 80 })).map(([s, n]) =>
    Array.from({ length: Math.min(n, rows - s) }, (_, k) => s + k)
  );
  const piece = fc.oneof(id.map((x) => [x]), run, fc.tuple(id, id).map(([x, y]) => [x, y, x]));
  return fc.tuple(fc.array(piece, { maxLength: 40 }), fc.boolean(), fc.boolean()).map(
    ([parts, sort, reverse]) => {
      const ids = parts.flat();
      if (sort) ids.sort((x, y) => x - y);
      if (reverse) ids.reverse();
      return ids;
    },
  );
}

/** Asserts that `fn` throws an instance of `cls` whose message contains `text`; returns it. */
function throwsWith(fn: () => unknown, cls: new (...a: never[]) => Error, text: string): Error {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    assert.ok(e.message.includes(text), `"${e.message}" lacks "${text}"`);
    return e;
  }
  throw new assert.AssertionError({ message: "expected an exception" });
}

const readers: [string, () => Promise<FeatureReader>][] = [
  ["small cache", () => FeatureReader.open(dir, { cacheBytes: 160 << 10 })],
  ["large cache", () => FeatureReader.open(dir, { cacheBytes: 16 << 20 })],
  ["fallback reads", () => FeatureReader.open(dir, { cacheBytes: 1 << 20, ffi: false })],
];

for (const [label, open] of readers) {
  Deno.test(`gather returns the stored rows in the order asked (${label})`, async () => {
    const reader = await open();
    try {
      if (label === "fallback reads") assert.deepStrictEqual(reader.ffi, false);
      else assert.deepStrictEqual(reader.ffi, ffiAvailable());
      for (const spec of SPECS) {
        fc.assert(
          fc.property(idLists(spec.rows), (list) => {
            const ids = Int32Array.from(list);
            assert.deepStrictEqual(reader.gather(spec.name, ids), expected(spec.name, ids));
          }),
          { numRuns: 60, seed: 42 },
        );
      }
      const s = reader.stats();
      assert.ok(s.reads > 0);
      if (label === "small cache") assert.ok(s.evictions > 0);
    } finally {
      reader.close();
    }
  });
}

Deno.test("a gather pool splits gathers across workers and returns the same rows", async () => {
  const pool = await GatherPool.create(dir, { workers: 2, cacheBytes: 1 << 20, minSplit: 4 });
  try {
    assert.deepStrictEqual(pool.ffi, ffiAvailable());
    for (const spec of SPECS) {
      const ids = Int32Array.from({ length: 501 }, (_, i) => (i * 7919) % spec.rows);
      ids[9] = ids[400]; // a duplicate across the two slices
      assert.deepStrictEqual(await pool.gather(spec.name, ids), expected(spec.name, ids));
    }
    assert.deepStrictEqual(await pool.gather("a", Int32Array.of(3)), expected("a", [3]));
    await assert.rejects(pool.gather("a", Int32Array.of(5, 9, 3000, 1, 2)), /\[0, 3000\)/);
    assert.equal((await pool.stats()).length, 2);
  } finally {
    await pool.close();
  }
  await assert.rejects(pool.gather("a", Int32Array.of(0)), /closed/);
});

Deno.test("large gathers: thousands of pieces in any order, duplicates, runs to the last row", async () => {
  for (const cacheBytes of [160 << 10, 16 << 20]) {
    const reader = await FeatureReader.open(dir, { cacheBytes });
    try {
      let x = 7;
      const rnd = (m: number) => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % m;
      for (const spec of SPECS) {
        for (let trial = 0; trial < 3; trial++) {
          const list: number[] = [];
          while (list.length < 5000) {
            const r = rnd(4), len = 1 + rnd(r === 1 ? 200 : 50), s = rnd(spec.rows);
            if (r === 0) list.push(s);
            else if (r === 1) {
              for (let k = 0; k < len && s + k < spec.rows; k++) list.push(s + k);
            } else if (r === 2) list.push(list.length ? list[rnd(list.length)] : s); // a duplicate
            else for (let k = Math.min(len, spec.rows); k > 0; k--) list.push(spec.rows - k);
          }
          const ids = Int32Array.from(list);
          assert.deepStrictEqual(reader.gather(spec.name, ids), expected(spec.name, ids));
        }
      }
    } finally {
      reader.close();
    }
  }
});

Deno.test("gatherDecoded returns the encoded values and codes", async () => {
  const reader = await FeatureReader.open(dir, { cacheBytes: 1 << 20 });
  try {
    for (const spec of SPECS.filter((s) => s.fill !== "random")) {
      const ids = Int32Array.of(spec.rows - 1, 0, 17, 17, 5);
      const { num, cat } = reader.gatherDecoded(spec.name, ids);
      assert.deepStrictEqual(num.length, ids.length * spec.numWidth);
      assert.deepStrictEqual(cat.length, ids.length * spec.catWidth);
      ids.forEach((id, r) => {
        for (let k = 0; k < spec.numWidth; k++) {
          assert.deepStrictEqual(num[r * spec.numWidth + k], testValue(spec.name, id, k));
        }
        for (let k = 0; k < spec.catWidth; k++) {
          assert.deepStrictEqual(cat[r * spec.catWidth + k], testCode(spec.name, id, k));
        }
      });
    }
  } finally {
    reader.close();
  }
});

Deno.test("an id out of range or an unknown table is a clear error", async () => {
  const reader = await FeatureReader.open(dir, { cacheBytes: 1 << 20 });
  try {
    const e = throwsWith(() => reader.gather("a", Int32Array.of(1, 3000)), RangeError, "");
    assert(e.message.includes(`"a"`) && e.message.includes("[0, 3000)"), e.message);
    assert(e.message.includes("id 3000 at position 1"), e.message);
    throwsWith(() => reader.gather("a", Int32Array.of(-1)), RangeError, "[0, 3000)");
    // A run of ids that goes past the last row (ids extending a run are checked too).
    for (const len of [5, 20]) {
      const run = Int32Array.from({ length: len }, (_, k) => 3000 - len + 4 + k);
      throwsWith(() => reader.gather("a", run), RangeError, `id 3000 at position ${len - 4}`);
    }
    throwsWith(() => reader.gather("zzz", Int32Array.of(0)), Error, "tables: a, b, c");
    throwsWith(
      () => reader.gather("a", Int32Array.of(0), new Uint8Array(3)),
      RangeError,
      "output holds 3 bytes",
    );
    assert.deepStrictEqual(reader.gather("a", new Int32Array(0)).length, 0);
    await assert.rejects(FeatureReader.open(dir, { cacheBytes: 1000 }), /too small; give at least/);
  } finally {
    reader.close();
  }
  throwsWith(() => reader.gather("a", Int32Array.of(0)), Error, "closed");
});

async function copyStore(): Promise<string> {
  const d = await Deno.makeTempDir({ prefix: "fanout-reader-bad-" });
  for (const e of Deno.readDirSync(dir)) await Deno.copyFile(`${dir}/${e.name}`, `${d}/${e.name}`);
  return d;
}

Deno.test("an altered page fails its checksum with an error naming the file and page", async () => {
  const d = await copyStore();
  try {
    const rows = await Deno.readFile(`${d}/c.rows`);
    const page = 7;
    rows[page * PAGE_BYTES + 100] ^= 0x40;
    await Deno.writeFile(`${d}/c.rows`, rows);
    for (const ffi of [true, false]) {
      const reader = await FeatureReader.open(d, { cacheBytes: 1 << 20, ffi });
      try {
        // Rows on other pages still read.
        assert.deepStrictEqual(reader.gather("c", Int32Array.of(0, 1)), expected("c", [0, 1]));
        const id = Math.floor((page * PAGE_BYTES + 100) / 300);
        const e = throwsWith(() => reader.gather("c", Int32Array.of(3, id)), FeatureStoreError, "");
        assert(e.message.includes(`${d}/c.rows`), e.message);
        assert(e.message.includes(`page ${page} `), e.message);
        assert(e.message.includes("checksum mismatch"), e.message);
      } finally {
        reader.close();
      }
    }
    // An altered checksum file is caught the same way.
    const sums = await Deno.readFile(`${d}/a.sums`);
    sums[8] ^= 1; // page 2
    await Deno.writeFile(`${d}/a.sums`, sums);
    const reader = await FeatureReader.open(d, { cacheBytes: 1 << 20 });
    try {
      throwsWith(
        () => reader.gather("a", Int32Array.of(2 * PAGE_BYTES / 32)),
        FeatureStoreError,
        "page 2 ",
      );
    } finally {
      reader.close();
    }
  } finally {
    await Deno.remove(d, { recursive: true });
  }
});

Deno.test("a truncated file is refused at open, or when read after opening", async () => {
  const d = await copyStore();
  try {
    const size = (await Deno.stat(`${d}/a.rows`)).size;
    await Deno.truncate(`${d}/a.sums`, 8);
    await assertRejectsWith(FeatureReader.open(d), `${d}/a.sums`);
    await Deno.copyFile(`${dir}/a.sums`, `${d}/a.sums`);
    await Deno.truncate(`${d}/a.rows`, size - 10);
    await assertRejectsWith(FeatureReader.open(d), "truncated");
    // Truncated while open: the short read is reported.
    await Deno.copyFile(`${dir}/a.rows`, `${d}/a.rows`);
    const reader = await FeatureReader.open(d, { cacheBytes: 1 << 20 });
    try {
      await Deno.truncate(`${d}/a.rows`, 1000 * 32);
      throwsWith(() => reader.gather("a", Int32Array.of(2999)), Error, "truncated");
    } finally {
      reader.close();
    }
  } finally {
    await Deno.remove(d, { recursive: true });
  }
});

async function assertRejectsWith(p: Promise<unknown>, text: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert(e instanceof FeatureStoreError, String(e));
    assert(e.message.includes(text), e.message);
    return;
  }
  throw new Error("expected a rejection");
}

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* already gone */ }
});
