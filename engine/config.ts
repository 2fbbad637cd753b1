import { hostname } from "node:os";
import { resolve } from "node:path";
import { BifrostError } from "../common/errors.js";
import { keyFromEnv } from "./secrets/key.js";
import { loadHttpConfig, type HttpConfig } from "./http/config.js";

/** Engine configuration, as read from the environment (the README's configuration table). Every field has a default. */
export interface EngineConfig {
  /** @default 7071 (BIFROST_PORT) */
  port: number;
  /** @default "127.0.0.1" (BIFROST_HOST); use 0.0.0.0 to listen on every interface */
  host: string;
  /** @default http://localhost:<port> (BIFROST_PUBLIC_URL) */
  publicUrl: string;
  /** Whether BIFROST_PUBLIC_URL was set: OAuth checks redirect URIs against a real public URL only. */
  publicUrlSet: boolean;
  /** @default ./data (BIFROST_DATA_DIR) */
  dataDir: string;
  /** @default ./workflows (BIFROST_WORKFLOWS_DIR) */
  workflowsDir: string;
  /** PostgreSQL URL (DATABASE_URL); unset means the embedded SQLite file */
  databaseUrl: string | undefined;
  /** Runs executing at once in this process. @default 8 (BIFROST_CONCURRENCY) */
  concurrency: number;
  /** @default "info" (LOG_LEVEL) */
  logLevel: string;
  /** Sandbox heap limit per run. @default 128 (BIFROST_SANDBOX_MEMORY_MB) */
  sandboxMemoryMb: number;
  /** CPU time one invocation may use. @default 60000 (BIFROST_SANDBOX_CPU_MS) */
  sandboxCpuMs: number;
  /** Run lease; a dead engine's runs are reclaimed after it. @default 30000 (BIFROST_LEASE_MS) */
  leaseMs: number;
  /** Poll interval for runs queued by other processes. @default 1000 (BIFROST_POLL_MS) */
  pollMs: number;
  /** Time running invocations get to finish on SIGTERM. @default 10000 (BIFROST_SHUTDOWN_GRACE_MS) */
  shutdownGraceMs: number;
  /** Reload workflow files when they change. @default true for `start` (BIFROST_WATCH=0 disables) */
  watch: boolean;
  /** Identifies this process in run leases. */
  owner: string;
  /** Key that seals stored secrets (BIFROST_SECRET_KEY); unset means <dataDir>/secret.key. Never logged. */
  secretKey: string | undefined;
  /** ctx.http: timeouts, body limits, per-host limits, allow-lists (BIFROST_HTTP_*). */
  http: HttpConfig;
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new BifrostError("CONFIG_INVALID", `${name}=${JSON.stringify(raw)} is invalid: expected an integer from ${min} to ${max}`);
  }
  return value;
}

const TRUE = ["1", "true", "yes", "on"];
const FALSE = ["0", "false", "no", "off"];

/** A switch: the usual spellings, in any case; anything else is refused rather than read as "on". */
function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = raw.trim().toLowerCase();
  if (TRUE.includes(value)) return true;
  if (FALSE.includes(value)) return false;
  throw new BifrostError("CONFIG_INVALID", `${name}=${JSON.stringify(raw)} is invalid: use 1, true, yes or on to enable it, 0, false, no or off to disable it`);
}

export function loadConfig(env: Env = process.env, overrides: Partial<EngineConfig> = {}): EngineConfig {
  const port = overrides.port ?? int(env, "BIFROST_PORT", 7071, 0, 65535);
  const publicUrl = env.BIFROST_PUBLIC_URL?.replace(/\/+$/, "") || `http://localhost:${port}`;
  let protocol: string | undefined;
  try {
    protocol = new URL(publicUrl).protocol;
  } catch {
    // reported below
  }
  if (protocol !== "http:" && protocol !== "https:") {
    throw new BifrostError("CONFIG_INVALID", `BIFROST_PUBLIC_URL=${JSON.stringify(publicUrl)} is invalid: expected an http:// or https:// URL such as https://bifrost.example.com`);
  }
  // PostgreSQL has not landed: running on SQLite while DATABASE_URL names another database would
  // split the data between the two without anyone noticing.
  if (env.DATABASE_URL) {
    throw new BifrostError("CONFIG_INVALID", "DATABASE_URL is set, but this release supports only the embedded SQLite database (PostgreSQL support has not landed yet)", {
      fix: "Unset DATABASE_URL; the engine keeps its data in bifrost.db under BIFROST_DATA_DIR (default ./data).",
    });
  }
  const config: EngineConfig = {
    port,
    host: env.BIFROST_HOST || "127.0.0.1",
    publicUrl,
    publicUrlSet: Boolean(env.BIFROST_PUBLIC_URL?.trim()),
    dataDir: resolve(env.BIFROST_DATA_DIR || "./data"),
    workflowsDir: resolve(env.BIFROST_WORKFLOWS_DIR || "./workflows"),
    databaseUrl: env.DATABASE_URL || undefined,
    concurrency: int(env, "BIFROST_CONCURRENCY", 8, 1, 1024),
    logLevel: env.LOG_LEVEL || "info",
    sandboxMemoryMb: int(env, "BIFROST_SANDBOX_MEMORY_MB", 128, 8, 16384),
    sandboxCpuMs: int(env, "BIFROST_SANDBOX_CPU_MS", 60_000, 10, 86_400_000),
    leaseMs: int(env, "BIFROST_LEASE_MS", 30_000, 100, 3_600_000),
    pollMs: int(env, "BIFROST_POLL_MS", 1_000, 10, 600_000),
    shutdownGraceMs: int(env, "BIFROST_SHUTDOWN_GRACE_MS", 10_000, 0, 3_600_000),
    watch: bool(env, "BIFROST_WATCH", true),
    owner: `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`,
    // Checked here so a malformed key is CONFIG_INVALID before anything opens.
    secretKey: keyFromEnv(env.BIFROST_SECRET_KEY) ? env.BIFROST_SECRET_KEY : undefined,
    http: loadHttpConfig(env),
    ...overrides,
  };
  if (!LOG_LEVELS.includes(config.logLevel)) {
    throw new BifrostError("CONFIG_INVALID", `LOG_LEVEL=${JSON.stringify(config.logLevel)} is invalid: use one of ${LOG_LEVELS.join(", ")}`);
  }
  return config;
}
