/**
 * What openid-client 6 throws, turned into a FailureSignal for the classifier. Duck-typed on the
 * `code` each oauth4webapi/openid-client error carries, so a second copy of the library (or an
 * error re-thrown across a boundary) is read the same way. Only capped strings are taken: never a
 * whole body, never the parsed error object as it came. Pure.
 */
import type { FailureSignal, OAuthWhere } from "./classify.js";
import { cleanCode, cleanText } from "./text.js";

/** How deep a `cause` chain is followed: undici nests two or three levels; more is a loop or hostile. */
const MAX_CAUSE_DEPTH = 6;

type Loose = Record<string, unknown>;

const asObject = (v: unknown): Loose | undefined => (v !== null && (typeof v === "object" || typeof v === "function") ? (v as Loose) : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isInteger(v) ? v : undefined);

/** An errno or undici/TLS code that names a network failure (not openid-client's own OAUTH_* codes). */
const NETWORK_CODE =
  /^(?:E(?!RR_)[A-Z0-9_]{2,30}|UND_ERR_[A-Z_]{1,40}|CERT_[A-Z_]{1,40}|UNABLE_TO_[A-Z_]{1,60}|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH|ERR_TLS_[A-Z_]{1,40}|ERR_SSL_[A-Z_]{1,60}|ERR_OSSL_[A-Z_]{1,60}|ERR_SOCKET_[A-Z_]{1,40}|ERR_STREAM_PREMATURE_CLOSE)$/;

function isNetworkCode(code: string | undefined): code is string {
  return code !== undefined && NETWORK_CODE.test(code);
}

/** The first network code in an error, its cause chain or an AggregateError's errors, and whether it was a timeout abort. */
export function findNetwork(err: unknown): { code?: string; message: string; timeout: boolean } | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH; depth++) {
    const o = asObject(current);
    if (!o) return undefined;
    const name = str(o.name);
    const code = str(o.code);
    if (name === "TimeoutError" || name === "AbortError" || code === "ABORT_ERR") return { code: "ETIMEDOUT", message: "no answer in time (the request was aborted)", timeout: true };
    if (isNetworkCode(code)) return { code, message: cleanText(o.message, 200), timeout: false };
    const errors = o.errors;
    if (Array.isArray(errors) && errors.length > 0) {
      // AggregateError from happy eyeballs: every address failed; the first says why.
      const first = asObject(errors[0]);
      const inner = str(first?.code);
      if (isNetworkCode(inner)) return { code: inner, message: cleanText(first?.message, 200), timeout: false };
    }
    current = o.cause;
  }
  return undefined;
}

/** A WWW-Authenticate header rebuilt from openid-client's parsed challenges, for the classifier to read. */
function challengeHeader(challenges: unknown): string | undefined {
  if (!Array.isArray(challenges)) return undefined;
  const parts: string[] = [];
  for (const c of challenges.slice(0, 4)) {
    const o = asObject(c);
    const scheme = cleanCode(o?.scheme) ?? "Bearer";
    const params = asObject(o?.parameters) ?? {};
    const fields: string[] = [];
    for (const key of ["error", "error_description", "scope"] as const) {
      const value = str(params[key]);
      if (value !== undefined) fields.push(`${key}="${cleanText(value, 300).replace(/"/g, "'")}"`);
    }
    parts.push(fields.length ? `${scheme} ${fields.join(", ")}` : scheme);
  }
  return parts.length ? parts.join(", ") : undefined;
}

/** A Response openid-client attached as `cause` (unexpected status, not JSON): its status and challenge only. */
function responseFacts(cause: unknown): { status: number; wwwAuthenticate?: string } | undefined {
  const o = asObject(cause);
  const status = num(o?.status);
  if (!o || status === undefined) return undefined;
  const headers = asObject(o.headers);
  const get = headers && typeof headers.get === "function" ? (headers.get as (name: string) => unknown).bind(headers) : undefined;
  const header = str(get?.("www-authenticate"));
  return header === undefined ? { status } : { status, wwwAuthenticate: header.slice(0, 2_000) };
}

/** Microsoft also lists its codes as numbers (`error_codes: [700082]`); use them when the description has none. */
function withAadCode(description: string | undefined, body: unknown): string | undefined {
  const codes = asObject(body)?.error_codes;
  const first = Array.isArray(codes) ? num(codes[0]) : undefined;
  if (first === undefined || (description ?? "").includes("AADSTS")) return description;
  return `AADSTS${first}: ${description ?? ""}`;
}

/** What an openid-client call (or the fetch beneath it) threw, as a signal. Never throws. */
export function describeError(err: unknown, where: OAuthWhere): FailureSignal {
  const o = asObject(err);
  const code = str(o?.code);
  const message = cleanText(o?.message, 300);

  if (o && code === "OAUTH_RESPONSE_BODY_ERROR") {
    const description = withAadCode(str(o.error_description)?.slice(0, 2_000), o.cause);
    return { kind: "oauth_error", where, status: num(o.status), error: cleanCode(o.error), description: cleanText(description) };
  }
  if (o && code === "OAUTH_AUTHORIZATION_RESPONSE_ERROR") {
    return { kind: "oauth_error", where, error: cleanCode(o.error), description: cleanText(str(o.error_description)) };
  }
  if (o && code === "OAUTH_WWW_AUTHENTICATE_CHALLENGE") {
    const header = challengeHeader(o.cause);
    return header === undefined ? { kind: "http_status", where, status: num(o.status) ?? 401 } : { kind: "http_status", where, status: num(o.status) ?? 401, wwwAuthenticate: header };
  }
  if (code === "OAUTH_HTTP_REQUEST_FORBIDDEN" || code === "OAUTH_REQUEST_PROTOCOL_FORBIDDEN") {
    return { kind: "config", problem: "The provider's URL does not use https; plain http is allowed only for localhost. Use the provider's https URL." };
  }
  if (code === "OAUTH_RESPONSE_IS_NOT_CONFORM" || code === "OAUTH_RESPONSE_IS_NOT_JSON") {
    const facts = responseFacts(o?.cause);
    if (facts) return { kind: "http_status", where, ...facts };
  }
  if (code === "OAUTH_INVALID_RESPONSE" && where === "callback") {
    const inner = cleanText(asObject(o?.cause)?.message, 300);
    if (inner.includes('"state"')) return { kind: "state", reason: inner.includes("missing") ? "missing" : "unknown" };
  }

  const network = findNetwork(err);
  if (network) return { kind: "network", where, code: network.code, message: network.message || message };

  // Anything else openid-client refused (a malformed token response, a failed JWT check) or an unexpected throw.
  const name = cleanCode(o?.name);
  const inner = cleanText(asObject(o?.cause)?.message, 200);
  const what = code?.startsWith("OAUTH_") ? `the provider's answer was refused (${code})` : `unexpected ${name ?? typeof err}`;
  const detail = [message || (typeof err === "string" ? cleanText(err, 300) : ""), inner].filter((s) => s !== "").join(": ");
  return { kind: "oauth_error", where, description: cleanText(detail ? `${what}: ${detail}` : what) };
}
