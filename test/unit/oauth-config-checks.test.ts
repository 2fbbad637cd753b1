import { describe, expect, it } from "vitest";
import { checkProviderConfig, type ProviderCheckInput } from "../../engine/oauth/config-checks.js";
import type { OAuthCheck } from "../../engine/oauth/types.js";

const SECRET = "Xy8Q~abcdefghijklmnopqrstuvwxyz0123456789";
const env = { publicUrl: "https://bifrost.example.com", publicUrlSet: true };

const graph: ProviderCheckInput = {
  name: "Graph",
  grantType: "authorization_code",
  authorizationUrl: "https://login.microsoftonline.com/{entity_id}/oauth2/v2.0/authorize",
  tokenUrl: "https://login.microsoftonline.com/{entity_id}/oauth2/v2.0/token",
  clientId: "1b2c3d4e-5f60-4718-9a0b-1c2d3e4f5a6b",
  clientSecret: SECRET,
  scopes: ["https://graph.microsoft.com/User.Read", "offline_access"],
  redirectUri: "https://bifrost.example.com/api/oauth/callback",
};

const halo: ProviderCheckInput = {
  name: "HaloPSA",
  grantType: "client_credentials",
  authorizationUrl: null,
  tokenUrl: "https://acme.halopsa.com/auth/token",
  clientId: "halo-client",
  clientSecret: "c2VjcmV0LXZhbHVlLWZvci1oYWxvcHNh",
  scopes: ["all"],
  redirectUri: "https://bifrost.example.com/api/oauth/callback",
};

const failed = (checks: OAuthCheck[]) => checks.filter((c) => !c.ok);
const check = (checks: OAuthCheck[], id: string) => {
  const found = checks.find((c) => c.id === id);
  if (!found) throw new Error(`no check ${id} in ${checks.map((c) => c.id).join(", ")}`);
  return found;
};
const failedIds = (p: Partial<ProviderCheckInput>, base = graph, e = env) => failed(checkProviderConfig({ ...base, ...p }, e)).map((c) => c.id);

describe("checkProviderConfig: a correct configuration", () => {
  it("passes every check, for a Microsoft code-grant provider and a client-credentials one", () => {
    const all = checkProviderConfig(graph, env);
    expect(failed(all)).toEqual([]);
    expect(all.map((c) => c.id)).toEqual(
      expect.arrayContaining(["client_id.format", "client_secret.present", "client_secret.format", "redirect_uri.path", "redirect_uri.https", "redirect_uri.domain", "redirect_uri.exact", "authorization_url.valid", "authorization_url.placeholders", "token_url.valid", "token_url.placeholders", "scopes.present", "scopes.format", "scopes.offline_access"]),
    );
    expect(failed(checkProviderConfig(halo, env))).toEqual([]);
    expect(failed(checkProviderConfig({ ...halo, name: "GraphApp", tokenUrl: "https://login.microsoftonline.com/{entity_id}/oauth2/v2.0/token", scopes: ["https://graph.microsoft.com/.default"] }, env))).toEqual([]);
  });

  it("ids are unique and every failed check has a category and a fix", () => {
    const bad: ProviderCheckInput = { ...graph, clientId: " Client ID: x y ", clientSecret: "abc...", scopes: [], redirectUri: "http://other.example/cb", authorizationUrl: "ftp://x/{tenant}", tokenUrl: "http://x.example/{entityId}" };
    const all = checkProviderConfig(bad, env);
    expect(new Set(all.map((c) => c.id)).size).toBe(all.length);
    for (const c of failed(all)) {
      expect(c.category).toBeDefined();
      expect(c.fix?.length).toBeGreaterThan(10);
    }
  });

  it("on localhost without BIFROST_PUBLIC_URL the default redirect URI over http passes", () => {
    const dev = { publicUrl: "http://localhost:7071", publicUrlSet: false };
    expect(failedIds({ redirectUri: "http://localhost:7071/api/oauth/callback" }, graph, dev)).toEqual([]);
    expect(failedIds({ redirectUri: "http://127.0.0.1:7071/api/oauth/callback" }, graph, { publicUrl: "http://127.0.0.1:7071", publicUrlSet: true })).toEqual([]);
  });
});

