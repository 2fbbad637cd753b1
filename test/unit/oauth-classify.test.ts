import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CATEGORY_FIXES, classifyOAuthFailure, describeError, fixFor, type FailureSignal, type OAuthWhere } from "../../engine/oauth/classify.js";
import { OAUTH_CATEGORIES, type OAuthCategory } from "../../engine/oauth/types.js";
import { closedPort, json, ScriptedServer, text } from "../http-servers.js";

const token = (error: string, description?: string, status = 400, where: OAuthWhere = "token"): FailureSignal => ({ kind: "oauth_error", where, status, error, ...(description === undefined ? {} : { description }) });
const categoryOf = (signal: FailureSignal) => classifyOAuthFailure(signal).category;

/** Microsoft's real shape: the AADSTS code leads the description, trace lines follow after CRLF. */
const aad = (code: string, text: string) => `AADSTS${code}: ${text}\r\nTrace ID: 0b7f2c1e-1111-2222-3333-444455556666\r\nCorrelation ID: 7d1c\r\nTimestamp: 2026-03-01 12:00:00Z`;

describe("classifyOAuthFailure: Microsoft AADSTS codes by their meaning", () => {
  const cases: Array<[string, string, OAuthCategory, OAuthWhere?]> = [
    ["50011", "The redirect URI 'https://x/cb' specified in the request does not match the redirect URIs configured for the application.", "redirect_uri_mismatch", "callback"],
    ["7000215", "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.", "invalid_client"],
    ["7000222", "The provided client secret keys for app '1b2c' are expired.", "invalid_client"],
    ["700016", "Application with identifier '1b2c' was not found in the directory 'contoso'.", "invalid_client"],
    ["70011", "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid.", "scope_mismatch"],
    ["650053", "The application asked for scope 'Foo.Read' that doesn't exist on the resource.", "scope_mismatch"],
    ["65001", "The user or administrator has not consented to use the application.", "consent_required"],
    ["700082", "The refresh token has expired due to inactivity.", "token_expired", "refresh"],
    ["50173", "The provided grant has expired due to it being revoked, a fresh auth token is needed.", "token_expired", "refresh"],
    ["7000112", "Application '1b2c' is disabled.", "app_disabled"],
    ["50076", "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication.", "policy_blocked", "refresh"],
    ["50079", "Due to a configuration change made by your administrator, you must enroll in multi-factor authentication.", "policy_blocked", "refresh"],
    ["53003", "Access has been blocked by Conditional Access policies.", "policy_blocked"],
    ["9002313", "Invalid request. Request is malformed or invalid.", "authorization_failed"],
  ];

  for (const [code, description, category, where] of cases) {
    it(`AADSTS${code} → ${category}`, () => {
      // Microsoft sends a generic error (often invalid_grant or invalid_request) beside the code: the code decides.
      for (const error of ["invalid_grant", "invalid_request", "invalid_client"]) {
        const c = classifyOAuthFailure(token(error, aad(code, description), 400, where ?? "token"));
        expect({ error, category: c.category }).toEqual({ error, category });
        expect(c.code).toBe(`AADSTS${code}`);
        expect(c.description).not.toMatch(/[\r\n]/);
        expect(c.description).toContain(`AADSTS${code}`);
      }
    });
  }

  it("AADSTS9002313 is a malformed request, not rate limiting: not retryable, and the fix says waiting will not help", () => {
    const c = classifyOAuthFailure(token("invalid_request", aad("9002313", "Invalid request. Request is malformed or invalid.")));
    expect(c).toMatchObject({ category: "authorization_failed", retryable: false, needsReauth: true });
    expect(c.fix).toContain("not rate limiting");
  });

  it("AADSTS65001 under invalid_grant is consent, not an expired token", () => {
    expect(categoryOf(token("invalid_grant", aad("65001", "The user or administrator has not consented."), 400, "refresh"))).toBe("consent_required");
  });

  it("an expired secret and a wrong secret get different concrete fixes", () => {
    const expired = classifyOAuthFailure(token("invalid_client", aad("7000222", "The provided client secret keys are expired."), 401));
    const wrong = classifyOAuthFailure(token("invalid_client", aad("7000215", "Invalid client secret provided."), 401));
    expect(expired.fix).toMatch(/has expired: create a new client secret/);
    expect(wrong.fix).toMatch(/Value \(not its Secret ID\)/);
  });

  it("an AADSTS code Bifrost does not know falls back to the OAuth error", () => {
    const c = classifyOAuthFailure(token("invalid_scope", aad("28003", "Something new."), 400));
    expect(c).toMatchObject({ category: "scope_mismatch", code: "AADSTS28003" });
  });
});

