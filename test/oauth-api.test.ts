import { readFileSync } from "node:fs";
import { Ajv } from "ajv";
import addFormatsModule from "ajv-formats";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { buildApp } from "../engine/api/app.js";
import type { Engine } from "../engine/engine.js";
import { bearer, createTestKey, engineTracker } from "./helpers.js";
import { startOAuthServer, type OAuthTestServer } from "./oauth-server.js";

/**
 * The OAuth routes over fastify's inject, against a real OAuth server (oidc-provider on
 * 127.0.0.1): provider CRUD with write-only secrets and configuration warnings, roles and org
 * keys, validation, client credentials, authorize and the callback page. Every reply is checked
 * against the response schema its route publishes, and no reply may hold a secret.
 */

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));

const REDIRECT = "http://127.0.0.1:7071/api/oauth/callback";
const MACHINE_SECRET = "machine-secret-0123456789abcdef";
const WEB_SECRET = "web-secret-0123456789abcdef";

const engines = engineTracker();
const apps: FastifyInstance[] = [];
const servers: OAuthTestServer[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

interface Setup {
  engine: Engine;
  app: FastifyInstance;
  server: OAuthTestServer;
  keys: { admin: string; operator: string; viewer: string; acme: string };
  /** Every raw reply body so far, for the secret search. */
  bodies: string[];
  call: (key: string | null, method: "GET" | "PUT" | "POST" | "DELETE", url: string, options?: { body?: unknown; headers?: Record<string, string> }) => Promise<LightMyRequestResponse>;
}

async function setup(): Promise<Setup> {
  const server = await startOAuthServer({
    clients: [
      { clientId: "machine", clientSecret: MACHINE_SECRET, scopes: ["api:read"], grantTypes: ["client_credentials"], redirectUris: [] },
      { clientId: "web", clientSecret: WEB_SECRET, scopes: ["api:read", "offline_access"], grantTypes: ["authorization_code", "refresh_token"], redirectUris: [REDIRECT] },
    ],
  });
  servers.push(server);
  const { engine } = await engines.open();
  const app = await buildApp({ engine });
  apps.push(app);
  const keys = {
    admin: await createTestKey(engine, "admin"),
    operator: await createTestKey(engine, "operator"),
    viewer: await createTestKey(engine, "viewer"),
    acme: await createTestKey(engine, "viewer", "acme"),
  };
  const bodies: string[] = [];
  const call: Setup["call"] = async (key, method, url, options = {}) => {
    const res = await app.inject({
      method,
      url,
      headers: { ...(key === null ? {} : bearer(key)), ...(options.body !== undefined && { "content-type": "application/json" }), ...options.headers },
      ...(options.body !== undefined && { payload: JSON.stringify(options.body) }),
    });
    bodies.push(res.body, JSON.stringify(res.headers));
    checkSchema(app, method, url, res);
    return res;
  };
  return { engine, app, server, keys, bodies, call };
}

/** The reply matches what its route publishes for that status (JSON replies only). */
function checkSchema(app: FastifyInstance, method: string, url: string, res: LightMyRequestResponse): void {
  const path = url.split("?")[0]!;
  const entry = app.routeTable.list().find((e) => e.method === method && new RegExp(`^${e.url.replace(/:[a-zA-Z]+/g, "[^/]+")}$`).test(path));
  if (!entry || !String(res.headers["content-type"] ?? "").startsWith("application/json")) return;
  const schema = (entry.route.schema?.response as Record<string, object> | undefined)?.[String(res.statusCode)];
  expect({ route: `${method} ${entry.url}`, status: res.statusCode, documented: schema !== undefined }).toEqual({ route: `${method} ${entry.url}`, status: res.statusCode, documented: true });
  const validate = ajv.compile(schema!);
  const ok = validate(res.json());
  expect({ route: `${method} ${entry.url} ${res.statusCode}`, errors: ok ? [] : validate.errors }).toEqual({ route: `${method} ${entry.url} ${res.statusCode}`, errors: [] });
}

const machine = (s: OAuthTestServer, extra: Record<string, unknown> = {}) => ({ grantType: "client_credentials", tokenUrl: s.tokenUrl, clientId: "machine", clientSecret: MACHINE_SECRET, scopes: ["api:read"], ...extra });
const web = (s: OAuthTestServer, extra: Record<string, unknown> = {}) => ({
  grantType: "authorization_code",
  authorizationUrl: s.authorizationUrl,
  tokenUrl: s.tokenUrl,
  clientId: "web",
  clientSecret: WEB_SECRET,
  scopes: "api:read offline_access",
  redirectUri: REDIRECT,
  ...extra,
});

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
/** The keys the README documents for `- **<what>:** \`{ ... }\``. */
function documentedKeys(what: string): string[] {
  const m = new RegExp(`- \\*\\*${what}:\\*\\* \`\\{ ([^}]*) \\}\``).exec(readme);
  expect(m, `README documents the ${what} view`).not.toBeNull();
  return m![1]!.split(",").map((k) => k.trim());
}

function expectNoSecrets(t: Setup): void {
  const all = t.bodies.join("\n");
  for (const secret of [MACHINE_SECRET, WEB_SECRET, ...t.server.secrets()]) expect(all).not.toContain(secret);
}

describe("OAuth providers over HTTP", () => {
  it("creates, replaces, lists, shows and removes a provider; the client secret is write-only", async () => {
    const t = await setup();
    const created = await t.call(t.keys.admin, "PUT", "/api/oauth/providers/Machine", { body: machine(t.server) });
    expect(created.statusCode).toBe(201);
    expect(created.json().provider).toMatchObject({ name: "Machine", grantType: "client_credentials", clientId: "machine", clientSecretSet: true, scopes: ["api:read"], authorizationUrl: null, redirectUriDefault: true });
    expect(created.json().provider.redirectUri).toMatch(/\/api\/oauth\/callback$/);
    // Without clientSecret the stored one is kept.
    const { clientSecret: _omitted, ...withoutSecret } = machine(t.server, { scopes: "api:read api:write" });
    const replaced = await t.call(t.keys.admin, "PUT", "/api/oauth/providers/Machine", { body: withoutSecret });
    expect(replaced.statusCode).toBe(200);
    expect(replaced.json().provider).toMatchObject({ clientSecretSet: true, scopes: ["api:read", "api:write"] });
    expect((await t.call(t.keys.admin, "PUT", "/api/oauth/providers/web", { body: web(t.server) })).statusCode).toBe(201);

    const list = await t.call(t.keys.admin, "GET", "/api/oauth/providers");
    expect(list.json().items.map((p: { name: string }) => p.name)).toEqual(["Machine", "web"]);
    const shown = await t.call(t.keys.admin, "GET", "/api/oauth/providers/web");
    expect(shown.json()).toMatchObject({ name: "web", grantType: "authorization_code", redirectUri: REDIRECT, redirectUriDefault: false, scopes: ["api:read", "offline_access"] });
    expect(Date.parse(shown.json().createdAt)).toBeGreaterThan(0);
    expect(Object.keys(shown.json()).sort()).toEqual(documentedKeys("Provider").sort());

    expect((await t.call(t.keys.admin, "DELETE", "/api/oauth/providers/web")).statusCode).toBe(204);
    const gone = await t.call(t.keys.admin, "GET", "/api/oauth/providers/web");
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe("OAUTH_PROVIDER_NOT_FOUND");
    expect((await t.call(t.keys.admin, "DELETE", "/api/oauth/providers/web")).json().error.code).toBe("OAUTH_PROVIDER_NOT_FOUND");
    expectNoSecrets(t);
  });

  it("returns the failed configuration checks as warnings with their fixes", async () => {
    const t = await setup();
    const saved = await t.call(t.keys.admin, "PUT", "/api/oauth/providers/sloppy", { body: machine(t.server, { clientId: "Client ID: abc" }) });
    expect(saved.statusCode).toBe(201);
    const warnings = saved.json().warnings as { ok: boolean; category?: string; fix?: string; message: string }[];
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings.every((w) => !w.ok && typeof w.fix === "string" && w.fix.length > 0)).toBe(true);
    expect(warnings.some((w) => w.category === "invalid_client" && /client id/i.test(w.message))).toBe(true);
    const clean = await t.call(t.keys.admin, "PUT", "/api/oauth/providers/sloppy", { body: machine(t.server) });
    expect(clean.json().warnings.filter((w: { id: string }) => /client/i.test(w.id))).toEqual([]);
  });

  it("refuses bad input with 400 and a fix, never a 5xx", async () => {
    const t = await setup();
    const cases: [string, string, unknown][] = [
      ["bad name", "/api/oauth/providers/1nope", machine(t.server)],
      ["no tokenUrl", "/api/oauth/providers/p", { grantType: "client_credentials", clientId: "c" }],
      ["a relative token URL", "/api/oauth/providers/p", machine(t.server, { tokenUrl: "/token" })],
      ["an unknown grant", "/api/oauth/providers/p", machine(t.server, { grantType: "password" })],
      ["no authorization URL for the code grant", "/api/oauth/providers/p", web(t.server, { authorizationUrl: null })],
      ["an unknown field", "/api/oauth/providers/p", machine(t.server, { tenant: "x" })],
      ["scopes with a quote", "/api/oauth/providers/p", machine(t.server, { scopes: ['a"b'] })],
    ];
    for (const [what, url, body] of cases) {
      const res = await t.call(t.keys.admin, "PUT", url, { body });
      expect({ what, status: res.statusCode, code: res.json().error.code, fix: typeof res.json().error.fix }).toEqual({ what, status: 400, code: "VALIDATION_FAILED", fix: "string" });
    }
    await t.call(t.keys.admin, "PUT", "/api/oauth/providers/m", { body: machine(t.server) });
    for (const url of ["/api/oauth/connections/m/connect?org=bad%20org", "/api/oauth/connections/m/connect?entityId=..%2F", "/api/oauth/connections?org=-x", "/api/oauth/connections/m/connect?bogus=1"]) {
      const res = await t.call(t.keys.admin, url.includes("/connect?") ? "POST" : "GET", url);
      expect({ url, status: res.statusCode, code: res.json().error.code }).toEqual({ url, status: 400, code: "VALIDATION_FAILED" });
    }
  });

  it("needs admin to manage; a viewer or operator may not even read provider configuration", async () => {
    const t = await setup();
    for (const key of [t.keys.viewer, t.keys.operator, t.keys.acme]) {
      const put = await t.call(key, "PUT", "/api/oauth/providers/m", { body: machine(t.server) });
      expect(put.statusCode).toBe(403);
      expect(put.json().error.code).toBe("FORBIDDEN");
      expect((await t.call(key, "GET", "/api/oauth/providers")).statusCode).toBe(403);
      expect((await t.call(key, "POST", "/api/oauth/connections/m/connect")).statusCode).toBe(403);
      expect((await t.call(key, "GET", "/api/oauth/providers/m/authorize")).statusCode).toBe(403);
    }
    expect((await t.call(null, "GET", "/api/oauth/connections")).statusCode).toBe(401);
    expect((await t.call(t.keys.viewer, "GET", "/api/oauth/connections")).statusCode).toBe(200);
  });
});

