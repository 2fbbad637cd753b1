import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatDiagnosis } from "../../engine/cli/oauth-format.js";
import { diagnose, durationWords, type DiagnoseInput, type ProbeResult } from "../../engine/oauth/diagnose.js";
import { probeUrl } from "../../engine/oauth/probe.js";
import type { ConnectionView, OAuthCheck, ProviderView } from "../../engine/oauth/types.js";
import { closedPort, json, ScriptedServer, text } from "../http-servers.js";
import { tempDir } from "../helpers.js";

const NOW = Date.parse("2026-03-01T12:00:00Z");
const MIN = 60_000;

const provider: ProviderView = {
  name: "Graph",
  grantType: "authorization_code",
  authorizationUrl: "https://login.microsoftonline.com/{entity_id}/oauth2/v2.0/authorize",
  tokenUrl: "https://login.microsoftonline.com/{entity_id}/oauth2/v2.0/token",
  clientId: "1b2c3d4e-5f60-4718-9a0b-1c2d3e4f5a6b",
  clientSecretSet: true,
  scopes: ["https://graph.microsoft.com/User.Read", "https://graph.microsoft.com/Mail.Read", "offline_access", "openid"],
  redirectUri: "https://bifrost.example.com/api/oauth/callback",
  redirectUriDefault: true,
  clientAuth: "client_secret_post",
  createdAt: NOW - 86_400_000,
  updatedAt: NOW - 86_400_000,
};

const connection: ConnectionView = {
  provider: "Graph",
  org: "acme",
  entityId: "contoso.onmicrosoft.com",
  status: "healthy",
  tokenType: "Bearer",
  expiresAt: NOW + 52 * MIN,
  // Microsoft echoes Graph scopes without their resource prefix and leaves out the identity ones.
  scopes: ["User.Read", "Mail.Read"],
  hasRefreshToken: true,
  connectedAt: NOW - 3 * 86_400_000,
  lastRefreshAt: NOW - 8 * MIN,
  lastFailure: null,
  nextRetryAt: null,
};

/** A probe that answers from a table and records what it was asked. */
function fakeProbe(answers: Record<string, ProbeResult>): { probe: DiagnoseInput["probe"]; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    probe: async (url) => {
      asked.push(url);
      return answers[url] ?? { reached: true, status: 400, ms: 10 };
    },
  };
}

const AUTH = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize";
const TOKEN = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";

function input(over: Partial<DiagnoseInput> = {}): DiagnoseInput {
  return {
    provider,
    clientSecret: "Xy8Q~abcdefghijklmnopqrstuvwxyz0123456789",
    org: "acme",
    connection,
    env: { publicUrl: "https://bifrost.example.com", publicUrlSet: true },
    now: NOW,
    refreshSkewMs: 5 * MIN,
    urls: { authorization: AUTH, token: TOKEN },
    probe: fakeProbe({ [AUTH]: { reached: true, status: 200, ms: 31 }, [TOKEN]: { reached: true, status: 405, ms: 12 } }).probe,
    ...over,
  };
}

