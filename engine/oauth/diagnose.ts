/**
 * The doctor (DESIGN §9, GET /api/oauth/providers/:name/diagnose, `bifrost oauth diagnose`): the
 * troubleshooting checklist as code. Configuration (config-checks.ts), whether the authorization
 * and token endpoints answer, the token's state and the last failure, each as a check a person
 * reads. Its only I/O is the probe it is handed.
 */
import { checkProviderConfig } from "./config-checks.js";
import { networkReason } from "./classify.js";
import { fixFor, reasonFix, type FixContext } from "./fixes.js";
import type { ProbeResult } from "./probe.js";
import type { ConnectionView, Diagnosis, OAuthCheck, ProviderView } from "./types.js";

export type { ProbeResult };

export interface DiagnoseInput {
  provider: ProviderView;
  clientSecret: string | null;
  org: string | null;
  /** The resolved one: the org's own, else the global one. */
  connection: ConnectionView | undefined;
  env: { publicUrl: string; publicUrlSet: boolean };
  now: number;
  refreshSkewMs: number;
  /** Resolved URLs with {entity_id} filled (null when it cannot be filled). */
  urls: { authorization: string | null; token: string | null };
  probe(url: string): Promise<ProbeResult>;
}

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;

/** A duration as a person says it: "45 seconds", "12 minutes", "3 hours 5 minutes", "2 days 4 hours". */
export function durationWords(ms: number): string {
  const s = Math.floor(Math.abs(ms) / 1_000);
  if (s < 60) return plural(s, "second");
  if (s < 3_600) return plural(Math.floor(s / 60), "minute");
  if (s < 86_400) {
    const m = Math.floor((s % 3_600) / 60);
    return `${plural(Math.floor(s / 3_600), "hour")}${m ? ` ${plural(m, "minute")}` : ""}`;
  }
  const h = Math.floor((s % 86_400) / 3_600);
  return `${plural(Math.floor(s / 86_400), "day")}${h ? ` ${plural(h, "hour")}` : ""}`;
}

const hostOf = (url: string) => {
  try {
    return new URL(url).host;
  } catch {
    return "its host";
  }
};

async function reachability(id: string, label: string, url: string, probe: DiagnoseInput["probe"]): Promise<OAuthCheck> {
  const result = await probe(url);
  const host = hostOf(url);
  if (result.reached) {
    if (result.status >= 500) {
      return { id, ok: false, category: "provider_unavailable", message: `The ${label} (${host}) answered ${result.status} in ${result.ms} ms: a server error at the provider.`, fix: fixFor("provider_unavailable") };
    }
    const note = result.status === 404 ? " (reachable; a 404 can also mean a wrong path in the URL)" : "";
    return { id, ok: true, message: `The ${label} (${host}) answered ${result.status} in ${result.ms} ms${note}.` };
  }
  const why = networkReason(result.code ?? undefined);
  const code = result.code ? ` (${result.code})` : "";
  return { id, ok: false, category: "connection_lost", message: `The ${label} (${host}) was not reached after ${result.ms} ms: ${why.words}${code}${result.message ? `: ${result.message}` : ""}.`, fix: reasonFix(why.reason) };
}

const META_SCOPES = new Set(["openid", "profile", "email", "offline_access"]);

/** Microsoft grants "User.Read" for a requested "https://graph.microsoft.com/User.Read": compare the last part of URL scopes. */
function scopeKey(scope: string): string {
  const s = scope.trim().toLowerCase();
  return s.includes("://") ? s.slice(s.lastIndexOf("/") + 1) : s;
}

function missingScopes(requested: string[], granted: string[]): string[] {
  const have = new Set<string>();
  for (const g of granted.slice(0, 500)) {
    have.add(g.trim().toLowerCase());
    have.add(scopeKey(g));
  }
  return requested.slice(0, 100).filter((r) => {
    const s = r.trim().toLowerCase();
    // Identity scopes are often not echoed back, and .default means "what the app was granted".
    if (META_SCOPES.has(s) || s.endsWith("/.default") || s === "") return false;
    return !have.has(s) && !have.has(scopeKey(s));
  });
}

