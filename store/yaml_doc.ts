/**
 * Opening a YAML document with positions, for parsers whose messages name
 * `file:line:col` (schemas, model plans).
 *
 * @module
 */

import { type Document, LineCounter, type Node, parseDocument } from "./deps.ts";

/** A parsed document, the position of any node, and YAML-level errors as messages. */
export interface YamlDoc {
  /** The document (duplicate keys are errors). */
  doc: Document;
  /** `path:line:col` of a node (of the start of the file when the node is missing). */
  where: (node: Node | null | undefined) => string;
  /** `path:line:col: invalid YAML: …` for each syntax error; empty when the text parsed. */
  errors: string[];
}

/** Parses `text`; `duplicateHint` explains a duplicate key in the caller's terms. */
export function openYamlDoc(text: string, path: string, duplicateHint: string): YamlDoc {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const where = (node: Node | null | undefined): string => {
    const offset = node?.range?.[0] ?? 0;
    const { line, col } = lineCounter.linePos(offset);
    return `${path}:${line === 0 ? 1 : line}:${line === 0 ? offset + 1 : col}`;
  };
  const errors = doc.errors.map((e) => {
    const lp = lineCounter.linePos(e.pos[0]);
    const first = e.code === "DUPLICATE_KEY"
      ? `duplicate key (${duplicateHint})`
      : e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    return `${path}:${Math.max(lp.line, 1)}:${lp.col}: invalid YAML: ${first}`;
  });
  return { doc, where, errors };
}
