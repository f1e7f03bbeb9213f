/**
 * Online temporal neighbour sampling over the graph store, the worker pool,
 * and the loader that turns seeds into GPU batches. Filled by the sampler
 * issue; see ../shared/DESIGN.md for the SamplerOutput contract.
 *
 * @module
 */

export {};
