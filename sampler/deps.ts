/**
 * Third-party modules sampler/ uses, with full pinned specifiers so that the
 * library works when imported by URL (a remote module does not get this
 * project's import map). Versions match deno.json.
 *
 * @module
 */

export * as Comlink from "npm:comlink@4.4.2";
export { parse as parseYaml } from "npm:yaml@2.9.1";
