/**
 * Recursive-descent parser of predictive queries:
 *
 * ```text
 * query     := PREDICT target FOR EACH ident '.' ident [WHERE boolExpr]
 * target    := (aggregate | ident '.' ident) [cmpOp literal]
 * aggregate := AGG '(' ident '.' ('*' | ident) [VIA [ident '.'] ident] [WHERE boolExpr]
 *              ',' number ',' number [',' unit] ')'
 * boolExpr  := andExpr (OR andExpr)*
 * andExpr   := notExpr (AND notExpr)*
 * notExpr   := NOT notExpr | '(' boolExpr ')' | atom
 * atom      := aggregate cmpOp literal | ref cmpOp literal | ref IS [NOT] NULL
 *            | ref [NOT] IN '(' literal (',' literal)* ')'
 * literal   := ['-' | '+'] number | 'string' | TRUE | FALSE
 * AGG       := COUNT | SUM | AVG | MIN | MAX | COUNT_DISTINCT | FIRST | LAST | LIST_DISTINCT
 * unit      := DAYS | HOURS | MONTHS (singular accepted)
 * ```
 *
 * Keywords are case-insensitive. `VIA` names the foreign key of the
 * aggregated table to follow to the entity table (needed when there are
 * several, e.g. `COUNT(matches.* VIA winner_id, 0, 90)`); it may be qualified
 * with the aggregated table only. Inside an aggregate's row filter a column
 * may be written without its table (it then belongs to the aggregated table),
 * and aggregates are not allowed there. Errors are `PqlError`s that name the
 * position and what was expected, e.g. `PQL error at 1:23: expected ',' after
 * window start, found 'days'`.
 *
 * @module
 */

import { AGG_NAMES } from "./ast.ts";
import type {
  AggName,
  Aggregate,
  BoolExpr,
  ColumnRef,
  CompareOp,
  Literal,
  Query,
  Target,
  TimeUnit,
  Window,
} from "./ast.ts";
import { PqlError, type Token, tokenize } from "./lexer.ts";

const UNITS: Record<string, TimeUnit> = {
  day: "days",
  days: "days",
  hour: "hours",
  hours: "hours",
  month: "months",
  months: "months",
};

/** Parses a predictive query into its syntax tree; throws `PqlError` on malformed text. */
export function parseQuery(text: string): Query {
  return new Parser(text).query();
}

class Parser {
  private readonly tokens: Token[];
  private i = 0;

  constructor(private readonly text: string) {
    this.tokens = tokenize(text);
  }

  query(): Query {
    this.keyword("PREDICT", "at the start of the query");
    const target = this.target();
    this.keyword("FOR", "after the target");
    this.keyword("EACH", "after FOR");
    const entity = this.ref(false, "after FOR EACH");
    if (entity.column === "*") this.fail(entity.columnPos, "expected the entity's key column");
    let where: BoolExpr | undefined;
    if (this.isKeyword("WHERE")) {
      this.i++;
      where = this.boolExpr(false);
    }
    if (this.peek().kind !== "eof") {
      this.expected(where ? "AND, OR or the end of the query" : "WHERE or the end of the query");
    }
    return { text: this.text, target, entity, where };
  }

  private target(): Target {
    const pos = this.peek().pos;
    const expr = this.isAggregateStart() ? this.aggregate(true) : this.ref(false, "after PREDICT");
    if (expr.kind !== "aggregate" && expr.column === "*") {
      this.fail(expr.columnPos, "'*' is only allowed in COUNT");
    }
    let compare: Target["compare"];
    if (this.peek().kind === "op") {
      const opTok = this.next();
      compare = {
        op: opTok.text as CompareOp,
        value: this.literal("after '" + opTok.text + "'"),
        pos: opTok.pos,
      };
    }
    return { expr, compare, pos };
  }

  private isAggregateStart(): boolean {
    const t = this.peek();
    return t.kind === "ident" && !t.quoted && this.tokens[this.i + 1].kind === "(";
  }

