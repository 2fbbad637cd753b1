import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import type { RunRecord } from "../storage/types.js";
import { engineTracker, tempDir, workflowSource } from "./helpers.js";
import { startOAuthServer, type OAuthTestServer } from "./oauth-server.js";

/**
 * OAuth end to end against a real OAuth server (oidc-provider on 127.0.0.1, test/oauth-server.ts):
 * the grants, refresh (single flight in a process, the lease across engines), rotation, every
 * failure category the engine meets on its own paths, and that no token or secret leaks.
 */

const PUBLIC_URL = "http://localhost:7071";
const REDIRECT = `${PUBLIC_URL}/api/oauth/callback`;
const CC = { clientId: "cc-client", clientSecret: "cc-secret-0123456789abcdef", scopes: ["api:read"], grantTypes: ["client_credentials" as const], redirectUris: [] };
const WEB = { clientId: "web-client", clientSecret: "web-secret-0123456789abcdef", scopes: ["api:read"], grantTypes: ["authorization_code" as const, "refresh_token" as const], redirectUris: [REDIRECT] };

const CHECK_TOKEN = workflowSource(
  "check_token",
  `
    const c = await ctx.oauth.getConnection(params.provider);
    ctx.log.info("token", { expired: c.isExpired(), expiresAt: c.expiresAt.toISOString(), scopes: c.scopes, header: c.getAuthHeader() });
    return { expiresIn: c.expiresIn, scopes: c.scopes, token: c.accessToken, expired: c.isExpired() };
  `,
);
const MANY = workflowSource(
  "many",
  `
    const all = await Promise.all(Array.from({ length: params.n }, () => ctx.oauth.getConnection(params.provider)));
    return { distinct: new Set(all.map((c) => c.getAuthHeader())).size, count: all.length };
  `,
);
const CALL_API = workflowSource(
  "call_api",
  `
    try {
      const r = await ctx.http.get(params.url, { connection: params.provider });
      return { status: r.status, body: r.body };
    } catch (err) {
      return { status: err.status ?? null, code: err.code, category: err.category ?? null, fix: err.fix ?? null };
    }
  `,
);
const CAUGHT = workflowSource(
  "caught",
  `
    try {
      await ctx.oauth.getConnection(params.provider);
      return { ok: true };
    } catch (err) {
      return { ok: false, code: err.code, category: err.category ?? null, fix: err.fix ?? null };
    }
  `,
);
const WORKFLOWS = { "check_token.ts": CHECK_TOKEN, "many.ts": MANY, "call_api.ts": CALL_API, "caught.ts": CAUGHT };

const tracker = engineTracker();
let servers: OAuthTestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function oauthServer(options: Partial<Parameters<typeof startOAuthServer>[0]> = {}): Promise<OAuthTestServer> {
  const s = await startOAuthServer({ clients: [CC, WEB], ...options });
  servers.push(s);
  return s;
}

interface Setup {
  engine: Engine;
  dataDir: string;
  logLines: () => string[];
  clock: { offset: number };
}

/** An engine whose clock the test can move forward (token expiry), on its own data directory unless given one. */
async function engineFor(options: { dataDir?: string; skewMs?: number; tokenRefreshMs?: number } = {}): Promise<Setup> {
  const clock = { offset: 0 };
  const { engine, dataDir, logLines } = await tracker.open({
    workflows: WORKFLOWS,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    config: { publicUrl: PUBLIC_URL, sandboxMemoryMb: 32 },
    deps: {
      now: () => Date.now() + clock.offset,
      oauth: { connections: { refreshSkewMs: options.skewMs ?? 60_000, leasePollMs: 20 } },
      ...(options.tokenRefreshMs ? { scheduling: { tokenRefreshMs: options.tokenRefreshMs } } : {}),
    },
  });
  engine.start({ watch: false });
  return { engine, dataDir, logLines, clock };
}

async function run(engine: Engine, workflow: string, params: unknown, org: string | null = null): Promise<RunRecord> {
  const { run } = await engine.triggerRun(workflow, { params, org });
  return engine.waitForRun(run.id, 30_000);
}

async function addCcProvider(engine: Engine, server: OAuthTestServer, name = "Api", extra: Record<string, unknown> = {}) {
  return engine.oauth.putProvider(name, { grantType: "client_credentials", tokenUrl: server.tokenUrl, clientId: CC.clientId, clientSecret: CC.clientSecret, scopes: ["api:read"], ...extra });
}

