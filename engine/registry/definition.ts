import { Ajv } from "ajv";
import { capString, DEFAULT_JSON_DEPTH, stringifyBounded } from "../../common/json-bounds.js";
import { DURATION_MAX_LENGTH, parseDuration } from "../duration.js";
import { linearRegExp, UnsupportedPatternError } from "../linear-regexp.js";
import { isOrg } from "../auth/org.js";
import { CRON_MAX_LENGTH, cronError, TIMEZONE_MAX_LENGTH } from "../scheduler/cron.js";

/** A workflow's metadata after validation, with durations in milliseconds and defaults filled in. */
export interface WorkflowDefinition {
  name: string;
  description: string | null;
  params: Record<string, unknown>;
  schedule: ScheduleDefinition | null;
  timeoutMs: number;
  chunkTimeoutMs: number;
  retry: RetryDefinition;
  /** Accepts POST /api/hooks/:name, signed with the workflow's webhook secret. */
  webhook?: boolean;
}

export interface ScheduleDefinition {
  cron: string;
  timezone: string;
  overlap: "skip" | "queue" | "allow";
  catchUp: "none" | "latest" | "all";
  catchUpWindowMs: number;
  /** One fire per listed org at each instant (absent: fires without an org). */
  orgs?: string[];
}

export interface RetryDefinition {
  /** Total attempts including the first (1 = no retry). */
  attempts: number;
  backoff: "exponential" | "fixed";
  delayMs: number;
  maxDelayMs: number;
}

export const NAME_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;
const KEYS = ["name", "description", "params", "schedule", "timeout", "chunkTimeout", "retry", "webhook"];
const SCHEDULE_KEYS = ["cron", "timezone", "overlap", "catchUp", "catchUpWindow", "orgs"];
const RETRY_KEYS = ["attempts", "backoff", "delay", "maxDelay"];
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * Bounds on a definition. It is read from guest code, so every string is hostile until measured:
 * each is checked for length before any regex or parser sees it, and the whole definition is
 * measured (depth, then size) before ajv compiles its schema.
 */
export const DEFINITION_LIMITS = {
  /** The definition as JSON (the params schema is nearly all of it). */
  maxLength: 256 * 1024,
  maxDepth: DEFAULT_JSON_DEPTH,
  description: 1000,
  /** A duration string such as "1h30m". */
  duration: DURATION_MAX_LENGTH,
  /** Timers are Node timers: past 2^31 ms (24.8 days) they fire at once. */
  maxTimeoutMs: 7 * DAY,
  maxRetryDelayMs: 7 * DAY,
  maxCatchUpWindowMs: 366 * DAY,
  /** schedule.orgs: one fire per org at each instant. */
  maxScheduleOrgs: 10_000,
} as const;

// Only used to check that `params` is a well-formed JSON Schema with patterns the run-time engine
// accepts; run-time validation lives in params.ts and uses the same regex engine.
const schemaChecker = new Ajv({ strict: false, validateFormats: false, code: { regExp: linearRegExp } });

/** A guest value quoted in a problem message: never more than a line. */
function quote(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(capString(value, 80));
  if (value === undefined) return "undefined";
  const text = stringifyBounded(value, { maxDepth: 4, maxLength: 80 });
  return text.ok ? text.text : typeof value;
}

type Result = { ok: true; definition: WorkflowDefinition } | { ok: false; problems: string[] };

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function unknownKeys(obj: Record<string, unknown>, allowed: string[], where: string, problems: string[]): void {
  const unknown = Object.keys(obj).filter((key) => !allowed.includes(key));
  for (const key of unknown.slice(0, 5)) problems.push(`${where}: unknown field ${quote(key)} (allowed: ${allowed.join(", ")})`);
  if (unknown.length > 5) problems.push(`${where}: ${unknown.length - 5} more unknown fields`);
}

function duration(value: unknown, field: string, fallback: number, max: number, problems: string[]): number {
  if (value === undefined) return fallback;
  if (typeof value === "string" && value.length > DEFINITION_LIMITS.duration) {
    problems.push(`${field}: ${quote(value)} is ${value.length} characters long; a duration has at most ${DEFINITION_LIMITS.duration}`);
    return fallback;
  }
  const ms = parseDuration(value);
  if (ms === undefined) {
    problems.push(`${field}: ${quote(value)} is not a duration (use e.g. "30s", "5m", "1h" or milliseconds)`);
    return fallback;
  }
  if (ms > max) {
    problems.push(`${field}: ${quote(value)} is longer than the limit of ${max / DAY} days`);
    return fallback;
  }
  return ms;
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
  if (raw.cron.length > CRON_MAX_LENGTH) {
    problems.push(`schedule.cron: ${quote(raw.cron)} is ${raw.cron.length} characters long; a cron expression has at most ${CRON_MAX_LENGTH}`);
    return null;
  }
  const timezone = raw.timezone === undefined ? "UTC" : raw.timezone;
  if (typeof timezone !== "string") {
    problems.push("schedule.timezone: must be an IANA time zone name");
    return null;
  }
  if (timezone.length > TIMEZONE_MAX_LENGTH) {
    problems.push(`schedule.timezone: ${quote(timezone)} is ${timezone.length} characters long; an IANA time zone name has at most ${TIMEZONE_MAX_LENGTH}`);
    return null;
  }
  const bad = cronError(raw.cron, timezone);
  if (bad) problems.push(`schedule: ${bad}`);
  const orgs = scheduleOrgs(raw.orgs, problems);
  return {
    cron: raw.cron,
    timezone,
    overlap: oneOf(raw.overlap, ["skip", "queue", "allow"] as const, "schedule.overlap", "skip", problems),
    catchUp: oneOf(raw.catchUp, ["none", "latest", "all"] as const, "schedule.catchUp", "latest", problems),
    catchUpWindowMs: duration(raw.catchUpWindow, "schedule.catchUpWindow", DAY, DEFINITION_LIMITS.maxCatchUpWindowMs, problems),
    ...(orgs === undefined ? {} : { orgs }),
  };
}

