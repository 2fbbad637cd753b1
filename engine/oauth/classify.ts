/**
 * The one classifier of OAuth failures (DESIGN §9): every path (the authorization redirect, the
 * callback, the code exchange, refresh, client credentials, API calls with a connection's token)
 * describes what it saw as a FailureSignal, and this maps it to a category, the provider's code, a
 * bounded description and the fix. Pure: no I/O, and provider text is cut before it is read.
 */
import { CATEGORY_FIXES, fixFor, reasonFix, type FixContext, type FixReason } from "./fixes.js";
import { aadstsNumber, challengeParam, cleanCode, cleanSentence, cleanText, MAX_SCAN } from "./text.js";
import type { OAuthCategory } from "./types.js";

export { CATEGORY_FIXES, fixFor, type FixContext };
export { describeError } from "./describe-error.js";

export type OAuthWhere = "authorize" | "callback" | "token" | "refresh" | "client_credentials" | "api";

export type FailureSignal =
  /** An OAuth error: a token endpoint's error body, the callback's `error=`, openid-client's ResponseBodyError or AuthorizationResponseError. */
  | { kind: "oauth_error"; where: OAuthWhere; status?: number; error?: string; description?: string }
  /** An answer that is not an OAuth error body: a 5xx page, a 429, an API's 401/403 (with its WWW-Authenticate). */
  | { kind: "http_status"; where: OAuthWhere; status: number; body?: string; wwwAuthenticate?: string }
  /** No answer: DNS, refused, reset, timeout, TLS. `code` is the errno or undici code. */
  | { kind: "network"; where: OAuthWhere; code?: string; message: string }
  /** The callback's `state` is not one that may complete an authorization. */
  | { kind: "state"; reason: "missing" | "unknown" | "used" | "expired" }
  /** A configuration mistake found before the provider was called. */
  | { kind: "config"; problem: string };

export interface ClassifiedFailure {
  category: OAuthCategory;
  /** The provider's code: an AADSTS code, else the OAuth `error`, else "HTTP 503", else the errno. */
  code: string | null;
  /** One line for a person, at most 500 characters, no control characters. */
  description: string;
  fix: string;
  /** True for rate_limited, provider_unavailable and connection_lost: trying again later may work. */
  retryable: boolean;
  /** Only a person can fix it (everything that is not retryable). */
  needsReauth: boolean;
}

const RETRYABLE: ReadonlySet<OAuthCategory> = new Set(["rate_limited", "provider_unavailable", "connection_lost"]);

interface Verdict {
  category: OAuthCategory;
  reason?: FixReason;
}

/** Microsoft Entra codes by their documented meaning; the AADSTS code decides over the generic `error`. */
const AADSTS: Record<string, Verdict & { meaning: string }> = {
  "50011": { category: "redirect_uri_mismatch", meaning: "the redirect URI does not match the ones registered for the app" },
  "500113": { category: "redirect_uri_mismatch", meaning: "no reply address is registered for the app" },
  "7000215": { category: "invalid_client", reason: "secret_invalid", meaning: "an invalid client secret was sent" },
  "7000222": { category: "invalid_client", reason: "secret_expired", meaning: "the client secret has expired" },
  "7000218": { category: "invalid_client", reason: "secret_missing", meaning: "the request has no client secret or client assertion" },
  "700016": { category: "invalid_client", reason: "app_not_found", meaning: "the application was not found in the tenant" },
  "70011": { category: "scope_mismatch", meaning: "a requested scope is invalid" },
  "650053": { category: "scope_mismatch", meaning: "a requested scope does not exist on the resource" },
  "500011": { category: "scope_mismatch", meaning: "the resource a scope names was not found in the tenant" },
  "65001": { category: "consent_required", meaning: "the user or an administrator has not consented to the app" },
  "65004": { category: "consent_required", reason: "user_declined", meaning: "the user declined to consent" },
  "700082": { category: "token_expired", meaning: "the refresh token expired because it went unused too long" },
  "50173": { category: "token_expired", meaning: "the grant was revoked (a password change or a revoked session)" },
  "50133": { category: "token_expired", meaning: "the session is invalid after a password expiry or change" },
  "54005": { category: "authorization_failed", reason: "code_expired_or_used", meaning: "the authorization code was already redeemed" },
  "7000112": { category: "app_disabled", meaning: "the application is disabled" },
  "50076": { category: "policy_blocked", reason: "mfa", meaning: "multi-factor authentication is required" },
  "50079": { category: "policy_blocked", reason: "mfa", meaning: "the user must register for multi-factor authentication" },
  "53003": { category: "policy_blocked", reason: "conditional_access", meaning: "access was blocked by a Conditional Access policy" },
  "53000": { category: "policy_blocked", reason: "conditional_access", meaning: "Conditional Access requires a compliant device" },
  "53001": { category: "policy_blocked", reason: "conditional_access", meaning: "Conditional Access requires a domain-joined device" },
  "9002313": { category: "authorization_failed", reason: "malformed", meaning: "the request was malformed or invalid" },
  "90002": { category: "authorization_failed", reason: "tenant_not_found", meaning: "the tenant was not found" },
};

