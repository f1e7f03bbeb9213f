/**
 * Relational ingestion, schema, predictive queries, the temporal graph store
 * (topology in RAM) and the feature store (attributes on disk). Knows nothing
 * of GPUs or models. Filled by the relational-ingestion and feature-store
 * issues; see ../shared/DESIGN.md for the contracts.
 *
 * @module
 */

export {};