describe("OAuth connections over HTTP", () => {
  it("connects with client credentials per org and globally; lists, refreshes and removes them", async () => {
    const t = await setup();
    await t.call(t.keys.admin, "PUT", "/api/oauth/providers/m", { body: machine(t.server) });
    const global = await t.call(t.keys.admin, "POST", "/api/oauth/connections/m/connect");
    expect(global.statusCode).toBe(200);
    expect(global.json().connection).toMatchObject({ provider: "m", org: null, status: "healthy", scopes: ["api:read"], lastFailure: null, tokenType: expect.stringMatching(/bearer/i) });
    expect(Date.parse(global.json().connection.expiresAt)).toBeGreaterThan(Date.now());
    expect(Object.keys(global.json().connection).sort()).toEqual(documentedKeys("Connection").sort());
    for (const org of ["acme", "contoso"]) expect((await t.call(t.keys.admin, "POST", `/api/oauth/connections/m/connect?org=${org}`)).statusCode).toBe(200);
    expect(t.server.tokenRequests.length).toBe(3);

    const all = await t.call(t.keys.viewer, "GET", "/api/oauth/connections");
    expect(all.json().items.map((c: { org: string | null }) => c.org)).toEqual([null, "acme", "contoso"]);
    expect((await t.call(t.keys.viewer, "GET", "/api/oauth/connections?org=contoso")).json().items.map((c: { org: string }) => c.org)).toEqual(["contoso"]);
    expect((await t.call(t.keys.viewer, "GET", "/api/oauth/connections?provider=other")).json().items).toEqual([]);

    const refreshed = await t.call(t.keys.admin, "POST", "/api/oauth/connections/m/refresh?org=acme");
    expect(refreshed.statusCode).toBe(200);
    expect(refreshed.json().connection).toMatchObject({ org: "acme", status: "healthy" });
    expect(t.server.tokenRequests.length).toBe(4);

    expect((await t.call(t.keys.admin, "DELETE", "/api/oauth/connections/m?org=acme")).statusCode).toBe(204);
    const again = await t.call(t.keys.admin, "DELETE", "/api/oauth/connections/m?org=acme");
    expect(again.statusCode).toBe(404);
    expect(again.json().error.code).toBe("CONNECTION_NOT_FOUND");
    expect((await t.call(t.keys.admin, "POST", "/api/oauth/connections/m/refresh?org=acme")).json().error.code).toBe("CONNECTION_NOT_FOUND");
    expect((await t.call(t.keys.admin, "POST", "/api/oauth/connections/nope/connect")).json().error.code).toBe("OAUTH_PROVIDER_NOT_FOUND");
    expectNoSecrets(t);
  });

  it("an org key sees its own org's connections only and diagnoses its own org", async () => {
    const t = await setup();
    await t.call(t.keys.admin, "PUT", "/api/oauth/providers/m", { body: machine(t.server) });
    for (const q of ["", "?org=acme", "?org=contoso"]) await t.call(t.keys.admin, "POST", `/api/oauth/connections/m/connect${q}`);
    const own = await t.call(t.keys.acme, "GET", "/api/oauth/connections");
    expect(own.json().items.map((c: { org: string }) => c.org)).toEqual(["acme"]);
    expect((await t.call(t.keys.acme, "GET", "/api/oauth/connections?org=acme")).json().items).toHaveLength(1);
    expect((await t.call(t.keys.acme, "GET", "/api/oauth/connections?org=contoso")).json().items).toEqual([]);

    const diagnosis = await t.call(t.keys.acme, "GET", "/api/oauth/providers/m/diagnose");
    expect(diagnosis.statusCode).toBe(200);
    expect(Object.keys(diagnosis.json()).sort()).toEqual(["checks", "ok"]);
    expect(diagnosis.json().checks.length).toBeGreaterThan(3);
    const other = await t.call(t.keys.acme, "GET", "/api/oauth/providers/m/diagnose?org=contoso");
    expect(other.statusCode).toBe(403);
    expect(other.json().error.code).toBe("FORBIDDEN");
    expect((await t.call(t.keys.viewer, "GET", "/api/oauth/providers/m/diagnose?org=contoso")).statusCode).toBe(200);
    expect((await t.call(t.keys.viewer, "GET", "/api/oauth/providers/nope/diagnose")).json().error.code).toBe("OAUTH_PROVIDER_NOT_FOUND");
    expectNoSecrets(t);
  });

  it("a refused client-credentials connect is OAUTH_FAILED with the category and fix at the top of the error", async () => {
    const t = await setup();
    await t.call(t.keys.admin, "PUT", "/api/oauth/providers/m", { body: machine(t.server, { clientSecret: "wrong-secret-0123456789abcdef" }) });
    const res = await t.call(t.keys.admin, "POST", "/api/oauth/connections/m/connect?org=acme");
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: "OAUTH_FAILED", category: "invalid_client", fix: expect.stringMatching(/client id and secret/i) });
    const listed = await t.call(t.keys.viewer, "GET", "/api/oauth/connections?org=acme");
    expect(listed.json().items[0]).toMatchObject({ status: "needs_reauth", lastFailure: { category: "invalid_client" } });
    const refresh = await t.call(t.keys.admin, "POST", "/api/oauth/connections/m/refresh?org=acme");
    expect(refresh.statusCode).toBe(409);
    expect(refresh.json().error).toMatchObject({ code: "OAUTH_NEEDS_REAUTH", category: "invalid_client" });
    // A client-credentials provider has nothing to authorize in a browser.
    expect((await t.call(t.keys.admin, "GET", "/api/oauth/providers/m/authorize")).json().error.code).toBe("OAUTH_WRONG_GRANT");
    expectNoSecrets(t);
  });
});

