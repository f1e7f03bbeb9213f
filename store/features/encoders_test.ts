import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import fc from "fast-check";
import { openYaml, withDir } from "../test_util.ts";
import { civilFromDays, encodeValue, prepareEncoder, trimSpaces } from "./encoders.ts";
import type { EncoderState } from "./format.ts";
import { decodeRows, packRows, rowBytesFor } from "./encoded_rows.ts";
import { cutoffCondition, featureColumns, fitTable } from "./fit.ts";

const f32 = Math.fround;
const close = (a: number[], b: number[], eps = 1e-6) =>
  assert(a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) <= eps), `${a} vs ${b}`);

Deno.test("numerical: robust standardisation, clipping, missing indicator", () => {
  const e: EncoderState = { kind: "numerical", median: 10, scale: 2, clip: 5 };
  assertEquals(encodeValue(e, 14), [2, 0]);
  assertEquals(encodeValue(e, 9), [-0.5, 0]);
  assertEquals(encodeValue(e, 1e9), [5, 0]);
  assertEquals(encodeValue(e, -Infinity), [-5, 0]);
  assertEquals(encodeValue(e, NaN), [0, 1]);
  assertEquals(encodeValue(e, null), [0, 1]);
});

Deno.test("categorical and multicategorical: codes, 0 for null and out of vocabulary", () => {
  const c: EncoderState = { kind: "categorical", vocab: ["a", "b"], minCount: 2 };
  assertEquals([encodeValue(c, "a"), encodeValue(c, "b")], [[1], [2]]);
  assertEquals([encodeValue(c, "z"), encodeValue(c, null)], [[0], [0]]);
  const m: EncoderState = { kind: "multicategorical", vocab: ["x", "y"], separator: "|", slots: 3 };
  assertEquals(encodeValue(m, " y | q |x||y|x"), [2, 1, 2]);
  assertEquals(encodeValue(m, "x"), [1, 0, 0]);
  assertEquals(encodeValue(m, null), [0, 0, 0]);
  assertEquals(trimSpaces("  a b \t "), "a b \t");
});