describe("classifyOAuthFailure: generic OAuth errors", () => {
  const cases: Array<[string, OAuthWhere, OAuthCategory]> = [
    ["redirect_uri_mismatch", "callback", "redirect_uri_mismatch"],
    ["invalid_client", "token", "invalid_client"],
    ["invalid_client", "client_credentials", "invalid_client"],
    ["unauthorized_client", "token", "invalid_client"],
    ["invalid_scope", "callback", "scope_mismatch"],
    ["invalid_scope", "client_credentials", "scope_mismatch"],
    ["consent_required", "callback", "consent_required"],
    ["interaction_required", "callback", "consent_required"],
    ["login_required", "callback", "consent_required"],
    ["invalid_grant", "refresh", "token_expired"],
    ["invalid_grant", "token", "authorization_failed"],
    ["invalid_grant", "callback", "authorization_failed"],
    ["access_denied", "callback", "consent_required"],
    ["temporarily_unavailable", "callback", "provider_unavailable"],
    ["server_error", "token", "provider_unavailable"],
    ["slow_down", "token", "rate_limited"],
    ["invalid_request", "token", "authorization_failed"],
    ["invalid_token", "api", "token_expired"],
    ["insufficient_scope", "api", "permission_denied"],
    ["something_new", "token", "authorization_failed"],
  ];
  for (const [error, where, category] of cases) {
    it(`${error} on ${where} → ${category}`, () => {
      const c = classifyOAuthFailure(token(error, "details", 400, where));
      expect(c.category).toBe(category);
      expect(c.code).toBe(error);
      expect(c.retryable).toBe(category === "rate_limited" || category === "provider_unavailable" || category === "connection_lost");
      expect(c.needsReauth).toBe(!c.retryable);
    });
  }

  it("invalid_grant on the code exchange says to start the authorization again, on refresh to re-authorize", () => {
    const code = classifyOAuthFailure(token("invalid_grant", "grant request is invalid", 400, "token"), { provider: "Graph", org: "acme" });
    expect(code.fix).toContain("expired or was already used");
    expect(code.fix).toContain("bifrost oauth connect Graph --org acme");
    const refresh = classifyOAuthFailure(token("invalid_grant", "grant request is invalid", 400, "refresh"), { provider: "Graph", connection: "Graph (org acme)" });
    expect(refresh).toMatchObject({ category: "token_expired", needsReauth: true, retryable: false });
    expect(refresh.fix).toContain("Authorize Graph (org acme) again");
  });

  it("access_denied on the callback says the user declined", () => {
    const c = classifyOAuthFailure({ kind: "oauth_error", where: "callback", error: "access_denied", description: "The resource owner or authorization server denied the request." });
    expect(c.category).toBe("consent_required");
    expect(c.fix).toMatch(/declined/);
    expect(c.code).toBe("access_denied");
  });

  it("a description about the redirect URI or an IP allow-list decides over a vague error", () => {
    expect(categoryOf(token("invalid_grant", "The 'redirect_uri' does not match the redirection URI used in the authorization request."))).toBe("redirect_uri_mismatch");
    expect(categoryOf(token("invalid_request", "Invalid redirect_uri"))).toBe("redirect_uri_mismatch");
    expect(categoryOf(token("access_denied", "Your IP address 203.0.113.7 is not allowed to access this tenant", 403, "client_credentials"))).toBe("policy_blocked");
    expect(categoryOf(token("unauthorized_client", "Request blocked by policy", 403))).toBe("policy_blocked");
    expect(classifyOAuthFailure(token("invalid_client", "Client IP not in allowlist", 401)).fix).toMatch(/IP allow-list/);
    // "ip" inside another word is not an IP address.
    expect(categoryOf(token("invalid_client", "Multiple recipients denied", 401))).toBe("invalid_client");
  });

  it("a status decides when the error says nothing: 429 rate limited, 5xx provider unavailable", () => {
    expect(classifyOAuthFailure({ kind: "oauth_error", where: "refresh", status: 429 })).toMatchObject({ category: "rate_limited", code: "HTTP 429", retryable: true, needsReauth: false });
    expect(classifyOAuthFailure({ kind: "oauth_error", where: "refresh", status: 503, error: "invalid_request" })).toMatchObject({ category: "provider_unavailable", retryable: true });
    expect(classifyOAuthFailure({ kind: "oauth_error", where: "token" })).toMatchObject({ category: "authorization_failed", code: null });
  });
});

