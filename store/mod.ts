/**
 * Relational data in, temporal graph and training tables out: schema files
 * (written or inferred), DuckDB ingestion with validation, the graph store
 * (CSR per edge type on SharedArrayBuffers, adjacency sorted by time), its
 * binary save/load and appends; predictive queries (PQL) compiled to SQL into
 * training tables; the feature store on disk (encoders, fixed-width rows,
 * page cache). Knows nothing of GPUs or models.
 *
 * @example
 * ```ts
 * import { Database, graphFromDatabase, loadSchema } from "./mod.ts";
 * const db = await Database.open("data/f1", await loadSchema("store/examples/f1.yaml"));
 * const graph = await graphFromDatabase(db);
 * console.log(graph.edgeTypes());
 * ```
 *
 * @module
 */

export * from "./types.ts";
export * from "./schema.ts";
export * from "./infer.ts";
export * from "./database.ts";
export * from "./ticks.ts";
export * from "./keys.ts";
export { GraphStore } from "./graph.ts";
export type {
  EdgeData,
  EdgeDelta,
  GraphBytes,
  GraphData,
  Neighbors,
  NodeData,
  NodeDelta,
} from "./graph.ts";
export * from "./graph_build.ts";
export * from "./graph_io.ts";
export * from "./graph_append.ts";
export * from "./pql/mod.ts";
export {
  type AnchorSchedule,
  anchorSchedule,
  type BuiltTrainingTable,
  loadTrainingTable,
  type LoadTrainingTableOptions,
  type ResultColumn,
  type SqlDatabase,
  type TimeInput,
  trainingTable,
  type TrainingTableOptions,
} from "./training_table.ts";
export * from "./features/mod.ts";
