/**
 * Third-party modules store/ uses, with full pinned specifiers so that the
 * library works when imported by URL (a remote module does not get this
 * project's import map). Versions match deno.json.
 *
 * @module
 */

export {
  type DuckDBConnection,
  type DuckDBDataChunk,
  DuckDBInstance,
  DuckDBTypeId,
} from "npm:@duckdb/node-api@1.5.5-r.5";
export { Document, isMap, isScalar, LineCounter, parseDocument } from "npm:yaml@2.9.1";
export type { Node, Scalar, YAMLMap } from "npm:yaml@2.9.1";