/** schedule.orgs: distinct org names (the pattern of a run's org), at most maxScheduleOrgs. */
function scheduleOrgs(raw: unknown, problems: string[]): string[] | undefined {
  if (raw === undefined) return undefined;
  const max = DEFINITION_LIMITS.maxScheduleOrgs;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > max) {
    problems.push(`schedule.orgs: must be a list of 1 to ${max} org names, like ["acme", "contoso"]`);
    return undefined;
  }
  const seen = new Set<string>();
  for (const org of raw) {
    // isOrg measures the length before its pattern sees the string.
    if (typeof org !== "string" || !isOrg(org)) {
      problems.push(`schedule.orgs: ${quote(org)} is not an org name (letters, digits, "_", ".", ":" or "-", at most 128, starting with a letter or digit)`);
      return undefined;
    }
    if (seen.has(org)) {
      problems.push(`schedule.orgs: ${quote(org)} is listed twice`);
      return undefined;
    }
    seen.add(org);
  }
  return [...seen];
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
    delayMs: duration(raw.delay, "retry.delay", fallback.delayMs, DEFINITION_LIMITS.maxRetryDelayMs, problems),
    maxDelayMs: duration(raw.maxDelay, "retry.maxDelay", fallback.maxDelayMs, DEFINITION_LIMITS.maxRetryDelayMs, problems),
  };
}

/** Validates the plain-data definition read from a module. Pure: no I/O. */
export function validateDefinition(raw: unknown): Result {
  const problems: string[] = [];
  if (!isObject(raw)) return { ok: false, problems: ["the default export must be workflow({ ... })"] };
  const measured = stringifyBounded(raw, { maxDepth: DEFINITION_LIMITS.maxDepth, maxLength: DEFINITION_LIMITS.maxLength });
  if (!measured.ok) {
    const v = measured.violation;
    const why =
      v.reason === "size"
        ? `is ${v.length} characters as JSON, more than the limit of ${DEFINITION_LIMITS.maxLength} (a params schema that large belongs in a shared file)`
        : v.reason === "depth"
          ? `nests more than ${DEFINITION_LIMITS.maxDepth} levels deep`
          : `is not plain data: ${capString(v.message, 200)}`;
    return { ok: false, problems: [`the workflow definition ${why}`] };
  }
  unknownKeys(raw, KEYS, "workflow", problems);
  const name = raw.name;
  // The length is checked first so that the pattern never sees a long guest string.
  if (typeof name !== "string" || name.length > 64 || !NAME_PATTERN.test(name)) {
    problems.push(`name: ${quote(name)} must match ${NAME_PATTERN} (lowercase letters, digits, "_" and "-", starting with a letter)`);
  }
  if (raw.description !== undefined && typeof raw.description !== "string") problems.push("description: must be a string");
  if (typeof raw.description === "string" && raw.description.length > DEFINITION_LIMITS.description) {
    problems.push(`description: ${raw.description.length} characters; a description has at most ${DEFINITION_LIMITS.description} (put longer documentation in the module)`);
  }
  let params: Record<string, unknown> = { type: "object" };
  if (raw.params !== undefined) {
    if (!isObject(raw.params)) problems.push("params: must be a JSON Schema object");
    else {
      params = raw.params;
      const bad = schemaProblem(params);
      if (bad) problems.push(`params: ${bad}`);
    }
  }
  const timeoutMs = duration(raw.timeout, "timeout", HOUR, DEFINITION_LIMITS.maxTimeoutMs, problems);
  const definition: WorkflowDefinition = {
    name: typeof name === "string" ? name : "",
    description: typeof raw.description === "string" ? raw.description : null,
    params,
    schedule: schedule(raw.schedule, problems),
    timeoutMs,
    chunkTimeoutMs: duration(raw.chunkTimeout, "chunkTimeout", 5 * 60_000, DEFINITION_LIMITS.maxTimeoutMs, problems),
    retry: retry(raw.retry, problems),
    webhook: raw.webhook === true,
  };
  if (raw.webhook !== undefined && typeof raw.webhook !== "boolean") problems.push(`webhook: ${quote(raw.webhook)} must be true or false`);
  if (definition.chunkTimeoutMs > definition.timeoutMs) definition.chunkTimeoutMs = definition.timeoutMs;
  return problems.length > 0 ? { ok: false, problems } : { ok: true, definition };
}

/** Why ajv (with the run-time regex engine) cannot compile the schema, or undefined. */
function schemaProblem(schema: Record<string, unknown>): string | undefined {
  try {
    schemaChecker.compile(schema);
    return undefined;
  } catch (err) {
    if (err instanceof UnsupportedPatternError) return err.message;
    return `not a valid JSON Schema: ${capString((err as Error).message, 300)}`;
  } finally {
    // ajv caches every schema it compiled and refuses a second one with the same $id: without
    // this, reloading an edited module whose schema has an $id would fail.
    schemaChecker.removeSchema(schema);
  }
}
