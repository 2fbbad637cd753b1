import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { openTestEngine, tempDir, workflowSource, writeFiles } from "./helpers.js";
import { startOAuthServer, type OAuthTestServer } from "./oauth-server.js";
import { BIFROST_BIN, spawnTracked } from "./processes.js";

/**
 * Two engine processes on one database refresh one connection once: the refresh lease is a row in
 * the database, so the second process waits for the first one's token instead of asking the
 * provider again (and presenting a refresh token that rotation has already spent).
 */

const REDIRECT = "http://localhost:7071/api/oauth/callback";
const WEB = { clientId: "web-client", clientSecret: "web-secret-0123456789abcdef", scopes: ["api:read"], grantTypes: ["authorization_code" as const, "refresh_token" as const], redirectUris: [REDIRECT] };
const CHECK = workflowSource("check", `const c = await ctx.oauth.getConnection("Web"); return { expired: c.isExpired(), scopes: c.scopes };`);

let server: OAuthTestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

interface Proc {
  child: ChildProcess;
  stderr: () => string;
  /** Resolves once stderr contains `text`. */
  saw: (text: string) => Promise<void>;
  exited: Promise<{ code: number | null; stdout: string }>;
}

function bifrost(args: string[], env: Record<string, string>): Proc {
  const child = spawnTracked(process.execPath, ["--no-node-snapshot", BIFROST_BIN, ...args], { env: { ...process.env, NO_COLOR: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
    for (const w of waiters.splice(0)) {
      if (stderr.includes(w.text)) w.resolve();
      else waiters.push(w);
    }
  });
  const exited = new Promise<{ code: number | null; stdout: string }>((resolve) => child.on("exit", (code) => resolve({ code, stdout })));
  return {
    child,
    stderr: () => stderr,
    saw: (text) => (stderr.includes(text) ? Promise.resolve() : new Promise((resolve) => waiters.push({ text, resolve }))),
    exited,
  };
}

describe("OAuth across engine processes", () => {
  it("two engine processes on one database refresh one connection once", async () => {
    server = await startOAuthServer({ clients: [WEB] });
    const dataDir = tempDir();
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "check.ts": CHECK });
    const { engine } = await openTestEngine({ dataDir, workflowsDir, config: { publicUrl: "http://localhost:7071" } });
    try {
      await engine.oauth.putProvider("Web", { grantType: "authorization_code", authorizationUrl: server.authorizationUrl, tokenUrl: server.tokenUrl, clientId: WEB.clientId, clientSecret: WEB.clientSecret, scopes: ["api:read", "offline_access"] });
      const { url } = await engine.oauth.connections.startAuthorization("Web", null, null);
      expect(await engine.oauth.connections.completeAuthorization(new URL(await server.authorize(url)).searchParams)).toMatchObject({ ok: true });
    } finally {
      await engine.stop(0);
    }
    // The stored token has expired (its expiry moved into the past, as after a night unused).
    const db = new Database(join(dataDir, "bifrost.db"));
    db.prepare("update oauth_connections set expires_at = ?").run(Date.now() - 1000);
    db.close();
    const refreshes = () => server!.tokenRequests.filter((t) => t.grantType === "refresh_token");
    const env = { BIFROST_DATA_DIR: dataDir, BIFROST_WORKFLOWS_DIR: workflowsDir, LOG_LEVEL: "debug" };

    // The provider holds token answers: the first process's refresh is in flight under its lease...
    await server.setMode("slow");
    const first = bifrost(["run", "check", "--json"], env);
    await server.waitForTokenRequests(2);
    // ...when the second process wants the same connection, and waits for that lease.
    const second = bifrost(["run", "check", "--json"], env);
    await second.saw("another engine is refreshing this OAuth connection");
    server.release();
    await server.setMode("normal");

    const [a, b] = await Promise.all([first.exited, second.exited]);
    expect([a.code, b.code], `stderr:\n${first.stderr()}\n${second.stderr()}`).toEqual([0, 0]);
    expect(refreshes()).toHaveLength(1);
    expect(refreshes()[0]?.status).toBe(200);
    for (const out of [a.stdout, b.stdout, first.stderr(), second.stderr()]) {
      for (const secret of server.secrets()) expect(out.includes(secret)).toBe(false);
    }
  });
});