  private aggregate(allowList: boolean): Aggregate {
    const nameTok = this.next();
    const agg = nameTok.text.toUpperCase() as AggName;
    if (!AGG_NAMES.includes(agg)) {
      this.fail(
        nameTok.pos,
        `unknown aggregation '${nameTok.text}'; expected one of ${AGG_NAMES.join(", ")}`,
      );
    }
    if (agg === "LIST_DISTINCT" && !allowList) {
      this.fail(nameTok.pos, "LIST_DISTINCT is only allowed as the target");
    }
    this.expect("(", `after ${agg}`);
    const ref = this.ref(false, `inside ${agg}(`);
    if (ref.column === "*" && agg !== "COUNT") {
      this.fail(ref.columnPos, `'*' is only allowed in COUNT; ${agg} needs a column`);
    }
    let via: ColumnRef | undefined;
    if (this.isKeyword("VIA")) {
      this.i++;
      via = this.via(ref);
    }
    let where: BoolExpr | undefined;
    if (this.isKeyword("WHERE")) {
      this.i++;
      where = this.boolExpr(true);
    }
    this.expect(
      ",",
      where ? "after the row filter" : via ? "after the VIA column" : "after the aggregated column",
    );
    const startTok = this.peek();
    const start = this.signedNumber("as window start");
    this.expect(",", "after window start");
    const end = this.signedNumber("as window end");
    let unit: TimeUnit = "days";
    if (this.peek().kind === ",") {
      this.i++;
      const u = this.peek();
      const found = u.kind === "ident" && !u.quoted ? UNITS[u.text.toLowerCase()] : undefined;
      if (!found) this.expected("a time unit (days, hours or months)");
      this.i++;
      unit = found;
    }
    this.expect(")", `to close ${agg}(`);
    const window: Window = { start, end, unit, pos: startTok.pos };
    return { kind: "aggregate", agg, ref, via, where, window, pos: nameTok.pos };
  }

  /** The column after VIA: `fk` or `T.fk`, `T` the aggregated table of `ref`. */
  private via(ref: ColumnRef): ColumnRef {
    const first = this.peek();
    // An unquoted WHERE right after VIA starts the row filter (the column is missing),
    // unless it is itself followed by what may follow a column named "where".
    const missing = first.kind !== "ident" ||
      (this.isKeyword("WHERE") && this.tokens[this.i + 1].kind !== "." &&
        this.tokens[this.i + 1].kind !== "," && !this.isKeyword("WHERE", 1));
    if (missing) this.expected("a column name after VIA");
    this.i++;
    if (this.peek().kind !== ".") {
      return { kind: "column", column: first.text, pos: first.pos, columnPos: first.pos };
    }
    this.i++;
    const col = this.peek();
    if (col.kind !== "ident") this.expected(`a column name after '${first.text}.'`);
    this.i++;
    if (first.text.toLowerCase() !== ref.table!.toLowerCase()) {
      this.fail(
        first.pos,
        `VIA takes a foreign key of the aggregated table '${ref.table}', ` +
          `found '${first.text}.${col.text}'`,
      );
    }
    return {
      kind: "column",
      table: first.text,
      column: col.text,
      pos: first.pos,
      columnPos: col.pos,
    };
  }

  /** `table.column`, `table.*`, or (when `bare`) just `column`. */
  private ref(bare: boolean, context: string): ColumnRef {
    const first = this.peek();
    if (first.kind !== "ident") this.expected(`a table name ${context}`);
    this.i++;
    if (this.peek().kind !== ".") {
      if (bare) return { kind: "column", column: first.text, pos: first.pos, columnPos: first.pos };
      this.expected(`'.' after table name '${first.text}'`);
    }
    this.i++;
    const col = this.peek();
    if (col.kind === "*") {
      this.i++;
      return { kind: "column", table: first.text, column: "*", pos: first.pos, columnPos: col.pos };
    }
    if (col.kind !== "ident") this.expected(`a column name after '${first.text}.'`);
    this.i++;
    return {
      kind: "column",
      table: first.text,
      column: col.text,
      pos: first.pos,
      columnPos: col.pos,
    };
  }

  private boolExpr(rowLevel: boolean): BoolExpr {
    let left = this.andExpr(rowLevel);
    while (this.isKeyword("OR")) {
      const pos = this.next().pos;
      left = { kind: "or", left, right: this.andExpr(rowLevel), pos };
    }
    return left;
  }

  private andExpr(rowLevel: boolean): BoolExpr {
    let left = this.notExpr(rowLevel);
    while (this.isKeyword("AND")) {
      const pos = this.next().pos;
      left = { kind: "and", left, right: this.notExpr(rowLevel), pos };
    }
    return left;
  }

  private notExpr(rowLevel: boolean): BoolExpr {
    if (this.isKeyword("NOT")) {
      const pos = this.next().pos;
      return { kind: "not", expr: this.notExpr(rowLevel), pos };
    }
    if (this.peek().kind === "(") {
      this.i++;
      const e = this.boolExpr(rowLevel);
      this.expect(")", "to close '('");
      return e;
    }
    return this.atom(rowLevel);
  }

