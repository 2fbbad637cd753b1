// OAuth figures for `npm run bench`, each beside a baseline from the same run, against a real
// oidc-provider on 127.0.0.1 (the tests' server): a fresh token handed out by ctx.oauth beside a
// ctx.log call (both one host call from the sandbox), and N concurrent getConnection calls on an
// expired token (one refresh for all of them) beside one bare openid-client refresh.
import { join } from "node:path";
import Database from "better-sqlite3";
import * as client from "openid-client";
import { pino } from "pino";
import { loadConfig } from "../engine/config.js";
import { Engine } from "../engine/engine.js";
import { startOAuthServer } from "../test/oauth-server.js";

const CALLS = Number(process.env.BENCH_OAUTH_CALLS ?? 300);
const CONCURRENT = Number(process.env.BENCH_OAUTH_CONCURRENT ?? 200);
const REDIRECT = "http://localhost:7071/api/oauth/callback";
const WEB = { clientId: "bench-web", clientSecret: "bench-secret-0123456789abcdef", scopes: ["api:read"], grantTypes: ["authorization_code" as const, "refresh_token" as const], redirectUris: [REDIRECT] };

type Row = (figure: string, bifrost: string, baseline: string, ratio: string) => void;
const ms = (v: number) => `${v.toFixed(2)} ms`;

export async function benchOAuth(dir: string, workflowsDir: string, row: Row): Promise<void> {
  const { writeFileSync } = await import("node:fs");
  writeFileSync(
    join(workflowsDir, "oauth_loop.ts"),
    `import { workflow } from "bifrost";
export default workflow({ name: "oauth_loop", async run(ctx, params: { n: number; concurrent: number }) {
  if (params.concurrent > 0) {
    const t = Date.now();
    const all = await Promise.all(Array.from({ length: params.concurrent }, () => ctx.oauth.getConnection("Web")));
    return { total: Date.now() - t, distinct: new Set(all.map((c) => c.getAuthHeader())).size };
  }
  let t = Date.now();
  for (let i = 0; i < params.n; i++) await ctx.oauth.getConnection("Web");
  const oauth = Date.now() - t;
  t = Date.now();
  for (let i = 0; i < params.n; i++) ctx.log.debug("tick");
  await ctx.step("flush", () => 1);
  return { oauth, log: Date.now() - t };
} });
`,
  );
  const server = await startOAuthServer({ clients: [WEB] });
  const dataDir = join(dir, "data-oauth");
  const engine = await Engine.open(loadConfig({}, { dataDir, workflowsDir, port: 0, watch: false, publicUrl: "http://localhost:7071" }), { logger: pino({ level: "silent" }) });
  try {
    engine.start({ watch: false });
    await engine.oauth.putProvider("Web", { grantType: "authorization_code", authorizationUrl: server.authorizationUrl, tokenUrl: server.tokenUrl, clientId: WEB.clientId, clientSecret: WEB.clientSecret, scopes: ["api:read", "offline_access"] });
    const { url } = await engine.oauth.connections.startAuthorization("Web", null, null);
    const done = await engine.oauth.connections.completeAuthorization(new URL(await server.authorize(url)).searchParams);
    if (!done.ok) throw new Error(`the bench could not connect: ${done.failure.message}`);
    const run = async (params: { n: number; concurrent: number }) => {
      const { run: r } = await engine.triggerRun("oauth_loop", { params });
      const finished = await engine.waitForRun(r.id, 600_000);
      if (finished.status !== "succeeded") throw new Error(`oauth_loop failed: ${JSON.stringify(finished.error)}`);
      return finished.result as { oauth: number; log: number; total: number; distinct: number };
    };
    await run({ n: 20, concurrent: 0 }); // warm-up
    const fresh = await run({ n: CALLS, concurrent: 0 });
    row(`ctx.oauth.getConnection, fresh token (${CALLS} in one run, mean)`, ms(fresh.oauth / CALLS), `ctx.log.debug ${ms(fresh.log / CALLS)}`, `${(fresh.oauth / Math.max(fresh.log, 1)).toFixed(1)}x`);

    // The stored token expires: every caller needs the one refresh.
    const expire = () => {
      const db = new Database(join(dataDir, "bifrost.db"));
      db.prepare("update oauth_connections set expires_at = ?").run(Date.now() - 1000);
      db.close();
    };
    const before = server.tokenRequests.length;
    expire();
    const burst = await run({ n: 0, concurrent: CONCURRENT });
    const refreshes = server.tokenRequests.length - before;
    // Baseline: one refresh_token grant straight through openid-client, on a grant of its own.
    const bareMs = await bareRefresh(server);
    row(`${CONCURRENT} concurrent getConnection, expired token`, `${ms(burst.total)} (${refreshes} refresh)`, `one bare openid-client refresh ${ms(bareMs)}`, `${(burst.total / bareMs).toFixed(2)}x`);
    if (burst.distinct !== 1 || refreshes !== 1) throw new Error(`expected one refresh shared by all callers, got ${refreshes} refreshes and ${burst.distinct} tokens`);
  } finally {
    await engine.stop(0);
    await server.close();
  }
}

/** One refresh_token grant through openid-client alone (its own PKCE authorization first), in ms. */
async function bareRefresh(server: Awaited<ReturnType<typeof startOAuthServer>>): Promise<number> {
  const config = new client.Configuration({ issuer: server.issuer, token_endpoint: server.tokenUrl, authorization_endpoint: server.authorizationUrl }, WEB.clientId, WEB.clientSecret);
  client.allowInsecureRequests(config);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: "api:read offline_access", code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256", state });
  const back = new URL(await server.authorize(url.href));
  back.searchParams.delete("iss");
  const tokens = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state });
  if (!tokens.refresh_token) throw new Error("the bench's own grant has no refresh token");
  const t = performance.now();
  await client.refreshTokenGrant(config, tokens.refresh_token);
  return performance.now() - t;
}
