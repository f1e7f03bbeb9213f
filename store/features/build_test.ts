import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import fc from "fast-check";
import { Database } from "../database.ts";
import { loadSchema } from "../schema.ts";
import { F1_DIR, openYaml, tempDir } from "../test_util.ts";
import { quoteIdent } from "../duck.ts";
import type { FeatureManifest, FeatureTableManifest } from "./format.ts";
import { prepareEncoder, type SourceValue } from "./encoders.ts";
import { decodeRows } from "./encoded_rows.ts";
import { fitTable } from "./fit.ts";
import { buildFeatureStore } from "./build.ts";
import { FeatureStoreError, openManifest, verifyPages } from "./manifest.ts";

const F1_CUTOFF = Date.UTC(2010, 0, 1) / 1000;

/**
 * Checks that the rows file of `table`, read back directly, decodes to the
 * encoders of the manifest applied to the source rows (read as objects, a
 * different path from the build's streaming).
 */
async function assertRoundTrip(db: Database, dir: string, m: FeatureManifest, table: string) {
  const t = m.tables[table];
  const { sources } = await fitTable(db, table, m.cutoff); // the SQL of each column's values
  assertEquals(sources.length, t.columns.length);
  const sql = `SELECT ${["0 AS __unused", ...sources.map((s, i) => `${s} AS c${i}`)].join(", ")} ` +
    `FROM ${quoteIdent(table)} ORDER BY "__row"`;
  const rows = await db.query(sql);
  assertEquals(rows.length, t.rows);
  const bytes = await Deno.readFile(`${dir}/${t.rowsFile}`);
  const got = decodeRows(t, bytes, t.rows);
  const encoders = t.columns.map((c) => prepareEncoder(c.encoder));
  const num = new Float32Array(t.numWidth);
  const cat = new Uint32Array(t.catWidth);
  const round = t.numDtype === "f16" ? Math.f16round : (x: number) => x;
  for (const [r, row] of rows.entries()) {
    t.columns.forEach((c, i) => {
      const v = row[`c${i}`];
      encoders[i].encode(
        v === null ? null : v as SourceValue,
        c.block === "num" ? num : cat,
        c.offset,
      );
    });
    for (let k = 0; k < t.numWidth; k++) {
      if (got.num[r * t.numWidth + k] !== round(num[k])) {
        throw new Error(`${table} row ${r} num ${k}: ${got.num[r * t.numWidth + k]} vs ${num[k]}`);
      }
    }
    for (let k = 0; k < t.catWidth; k++) {
      if (got.cat[r * t.catWidth + k] !== cat[k]) {
        throw new Error(`${table} row ${r} cat ${k}: ${got.cat[r * t.catWidth + k]} vs ${cat[k]}`);
      }
    }
  }
}

async function tempStore(): Promise<string> {
  return `${await Deno.makeTempDir({ prefix: "fanout_features_" })}/store`;
}

async function cleanup(dir: string): Promise<void> {
  await Deno.remove(dir.slice(0, dir.lastIndexOf("/")), { recursive: true });
}

async function siblings(dir: string): Promise<string[]> {
  const parent = dir.slice(0, dir.lastIndexOf("/"));
  const out: string[] = [];
  for await (const e of Deno.readDir(parent)) out.push(e.name);
  return out.sort();
}

