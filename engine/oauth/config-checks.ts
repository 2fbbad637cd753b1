/**
 * The configuration half of the troubleshooting checklist, as code: the mistakes people make when
 * they copy an app registration into a provider (labels and spaces in the client id, a truncated
 * secret or its Secret ID, a redirect URI on another host or path, misspelled URL placeholders,
 * missing scopes). Saving a provider returns the failed checks as warnings; the doctor shows them
 * all. Pure. The secret is read for its shape only: no message contains it.
 */
import type { GrantType, OAuthCategory, OAuthCheck } from "./types.js";

export interface ProviderCheckInput {
  name: string;
  grantType: GrantType;
  authorizationUrl: string | null;
  tokenUrl: string;
  clientId: string;
  /** Only for format checks; never echoed. */
  clientSecret: string | null;
  scopes: string[];
  redirectUri: string;
}

export interface CheckEnv {
  /** BIFROST_PUBLIC_URL, or the default `http://localhost:<port>`. */
  publicUrl: string;
  publicUrlSet: boolean;
}

export const CALLBACK_PATH = "/api/oauth/callback";

/** Longest text any check reads or shows: ids, URLs and scopes are far shorter when they are right. */
const MAX_FIELD = 2_000;
const SHOWN = 120;

const show = (text: string) => JSON.stringify(text.length > SHOWN ? `${text.slice(0, SHOWN)}…` : text);

const pass = (id: string, message: string): OAuthCheck => ({ id, ok: true, message });
const fail = (id: string, category: OAuthCategory, message: string, fix: string): OAuthCheck => ({ id, ok: false, category, message, fix });

