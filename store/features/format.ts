/**
 * The feature store's on-disk format: one directory with a manifest and, per
 * node type, a file of fixed-width rows plus a file of page checksums.
 *
 * Row layout (row `id` starts at byte `id * rowBytes` of `<table>.rows`):
 * `numWidth` numerical values (f32, or f16 when `numDtype` is "f16"), then
 * `catWidth` categorical codes (u32), then zero padding up to `rowBytes`
 * (a multiple of 4). Code 0 of every categorical slot means null / out of
 * vocabulary; real categories are 1..cardinality-1.
 *
 * Integrity: `<table>.sums` holds one XXH32 (store/checksum.ts) per
 * `PAGE_BYTES` page of the rows file (the last page is hashed over its real
 * length), verified when a page is read. The rows file must be exactly
 * `rows * rowBytes` bytes long.
 *
 * Atomicity: a build writes into `<dir>.tmp-<random>` and renames it onto
 * `<dir>`; `manifest.json` is written last, so a directory without one is
 * never mistaken for a finished store.
 *
 * @module
 */

import type { SemanticType } from "../types.ts";

/** Format tag in the manifest. */
export const FEATURE_FORMAT = "fanout-features";
/** Format version; readers refuse others. */
export const FEATURE_FORMAT_VERSION = 1;
/** Page size of the rows files, for checksums, alignment and the page cache. */
export const PAGE_BYTES = 4096;

/** Fitted state of one column's encoder (statistics from rows at or before the cutoff only). */
export type EncoderState =
  | {
    kind: "numerical";
    /** Median (the robust centre). */
    median: number;
    /** Interquartile range / 1.349 (a robust scale; 1 when zero). */
    scale: number;
    /** Standardised values are clipped to [-clip, clip]. */
    clip: number;
  }
  | {
    kind: "categorical";
    /** Kept categories in code order (code = index + 1); rarer ones map to 0. */
    vocab: string[];
    /** Minimum count for a category to get its own code. */
    minCount: number;
  }
  | {
    kind: "multicategorical";
    /** Kept items in code order (code = index + 1). */
    vocab: string[];
    /** Item separator in the source text. */
    separator: string;
    /** Codes kept per row (the first `slots` items; 0 pads). */
    slots: number;
  }
  | {
    kind: "timestamp";
    /** Calendar features written: year (standardised), month, weekday, day, hour (sin/cos pairs). */
    features: string[];
    /** Year centre and scale for standardisation. */
    yearCentre: number;
    /** Year scale. */
    yearScale: number;
  }
  | {
    kind: "text";
    /** Hashed n-gram buckets (the numerical width of the column). */
    buckets: number;
    /** Character n-gram size. */
    ngram: number;
  };

/** Where one source column lives in a row. */
export interface ColumnLayout {
  /** Source column name. */
  name: string;
  /** Its semantic type. */
  stype: SemanticType;
  /** Which block: numerical values or categorical codes. */
  block: "num" | "cat";
  /** First value (in the block) the column occupies. */
  offset: number;
  /** Number of values (in the block) it occupies. */
  width: number;
  /** The fitted encoder. */
  encoder: EncoderState;
}

/** One node type's feature file. */
export interface FeatureTableManifest {
  /** Node type (table) name. */
  table: string;
  /** Number of rows (= the graph store's node count for the table, dense ids in order). */
  rows: number;
  /** Bytes per row (multiple of 4). */
  rowBytes: number;
  /** Storage type of the numerical block. */
  numDtype: "f32" | "f16";
  /** Numerical values per row. */
  numWidth: number;
  /** Categorical codes per row. */
  catWidth: number;
  /** Vocabulary size of each categorical slot (code 0 included), for embedding tables. */
  cardinality: number[];
  /** Column layout. */
  columns: ColumnLayout[];
  /** File names (relative to the store directory). */
  rowsFile: string;
  /** Checksum file name. */
  sumsFile: string;
}

/** The manifest of a feature store directory (`manifest.json`). */
export interface FeatureManifest {
  /** Always FEATURE_FORMAT. */
  format: string;
  /** Always FEATURE_FORMAT_VERSION. */
  version: number;
  /** Encoder statistics use only rows with time at or before this (epoch seconds). */
  cutoff: number;
  /** Per node type. */
  tables: Record<string, FeatureTableManifest>;
}