Deno.test("f1: round trip (f32, f16, chunked), checksums, truncation and corruption", async (t) => {
  const db = await Database.open(F1_DIR, await loadSchema("store/examples/f1.yaml"));
  const dir = await tempStore();
  try {
    const m = await buildFeatureStore(db, dir, { cutoff: F1_CUTOFF });
    assertEquals(await openManifest(dir), m);
    assertEquals(Object.keys(m.tables), db.schema.tables.map((x) => x.name));
    const results = m.tables.results;
    assertEquals(results.rows, db.rowCount("results"));
    assert(!results.columns.some((c) => ["resultId", "raceId", "__time"].includes(c.name)));

    await t.step("every table decodes to its encoders applied to the source rows", async () => {
      for (const name of Object.keys(m.tables)) {
        await assertRoundTrip(db, dir, m, name);
        assertEquals(
          await verifyPages(dir, name),
          Math.ceil(m.tables[name].rows * m.tables[name].rowBytes / 4096),
        );
      }
    });

    await t.step("small chunks write the same bytes; f16 round trips", async () => {
      const small = `${dir}-chunked`;
      await buildFeatureStore(db, small, { cutoff: F1_CUTOFF, chunkRows: 777 });
      for (const x of Object.values(m.tables)) {
        assertEquals(
          await Deno.readFile(`${small}/${x.rowsFile}`),
          await Deno.readFile(`${dir}/${x.rowsFile}`),
        );
        assertEquals(
          await Deno.readFile(`${small}/${x.sumsFile}`),
          await Deno.readFile(`${dir}/${x.sumsFile}`),
        );
      }
      const half = `${dir}-f16`;
      const h = await buildFeatureStore(db, half, {
        cutoff: F1_CUTOFF,
        numDtype: "f16",
        chunkRows: 5000,
      });
      assertEquals(
        h.tables.results.rowBytes,
        Math.ceil((results.numWidth * 2 + results.catWidth * 4) / 4) * 4,
      );
      for (const name of ["results", "races", "drivers", "circuits"]) {
        await assertRoundTrip(db, half, h, name);
        await verifyPages(half, name);
      }
    });

    await t.step("a truncated or altered file is detected with a clear error", async () => {
      const path = `${dir}/${results.rowsFile}`;
      const bytes = await Deno.readFile(path);
      // One byte flipped in page 3: the manifest opens, the page check names the page.
      const flipped = bytes.slice();
      flipped[3 * 4096 + 17] ^= 0x40;
      await Deno.writeFile(path, flipped);
      await openManifest(dir);
      await rejects(verifyPages(dir, "results"), (e: Error) => {
        assert(e instanceof FeatureStoreError);
        assert(
          e.message.startsWith(`${path}: page 3 (bytes 12288..16384) fails its checksum`),
          e.message,
        );
        return true;
      });
      // Truncated: openManifest refuses the store and says how.
      await Deno.writeFile(path, bytes.subarray(0, bytes.byteLength - 100));
      await rejects(
        openManifest(dir),
        new RegExp(
          `^FeatureStoreError: ${path}: ${bytes.byteLength - 100} bytes, expected ` +
            `${bytes.byteLength} \\(${results.rows} rows of ${results.rowBytes} bytes, table ` +
            `"results"\\): the file is truncated`,
        ),
      );
      await Deno.writeFile(path, bytes);
      const sums = `${dir}/${results.sumsFile}`;
      const s = await Deno.readFile(sums);
      await Deno.writeFile(sums, s.subarray(4));
      await rejects(openManifest(dir), new RegExp(`${sums}: .* the file is truncated or altered`));
      s[0] ^= 1;
      await Deno.writeFile(sums, s);
      await rejects(verifyPages(dir, "results"), /results\.rows: page 0 .* fails its checksum/);
      s[0] ^= 1;
      await Deno.writeFile(sums, s);
      assert((await verifyPages(dir, "results")) > 3);
      const manifest = await Deno.readTextFile(`${dir}/manifest.json`);
      await Deno.writeTextFile(
        `${dir}/manifest.json`,
        manifest.replace('"version": 1', '"version": 99'),
      );
      await rejects(
        openManifest(dir),
        /manifest\.json: format version 99; this build reads version 1/,
      );
      await Deno.remove(`${dir}/manifest.json`);
      await rejects(openManifest(dir), /manifest\.json: missing: not a complete feature store/);
    });
  } finally {
    db.close();
    await cleanup(dir);
  }
});

const EVENTS_YAML = `tables:
  shops: { file: shops.csv, primary_key: shop_id, columns: { region: categorical } }
  events:
    file: events.csv
    primary_key: id
    time_column: ts
    foreign_keys: { shop_id: shops }
    columns:
      amount: numerical
      kind: categorical
      tags: multicategorical
      note: text
      seen: timestamp
`;

interface Event {
  day: number;
  amount: number | null;
  kind: string | null;
  tags: string[];
  note: string | null;
  seen: number | null;
}

