/**
 * Helpers for the store tests: temporary folders of small data files.
 *
 * @module
 */

import { parseSchema } from "./schema.ts";
import { Database, type OpenOptions } from "./database.ts";

/** The f1 data set beside the project (tests read it, never copy it). */
export const F1_DIR = new URL("../../shared/data/f1", import.meta.url).pathname;

/** The shared data sets beside the project, by name (tests read them, never copy them). */
export function sharedData(name: "f1" | "tennis_atp" | "chinook" | "worldcup"): string {
  return new URL(`../../shared/data/${name}`, import.meta.url).pathname;
}

/** Writes `files` (name → content) into a new temporary folder and returns its path. */
export async function tempDir(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "fanout_store_" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  return dir;
}

/** Runs `fn` on a temporary folder holding `files`, then removes it. */
export async function withDir<T>(
  files: Record<string, string>,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = await tempDir(files);
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Opens a database on `dir` with a schema given as YAML. */
export function openYaml(dir: string, yaml: string, opts?: OpenOptions): Promise<Database> {
  return Database.open(dir, parseSchema(yaml, "test.yaml"), opts);
}

/** The message of the error that opening `files` with schema `yaml` throws. */
export async function openError(
  files: Record<string, string>,
  yaml: string,
  opts?: OpenOptions,
): Promise<{ message: string; dir: string }> {
  const dir = await tempDir(files);
  try {
    const db = await openYaml(dir, yaml, opts);
    db.close();
  } catch (e) {
    return { message: (e as Error).message, dir };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  throw new Error("the database opened without an error");
}
