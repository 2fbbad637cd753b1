import { BifrostError } from "../../common/errors.js";
import { DURATION_MAX_LENGTH, formatDuration, parseDuration } from "../duration.js";
import type { RetryDefinition } from "../registry/definition.js";

/**
 * Pure readers of what the guest asks to wait for: ctx.sleep / ctx.sleepUntil arguments and a
 * step's retry policy. Both come from hostile code, so each value is measured before it is parsed.
 */

/** From this long up a sleep is durable: committed, the invocation ends, the run resumes at its wake time. */
export const DURABLE_WAIT_MS = 1_000;
/** The longest wait: a run's timeout is at most 7 days too. */
export const MAX_WAIT_MS = 7 * 86_400_000;
/** An ISO time is at most "+275760-09-13T00:00:00.000+00:00" long. */
const ISO_MAX_LENGTH = 40;

/**
 * The step record of a run's n-th ctx.sleep call (0 first). run() replays from the top on every
 * resume and, being deterministic outside steps, meets its sleeps in the same order, so the n-th
 * call finds the record its first invocation wrote. The names are reserved for sleeps.
 */
export const sleepStepName = (n: number): string => `sleep#${n}`;
const SLEEP_STEP = /^sleep#\d{1,10}$/;
export const isSleepStepName = (name: string): boolean => SLEEP_STEP.test(name);

const invalid = (message: string) => new BifrostError("SLEEP_INVALID", message);

function sleepMs(value: unknown): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) throw invalid(`ctx.sleep(duration): ${value} is not a duration: pass a finite number of milliseconds from 0, or a string like "30s"`);
    return Math.ceil(value);
  }
  if (typeof value === "string") {
    const ms = value.length > DURATION_MAX_LENGTH ? undefined : parseDuration(value);
    if (ms === undefined) throw invalid(`ctx.sleep(duration): ${value.length > DURATION_MAX_LENGTH ? `a ${value.length}-character string` : JSON.stringify(value)} is not a duration (use e.g. "500ms", "30s", "5m", "1h")`);
    return ms;
  }
  throw invalid(`ctx.sleep(duration): the duration must be a number of milliseconds or a string like "30s" (got ${typeof value})`);
}

function untilMs(value: unknown): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw invalid(`ctx.sleepUntil(date): ${value} is not a time: pass a Date, an ISO time or epoch milliseconds`);
    return Math.ceil(value);
  }
  if (typeof value === "string") {
    const ms = value.length > ISO_MAX_LENGTH ? Number.NaN : Date.parse(value);
    if (Number.isNaN(ms)) throw invalid(`ctx.sleepUntil(date): ${value.length > ISO_MAX_LENGTH ? `a ${value.length}-character string` : JSON.stringify(value)} is not an ISO time such as "2030-01-01T09:00:00Z"`);
    return ms;
  }
  throw invalid(`ctx.sleepUntil(date): the time must be a Date, an ISO time or epoch milliseconds (got ${typeof value})`);
}

/**
 * When a sleep asked for at `now` wakes: `{ for: duration }` (ctx.sleep) or `{ until: time }`
 * (ctx.sleepUntil; a time already past wakes at once). SLEEP_INVALID for anything else.
 */
export function wakeTime(args: Record<string, unknown>, now: number): number {
  const wake = "until" in args ? Math.max(now, untilMs(args.until)) : now + sleepMs(args.for);
  if (wake - now > MAX_WAIT_MS) throw invalid(`a sleep can last at most ${formatDuration(MAX_WAIT_MS)}; this one would wake at ${new Date(Math.min(wake, 8.64e15)).toISOString()}`);
  return wake;
}

const RETRY_KEYS = new Set(["attempts", "backoff", "delay", "maxDelay"]);
/** Defaults of a step's retry: a step is usually retried after a short, growing pause. */
const STEP_RETRY_DEFAULTS = { backoff: "exponential", delayMs: 1_000, maxDelayMs: 3_600_000 } as const;

const badRetry = (what: string, message: string) => new BifrostError("STEP_RETRY_INVALID", `${what}: ${message}`);

function retryDuration(value: unknown, field: string, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (value === 0) return 0;
  const ms = typeof value === "string" && value.length > DURATION_MAX_LENGTH ? undefined : parseDuration(value);
  if (ms === undefined) throw badRetry(what, `retry.${field} must be a duration such as "2s" or a number of milliseconds`);
  if (ms > MAX_WAIT_MS) throw badRetry(what, `retry.${field} must be at most ${formatDuration(MAX_WAIT_MS)}`);
  return ms;
}

/**
 * A step's `{ retry: { attempts, backoff?, delay?, maxDelay? } }` (absent or null: no retry of the
 * step alone). `attempts` counts the first try, as the run-level policy does.
 */
export function readStepRetry(options: unknown, what: string): RetryDefinition | undefined {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== "object" || Array.isArray(options)) throw badRetry(what, "the options must be an object like { retry: { attempts: 3 } }");
  const keys = Object.keys(options);
  if (keys.some((k) => k !== "retry")) throw badRetry(what, `unknown option ${JSON.stringify(keys.find((k) => k !== "retry")!.slice(0, 40))}: the only option is retry`);
  const retry = (options as { retry?: unknown }).retry;
  if (retry === undefined || retry === null) return undefined;
  if (typeof retry !== "object" || Array.isArray(retry)) throw badRetry(what, "retry must be an object like { attempts: 3, backoff: \"exponential\", delay: \"1s\" }");
  const raw = retry as Record<string, unknown>;
  const unknown = Object.keys(raw).find((k) => !RETRY_KEYS.has(k));
  if (unknown !== undefined) throw badRetry(what, `unknown retry option ${JSON.stringify(unknown.slice(0, 40))}: use attempts, backoff, delay and maxDelay`);
  const { attempts } = raw;
  if (typeof attempts !== "number" || !Number.isInteger(attempts) || attempts < 1 || attempts > 100) throw badRetry(what, "retry.attempts must be an integer from 1 to 100 (total tries, counting the first)");
  const backoff = raw.backoff ?? STEP_RETRY_DEFAULTS.backoff;
  if (backoff !== "exponential" && backoff !== "fixed") throw badRetry(what, 'retry.backoff must be "exponential" or "fixed"');
  return {
    attempts,
    backoff,
    delayMs: retryDuration(raw.delay, "delay", STEP_RETRY_DEFAULTS.delayMs, what),
    maxDelayMs: retryDuration(raw.maxDelay, "maxDelay", STEP_RETRY_DEFAULTS.maxDelayMs, what),
  };
}
