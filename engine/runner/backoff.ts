import type { RetryDefinition } from "../registry/definition.js";

/** Delay before run-level attempt `nextAttempt` (2 = first retry). Pure. */
export function retryDelayMs(retry: RetryDefinition, nextAttempt: number): number {
  if (retry.backoff === "fixed") return Math.min(retry.delayMs, retry.maxDelayMs);
  const exponent = Math.max(0, nextAttempt - 2);
  return Math.min(retry.delayMs * 2 ** exponent, retry.maxDelayMs);
}
