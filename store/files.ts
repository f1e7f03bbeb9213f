/**
 * The data files fanout reads: CSV (`.csv`, `.tsv`, `.txt`, optionally
 * compressed with gzip or zstd) and Parquet.
 *
 * @module
 */

/** The kinds of data file fanout reads. */
export type FileKind = "csv" | "parquet";

/** The kind of a data file by its extension, or null when fanout does not read it. */
export function fileKind(path: string): FileKind | null {
  const p = path.toLowerCase();
  if (/\.(csv|tsv|txt)(\.gz|\.zst)?$/.test(p)) return "csv";
  if (/\.parquet$/.test(p)) return "parquet";
  return null;
}

/** The field delimiter of a CSV file by its extension (`.csv` comma, `.tsv` tab), or null to sniff. */
export function csvDelimiter(path: string): string | null {
  const p = path.toLowerCase().replace(/\.(gz|zst)$/, "");
  return p.endsWith(".csv") ? "," : p.endsWith(".tsv") ? "\t" : null;
}
