/**
 * Bounds for JSON values that come from outside the engine's trust: workflow code in the sandbox
 * (results, step results, log data, errors) and request bodies (run params). Everything here is
 * iterative and linear in the input: a hostile value can make it neither recurse nor backtrack.
 */

export interface JsonBounds {
  /** Deepest nesting of arrays and objects (a scalar is depth 0, `[1]` is depth 1). */
  maxDepth: number;
  /** Largest JSON text, in UTF-16 code units (measured on the text before it is parsed). */
  maxLength: number;
}

/** Why a value was refused; `depth` and `size` map to RESULT_NOT_SERIALIZABLE / RESULT_TOO_LARGE. */
export type JsonViolation = { reason: "depth"; depth: number } | { reason: "size"; length: number } | { reason: "syntax"; message: string };

export type JsonResult = { ok: true; value: unknown } | { ok: false; violation: JsonViolation };

export const DEFAULT_JSON_DEPTH = 64;

/**
 * Depth of the JSON text's nesting, counted on the text itself (strings are skipped correctly), so
 * it can be checked before JSON.parse builds anything. Linear, no recursion.
 */
export function jsonTextDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** Parses JSON text from an untrusted source after checking its length and nesting. */
export function parseBoundedJson(text: string, bounds: JsonBounds): JsonResult {
  if (typeof text !== "string") return { ok: false, violation: { reason: "syntax", message: "expected JSON text" } };
  if (text.length > bounds.maxLength) return { ok: false, violation: { reason: "size", length: text.length } };
  const depth = jsonTextDepth(text);
  if (depth > bounds.maxDepth) return { ok: false, violation: { reason: "depth", depth } };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, violation: { reason: "syntax", message: err instanceof Error ? err.message : String(err) } };
  }
}

/**
 * Depth of an in-memory value (arrays and plain objects), walking iteratively and stopping as soon
 * as `limit` is passed, so a 10,000-deep value costs no more than a `limit`-deep one.
 */
export function valueDepthExceeds(value: unknown, limit: number): boolean {
  const stack: Array<{ v: unknown; d: number }> = [{ v: value, d: 0 }];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const { v, d } = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (d + 1 > limit) return true;
    // A cycle is infinitely deep.
    if (seen.has(v)) return true;
    seen.add(v);
    const children = Array.isArray(v) ? v : Object.values(v as Record<string, unknown>);
    for (const child of children) if (child !== null && typeof child === "object") stack.push({ v: child, d: d + 1 });
  }
  return false;
}

/**
 * Serializes a value to JSON within bounds: depth is checked first (JSON.stringify recurses and
 * throws a RangeError on deep values), then the length of the text.
 */
export function stringifyBounded(value: unknown, bounds: JsonBounds): { ok: true; text: string } | { ok: false; violation: JsonViolation } {
  if (valueDepthExceeds(value, bounds.maxDepth)) return { ok: false, violation: { reason: "depth", depth: bounds.maxDepth + 1 } };
  let text: string | undefined;
  try {
    text = JSON.stringify(value ?? null);
  } catch (err) {
    return { ok: false, violation: { reason: "syntax", message: err instanceof Error ? err.message : String(err) } };
  }
  text ??= "null";
  if (text.length > bounds.maxLength) return { ok: false, violation: { reason: "size", length: text.length } };
  return { ok: true, text };
}

/**
 * Cuts an untrusted string to at most `max` UTF-16 code units without splitting a surrogate pair,
 * marking the cut. Used for every guest-supplied message, stack, name and description.
 */
export function capString(value: string, max: number, marker = "… [truncated]"): string {
  if (value.length <= max) return value;
  let end = Math.max(0, max - marker.length);
  const c = value.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end -= 1;
  return value.slice(0, end) + marker;
}