async function addWebProvider(engine: Engine, server: OAuthTestServer, name = "Web", extra: Record<string, unknown> = {}) {
  return engine.oauth.putProvider(name, { grantType: "authorization_code", authorizationUrl: server.authorizationUrl, tokenUrl: server.tokenUrl, clientId: WEB.clientId, clientSecret: WEB.clientSecret, scopes: ["api:read", "offline_access"], ...extra });
}

/** The whole code flow through the engine's connections: authorize URL, login and consent at the provider, callback. */
async function authorize(engine: Engine, server: OAuthTestServer, provider: string, org: string | null = null, entityId: string | null = null) {
  const { url } = await engine.oauth.connections.startAuthorization(provider, org, entityId);
  const back = new URL(await server.authorize(url));
  return engine.oauth.connections.completeAuthorization(back.searchParams);
}

/** Every place a token or secret could leak to: pino, the database files, every run's logs, result and error. */
async function expectNoSecrets(s: Setup, server: OAuthTestServer): Promise<void> {
  const secrets = server.secrets();
  expect(secrets.length).toBeGreaterThan(0);
  const places: Record<string, string> = { pino: s.logLines().join("\n") };
  for (const file of readdirSync(s.dataDir)) {
    if (file.startsWith("bifrost.db")) places[file] = readFileSync(join(s.dataDir, file)).toString("latin1");
  }
  const runs = await s.engine.storage.runs.list({ limit: 1000 });
  for (const r of runs) {
    places[`run ${r.id}`] = JSON.stringify({ result: r.result, error: r.error, steps: await s.engine.storage.steps.listForRun(r.id), logs: await s.engine.storage.logs.list(r.id, { limit: 10_000 }) });
  }
  for (const [where, text] of Object.entries(places)) {
    for (const secret of secrets) expect(text.includes(secret), `a secret appears in ${where}`).toBe(false);
  }
}

const tokenGrants = (server: OAuthTestServer, grantType: string) => server.tokenRequests.filter((r) => r.grantType === grantType);