describe("checkProviderConfig: the client id", () => {
  it('refuses a "Client ID:" label in any case, and says what to save instead', () => {
    for (const clientId of ["Client ID: 1b2c3d4e-5f60", "client id:1b2c3d4e-5f60", "CLIENT_ID=1b2c3d4e-5f60", "Application (client) ID: 1b2c3d4e-5f60"]) {
      const c = check(checkProviderConfig({ ...graph, clientId }, env), "client_id.format");
      expect({ clientId, ok: c.ok, category: c.category }).toEqual({ clientId, ok: false, category: "invalid_client" });
      expect(c.fix).toContain('"1b2c3d4e-5f60"');
    }
  });

  it("refuses spaces at its ends, spaces inside, line breaks, quotes and emptiness", () => {
    const cases: Array<[string, RegExp]> = [
      [" 1b2c3d4e", /start or end/],
      ["1b2c3d4e\n", /start or end/],
      ["1b2c 3d4e", /contains spaces/],
      ["1b2c\n3d4e", /line break/],
      ['"1b2c3d4e"', /quotes/],
      ["", /empty/],
    ];
    for (const [clientId, words] of cases) {
      const c = check(checkProviderConfig({ ...graph, clientId }, env), "client_id.format");
      expect({ clientId, ok: c.ok }).toEqual({ clientId, ok: false });
      expect(c.message).toMatch(words);
    }
  });
});

describe("checkProviderConfig: the client secret", () => {
  it("client credentials always need one; a code grant without one is a public client", () => {
    expect(check(checkProviderConfig({ ...halo, clientSecret: null }, env), "client_secret.present")).toMatchObject({ ok: false, category: "invalid_client" });
    expect(check(checkProviderConfig({ ...graph, clientSecret: null }, env), "client_secret.present")).toMatchObject({ ok: true });
    expect(check(checkProviderConfig({ ...graph, clientSecret: "  " }, env), "client_secret.present")).toMatchObject({ ok: false, category: "invalid_client" });
  });

  it("flags whitespace, labels, truncation and a Secret ID, and never shows the secret", () => {
    const cases: Array<[string, RegExp]> = [
      [`${SECRET}\n`, /start or end/],
      [` ${SECRET}`, /start or end/],
      [`${SECRET.slice(0, 20)} ${SECRET.slice(20)}`, /contains spaces/],
      [`${SECRET.slice(0, 20)}\r\n${SECRET.slice(20)}`, /line break/],
      [`Secret: ${SECRET}`, /label/],
      [`Value: ${SECRET}`, /label/],
      [`${SECRET.slice(0, 12)}...`, /truncated/],
      [`${SECRET.slice(0, 30)}…`, /truncated/],
      ["Xy8Q~abc", /shorter than 16 characters: it looks truncated/],
      ["6a1b2c3d-0000-4e5f-9a8b-7c6d5e4f3a2b", /Secret ID/],
      [graph.clientId, /same as the client id/],
    ];
    for (const [secret, words] of cases) {
      const all = checkProviderConfig({ ...graph, clientSecret: secret }, env);
      const c = check(all, "client_secret.format");
      expect({ secret, ok: c.ok, category: c.category }).toEqual({ secret, ok: false, category: "invalid_client" });
      expect(c.message).toMatch(words);
      expect(c.message).toContain(`${secret.length} characters`);
      const shown = JSON.stringify(all);
      // Not the secret, nor a recognizable piece of it.
      if (secret !== graph.clientId) expect(shown).not.toContain(secret.trim().slice(0, 10));
    }
    expect(check(checkProviderConfig({ ...graph, clientSecret: "abc..." }, env), "client_secret.format").fix).toContain("Value column");
  });
});