const byId = (checks: OAuthCheck[], id: string) => {
  const c = checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id} in ${checks.map((x) => x.id).join(", ")}`);
  return c;
};
const failedIds = (checks: OAuthCheck[]) => checks.filter((c) => !c.ok).map((c) => c.id);

describe("diagnose", () => {
  it("a healthy connection passes every check, with messages for a person", async () => {
    const d = await diagnose(input());
    expect(failedIds(d.checks)).toEqual([]);
    expect(d.ok).toBe(true);
    expect(byId(d.checks, "token_url.reachable").message).toBe("The token endpoint (login.microsoftonline.com) answered 405 in 12 ms.");
    expect(byId(d.checks, "authorization_url.reachable").message).toBe("The authorization endpoint (login.microsoftonline.com) answered 200 in 31 ms.");
    expect(byId(d.checks, "token.expiry").message).toBe("The token expires in 52 minutes (2026-03-01T12:52:00.000Z).");
    expect(byId(d.checks, "token.scopes").message).toContain("Every requested scope is granted");
    expect(byId(d.checks, "connection.present").message).toContain("org acme's connection");
    expect(byId(d.checks, "connection.status").message).toBe("Status healthy.");
  });

  it("probes both endpoints for the code grant, only the token endpoint for client credentials", async () => {
    const code = fakeProbe({});
    await diagnose(input({ probe: code.probe }));
    expect(code.asked.sort()).toEqual([AUTH, TOKEN].sort());
    const cc = fakeProbe({});
    await diagnose(input({ provider: { ...provider, grantType: "client_credentials", authorizationUrl: null, scopes: ["https://graph.microsoft.com/.default"] }, probe: cc.probe }));
    expect(cc.asked).toEqual([TOKEN]);
  });

  it("a 5xx is provider_unavailable; an endpoint not reached is connection_lost, naming DNS, refusal, TLS or timeout", async () => {
    const down = await diagnose(input({ probe: fakeProbe({ [TOKEN]: { reached: true, status: 503, ms: 40 } }).probe }));
    expect(down.ok).toBe(false);
    expect(byId(down.checks, "token_url.reachable")).toMatchObject({ ok: false, category: "provider_unavailable" });
    const cases: Array<[string, RegExp, RegExp]> = [
      ["ENOTFOUND", /did not resolve \(DNS\) \(ENOTFOUND\)/, /did not resolve/],
      ["ECONNREFUSED", /refused/, /port/],
      ["CERT_HAS_EXPIRED", /TLS failed/, /NODE_EXTRA_CA_CERTS/],
      ["ETIMEDOUT", /timed out/, /443/],
    ];
    for (const [code, words, fix] of cases) {
      const d = await diagnose(input({ probe: fakeProbe({ [TOKEN]: { reached: false, ms: 5003, code, message: "x" } }).probe }));
      const c = byId(d.checks, "token_url.reachable");
      expect(c).toMatchObject({ ok: false, category: "connection_lost" });
      expect(c.message).toMatch(/^The token endpoint \(login\.microsoftonline\.com\) was not reached after 5003 ms: /);
      expect(c.message).toMatch(words);
      expect(c.fix).toMatch(fix);
    }
  });

  it("an {entity_id} the connection cannot fill is named, not probed", async () => {
    const probe = fakeProbe({});
    const d = await diagnose(input({ connection: { ...connection, entityId: null }, urls: { authorization: null, token: null }, probe: probe.probe }));
    expect(probe.asked).toEqual([]);
    expect(byId(d.checks, "token_url.reachable")).toMatchObject({ ok: false, category: "authorization_failed" });
    expect(byId(d.checks, "token_url.reachable").message).toContain("has no entity id");
  });

  it("no connection fails with the command to connect", async () => {
    const d = await diagnose(input({ connection: undefined, urls: { authorization: null, token: null } }));
    const c = byId(d.checks, "connection.present");
    expect(c.ok).toBe(false);
    expect(c.message).toBe("Org acme has no connection to Graph, and there is no global one.");
    expect(c.fix).toBe("Authorize it: bifrost oauth connect Graph --org acme.");
    expect(d.checks.some((x) => x.id.startsWith("token."))).toBe(false);
  });

  it("a connection whose first authorization failed is not called connected", async () => {
    const failure = { category: "consent_required" as const, code: "access_denied", message: "The user declined.", fix: "Approve the scopes.", at: NOW - MIN };
    const d = await diagnose(input({ connection: { ...connection, status: "needs_reauth", connectedAt: null, expiresAt: null, scopes: [], hasRefreshToken: false, lastFailure: failure } }));
    const c = byId(d.checks, "connection.present");
    expect(c.ok).toBe(false);
    expect(c.message).toBe("Org acme's connection was never connected: its last authorization failed.");
    expect(c.fix).toContain("bifrost oauth connect Graph --org acme");
    expect(d.ok).toBe(false);
    expect(d.checks.some((x) => x.id.startsWith("token."))).toBe(false);
  });

  it("says when the org uses the global connection", async () => {
    const d = await diagnose(input({ connection: { ...connection, org: null } }));
    expect(byId(d.checks, "connection.present").message).toContain("the global connection (org acme has none of its own)");
  });

  it("token state: expired with and without a refresh token, inside the refresh window, no expiry", async () => {
    const expired = await diagnose(input({ connection: { ...connection, expiresAt: NOW - 3 * 60 * MIN } }));
    expect(byId(expired.checks, "token.expiry")).toMatchObject({ ok: true, message: "The token expired 3 hours ago; it is refreshed on the next use." });
    const dead = await diagnose(input({ connection: { ...connection, expiresAt: NOW - 3 * 60 * MIN, hasRefreshToken: false } }));
    expect(byId(dead.checks, "token.expiry")).toMatchObject({ ok: false, category: "token_expired" });
    expect(byId(dead.checks, "token.refresh")).toMatchObject({ ok: false, category: "token_expired" });
    expect(byId(dead.checks, "token.refresh").fix).toContain("offline_access");
    const soon = await diagnose(input({ connection: { ...connection, expiresAt: NOW + 3 * MIN } }));
    expect(byId(soon.checks, "token.expiry").message).toContain("expires in 3 minutes");
    expect(byId(soon.checks, "token.expiry").message).toContain("inside the 5 minutes refresh window");
    const forever = await diagnose(input({ connection: { ...connection, expiresAt: null, hasRefreshToken: false } }));
    expect(failedIds(forever.checks)).toEqual([]);
  });

  it("a requested scope that was not granted fails with scope_mismatch", async () => {
    const d = await diagnose(input({ connection: { ...connection, scopes: ["User.Read"] } }));
    const c = byId(d.checks, "token.scopes");
    expect(c).toMatchObject({ ok: false, category: "scope_mismatch" });
    expect(c.message).toBe("Requested but not granted: https://graph.microsoft.com/Mail.Read (granted: User.Read).");
    expect(d.ok).toBe(false);
  });

  it("needs_reauth and refresh_failed fail with the last failure's category, message and fix", async () => {
    const lastFailure = { category: "token_expired" as const, code: "AADSTS700082", message: "The token refresh failed with invalid_grant (HTTP 400).", fix: "Authorize Graph (org acme) again (bifrost oauth connect Graph --org acme).", at: NOW - 2 * 60 * MIN };
    const reauth = await diagnose(input({ connection: { ...connection, status: "needs_reauth", lastFailure } }));
    expect(byId(reauth.checks, "connection.status")).toEqual({
      id: "connection.status",
      ok: false,
      category: "token_expired",
      message: "Status needs_reauth (AADSTS700082): The token refresh failed with invalid_grant (HTTP 400).",
      fix: lastFailure.fix,
    });
    const stuck = await diagnose(input({ connection: { ...connection, status: "needs_reauth", lastFailure, expiresAt: NOW - MIN } }));
    expect(byId(stuck.checks, "token.expiry")).toMatchObject({ ok: false, category: "token_expired", fix: lastFailure.fix });
    expect(byId(stuck.checks, "token.expiry").message).not.toContain("refreshed on the next use");
    const transient = { ...lastFailure, category: "provider_unavailable" as const, code: "HTTP 503", message: "The token refresh was answered with HTTP 503.", fix: "retried" };
    const retrying = await diagnose(input({ connection: { ...connection, status: "refresh_failed", lastFailure: transient, nextRetryAt: NOW + 4 * MIN } }));
    expect(byId(retrying.checks, "connection.status")).toMatchObject({ ok: false, category: "provider_unavailable", fix: "retried" });
    expect(byId(retrying.checks, "connection.status").message).toContain("retried in 4 minutes");
    const recovered = await diagnose(input({ connection: { ...connection, lastFailure: transient } }));
    expect(byId(recovered.checks, "connection.last_failure")).toMatchObject({ ok: true });
    expect(recovered.ok).toBe(true);
  });

  it("configuration mistakes are part of the checklist", async () => {
    const d = await diagnose(input({ provider: { ...provider, clientId: "Client ID: 1b2c", redirectUri: "http://bifrost.example.com/callback" }, clientSecret: "abc..." }));
    expect(failedIds(d.checks)).toEqual(expect.arrayContaining(["client_id.format", "client_secret.format", "redirect_uri.path", "redirect_uri.https", "redirect_uri.exact"]));
    expect(JSON.stringify(d)).not.toContain("abc...");
  });
});

describe("durationWords", () => {
  it("says durations as a person would", () => {
    expect(durationWords(45_000)).toBe("45 seconds");
    expect(durationWords(1_000)).toBe("1 second");
    expect(durationWords(12 * MIN)).toBe("12 minutes");
    expect(durationWords(185 * MIN)).toBe("3 hours 5 minutes");
    expect(durationWords(60 * MIN)).toBe("1 hour");
    expect(durationWords(52 * 60 * MIN)).toBe("2 days 4 hours");
  });
});

describe("formatDiagnosis", () => {
  it("prints one line per check, the fix under a failed one, and a summary", () => {
    const out = formatDiagnosis(
      {
        ok: false,
        checks: [
          { id: "a", ok: true, message: "The token endpoint answered 405 in 12 ms." },
          { id: "b", ok: false, category: "invalid_client", message: "The client id starts with a label\n(injected line)", fix: "Save only the id itself." },
        ],
      },
      "Graph (org acme)",
    );
    expect(out).toBe(["Graph (org acme)", "✔ The token endpoint answered 405 in 12 ms.", "✘ The client id starts with a label (injected line)", "    fix: Save only the id itself.", "1 of 2 checks failed.", ""].join("\n"));
    expect(formatDiagnosis({ ok: true, checks: [{ id: "a", ok: true, message: "fine" }] }, "T")).toBe("T\n✔ fine\nAll 1 checks passed.\n");
  });
});

describe("probeUrl against real servers", () => {
  let server: ScriptedServer;
  let port: number;
  beforeAll(async () => {
    server = await ScriptedServer.start();
    server.on("/token", json(405, { error: "invalid_request" }));
    server.on("/redirect", (_req, res) => res.writeHead(302, { location: "https://elsewhere.example/" }).end());
    server.on("/big", text(200, "x".repeat(5_000_000)));
    server.on("/down", text(503, "maintenance"));
    server.on("/hang", () => {});
    port = await closedPort();
  });
  afterAll(async () => {
    await server.close();
  });

  it("reports the status and time of an answer; redirects are not followed, bodies not read", async () => {
    const token = await probeUrl(`${server.url}/token`);
    expect(token).toMatchObject({ reached: true, status: 405 });
    expect(token.ms).toBeGreaterThanOrEqual(0);
    expect(await probeUrl(`${server.url}/redirect`)).toMatchObject({ reached: true, status: 302 });
    expect(await probeUrl(`${server.url}/big`)).toMatchObject({ reached: true, status: 200 });
    expect(await probeUrl(`${server.url}/down`)).toMatchObject({ reached: true, status: 503 });
    expect(server.to("/redirect")).toHaveLength(1);
  });

  it("maps a closed port, a hang, a bad URL and a metadata host to codes, never throwing", async () => {
    expect(await probeUrl(`http://127.0.0.1:${port}/token`)).toMatchObject({ reached: false, code: "ECONNREFUSED" });
    expect(await probeUrl(`${server.url}/hang`, { timeoutMs: 200 })).toMatchObject({ reached: false, code: "ETIMEDOUT", message: "no answer within 200 ms" });
    expect(await probeUrl("not a url")).toMatchObject({ reached: false, code: "ERR_INVALID_URL" });
    expect(await probeUrl("file:///etc/passwd")).toMatchObject({ reached: false, code: "ERR_INVALID_URL" });
    expect(await probeUrl("http://169.254.169.254/latest/meta-data/")).toMatchObject({ reached: false, code: "HOST_FORBIDDEN" });
  });

  it("uses the dispatcher it is given", async () => {
    const agent = new Agent();
    try {
      expect(await probeUrl(`${server.url}/token`, { dispatcher: agent })).toMatchObject({ reached: true, status: 405 });
    } finally {
      await agent.close();
    }
  });

  const hasOpenssl = (() => {
    try {
      execFileSync("openssl", ["version"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!hasOpenssl)("names a TLS failure by its code (a self-signed certificate)", async () => {
    const dir = tempDir("bifrost-probe-tls-");
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
    const tls = createHttpsServer({ key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) }, (_req, res) => res.end("ok"));
    await new Promise<void>((resolve) => tls.listen(0, "127.0.0.1", resolve));
    try {
      const result = await probeUrl(`https://localhost:${(tls.address() as AddressInfo).port}/token`);
      expect(result).toMatchObject({ reached: false, code: "DEPTH_ZERO_SELF_SIGNED_CERT" });
    } finally {
      tls.closeAllConnections();
      await new Promise<void>((resolve) => tls.close(() => resolve()));
    }
  });
});
