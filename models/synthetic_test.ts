import assert from "node:assert/strict";
import { Database } from "../store/database.ts";
import { loadSchema, parseSchema } from "../store/schema.ts";
import { trainingTable } from "../store/training_table.ts";
import { Split } from "../store/types.ts";
import {
  DEFAULT_QUERY,
  generateSyntheticDb,
  renewalProbability,
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
    const opts of [{ users: 0 }, { seed: 0.5 }, { start: "soon" }, { mechanism: { cycles: [] } }]
  ) {
    let message = "";
    try {
      await generateSyntheticDb("/nonexistent/never", opts);
    } catch (e) {
      message = (e as Error).message;
    }
    assert(message !== "" && !message.includes("nonexistent"), message);
  }
  assert(renewalProbability(-2) < 0.1 && renewalProbability(2) > 0.99);
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
          // Per (user, anchor): the user's own purchases in the last 30 days, and the number of
          // their items that fall due in the window (2 hops, user → transactions → items), each
          // item's cycle estimated from every user's re-purchase gaps in its category before the
          // validation cutoff (3 hops).
          const rows = Array.from(
            table.entity,
            (e, i) => `(${e}, ${table.anchorTime[i]}, ${table.label[i]})`,
          );
          await db.query(`CREATE TEMP TABLE tt AS SELECT * FROM (VALUES ${rows}) v(u, a, label)`);
          const cols = await db.columns(`
          WITH tx AS (SELECT user_id, item_id, epoch(ts) AS t FROM transactions),
          gaps AS (
            SELECT i.category, median(g) AS gap
            FROM (SELECT item_id, t - lag(t) OVER (PARTITION BY user_id, item_id ORDER BY t)
                    AS g FROM tx WHERE t <= ${table.valCutoff}) x
            JOIN items i USING (item_id) WHERE g IS NOT NULL GROUP BY 1),
          last AS (SELECT tt.u, tt.a, tx.item_id, max(tx.t) AS l, count(*) FILTER
                     (WHERE tx.t > tt.a - 30 * 86400) AS c
                   FROM tt JOIN tx ON tx.user_id = tt.u AND tx.t <= tt.a GROUP BY 1, 2, 3),
          agg AS (SELECT u, a, sum(c)::DOUBLE AS own30, count(*) FILTER
                    (WHERE l + 0.8 * gap <= a + 30 * 86400 AND l + 1.25 * gap > a)::DOUBLE AS due
                  FROM last JOIN items i USING (item_id) JOIN gaps USING (category) GROUP BY 1, 2)
          SELECT tt.label::DOUBLE AS label, coalesce(own30, 0) AS own30, coalesce(due, 0) AS due
          FROM tt LEFT JOIN agg USING (u, a)`);
          const label = cols.label as Float64Array;
          const own = corr(cols.own30 as Float64Array, label);
          const due = corr(cols.due as Float64Array, label);
          assert(
            due > 0.3 && due > own + 0.15,
            `corr with due items ${due}, with own count ${own}`,
          );
        },
      );
    } finally {
      db.close();
    }
  });
});
