import { describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import { startServer } from "../engine/server.js";
import { bearer, copyExamples, memoryLogger, tempDir } from "./helpers.js";
import { BIFROST_BIN, runBifrost, spawnTracked, trackPid } from "./processes.js";

/** `bifrost keys create|list|revoke` against a data directory, and what `bifrost start` prints. */

// In the launcher's own process: one node start per command instead of two.
const bifrost = (args: string[], env: Record<string, string>) => runBifrost(args, env, { nodeArgs: ["--no-node-snapshot"] });

/** `bifrost start` on a free port with the engine log at debug; resolves once the banner is out. */
async function start(env: Record<string, string>) {
  const child = spawnTracked(process.execPath, ["--no-node-snapshot", BIFROST_BIN, "start"], { env: { ...process.env, NO_COLOR: "1", ...env, BIFROST_PORT: "0", LOG_LEVEL: "debug" }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const closed = Promise.all([new Promise((r) => child.stdout!.on("close", r)), new Promise((r) => child.stderr!.on("close", r))]);
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      // The first-start key comes before this line (see start() in engine/cli/main.ts).
      const m = /listening on (\S+) \(pid (\d+)/.exec(stderr);
      if (m && /workflow\(s\) from/.test(stderr)) resolve(m[1]!);
    });
    child.on("exit", (code: number | null) => reject(new Error(`start exited with ${code}: ${stderr}`)));
  });
  trackPid(child.pid!);
  return {
    url,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      await closed;
    },
  };
}

const fixLine = (stderr: string) => /^\s*fix: (.*)$/m.exec(stderr)?.[1] ?? "";

