import assert from "node:assert/strict";
import { type ColumnStats, guessStype, looksLikeId, MAX_CATEGORIES } from "./stypes.ts";

const stats = (over: Partial<ColumnStats>): ColumnStats => ({
  name: "c",
  type: "VARCHAR",
  rows: 10_000,
  nonNull: 10_000,
  distinct: 10,
  avgLength: 8,
  ...over,
});

Deno.test("guessStype: the rule, case by case", () => {
  assert.equal(guessStype(stats({ type: "DATE" })), "timestamp");
  assert.equal(guessStype(stats({ type: "BOOLEAN" })), "categorical");
  assert.equal(guessStype(stats({ type: "BIGINT", name: "user_id" })), "id");
  assert.equal(guessStype(stats({ type: "BIGINT", distinct: 2 })), "categorical");
  assert.equal(guessStype(stats({ type: "BIGINT", distinct: 3 })), "numerical");
  assert.equal(guessStype(stats({ type: "DOUBLE", distinct: 2 })), "numerical");
  assert.equal(guessStype(stats({ distinct: 2000 })), "text"); // 20%, but past MAX_CATEGORIES
  assert.equal(guessStype(stats({ distinct: 300 })), "categorical");
  assert.equal(guessStype(stats({ distinct: 4000, avgLength: 12 })), "text"); // 40%, many
  assert.equal(guessStype(stats({ distinct: 15, nonNull: 40 })), "categorical"); // few
  assert.equal(guessStype(stats({ distinct: 30, nonNull: 40, avgLength: 60 })), "text");
  assert.equal(
    guessStype(stats({ list: { sep: "|", share: 0.5, tokens: 5, avgTokenLength: 6 } })),
    "multicategorical",
  );
});

Deno.test("guessStype: past MAX_CATEGORIES distinct values a string column is text", () => {
  const rows = 200_000;
  // 10% distinct: categorical by ratio alone, but names of thousands of players are not codes.
  assert.equal(guessStype(stats({ rows, nonNull: rows, distinct: MAX_CATEGORIES })), "categorical");
  assert.equal(guessStype(stats({ rows, nonNull: rows, distinct: MAX_CATEGORIES + 1 })), "text");
  assert.equal(guessStype(stats({ rows, nonNull: rows, distinct: 20_000, avgLength: 9 })), "text");
});

Deno.test("looksLikeId: names that read as identifiers", () => {
  for (const n of ["id", "ID", "user_id", "userId", "UserID", "tourney_id"]) {
    assert.ok(looksLikeId(n), n);
  }
  for (const n of ["idle", "paid", "valid", "grid", "ids"]) assert.ok(!looksLikeId(n), n);
});
