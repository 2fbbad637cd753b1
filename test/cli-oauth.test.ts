import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { createTestKey, memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";
import { startOAuthServer, type OAuthTestServer } from "./oauth-server.js";
import { runBifrost } from "./processes.js";

/** `bifrost oauth …` against a real OAuth server: embedded on the data directory, and as a client of a running server. */

const bifrost = (args: string[], env: Record<string, string>) => runBifrost(args, { LOG_LEVEL: "silent", ...env });

const SECRET = "machine-secret-0123456789abcdef";
const REDIRECT = "http://127.0.0.1:7071/api/oauth/callback";

const oauthServers: OAuthTestServer[] = [];
const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await Promise.all(oauthServers.splice(0).map((s) => s.close()));
});

async function provider(): Promise<OAuthTestServer> {
  const s = await startOAuthServer({
    clients: [
      { clientId: "machine", clientSecret: SECRET, scopes: ["api:read"], grantTypes: ["client_credentials"], redirectUris: [] },
      { clientId: "web", clientSecret: SECRET, scopes: ["api:read"], grantTypes: ["authorization_code"], redirectUris: [REDIRECT] },
    ],
  });
  oauthServers.push(s);
  return s;
}

const addMachine = (s: OAuthTestServer, clientId = "machine") => ["oauth", "providers", "add", "m", "--grant-type", "client_credentials", "--token-url", s.tokenUrl, "--client-id", clientId, "--client-secret", SECRET, "--scopes", "api:read"];

describe("bifrost oauth, embedded", () => {
  it("adds a provider with its warnings, connects with client credentials, lists, diagnoses and removes", async () => {
    const s = await provider();
    const env = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: tempDir("bifrost-wf-") };

    const sloppy = await bifrost(addMachine(s, "Client ID: machine"), env);
    expect(sloppy.code).toBe(0);
    expect(sloppy.stderr).toMatch(/warning: .*client id/i);
    expect(sloppy.stderr).toContain("fix: ");
    const added = await bifrost(addMachine(s), env);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/client secret:\s+set/);
    expect(added.stderr).toContain("replaced provider m");
    expect(added.stderr).not.toContain("warning");

    const connected = await bifrost(["oauth", "connect", "m", "--org", "acme"], env);
    expect(connected.code).toBe(0);
    expect(connected.stdout).toMatch(/^PROVIDER\s+ORG\s+STATUS\s+TOKEN\s+SCOPES\s+LAST FAILURE\n/);
    expect(connected.stdout).toMatch(/m\s+acme\s+healthy\s+expires in (59m|1h)\S*\s+api:read\s+-/);
    expect(s.tokenRequests.length).toBe(1);

    // A run uses its org's connection; without one it fails with the fix worded for the terminal.
    writeFiles(env.BIFROST_WORKFLOWS_DIR, { "uses_m.ts": workflowSource("uses_m", `const c = await ctx.oauth.getConnection("m"); return { scopes: c.scopes, token: c.accessToken };`) });
    const inOrg = await bifrost(["run", "uses_m", "--org", "acme", "--json"], env);
    expect(inOrg.code).toBe(0);
    expect(JSON.parse(inOrg.stdout)).toMatchObject({ status: "succeeded", result: { scopes: ["api:read"], token: "[redacted]" } });
    const noOrg = await bifrost(["run", "uses_m"], env);
    expect(noOrg.code).toBe(1);
    expect(noOrg.stderr).toContain("CONNECTION_NOT_FOUND");
    expect(noOrg.stderr).toContain("fix: Connect the provider for this org (or globally) first with `bifrost oauth connect <provider> [--org O]`");

    const listed = await bifrost(["oauth", "connections", "list", "--json"], env);
    expect(JSON.parse(listed.stdout).items).toMatchObject([{ provider: "m", org: "acme", status: "healthy", scopes: ["api:read"] }]);

    const diagnosis = await bifrost(["oauth", "diagnose", "m", "--org", "acme", "--json"], env);
    const d = JSON.parse(diagnosis.stdout) as { ok: boolean; checks: { ok: boolean }[] };
    expect(diagnosis.code).toBe(d.ok ? 0 : 1);
    expect(d.checks.length).toBeGreaterThan(3);
    const human = await bifrost(["oauth", "diagnose", "m", "--org", "acme"], env);
    expect(human.stdout).toMatch(/^OAuth provider m, org acme\n/);
    expect(human.stdout).toMatch(/✔ /);

    expect((await bifrost(["oauth", "connections", "remove", "m", "--org", "acme"], env)).code).toBe(0);
    const again = await bifrost(["oauth", "connections", "remove", "m", "--org", "acme"], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("error CONNECTION_NOT_FOUND");
    expect(again.stderr).toContain("bifrost oauth connect <provider>");

    for (const r of [sloppy, added, connected, listed, diagnosis, human]) expect(r.stdout + r.stderr).not.toContain(SECRET);
    for (const secret of s.secrets()) expect(connected.stdout + listed.stdout).not.toContain(secret);
  });

  it("connect of an authorization-code provider prints the URL and says a running engine completes it; a refusal prints the category and fix", async () => {
    const s = await provider();
    const env = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: tempDir("bifrost-wf-") };
    const args = ["oauth", "providers", "add", "web", "--grant-type", "authorization_code", "--authorization-url", s.authorizationUrl, "--token-url", s.tokenUrl, "--client-id", "web", "--client-secret", SECRET, "--redirect-uri", REDIRECT];
    expect((await bifrost(args, env)).code).toBe(0);
    const link = await bifrost(["oauth", "connect", "web"], env);
    expect(link.code).toBe(0);
    const url = new URL(link.stdout.trim());
    expect(url.href.startsWith(s.authorizationUrl)).toBe(true);
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    expect(link.stderr).toContain(REDIRECT);
    expect(link.stderr).toContain("bifrost start");

    expect((await bifrost([...addMachine(s).slice(0, -4), "--client-secret", "wrong-secret-0123456789abcdef"], env)).code).toBe(0);
    const refused = await bifrost(["oauth", "connect", "m"], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/error OAUTH_FAILED: .*invalid_client/);
    expect(refused.stderr).toMatch(/fix: .*client id and secret/i);
    const listed = await bifrost(["oauth", "connections", "list"], env);
    expect(listed.stdout).toMatch(/m\s+\(global\)\s+needs_reauth\s+no token\s+-\s+invalid_client.* — fix: /);

    const usage = await bifrost(["oauth", "providers", "add", "x", "--token-url", s.tokenUrl], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("--client-id");
  });
});

