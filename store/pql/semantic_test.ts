import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { Schema } from "../types.ts";
import { resolveQuery } from "./semantic.ts";
import { PqlError } from "./lexer.ts";
import { SHOP_SCHEMA, TRANSFERS_TABLE } from "./test_db.ts";

/** The shop plus tables that exercise the errors. */
const SCHEMA: Schema = {
  tables: [
    ...SHOP_SCHEMA.tables,
    {
      name: "logs", // static child of users
      file: "logs.csv",
      foreignKeys: [{ column: "user", table: "users" }],
      columns: [{ name: "user", stype: "id" }, { name: "msg", stype: "text" }],
    },
    TRANSFERS_TABLE, // two foreign keys to users
    {
      name: "reviews", // a foreign key to a table without a primary key
      file: "reviews.csv",
      foreignKeys: [{ column: "user", table: "users" }, { column: "tag", table: "tags" }],
      timeColumn: "at",
      columns: [
        { name: "user", stype: "id" },
        { name: "tag", stype: "id" },
        { name: "at", stype: "timestamp" },
        { name: "body", stype: "text" },
      ],
    },
    { name: "tags", file: "tags.csv", foreignKeys: [], columns: [{ name: "t", stype: "id" }] },
  ],
};

const task = (q: string) => resolveQuery(q, SCHEMA).task;

Deno.test("the task type follows from the query", () => {
  assertEquals(task("PREDICT COUNT(orders.*, 0, 30) FOR EACH users.id"), "regression");
  assertEquals(task("PREDICT COUNT(orders.*, 0, 30) = 0 FOR EACH users.id"), "binary");
  assertEquals(task("PREDICT SUM(orders.amount, 0, 7) > 10 FOR EACH users.id"), "binary");
  assertEquals(task("PREDICT COUNT_DISTINCT(orders.status, 0, 7) FOR EACH users.id"), "regression");
  assertEquals(task("PREDICT FIRST(orders.amount, 0, 7) FOR EACH users.id"), "regression");
  assertEquals(task("PREDICT LAST(orders.status, 0, 7) FOR EACH users.id"), "multiclass");
  assertEquals(task("PREDICT LAST(orders.status, 0, 7) = 'a' FOR EACH users.id"), "binary");
  assertEquals(task("PREDICT LIST_DISTINCT(orders.item, 0, 7) FOR EACH users.id"), "link");
  assertEquals(task("PREDICT users.age FOR EACH users.id"), "regression");
  assertEquals(task("PREDICT users.country FOR EACH users.id"), "multiclass");
  assertEquals(task("PREDICT users.age > 30 FOR EACH users.id"), "binary");
});

Deno.test("names resolve exactly or case-insensitively; the FK path and link target are found", () => {
  const q = resolveQuery(
    "PREDICT list_distinct(ORDERS.ITEM WHERE Status = 'a', 0, 7) FOR EACH Users.ID " +
      "WHERE count(VISITS.*, -7, 0) > 0",
    SCHEMA,
  );
  assertEquals(q.entity.table.name, "users");
  assertEquals(q.entity.key, "id");
  const [target, filter] = q.aggregates;
  assertEquals([target.table.name, target.fk, target.timeColumn, target.column?.name], [
    "orders",
    "user",
    "ts",
    "item",
  ]);
  assertEquals([target.link?.table.name, target.link?.key], ["items", "iid"]);
  assertEquals([filter.table.name, filter.fk, filter.id], ["visits", "user", 1]);
});

Deno.test("VIA picks the foreign key to follow, bare or qualified, in targets and filters", () => {
  const q = resolveQuery(
    "PREDICT LIST_DISTINCT(transfers.dst via Transfers.SRC WHERE kind = 'a', 0, 7) " +
      "FOR EACH users.id WHERE COUNT(transfers.* VIA dst, -7, 0) > 0 AND " +
      "COUNT(orders.* VIA user, -7, 0) > 0",
    SCHEMA,
  );
  assertEquals(q.task, "link");
  assertEquals(
    q.aggregates.map((g) => [g.table.name, g.fk]),
    [["transfers", "src"], ["transfers", "dst"], ["orders", "user"]],
  );
  assertEquals(q.aggregates[0].link?.table.name, "users");
  assert(q.aggregates[0].where, "the row filter after VIA is kept");
  // Without VIA, a single foreign key is followed as before.
  assertEquals(
    resolveQuery("PREDICT COUNT(orders.*, 0, 7) FOR EACH users.id", SCHEMA)
      .aggregates[0].fk,
    "user",
  );
});

