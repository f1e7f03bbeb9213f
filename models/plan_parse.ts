/**
 * Reading a model plan file (models/plan.ts): YAML with positions, checked
 * field by field, each problem reported as `file:line:col: field: message`
 * with the valid choices, in the style of store/schema.ts.
 *
 * A plan file holds overrides: any subset of the fields (an empty file is
 * valid). {@link parsePlan} returns them in the TypeScript form, to lay
 * over a suggested plan with `mergePlan`.
 *
 * @module
 */

import { isMap, isSeq, type Node, type YAMLMap } from "./deps.ts";
import { PlanError, planFromYamlValue, type PlanOverrides } from "./plan.ts";
import { formatProblem, type PlanProblem, planProblems } from "./plan_spec.ts";
import { openYamlDoc } from "../store/yaml_doc.ts";

/** Options of {@link parsePlan}. */
export interface ParsePlanOptions {
  /** Edge types of the graph: names in `num_neighbors` and `strategy` are checked against them. */
  edgeTypes?: readonly string[];
}

/** The node at `path` (keys and list indices); with `key`, the key node of its last step. */
function nodeAt(root: Node | null, path: (string | number)[], key: boolean): Node | null {
  let node: Node | null = root;
  let keyNode: Node | null = null;
  for (const step of path) {
    if (isMap(node)) {
      const pair = (node as YAMLMap).items.find((p) =>
        String((p.key as { value?: unknown })?.value ?? p.key) === String(step)
      );
      if (!pair) return key ? keyNode ?? node : node;
      keyNode = pair.key as Node;
      node = (pair.value as Node | null) ?? keyNode;
    } else if (isSeq(node) && typeof step === "number" && node.items[step]) {
      keyNode = null;
      node = node.items[step] as Node;
    } else return node;
  }
  return key && keyNode ? keyNode : node;
}

/**
 * Parses a plan file's text; `path` names it in messages. Returns the
 * overrides it holds. Throws a {@link PlanError} with every problem, each
 * as `path:line:col: field: message` (unknown keys and values list the
 * valid ones and suggest the closest; with `edgeTypes`, unknown edge types
 * too).
 */
export function parsePlan(
  text: string,
  path = "plan.yaml",
  opts: ParsePlanOptions = {},
): PlanOverrides {
  const { doc, where, errors } = openYamlDoc(text, path, "each section and field may appear once");
  if (errors.length > 0) throw new PlanError(errors);
  const root = doc.contents as Node | null;
  const value = doc.toJS();
  if (value === null || value === undefined) return {};
  const problems: PlanProblem[] = planProblems(value, { partial: true, edgeTypes: opts.edgeTypes });
  if (problems.length > 0) {
    throw new PlanError(
      problems.map((p) => `${where(nodeAt(root, p.path, p.key === true))}: ${formatProblem(p)}`),
    );
  }
  return planFromYamlValue(value);
}

/** Reads and parses a plan file (see {@link parsePlan}). */
export async function loadPlan(path: string, opts: ParsePlanOptions = {}): Promise<PlanOverrides> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new PlanError([`${path}: no such plan file`]);
    throw e;
  }
  return parsePlan(text, path, opts);
}