describe("OAuth grants", () => {
  it("connects with client credentials and hands the token to ctx.oauth, fresh, without storing it anywhere", async () => {
    const server = await oauthServer();
    const s = await engineFor();
    const saved = await addCcProvider(s.engine, server);
    expect(saved.provider).toMatchObject({ name: "Api", clientSecretSet: true, grantType: "client_credentials" });
    expect(JSON.stringify(saved)).not.toContain(CC.clientSecret);
    const conn = await s.engine.oauth.connections.connectClientCredentials("Api", null, null);
    expect(conn).toMatchObject({ provider: "Api", org: null, status: "healthy", scopes: ["api:read"], hasRefreshToken: false });

    const r = await run(s.engine, "check_token", { provider: "Api" });
    expect(r.status).toBe("succeeded");
    expect(r.result).toMatchObject({ scopes: ["api:read"], token: "[redacted]", expired: false });
    expect((r.result as { expiresIn: number }).expiresIn).toBeGreaterThan(3000);
    const line = (await s.engine.storage.logs.list(r.id, { limit: 10 })).find((l) => l.msg === "token");
    expect(line?.data).toMatchObject({ expired: false, header: "Bearer [redacted]", scopes: ["api:read"] });
    // The stored token was fresh: the run asked the provider nothing.
    expect(tokenGrants(server, "client_credentials")).toHaveLength(1);
    await expectNoSecrets(s, server);
  });

  it("completes the authorization code flow with PKCE and a single-use state that expires", async () => {
    const server = await oauthServer();
    const s = await engineFor();
    await addWebProvider(s.engine, server);
    const { url } = await s.engine.oauth.connections.startAuthorization("Web", "acme", null);
    const request = new URL(url);
    expect(request.searchParams.get("code_challenge_method")).toBe("S256");
    expect(request.searchParams.get("redirect_uri")).toBe(REDIRECT);
    const back = new URL(await server.authorize(url));
    const done = await s.engine.oauth.connections.completeAuthorization(back.searchParams);
    expect(done).toMatchObject({ ok: true, provider: "Web", org: "acme", connection: { status: "healthy", hasRefreshToken: true, scopes: ["api:read"] } });
    expect(server.authorizationRequests.at(-1)).toMatchObject({ codeChallengeMethod: "S256" });

    // The same callback again: the state is used up, nothing is asked of the provider.
    const before = server.tokenRequests.length;
    expect(await s.engine.oauth.connections.completeAuthorization(back.searchParams)).toMatchObject({ ok: false, code: "OAUTH_STATE_INVALID", failure: { category: "authorization_failed" } });
    expect(server.tokenRequests.length).toBe(before);

    // A state older than its 10 minutes is refused too.
    const late = await s.engine.oauth.connections.startAuthorization("Web", "acme", null);
    const lateBack = new URL(await server.authorize(late.url));
    s.clock.offset += 11 * 60_000;
    const expired = await s.engine.oauth.connections.completeAuthorization(lateBack.searchParams);
    expect(expired).toMatchObject({ ok: false, code: "OAUTH_STATE_INVALID" });
    expect(expired.ok ? "" : expired.failure.message).toMatch(/expired/);

    const r = await run(s.engine, "check_token", { provider: "Web" }, "acme");
    expect(r.status).toBe("succeeded");
    await expectNoSecrets(s, server);
  });

  it("fills a templated {entity_id} per org, and a run uses its org's connection before the global one", async () => {
    const server = await oauthServer();
    const s = await engineFor();
    await addCcProvider(s.engine, server, "Tenant", { tokenUrl: server.templatedTokenUrl });
    await s.engine.oauth.connections.connectClientCredentials("Tenant", "acme", "tenant-a");
    await s.engine.oauth.connections.connectClientCredentials("Tenant", "beta", null);
    expect(server.tokenRequests.map((t) => t.tenant)).toEqual(["tenant-a", "beta"]);
    expect((await s.engine.oauth.connections.list({ provider: "Tenant" })).map((c) => [c.org, c.entityId])).toEqual([["acme", "tenant-a"], ["beta", "beta"]]);

    // No global connection: an org without its own gets a clear error naming the connection.
    const missing = await run(s.engine, "caught", { provider: "Tenant" }, "gamma");
    expect(missing.result).toMatchObject({ ok: false, code: "CONNECTION_NOT_FOUND" });
    await s.engine.oauth.connections.connectClientCredentials("Tenant", null, "tenant-g");
    expect((await run(s.engine, "caught", { provider: "Tenant" }, "gamma")).result).toEqual({ ok: true });

    // The code flow with templated URLs, per org as well.
    await addWebProvider(s.engine, server, "WebTenant", { authorizationUrl: server.templatedAuthorizationUrl, tokenUrl: server.templatedTokenUrl });
    expect(await authorize(s.engine, server, "WebTenant", "acme", "tenant-a")).toMatchObject({ ok: true, org: "acme" });
    expect(await authorize(s.engine, server, "WebTenant", "beta", "tenant-b")).toMatchObject({ ok: true, org: "beta" });
    expect(server.authorizationRequests.map((a) => a.tenant)).toEqual(["tenant-a", "tenant-b"]);
    expect(tokenGrants(server, "authorization_code").map((t) => t.tenant)).toEqual(["tenant-a", "tenant-b"]);
    await expectNoSecrets(s, server);
  });
});

