import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { parseQuery } from "./parser.ts";
import { PqlError, tokenize } from "./lexer.ts";
import type { Aggregate, BoolExpr } from "./ast.ts";

/** A binary boolean node. */
type Bin = { kind: string; left: BoolExpr; right: BoolExpr };

/** Strips positions so trees compare by shape. */
function shape(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(shape);
  if (x && typeof x === "object") {
    return Object.fromEntries(
      Object.entries(x).filter(([k, v]) => k !== "pos" && k !== "columnPos" && v !== undefined)
        .map(([k, v]) => [k, shape(v)]),
    );
  }
  return x;
}

Deno.test("parses an aggregate target with a row filter, unit and comparison", () => {
  const q = parseQuery(
    "predict count(T.* where T.STATUS != 1 and not (status = 'x'), 0, 30, Hours) > 0 " +
      "FOR EACH users.user_id",
  );
  assertEquals(shape(q.target), {
    expr: {
      kind: "aggregate",
      agg: "COUNT",
      ref: { kind: "column", table: "T", column: "*" },
      where: {
        kind: "and",
        left: {
          kind: "compare",
          left: { kind: "column", table: "T", column: "STATUS" },
          op: "!=",
          right: { kind: "number", value: 1 },
        },
        right: {
          kind: "not",
          expr: {
            kind: "compare",
            left: { kind: "column", column: "status" },
            op: "=",
            right: { kind: "string", value: "x" },
          },
        },
      },
      window: { start: 0, end: 30, unit: "hours" },
    },
    compare: { op: ">", value: { kind: "number", value: 0 } },
  });
  assertEquals(shape(q.entity), { kind: "column", table: "users", column: "user_id" });
});

Deno.test("parses every aggregation, default unit days, signed and decimal bounds", () => {
  for (
    const agg of ["SUM", "AVG", "MIN", "MAX", "COUNT_DISTINCT", "FIRST", "LAST", "LIST_DISTINCT"]
  ) {
    const q = parseQuery(`PREDICT ${agg.toLowerCase()}(t.c, +1, 2.5) FOR EACH u.id`);
    const a = q.target.expr as Aggregate;
    assertEquals([a.agg, a.window.start, a.window.end, a.window.unit], [agg, 1, 2.5, "days"]);
  }
  const m = parseQuery("PREDICT COUNT(t.*, 0, 1e1, month) FOR EACH u.id").target.expr as Aggregate;
  assertEquals([m.window.end, m.window.unit], [10, "months"]);
});

Deno.test("parses a static target and an entity filter with precedence NOT > AND > OR", () => {
  const q = parseQuery(
    "PREDICT users.age <= 3 FOR EACH users.id WHERE COUNT(t.*, -30, 0) > 0 OR " +
      "NOT users.x IS NULL AND users.y NOT IN ('a', -2) AND \"odd name\".c IS NOT NULL -- done",
  );
  assertEquals(shape(q.target), {
    expr: { kind: "column", table: "users", column: "age" },
    compare: { op: "<=", value: { kind: "number", value: 3 } },
  });
  const w = q.where as Bin;
  assertEquals(w.kind, "or");
  assertEquals((w.left as { left: Aggregate }).left.window.start, -30);
  const and = w.right as Bin;
  assertEquals(and.kind, "and");
  assertEquals(shape(and.right), {
    kind: "isnull",
    ref: { kind: "column", table: "odd name", column: "c" },
    negated: true,
  });
  assertEquals(shape((and.left as Bin).right), {
    kind: "not",
    expr: {
      kind: "in",
      ref: { kind: "column", table: "users", column: "y" },
      values: [{ kind: "string", value: "a" }, { kind: "number", value: -2 }],
    },
  });
  assertEquals(
    shape(parseQuery("PREDICT u.flag = TRUE FOR EACH u.id").target.compare?.value),
    { kind: "boolean", value: true },
  );
});

Deno.test("VIA names the foreign key: bare or qualified, before the row filter, in filters too", () => {
  const bare = parseQuery("PREDICT COUNT(matches.* VIA winner_id, 0, 90) > 0 FOR EACH players.id");
  const a = bare.target.expr as Aggregate;
  assertEquals(a.via, { kind: "column", column: "winner_id", pos: 28, columnPos: 28 });
  const q = parseQuery(
    "PREDICT sum(matches.minutes via MATCHES.loser_id WHERE matches.surface = 'Clay', 0, 30) " +
      "FOR EACH players.id WHERE COUNT(matches.* Via winner_id, -365, 0) > 0",
  );
  const t = q.target.expr as Aggregate;
  assertEquals(t.via, {
    kind: "column",
    table: "MATCHES",
    column: "loser_id",
    pos: 32,
    columnPos: 40,
  });
  assertEquals(shape(t.where), {
    kind: "compare",
    left: { kind: "column", table: "matches", column: "surface" },
    op: "=",
    right: { kind: "string", value: "Clay" },
  });
  const f = (q.where as { left: Aggregate }).left;
  assertEquals(shape(f.via), { kind: "column", column: "winner_id" });
  // VIA is a keyword only right after the aggregated column: columns may be called via or where.
  const odd = parseQuery("PREDICT COUNT(t.via VIA where WHERE via = 1, 0, 1) FOR EACH u.id")
    .target.expr as Aggregate;
  assertEquals([odd.ref.column, odd.via?.column], ["via", "where"]);
  assertEquals(shape(odd.where), {
    kind: "compare",
    left: { kind: "column", column: "via" },
    op: "=",
    right: { kind: "number", value: 1 },
  });
  // Without VIA the field is absent.
  assertEquals(
    (parseQuery("PREDICT COUNT(t.*, 0, 1) FOR EACH u.id").target.expr as Aggregate).via,
    undefined,
  );
});