/** The authorization code or the refresh token expired: which one depends on the path. */
const AADSTS_EXPIRED_GRANT = "70008";

const WHERE_TEXT: Record<OAuthWhere, string> = {
  authorize: "The authorization request",
  callback: "The authorization",
  token: "The authorization code exchange",
  refresh: "The token refresh",
  client_credentials: "The client-credentials token request",
  api: "The API call",
};

const isCodeExchange = (where: OAuthWhere) => where === "callback" || where === "token" || where === "authorize";

/** invalid_grant means an expired or revoked refresh token on refresh, an expired or reused code on the code exchange. */
function invalidGrant(where: OAuthWhere): Verdict {
  if (where === "refresh" || where === "api") return { category: "token_expired", reason: "refresh_revoked" };
  if (isCodeExchange(where)) return { category: "authorization_failed", reason: "code_expired_or_used" };
  return { category: "authorization_failed" };
}

/** RFC 6749, 6750 and OpenID Connect error codes whose meaning does not depend on the path. */
const GENERIC: Record<string, Verdict> = {
  redirect_uri_mismatch: { category: "redirect_uri_mismatch" },
  invalid_redirect_uri: { category: "redirect_uri_mismatch" },
  invalid_client: { category: "invalid_client" },
  unauthorized_client: { category: "invalid_client", reason: "grant_not_allowed" },
  unsupported_grant_type: { category: "invalid_client", reason: "grant_not_allowed" },
  invalid_scope: { category: "scope_mismatch" },
  consent_required: { category: "consent_required" },
  interaction_required: { category: "consent_required" },
  login_required: { category: "consent_required" },
  invalid_token: { category: "token_expired" },
  insufficient_scope: { category: "permission_denied" },
  temporarily_unavailable: { category: "provider_unavailable" },
  server_error: { category: "provider_unavailable" },
  slow_down: { category: "rate_limited" },
  invalid_request: { category: "authorization_failed", reason: "malformed" },
  unsupported_response_type: { category: "authorization_failed", reason: "malformed" },
};

function genericError(error: string, where: OAuthWhere): Verdict | undefined {
  const name = error.toLowerCase();
  if (name === "invalid_grant") return invalidGrant(where);
  if (name === "access_denied") {
    // On the callback the person declined; on refresh the grant was withdrawn; elsewhere a permission is missing.
    if (where === "authorize" || where === "callback") return { category: "consent_required", reason: "user_declined" };
    return where === "refresh" ? { category: "token_expired", reason: "refresh_revoked" } : { category: "permission_denied" };
  }
  return Object.hasOwn(GENERIC, name) ? GENERIC[name] : undefined;
}

const IP_WORD = /(?:^|[^a-z])ip(?:v[46])?(?:[^a-z]|$)/;
const REFUSAL = /not allowed|not permitted|blocked|denied|restricted|forbidden|not authori[sz]ed|allow-?list|whitelist/;
const REDIRECT_WORD = /redirect[_ -]?ur[il]|reply (?:url|address)/;
const MISMATCH_WORD = /match|invalid|not registered|not allowed|not valid/;