  private atom(rowLevel: boolean): BoolExpr {
    const pos = this.peek().pos;
    if (this.isAggregateStart()) {
      if (rowLevel) this.fail(pos, "aggregations are not allowed in a row filter");
      const agg = this.aggregate(false);
      if (this.peek().kind !== "op") this.expected(`a comparison after ${agg.agg}(...)`);
      const op = this.next().text as CompareOp;
      return { kind: "compare", left: agg, op, right: this.literal(`after '${op}'`), pos };
    }
    if (this.peek().kind !== "ident") this.expected("a condition");
    const ref = this.ref(rowLevel, "in the condition");
    if (ref.column === "*") this.fail(ref.columnPos, "'*' is only allowed in COUNT");
    const t = this.peek();
    if (t.kind === "op") {
      this.i++;
      const op = t.text as CompareOp;
      return { kind: "compare", left: ref, op, right: this.literal(`after '${op}'`), pos };
    }
    if (this.isKeyword("IS")) {
      this.i++;
      let negated = false;
      if (this.isKeyword("NOT")) {
        this.i++;
        negated = true;
      }
      if (!this.isKeyword("NULL")) this.expected(negated ? "NULL after IS NOT" : "NULL after IS");
      this.i++;
      return { kind: "isnull", ref, negated, pos };
    }
    let notIn = false;
    if (this.isKeyword("NOT") && this.isKeyword("IN", 1)) {
      this.i++;
      notIn = true;
    }
    if (this.isKeyword("IN")) {
      const inPos = this.next().pos;
      this.expect("(", "after IN");
      const values = [this.literal("in the IN list")];
      while (this.peek().kind === ",") {
        this.i++;
        values.push(this.literal("in the IN list"));
      }
      this.expect(")", "to close the IN list");
      const e: BoolExpr = { kind: "in", ref, values, pos };
      return notIn ? { kind: "not", expr: e, pos: inPos } : e;
    }
    return this.expected("a comparison operator, IS or IN after the column");
  }

  private literal(context: string): Literal {
    const t = this.peek();
    if (t.kind === "string") {
      this.i++;
      return { kind: "string", value: t.text, pos: t.pos };
    }
    if (t.kind === "ident" && !t.quoted) {
      const up = t.text.toUpperCase();
      if (up === "TRUE" || up === "FALSE") {
        this.i++;
        return { kind: "boolean", value: up === "TRUE", pos: t.pos };
      }
      if (up === "NULL") this.fail(t.pos, "cannot compare with NULL; use IS NULL or IS NOT NULL");
    }
    if (t.kind === "number" || t.kind === "-" || t.kind === "+") {
      return { kind: "number", value: this.signedNumber(context), pos: t.pos };
    }
    return this.expected(`a constant ${context}`);
  }

  private signedNumber(context: string): number {
    let sign = 1;
    const t = this.peek();
    if (t.kind === "-" || t.kind === "+") {
      sign = t.kind === "-" ? -1 : 1;
      this.i++;
    }
    const n = this.peek();
    if (n.kind !== "number") this.expected(`a number ${context}`);
    this.i++;
    return sign * Number(n.text);
  }

  private peek(): Token {
    return this.tokens[this.i];
  }

  private next(): Token {
    return this.tokens[this.i++];
  }

  private isKeyword(word: string, ahead = 0): boolean {
    const t = this.tokens[this.i + ahead];
    return t !== undefined && t.kind === "ident" && !t.quoted && t.text.toUpperCase() === word;
  }

  private keyword(word: string, context: string): void {
    if (!this.isKeyword(word)) this.expected(`${word} ${context}`);
    this.i++;
  }

  private expect(kind: Token["kind"], context: string): void {
    if (this.peek().kind !== kind) this.expected(`'${kind}' ${context}`);
    this.i++;
  }

  private expected(what: string): never {
    const t = this.peek();
    const found = t.kind === "eof"
      ? "the end of the query"
      : t.kind === "string"
      ? `'${t.text}' (a string)`
      : `'${t.quoted ? `"${t.text}"` : t.text}'`;
    return this.fail(t.pos, `expected ${what}, found ${found}`);
  }

  private fail(pos: number, detail: string): never {
    throw new PqlError(this.text, pos, detail);
  }
}