function eventsCsv(events: Event[]): string {
  const lines = ["id,ts,amount,kind,tags,note,seen,shop_id"];
  events.forEach((e, i) => {
    const ts = new Date(Date.UTC(2020, 0, 1) + e.day * 86400_000).toISOString().slice(0, 10);
    const seen = e.seen === null
      ? ""
      : new Date(e.seen * 1000).toISOString().slice(0, 19).replace("T", " ");
    lines.push(
      [
        i + 1,
        ts,
        e.amount ?? "",
        e.kind ?? "",
        `"${e.tags.join("|")}"`,
        e.note ?? "",
        seen,
        (i % 2) + 1,
      ]
        .join(","),
    );
  });
  return lines.join("\n") + "\n";
}

const SHOPS = "shop_id,region\n1,north\n2,south\n";

const event = fc.record({
  day: fc.integer({ min: 0, max: 60 }),
  amount: fc.option(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { nil: null }),
  kind: fc.option(fc.constantFrom("a", "b", "c", "dd"), { nil: null }),
  tags: fc.array(fc.constantFrom("x", "y", "z"), { maxLength: 4 }),
  note: fc.option(fc.stringMatching(/^[a-zA-Z][a-zA-Z ]{0,12}$/), { nil: null }),
  seen: fc.option(fc.integer({ min: 0, max: 2e9 }), { nil: null }),
});

Deno.test("random tables: the files decode to the encoders applied to the rows", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(event, { maxLength: 40 }),
      fc.integer({ min: -5, max: 65 }),
      fc.constantFrom("f32" as const, "f16" as const),
      fc.integer({ min: 1, max: 50 }),
      async (events, cutoffDay, numDtype, chunkRows) => {
        const data = await tempDir({ "events.csv": eventsCsv(events), "shops.csv": SHOPS });
        const db = await openYaml(data, EVENTS_YAML);
        const dir = `${data}/store`;
        try {
          const cutoff = Date.UTC(2020, 0, 1) / 1000 + cutoffDay * 86400;
          const m = await buildFeatureStore(db, dir, { cutoff, numDtype, chunkRows });
          for (const name of ["events", "shops"]) {
            await assertRoundTrip(db, dir, m, name);
            await verifyPages(dir, name);
          }
        } finally {
          db.close();
          await Deno.remove(data, { recursive: true });
        }
      },
    ),
    { numRuns: 12 },
  );
});

const BASE: Event[] = Array.from({ length: 300 }, (_, i) => ({
  day: Math.floor(i / 5),
  amount: (i * 37) % 101,
  kind: ["a", "b", "c"][i % 3],
  tags: ["x", "y", "z"].slice(0, i % 4),
  note: `note ${i % 7}`,
  seen: 1.5e9 + i * 86400,
}));
const OUTLIERS: Event[] = Array.from({ length: 20 }, () => ({
  day: 70,
  amount: 1e15,
  kind: "new",
  tags: Array(9).fill("w"),
  note: "future",
  seen: 4e9,
}));

Deno.test("no leakage: rows after the cutoff change no statistic and no earlier row", async () => {
  const cutoff = Date.UTC(2020, 0, 1) / 1000 + 40 * 86400;
  const build = async (events: Event[]) => {
    const data = await tempDir({ "events.csv": eventsCsv(events), "shops.csv": SHOPS });
    const db = await openYaml(data, EVENTS_YAML);
    try {
      const m = await buildFeatureStore(db, `${data}/store`, { cutoff, chunkRows: 64 });
      const bytes = await Deno.readFile(`${data}/store/${m.tables.events.rowsFile}`);
      return { m, bytes };
    } finally {
      db.close();
      await Deno.remove(data, { recursive: true });
    }
  };
  const a = await build(BASE);
  const b = await build([...BASE, ...OUTLIERS]);
  const strip = (t: FeatureTableManifest) => ({ ...t, rows: 0 });
  assertEquals(strip(b.m.tables.events), strip(a.m.tables.events));
  assertEquals(b.m.tables.shops, a.m.tables.shops);
  assertEquals(b.bytes.subarray(0, a.bytes.byteLength), a.bytes);
  // The planted rows are encoded with the earlier statistics: clipped, out of vocabulary.
  const t = b.m.tables.events;
  const planted = decodeRows(t, b.bytes.subarray(a.bytes.byteLength));
  assertEquals(planted.num[0], 5);
  assertEquals(Array.from(planted.cat.subarray(0, t.catWidth)), new Array(t.catWidth).fill(0));
});