/** What the words of a description show when no code does: an IP allow-list, Conditional Access, a redirect URI mismatch. */
function fromWords(text: string): Verdict | undefined {
  const lower = text.slice(0, MAX_SCAN).toLowerCase();
  if (lower.includes("conditional access")) return { category: "policy_blocked", reason: "conditional_access" };
  if ((IP_WORD.test(lower) && REFUSAL.test(lower)) || lower.includes("blocked by policy") || lower.includes("ip allow")) return { category: "policy_blocked", reason: "ip_blocked" };
  if (REDIRECT_WORD.test(lower) && MISMATCH_WORD.test(lower)) return { category: "redirect_uri_mismatch" };
  return undefined;
}

function byStatus(status: number | undefined, where: OAuthWhere): Verdict {
  if (status === undefined) return { category: "authorization_failed" };
  if (status === 429) return { category: "rate_limited" };
  if (status >= 500 || status === 408) return { category: "provider_unavailable" };
  if (where === "api") {
    if (status === 401) return { category: "token_expired" };
    if (status === 403) return { category: "permission_denied" };
    return { category: "authorization_failed" };
  }
  // RFC 6749 §5.2: a token endpoint answers 401 when client authentication failed.
  if (status === 401) return { category: "invalid_client" };
  if (status < 400 || status === 404 || status === 405) return { category: "authorization_failed", reason: "wrong_endpoint" };
  return { category: "authorization_failed" };
}

interface OAuthErrorFacts {
  where: OAuthWhere;
  status?: number;
  error?: string;
  description: string;
}

function classifyOAuthError(f: OAuthErrorFacts): Verdict & { code: string | null; aadMeaning?: string } {
  const aad = aadstsNumber(f.description) ?? aadstsNumber(f.error);
  const code = aad ? `AADSTS${aad}` : (f.error ?? (f.status !== undefined ? `HTTP ${f.status}` : null));
  if (aad === AADSTS_EXPIRED_GRANT) return { ...invalidGrant(f.where), code, aadMeaning: "the authorization code or refresh token has expired" };
  const known = aad ? AADSTS[aad] : undefined;
  if (known) return { category: known.category, reason: known.reason, code, aadMeaning: known.meaning };
  if (f.status === 429) return { category: "rate_limited", code };
  if (f.status !== undefined && f.status >= 500) return { category: "provider_unavailable", code };
  const words = fromWords(f.description);
  if (words) return { ...words, code };
  const generic = f.error ? genericError(f.error, f.where) : undefined;
  return { ...(generic ?? byStatus(f.status, f.where)), code };
}

function oauthErrorDescription(f: OAuthErrorFacts, aadMeaning: string | undefined): string {
  const status = f.status !== undefined ? ` (HTTP ${f.status})` : "";
  const what = f.error ? `${f.error}${status}` : `an error${status}`;
  const meaning = aadMeaning ? ` — ${aadMeaning}` : "";
  const detail = f.description ? `: ${f.description}` : "";
  return cleanSentence(`${WHERE_TEXT[f.where]} failed with ${what}${meaning}${detail}`);
}

/** The useful part of a non-OAuth answer body: an OAuth-style or Graph-style JSON error, or a short text that is not a page. */
function readBody(body: string | undefined): { error?: string; code?: string; message?: string } {
  if (body === undefined) return {};
  const text = body.slice(0, MAX_SCAN * 2).trim();
  if (text.startsWith("{")) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === "object") {
        const o = parsed as Record<string, unknown>;
        if (typeof o.error === "string") return { error: cleanCode(o.error), message: cleanText(o.error_description ?? o.message, 300) };
        if (o.error && typeof o.error === "object") {
          const inner = o.error as Record<string, unknown>;
          return { code: cleanCode(inner.code), message: cleanText(inner.message, 300) };
        }
        return { message: cleanText(o.message ?? o.detail ?? o.title, 300) };
      }
    } catch {
      // Not JSON after all (or cut by the cap): fall through to the text.
    }
  }
  if (text.startsWith("<")) return {};
  return { message: cleanText(text, 200) };
}

