/**
 * The feature store: per node type, a file of fixed-width encoded rows
 * (numerical block in f32 or f16, categorical codes in u32) with page
 * checksums and a manifest of the fitted column encoders (format.ts).
 * Encoders are fitted on rows at or before the training cutoff only.
 *
 * @example
 * ```ts
 * import { buildFeatureStore, decodeRows, openManifest } from "./mod.ts";
 * const m = await buildFeatureStore(db, "out/features", { cutoff: Date.UTC(2020, 0) / 1000 });
 * const t = (await openManifest("out/features")).tables.results;
 * const bytes = await Deno.readFile(`out/features/${t.rowsFile}`);
 * const { num, cat } = decodeRows(t, bytes);
 * ```
 *
 * @module
 */

export * from "./format.ts";
export * from "./encoders.ts";
export * from "./fit.ts";
export * from "./encoded_rows.ts";
export * from "./manifest.ts";
export * from "./build.ts";
export type { ColumnSchema, ForeignKey, SemanticType, TableSchema } from "../types.ts";
export type { ColumnArray } from "../columns.ts";
export {
  BYPASS_PAGES,
  DEFAULT_CACHE_BYTES,
  FeatureReader,
  type FeatureReaderOptions,
  type ReaderStats,
} from "./reader.ts";
export { GatherPool, type GatherPoolOptions } from "./gather_pool.ts";
export { MIN_CACHE_PAGES, PageCache, type PageCacheStats, type PagedFile } from "./cache.ts";
export {
  ffiAvailable,
  ffiUnavailableReason,
  openRawFile,
  type OpenRawOptions,
  POSIX_FADV_DONTNEED,
  POSIX_FADV_RANDOM,
  type RawFile,
} from "./pread.ts";