describe("classifyOAuthFailure: answers that are not OAuth errors", () => {
  it("429 is rate limited and 5xx provider unavailable, on every path", () => {
    for (const where of ["token", "refresh", "client_credentials", "api"] as const) {
      expect(classifyOAuthFailure({ kind: "http_status", where, status: 429 })).toMatchObject({ category: "rate_limited", code: "HTTP 429", retryable: true });
      for (const status of [500, 502, 503, 504]) {
        expect(classifyOAuthFailure({ kind: "http_status", where, status, body: "<html><body>Bad Gateway</body></html>" })).toMatchObject({ category: "provider_unavailable", code: `HTTP ${status}`, retryable: true, needsReauth: false });
      }
    }
  });

  it("an API's 401 is an expired token, its 403 a missing permission", () => {
    expect(classifyOAuthFailure({ kind: "http_status", where: "api", status: 401 })).toMatchObject({ category: "token_expired", code: "HTTP 401", needsReauth: true });
    expect(classifyOAuthFailure({ kind: "http_status", where: "api", status: 403 })).toMatchObject({ category: "permission_denied", code: "HTTP 403" });
  });

  it("reads WWW-Authenticate: insufficient_scope is a missing permission, invalid_token an expired token", () => {
    const scope = classifyOAuthFailure({ kind: "http_status", where: "api", status: 403, wwwAuthenticate: 'Bearer realm="api", error="insufficient_scope", error_description="needs Mail.Send", scope="Mail.Send"' });
    expect(scope).toMatchObject({ category: "permission_denied", code: "insufficient_scope" });
    expect(scope.description).toContain("needs Mail.Send");
    // Even on a 401, insufficient_scope is about permissions.
    expect(categoryOf({ kind: "http_status", where: "api", status: 401, wwwAuthenticate: "Bearer error=insufficient_scope" })).toBe("permission_denied");
    expect(categoryOf({ kind: "http_status", where: "api", status: 401, wwwAuthenticate: 'Bearer error="invalid_token", error_description="The access token expired"' })).toBe("token_expired");
    // error_description is not error.
    expect(classifyOAuthFailure({ kind: "http_status", where: "api", status: 403, wwwAuthenticate: 'Bearer error_description="x"' }).code).toBe("HTTP 403");
  });

  it("reads an OAuth error or a Graph error from a JSON body", () => {
    expect(classifyOAuthFailure({ kind: "http_status", where: "refresh", status: 400, body: JSON.stringify({ error: "invalid_grant", error_description: aad("700082", "The refresh token has expired due to inactivity.") }) })).toMatchObject({ category: "token_expired", code: "AADSTS700082" });
    const graph = classifyOAuthFailure({ kind: "http_status", where: "api", status: 403, body: JSON.stringify({ error: { code: "Authorization_RequestDenied", message: "Insufficient privileges to complete the operation." } }) });
    expect(graph).toMatchObject({ category: "permission_denied", code: "Authorization_RequestDenied" });
    expect(graph.description).toContain("Insufficient privileges");
  });

  it("a token endpoint's bare 401 is client authentication; a 404 or a 200 page means the wrong URL", () => {
    expect(categoryOf({ kind: "http_status", where: "token", status: 401 })).toBe("invalid_client");
    expect(classifyOAuthFailure({ kind: "http_status", where: "token", status: 404 }).fix).toMatch(/token endpoint/);
    expect(classifyOAuthFailure({ kind: "http_status", where: "client_credentials", status: 200 })).toMatchObject({ category: "authorization_failed" });
    expect(categoryOf({ kind: "http_status", where: "token", status: 403, body: "Access from IP 203.0.113.7 is denied" })).toBe("policy_blocked");
  });

  it("never copies an HTML page into the description", () => {
    const c = classifyOAuthFailure({ kind: "http_status", where: "token", status: 502, body: `<html>${"<p>secretish markup</p>".repeat(5000)}</html>` });
    expect(c.description).toBe("The authorization code exchange was answered with HTTP 502.");
  });
});

