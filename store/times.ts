/**
 * Turning a time column into TIMESTAMP (UTC): the SQL expression per source
 * type, and the formats accepted.
 *
 * @module
 */

import { isDateType, isIntegerType, quoteIdent } from "./duck.ts";

/** `strptime` formats tried after DuckDB's own ISO 8601 cast. */
export const TIME_FORMATS = [
  "%Y/%m/%d",
  "%Y/%m/%d %H:%M:%S",
  "%Y/%m/%d %H:%M",
  "%Y-%m-%d %H:%M",
  "%Y-%m-%dT%H:%M",
  "%Y%m%d",
] as const;

/** The accepted formats, for messages. */
export const ACCEPTED_TIMES = "ISO 8601 dates and date-times (2024-01-31, 2024-01-31 12:30:00, " +
  "2024-01-31T12:30:00.5Z, 2024-01-31T12:30:00+02:00), 2024/01/31 with an optional " +
  "12:30[:00], and 8-digit YYYYMMDD numbers (20240131)";

/**
 * SQL turning `column` of DuckDB type `type` into a TIMESTAMP, null where a
 * value cannot be read; null when the type cannot hold times at all.
 */
export function timeExpr(column: string, type: string): string | null {
  const c = quoteIdent(column);
  if (isDateType(type)) return `CAST(${c} AS TIMESTAMP)`;
  if (isIntegerType(type)) {
    return `CASE WHEN ${c} BETWEEN 10000101 AND 99991231 ` +
      `THEN try_strptime(CAST(${c} AS VARCHAR), '%Y%m%d') END`;
  }
  if (type === "VARCHAR") {
    const formats = TIME_FORMATS.map((f) => `'${f}'`).join(", ");
    return `coalesce(CAST(try_cast(trim(${c}) AS TIMESTAMPTZ) AS TIMESTAMP), ` +
      `try_strptime(trim(${c}), [${formats}]))`;
  }
  return null;
}