describe("OAuth refresh", () => {
  it("refreshes a token that expires during a run before getConnection returns it, rotating the refresh token", async () => {
    const server = await oauthServer({ accessTokenTtlSeconds: 600 });
    const s = await engineFor({ skewMs: 60_000 });
    await addWebProvider(s.engine, server);
    await authorize(s.engine, server, "Web");
    const first = await run(s.engine, "check_token", { provider: "Web" });
    expect(tokenGrants(server, "refresh_token")).toHaveLength(0);

    for (let i = 1; i <= 3; i++) {
      s.clock.offset += 600_000;
      const r = await run(s.engine, "check_token", { provider: "Web" });
      expect(r.status).toBe("succeeded");
      expect(tokenGrants(server, "refresh_token")).toHaveLength(i);
    }
    expect(first.status).toBe("succeeded");
    // Each refresh presented the token the previous one returned: the provider kills the whole grant
    // when an old refresh token comes back, so three successes in a row prove none was reused.
    const presented = tokenGrants(server, "refresh_token").map((t) => t.refreshToken);
    expect(new Set(presented).size).toBe(3);
    expect(tokenGrants(server, "refresh_token").every((t) => t.status === 200)).toBe(true);
    expect((await s.engine.oauth.connections.get("Web", null))?.status).toBe("healthy");
    await expectNoSecrets(s, server);
  });

  it("answers 200 concurrent getConnection calls on an expired token with one token request", async () => {
    const server = await oauthServer({ accessTokenTtlSeconds: 600 });
    const s = await engineFor();
    await addWebProvider(s.engine, server);
    await authorize(s.engine, server, "Web");
    s.clock.offset += 700_000;
    const r = await run(s.engine, "many", { provider: "Web", n: 200 });
    expect(r.result).toEqual({ distinct: 1, count: 200 });
    expect(tokenGrants(server, "refresh_token")).toHaveLength(1);

    // And from outside a run as well (the refresh job, the API).
    s.clock.offset += 700_000;
    const grants = await Promise.all(Array.from({ length: 200 }, () => s.engine.oauth.connections.token("Web", null)));
    expect(new Set(grants.map((g) => g.accessToken)).size).toBe(1);
    expect(tokenGrants(server, "refresh_token")).toHaveLength(2);
    await expectNoSecrets(s, server);
  });

  it("a caller whose invocation ends stops waiting for a shared refresh; the others still get the token", async () => {
    const server = await oauthServer({ accessTokenTtlSeconds: 600 });
    const s = await engineFor();
    await addWebProvider(s.engine, server);
    await authorize(s.engine, server, "Web");
    s.clock.offset += 700_000;
    await server.setMode("slow");
    const before = server.tokenRequests.length;
    const leaving = new AbortController();
    const first = s.engine.oauth.connections.token("Web", null, { signal: leaving.signal });
    const second = s.engine.oauth.connections.token("Web", null);
    await server.waitForTokenRequests(before + 1);
    leaving.abort();
    await expect(first).rejects.toMatchObject({ code: "RUN_ABORTED" });
    server.release();
    await server.setMode("normal");
    expect((await second).accessToken).toBeTruthy();
    expect(tokenGrants(server, "refresh_token")).toHaveLength(1);
  });

  it("has two engines on one database refresh a connection once", async () => {
    const server = await oauthServer({ accessTokenTtlSeconds: 600 });
    const dataDir = tempDir();
    const a = await engineFor({ dataDir });
    const b = await engineFor({ dataDir });
    await addWebProvider(a.engine, server);
    await authorize(a.engine, server, "Web");
    a.clock.offset += 700_000;
    b.clock.offset += 700_000;
    const grants = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).engine.oauth.connections.token("Web", null)));
    expect(new Set(grants.map((g) => g.accessToken)).size).toBe(1);
    expect(tokenGrants(server, "refresh_token")).toHaveLength(1);
    await expectNoSecrets(a, server);
  });

  it("refreshes connections that expire soon from the background job, with no workflow asking", async () => {
    // Tokens live 30 s, inside the 60 s skew: the token-refresh job (a bree worker) finds the
    // connection due at its first run and refreshes it; nobody calls getConnection.
    const server = await oauthServer({ accessTokenTtlSeconds: 30 });
    const s = await engineFor({ tokenRefreshMs: 200 });
    await addWebProvider(s.engine, server);
    await authorize(s.engine, server, "Web");
    const refreshed = new Promise<void>((resolve) => s.engine.events.on("maintenance:ran", (e) => e.job === "token-refresh" && e.found > 0 && resolve()));
    await refreshed;
    await server.waitForTokenRequests(2);
    expect(tokenGrants(server, "refresh_token").length).toBeGreaterThanOrEqual(1);
    expect(tokenGrants(server, "refresh_token").every((t) => t.status === 200)).toBe(true);
    const conn = await s.engine.oauth.connections.get("Web", null);
    expect(conn?.lastRefreshAt).toBeGreaterThan(conn?.connectedAt ?? Infinity);
  });
});