describe("classifyOAuthFailure: network, TLS, state and configuration", () => {
  const network: Array<[string, RegExp]> = [
    ["ECONNREFUSED", /refused/],
    ["ENOTFOUND", /DNS/],
    ["EAI_AGAIN", /DNS/],
    ["ECONNRESET", /connection failed/],
    ["ETIMEDOUT", /timed out/],
    ["UND_ERR_CONNECT_TIMEOUT", /timed out/],
    ["UND_ERR_SOCKET", /connection failed/],
    ["CERT_HAS_EXPIRED", /TLS/],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", /TLS/],
    ["ERR_TLS_CERT_ALTNAME_INVALID", /TLS/],
    ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", /TLS/],
    ["SELF_SIGNED_CERT_IN_CHAIN", /TLS/],
  ];
  for (const [code, words] of network) {
    it(`${code} → connection_lost, retryable`, () => {
      const c = classifyOAuthFailure({ kind: "network", where: "refresh", code, message: `connect ${code} 203.0.113.7:443` });
      expect(c).toMatchObject({ category: "connection_lost", code, retryable: true, needsReauth: false });
      expect(c.description).toMatch(words);
    });
  }

  it("gives DNS, refusal, timeout and TLS their own fixes", () => {
    const fix = (code: string) => classifyOAuthFailure({ kind: "network", where: "token", code, message: "x" }).fix;
    expect(fix("ENOTFOUND")).toMatch(/did not resolve/);
    expect(fix("ECONNREFUSED")).toMatch(/port/);
    expect(fix("ETIMEDOUT")).toMatch(/443/);
    expect(fix("CERT_HAS_EXPIRED")).toMatch(/NODE_EXTRA_CA_CERTS/);
    expect(classifyOAuthFailure({ kind: "network", where: "token", message: "socket hang up" })).toMatchObject({ category: "connection_lost", code: null });
  });

  it("refuses every bad state with authorization_failed and a fix to start again from Bifrost", () => {
    for (const reason of ["missing", "unknown", "used", "expired"] as const) {
      const c = classifyOAuthFailure({ kind: "state", reason }, { provider: "HaloPSA" });
      expect(c).toMatchObject({ category: "authorization_failed", code: null, retryable: false, needsReauth: true });
      expect(c.fix).toContain("Start the authorization again from Bifrost (bifrost oauth connect HaloPSA)");
      expect(c.description.length).toBeGreaterThan(20);
    }
    expect(classifyOAuthFailure({ kind: "state", reason: "used" }).description).toMatch(/already used/);
    expect(classifyOAuthFailure({ kind: "state", reason: "expired" }).description).toMatch(/expired/);
  });

  it("a configuration problem keeps its text as the description", () => {
    const c = classifyOAuthFailure({ kind: "config", problem: "The token URL contains {entity_id} but org acme has no entity id." });
    expect(c).toMatchObject({ category: "authorization_failed", code: null, description: "The token URL contains {entity_id} but org acme has no entity id." });
  });
});

describe("classifyOAuthFailure: hostile provider text stays bounded", () => {
  const hostile = [
    "x".repeat(1_000_000),
    `AADSTS${"9".repeat(500_000)}`,
    "\u0000\u0001\u001b[31mred\u001b[0m\r\n\u2028\u202e evil \u0085\u007f",
    "AADSTS".repeat(200_000),
    `${"ip ".repeat(100_000)}blocked`,
    'Bearer error="'.repeat(50_000),
  ];

  it("every description is at most 500 characters without control characters, whatever came in", () => {
    for (const text of hostile) {
      const signals: FailureSignal[] = [
        { kind: "oauth_error", where: "refresh", status: 400, error: text, description: text },
        { kind: "http_status", where: "api", status: 403, body: text, wwwAuthenticate: text },
        { kind: "http_status", where: "token", status: 400, body: JSON.stringify({ error: text, error_description: text }) },
        { kind: "network", where: "token", code: text, message: text },
        { kind: "config", problem: text },
      ];
      for (const signal of signals) {
        const c = classifyOAuthFailure(signal);
        expect(c.description.length).toBeLessThanOrEqual(500);
        expect(c.description).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/);
        expect((c.code ?? "").length).toBeLessThanOrEqual(80);
        expect(OAUTH_CATEGORIES).toContain(c.category);
      }
    }
  });

  it("an error that is not a code is not taken as one", () => {
    expect(classifyOAuthFailure(token("invalid grant\r\nInjected: yes", "d")).code).toBe("HTTP 400");
  });
});