describe("checkProviderConfig: the redirect URI", () => {
  it("must end with /api/oauth/callback, without a trailing slash or query", () => {
    for (const redirectUri of ["https://bifrost.example.com/", "https://bifrost.example.com/oauth/callback", "https://bifrost.example.com/api/oauth/callback/", "https://bifrost.example.com/api/oauth/callback?x=1"]) {
      expect({ redirectUri, failed: failedIds({ redirectUri }) }).toEqual({ redirectUri, failed: ["redirect_uri.path", "redirect_uri.exact"] });
    }
  });

  it("must use https outside localhost", () => {
    const failedNow = failedIds({ redirectUri: "http://bifrost.example.com/api/oauth/callback" });
    expect(failedNow).toEqual(["redirect_uri.https", "redirect_uri.exact"]);
    const c = check(checkProviderConfig({ ...graph, redirectUri: "http://bifrost.example.com/api/oauth/callback" }, env), "redirect_uri.https");
    expect(c).toMatchObject({ ok: false, category: "redirect_uri_mismatch" });
    expect(c.fix).toContain("https://bifrost.example.com/api/oauth/callback");
  });

  it("must be on BIFROST_PUBLIC_URL's host, and exactly <public url>/api/oauth/callback", () => {
    expect(failedIds({ redirectUri: "https://old-bifrost.example.com/api/oauth/callback" })).toEqual(["redirect_uri.domain", "redirect_uri.exact"]);
    expect(failedIds({ redirectUri: "https://bifrost.example.com:8443/api/oauth/callback" })).toEqual(["redirect_uri.domain", "redirect_uri.exact"]);
    const exact = check(checkProviderConfig({ ...graph, redirectUri: "https://old.example.com/api/oauth/callback" }, env), "redirect_uri.exact");
    expect(exact.fix).toContain("Register exactly https://bifrost.example.com/api/oauth/callback");
    // A public URL under a path prefix moves the callback with it.
    expect(failedIds({ redirectUri: "https://proxy.example.com/bifrost/api/oauth/callback" }, graph, { publicUrl: "https://proxy.example.com/bifrost/", publicUrlSet: true })).toEqual([]);
    // Host case is not a difference.
    expect(failedIds({ redirectUri: "https://Bifrost.Example.com/api/oauth/callback" })).toEqual([]);
  });

  it("without BIFROST_PUBLIC_URL, a public redirect URI says to set it", () => {
    const dev = { publicUrl: "http://localhost:7071", publicUrlSet: false };
    const all = checkProviderConfig(graph, dev);
    expect(failed(all).map((c) => c.id)).toEqual(["redirect_uri.exact"]);
    expect(check(all, "redirect_uri.exact").fix).toContain("set BIFROST_PUBLIC_URL");
  });

  it("an invalid URL is one failed check; client credentials do not use a redirect URI", () => {
    expect(failedIds({ redirectUri: "not a url" })).toEqual(["redirect_uri.valid"]);
    expect(failedIds({ redirectUri: "nonsense" }, halo)).toEqual([]);
  });
});