describe("bifrost keys", () => {
  it("creates a key printed once, lists keys without secrets, and revokes them", async () => {
    const env = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: copyExamples() };
    const human = await bifrost(["keys", "create", "--role", "operator", "--org", "contoso", "--name", "CI deploys"], env);
    expect(human.code).toBe(0);
    // stdout is the key alone, so that KEY=$(bifrost keys create ...) captures it.
    expect(human.stdout).toMatch(/^bfk_key_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/);
    const operatorKey = human.stdout.trim();
    expect(human.stderr).toMatch(/created key_[0-9a-f]{16} "CI deploys": role operator, org contoso; shown only this once/);

    const json = await bifrost(["keys", "create", "--role", "viewer", "--json"], env);
    expect(json.code).toBe(0);
    const viewer = JSON.parse(json.stdout);
    expect(viewer).toEqual({ id: expect.stringMatching(/^key_[0-9a-f]{16}$/), name: "viewer key", role: "viewer", org: null, createdAt: expect.any(String), lastUsedAt: null, revokedAt: null, key: expect.stringMatching(/^bfk_/) });

    const listed = await bifrost(["keys", "list", "--json"], { ...env, BIFROST_URL: "http://127.0.0.1:9" });
    expect(listed.code).toBe(0);
    expect(listed.stderr).toMatch(/works on the data directory \(BIFROST_DATA_DIR\), not on the server at BIFROST_URL/);
    const { items } = JSON.parse(listed.stdout) as { items: Record<string, unknown>[] };
    expect(items.map((k) => [k.role, k.org, k.name])).toEqual([
      ["operator", "contoso", "CI deploys"],
      ["viewer", null, "viewer key"],
    ]);
    for (const item of items) expect(Object.keys(item)).toEqual(["id", "name", "role", "org", "createdAt", "lastUsedAt", "revokedAt"]);
    const table = await bifrost(["keys", "list"], env);
    expect(table.stdout).toMatch(/^ID +ROLE +ORG +NAME +CREATED +LAST USED +REVOKED$/m);
    expect(table.stdout).toMatch(new RegExp(`^${viewer.id} +viewer +- +viewer key +\\S+ +never +-$`, "m"));
    expect(table.stderr).toBe("");
    for (const text of [listed.stdout, table.stdout, listed.stderr, table.stderr]) {
      expect(text).not.toContain(operatorKey);
      expect(text).not.toContain(viewer.key);
    }

    // The keys work against a server on the same data directory, until revoked.
    const server = await startServer(loadConfig({}, { dataDir: env.BIFROST_DATA_DIR, workflowsDir: env.BIFROST_WORKFLOWS_DIR, port: 0, watch: false }), { logger: memoryLogger().logger });
    try {
      const run = await fetch(`${server.url}/api/workflows/hello/runs`, { method: "POST", headers: { ...bearer(operatorKey), "content-type": "application/json" }, body: JSON.stringify({ params: { name: "CLI" }, wait: 20_000 }) });
      expect(await run.json()).toMatchObject({ status: "succeeded", org: "contoso" });
      expect((await fetch(`${server.url}/api/runs`, { headers: bearer(viewer.key) })).status).toBe(200);

      const revoked = await bifrost(["keys", "revoke", viewer.id], env);
      expect(revoked).toMatchObject({ code: 0, stdout: `revoked ${viewer.id} "viewer key": requests with it are refused from now on\n` });
      expect((await fetch(`${server.url}/api/runs`, { headers: bearer(viewer.key) })).status).toBe(401);
      const again = await bifrost(["keys", "revoke", viewer.id], env);
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(new RegExp(`^${viewer.id} "viewer key" was already revoked at \\d{4}-`));
    } finally {
      await server.close();
    }
    const after = JSON.parse((await bifrost(["keys", "list", "--json"], env)).stdout) as { items: { id: string; revokedAt: string | null }[] };
    expect(after.items.find((k) => k.id === viewer.id)?.revokedAt).toEqual(expect.any(String));
  });

  it("refuses bad input with exit 2, a stable code and a fix for the terminal", async () => {
    const env = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: copyExamples() };
    const cases: [string[], string, RegExp][] = [
      [["keys", "create"], "CLI_USAGE", /needs --role: one of admin, operator, viewer/],
      [["keys", "create", "--role", "root"], "CLI_USAGE", /--role must be one of admin, operator, viewer/],
      [["keys", "create", "--role", "admin", "--org", "contoso"], "CLI_USAGE", /--role admin cannot have --org/],
      [["keys", "create", "--role", "viewer", "--org", "bad org"], "VALIDATION_FAILED", /org "bad org" is invalid/],
      [["keys", "create", "--role", "viewer", "--name", "x".repeat(101)], "VALIDATION_FAILED", /1 to 100 characters/],
      [["keys", "revoke"], "CLI_USAGE", /bifrost keys revoke <key-id>/],
      [["keys", "revoke", "key_0123456789abcdef"], "KEY_NOT_FOUND", /No API key with id "key_0123456789abcdef"/],
      [["keys", "rotate"], "CLI_USAGE", /unknown command "keys rotate"/],
    ];
    for (const [args, code, message] of cases) {
      const res = await bifrost(args, env);
      expect({ args, code: res.code, error: res.stderr.match(/^error (\w+): (.*)$/m)?.slice(1) }).toEqual({ args, code: 2, error: [code, expect.stringMatching(message)] });
    }
    expect(fixLine((await bifrost(["keys", "revoke", "key_0123456789abcdef"], env)).stderr)).toBe("List the keys and their ids with `bifrost keys list`.");
    expect(JSON.parse((await bifrost(["keys", "list", "--json"], env)).stdout)).toEqual({ items: [] });
  });

  it("bifrost start prints the first key once, on stderr only (never in the engine log), and none on the next start", async () => {
    const env = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: copyExamples() };
    const first = await start(env);
    const key = /^ {4}(bfk_\S+)$/m.exec(first.stderr())?.[1];
    expect(key).toEqual(expect.stringMatching(/^bfk_key_/));
    const res = await fetch(`${first.url}/api/workflows/hello/runs`, { method: "POST", headers: { ...bearer(key!), "content-type": "application/json" }, body: JSON.stringify({ params: { name: "log" }, wait: 20_000 }) });
    expect(res.status).toBe(200);
    await first.stop();
    // The engine log (LOG_LEVEL=debug, requests included) holds neither the key nor its secret.
    expect(first.stdout()).toMatch(/"msg":"incoming request"/);
    expect(first.stdout()).not.toContain(key!.slice(-43));
    expect(first.stderr().split(key!.slice(-43)).length - 1).toBe(3);

    const second = await start(env);
    expect(second.stderr()).not.toMatch(/First start|bfk_/);
    await second.stop();
    expect(second.stdout()).not.toMatch(/bfk_/);
  });
});
