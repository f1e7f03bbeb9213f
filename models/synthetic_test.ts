import assert from "node:assert/strict";
import { Database } from "../store/database.ts";
import { loadSchema, parseSchema } from "../store/schema.ts";
import { trainingTable } from "../store/training_table.ts";
import { Split } from "../store/types.ts";
import {
  DEFAULT_QUERY,
  generateSyntheticDb,
  returnProbability,
  SYNTHETIC_SCHEMA,
} from "./synthetic.ts";

const FILES = ["users.csv", "items.csv", "stores.csv", "transactions.csv", "schema.yaml"];
const SMALL = { users: 200, items: 40, stores: 6, transactions: 3000, days: 200 };

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "fanout_synth_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("synthetic: the same seed writes the same files; another seed other ones", async () => {
  await withTemp(async (dir) => {
    const a = await generateSyntheticDb(`${dir}/a`, { ...SMALL, seed: 7 });
    const b = await generateSyntheticDb(`${dir}/b`, { ...SMALL, seed: 7 });
    await generateSyntheticDb(`${dir}/c`, { ...SMALL, seed: 8 });
    assert.deepEqual(a.rows, b.rows);
    for (const f of FILES) {
      assert.deepEqual(
        await Deno.readTextFile(`${dir}/a/${f}`),
        await Deno.readTextFile(`${dir}/b/${f}`),
      );
    }
    assert.notEqual(
      await Deno.readTextFile(`${dir}/a/transactions.csv`),
      await Deno.readTextFile(`${dir}/c/transactions.csv`),
    );
    // The count is calibrated to the target.
    assert(Math.abs(a.rows.transactions / SMALL.transactions - 1) < 0.03, `${a.rows.transactions}`);
  });
});

Deno.test("synthetic: bad options are errors", async () => {
  for (
    const opts of [{ users: 0 }, { seed: 0.5 }, { start: "soon" }, {
      mechanism: { soonDays: [5, 2] as const },
    }]
  ) {
    let message = "";
    try {
      await generateSyntheticDb("/nonexistent/never", opts);
    } catch (e) {
      message = (e as Error).message;
    }
    assert(message !== "" && !message.includes("nonexistent"), message);
  }
  assert(returnProbability(-2) < 0.01 && returnProbability(2) > 0.99);
  assert.deepEqual(parseSchema(SYNTHETIC_SCHEMA, "synthetic.yaml").tables.length, 4);
});

/** Pearson correlation. */
function corr(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) (mx += x[i]), (my += y[i]);
  mx /= n, my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const a = x[i] - mx, b = y[i] - my;
    sxy += a * b, sxx += a * a, syy += b * b;
  }
  return sxy / Math.sqrt(sxx * syy);
}

Deno.test("synthetic: default database, default query, planted multi-hop signal", async (t) => {
  await withTemp(async (dir) => {
    const t0 = performance.now();
    const s = await generateSyntheticDb(dir);
    const genSeconds = (performance.now() - t0) / 1000;
    assert.deepEqual(s.rows.users, 3000);
    assert(Math.abs(s.rows.transactions / 60_000 - 1) < 0.02, `${s.rows.transactions}`);
    assert(genSeconds < 10, `generation took ${genSeconds.toFixed(1)} s`);
    const db = await Database.open(dir, await loadSchema(s.schemaPath));
    try {
      const table = await trainingTable(db, DEFAULT_QUERY);

      await t.step("loads; the query gives both classes in every split", () => {
        assert.deepEqual(db.rowCount("transactions"), s.rows.transactions);
        assert.deepEqual(db.rowCount("items"), 500);
        assert.deepEqual(table.task, "binary");
        for (const split of [Split.Train, Split.Val, Split.Test]) {
          let n = 0, pos = 0;
          table.split.forEach((sp, i) => sp === split && (n++, (pos += table.label[i])));
          assert(n > 0 && pos / n > 0.2 && pos / n < 0.85, `split ${split}: ${pos}/${n}`);
        }
      });

      await t.step(
        "the label follows a 2-hop aggregate more than the user's own count",
        async () => {
          // Per (user, anchor) whose last visit was under 25 days before the anchor (where the
          // label is set by that visit): the mean rating of the items of that visit (2 hops,
          // user → transactions → items) against the user's own number of purchases in the last
          // 30 days.
          const rows = Array.from(
            table.entity,
            (e, i) => `(${e}, ${table.anchorTime[i]}, ${table.label[i]})`,
          );
          await db.query(`CREATE TEMP TABLE tt AS SELECT * FROM (VALUES ${rows}) v(u, a, label)`);
          const cols = await db.columns(`
          WITH h AS (SELECT tt.u, tt.a, epoch(x.ts) AS t, i.rating,
                       max(epoch(x.ts)) OVER (PARTITION BY tt.u, tt.a) AS last
                     FROM tt JOIN transactions x ON x.user_id = tt.u AND epoch(x.ts) <= tt.a
                     JOIN items i USING (item_id))
          SELECT any_value(tt.label)::DOUBLE AS label,
                 count(*) FILTER (WHERE h.t > h.a - 30 * 86400)::DOUBLE AS own30,
                 avg(h.rating) FILTER (WHERE h.t > h.last - 3600)::DOUBLE AS visit
          FROM tt JOIN h USING (u, a) WHERE h.last > h.a - 25 * 86400 GROUP BY tt.u, tt.a`);
          const label = cols.label as Float64Array;
          const own = corr(cols.own30 as Float64Array, label);
          const visit = corr(cols.visit as Float64Array, label);
          assert(
            visit > 0.45 && visit > Math.abs(own) + 0.3,
            `corr with the last visit's rating ${visit}, with the own count ${own}`,
          );
        },
      );
    } finally {
      db.close();
    }
  });
});