Deno.test("timestamp: UTC calendar features as sin/cos pairs, standardised year", () => {
  const e: EncoderState = {
    kind: "timestamp",
    features: ["year", "month", "weekday", "day", "hour", "missing"],
    yearCentre: 2020,
    yearScale: 2,
  };
  // Friday 2024-03-15 06:00 UTC: month 3, weekday 4 (Monday 0), day 15, a quarter of the day.
  const t = Date.UTC(2024, 2, 15, 6) / 1000;
  const phase = (x: number) => [Math.sin(2 * Math.PI * x), Math.cos(2 * Math.PI * x)];
  const want = [2, ...phase(2 / 12), ...phase(4 / 7), ...phase(14 / 31), ...phase(0.25), 0];
  close(encodeValue(e, t), want.map(f32));
  assertEquals(encodeValue(e, NaN), [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  assertEquals(encodeValue(e, Date.UTC(2090, 0) / 1000)[0], 5); // clipped
  fc.assert(
    fc.property(fc.integer({ min: -800_000, max: 800_000 }), (days) => {
      const d = new Date(days * 86400_000);
      assertEquals(civilFromDays(days), [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()]);
    }),
  );
});

Deno.test("text: hashed character n-grams, L2-normalised, case-insensitive", () => {
  const e: EncoderState = { kind: "text", buckets: 16, ngram: 3 };
  const v = encodeValue(e, "Hello world");
  close([Math.hypot(...v)], [1], 1e-5);
  assertEquals(encodeValue(e, "HELLO WORLD"), v);
  assert(encodeValue(e, "goodbye") + "" !== v + "");
  assertEquals(encodeValue(e, null), new Array(16).fill(0));
  assertEquals(encodeValue(e, ""), new Array(16).fill(0));
  close([Math.hypot(...encodeValue(e, "a"))], [1], 1e-5); // shorter than n
  assertEquals(prepareEncoder(e).width, 16);
});

Deno.test("rows pack and decode exactly, f32 and f16 (odd widths: unaligned codes)", () => {
  const shape = fc.record({
    numDtype: fc.constantFrom("f32" as const, "f16" as const),
    numWidth: fc.integer({ min: 0, max: 7 }),
    catWidth: fc.integer({ min: 0, max: 3 }),
    rows: fc.integer({ min: 0, max: 20 }),
  });
  fc.assert(
    fc.property(shape, fc.integer(), (s, seed) => {
      const rowBytes = rowBytesFor(s.numDtype, s.numWidth, s.catWidth);
      const t = { ...s, rowBytes };
      const rnd = (i: number) => Math.sin(seed + i * 12.9898) * 43758.5453 % 100;
      const num = Float32Array.from({ length: s.rows * s.numWidth }, (_, i) => rnd(i));
      const cat = Uint32Array.from(
        { length: s.rows * s.catWidth },
        (_, i) => (rnd(-i) * 1e7) >>> 0,
      );
      const bytes = new Uint8Array(s.rows * rowBytes);
      packRows(t, num, cat, s.rows, bytes);
      const back = decodeRows(t, bytes);
      const want = s.numDtype === "f16" ? num.map(Math.f16round) : num;
      assertEquals(Array.from(back.num), Array.from(want));
      assertEquals(Array.from(back.cat), Array.from(cat));
      // Unaligned input decodes the same.
      const shifted = new Uint8Array(bytes.byteLength + 1).subarray(1);
      shifted.set(bytes);
      assertEquals(decodeRows(t, shifted), back);
    }),
  );
});

const EVENTS = `id,ts,amount,kind,tags,note,seen,shop_id
1,2020-01-01,1,a,x|y,hello,2019-06-01 10:00:00,1
2,2020-01-02,2,a,x,hello there,,1
3,2020-01-03,3,b,y|z|x,,2019-07-01,2
4,2020-01-04,4,b,,bye,2019-08-01,2
5,2020-01-05,,c,z,,2018-01-01,1
6,2020-01-06,10,a,x|x|y|z,world,2021-01-01,1
`;
const EVENTS_YAML = `tables:
  shops: { file: shops.csv, primary_key: shop_id }
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
const PLANTED = [7, 8, 9].map((id) =>
  `${id},2030-01-01,1e12,q,w|w|w|w|w|w|w|w|w,zzz,2099-01-01 23:00:00,1\n`
).join("");

async function fitEvents(csv: string, cutoff: number) {
  return await withDir({ "events.csv": csv, "shops.csv": "shop_id\n1\n2\n" }, async (dir) => {
    const db = await openYaml(dir, EVENTS_YAML);
    try {
      return await fitTable(db, "events", cutoff, { minCount: 2 });
    } finally {
      db.close();
    }
  });
}

Deno.test("fit: statistics from rows at or before the cutoff; a planted outlier changes nothing", async () => {
  const cutoff = Date.UTC(2020, 0, 5) / 1000; // rows 1..5
  const f = await fitEvents(EVENTS, cutoff);
  assertEquals(f.columns.map((c) => [c.name, c.block, c.offset, c.width]), [
    ["amount", "num", 0, 2],
    ["kind", "cat", 0, 1],
    ["tags", "cat", 1, 3],
    ["note", "num", 2, 32],
    ["seen", "num", 34, 10],
  ]);
  // amount 1,2,3,4 (row 5 null): quartiles 1.75, 2.5, 3.25.
  assertEquals(f.columns[0].encoder, {
    kind: "numerical",
    median: 2.5,
    scale: 1.5 / 1.349,
    clip: 5,
  });
  // kind: a 2, b 2, c 1 (cut); tags: x 3, y 3, z 2; at most 3 items in a row.
  assertEquals(f.columns[1].encoder, { kind: "categorical", vocab: ["a", "b"], minCount: 2 });
  assertEquals(f.columns[2].encoder, {
    kind: "multicategorical",
    vocab: ["x", "y", "z"],
    separator: "|",
    slots: 3,
  });
  // seen years 2019 x3, 2018 (row 2 null): quartiles 2018.75, 2019, 2019; a row has hours.
  assertEquals(f.columns[4].encoder, {
    kind: "timestamp",
    features: ["year", "month", "weekday", "day", "hour", "missing"],
    yearCentre: 2019,
    yearScale: 0.25 / 1.349,
  });
  assertEquals(f.numWidth, 44);
  assertEquals(f.catWidth, 4);
  assertEquals(f.cardinality, [3, 4, 4, 4]);
  // Row 6 (after the cutoff) and planted outliers far in the future change no statistic.
  assertEquals(await fitEvents(EVENTS + PLANTED, cutoff), f);
  // A later cutoff does see them.
  const later = await fitEvents(EVENTS + PLANTED, Date.UTC(2031, 0) / 1000);
  assert(later.columns[2].encoder.kind === "multicategorical");
  assertEquals(later.columns[2].encoder.slots, 8);
});

Deno.test("features: no keys, time, ids or excluded columns", () => {
  const t = {
    name: "t",
    file: "t.csv",
    primaryKey: "id",
    timeColumn: "ts",
    foreignKeys: [{ column: "u", table: "users" }],
    columns: [
      { name: "id", stype: "id" as const },
      { name: "ts", stype: "timestamp" as const },
      { name: "u", stype: "numerical" as const },
      { name: "other_id", stype: "id" as const },
      { name: "label", stype: "numerical" as const },
      { name: "x", stype: "categorical" as const },
    ],
  };
  assertEquals(featureColumns(t).map((c) => c.name), ["label", "x"]);
  assertEquals(featureColumns(t, ["label"]).map((c) => c.name), ["x"]);
  throws(
    () => featureColumns(t, ["lable"]),
    /exclude: table "t" has no column "lable"; its columns: id, ts/,
  );
  assertEquals(cutoffCondition({ ...t, timeColumn: undefined }, 0), "TRUE");
});