function classifyHttpStatus(s: Extract<FailureSignal, { kind: "http_status" }>): Verdict & { code: string | null; description: string } {
  const challenge = s.wwwAuthenticate ?? "";
  const challengeError = challenge ? cleanCode(challengeParam(challenge, "error")) : undefined;
  const body = readBody(s.body);
  const error = challengeError ?? body.error;
  const descriptionText = challengeError ? cleanText(challengeParam(challenge, "error_description"), 300) : (body.message ?? "");
  if (error) {
    const f: OAuthErrorFacts = { where: s.where, status: s.status, error, description: descriptionText };
    const v = classifyOAuthError(f);
    return { ...v, description: oauthErrorDescription(f, v.aadMeaning) };
  }
  const words = descriptionText ? fromWords(descriptionText) : undefined;
  const verdict = s.status === 429 || s.status >= 500 ? byStatus(s.status, s.where) : (words ?? byStatus(s.status, s.where));
  const aad = aadstsNumber(descriptionText);
  const code = aad ? `AADSTS${aad}` : (body.code ?? `HTTP ${s.status}`);
  const detail = descriptionText ? `: ${body.code ? `${body.code}: ` : ""}${descriptionText}` : body.code ? `: ${body.code}` : "";
  return { ...verdict, code, description: cleanSentence(`${WHERE_TEXT[s.where]} was answered with HTTP ${s.status}${detail}`) };
}

const TLS_CODE = /^(?:CERT_|ERR_TLS_|ERR_SSL_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH|ERR_OSSL_)/;

/** What kind of network failure an errno or undici code is, and how to say it. */
export function networkReason(code: string | undefined): { reason: FixReason; words: string } {
  const c = code ?? "";
  if (c === "ENOTFOUND" || c === "EAI_AGAIN" || c === "EAI_FAIL" || c === "EAI_NONAME") return { reason: "dns", words: "the host name did not resolve (DNS)" };
  if (c === "ECONNREFUSED") return { reason: "refused", words: "the connection was refused" };
  if (c === "ETIMEDOUT" || c === "UND_ERR_CONNECT_TIMEOUT" || c === "UND_ERR_HEADERS_TIMEOUT" || c === "UND_ERR_BODY_TIMEOUT" || c === "ESOCKETTIMEDOUT") return { reason: "timeout", words: "it timed out" };
  if (TLS_CODE.test(c)) return { reason: "tls", words: "TLS failed" };
  if (c === "EHOSTUNREACH" || c === "ENETUNREACH" || c === "EADDRNOTAVAIL") return { reason: "refused", words: "the host is unreachable" };
  return { reason: "reset", words: "the connection failed" };
}

function verdictOf(signal: FailureSignal): Verdict & { code: string | null; description: string } {
  switch (signal.kind) {
    case "oauth_error": {
      const f: OAuthErrorFacts = { where: signal.where, status: signal.status, error: cleanCode(signal.error), description: cleanText(signal.description, 400) };
      const v = classifyOAuthError(f);
      return { ...v, description: oauthErrorDescription(f, v.aadMeaning) };
    }
    case "http_status":
      return classifyHttpStatus(signal);
    case "network": {
      const code = cleanCode(signal.code) ?? null;
      const n = networkReason(code ?? undefined);
      const message = cleanText(signal.message, 300);
      return { category: "connection_lost", reason: n.reason, code, description: cleanSentence(`${WHERE_TEXT[signal.where]} could not reach the provider: ${n.words}${code ? ` (${code})` : ""}${message ? `: ${message}` : ""}`) };
    }
    case "state":
      return { category: "authorization_failed", reason: "state", code: null, description: STATE_TEXT[signal.reason] };
    case "config":
      return { category: "authorization_failed", reason: "config", code: null, description: cleanSentence(signal.problem) || "The provider's configuration is incomplete." };
  }
}

const STATE_TEXT: Record<Extract<FailureSignal, { kind: "state" }>["reason"], string> = {
  missing: "The callback has no state: it did not come from an authorization Bifrost started.",
  unknown: "The callback's state is not one Bifrost issued: the authorization was not started here, or its link was altered.",
  used: "The callback's state was already used: each authorization completes once (a reload or the back button repeats it).",
  expired: "The callback's state has expired: the authorization took too long to complete.",
};

/** Classifies one failure; the context makes the fix concrete (the exact redirect URI, the reconnect command). */
export function classifyOAuthFailure(signal: FailureSignal, context: FixContext = {}): ClassifiedFailure {
  const v = verdictOf(signal);
  const retryable = RETRYABLE.has(v.category);
  const fix = v.reason ? reasonFix(v.reason, context) : fixFor(v.category, context);
  return { category: v.category, code: v.code, description: v.description, fix, retryable, needsReauth: !retryable };
}
