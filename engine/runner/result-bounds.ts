import { BifrostError } from "../../common/errors.js";
import { stringifyBounded } from "../../common/json-bounds.js";
import { GUEST_BOUNDS } from "../../sandbox/index.js";

const VALUE_BOUNDS = { maxDepth: GUEST_BOUNDS.valueDepth, maxLength: GUEST_BOUNDS.bridgeChars };

/**
 * Why a value the guest asked to store (a run or step result) cannot be stored, or undefined. The
 * host decides this itself, on the parsed value: nesting first, then the size in bytes.
 */
export function resultProblem(value: unknown, maxBytes: number, what: string): BifrostError | undefined {
  const json = stringifyBounded(value, VALUE_BOUNDS);
  if (!json.ok) {
    const v = json.violation;
    if (v.reason === "size") return new BifrostError("RESULT_TOO_LARGE", `${what} is ${v.length} characters of JSON; the limit is ${maxBytes} bytes`);
    if (v.reason === "depth") return new BifrostError("RESULT_NOT_SERIALIZABLE", `${what} is nested deeper than ${GUEST_BOUNDS.valueDepth} levels`);
    return new BifrostError("RESULT_NOT_SERIALIZABLE", `${what} is not JSON-serializable: ${v.message}`);
  }
  const bytes = Buffer.byteLength(json.text);
  if (bytes > maxBytes) return new BifrostError("RESULT_TOO_LARGE", `${what} is ${bytes} bytes; the limit is ${maxBytes} bytes`);
  return undefined;
}

/** Log data as stored: within the nesting bound and `maxBytes`, else a marker saying why not. */
export function boundLogData(data: unknown, maxBytes: number): unknown {
  const json = stringifyBounded(data, { maxDepth: GUEST_BOUNDS.valueDepth, maxLength: Number.MAX_SAFE_INTEGER });
  if (!json.ok) {
    const reason = json.violation.reason === "depth" ? `nested deeper than ${GUEST_BOUNDS.valueDepth} levels` : "not JSON";
    return { truncated: true, reason: `RESULT_NOT_SERIALIZABLE: ${reason}` };
  }
  const bytes = Buffer.byteLength(json.text);
  return bytes > maxBytes ? { truncated: true, bytes } : data;
}
