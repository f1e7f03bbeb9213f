/**
 * Models, training and inference: column encoders, GNN and graph-transformer
 * layers, task heads, losses, metrics, baselines, the model plan, the
 * trainer (`train`), checkpoints and batch scoring (`predict`).
 *
 * @module
 */

export {
  type AttentionPairs,
  concatRows,
  GraphTransformer,
  type GraphTransformerOptions,
  seedAttentionPairs,
  TransformerBlock,
  type TransformerBlockOptions,
} from "./transformer.ts";
export type * from "./types.ts";
export {
  NodeEncoder,
  type NodeEncoderOptions,
  TIME_FEATURES,
  TIME_SCALES_DAYS,
} from "./encoder.ts";
export {
  arangeIndex,
  HeteroLayer,
  type HeteroLayerOptions,
  type HopPlan,
  type LayerEdges,
  type LayerPlan,
  planHops,
  prefixRows,
  rowsUpToHop,
} from "./message_passing.ts";
export { SageLayer, type SageLayerOptions } from "./sage.ts";
export { GatEdge, GatLayer, type GatLayerOptions } from "./gat.ts";
export { buildGraphModel, type GraphModelOptions, HeteroGNN } from "./gnn.ts";
export { hasTargetHead, headOf } from "./seed_head.ts";
export { HISTORY_FEATURES, LinkModel } from "./link_model.ts";
export {
  type Embeddings,
  type HistoryPath,
  historyPath,
  historyRanking,
  type HistoryRankingOptions,
  type LinkBatchLabels,
  linkBatchLabels,
  type LinkEpoch,
  linkEpoch,
  type LinkEpochOptions,
  type LinkLoss,
  linkLoss,
  type LinkVia,
  metricK,
  type OwnLinks,
  PastLinks,
  type RankedLinks,
  rankLinks,
  type RankLinksOptions,
  RECENCY_DAYS,
  TargetCandidates,
} from "./link.ts";
export {
  accuracy,
  argmaxRows,
  auroc,
  averagePrecision,
  type Csr,
  DEFAULT_K,
  evaluate,
  type EvaluateOptions,
  f1,
  isBetter,
  type LinkMetrics,
  linkMetrics,
  lowerIsBetter,
  macroF1,
  mae,
  mapAtK,
  multiclassAccuracy,
  type NumArray,
  precisionAtK,
  primaryMetric,
  r2,
  recallAtK,
  rmse,
} from "./metrics.ts";
export {
  clampToRange,
  type LossFn,
  lossFor,
  type LossSpec,
  outputWidth,
  type OutputWidthOptions,
  type PreparedLabels,
  prepareLabels,
  type PrepareLabelsOptions,
  rankTopK,
  type RegressionLoss,
  regressionRange,
  selectLinkRows,
  sigmoidProbs,
  softmaxRows,
} from "./heads.ts";
export {
  type ConstantBaseline,
  constantBaseline,
  type ConstantBaselineOptions,
  type FeatureMatrix,
  fitLinearBaseline,
  type LinearBaseline,
  type LinearBaselineOptions,
} from "./baselines.ts";
export {
  buildTable,
  deviceName,
  type JobRecord,
  modelSpec,
  type OutputTransform,
  type PlanRequest,
  planText,
  type RunMetrics,
  type RunPaths,
  runPaths,
  scoreSeeds,
  type SplitMetrics,
  type TableInput,
  type Throughput,
  toPredictions,
  train,
  type TrainEvent,
  TrainInterrupted,
  type TrainJob,
  type TrainResult,
} from "./trainer.ts";
export { predict, type PredictJob, type PredictResult } from "./predict.ts";
export {
  CHECKPOINT_FILES,
  copyCheckpoint,
  type EpochRecord,
  type FeaturesRef,
  hasCheckpoint,
  loadCheckpoint,
  type LoadedCheckpoint,
  type OutputSettings,
  type SamplerSettings,
  saveCheckpoint,
  type TrainState,
} from "./checkpoint.ts";
export {
  type EntityFeatureOptions,
  type EntityFeatures,
  entityFeatures,
} from "./entity_features.ts";
export {
  DEFAULT_MECHANISM,
  DEFAULT_QUERY,
  generateSyntheticDb,
  type Mechanism,
  returnProbability,
  SYNTHETIC_SCHEMA,
  type SyntheticDb,
  type SyntheticOptions,
} from "./synthetic.ts";
export {
  type Aggregation,
  completePlanProblems,
  type DataPlan,
  defaultPlan,
  type EarlyStopping,
  type LossName,
  lossOf,
  mergePlan,
  metricOf,
  type ModelPlan,
  type ModelSection,
  type Norm,
  type OptimizerName,
  PlanError,
  planFromYamlValue,
  type PlanOverrides,
  planToYaml,
  planToYamlValue,
  type PlanYamlOptions,
  type SamplingPlan,
  type ScheduleKind,
  type ScheduleSpec,
  type StrategySpec,
  TASK_CHOICES,
  type TrainingPlan,
  validatePlan,
  type ValidatePlanOptions,
} from "./plan.ts";
export {
  formatProblem,
  type Group,
  type Leaf,
  METRICS,
  PLAN_SPEC,
  type PlanProblem,
  type PlanProblemOptions,
  planProblems,
  type Spec,
} from "./plan_spec.ts";
export { loadPlan, parsePlan, type ParsePlanOptions } from "./plan_parse.ts";
export {
  DEFAULT_BUDGET,
  MIN_STEPS,
  seedDegree,
  SPARSE_DEGREE,
  type SuggestedPlan,
  suggestPlan,
  suggestPlanExplained,
  type SuggestPlanOptions,
} from "./plan_suggest.ts";