describe("fix texts", () => {
  it("every category has a fix, and CATEGORY_FIXES is fixFor without context", () => {
    for (const category of OAUTH_CATEGORIES) {
      expect(CATEGORY_FIXES[category].length).toBeGreaterThan(30);
      expect(CATEGORY_FIXES[category]).toBe(fixFor(category));
    }
  });

  it("redirect_uri_mismatch names the exact URI when it is known", () => {
    expect(fixFor("redirect_uri_mismatch", { redirectUri: "https://bifrost.example.com/api/oauth/callback" })).toContain("Register exactly https://bifrost.example.com/api/oauth/callback as a redirect URI");
    expect(fixFor("redirect_uri_mismatch")).toContain("/api/oauth/callback");
    const c = classifyOAuthFailure(token("invalid_request", aad("50011", "The redirect URI does not match.")), { redirectUri: "https://b.example/api/oauth/callback" });
    expect(c.fix).toContain("https://b.example/api/oauth/callback");
  });

  it("the reconnect command names the provider and org", () => {
    expect(fixFor("token_expired", { provider: "Graph", org: "acme" })).toContain("bifrost oauth connect Graph --org acme");
    expect(fixFor("token_expired", { provider: "Graph", org: null })).toContain("bifrost oauth connect Graph)");
  });
});

