import { BifrostError } from "../../common/errors.js";
import { UUID_PATTERN } from "../ids.js";

/** Opaque pagination cursors: the last id of a page (runs are ordered by time-sortable id). */
export function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ before: lastId })).toString("base64url");
}

export function decodeCursor(cursor: string): string {
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as { before?: unknown };
    if (typeof value.before === "string" && UUID_PATTERN.test(value.before)) return value.before;
  } catch {
    // fall through
  }
  throw new BifrostError("VALIDATION_FAILED", "cursor is invalid: pass the nextCursor value of the previous page unchanged", {
    fix: "Pass the nextCursor of the previous page unchanged, or leave the cursor out for the first page.",
  });
}

/** Longer than any ISO 8601 date-time; longer values are refused before they are parsed. */
const MAX_TIME_LENGTH = 64;

/** Parses an ISO 8601 date-time (or epoch milliseconds) query value or CLI option. */
export function parseTime(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = value.length > MAX_TIME_LENGTH ? Number.NaN : /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw new BifrostError("VALIDATION_FAILED", `${field} must be an ISO 8601 date-time such as 2026-01-31T09:00:00Z`, {
      fix: `Pass ${field} as an ISO 8601 date-time such as 2026-01-31T09:00:00Z, or as epoch milliseconds.`,
    });
  }
  return ms;
}