describe("authorize and the callback", () => {
  it("authorize redirects to the provider with state and PKCE, or answers the link as JSON", async () => {
    const t = await setup();
    await t.call(t.keys.admin, "PUT", "/api/oauth/providers/web", { body: web(t.server) });
    const redirect = await t.call(t.keys.admin, "GET", "/api/oauth/providers/web/authorize?org=acme");
    expect(redirect.statusCode).toBe(302);
    const location = new URL(String(redirect.headers.location));
    expect(location.href.startsWith(t.server.authorizationUrl)).toBe(true);
    expect(location.searchParams.get("redirect_uri")).toBe(REDIRECT);
    expect(location.searchParams.get("code_challenge_method")).toBe("S256");
    expect(location.searchParams.get("state")).toBeTruthy();
    const link = await t.call(t.keys.admin, "GET", "/api/oauth/providers/web/authorize?redirect=false");
    expect(link.statusCode).toBe(200);
    expect(new URL(link.json().url).searchParams.get("state")).not.toBe(location.searchParams.get("state"));
    expect(Date.parse(link.json().expiresAt)).toBeGreaterThan(Date.now());
    expect((await t.call(t.keys.admin, "GET", "/api/oauth/providers/web/authorize", { headers: { accept: "application/json" } })).statusCode).toBe(200);
    expect((await t.call(t.keys.admin, "POST", "/api/oauth/connections/web/connect")).json().error.code).toBe("OAUTH_WRONG_GRANT");
  });

  it("a missing or unknown state is a 400 page with the fix, or the error shape as JSON", async () => {
    const t = await setup();
    const html = { accept: "text/html,application/xhtml+xml,*/*;q=0.8" };
    for (const query of ["", "?code=abc", "?code=abc&state=forged-state"]) {
      const page = await t.call(null, "GET", `/api/oauth/callback${query}`, { headers: html });
      expect(page.statusCode).toBe(400);
      expect(page.headers["content-type"]).toMatch(/^text\/html/);
      expect(page.headers["content-security-policy"]).toContain("default-src 'none'");
      expect(page.headers["referrer-policy"]).toBe("no-referrer");
      expect(page.body).toContain("This authorization link cannot be used");
      expect(page.body).toContain("Start the authorization again");
      expect(page.body).not.toMatch(/<script/i);
    }
    const json = await t.call(null, "GET", "/api/oauth/callback?state=forged", { headers: { accept: "application/json" } });
    expect(json.statusCode).toBe(400);
    expect(json.json().error).toMatchObject({ code: "OAUTH_STATE_INVALID", fix: expect.any(String), category: expect.any(String) });
  });

  it("error=access_denied with a real state is a categorized page; the state cannot be used again", async () => {
    const t = await setup();
    await t.call(t.keys.admin, "PUT", "/api/oauth/providers/web", { body: web(t.server) });
    const link = (await t.call(t.keys.admin, "GET", "/api/oauth/providers/web/authorize?org=acme&redirect=false")).json().url as string;
    const back = new URL(await t.server.deny(link));
    expect(back.searchParams.get("error")).toBe("access_denied");
    const page = await t.call(null, "GET", `/api/oauth/callback${back.search}`, { headers: { accept: "text/html" } });
    expect(page.statusCode).toBe(400);
    expect(page.body).toContain("Authorization failed");
    expect(page.body).toContain("access_denied");
    expect(page.body).toContain("bifrost oauth connect web --org acme");
    expect(page.body).toMatch(/Category<\/dt><dd>[a-z_]+<\/dd>/);
    const listed = await t.call(t.keys.viewer, "GET", "/api/oauth/connections?org=acme");
    expect(listed.json().items[0]).toMatchObject({ provider: "web", org: "acme", status: "needs_reauth", lastFailure: { code: "access_denied" } });

    // The denial used the state up: the same answer again is refused as a state problem.
    const replay = await t.call(null, "GET", `/api/oauth/callback?code=x&state=${encodeURIComponent(back.searchParams.get("state")!)}`, { headers: { accept: "application/json" } });
    expect(replay.json().error.code).toBe("OAUTH_STATE_INVALID");
  });

  it("a granted authorization connects and the page shows scopes and expiry, never a token", async () => {
    const t = await setup();
    await t.call(t.keys.admin, "PUT", "/api/oauth/providers/web", { body: web(t.server) });
    const link = (await t.call(t.keys.admin, "GET", "/api/oauth/providers/web/authorize?redirect=false")).json().url as string;
    const back = new URL(await t.server.authorize(link));
    const page = await t.call(null, "GET", `/api/oauth/callback${back.search}`, { headers: { accept: "text/html" } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain("Connected to web");
    expect(page.body).toContain("api:read");
    expect(page.body).toContain("Access token expires");
    const listed = await t.call(t.keys.viewer, "GET", "/api/oauth/connections?provider=web");
    expect(listed.json().items[0]).toMatchObject({ org: null, status: "healthy", hasRefreshToken: true });
    expect(page.body).not.toContain(back.searchParams.get("code")!);
    expectNoSecrets(t);
  });

  it("runs the PKCE code flow through the routes for two orgs with a templated {entity_id}", async () => {
    const t = await setup();
    await t.call(t.keys.admin, "PUT", "/api/oauth/providers/tenant", { body: web(t.server, { authorizationUrl: t.server.templatedAuthorizationUrl, tokenUrl: t.server.templatedTokenUrl }) });
    for (const org of ["acme", "beta"]) {
      const redirect = await t.call(t.keys.admin, "GET", `/api/oauth/providers/tenant/authorize?org=${org}&entityId=tenant-${org}`);
      expect(redirect.statusCode).toBe(302);
      const location = new URL(String(redirect.headers.location));
      expect(location.pathname).toBe(`/tenants/tenant-${org}/auth`);
      expect(location.searchParams.get("code_challenge_method")).toBe("S256");
      const back = new URL(await t.server.authorize(location.href));
      const page = await t.call(null, "GET", `/api/oauth/callback${back.search}`, { headers: { accept: "application/json" } });
      expect(page.statusCode).toBe(200);
      expect(page.json()).toMatchObject({ ok: true, provider: "tenant", org });
    }
    expect(t.server.authorizationRequests.map((a) => a.tenant)).toEqual(["tenant-acme", "tenant-beta"]);
    expect(t.server.tokenRequests.filter((r) => r.grantType === "authorization_code").map((r) => r.tenant)).toEqual(["tenant-acme", "tenant-beta"]);
    const items = (await t.call(t.keys.viewer, "GET", "/api/oauth/connections?provider=tenant")).json().items as Array<{ org: string; entityId: string; status: string }>;
    expect(items.map((c) => [c.org, c.entityId, c.status])).toEqual([["acme", "tenant-acme", "healthy"], ["beta", "tenant-beta", "healthy"]]);
    expectNoSecrets(t);
  });

  it("escapes what the provider sends back", async () => {
    const t = await setup();
    await t.call(t.keys.admin, "PUT", "/api/oauth/providers/web", { body: web(t.server) });
    const link = new URL((await t.call(t.keys.admin, "GET", "/api/oauth/providers/web/authorize?redirect=false")).json().url as string);
    const query = new URLSearchParams({ state: link.searchParams.get("state")!, error: "<b>bad</b>", error_description: `<script>alert("x")</script> & more` });
    const page = await t.call(null, "GET", `/api/oauth/callback?${query}`, { headers: { accept: "text/html" } });
    expect(page.statusCode).toBe(400);
    expect(page.body).not.toMatch(/<script|<b>bad/);
    expect(page.body).toContain("&#60;script&#62;");
  });
});
