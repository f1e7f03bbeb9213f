/**
 * Models, training and inference. For now: the end-to-end MLP job that
 * `deno task train` runs until the relational trainer (GNNs, graph
 * transformer, model plan) lands here.
 *
 * @module
 */

export { trainMlpDemo } from "./mlp_demo.ts";
export type { MlpDemoOptions, MlpDemoResult } from "./mlp_demo.ts";
