// The OAuth test server, exercised with openid-client alone, so the OAuth suites can trust it.
import * as client from "openid-client";
import { afterEach, describe, expect, it } from "vitest";
import { startOAuthServer, type OAuthTestServer } from "./oauth-server.js";

const REDIRECT = "http://127.0.0.1:7071/api/oauth/callback";
const started: OAuthTestServer[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});

async function start(options: Partial<Parameters<typeof startOAuthServer>[0]> = {}): Promise<OAuthTestServer> {
  const server = await startOAuthServer({
    clients: [
      { clientId: "machine", clientSecret: "machine-secret-0123456789", scopes: ["api:read", "api:write"], grantTypes: ["client_credentials"], redirectUris: [] },
      { clientId: "web", clientSecret: "web-secret-0123456789", scopes: ["api:read", "offline_access"], grantTypes: ["authorization_code", "refresh_token"], redirectUris: [REDIRECT] },
    ],
    scopes: ["admin"],
    ...options,
  });
  started.push(server);
  return server;
}

function config(server: OAuthTestServer, clientId: string, secret: string, urls: { token?: string; auth?: string } = {}): client.Configuration {
  const cfg = new client.Configuration(
    { issuer: server.issuer, token_endpoint: urls.token ?? server.tokenUrl, authorization_endpoint: urls.auth ?? server.authorizationUrl },
    clientId,
    secret,
  );
  client.allowInsecureRequests(cfg);
  return cfg;
}

async function codeFlow(server: OAuthTestServer, cfg: client.Configuration, scope = "api:read offline_access") {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: REDIRECT,
    scope,
    state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
  });
  const location = await server.authorize(url.href);
  return client.authorizationCodeGrant(cfg, new URL(location), { pkceCodeVerifier: verifier, expectedState: state });
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (err: unknown) => err,
  );
}