function isLoopback(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || h === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** A URL, with `{entity_id}` (and any other placeholder) stood in for so templated URLs parse. */
function parseTemplated(url: string): URL | undefined {
  if (url.length > MAX_FIELD) return undefined;
  try {
    return new URL(url.replace(/\{[^{}]{0,64}\}/g, "placeholder"));
  } catch {
    return undefined;
  }
}

/** The `{...}` placeholders of a URL other than `{entity_id}`, in one pass. */
function strayPlaceholders(url: string): string[] {
  const out: string[] = [];
  const text = url.slice(0, MAX_FIELD);
  for (let open = text.indexOf("{"); open !== -1 && out.length < 5; open = text.indexOf("{", open + 1)) {
    const close = text.indexOf("}", open);
    const name = close === -1 ? text.slice(open, open + 20) : text.slice(open, close + 1);
    if (name !== "{entity_id}") out.push(name);
    if (close === -1) break;
  }
  if (out.length === 0 && text.includes("}") && text.replaceAll("{entity_id}", "").includes("}")) out.push("}");
  return out;
}

const MICROSOFT_LOGIN_HOSTS = ["login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "login.microsoftonline.us", "login.partner.microsoftonline.cn", "login.chinacloudapi.cn"];

function isMicrosoft(...urls: Array<string | null>): boolean {
  return urls.some((u) => {
    const host = u ? parseTemplated(u)?.hostname.toLowerCase() : undefined;
    return host !== undefined && MICROSOFT_LOGIN_HOSTS.includes(host);
  });
}

const hasSpace = (text: string) => /\s/.test(text);

/** The label people copy along with the value ("Client ID: …", "Application (client) ID = …"). */
function labelled(value: string, labels: RegExp): boolean {
  const head = value.slice(0, 60).trim().toLowerCase().replace(/\s+/g, " ").replace(/^["']/, "");
  return labels.test(head);
}

const CLIENT_ID_LABEL = /^(?:application \(client\) id|client ?[_-]? ?id|app ?id)\s?[:=]/;
const SECRET_LABEL = /^(?:client ?[_-]? ?secret|secret(?: value)?|value|password)\s?[:=]/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkClientId(clientId: string): OAuthCheck {
  const id = "client_id.format";
  const fixed = (text: string) =>
    text
      .replace(/\s+/g, "")
      .replace(/^["']/, "")
      .replace(/^(?:application\(client\)id|client[_-]?id|appid)[:=]/i, "")
      .replace(/^["']|["']$/g, "");
  if (clientId.trim() === "") return fail(id, "invalid_client", "The client id is empty.", "Set the provider's clientId to the app's client id from the provider's app registration (Microsoft: Application (client) ID).");
  const value = clientId.slice(0, MAX_FIELD);
  const problems: string[] = [];
  if (labelled(value, CLIENT_ID_LABEL)) problems.push('starts with a label ("Client ID:")');
  if (value !== value.trim()) problems.push("has spaces or line breaks at its start or end");
  if (/[\r\n]/.test(value.trim())) problems.push("contains a line break");
  else if (hasSpace(value.trim())) problems.push("contains spaces");
  if (/^["'].*["']$/s.test(value.trim())) problems.push("is wrapped in quotes");
  if (problems.length === 0) return pass(id, `The client id ${show(value)} is well formed.`);
  return fail(id, "invalid_client", `The client id ${problems.join("; it ")}: ${show(value)}.`, `Save only the id itself, e.g. ${show(fixed(value))}: copy the value without its label, quotes, spaces or line breaks.`);
}

function checkSecret(p: ProviderCheckInput): OAuthCheck[] {
  const secret = p.clientSecret;
  if (secret === null) {
    if (p.grantType === "client_credentials") {
      return [fail("client_secret.present", "invalid_client", "No client secret is set: the client-credentials grant authenticates the app with one.", "Create a client secret in the app registration and save its Value as the provider's clientSecret.")];
    }
    return [pass("client_secret.present", "No client secret is set: Bifrost authenticates as a public client (PKCE only). Web app registrations usually require a secret; set one if the provider answers invalid_client.")];
  }
  if (secret.trim() === "") return [fail("client_secret.present", "invalid_client", "The client secret is empty.", "Save the secret's Value from the app registration as the provider's clientSecret, or remove it for a public client.")];
  const checks = [pass("client_secret.present", "A client secret is set.")];
  const value = secret.slice(0, MAX_FIELD);
  const length = secret.length;
  const problems: string[] = [];
  if (labelled(value, SECRET_LABEL)) problems.push('starts with a label ("Secret:" or "Value:")');
  if (value !== value.trim()) problems.push("has spaces or line breaks at its start or end");
  if (/[\r\n]/.test(value.trim())) problems.push("contains a line break");
  else if (hasSpace(value.trim())) problems.push("contains spaces");
  const trimmed = value.trim();
  if (trimmed.endsWith("...") || trimmed.endsWith("…")) problems.push("ends with an ellipsis: it looks truncated");
  else if (trimmed.length < 16) problems.push("is shorter than 16 characters: it looks truncated");
  if (GUID.test(trimmed)) problems.push("has the form of a GUID, which is what Microsoft shows as the Secret ID, not the secret itself");
  if (trimmed === p.clientId.trim()) problems.push("is the same as the client id");
  if (problems.length === 0) {
    checks.push(pass("client_secret.format", `The client secret is well formed (${length} characters).`));
  } else {
    checks.push(
      fail(
        "client_secret.format",
        "invalid_client",
        `The client secret (${length} characters) ${problems.join("; it ")}.`,
        "Copy the whole secret again from the app registration: the Value column (about 40 characters for Microsoft, shown only right after the secret is created), without a label, spaces or line breaks; create a new secret if the Value is no longer shown.",
      ),
    );
  }
  return checks;
}

function expectedRedirect(publicUrl: string): string | undefined {
  const base = parseTemplated(publicUrl);
  if (!base) return undefined;
  return `${base.origin}${base.pathname.replace(/\/+$/, "")}${CALLBACK_PATH}`;
}

function checkRedirect(p: ProviderCheckInput, env: CheckEnv): OAuthCheck[] {
  const expected = expectedRedirect(env.publicUrl);
  const registerFix = expected ? `Register exactly ${expected} at the provider and leave the provider's redirectUri unset in Bifrost (or set it to that URI).` : `Use <BIFROST_PUBLIC_URL>${CALLBACK_PATH} as the redirect URI, at the provider and in Bifrost.`;
  const url = parseTemplated(p.redirectUri);
  if (!url) return [fail("redirect_uri.valid", "redirect_uri_mismatch", `The redirect URI ${show(p.redirectUri)} is not a valid URL.`, registerFix)];
  const checks: OAuthCheck[] = [];
  const shown = show(p.redirectUri);

  const pathOk = url.pathname.endsWith(CALLBACK_PATH) && url.search === "" && url.hash === "";
  checks.push(
    pathOk
      ? pass("redirect_uri.path", `The redirect URI ends with ${CALLBACK_PATH}.`)
      : fail("redirect_uri.path", "redirect_uri_mismatch", `The redirect URI ${shown} does not end with ${CALLBACK_PATH} (Bifrost completes authorizations only there; no trailing slash, query or fragment).`, registerFix),
  );

  const secure = url.protocol === "https:" || (url.protocol === "http:" && isLoopback(url.hostname));
  checks.push(
    secure
      ? pass("redirect_uri.https", url.protocol === "https:" ? "The redirect URI uses https." : "The redirect URI uses http on localhost, which providers allow for development.")
      : fail("redirect_uri.https", "redirect_uri_mismatch", `The redirect URI uses ${url.protocol.replace(":", "")} on ${url.hostname}: outside localhost providers require https.`, `Serve Bifrost over https (set BIFROST_PUBLIC_URL to its https address) and register the https redirect URI${expected?.startsWith("https:") ? ` ${expected}` : ""}.`),
  );

  if (env.publicUrlSet) {
    const publicHost = parseTemplated(env.publicUrl)?.host.toLowerCase();
    if (publicHost !== undefined) {
      checks.push(
        url.host.toLowerCase() === publicHost
          ? pass("redirect_uri.domain", `The redirect URI is on BIFROST_PUBLIC_URL's host ${publicHost}.`)
          : fail("redirect_uri.domain", "redirect_uri_mismatch", `The redirect URI is on ${url.host}, but BIFROST_PUBLIC_URL is on ${publicHost}: the provider would send the person to another server.`, registerFix),
      );
    }
  }

  if (expected) {
    const same = url.href === new URL(expected).href;
    const unsetFix = env.publicUrlSet ? registerFix : `${registerFix} If Bifrost is reached at another address, set BIFROST_PUBLIC_URL to it first: the default is ${env.publicUrl}.`;
    checks.push(same ? pass("redirect_uri.exact", `The redirect URI is exactly ${expected}.`) : fail("redirect_uri.exact", "redirect_uri_mismatch", `The redirect URI ${shown} is not exactly ${expected}, where Bifrost receives callbacks.`, unsetFix));
  }
  return checks;
}

function checkUrl(idBase: "token_url" | "authorization_url", label: string, raw: string): OAuthCheck[] {
  const url = parseTemplated(raw);
  const checks: OAuthCheck[] = [];
  const docs = `Copy the ${label} from the provider's documentation or its /.well-known/openid-configuration.`;
  if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) {
    checks.push(fail(`${idBase}.valid`, "authorization_failed", `The ${label} ${show(raw)} is not a valid http(s) URL.`, docs));
  } else if (url.protocol === "http:" && !isLoopback(url.hostname)) {
    checks.push(fail(`${idBase}.valid`, "authorization_failed", `The ${label} uses http on ${url.hostname}: only localhost may be called without https.`, `Use the provider's https ${label}.`));
  } else {
    checks.push(pass(`${idBase}.valid`, `The ${label} is a valid ${url.protocol.replace(":", "")} URL on ${url.host}.`));
  }
  if (raw.includes("{") || raw.includes("}")) {
    const stray = strayPlaceholders(raw);
    checks.push(
      stray.length === 0
        ? pass(`${idBase}.placeholders`, `The ${label} uses {entity_id}, filled from each connection's entity id.`)
        : fail(`${idBase}.placeholders`, "authorization_failed", `The ${label} contains ${stray.map((s) => show(s)).join(", ")}, which Bifrost never fills: only {entity_id} is replaced (with the connection's entity id, e.g. a tenant id).`, `Write {entity_id} exactly (lower case, with the underscore) where the tenant or account goes, or put the literal value in the URL.`),
    );
  }
  return checks;
}

const MS_SHARED_TENANTS = ["common", "organizations", "consumers"];

function checkScopes(p: ProviderCheckInput, microsoft: boolean): OAuthCheck[] {
  const checks: OAuthCheck[] = [];
  const scopes = p.scopes.slice(0, 100);
  if (p.grantType === "authorization_code") {
    checks.push(
      scopes.length > 0
        ? pass("scopes.present", `${scopes.length} scope${scopes.length === 1 ? "" : "s"} requested.`)
        : fail("scopes.present", "scope_mismatch", "No scopes are requested: most providers refuse the authorization or grant a token that can call nothing.", "Add the scopes the provider documents for the APIs your workflows call (Microsoft Graph: e.g. https://graph.microsoft.com/User.Read and offline_access)."),
    );
  }
  const bad = scopes.filter((s) => s.trim() === "" || /[\s,;]/.test(s));
  if (scopes.length > 0) {
    checks.push(
      bad.length === 0
        ? pass("scopes.format", "Every scope is a single name.")
        : fail("scopes.format", "scope_mismatch", `Scope entries ${bad.slice(0, 3).map(show).join(", ")} are empty or hold several names (spaces, commas or semicolons).`, "Give each scope as its own entry, e.g. [\"User.Read\", \"Mail.Read\"], not \"User.Read, Mail.Read\"."),
    );
  }
  if (microsoft && p.grantType === "authorization_code" && scopes.length > 0) {
    checks.push(
      scopes.some((s) => s.trim().toLowerCase() === "offline_access")
        ? pass("scopes.offline_access", "offline_access is requested, so Microsoft issues a refresh token.")
        : fail("scopes.offline_access", "scope_mismatch", "offline_access is not requested: Microsoft issues no refresh token, so the connection needs a new authorization whenever its access token expires (about an hour).", "Add offline_access to the provider's scopes, then authorize again."),
    );
  }
  if (microsoft && p.grantType === "client_credentials") {
    const defaults = scopes.filter((s) => s.trim().toLowerCase().endsWith("/.default"));
    checks.push(
      scopes.length === 1 && defaults.length === 1
        ? pass("scopes.default", `The client-credentials scope is ${show(scopes[0]!)}, the app's consented permissions for one resource.`)
        : fail("scopes.default", "scope_mismatch", scopes.length === 0 ? "No scope is requested: Microsoft's client-credentials grant needs <resource>/.default." : `Microsoft's client-credentials grant takes exactly one <resource>/.default scope, not ${scopes.slice(0, 3).map(show).join(", ")}.`, "Use a single scope such as https://graph.microsoft.com/.default; the permissions themselves are the app's application permissions with admin consent."),
    );
  }
  return checks;
}

function checkMicrosoftTenant(p: ProviderCheckInput): OAuthCheck | undefined {
  if (p.grantType !== "client_credentials") return undefined;
  const url = parseTemplated(p.tokenUrl);
  const tenant = url?.pathname.split("/")[1]?.toLowerCase();
  if (tenant === undefined || !MS_SHARED_TENANTS.includes(tenant)) return pass("token_url.tenant", "The token URL names a tenant.");
  return fail("token_url.tenant", "authorization_failed", `The token URL uses /${tenant}/: the client-credentials grant needs a specific tenant.`, `Put {entity_id} (filled with each connection's tenant id) or the tenant id in place of /${tenant}/.`);
}

/** The configuration checks of one provider; the failed ones are the warnings a save returns. */
export function checkProviderConfig(p: ProviderCheckInput, env: CheckEnv): OAuthCheck[] {
  const checks: OAuthCheck[] = [checkClientId(p.clientId), ...checkSecret(p)];
  if (p.grantType === "authorization_code") {
    checks.push(...checkRedirect(p, env));
    if (p.authorizationUrl === null || p.authorizationUrl.trim() === "") {
      checks.push(fail("authorization_url.present", "authorization_failed", "The authorization-code grant has no authorization URL.", "Set the provider's authorizationUrl to the provider's authorize endpoint (Microsoft: https://login.microsoftonline.com/{entity_id}/oauth2/v2.0/authorize)."));
    } else {
      checks.push(...checkUrl("authorization_url", "authorization URL", p.authorizationUrl));
    }
  }
  checks.push(...checkUrl("token_url", "token URL", p.tokenUrl));
  const microsoft = isMicrosoft(p.tokenUrl, p.authorizationUrl);
  if (microsoft) {
    const tenant = checkMicrosoftTenant(p);
    if (tenant) checks.push(tenant);
  }
  checks.push(...checkScopes(p, microsoft));
  return checks;
}