Deno.test("an interrupted build leaves the directory as it was", async () => {
  const data = await tempDir({ "events.csv": eventsCsv(BASE), "shops.csv": SHOPS });
  const db = await openYaml(data, EVENTS_YAML);
  const dir = `${data}/out/store`;
  await Deno.mkdir(`${data}/out`);
  const stop = (stage: string, after = 0) => {
    let n = 0;
    return (p: { stage: string }) => {
      if (p.stage === stage && n++ >= after) throw new Error(`stopped at ${stage}`);
    };
  };
  const noManifestAnywhere = async () => {
    for (const name of await siblings(dir)) {
      if (name === "store") continue;
      await rejects(openManifest(`${data}/out/${name}`), /missing: not a complete feature store/);
    }
  };
  try {
    const cutoff = Date.UTC(2020, 1, 1) / 1000;
    // No store yet: a build stopped mid-table leaves nothing at all.
    const opts = { cutoff, chunkRows: 16 };
    await rejects(
      buildFeatureStore(db, dir, { ...opts, onProgress: stop("rows", 3) }),
      /stopped at rows/,
    );
    assertEquals(await siblings(dir), []);
    // A build killed outright (simulated: its temporary directory kept) leaves no manifest;
    // the next build deletes what it left.
    for (const stage of ["fit", "rows", "manifest"]) {
      const run = buildFeatureStore(db, dir, {
        ...opts,
        onProgress: stop(stage),
        keepTempOnError: true,
      });
      await rejects(run, new RegExp(`stopped at ${stage}`));
      const left = await siblings(dir);
      assertEquals(left.length, 1);
      assert(left[0].startsWith("store.tmp-"));
      await noManifestAnywhere();
    }
    await rejects(openManifest(dir), /no feature store here/);
    // A complete build replaces nothing, cleans the leftovers, and opens.
    const first = await buildFeatureStore(db, dir, opts);
    assertEquals(await siblings(dir), ["store"]);
    // A rebuild that fails keeps the previous complete store intact.
    for (const stage of ["rows", "manifest"]) {
      const run = buildFeatureStore(db, dir, {
        ...opts,
        cutoff: cutoff + 86400,
        onProgress: stop(stage),
        keepTempOnError: true,
      });
      await rejects(run, new RegExp(`stopped at ${stage}`));
      assertEquals(await openManifest(dir), first);
      await verifyPages(dir, "events");
    }
    await noManifestAnywhere();
    // A successful rebuild replaces it whole, leaving no temporary or old directory.
    const second = await buildFeatureStore(db, dir, { ...opts, cutoff: cutoff + 86400 });
    assertEquals((await openManifest(dir)).cutoff, second.cutoff);
    assertEquals(await siblings(dir), ["store"]);
    // A directory that is not a feature store is never replaced.
    const other = `${data}/out/other`;
    await Deno.mkdir(other);
    await Deno.writeTextFile(`${other}/notes.txt`, "mine");
    await rejects(buildFeatureStore(db, other, opts), /other: exists and is not a feature store/);
    assertEquals(await Deno.readTextFile(`${other}/notes.txt`), "mine");
  } finally {
    db.close();
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("exclude drops columns; unknown tables and columns are errors", async () => {
  const data = await tempDir({ "events.csv": eventsCsv(BASE.slice(0, 10)), "shops.csv": SHOPS });
  const db = await openYaml(data, EVENTS_YAML);
  try {
    const m = await buildFeatureStore(db, `${data}/s`, {
      cutoff: 0,
      exclude: { events: ["amount", "note"] },
    });
    assertEquals(m.tables.events.columns.map((c) => c.name), ["kind", "tags", "seen"]);
    await rejects(
      buildFeatureStore(db, `${data}/s`, { cutoff: 0, exclude: { event: [] } }),
      /no table "event"/,
    );
    await rejects(
      buildFeatureStore(db, `${data}/s`, { cutoff: 0, exclude: { events: ["amout"] } }),
      /table "events" has no column "amout"/,
    );
    assertEquals((await openManifest(`${data}/s`)).tables.events.columns.length, 3);
  } finally {
    db.close();
    await Deno.remove(data, { recursive: true });
  }
});
