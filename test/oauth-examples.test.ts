import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import type { RunRecord } from "../storage/types.js";
import { engineTracker } from "./helpers.js";
import { listenLocal } from "./http-servers.js";
import { startOAuthServer, type OAuthTestServer } from "./oauth-server.js";

/**
 * The OAuth examples in workflows/ as a user runs them: tokens from a real OAuth server
 * (oidc-provider), and local servers that answer like Microsoft Graph and HaloPSA and accept only
 * the tokens that server issued.
 */

const EXAMPLES = ["check_token.ts", "test_api_call.ts", "m365_license_check.ts", "halopsa_ticket_read.ts"];
const workflows = Object.fromEntries(EXAMPLES.map((f) => [f, readFileSync(new URL(`../workflows/${f}`, import.meta.url), "utf8")]));
const CLIENT = { clientId: "msp-app", clientSecret: "msp-secret-0123456789abcdef", scopes: ["api:read"], grantTypes: ["client_credentials" as const], redirectUris: [] };

const tracker = engineTracker();
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** Graph- and Halo-like answers for a bearer token the OAuth server issued; 401 otherwise, 403 on /forbidden. */
async function apiServer(oauth: OAuthTestServer): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const server = await listenLocal((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    seen.push(path);
    const token = (req.headers.authorization ?? "").replace(/^Bearer /, "");
    const send = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (!oauth.secrets().includes(token) || path === "/revoked") return send(401, { error: "invalid_token" });
    if (path === "/forbidden") return send(403, { error: "insufficient_scope" });
    if (path === "/me") return send(200, { id: "app" });
    if (path === "/v1.0/subscribedSkus") return send(200, { value: [{ skuPartNumber: "SPE_E5", consumedUnits: 8, prepaidUnits: { enabled: 10 } }, { skuPartNumber: "EMS", consumedUnits: 1, prepaidUnits: { enabled: 1 } }] });
    if (path === "/api/tickets") return send(200, { record_count: 2, tickets: [{ id: 1, summary: "Printer", client_name: "Acme" }, { id: 2, summary: "VPN" }] });
    return send(404, {});
  });
  closers.push(server.close);
  return { url: server.url, seen };
}

async function setup(): Promise<{ engine: Engine; oauth: OAuthTestServer; api: { url: string; seen: string[] } }> {
  const oauth = await startOAuthServer({ clients: [CLIENT] });
  closers.push(() => oauth.close());
  const api = await apiServer(oauth);
  const { engine } = await tracker.open({ workflows, config: { sandboxMemoryMb: 32 } });
  engine.start({ watch: false });
  for (const name of ["Microsoft", "HaloPSA"]) {
    await engine.oauth.putProvider(name, { grantType: "client_credentials", tokenUrl: oauth.templatedTokenUrl, clientId: CLIENT.clientId, clientSecret: CLIENT.clientSecret, scopes: ["api:read"] });
    await engine.oauth.connections.connectClientCredentials(name, "acme", "tenant-acme");
  }
  return { engine, oauth, api };
}

async function run(engine: Engine, name: string, params: unknown): Promise<RunRecord> {
  const { run } = await engine.triggerRun(name, { params, org: "acme" });
  return engine.waitForRun(run.id, 30_000);
}

describe("OAuth examples", () => {
  it("check_token reports expiry and granted scopes, never the token", async () => {
    const { engine, oauth } = await setup();
    const r = await run(engine, "check_token", { provider: "Microsoft" });
    expect(r.status).toBe("succeeded");
    expect(r.result).toMatchObject({ provider: "Microsoft", org: "acme", expired: false, tokenType: "bearer", scopes: ["api:read"] });
    expect((r.result as { expiresIn: number }).expiresIn).toBeGreaterThan(0);
    const stored = JSON.stringify([r, await engine.storage.logs.list(r.id, { limit: 100 })]);
    for (const secret of oauth.secrets()) expect(stored.includes(secret)).toBe(false);
  });

  it("test_api_call tells 200, 401 and 403 apart", async () => {
    const { engine, api } = await setup();
    expect((await run(engine, "test_api_call", { provider: "HaloPSA", url: `${api.url}/me` })).result).toMatchObject({ status: 200, ok: true, verdict: expect.stringMatching(/works/) });
    expect((await run(engine, "test_api_call", { provider: "HaloPSA", url: `${api.url}/forbidden` })).result).toMatchObject({ status: 403, verdict: expect.stringMatching(/permission/) });
    expect((await run(engine, "test_api_call", { provider: "HaloPSA", url: `${api.url}/revoked` })).result).toMatchObject({ status: 401, ok: false, verdict: expect.stringMatching(/refused the token/) });
    // A provider with no connection for the org: the run says so instead of calling anything.
    await engine.oauth.putProvider("Other", { grantType: "client_credentials", tokenUrl: "http://127.0.0.1:9/token", clientId: "x", clientSecret: "y".repeat(20) });
    const r = await run(engine, "test_api_call", { provider: "Other", url: `${api.url}/me` });
    expect(r.error).toMatchObject({ code: "CONNECTION_NOT_FOUND" });
  });

  it("m365_license_check finds the E5 seats through a Graph-like API", async () => {
    const { engine, api } = await setup();
    const r = await run(engine, "m365_license_check", { graphUrl: `${api.url}/v1.0` });
    expect(r.result).toEqual({ eligible: true, sku: "SPE_E5", seats: 10, used: 8, free: 2 });
    const none = await run(engine, "m365_license_check", { graphUrl: `${api.url}/v1.0`, sku: "SPE_E3" });
    expect(none.result).toEqual({ eligible: false, reason: "no SPE_E3 license" });
  });

  it("halopsa_ticket_read reads tickets with the HaloPSA connection", async () => {
    const { engine, api, oauth } = await setup();
    const r = await run(engine, "halopsa_ticket_read", { baseUrl: api.url });
    expect(r.result).toMatchObject({ count: 2, total: 2, tickets: [{ id: 1, summary: "Printer", client: "Acme" }, { id: 2, summary: "VPN", client: null }] });
    expect(api.seen).toContain("/api/tickets");
    expect(oauth.tokenRequests.map((t) => t.tenant)).toEqual(["tenant-acme", "tenant-acme"]);
  });
});
