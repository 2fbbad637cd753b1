import { BifrostError } from "../../common/errors.js";

/**
 * An idempotency key names one request: reusing it replays the first run only when the request is
 * the same one (same params, same org). Anything else is IDEMPOTENCY_CONFLICT rather than a replay
 * of a run the caller did not ask for. Pure.
 */

/**
 * JSON with object keys sorted at every level, so `{a, b}` and `{b, a}` compare equal. Params are
 * bounded (64 deep, 512 KB) before they get here, so the recursion is bounded too.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item === undefined ? null : item)).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

export interface ReplayRequest {
  /** Params as validated (defaults applied), like the stored run's. */
  params: unknown;
  org: string | null;
}

/** What differs between the run a key first started and a request that reuses the key. */
export function replayConflict(first: ReplayRequest, again: ReplayRequest): "org" | "params" | undefined {
  if (first.org !== again.org) return "org";
  if (canonicalJson(first.params) !== canonicalJson(again.params)) return "params";
  return undefined;
}

/** Throws IDEMPOTENCY_CONFLICT unless `again` is the request that started `first`. */
export function assertReplay(workflow: string, idempotencyKey: string, first: ReplayRequest, again: ReplayRequest): void {
  const differs = replayConflict(first, again);
  if (!differs) return;
  // Nothing of the first run (its id, params or org) is quoted: it may belong to another org.
  throw new BifrostError("IDEMPOTENCY_CONFLICT", `idempotencyKey ${JSON.stringify(idempotencyKey)} was already used for a run of "${workflow}" with different ${differs === "org" ? "org" : "params"}`, {
    details: { workflow, idempotencyKey, differs },
  });
}
