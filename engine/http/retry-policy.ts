/** Which failed attempts ctx.http repeats. Pure: the decision table of DESIGN.md §8. */

export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** RFC 9110 §9.2.2: repeating these has the effect of sending them once. */
const IDEMPOTENT: ReadonlySet<HttpMethod> = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

export function isIdempotent(method: HttpMethod): boolean {
  return IDEMPOTENT.has(method);
}

/** What an attempt ended with: a status, or a network failure (`connect` when nothing reached the server). */
export type AttemptOutcome = { kind: "status"; status: number } | { kind: "network"; code: string; phase: "connect" | "exchange" };

export type RetryVerdict =
  /** `rateLimited`: wait for the server's time (Retry-After), and cool the host down for every run. */
  | { retry: true; reason: string; rateLimited: boolean }
  | { retry: false; reason?: string };

/** 5xx that another try will not change. */
const PERMANENT_5XX = new Set([501, 505, 506, 508, 510, 511]);

/**
 * 429 and 503 are retried for every method: the server did not process the request. Other 5xx,
 * 408 and network failures only when repeating is safe: an idempotent method, or an idempotency
 * key the server can use to drop the repeat. A connection that was never established is safe to
 * retry for any method.
 */
export function retryVerdict(method: HttpMethod, outcome: AttemptOutcome, hasIdempotencyKey: boolean): RetryVerdict {
  const safe = isIdempotent(method) || hasIdempotencyKey;
  if (outcome.kind === "status") {
    const { status } = outcome;
    if (status === 429) return { retry: true, reason: "rate limited (429)", rateLimited: true };
    if (status === 503) return { retry: true, reason: "service unavailable (503)", rateLimited: true };
    const transient = status === 408 || (status >= 500 && status <= 599 && !PERMANENT_5XX.has(status));
    if (!transient) return { retry: false };
    if (safe) return { retry: true, reason: `server error (${status})`, rateLimited: false };
    return { retry: false, reason: `${method} is not idempotent, so a ${status} is not repeated without an idempotencyKey` };
  }
  if (outcome.code === "ENOTFOUND") return { retry: false, reason: "the host name does not resolve" };
  if (outcome.phase === "connect") return { retry: true, reason: `connection failed (${outcome.code})`, rateLimited: false };
  if (safe) return { retry: true, reason: `network error (${outcome.code})`, rateLimited: false };
  return { retry: false, reason: `${method} is not idempotent, so it is not repeated after a network error without an idempotencyKey` };
}