describe("checkProviderConfig: URLs and placeholders", () => {
  it("the code grant needs an authorization URL", () => {
    expect(failedIds({ authorizationUrl: null })).toEqual(["authorization_url.present"]);
    expect(failedIds({ authorizationUrl: " " })).toEqual(["authorization_url.present"]);
  });

  it("URLs must be valid and https outside localhost", () => {
    expect(failedIds({ tokenUrl: "token" }, halo)).toEqual(["token_url.valid"]);
    expect(failedIds({ tokenUrl: "ftp://acme.halopsa.com/token" }, halo)).toEqual(["token_url.valid"]);
    expect(failedIds({ tokenUrl: "http://acme.halopsa.com/auth/token" }, halo)).toEqual(["token_url.valid"]);
    expect(failedIds({ tokenUrl: "http://127.0.0.1:9000/token" }, halo)).toEqual([]);
    expect(failedIds({ authorizationUrl: "http://login.example.com/authorize" })).toEqual(["authorization_url.valid"]);
  });

  it("only {entity_id} is filled: {tenant}, {entityId} and a lone brace are named", () => {
    for (const bad of ["{tenant}", "{entityId}", "{Entity_Id}", "{tenant_id}", "{entity_id"]) {
      const tokenUrl = `https://login.microsoftonline.com/${bad}/oauth2/v2.0/token`;
      const all = checkProviderConfig({ ...graph, tokenUrl }, env);
      const c = check(all, "token_url.placeholders");
      expect({ bad, ok: c.ok, category: c.category }).toEqual({ bad, ok: false, category: "authorization_failed" });
      expect(c.message).toContain("only {entity_id} is replaced");
    }
    expect(check(checkProviderConfig({ ...graph, authorizationUrl: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize" }, env), "authorization_url.placeholders").message).toContain('"{tenant}"');
    expect(failedIds({ tokenUrl: "https://{entity_id}.halopsa.com/auth/{entity_id}/token" }, halo)).toEqual([]);
  });

  it("Microsoft client credentials need a tenant, not /common/", () => {
    const ms = { ...halo, tokenUrl: "https://login.microsoftonline.com/common/oauth2/v2.0/token", scopes: ["https://graph.microsoft.com/.default"] };
    expect(failedIds({}, ms)).toEqual(["token_url.tenant"]);
    expect(failedIds({ tokenUrl: "https://login.microsoftonline.com/organizations/oauth2/v2.0/token" }, ms)).toEqual(["token_url.tenant"]);
    expect(failedIds({ tokenUrl: "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token" }, ms)).toEqual([]);
  });
});

describe("checkProviderConfig: scopes", () => {
  it("a code grant without scopes is warned about; client credentials may have none", () => {
    expect(failedIds({ scopes: [] })).toEqual(["scopes.present"]);
    expect(check(checkProviderConfig({ ...graph, scopes: [] }, env), "scopes.present").category).toBe("scope_mismatch");
    expect(failedIds({ scopes: [] }, halo)).toEqual([]);
  });

  it("each scope is one entry", () => {
    expect(failedIds({ scopes: ["User.Read, Mail.Read", "offline_access"] })).toEqual(["scopes.format"]);
    expect(failedIds({ scopes: ["User.Read Mail.Read", "offline_access"] })).toEqual(["scopes.format"]);
    expect(failedIds({ scopes: ["", "offline_access"] })).toEqual(["scopes.format"]);
  });

  it("Microsoft without offline_access issues no refresh token; other providers are not told so", () => {
    const c = check(checkProviderConfig({ ...graph, scopes: ["https://graph.microsoft.com/User.Read"] }, env), "scopes.offline_access");
    expect(c).toMatchObject({ ok: false, category: "scope_mismatch" });
    expect(c.message).toMatch(/no refresh token/);
    const other = { ...graph, authorizationUrl: "https://accounts.example.com/authorize", tokenUrl: "https://accounts.example.com/token", scopes: ["read"] };
    expect(checkProviderConfig(other, env).some((x) => x.id === "scopes.offline_access")).toBe(false);
  });

  it("Microsoft client credentials take exactly one <resource>/.default", () => {
    const ms = { ...halo, tokenUrl: "https://login.microsoftonline.com/{entity_id}/oauth2/v2.0/token" };
    expect(failedIds({ scopes: ["User.Read.All"] }, ms)).toEqual(["scopes.default"]);
    expect(failedIds({ scopes: [] }, ms)).toEqual(["scopes.default"]);
    expect(failedIds({ scopes: ["https://graph.microsoft.com/.default", "https://management.azure.com/.default"] }, ms)).toEqual(["scopes.default"]);
  });
});

describe("checkProviderConfig: hostile input stays cheap and bounded", () => {
  it("huge fields are checked without echoing them whole", () => {
    const huge = "a".repeat(1_000_000);
    const all = checkProviderConfig({ ...graph, clientId: `${" ".repeat(100_000)}${huge}`, clientSecret: huge, tokenUrl: `https://x/${"{".repeat(100_000)}`, redirectUri: huge, scopes: Array.from({ length: 10_000 }, () => huge) }, env);
    for (const c of all) expect(c.message.length + (c.fix?.length ?? 0)).toBeLessThan(2_000);
  });
});
