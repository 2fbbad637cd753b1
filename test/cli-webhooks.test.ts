import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { sign } from "../engine/webhooks/signature.js";
import { createTestKey, memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";
import { runBifrost } from "./processes.js";

/** `bifrost webhooks show|rotate`, embedded on the data directory and as a client of a server. */

const bifrost = (args: string[], env: Record<string, string>) => runBifrost(args, { LOG_LEVEL: "silent", ...env });

const HOOK = workflowSource("hook", "return params;", "\n  webhook: true,");
const PLAIN = workflowSource("plain", "return 1;");

describe("bifrost webhooks, embedded", () => {
  it("show prints the secret alone on stdout and how to sign on stderr; rotate replaces it", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "hook.ts": HOOK, "plain.ts": PLAIN });
    const env = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: workflowsDir };
    const shown = await bifrost(["webhooks", "show", "hook"], env);
    expect(shown.code).toBe(0);
    const secret = shown.stdout.trim();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(shown.stderr).toContain("X-Bifrost-Signature: sha256=<hex HMAC-SHA256 of the raw body>");
    expect(shown.stderr).toContain("openssl dgst -sha256 -hmac");
    // The same secret the next time: it is stored, sealed, in the data directory.
    expect((await bifrost(["webhooks", "show", "hook"], env)).stdout.trim()).toBe(secret);

    const rotated = await bifrost(["webhooks", "rotate", "hook", "--json"], env);
    expect(rotated.code).toBe(0);
    const view = JSON.parse(rotated.stdout) as { secret: string; rotatedAt: string | null; workflow: string };
    expect(view).toMatchObject({ workflow: "hook", rotatedAt: expect.any(String) });
    expect(view.secret).not.toBe(secret);
    expect((await bifrost(["webhooks", "show", "hook"], env)).stdout.trim()).toBe(view.secret);
    // An org's hook has a secret of its own, and a URL that names the org.
    const acme = await bifrost(["webhooks", "show", "hook", "--org", "acme", "--json"], env);
    expect(acme.code).toBe(0);
    const acmeView = JSON.parse(acme.stdout) as { secret: string; org: string; url: string };
    expect(acmeView).toMatchObject({ org: "acme", url: expect.stringMatching(/\/api\/hooks\/hook\?org=acme$/) });
    expect(acmeView.secret).not.toBe(view.secret);
    // The old secret keeps working for a day by default; --grace 0 ends it at once.
    expect(rotated.stdout).toContain('"previousValidUntil": "');
    const now = await bifrost(["webhooks", "rotate", "hook", "--grace", "0"], env);
    expect(now.code).toBe(0);
    expect(now.stderr).toContain("the old one no longer works");
    const bad = await bifrost(["webhooks", "rotate", "hook", "--grace", "later"], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("VALIDATION_FAILED");
  });

  it("refuses a workflow that takes no webhooks, and bad usage, with the CLI's fix", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "plain.ts": PLAIN });
    const env = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: workflowsDir };
    const plain = await bifrost(["webhooks", "show", "plain"], env);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain("error WEBHOOK_NOT_FOUND");
    expect(plain.stderr).toContain("`bifrost workflows list`");
    expect(plain.stdout).toBe("");
    for (const args of [["webhooks", "list"], ["webhooks", "show", "a", "b"]]) {
      const usage = await bifrost(args, env);
      expect({ args, code: usage.code, usage: usage.stderr.includes("error CLI_USAGE") }).toEqual({ args, code: 2, usage: true });
    }
  });
});

describe("bifrost webhooks, against a server", () => {
  let server: RunningServer;
  let admin: string;
  let operator: string;
  let clientEnv: Record<string, string>;

  beforeAll(async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "hook.ts": HOOK });
    server = await startServer(loadConfig({}, { dataDir: tempDir(), workflowsDir, port: 0, watch: false, pollMs: 50 }), { logger: memoryLogger().logger });
    admin = await createTestKey(server.engine, "admin");
    operator = await createTestKey(server.engine, "operator");
    // The CLI's own data directory is a file: anything but the server could only fail.
    const notADir = join(tempDir(), "not-a-dir");
    writeFileSync(notADir, "");
    clientEnv = { BIFROST_URL: server.url, BIFROST_DATA_DIR: notADir, BIFROST_WORKFLOWS_DIR: notADir };
  });

  afterAll(async () => {
    await server?.close();
  });

  it("show and rotate go to the server with an admin key; the secret signs real calls", async () => {
    const shown = await bifrost(["webhooks", "show", "hook"], { ...clientEnv, BIFROST_API_KEY: admin });
    expect(shown.code).toBe(0);
    const secret = shown.stdout.trim();
    expect(secret).toBe((await server.engine.webhooks.info("hook")).secret);
    const rotated = await bifrost(["webhooks", "rotate", "hook"], { ...clientEnv, BIFROST_API_KEY: admin });
    expect(rotated.code).toBe(0);
    const fresh = rotated.stdout.trim();
    expect(fresh).not.toBe(secret);
    const body = '{"from":"cli"}';
    const res = await fetch(`${server.url}/api/hooks/hook`, { method: "POST", headers: { "content-type": "application/json", "x-bifrost-signature": sign(fresh, Buffer.from(body)) }, body });
    expect(res.status).toBe(202);
  });

  it("an operator key is refused with the server's 403", async () => {
    const refused = await bifrost(["webhooks", "show", "hook"], { ...clientEnv, BIFROST_API_KEY: operator });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("error FORBIDDEN");
    expect(refused.stdout).toBe("");
  });
});
