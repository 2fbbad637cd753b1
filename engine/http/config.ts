/**
 * The HTTP settings of the engine configuration (the README's configuration table), read from the
 * environment. Pure: the environment is an argument; anything invalid is CONFIG_INVALID naming the
 * variable.
 */
import { BifrostError } from "../../common/errors.js";
import { parseHostPattern, type HostPattern } from "./host-patterns.js";

export interface HostLimitRule {
  pattern: HostPattern;
  /** Requests in flight to the host at once, from every run of the process. */
  concurrency?: number;
  /** Requests started per second, evenly spaced. */
  rps?: number;
}

/** Scope of an allow-list: every run, the runs of one workflow, or the runs of one org. */
export type AllowScope = { kind: "all" } | { kind: "workflow"; name: string } | { kind: "org"; org: string };

export interface AllowList {
  scope: AllowScope;
  /** Written as configured, e.g. "workflow:halopsa_sync". */
  key: string;
  patterns: HostPattern[];
  /** "*" in the list: any host (the list then restricts nothing). */
  any: boolean;
}

export interface HttpConfig {
  /** Per request, unless the call passes `timeout`; never past the invocation's deadline. @default 30000 (BIFROST_HTTP_TIMEOUT_MS) */
  timeoutMs: number;
  /** Request body (json or body) limit. @default 2 MiB (BIFROST_HTTP_MAX_REQUEST_BYTES) */
  maxRequestBytes: number;
  /** Response body limit. @default 5 MiB (BIFROST_HTTP_MAX_RESPONSE_BYTES) */
  maxResponseBytes: number;
  /** BIFROST_HTTP_HOST_LIMITS */
  hostLimits: HostLimitRule[];
  /** BIFROST_HTTP_ALLOWED_HOSTS; empty: every host but metadata addresses. */
  allowLists: AllowList[];
}

type Env = Record<string, string | undefined>;

export const HTTP_DEFAULTS = {
  timeoutMs: 30_000,
  maxRequestBytes: 2 * 1024 * 1024,
  maxResponseBytes: 5 * 1024 * 1024,
} as const;

/** A request body must fit the sandbox bridge (4 M characters of JSON for all of a call's arguments). */
const MAX_REQUEST_LIMIT = 3 * 1024 * 1024;
const MAX_RESPONSE_LIMIT = 64 * 1024 * 1024;
const MAX_JSON_SETTING = 64 * 1024;

function invalid(name: string, raw: string, why: string): BifrostError {
  const shown = raw.length > 200 ? `${raw.slice(0, 200)}…` : raw;
  return new BifrostError("CONFIG_INVALID", `${name}=${JSON.stringify(shown)} is invalid: ${why}`);
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw invalid(name, raw, `expected an integer from ${min} to ${max}`);
  return value;
}

function jsonSetting(env: Env, name: string, example: string): Record<string, unknown> | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  if (raw.length > MAX_JSON_SETTING) throw invalid(name, raw, `at most ${MAX_JSON_SETTING} characters`);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw invalid(name, raw, `expected a JSON object such as ${example}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw invalid(name, raw, `expected a JSON object such as ${example}`);
  return value as Record<string, unknown>;
}

const LIMITS_EXAMPLE = '{"halo.example.com":{"concurrency":4,"rps":10}}';

function hostLimits(env: Env): HostLimitRule[] {
  const name = "BIFROST_HTTP_HOST_LIMITS";
  const raw = env[name] ?? "";
  const object = jsonSetting(env, name, LIMITS_EXAMPLE);
  if (!object) return [];
  return Object.entries(object).map(([host, value]) => {
    const pattern = parseHostPattern(host);
    if (typeof pattern === "string") throw invalid(name, raw, pattern);
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw invalid(name, raw, `the limits of "${host}" must be an object such as {"concurrency":4,"rps":10}`);
    const rule: HostLimitRule = { pattern };
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      if (key === "concurrency") {
        if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 10_000) throw invalid(name, raw, `"${host}".concurrency must be an integer from 1 to 10000`);
        rule.concurrency = v as number;
      } else if (key === "rps") {
        if (typeof v !== "number" || !(v > 0) || v > 100_000) throw invalid(name, raw, `"${host}".rps must be a number above 0 and at most 100000`);
        rule.rps = v;
      } else {
        throw invalid(name, raw, `"${host}" has an unknown limit "${key}" (use concurrency and rps)`);
      }
    }
    return rule;
  });
}

const ALLOW_EXAMPLE = '{"*":["*.halopsa.com"],"workflow:graph_sync":["graph.microsoft.com"],"org:acme":["acme.halopsa.com"]}';

function allowScope(key: string): AllowScope | undefined {
  if (key === "*") return { kind: "all" };
  if (key.startsWith("workflow:") && key.length > 9) return { kind: "workflow", name: key.slice(9) };
  if (key.startsWith("org:") && key.length > 4) return { kind: "org", org: key.slice(4) };
  return undefined;
}

function allowLists(env: Env): AllowList[] {
  const name = "BIFROST_HTTP_ALLOWED_HOSTS";
  const raw = env[name] ?? "";
  const object = jsonSetting(env, name, ALLOW_EXAMPLE);
  if (!object) return [];
  return Object.entries(object).map(([key, value]) => {
    const scope = allowScope(key);
    if (!scope) throw invalid(name, raw, `"${key}" is not a scope: use "*", "workflow:<name>" or "org:<org>"`);
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) throw invalid(name, raw, `"${key}" must map to an array of host patterns`);
    const list: AllowList = { scope, key, patterns: [], any: false };
    for (const text of value as string[]) {
      if (text.trim() === "*") {
        list.any = true;
        continue;
      }
      const pattern = parseHostPattern(text);
      if (typeof pattern === "string") throw invalid(name, raw, pattern);
      list.patterns.push(pattern);
    }
    return list;
  });
}

export function loadHttpConfig(env: Env): HttpConfig {
  return {
    timeoutMs: int(env, "BIFROST_HTTP_TIMEOUT_MS", HTTP_DEFAULTS.timeoutMs, 1, 3_600_000),
    maxRequestBytes: int(env, "BIFROST_HTTP_MAX_REQUEST_BYTES", HTTP_DEFAULTS.maxRequestBytes, 0, MAX_REQUEST_LIMIT),
    maxResponseBytes: int(env, "BIFROST_HTTP_MAX_RESPONSE_BYTES", HTTP_DEFAULTS.maxResponseBytes, 0, MAX_RESPONSE_LIMIT),
    hostLimits: hostLimits(env),
    allowLists: allowLists(env),
  };
}