Deno.test("keywords are matched by text only where expected: a column may be called 'first'", () => {
  const q = parseQuery("PREDICT FIRST(t.first, 0, 1) FOR EACH count.id");
  assertEquals((q.target.expr as Aggregate).ref.column, "first");
  assertEquals(q.entity.table, "count");
});

Deno.test("lexer: strings and quoted identifiers escape their quote; <> reads as !=", () => {
  const t = tokenize(`'it''s' "a""b" <> 1.5`);
  assertEquals(t.map((x) => [x.kind, x.text]), [
    ["string", "it's"],
    ["ident", 'a"b'],
    ["op", "!="],
    ["number", "1.5"],
    ["eof", ""],
  ]);
});

/** Parses `text` expecting a PqlError; returns its message. */
function error(text: string): string {
  try {
    parseQuery(text);
  } catch (e) {
    assert(e instanceof PqlError, `not a PqlError: ${e}`);
    return e.message;
  }
  throw new Error(`parsed without error: ${text}`);
}

Deno.test("parse errors name the position, what was expected and what was found, with a caret", () => {
  const msg = error("PREDICT COUNT(T.*, 0 days) FOR EACH U.ID");
  assertEquals(
    msg,
    "PQL error at 1:22: expected ',' after window start, found 'days'\n" +
      "  PREDICT COUNT(T.*, 0 days) FOR EACH U.ID\n" +
      "                       ^",
  );
  const multi = error("PREDICT COUNT(T.*, 0, 1)\nFOR EACH U.ID\nWHERE");
  assert(
    multi.startsWith(
      "PQL error at 3:6: expected a condition, found the end of the query\n  WHERE\n       ^",
    ),
    multi,
  );
  throws(
    () => parseQuery("PREDICT"),
    (e: unknown) => e instanceof PqlError && e.line === 1 && e.column === 8,
  );
});

