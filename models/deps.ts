/**
 * Third-party modules models/ uses, with full pinned specifiers so that the
 * library works when imported by URL (a remote module does not get this
 * project's import map). Versions match deno.json.
 *
 * @module
 */

export { Document, isMap, isScalar, isSeq } from "npm:yaml@2.9.1";
export type { Node, Scalar, YAMLMap } from "npm:yaml@2.9.1";
