import { Ajv } from "ajv";
import { parseDuration } from "../duration.js";
import { cronError } from "../schedule/cron.js";

/** A workflow's metadata after validation, with durations in milliseconds and defaults filled in. */
export interface WorkflowDefinition {
  name: string;
  description: string | null;
  params: Record<string, unknown>;
  schedule: ScheduleDefinition | null;
  timeoutMs: number;
  chunkTimeoutMs: number;
  retry: RetryDefinition;
}

export interface ScheduleDefinition {
  cron: string;
  timezone: string;
  overlap: "skip" | "queue" | "allow";
  catchUp: "none" | "latest" | "all";
  catchUpWindowMs: number;
}

export interface RetryDefinition {
  /** Total attempts including the first (1 = no retry). */
  attempts: number;
  backoff: "exponential" | "fixed";
  delayMs: number;
  maxDelayMs: number;
}

export const NAME_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;
const KEYS = ["name", "description", "params", "schedule", "timeout", "chunkTimeout", "retry"];
const SCHEDULE_KEYS = ["cron", "timezone", "overlap", "catchUp", "catchUpWindow"];
const RETRY_KEYS = ["attempts", "backoff", "delay", "maxDelay"];
const HOUR = 3_600_000;

// Only used to check that `params` is a well-formed JSON Schema; run-time validation lives in params.ts.
const schemaChecker = new Ajv({ strict: false, validateFormats: false });

type Result = { ok: true; definition: WorkflowDefinition } | { ok: false; problems: string[] };

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function unknownKeys(obj: Record<string, unknown>, allowed: string[], where: string, problems: string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) problems.push(`${where}: unknown field "${key}" (allowed: ${allowed.join(", ")})`);
  }
}

function duration(value: unknown, field: string, fallback: number, problems: string[]): number {
  if (value === undefined) return fallback;
  const ms = parseDuration(value);
  if (ms === undefined) problems.push(`${field}: "${String(value)}" is not a duration (use e.g. "30s", "5m", "1h" or milliseconds)`);
  return ms ?? fallback;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string, fallback: T, problems: string[]): T {
  if (value === undefined) return fallback;
  if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
  problems.push(`${field}: must be one of ${allowed.map((a) => `"${a}"`).join(", ")}`);
  return fallback;
}

function schedule(raw: unknown, problems: string[]): ScheduleDefinition | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === "string") raw = { cron: raw };
  if (!isObject(raw)) {
    problems.push('schedule: must be an object like { cron: "0 9 * * 1", timezone: "UTC" }');
    return null;
  }
  unknownKeys(raw, SCHEDULE_KEYS, "schedule", problems);
  if (typeof raw.cron !== "string") {
    problems.push("schedule.cron: must be a cron expression string");
    return null;
  }
  const timezone = raw.timezone === undefined ? "UTC" : raw.timezone;
  if (typeof timezone !== "string") {
    problems.push("schedule.timezone: must be an IANA time zone name");
    return null;
  }
  const bad = cronError(raw.cron, timezone);
  if (bad) problems.push(`schedule: ${bad}`);
  return {
    cron: raw.cron,
    timezone,
    overlap: oneOf(raw.overlap, ["skip", "queue", "allow"] as const, "schedule.overlap", "skip", problems),
    catchUp: oneOf(raw.catchUp, ["none", "latest", "all"] as const, "schedule.catchUp", "latest", problems),
    catchUpWindowMs: duration(raw.catchUpWindow, "schedule.catchUpWindow", 24 * HOUR, problems),
  };
}

function retry(raw: unknown, problems: string[]): RetryDefinition {
  const fallback: RetryDefinition = { attempts: 1, backoff: "exponential", delayMs: 10_000, maxDelayMs: HOUR };
  if (raw === undefined || raw === null) return fallback;
  if (!isObject(raw)) {
    problems.push('retry: must be an object like { attempts: 3, backoff: "exponential" }');
    return fallback;
  }
  unknownKeys(raw, RETRY_KEYS, "retry", problems);
  const attempts = raw.attempts === undefined ? fallback.attempts : raw.attempts;
  if (typeof attempts !== "number" || !Number.isInteger(attempts) || attempts < 1 || attempts > 100) {
    problems.push("retry.attempts: must be an integer from 1 to 100 (total attempts, including the first)");
  }
  return {
    attempts: typeof attempts === "number" && Number.isInteger(attempts) && attempts >= 1 ? Math.min(attempts, 100) : 1,
    backoff: oneOf(raw.backoff, ["exponential", "fixed"] as const, "retry.backoff", "exponential", problems),
    delayMs: duration(raw.delay, "retry.delay", fallback.delayMs, problems),
    maxDelayMs: duration(raw.maxDelay, "retry.maxDelay", fallback.maxDelayMs, problems),
  };
}

/** Validates the plain-data definition read from a module. Pure: no I/O. */
export function validateDefinition(raw: unknown): Result {
  const problems: string[] = [];
  if (!isObject(raw)) return { ok: false, problems: ["the default export must be workflow({ ... })"] };
  unknownKeys(raw, KEYS, "workflow", problems);
  const name = raw.name;
  if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
    problems.push(`name: ${JSON.stringify(name)} must match ${NAME_PATTERN} (lowercase letters, digits, "_" and "-", starting with a letter)`);
  }
  if (raw.description !== undefined && typeof raw.description !== "string") problems.push("description: must be a string");
  let params: Record<string, unknown> = { type: "object" };
  if (raw.params !== undefined) {
    if (!isObject(raw.params)) problems.push("params: must be a JSON Schema object");
    else {
      params = raw.params;
      try {
        schemaChecker.compile(params);
      } catch (err) {
        problems.push(`params: not a valid JSON Schema: ${(err as Error).message}`);
      }
    }
  }
  const definition: WorkflowDefinition = {
    name: typeof name === "string" ? name : "",
    description: typeof raw.description === "string" ? raw.description : null,
    params,
    schedule: schedule(raw.schedule, problems),
    timeoutMs: duration(raw.timeout, "timeout", HOUR, problems),
    chunkTimeoutMs: duration(raw.chunkTimeout, "chunkTimeout", 5 * 60_000, problems),
    retry: retry(raw.retry, problems),
  };
  if (definition.chunkTimeoutMs > definition.timeoutMs) definition.chunkTimeoutMs = definition.timeoutMs;
  return problems.length > 0 ? { ok: false, problems } : { ok: true, definition };
}