function tokenChecks(input: DiagnoseInput, c: ConnectionView, ctx: FixContext): OAuthCheck[] {
  const { provider, now } = input;
  const checks: OAuthCheck[] = [];
  const codeGrant = provider.grantType === "authorization_code";
  const stuck = c.status === "needs_reauth";
  if (c.expiresAt === null) {
    checks.push({ id: "token.expiry", ok: true, message: "The token states no expiry; Bifrost renews it an hour after it was issued." });
  } else if (c.expiresAt <= now) {
    const ago = durationWords(now - c.expiresAt);
    if (stuck) checks.push({ id: "token.expiry", ok: false, category: c.lastFailure?.category ?? "token_expired", message: `The token expired ${ago} ago and is not renewed until the connection is authorized again.`, fix: c.lastFailure?.fix ?? fixFor("token_expired", ctx) });
    else if (!codeGrant) checks.push({ id: "token.expiry", ok: true, message: `The token expired ${ago} ago; a new one is fetched with the client credentials on the next use.` });
    else if (c.hasRefreshToken) checks.push({ id: "token.expiry", ok: true, message: `The token expired ${ago} ago; it is refreshed on the next use.` });
    else checks.push({ id: "token.expiry", ok: false, category: "token_expired", message: `The token expired ${ago} ago, and there is no refresh token to renew it.`, fix: fixFor("token_expired", ctx) });
  } else {
    const left = c.expiresAt - now;
    const inWindow = left <= input.refreshSkewMs ? `, inside the ${durationWords(input.refreshSkewMs)} refresh window: it is renewed before its next use` : "";
    checks.push({ id: "token.expiry", ok: true, message: `The token expires in ${durationWords(left)} (${new Date(c.expiresAt).toISOString()})${inWindow}.` });
  }
  if (codeGrant) {
    if (c.hasRefreshToken) checks.push({ id: "token.refresh", ok: true, message: stuck ? "A refresh token is stored." : "A refresh token is stored, so the connection renews itself." });
    else if (c.expiresAt === null) checks.push({ id: "token.refresh", ok: true, message: "No refresh token is stored; the token states no expiry." });
    else {
      checks.push({
        id: "token.refresh",
        ok: false,
        category: "token_expired",
        message: "No refresh token is stored: once the access token expires, only a new authorization renews it.",
        fix: `Request the provider's offline scope (Microsoft: offline_access), then authorize again (bifrost oauth connect ${provider.name}${input.org ? ` --org ${input.org}` : ""}).`,
      });
    }
  }
  const missing = missingScopes(provider.scopes, c.scopes);
  const granted = c.scopes.length ? c.scopes.slice(0, 20).join(" ") : "none stated";
  checks.push(
    missing.length === 0
      ? { id: "token.scopes", ok: true, message: `Every requested scope is granted (granted: ${granted}).` }
      : { id: "token.scopes", ok: false, category: "scope_mismatch", message: `Requested but not granted: ${missing.slice(0, 10).join(" ")} (granted: ${granted}).`, fix: `Add the missing permissions to the app at the provider and have them consented (Microsoft: API permissions → Grant admin consent), then authorize again (bifrost oauth connect ${provider.name}${input.org ? ` --org ${input.org}` : ""}).` },
  );
  return checks;
}

function statusChecks(input: DiagnoseInput, c: ConnectionView, ctx: FixContext): OAuthCheck[] {
  const failure = c.lastFailure;
  if (c.status === "needs_reauth" || c.status === "refresh_failed") {
    const category = failure?.category ?? (c.status === "needs_reauth" ? "token_expired" : "provider_unavailable");
    const retry = c.status === "refresh_failed" ? (c.nextRetryAt !== null && c.nextRetryAt > input.now ? `; retried in ${durationWords(c.nextRetryAt - input.now)}` : "; retried automatically") : "";
    const code = failure?.code ? ` (${failure.code})` : "";
    const what = failure ? `: ${failure.message.replace(/[.\s]+$/, "")}` : "";
    return [{ id: "connection.status", ok: false, category, message: `Status ${c.status}${code}${what}${retry}.`, fix: failure?.fix ?? fixFor(category, ctx) }];
  }
  const checks: OAuthCheck[] = [{ id: "connection.status", ok: true, message: c.status === "healthy" ? "Status healthy." : "Status expiring: the token is renewed before its next use." }];
  if (failure) checks.push({ id: "connection.last_failure", ok: true, message: `The last failure (${durationWords(input.now - failure.at)} ago, ${failure.category}) has been overcome since: ${failure.message}` });
  return checks;
}