Deno.test("comparison modes: numbers with numerical columns, text or numbers with the others", () => {
  const q = resolveQuery(
    "PREDICT COUNT(orders.* WHERE code = '2' OR code < 3 OR amount = TRUE, 0, 1) FOR EACH users.id",
    SCHEMA,
  );
  const modes: string[] = [];
  const walk = (c: unknown): void => {
    const n = c as {
      kind: string;
      left?: unknown;
      right?: unknown;
      mode?: string;
      value?: unknown;
    };
    if (n.kind === "compare") modes.push(`${n.mode}:${n.value}`);
    else if (n.kind === "or") [n.left, n.right].forEach(walk);
  };
  walk(q.aggregates[0].where);
  assertEquals(modes, ["text:2", "number:3", "number:1"]);
});

/** Resolves `text` expecting a PqlError; returns its message's first line. */
function error(text: string): string {
  try {
    resolveQuery(text, SCHEMA);
  } catch (e) {
    assert(e instanceof PqlError, `not a PqlError: ${e}`);
    return e.message.split("\n")[0];
  }
  throw new Error(`resolved without error: ${text}`);
}

Deno.test("every semantic error has a message", () => {
  const E = "FOR EACH users.id";
  const cases: [string, string][] = [
    [
      "PREDICT users.age FOR EACH user.id",
      "1:28: unknown table 'user'; tables: users, orders, items, visits, logs, transfers, " +
      'reviews, tags (did you mean "users"?)',
    ],
    [
      "PREDICT users.age FOR EACH users.idd",
      "1:34: unknown column 'idd' in table 'users'; columns: id, signup, age, country " +
      '(did you mean "id"?)',
    ],
    ["PREDICT logs.msg FOR EACH logs.user", "1:27: entity table 'logs' has no primary key"],
    [
      "PREDICT users.age FOR EACH users.age",
      "1:34: 'users.age' is not the primary key of 'users' (its primary key is 'id')",
    ],
    [
      `PREDICT items.price ${E}`,
      "1:9: a static target must be a column of the entity table 'users', found 'items.price'",
    ],
    [
      "PREDICT users.signup FOR EACH users.id",
      "1:15: a static target needs a numerical or categorical column; 'users.signup' is timestamp",
    ],
    [
      "PREDICT LAST(orders.oid, 0, 1) FOR EACH users.id",
      "1:21: LAST needs a numerical or categorical column; 'orders.oid' is id",
    ],
    [
      `PREDICT LIST_DISTINCT(orders.item, 0, 1) > 0 ${E}`,
      "1:42: LIST_DISTINCT cannot be compared with a constant",
    ],
    [
      `PREDICT COUNT(orders.*, 5, 5) ${E}`,
      "1:25: window start (5) must be less than window end (5)",
    ],
    [`PREDICT COUNT(orders.*, 0, 1.5, months) ${E}`, "1:25: month windows need whole numbers"],
    [
      `PREDICT COUNT(orders.*, -7, 1) ${E}`,
      "1:25: a target window must lie in the future (start >= 0), found start -7",
    ],
    [
      `PREDICT users.age ${E} WHERE COUNT(orders.*, -7, 1) > 0`,
      "1:59: a filter window must lie in the past (end <= 0), found end 1",
    ],
    [
      `PREDICT COUNT(logs.*, 0, 7) ${E}`,
      "1:15: COUNT takes a window over static table 'logs' (it has no time column)",
    ],
    [
      "PREDICT COUNT(visits.*, 0, 7) FOR EACH items.iid",
      "1:15: table 'visits' has no foreign key to entity table 'items'; aggregates need a table " +
      "that references it directly (tables that do: orders)",
    ],
    [
      `PREDICT COUNT(transfers.*, 0, 7) ${E}`,
      "1:15: table 'transfers' has several foreign keys to 'users' (src, dst); which one to " +
      "follow is ambiguous: write COUNT(transfers.* VIA src, ...) or VIA dst",
    ],
    [
      `PREDICT users.age ${E} WHERE SUM(transfers.amount WHERE kind = 'a', -7, 0) > 1`,
      "1:47: table 'transfers' has several foreign keys to 'users' (src, dst); which one to " +
      "follow is ambiguous: write SUM(transfers.amount VIA src, ...) or VIA dst",
    ],
    [
      `PREDICT COUNT(transfers.* VIA amount, 0, 7) ${E}`,
      "1:31: 'transfers.amount' is not a foreign key; VIA takes a foreign key of 'transfers' " +
      "to entity table 'users': src, dst",
    ],
    [
      `PREDICT COUNT(orders.* VIA orders.item, 0, 7) ${E}`,
      "1:35: 'orders.item' is a foreign key to 'items', not to 'users'; VIA takes a foreign key " +
      "of 'orders' to entity table 'users': user",
    ],
    [
      `PREDICT COUNT(transfers.* VIA sr, 0, 7) ${E}`,
      "1:31: unknown column 'sr' in table 'transfers'; VIA takes a foreign key of 'transfers' " +
      "to entity table 'users': src, dst (did you mean \"src\"?)",
    ],
    [
      `PREDICT COUNT(transfers.* VIA src, 0, 7) FOR EACH items.iid`,
      "1:15: table 'transfers' has no foreign key to entity table 'items'; aggregates need a " +
      "table that references it directly (tables that do: orders)",
    ],
    [
      `PREDICT SUM(orders.status, 0, 7) ${E}`,
      "1:20: SUM needs a numerical column; 'orders.status' is categorical",
    ],
    [
      `PREDICT AVG(reviews.body, 0, 7) ${E}`,
      "1:21: AVG needs a numerical column; 'reviews.body' is text",
    ],
    [
      `PREDICT COUNT(orders.* WHERE amount > 0, 0, 7) > 0 ${E} WHERE MIN(orders.ts, -7, 0) > 0`,
      "1:87: MIN needs a numerical column; 'orders.ts' is timestamp",
    ],
    [
      `PREDICT FIRST(orders.ts, 0, 7) ${E}`,
      "1:22: FIRST of timestamp column 'orders.ts' is not supported",
    ],
    [
      `PREDICT LIST_DISTINCT(orders.status, 0, 7) ${E}`,
      "1:30: LIST_DISTINCT needs a foreign key column; 'orders.status' is not one " +
      "(foreign keys of 'orders': user, item)",
    ],
    [
      `PREDICT LIST_DISTINCT(reviews.tag, 0, 7) ${E}`,
      "1:31: LIST_DISTINCT target table 'tags' is missing or has no primary key",
    ],
    [
      `PREDICT COUNT(orders.* WHERE visits.dur > 1, 0, 7) ${E}`,
      "1:30: the row filter of an aggregate over 'orders' can only use its columns, " +
      "found 'visits.dur'",
    ],
    [
      `PREDICT users.age ${E} WHERE orders.amount > 1`,
      "1:43: the entity filter can only use columns of 'users' and aggregates, found 'orders.amount'",
    ],
    [
      `PREDICT users.age ${E} WHERE users.signup > 0`,
      "1:49: comparisons with timestamp column 'signup' are not supported",
    ],
    [`PREDICT users.age > 'x' ${E}`, "1:21: cannot compare numerical target with a string"],
    [
      `PREDICT COUNT(orders.* WHERE amount IN (1, 'a'), 0, 7) ${E}`,
      "1:44: cannot compare numerical 'amount' with a string",
    ],
    [
      `PREDICT COUNT(orders.*, 0, 7) ${E} WHERE SUM(orders.amount, -7, 0) = 'x'`,
      "1:83: cannot compare numerical SUM(...) with a string",
    ],
  ];
  const bad: string[] = [];
  for (const [text, want] of cases) {
    const msg = error(text);
    if (msg !== `PQL error at ${want}`) {
      bad.push(`${text}\n  got:  ${msg}\n  want: PQL error at ${want}`);
    }
  }
  assertEquals(bad, []);
});
