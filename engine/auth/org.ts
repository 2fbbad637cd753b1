import { BifrostError } from "../../common/errors.js";

/** Org names: what a run's `org`, `--org` and a key's org may be. */
export const ORG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export function isOrg(value: string): boolean {
  return value.length <= 128 && ORG_PATTERN.test(value);
}

const ORG_RULE = "letters, digits, '_', '.', ':' or '-', starting with a letter or digit, at most 128 characters";

/**
 * The `org` a request names (a query parameter): checked, or null when it names none. `absent`
 * says what leaving it out means there, for the fix.
 */
export function requestedOrg(requested: string | undefined, absent: string): string | null {
  if (requested === undefined) return null;
  if (!isOrg(requested)) {
    throw new BifrostError("VALIDATION_FAILED", `org ${JSON.stringify(requested.slice(0, 40))} is not an org name`, {
      details: [{ field: "org", message: ORG_RULE }],
      fix: `Pass an org name (${ORG_RULE}), or leave org out for ${absent}.`,
    });
  }
  return requested;
}

/** What a caller may see: `org` set means only runs of that org (an org key); unset means all. */
export interface RunScope {
  org?: string | undefined;
}

export function inScope(run: { org: string | null }, scope: RunScope | undefined): boolean {
  return scope?.org === undefined || run.org === scope.org;
}

/**
 * The org of a run a caller starts: the one asked for, else the key's. An org key cannot start a
 * run in another org, nor one without an org: that is a 403 (the caller named the org, so saying
 * so reveals nothing it did not know).
 */
export function triggerOrg(keyOrg: string | undefined, requested: string | null | undefined): string | null {
  if (keyOrg === undefined) return requested ?? null;
  if (requested != null && requested !== keyOrg) {
    throw new BifrostError("FORBIDDEN", `This API key is limited to org "${keyOrg}" and cannot start a run in org "${requested}"`, {
      details: { org: requested, keyOrg },
      fix: `Leave org out (runs of this key are in "${keyOrg}"), or use a key of org "${requested}" or one without an org.`,
    });
  }
  return keyOrg;
}
