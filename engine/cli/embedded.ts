import { isAbsolute, relative } from "node:path";
import { openStorage } from "../../storage/index.js";
import type { Storage } from "../../storage/types.js";
import { workflowListView } from "../api/views.js";
import { loadConfig, type EngineConfig } from "../config.js";
import { Engine } from "../engine.js";
import { createLogger } from "../logger.js";
import { yellow } from "./format.js";

/**
 * What the CLI's commands share when they work on the data directory themselves (no BIFROST_URL):
 * an engine or bare storage opened for one command, and the words for workflows that did not load.
 */

export const out = (text: string) => process.stdout.write(`${text}\n`);
export const err = (text: string) => process.stderr.write(`${text}\n`);

/** Beyond the grace period, how long closing the server and storage may take before exiting. */
export const SHUTDOWN_MARGIN_MS = 5_000;

/** Set once `run` hands its run back on SIGTERM: the engine closing under it is then expected. */
export const exitState = { handingBack: false };

export function cliConfig(): EngineConfig {
  return loadConfig(process.env, { watch: false });
}

export async function openCliEngine(): Promise<Engine> {
  const config = cliConfig();
  // The CLI speaks to people on stdout/stderr; engine logs go to stderr only when asked for.
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? "silent", destination: process.stderr });
  return Engine.open(config, { logger });
}

/** Commands that only read storage don't load or compile workflows. */
export async function withStorage<T>(fn: (storage: Storage) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const storage = await openStorage({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

/** Runs `fn` on an engine opened for one command (never started), and stops it whatever happens. */
export async function withEngine<T>(openEngine: () => Promise<Engine>, fn: (engine: Engine) => Promise<T>): Promise<T> {
  const engine = await openEngine();
  try {
    return await fn(engine);
  } finally {
    await engine.stop(0);
  }
}

/** GET /api/workflows, and `workflows list` embedded: the same view either way. */
export type WorkflowListing = ReturnType<typeof workflowListView>;
/** What the warning needs of a workflow (the API's workflow view has it). */
export interface KeptVersion {
  name: string;
  version: string;
  updatedAt: string | null;
  file: string | null;
  lastError: { code?: string | undefined; message?: string | undefined } | null;
}

/** Every module that failed to load, and every workflow serving its last good version instead. */
export function problemLines(listing: WorkflowListing): string[] {
  return [
    ...listing.problems.map((p) => `not loaded: ${p.error?.message ?? p.file ?? p.name ?? "a module"}`),
    ...listing.items.flatMap((w) => (w.lastError ? [keptVersionText(w)] : [])),
  ];
}

export function reportProblems(engine: Engine): void {
  for (const line of problemLines(workflowListView(engine.registry, engine.now()))) err(yellow(line));
}

/** Says which version of a workflow runs while its module's current text is rejected, and why. */
export function keptVersionText(w: KeptVersion): string {
  const text = w.file ? `the current text of ${relativeToCwd(w.file)}` : "the module sent last";
  return `warning: "${w.name}" runs its last good version ${w.version} (registered ${w.updatedAt}): ${text} was rejected: ${w.lastError?.code} ${w.lastError?.message}`;
}

function relativeToCwd(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : file;
}
