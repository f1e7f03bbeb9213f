/**
 * Tokens of the predictive query language (PQL) and the error type shared by
 * the lexer, the parser and the semantic checks.
 *
 * Identifiers are letters, digits and `_` (not starting with a digit), or any
 * text in double quotes (`"odd name"`, `""` for a quote). Keywords are not
 * reserved by the lexer: the parser recognises them by their text, case
 * insensitively, where the grammar expects them, so a column may be called
 * `first` or `count`. Strings are in single quotes (`''` for a quote).
 *
 * @module
 */

/** Kinds of token. */
export type TokenKind =
  | "ident"
  | "number"
  | "string"
  | "("
  | ")"
  | ","
  | "."
  | "*"
  | "-"
  | "+"
  | "op"
  | "eof";

/** One token with its position (offset into the query text). */
export interface Token {
  /** Token kind. */
  kind: TokenKind;
  /** Value: identifier name (unquoted), number text, string contents, or operator. */
  text: string;
  /** Offset of the first character in the query text. */
  pos: number;
  /** Whether an identifier was written in double quotes (never a keyword then). */
  quoted?: boolean;
}

/** Line (1-based) and column (1-based) of an offset. */
export function lineColumn(text: string, pos: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < pos && i < text.length; i++) {
    if (text[i] === "\n") {
      line++;
      start = i + 1;
    }
  }
  return { line, column: pos - start + 1 };
}

/**
 * A parse or semantic error in a predictive query. The message reads
 * `PQL error at LINE:COL: WHAT`, then the offending line and a caret under the
 * position.
 */
export class PqlError extends Error {
  /** 1-based line of the error. */
  readonly line: number;
  /** 1-based column of the error. */
  readonly column: number;
  /** Offset into the query text. */
  readonly pos: number;
  /** The bare description, without position or caret line. */
  readonly detail: string;

  /** Builds the error for `detail` at offset `pos` of `text`. */
  constructor(text: string, pos: number, detail: string) {
    const { line, column } = lineColumn(text, pos);
    const lineText = text.split("\n")[line - 1] ?? "";
    super(
      `PQL error at ${line}:${column}: ${detail}\n  ${lineText}\n  ${" ".repeat(column - 1)}^`,
    );
    this.name = "PqlError";
    this.line = line;
    this.column = column;
    this.pos = pos;
    this.detail = detail;
  }
}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;
const DIGIT = /[0-9]/;

/** Splits query text into tokens; the last token is `eof`. Throws `PqlError` on bad characters. */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    if (c === "-" && text[i + 1] === "-") { // comment to end of line
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    const pos = i;
    if (IDENT_START.test(c)) {
      while (i < text.length && IDENT_PART.test(text[i])) i++;
      tokens.push({ kind: "ident", text: text.slice(pos, i), pos });
      continue;
    }
    if (DIGIT.test(c) || (c === "." && DIGIT.test(text[i + 1] ?? ""))) {
      while (i < text.length && DIGIT.test(text[i])) i++;
      if (text[i] === "." && DIGIT.test(text[i + 1] ?? "")) {
        i++;
        while (i < text.length && DIGIT.test(text[i])) i++;
      }
      if ((text[i] === "e" || text[i] === "E") && /[0-9+-]/.test(text[i + 1] ?? "")) {
        i++;
        if (text[i] === "+" || text[i] === "-") i++;
        if (!DIGIT.test(text[i] ?? "")) throw new PqlError(text, i, "expected digits in exponent");
        while (i < text.length && DIGIT.test(text[i])) i++;
      }
      if (IDENT_START.test(text[i] ?? "")) {
        throw new PqlError(text, i, `unexpected '${text[i]}' after number`);
      }
      tokens.push({ kind: "number", text: text.slice(pos, i), pos });
      continue;
    }
    if (c === "'" || c === '"') {
      let value = "";
      i++;
      for (;;) {
        if (i >= text.length) {
          throw new PqlError(
            text,
            pos,
            c === "'" ? "unterminated string" : "unterminated quoted identifier",
          );
        }
        if (text[i] === c) {
          if (text[i + 1] === c) {
            value += c;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i++];
      }
      if (c === "'") tokens.push({ kind: "string", text: value, pos });
      else tokens.push({ kind: "ident", text: value, pos, quoted: true });
      continue;
    }
    const two = text.slice(i, i + 2);
    if (two === "<=" || two === ">=" || two === "!=" || two === "<>") {
      tokens.push({ kind: "op", text: two === "<>" ? "!=" : two, pos });
      i += 2;
      continue;
    }
    if (c === "<" || c === ">" || c === "=") {
      tokens.push({ kind: "op", text: c, pos });
      i++;
      continue;
    }
    if (c === "(" || c === ")" || c === "," || c === "." || c === "*" || c === "-" || c === "+") {
      tokens.push({ kind: c, text: c, pos });
      i++;
      continue;
    }
    throw new PqlError(text, pos, `unexpected character '${c}'`);
  }
  tokens.push({ kind: "eof", text: "", pos: text.length });
  return tokens;
}