function connectionLabel(org: string | null, c: ConnectionView): string {
  if (c.org === null) return org ? `the global connection (org ${org} has none of its own)` : "the global connection";
  return `org ${c.org}'s connection`;
}

/** Runs the whole checklist; `ok` is false when any check fails. */
export async function diagnose(input: DiagnoseInput): Promise<Diagnosis> {
  const { provider, connection, org } = input;
  const ctx: FixContext = { provider: provider.name, org, redirectUri: provider.redirectUri, ...(connection ? { connection: `${provider.name} (${connection.org === null ? "global" : `org ${connection.org}`})` } : {}) };
  const checks = checkProviderConfig({ ...provider, clientSecret: input.clientSecret }, input.env);

  const probes: Array<Promise<OAuthCheck>> = [];
  const unresolved = (id: string, label: string): OAuthCheck => ({
    id,
    ok: false,
    category: "authorization_failed",
    message: `The ${label} contains {entity_id}, but ${connection ? connectionLabel(org, connection) : "there is no connection"} has no entity id to fill it with, so it was not probed.`,
    fix: "Connect with the org's entity id (for Microsoft, the tenant id), or put the literal value in the URL.",
  });
  const wantsProbe = (url: string | null, raw: string | null) => url !== null || (raw !== null && raw.includes("{entity_id}") && connection !== undefined);
  if (provider.grantType === "authorization_code" && wantsProbe(input.urls.authorization, provider.authorizationUrl)) {
    const url = input.urls.authorization;
    probes.push(url === null ? Promise.resolve(unresolved("authorization_url.reachable", "authorization URL")) : reachability("authorization_url.reachable", "authorization endpoint", url, input.probe));
  }
  if (wantsProbe(input.urls.token, provider.tokenUrl)) {
    const url = input.urls.token;
    probes.push(url === null ? Promise.resolve(unresolved("token_url.reachable", "token URL")) : reachability("token_url.reachable", "token endpoint", url, input.probe));
  }
  checks.push(...(await Promise.all(probes)));

  if (!connection) {
    const how = provider.grantType === "client_credentials" ? "connect it" : "authorize it";
    checks.push({
      id: "connection.present",
      ok: false,
      message: org ? `Org ${org} has no connection to ${provider.name}, and there is no global one.` : `There is no global connection to ${provider.name}.`,
      fix: `${how[0]!.toUpperCase()}${how.slice(1)}: bifrost oauth connect ${provider.name}${org ? ` --org ${org}` : ""}.`,
    });
  } else if (connection.connectedAt === null) {
    // Only a failed first authorization left this connection: it never held a token.
    checks.push({
      id: "connection.present",
      ok: false,
      message: `${connectionLabel(org, connection).replace(/^./, (c) => c.toUpperCase())} was never connected: its last authorization failed.`,
      fix: `Fix what the last failure says, then ${provider.grantType === "client_credentials" ? "connect" : "authorize"} it again: bifrost oauth connect ${provider.name}${org ? ` --org ${org}` : ""}.`,
    });
    checks.push(...statusChecks(input, connection, ctx));
  } else {
    const since = ` since ${new Date(connection.connectedAt).toISOString()}`;
    checks.push({ id: "connection.present", ok: true, message: `Connected${since}: ${connectionLabel(org, connection)}.` });
    checks.push(...statusChecks(input, connection, ctx));
    checks.push(...tokenChecks(input, connection, ctx));
  }
  return { ok: checks.every((c) => c.ok), checks };
}