describe("OAuth test server", () => {
  it("client credentials: requested scopes and expires_in from the TTL, Basic or post auth", async () => {
    const server = await start({ accessTokenTtlSeconds: 90 });
    const tokens = await client.clientCredentialsGrant(config(server, "machine", "machine-secret-0123456789"), { scope: "api:read" });
    expect(tokens).toMatchObject({ expires_in: 90, scope: "api:read", token_type: "bearer" });
    const basicCfg = new client.Configuration({ issuer: server.issuer, token_endpoint: server.tokenUrl }, "machine", undefined, client.ClientSecretBasic("machine-secret-0123456789"));
    client.allowInsecureRequests(basicCfg);
    server.setAccessTokenTtl(30);
    expect(await client.clientCredentialsGrant(basicCfg, { scope: "api:read api:write" })).toMatchObject({ expires_in: 30, scope: "api:read api:write" });
    expect(server.tokenRequests.map((r) => [r.grantType, r.clientId, r.scope, r.status])).toEqual([
      ["client_credentials", "machine", "api:read", 200],
      ["client_credentials", "machine", "api:read api:write", 200],
    ]);
    expect(server.secrets()).toEqual(expect.arrayContaining([tokens.access_token, "machine-secret-0123456789", "web-secret-0123456789"]));
  });

  it("PKCE code flow, then refresh with rotation: the old refresh token fails with invalid_grant", async () => {
    const server = await start({ accessTokenTtlSeconds: 120 });
    const cfg = config(server, "web", "web-secret-0123456789");
    const first = await codeFlow(server, cfg);
    expect(first).toMatchObject({ expires_in: 120, scope: "api:read", token_type: "bearer" });
    expect(first.refresh_token).toEqual(expect.any(String));
    expect(server.authorizationRequests).toMatchObject([{ clientId: "web", codeChallengeMethod: "S256", redirectUri: REDIRECT, tenant: null }]);

    const second = await client.refreshTokenGrant(cfg, first.refresh_token!);
    expect(second.refresh_token).toEqual(expect.any(String));
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second).toMatchObject({ expires_in: 120, scope: "api:read" });
    const err = await failure(client.refreshTokenGrant(cfg, first.refresh_token!));
    expect(err).toBeInstanceOf(client.ResponseBodyError);
    expect(err).toMatchObject({ error: "invalid_grant", status: 400 });
    // Reuse is treated as theft: the whole grant is revoked, so the newest refresh token dies too.
    expect(await failure(client.refreshTokenGrant(cfg, second.refresh_token!))).toMatchObject({ error: "invalid_grant" });

    expect(server.tokenRequests.map((r) => [r.grantType, r.refreshToken, r.status])).toEqual([
      ["authorization_code", null, 200],
      ["refresh_token", first.refresh_token, 200],
      ["refresh_token", first.refresh_token, 400],
      ["refresh_token", second.refresh_token, 400],
    ]);
    expect(server.secrets()).toEqual(expect.arrayContaining([first.access_token, first.refresh_token, second.access_token, second.refresh_token]));
  });

  it("without rotation the same refresh token keeps working", async () => {
    const server = await start({ rotateRefreshTokens: false });
    const cfg = config(server, "web", "web-secret-0123456789");
    const first = await codeFlow(server, cfg);
    const second = await client.refreshTokenGrant(cfg, first.refresh_token!);
    expect(second.refresh_token).toBe(first.refresh_token);
    await client.refreshTokenGrant(cfg, first.refresh_token!);
    expect(server.tokenRequests.map((r) => r.status)).toEqual([200, 200, 200]);
  });

  it("wrong secret is invalid_client 401; a scope the client lacks is invalid_scope", async () => {
    const server = await start();
    const wrong = await failure(client.clientCredentialsGrant(config(server, "machine", "not-the-secret"), { scope: "api:read" }));
    expect(wrong).toBeInstanceOf(client.ResponseBodyError);
    expect(wrong).toMatchObject({ error: "invalid_client", status: 401 });
    const scope = await failure(client.clientCredentialsGrant(config(server, "machine", "machine-secret-0123456789"), { scope: "admin" }));
    expect(scope).toMatchObject({ error: "invalid_scope", status: 400 });
    expect(server.tokenRequests.map((r) => [r.clientId, r.status])).toEqual([
      ["machine", 401],
      ["machine", 400],
    ]);
    // At the authorization endpoint the same mistake comes back on the redirect.
    const cfg = config(server, "web", "web-secret-0123456789");
    const url = client.buildAuthorizationUrl(cfg, { redirect_uri: REDIRECT, scope: "admin", state: "s1", code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: "S256" });
    const location = new URL(await server.authorize(url.href));
    expect(location.searchParams.get("error")).toBe("invalid_scope");
    // A redirect_uri the client did not register cannot be redirected to: authorize() throws the page's text.
    const unregistered = client.buildAuthorizationUrl(cfg, { redirect_uri: "http://127.0.0.1:1/elsewhere", scope: "api:read", state: "s2", code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: "S256" });
    await expect(server.authorize(unregistered.href)).rejects.toThrow(/answered 400: .*redirect_uri/);
  });

  it("revokeAll: the next refresh is invalid_grant; with accessTokens the API answers 401", async () => {
    const server = await start();
    const cfg = config(server, "web", "web-secret-0123456789");
    const tokens = await codeFlow(server, cfg);
    await server.revokeAll();
    expect(await failure(client.refreshTokenGrant(cfg, tokens.refresh_token!))).toMatchObject({ error: "invalid_grant" });
    expect((await fetch(server.apiUrl, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(200);
    await server.revokeAll({ accessTokens: true });
    expect((await fetch(server.apiUrl, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(401);
  });

  it("fail5xx answers 503 HTML; down refuses connections; reset destroys them; normal comes back on the same URL", async () => {
    const server = await start();
    const cfg = config(server, "machine", "machine-secret-0123456789");
    await server.setMode("fail5xx");
    const unavailable = await failure(client.clientCredentialsGrant(cfg, { scope: "api:read" }));
    // A non-JSON error body is not a ResponseBodyError: openid-client throws a ClientError whose cause is the Response.
    expect(unavailable).toBeInstanceOf(client.ClientError);
    expect(unavailable).toMatchObject({ code: "OAUTH_RESPONSE_IS_NOT_CONFORM", cause: { status: 503 } });

    await server.setMode("down");
    const down = await failure(client.clientCredentialsGrant(cfg, { scope: "api:read" }));
    expect(down).toBeInstanceOf(TypeError);
    expect(down).toMatchObject({ message: "fetch failed", cause: { code: "ECONNREFUSED" } });

    await server.setMode("reset");
    const reset = await failure(client.clientCredentialsGrant(cfg, { scope: "api:read" }));
    expect(reset).toMatchObject({ message: "fetch failed" });

    await server.setMode("normal");
    await client.clientCredentialsGrant(cfg, { scope: "api:read" });
    // The refused attempt never arrived; the reset one did, unanswered.
    expect(server.tokenRequests.map((r) => r.status)).toEqual([503, 0, 200]);
  });

  it("slow holds token answers until released, and waitForTokenRequests sees them arrive", async () => {
    const server = await start();
    const cfg = config(server, "machine", "machine-secret-0123456789");
    await server.setMode("slow");
    const pending = [1, 2, 3].map(() => client.clientCredentialsGrant(cfg, { scope: "api:read" }));
    await server.waitForTokenRequests(3);
    expect(server.tokenRequests.map((r) => r.status)).toEqual([0, 0, 0]);
    server.release();
    await Promise.all(pending);
    expect(server.tokenRequests.map((r) => r.status)).toEqual([200, 200, 200]);
  });

  it("deny returns the redirect with error=access_denied", async () => {
    const server = await start();
    const cfg = config(server, "web", "web-secret-0123456789");
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(cfg, { redirect_uri: REDIRECT, scope: "api:read", state, code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: "S256" });
    const location = new URL(await server.deny(url.href));
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
    expect(location.searchParams.get("error")).toBe("access_denied");
    expect(location.searchParams.get("state")).toBe(state);
    const err = await failure(client.authorizationCodeGrant(cfg, location, { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: state }));
    expect(err).toBeInstanceOf(client.AuthorizationResponseError);
    expect(err).toMatchObject({ error: "access_denied" });
    expect(server.tokenRequests).toEqual([]);
  });

  it("templated tenant URLs record the tenant of each request", async () => {
    const server = await start();
    const fill = (template: string, id: string) => template.replace("{entity_id}", encodeURIComponent(id));
    for (const tenant of ["org-a", "org-b"]) {
      const cfg = config(server, "web", "web-secret-0123456789", { token: fill(server.templatedTokenUrl, tenant), auth: fill(server.templatedAuthorizationUrl, tenant) });
      const tokens = await codeFlow(server, cfg);
      await client.refreshTokenGrant(cfg, tokens.refresh_token!);
    }
    await client.clientCredentialsGrant(config(server, "machine", "machine-secret-0123456789", { token: fill(server.templatedTokenUrl, "org c") }), { scope: "api:read" });
    expect(server.authorizationRequests.map((r) => r.tenant)).toEqual(["org-a", "org-b"]);
    expect(server.tokenRequests.map((r) => [r.tenant, r.grantType])).toEqual([
      ["org-a", "authorization_code"],
      ["org-a", "refresh_token"],
      ["org-b", "authorization_code"],
      ["org-b", "refresh_token"],
      ["org c", "client_credentials"],
    ]);
  });

  it("the test API: 200 with sub/client_id/scope, 401 invalid_token, 403 insufficient_scope", async () => {
    const server = await start();
    const machine = await client.clientCredentialsGrant(config(server, "machine", "machine-secret-0123456789"), { scope: "api:read" });
    const user = await codeFlow(server, config(server, "web", "web-secret-0123456789"));
    const get = (token: string | null, query = "") => fetch(`${server.apiUrl}${query}`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });

    const ok = await get(machine.access_token);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ sub: null, client_id: "machine", scope: "api:read" });
    expect(await (await get(user.access_token)).json()).toEqual({ sub: "test-user", client_id: "web", scope: "api:read" });

    for (const token of [null, "bogus"]) {
      const res = await get(token);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer .*error="invalid_token"/);
    }
    const forbidden = await get(machine.access_token, "?requireScope=api:write");
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    expect((await get(machine.access_token, "?requireScope=api:read")).status).toBe(200);

    // openid-client sees the 401 challenge the way a workflow's client would.
    const err = await failure(client.fetchProtectedResource(config(server, "machine", "x"), "bogus", new URL(server.apiUrl), "GET"));
    expect(err).toBeInstanceOf(client.WWWAuthenticateChallengeError);
    expect(server.apiRequests.map((r) => r.status)).toEqual([200, 200, 401, 401, 403, 200, 401]);
  });
});