describe("OAuth failures, categorized", () => {
  const failureLine = (s: Setup) => s.logLines().map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === "oauth_failure");

  it("a wrong client secret is invalid_client, stored on the connection and logged once", async () => {
    const server = await oauthServer();
    const s = await engineFor();
    await addCcProvider(s.engine, server, "Api", { clientSecret: "wrong-secret-0123456789" });
    await expect(s.engine.oauth.connections.connectClientCredentials("Api", "acme", null)).rejects.toMatchObject({ code: "OAUTH_FAILED", category: "invalid_client" });
    const conn = await s.engine.oauth.connections.get("Api", "acme");
    expect(conn).toMatchObject({ status: "needs_reauth", lastFailure: { category: "invalid_client", code: "invalid_client" } });
    expect(conn?.lastFailure?.fix).toMatch(/secret/i);
    expect(failureLine(s)).toEqual([expect.objectContaining({ provider: "Api", org: "acme", category: "invalid_client", code: "invalid_client", fix: expect.any(String) })]);
    await expectNoSecrets(s, server);
  });

  it("a provider that takes the client secret only as HTTP Basic is connected with clientAuth client_secret_basic", async () => {
    const basicOnly = { ...CC, clientId: "basic-client", tokenEndpointAuthMethod: "client_secret_basic" as const };
    const server = await oauthServer({ clients: [basicOnly] });
    const s = await engineFor();
    await addCcProvider(s.engine, server, "Form", { clientId: "basic-client" });
    await expect(s.engine.oauth.connections.connectClientCredentials("Form", null, null)).rejects.toMatchObject({ category: "invalid_client" });
    const saved = await addCcProvider(s.engine, server, "Basic", { clientId: "basic-client", clientAuth: "client_secret_basic" });
    expect(saved.provider.clientAuth).toBe("client_secret_basic");
    expect(await s.engine.oauth.connections.connectClientCredentials("Basic", null, null)).toMatchObject({ status: "healthy" });
    await expect(s.engine.oauth.putProvider("Bad", { grantType: "client_credentials", tokenUrl: server.tokenUrl, clientId: "x", clientAuth: "jwt" })).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
  });

  it("a scope the client may not have is scope_mismatch", async () => {
    // The provider knows "admin", and this client may not ask for it.
    const server = await oauthServer({ scopes: ["admin"] });
    const s = await engineFor();
    await addCcProvider(s.engine, server, "Api", { scopes: ["admin"] });
    await expect(s.engine.oauth.connections.connectClientCredentials("Api", null, null)).rejects.toMatchObject({ category: "scope_mismatch" });
  });

  it("a revoked refresh token is token_expired and needs_reauth; workflows then fail at once without calling the provider", async () => {
    const server = await oauthServer({ accessTokenTtlSeconds: 600 });
    const s = await engineFor();
    await addWebProvider(s.engine, server);
    await authorize(s.engine, server, "Web");
    await server.revokeAll();
    s.clock.offset += 700_000;
    const r = await run(s.engine, "check_token", { provider: "Web" });
    expect(r.status).toBe("failed");
    expect(r.error).toMatchObject({ code: "OAUTH_FAILED", category: "token_expired", fix: expect.stringMatching(/authori|connect/i) });
    const lines = await s.engine.storage.logs.list(r.id, { limit: 100 });
    expect(lines.find((l) => l.msg === "oauth failure")?.data).toMatchObject({ provider: "Web", category: "token_expired" });
    expect((await s.engine.oauth.connections.get("Web", null))?.status).toBe("needs_reauth");

    const before = server.tokenRequests.length;
    const again = await run(s.engine, "caught", { provider: "Web" });
    expect(again.result).toMatchObject({ ok: false, code: "OAUTH_NEEDS_REAUTH", category: "token_expired" });
    expect(server.tokenRequests.length).toBe(before);
    await expectNoSecrets(s, server);
  });

  it("a token endpoint that is down is connection_lost; one answering 5xx is provider_unavailable and retried", async () => {
    const server = await oauthServer({ accessTokenTtlSeconds: 600 });
    const s = await engineFor();
    await addWebProvider(s.engine, server);
    await authorize(s.engine, server, "Web");
    s.clock.offset += 700_000;

    await server.setMode("fail5xx");
    await expect(s.engine.oauth.connections.token("Web", null)).rejects.toMatchObject({ code: "OAUTH_UNAVAILABLE", category: "provider_unavailable" });
    expect(tokenGrants(server, "refresh_token").length).toBe(3);
    const failed = await s.engine.oauth.connections.get("Web", null);
    expect(failed).toMatchObject({ status: "refresh_failed", lastFailure: { category: "provider_unavailable" } });
    expect(failed?.nextRetryAt).toBeGreaterThan(s.engine.now());

    await server.setMode("down");
    await expect(s.engine.oauth.connections.token("Web", null)).rejects.toMatchObject({ code: "OAUTH_UNAVAILABLE", category: "connection_lost" });

    // Back up: the transient failure was not final, the next use refreshes.
    await server.setMode("normal");
    expect((await s.engine.oauth.connections.token("Web", null)).accessToken).toBeTruthy();
    expect((await s.engine.oauth.connections.get("Web", null))?.status).toBe("healthy");
  });

  it("a client-credentials connect while the provider is down is refresh_failed, and the refresh job connects it later", async () => {
    const server = await oauthServer();
    const s = await engineFor();
    await addCcProvider(s.engine, server);
    await server.setMode("down");
    await expect(s.engine.oauth.connections.connectClientCredentials("Api", "acme", null)).rejects.toMatchObject({ code: "OAUTH_UNAVAILABLE", category: "connection_lost" });
    const failed = await s.engine.oauth.connections.get("Api", "acme");
    expect(failed).toMatchObject({ status: "refresh_failed", lastFailure: { category: "connection_lost" } });
    await server.setMode("normal");
    s.clock.offset += 31_000;
    expect(await s.engine.storage.oauth.dueForRefresh(s.engine.now(), s.engine.now(), 10)).toEqual([{ provider: "Api", org: "acme" }]);
    await s.engine.oauth.connections.refreshDue([{ provider: "Api", org: "acme" }]);
    expect(await s.engine.oauth.connections.get("Api", "acme")).toMatchObject({ status: "healthy", lastFailure: null });
    expect((await run(s.engine, "caught", { provider: "Api" }, "acme")).result).toEqual({ ok: true });
  });

  it("error=access_denied on the callback is categorized and kept on the connection", async () => {
    const server = await oauthServer();
    const s = await engineFor();
    await addWebProvider(s.engine, server);
    const { url } = await s.engine.oauth.connections.startAuthorization("Web", "acme", null);
    const back = new URL(await server.deny(url));
    const outcome = await s.engine.oauth.connections.completeAuthorization(back.searchParams);
    expect(outcome).toMatchObject({ ok: false, provider: "Web", org: "acme", code: "OAUTH_FAILED", failure: { code: "access_denied" } });
    expect((await s.engine.oauth.connections.get("Web", "acme"))?.lastFailure).toMatchObject({ code: "access_denied" });
  });
});