describe("describeError: what openid-client 6 really throws", () => {
  let server: ScriptedServer;
  let port: number;
  const config = (tokenPath: string, secret = "s3cret-value-of-forty-characters-long-xx") => {
    const cfg = new client.Configuration({ issuer: server.url, token_endpoint: `${server.url}${tokenPath}`, authorization_endpoint: `${server.url}/authorize` }, "client-1", secret);
    client.allowInsecureRequests(cfg);
    return cfg;
  };
  const thrown = async (fn: () => Promise<unknown>): Promise<unknown> => {
    try {
      await fn();
    } catch (err) {
      return err;
    }
    throw new Error("expected a failure");
  };

  beforeAll(async () => {
    server = await ScriptedServer.start();
    server.on("/invalid-grant", json(400, { error: "invalid_grant", error_description: aad("700082", "The refresh token has expired due to inactivity."), error_codes: [700082] }));
    server.on("/ms-codes-only", json(400, { error: "invalid_grant", error_description: "The refresh token has expired.", error_codes: [700082] }));
    server.on("/invalid-client", json(401, { error: "invalid_client", error_description: "client authentication failed" }));
    server.on("/html-500", (_req, res) => res.writeHead(500, { "content-type": "text/html" }).end(`<html><body>${"Internal Server Error ".repeat(1000)}</body></html>`));
    server.on("/text-429", text(429, "Too Many Requests", { "retry-after": "3" }));
    server.on("/challenge", (_req, res) => res.writeHead(401, { "www-authenticate": 'Basic realm="token", error="invalid_client", error_description="bad secret"' }).end());
    server.on("/api-403", (_req, res) => res.writeHead(403, { "www-authenticate": 'Bearer error="insufficient_scope", error_description="Mail.Send is required", scope="Mail.Send"' }).end());
    server.on("/hang", () => {});
    port = await closedPort();
  });
  afterAll(async () => {
    await server.close();
  });

  it("ResponseBodyError invalid_grant with an AADSTS code → token_expired on refresh", async () => {
    const err = await thrown(() => client.refreshTokenGrant(config("/invalid-grant"), "rt-1"));
    expect(err).toBeInstanceOf(client.ResponseBodyError);
    const signal = describeError(err, "refresh");
    expect(signal).toMatchObject({ kind: "oauth_error", where: "refresh", status: 400, error: "invalid_grant" });
    expect(classifyOAuthFailure(signal)).toMatchObject({ category: "token_expired", code: "AADSTS700082", needsReauth: true });
  });

  it("Microsoft's numeric error_codes stand in when the description lacks the AADSTS code", async () => {
    const err = await thrown(() => client.refreshTokenGrant(config("/ms-codes-only"), "rt-1"));
    expect(classifyOAuthFailure(describeError(err, "refresh")).code).toBe("AADSTS700082");
  });

  it("ResponseBodyError invalid_client → invalid_client", async () => {
    const err = await thrown(() => client.clientCredentialsGrant(config("/invalid-client"), { scope: "api" }));
    expect(classifyOAuthFailure(describeError(err, "client_credentials"))).toMatchObject({ category: "invalid_client", code: "invalid_client" });
  });

  it("a 500 HTML page (ClientError OAUTH_RESPONSE_IS_NOT_CONFORM) → provider_unavailable, body not copied", async () => {
    const err = await thrown(() => client.refreshTokenGrant(config("/html-500"), "rt-1"));
    expect(err).toBeInstanceOf(client.ClientError);
    expect((err as client.ClientError).code).toBe("OAUTH_RESPONSE_IS_NOT_CONFORM");
    const signal = describeError(err, "refresh");
    expect(signal).toEqual({ kind: "http_status", where: "refresh", status: 500 });
    expect(classifyOAuthFailure(signal)).toMatchObject({ category: "provider_unavailable", code: "HTTP 500", retryable: true });
  });

  it("a plain-text 429 (OAUTH_RESPONSE_IS_NOT_JSON) → rate_limited", async () => {
    const err = await thrown(() => client.clientCredentialsGrant(config("/text-429")));
    expect((err as client.ClientError).code).toBe("OAUTH_RESPONSE_IS_NOT_JSON");
    expect(classifyOAuthFailure(describeError(err, "client_credentials"))).toMatchObject({ category: "rate_limited", code: "HTTP 429" });
  });

  it("WWWAuthenticateChallengeError from the token endpoint and from an API", async () => {
    const tokenErr = await thrown(() => client.clientCredentialsGrant(config("/challenge")));
    expect(tokenErr).toBeInstanceOf(client.WWWAuthenticateChallengeError);
    expect(classifyOAuthFailure(describeError(tokenErr, "client_credentials"))).toMatchObject({ category: "invalid_client", code: "invalid_client" });
    const apiErr = await thrown(() => client.fetchProtectedResource(config("/x"), "at-1", new URL(`${server.url}/api-403`), "GET"));
    expect(apiErr).toBeInstanceOf(client.WWWAuthenticateChallengeError);
    const c = classifyOAuthFailure(describeError(apiErr, "api"));
    expect(c).toMatchObject({ category: "permission_denied", code: "insufficient_scope" });
    expect(c.description).toContain("Mail.Send is required");
  });

  it("AuthorizationResponseError from a callback with error=access_denied", async () => {
    const cfg = config("/x");
    const callback = new URL(`${server.url}/api/oauth/callback?error=access_denied&error_description=The+user+declined&state=st-1`);
    const err = await thrown(() => client.authorizationCodeGrant(cfg, callback, { expectedState: "st-1", pkceCodeVerifier: client.randomPKCECodeVerifier() }));
    expect(err).toBeInstanceOf(client.AuthorizationResponseError);
    const signal = describeError(err, "callback");
    expect(signal).toEqual({ kind: "oauth_error", where: "callback", error: "access_denied", description: "The user declined" });
    expect(classifyOAuthFailure(signal).category).toBe("consent_required");
  });

  it("a state mismatch on the callback → a state signal", async () => {
    const callback = new URL(`${server.url}/api/oauth/callback?code=c-1&state=other`);
    const err = await thrown(() => client.authorizationCodeGrant(config("/x"), callback, { expectedState: "st-1", pkceCodeVerifier: client.randomPKCECodeVerifier() }));
    expect((err as client.ClientError).code).toBe("OAUTH_INVALID_RESPONSE");
    expect(describeError(err, "callback")).toEqual({ kind: "state", reason: "unknown" });
  });

  it("http without allowInsecureRequests (OAUTH_HTTP_REQUEST_FORBIDDEN) → a configuration problem", async () => {
    const cfg = new client.Configuration({ issuer: server.url, token_endpoint: `${server.url}/invalid-client` }, "client-1", "secret");
    const err = await thrown(() => client.clientCredentialsGrant(cfg));
    expect((err as client.ClientError).code).toBe("OAUTH_HTTP_REQUEST_FORBIDDEN");
    const signal = describeError(err, "client_credentials");
    expect(signal.kind).toBe("config");
    expect(classifyOAuthFailure(signal).description).toMatch(/https/);
  });

  it("a refused connection (TypeError: fetch failed, cause ECONNREFUSED) → connection_lost", async () => {
    const cfg = new client.Configuration({ issuer: "http://127.0.0.1", token_endpoint: `http://127.0.0.1:${port}/token` }, "client-1", "secret");
    client.allowInsecureRequests(cfg);
    const err = await thrown(() => client.refreshTokenGrant(cfg, "rt-1"));
    expect(err).toBeInstanceOf(TypeError);
    const signal = describeError(err, "refresh");
    expect(signal).toMatchObject({ kind: "network", where: "refresh", code: "ECONNREFUSED" });
    expect(classifyOAuthFailure(signal)).toMatchObject({ category: "connection_lost", code: "ECONNREFUSED", retryable: true });
  });

  it("a timeout (openid-client's timeout aborts the fetch) → connection_lost ETIMEDOUT", async () => {
    const cfg = config("/hang");
    cfg.timeout = 0.2;
    const err = await thrown(() => client.refreshTokenGrant(cfg, "rt-1"));
    const signal = describeError(err, "refresh");
    expect(signal).toMatchObject({ kind: "network", code: "ETIMEDOUT" });
    expect(classifyOAuthFailure(signal).description).toMatch(/timed out/);
  });

  it("TLS and DNS errors wrapped the way undici wraps them", () => {
    const tls = new TypeError("fetch failed", { cause: Object.assign(new Error("certificate has expired"), { code: "CERT_HAS_EXPIRED" }) });
    expect(describeError(tls, "token")).toMatchObject({ kind: "network", code: "CERT_HAS_EXPIRED" });
    const altname = new TypeError("fetch failed", { cause: Object.assign(new Error("Hostname/IP does not match certificate's altnames"), { code: "ERR_TLS_CERT_ALTNAME_INVALID" }) });
    expect(classifyOAuthFailure(describeError(altname, "token")).fix).toMatch(/NODE_EXTRA_CA_CERTS/);
    const dns = new TypeError("fetch failed", { cause: new AggregateError([Object.assign(new Error("getaddrinfo ENOTFOUND login.example"), { code: "ENOTFOUND" })]) });
    expect(describeError(dns, "token")).toMatchObject({ kind: "network", code: "ENOTFOUND" });
    expect(describeError(new DOMException("The operation was aborted due to timeout", "TimeoutError"), "api")).toMatchObject({ kind: "network", code: "ETIMEDOUT" });
  });

  it("a cause chain is followed only so far, and a loop ends", () => {
    const loop: { cause?: unknown; message: string } = { message: "loop" };
    loop.cause = loop;
    expect(classifyOAuthFailure(describeError(loop, "token")).category).toBe("authorization_failed");
    let deep: unknown = Object.assign(new Error("deep"), { code: "ECONNRESET" });
    for (let i = 0; i < 50; i++) deep = new Error(`level ${i}`, { cause: deep });
    expect(describeError(deep, "token").kind).toBe("oauth_error");
  });

  it("anything else becomes authorization_failed with a bounded description", () => {
    for (const err of [new Error("x".repeat(100_000)), "a string", 42, null, undefined, { code: "OAUTH_JWT_TIMESTAMP_CHECK_FAILED", message: "JWT expired" }]) {
      const c = classifyOAuthFailure(describeError(err, "token"));
      expect(c.category).toBe("authorization_failed");
      expect(c.description.length).toBeLessThanOrEqual(500);
    }
  });
});
