/** Exponential backoff with full jitter, for retries the server gave no time for. Pure. */

export interface BackoffOptions {
  /** Ceiling of the first retry's delay. */
  baseMs: number;
  /** No delay is longer than this. */
  capMs: number;
  /** No delay is shorter than this (a 429 without a time should not come straight back). */
  minMs?: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, capMs: 30_000 };

/** The ceiling before jitter for retry `retry` (1 = the first retry): base·2^(retry-1), capped. */
export function backoffCeiling(retry: number, options: BackoffOptions): number {
  const exponent = Math.min(Math.max(0, Math.floor(retry) - 1), 40);
  return Math.min(options.capMs, options.baseMs * 2 ** exponent);
}

/**
 * "Full jitter": uniform in [min, ceiling], so concurrent clients that failed together do not come
 * back together. `random` is injected (tests pin it); a value outside [0, 1) is treated as 0.5.
 */
export function fullJitterDelay(retry: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = backoffCeiling(retry, options);
  const min = Math.min(options.minMs ?? 0, ceiling);
  const r = random();
  const u = Number.isFinite(r) && r >= 0 && r < 1 ? r : 0.5;
  return Math.floor(min + u * (ceiling - min));
}
