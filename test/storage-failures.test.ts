import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import BetterSqlite3 from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { openStorage } from "../storage/index.js";
import { openTestEngine, tempDir, workflowSource } from "./helpers.js";
import { spawnTracked } from "./processes.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const engines: Engine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop(0).catch(() => {});
});

/** Runs the CLI directly (no launcher) as the given user, and collects what it printed. */
function cli(args: string[], env: Record<string, string>, asUser?: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const command = [process.execPath, "--no-node-snapshot", "--import", "tsx", join(ROOT, "engine/cli/main.ts"), ...args];
  const [file, ...argv] = asUser ? ["runuser", "-u", asUser, "--", ...command] : command;
  return new Promise((resolve, reject) => {
    const child = spawnTracked(file!, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const expectUnavailable = (promise: Promise<unknown>, message: RegExp) => expect(promise).rejects.toMatchObject({ code: "STORAGE_UNAVAILABLE", message: expect.stringMatching(message) });

describe("storage that cannot be used", () => {
  it("says the data directory is a file", async () => {
    const file = join(tempDir(), "not-a-dir");
    writeFileSync(file, "x");
    await expectUnavailable(openStorage({ dataDir: file }), /not-a-dir is not a directory/);
    await expectUnavailable(openStorage({ dataDir: join(file, "data") }), /not-a-dir\/data is not a directory/);
  });

  it("says the database file is not a database", async () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, "bifrost.db"), "this is not sqlite ".repeat(500));
    await expectUnavailable(openStorage({ dataDir }), /bifrost\.db is not a usable SQLite database/);
  });

  it("says a damaged database could not be brought up to date, naming the file and the migration", async () => {
    const dataDir = tempDir();
    // Tables without the migration records that created them: what a lost -wal file leaves behind.
    const raw = new BetterSqlite3(join(dataDir, "bifrost.db"));
    raw.exec("create table workflows (name text primary key)");
    raw.close();
    const failure = openStorage({ dataDir });
    await expectUnavailable(failure, /bifrost\.db could not be brought up to date: migration 0001_initial failed: .*already exists/);
    await failure.catch((err: { fix: string }) => expect(err.fix).toMatch(/backup/));
  });

  it("refuses a data directory it cannot write, from the CLI, without a stack trace", async () => {
    const root = tempDir();
    chmodSync(root, 0o755);
    const readOnly = join(root, "read-only");
    mkdirSync(readOnly, { mode: 0o555 });
    chmodSync(readOnly, 0o555);
    // root ignores permissions: check as an unprivileged user, as the engine would run in production.
    const user = process.getuid?.() === 0 ? "nobody" : undefined;
    for (const [dataDir, reason] of [
      [readOnly, /read-only is not writable/],
      [join(readOnly, "data"), /read-only\/data cannot be created: permission denied/],
    ] as const) {
      const { code, stderr } = await cli(["runs", "list"], { BIFROST_DATA_DIR: dataDir, BIFROST_WORKFLOWS_DIR: root }, user);
      expect(stderr).toMatch(/STORAGE_UNAVAILABLE/);
      expect(stderr).toMatch(reason);
      expect(stderr).not.toMatch(/\n\s+at /);
      expect(code).toBe(1);
    }
    const file = join(root, "a-file");
    writeFileSync(file, "x");
    const { stderr } = await cli(["runs", "list"], { BIFROST_DATA_DIR: file, BIFROST_WORKFLOWS_DIR: root });
    expect(stderr).toMatch(/STORAGE_UNAVAILABLE.*a-file is not a directory/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it("notices a database file deleted while the engine runs, and refuses new runs instead of losing them", async () => {
    const { engine, dataDir } = await openTestEngine({ workflows: { "ok.ts": workflowSource("ok", "return 1;") } });
    engines.push(engine);
    expect((await engine.health()).ok).toBe(true);
    for (const suffix of ["", "-wal", "-shm"]) rmSync(join(dataDir, `bifrost.db${suffix}`), { force: true });
    const health = await engine.health();
    expect(health.ok).toBe(false);
    expect(health.database).toMatch(/bifrost\.db was deleted while the engine was running/);
    await expectUnavailable(engine.triggerRun("ok"), /was deleted/);
  });
});