describe("ctx.http with a connection", () => {
  it("refreshes once on a 401 and repeats the request; a 403 that remains is permission_denied", async () => {
    const server = await oauthServer();
    const s = await engineFor();
    await addCcProvider(s.engine, server);
    await s.engine.oauth.connections.connectClientCredentials("Api", null, null);
    const ok = await run(s.engine, "call_api", { provider: "Api", url: server.apiUrl });
    expect(ok.result).toMatchObject({ status: 200, body: { scope: "api:read" } });

    await server.revokeAll({ accessTokens: true });
    const fixed = await run(s.engine, "call_api", { provider: "Api", url: server.apiUrl });
    expect(fixed.result).toMatchObject({ status: 200 });
    expect(server.apiRequests.slice(-2).map((a) => a.status)).toEqual([401, 200]);
    expect(tokenGrants(server, "client_credentials")).toHaveLength(2);

    const denied = await run(s.engine, "call_api", { provider: "Api", url: `${server.apiUrl}?requireScope=api:write` });
    expect(denied.result).toMatchObject({ status: 403, code: "HTTP_ERROR", category: "permission_denied" });
    expect((await s.engine.oauth.connections.get("Api", null))?.lastFailure).toMatchObject({ category: "permission_denied" });
    await expectNoSecrets(s, server);
  });

  it("a 401 that a refresh cannot fix ends as token_expired", async () => {
    const server = await oauthServer();
    const s = await engineFor();
    await addWebProvider(s.engine, server);
    await authorize(s.engine, server, "Web");
    await server.revokeAll({ accessTokens: true });
    const r = await run(s.engine, "call_api", { provider: "Web", url: server.apiUrl });
    expect(r.result).toMatchObject({ code: "OAUTH_FAILED", category: "token_expired" });
    await expectNoSecrets(s, server);
  });
});