describe("bifrost oauth, as a client of a server", () => {
  it("manages providers and connections over the API with an admin key; a viewer key may list connections only", async () => {
    const s = await provider();
    const server = await startServer(loadConfig({}, { dataDir: tempDir(), workflowsDir: tempDir("bifrost-wf-"), port: 0, watch: false, pollMs: 50 }), { logger: memoryLogger().logger });
    servers.push(server);
    const admin = { BIFROST_URL: server.url, BIFROST_API_KEY: await createTestKey(server.engine, "admin") };
    const viewer = { BIFROST_URL: server.url, BIFROST_API_KEY: await createTestKey(server.engine, "viewer") };

    const added = await bifrost(addMachine(s), admin);
    expect(added.code).toBe(0);
    expect(added.stderr).toContain("added provider m");
    const connected = await bifrost(["oauth", "connect", "m", "--json"], admin);
    expect(JSON.parse(connected.stdout).connection).toMatchObject({ provider: "m", org: null, status: "healthy" });
    const refreshed = await bifrost(["oauth", "connections", "refresh", "m"], admin);
    expect(refreshed.stdout).toMatch(/m\s+\(global\)\s+healthy/);
    expect(s.tokenRequests.length).toBe(2);

    expect((await bifrost(["oauth", "connections", "list", "--json"], viewer)).code).toBe(0);
    const denied = await bifrost(["oauth", "providers", "list"], viewer);
    expect(denied.code).toBe(2);
    expect(denied.stderr).toContain("error FORBIDDEN");
    const shown = await bifrost(["oauth", "providers", "list", "--json"], admin);
    expect(JSON.parse(shown.stdout).items.map((p: { name: string }) => p.name)).toEqual(["m"]);
    expect((await bifrost(["oauth", "providers", "remove", "m"], admin)).code).toBe(0);
    expect(JSON.parse((await bifrost(["oauth", "connections", "list", "--json"], viewer)).stdout).items).toEqual([]);
    for (const r of [added, connected, refreshed, shown]) expect(r.stdout + r.stderr).not.toContain(SECRET);
  });
});
