import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, afterEach } from "vitest";
import { createKey } from "../engine/auth/key-store.js";
import type { Role } from "../engine/auth/roles.js";
import { loadConfig, type EngineConfig } from "../engine/config.js";
import { Engine, type EngineDeps } from "../engine/engine.js";
import { REDACT_PATHS, type Logger } from "../engine/logger.js";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = "bifrost-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** The example workflows the tests run, by name: a user's own module in ./workflows is not copied. */
export const EXAMPLE_WORKFLOWS = ["always_fails.ts", "device_report.ts", "hello.ts"] as const;

/**
 * A fresh workflows directory holding copies of the examples. It is named "workflows" so that
 * paths in stacks read as they do for a user (`workflows/always_fails.ts:12`).
 */
export function copyExamples(): string {
  const dir = join(tempDir("bifrost-examples-"), "workflows");
  mkdirSync(dir);
  for (const file of EXAMPLE_WORKFLOWS) copyFileSync(new URL(`../workflows/${file}`, import.meta.url), join(dir, file));
  return dir;
}

/** Writes files (relative path → contents) under `root`. */
export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [path, contents] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), contents);
  }
}

/** A pino logger that keeps its JSON lines in memory, with the engine's redaction. */
export function memoryLogger(): { logger: Logger; lines: () => string[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = pino({ level: "debug", redact: { paths: REDACT_PATHS, censor: "[REDACTED]" } }, stream);
  return { logger, lines: () => chunks.join("").split("\n").filter(Boolean) };
}

export interface TestEngineOptions {
  workflows?: Record<string, string>;
  config?: Partial<EngineConfig>;
  deps?: EngineDeps;
  dataDir?: string;
  workflowsDir?: string;
}

/** An engine over a fresh SQLite file and workflows directory. Not started. */
export async function openTestEngine(options: TestEngineOptions = {}): Promise<{ engine: Engine; dataDir: string; workflowsDir: string; logLines: () => string[] }> {
  const dataDir = options.dataDir ?? tempDir();
  const workflowsDir = options.workflowsDir ?? tempDir("bifrost-wf-");
  if (options.workflows) writeFiles(workflowsDir, options.workflows);
  const config = loadConfig({}, { dataDir, workflowsDir, watch: false, pollMs: 50, port: 0, ...options.config });
  const memory = memoryLogger();
  const engine = await Engine.open(config, { logger: memory.logger, ...options.deps });
  return { engine, dataDir, workflowsDir, logLines: memory.lines };
}

/**
 * Creates an API key on the engine's database (admin by default) and returns the key. Pass it as
 * `authorization: "Bearer " + key`, or use `bearer(key)` for the header object.
 */
export async function createTestKey(engine: Engine, role: Role = "admin", org: string | null = null): Promise<string> {
  return (await createKey(engine.storage, { role, org }, engine.now())).key;
}

/** The Authorization header for a key. */
export function bearer(key: string): { authorization: string } {
  return { authorization: `Bearer ${key}` };
}

/** A workflow module's source, built from the body of run(). */
export function workflowSource(name: string, runBody: string, extra = ""): string {
  return `import { workflow } from "bifrost";
export default workflow({
  name: ${JSON.stringify(name)},${extra}
  async run(ctx, params) {
${runBody}
  },
});
`;
}

/**
 * Engines a test file opens: each one is stopped after its test, whatever the test did, so no
 * engine outlives the test that opened it.
 */
export function engineTracker(): { open: (options?: TestEngineOptions) => ReturnType<typeof openTestEngine> } {
  const engines: Engine[] = [];
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.stop(0);
  });
  return {
    async open(options = {}) {
      const t = await openTestEngine(options);
      engines.push(t.engine);
      return t;
    },
  };
}
