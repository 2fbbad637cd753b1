import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { createTestKey, memoryLogger, openTestEngine, tempDir, workflowSource } from "./helpers.js";
import { runBifrost } from "./processes.js";

/** `bifrost workflows deploy <file>`: embedded on a data directory, and against a running server. */

const bifrost = (args: string[], env: Record<string, string>) => runBifrost(args, { BIFROST_URL: "", BIFROST_API_KEY: "", ...env });

/** A module file in a fresh folder (not the workflows directory: a deployed file is text). */
function moduleFile(fileName: string, text: string): string {
  const file = join(tempDir("bifrost-deploy-"), fileName);
  writeFileSync(file, text);
  return file;
}

const fixLine = (stderr: string) => /^\s*fix: (.*)$/m.exec(stderr)?.[1] ?? "";

describe("bifrost workflows deploy, embedded", () => {
  const env = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: tempDir("bifrost-wf-") };

  it("registers a module file's text as a workflow sent as text, and replaces it", async () => {
    const file = moduleFile("deployed.ts", workflowSource("deployed", "return 'v1';"));
    const first = await bifrost(["workflows", "deploy", file, "--json"], env);
    expect(first.code).toBe(0);
    const view = JSON.parse(first.stdout);
    expect(view).toMatchObject({ name: "deployed", sourceKind: "api", file: null, version: expect.stringMatching(/^[0-9a-f]{16}$/) });

    writeFileSync(file, workflowSource("deployed", "return 'v2';"));
    const second = await bifrost(["workflows", "deploy", file], env);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^replaced deployed version [0-9a-f]{16}$/m);

    const { engine } = await openTestEngine({ dataDir: env.BIFROST_DATA_DIR, workflowsDir: env.BIFROST_WORKFLOWS_DIR });
    try {
      const registered = engine.registry.get("deployed");
      expect(registered?.sourceKind).toBe("api");
      expect(registered?.version).not.toBe(view.version);
      engine.start({ watch: false });
      const { run } = await engine.triggerRun("deployed");
      expect((await engine.waitForRun(run.id, 20_000)).result).toBe("v2");
    } finally {
      await engine.stop(0);
    }
  });

  it("names the user's file in a compile error, and says to pass --name when the names differ", async () => {
    const broken = moduleFile("broken.ts", workflowSource("broken", "return 'x' +;"));
    const compile = await bifrost(["workflows", "deploy", broken], env);
    expect(compile.code).toBe(2);
    expect(compile.stderr).toContain(`error WORKFLOW_COMPILE_ERROR: ${broken}:5:`);

    const misnamed = moduleFile("sync-tickets.ts", workflowSource("ticket_sync", "return 1;"));
    const mismatch = await bifrost(["workflows", "deploy", misnamed], env);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toContain(`error WORKFLOW_INVALID: ${misnamed}: the module is named "ticket_sync" but was sent as "sync-tickets"`);
    expect(fixLine(mismatch.stderr)).toMatch(/^Deploy it with --name ticket_sync/);
    const named = await bifrost(["workflows", "deploy", misnamed, "--name", "ticket_sync"], env);
    expect([named.code, named.stdout]).toEqual([0, expect.stringMatching(/^registered ticket_sync version/)]);

    const missing = await bifrost(["workflows", "deploy", join(tempDir(), "nope.ts")], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/error CLI_USAGE: cannot read .*nope\.ts: no such file/);
  });
});

describe("bifrost workflows deploy, against a server (BIFROST_URL, BIFROST_API_KEY)", () => {
  let server: RunningServer;
  let admin: string;
  let operator: string;

  beforeAll(async () => {
    const config = loadConfig({}, { dataDir: tempDir(), workflowsDir: tempDir("bifrost-wf-"), port: 0, watch: false, pollMs: 50 });
    server = await startServer(config, { logger: memoryLogger().logger });
    admin = await createTestKey(server.engine, "admin");
    operator = await createTestKey(server.engine, "operator");
  });

  afterAll(async () => {
    await server?.close();
  });

  it("registers on the server and refuses what the server refuses", async () => {
    // A data directory of its own: nothing is written there when a server is named.
    const local = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: tempDir("bifrost-wf-"), BIFROST_URL: server.url };
    const file = moduleFile("remote.ts", workflowSource("remote", "return 'from the server';"));
    const res = await bifrost(["workflows", "deploy", file], { ...local, BIFROST_API_KEY: admin });
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^registered remote version [0-9a-f]{16} on ${server.url.replace(/[.]/g, "\\.")}$`, "m"));
    expect(server.engine.registry.get("remote")?.sourceKind).toBe("api");
    const { run } = await server.engine.triggerRun("remote");
    expect((await server.engine.waitForRun(run.id, 20_000)).result).toBe("from the server");

    writeFileSync(file, workflowSource("remote", "return 'x' +;"));
    const broken = await bifrost(["workflows", "deploy", file], { ...local, BIFROST_API_KEY: admin });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain(`error WORKFLOW_COMPILE_ERROR: ${file}:5:`);

    const forbidden = await bifrost(["workflows", "deploy", file], { ...local, BIFROST_API_KEY: operator });
    expect(forbidden.code).toBe(2);
    expect(forbidden.stderr).toMatch(/error FORBIDDEN: /);
  });
});
