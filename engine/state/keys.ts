import { capString } from "../../common/json-bounds.js";

/**
 * ctx.state key names: the shape of org names (letters, digits and `_ . : -`, starting with a letter
 * or digit, at most 128), so that a key reads the same in a URL path, a shell and a log line.
 */
export const STATE_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
export const MAX_STATE_KEY = 128;

/** Why `key` cannot name a state value; undefined when it can. Never quotes more than a prefix. */
export function stateKeyProblem(key: unknown): string | undefined {
  if (typeof key !== "string") return "the key must be a string";
  if (key.length <= MAX_STATE_KEY && STATE_KEY_PATTERN.test(key)) return undefined;
  return `the key ${JSON.stringify(capString(key, 40, "…"))} is not a state key: use 1 to ${MAX_STATE_KEY} letters, digits, "_", ".", ":" or "-", starting with a letter or digit`;
}

/** How much state a workflow keeps per org. */
export interface StateLimits {
  /** Largest value, in bytes of its JSON (UTF-8). */
  maxStateValueBytes: number;
  /** Keys per workflow and org. */
  maxStateKeys: number;
}

export const DEFAULT_STATE_LIMITS: StateLimits = { maxStateValueBytes: 64 * 1024, maxStateKeys: 1000 };