Deno.test("every parse error has a message", () => {
  const cases: [string, string][] = [
    ["PREDICT COUNT(t.*, 0, 1e+) FOR EACH u.id", "1:26: expected digits in exponent"],
    ["PREDICT COUNT(t.*, 0, 30days) FOR EACH u.id", "1:25: unexpected 'd' after number"],
    ["PREDICT u.a = 'x FOR EACH u.id", "1:15: unterminated string"],
    ['PREDICT "u.a FOR EACH u.id', "1:9: unterminated quoted identifier"],
    ["PREDICT u.a # FOR EACH u.id", "1:13: unexpected character '#'"],
    ["SELECT u.a FOR EACH u.id", "1:1: expected PREDICT at the start of the query, found 'SELECT'"],
    ["PREDICT u.a EACH u.id", "1:13: expected FOR after the target, found 'EACH'"],
    ["PREDICT u.a FOR u.id", "1:17: expected EACH after FOR, found 'u'"],
    ["PREDICT u.a FOR EACH u.*", "1:24: expected the entity's key column"],
    ["PREDICT u.a FOR EACH u.id u", "1:27: expected WHERE or the end of the query, found 'u'"],
    ["PREDICT u.a FOR EACH u.id WHERE u.b = 1 u", "1:41: expected AND, OR or the end of the query"],
    ["PREDICT u.* FOR EACH u.id", "1:11: '*' is only allowed in COUNT"],
    [
      "PREDICT FOO(t.*, 0, 1) FOR EACH u.id",
      "1:9: unknown aggregation 'FOO'; expected one of COUNT,",
    ],
    [
      "PREDICT u.a FOR EACH u.id WHERE LIST_DISTINCT(t.x, -1, 0) = 1",
      "1:33: LIST_DISTINCT is only allowed as the target",
    ],
    [
      "PREDICT SUM(t.*, 0, 1) FOR EACH u.id",
      "1:15: '*' is only allowed in COUNT; SUM needs a column",
    ],
    [
      "PREDICT COUNT(t.* 0, 1) FOR EACH u.id",
      "1:19: expected ',' after the aggregated column, found '0'",
    ],
    [
      "PREDICT COUNT(t.* WHERE x = 1 0, 1) FOR EACH u.id",
      "1:31: expected ',' after the row filter, found '0'",
    ],
    [
      "PREDICT COUNT(t.*, a, 1) FOR EACH u.id",
      "1:20: expected a number as window start, found 'a'",
    ],
    ["PREDICT COUNT(t.*, 0, ) FOR EACH u.id", "1:23: expected a number as window end, found ')'"],
    [
      "PREDICT COUNT(t.*, 0, 1, weeks) FOR EACH u.id",
      "1:26: expected a time unit (days, hours or months), found 'weeks'",
    ],
    ["PREDICT COUNT(t.*, 0, 1 FOR EACH u.id", "1:25: expected ')' to close COUNT(, found 'FOR'"],
    [
      "PREDICT COUNT(t.* VIA, 0, 1) FOR EACH u.id",
      "1:22: expected a column name after VIA, found ','",
    ],
    [
      "PREDICT COUNT(t.* VIA WHERE t.x = 1, 0, 1) FOR EACH u.id",
      "1:23: expected a column name after VIA, found 'WHERE'",
    ],
    [
      "PREDICT COUNT(t.* VIA 'a', 0, 1) FOR EACH u.id",
      "1:23: expected a column name after VIA, found 'a' (a string)",
    ],
    [
      "PREDICT COUNT(t.* VIA u.fk, 0, 1) FOR EACH u.id",
      "1:23: VIA takes a foreign key of the aggregated table 't', found 'u.fk'",
    ],
    [
      "PREDICT COUNT(t.* VIA t.*, 0, 1) FOR EACH u.id",
      "1:25: expected a column name after 't.', found '*'",
    ],
    [
      "PREDICT COUNT(t.* VIA fk 0, 1) FOR EACH u.id",
      "1:26: expected ',' after the VIA column, found '0'",
    ],
    [
      "PREDICT COUNT(t.* WHERE x = 1 VIA fk, 0, 1) FOR EACH u.id",
      "1:31: expected ',' after the row filter, found 'VIA'",
    ],
    ["PREDICT COUNT(, 0, 1) FOR EACH u.id", "1:15: expected a table name inside COUNT(, found ','"],
    ["PREDICT age FOR EACH u.id", "1:13: expected '.' after table name 'age', found 'FOR'"],
    ["PREDICT u.) FOR EACH u.id", "1:11: expected a column name after 'u.', found ')'"],
    ["PREDICT u.a FOR EACH u.id WHERE (u.b = 1", "1:41: expected ')' to close '(', found the end"],
    [
      "PREDICT COUNT(t.* WHERE COUNT(t.*, -1, 0) > 1, 0, 1) FOR EACH u.id",
      "1:25: aggregations are not allowed in a row filter",
    ],
    [
      "PREDICT u.a FOR EACH u.id WHERE COUNT(t.*, -1, 0)",
      "1:50: expected a comparison after COUNT(...), found the end of the query",
    ],
    ["PREDICT u.a FOR EACH u.id WHERE 5 > 3", "1:33: expected a condition, found '5'"],
    ["PREDICT u.a FOR EACH u.id WHERE u.* = 1", "1:35: '*' is only allowed in COUNT"],
    ["PREDICT u.a FOR EACH u.id WHERE u.b IS 1", "1:40: expected NULL after IS, found '1'"],
    ["PREDICT u.a FOR EACH u.id WHERE u.b IS NOT 1", "1:44: expected NULL after IS NOT, found '1'"],
    ["PREDICT u.a FOR EACH u.id WHERE u.b IN 1", "1:40: expected '(' after IN, found '1'"],
    [
      "PREDICT u.a FOR EACH u.id WHERE u.b IN (1 2)",
      "1:43: expected ')' to close the IN list, found '2'",
    ],
    [
      "PREDICT u.a FOR EACH u.id WHERE u.b LIKE 'x'",
      "1:37: expected a comparison operator, IS or IN after the column, found 'LIKE'",
    ],
    [
      "PREDICT u.a = NULL FOR EACH u.id",
      "1:15: cannot compare with NULL; use IS NULL or IS NOT NULL",
    ],
    ["PREDICT u.a > FOR EACH u.id", "1:15: expected a constant after '>', found 'FOR'"],
    ["PREDICT u.a > -'x' FOR EACH u.id", "1:16: expected a number after '>', found 'x' (a string)"],
    [
      "PREDICT u.a FOR EACH u.id WHERE u.b IN (,)",
      "1:41: expected a constant in the IN list, found ','",
    ],
  ];
  const bad: string[] = [];
  for (const [text, want] of cases) {
    const msg = error(text);
    if (!msg.startsWith(`PQL error at ${want}`)) {
      bad.push(`${text}\n  got:  ${msg.split("\n")[0]}\n  want: ${want}`);
    }
  }
  assertEquals(bad, []);
});
