/**
 * Online temporal neighbour sampling over the graph store, the worker pool,
 * and the loader that turns seeds into GPU batches. See ../shared/DESIGN.md
 * for the SamplerOutput contract.
 *
 * @module
 */

export * from "./types.ts";
export {
  type CompiledSampling,
  compileSampling,
  DEFAULT_HALF_LIFE,
  DEFAULT_STRATEGY,
  didYouMean,
  type HopFanouts,
  MAX_HOPS,
  type NumNeighbors,
  parseHalfLife,
  parseNumNeighbors,
  type StrategyRule,
} from "./config.ts";
export { sampleBatch, type SampleOptions } from "./sample.ts";
export { type AutoFanoutOptions, autoFanouts } from "./auto.ts";
export {
  type BatchSampler,
  defaultWorkers,
  runSample,
  type SampleRequest,
  SamplerPool,
  type SamplerPoolOptions,
} from "./pool.ts";
export {
  type LoaderStats,
  permutation,
  SamplerLoader,
  type SamplerLoaderOptions,
} from "./loader.ts";
export type { SamplerWorkerApi } from "./worker.ts";
export {
  BatchPipeline,
  type BatchPipelineOptions,
  type EdgeBatch,
  type GpuBatch,
  type NodeBatch,
  parseEdgeEnds,
  type PipelineStats,
  type RowSource,
  toGpuBatch,
  type ToGpuBatchOptions,
} from "./batch.ts";
