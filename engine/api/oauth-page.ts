import { ERROR_CODES } from "../../common/errors.js";
import type { CallbackOutcome } from "../oauth/connections.js";
import { connectionApiView } from "./oauth-views.js";
import { errorBody, type ErrorBody } from "./errors.js";

/**
 * What the OAuth callback shows the person whose browser the provider sent back: a small
 * self-contained page (no script, no external resource, everything escaped) saying what happened
 * and what to do next, and the same outcome as JSON for scripts. Pure. Neither ever holds a token,
 * a code or a secret: the outcome carries none.
 */

type Failure = Extract<CallbackOutcome, { ok: false }>;

/** Headers of the page: nothing may load, frame it, or learn its URL (the URL holds the code). */
export const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
} as const;

const escape = (value: string) => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const where = (org: string | null) => (org === null ? "globally (for every org without a connection of its own)" : `for org ${org}`);
const connectCommand = (provider: string | null, org: string | null) => `bifrost oauth connect ${provider ?? "<provider>"}${org === null ? "" : ` --org ${org}`}`;

function page(title: string, ok: boolean, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>Bifrost: ${escape(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}h1{color:${ok ? "#17693a" : "#a11"}}dt{font-weight:600;margin-top:.6rem}dd{margin:0}code{background:#f2f2f2;padding:0 .25rem}</style>
</head><body><h1>${escape(title)}</h1>
${body}
</body></html>
`;
}

const row = (term: string, value: string) => `<dt>${escape(term)}</dt><dd>${escape(value)}</dd>`;

export function callbackTitle(outcome: CallbackOutcome): string {
  if (outcome.ok) return `Connected to ${outcome.provider}`;
  switch (outcome.code) {
    case "OAUTH_STATE_INVALID":
      return "This authorization link cannot be used";
    case "OAUTH_UNAVAILABLE":
      return "The provider could not be reached";
    case "OAUTH_PROVIDER_NOT_FOUND":
      return "The provider was removed";
    default:
      return "Authorization failed";
  }
}

/** The callback's page and its status: 200, or the status of the outcome's error code. */
export function callbackPage(outcome: CallbackOutcome): { status: number; html: string } {
  const title = callbackTitle(outcome);
  if (outcome.ok) {
    const c = connectionApiView(outcome.connection);
    const rows = [
      row("Connection", `${outcome.provider} ${where(outcome.org)}${c.entityId === null ? "" : `, entity ${c.entityId}`}`),
      row("Scopes granted", c.scopes.length > 0 ? c.scopes.join(" ") : "none reported"),
      row("Access token expires", `${c.expiresAt ?? "unknown"} (Bifrost refreshes it before then)`),
      row("Refresh token", c.hasRefreshToken ? "received: the connection stays usable without you" : "none received: someone must authorize again when the token expires (ask for the offline_access scope if the provider needs it)"),
    ];
    const use = `<p>You can close this window. Workflows use the connection with <code>ctx.oauth.getConnection(${escape(JSON.stringify(outcome.provider))})</code>; <code>bifrost oauth connections list</code> shows its status.</p>`;
    return { status: 200, html: page(title, true, `<p>Bifrost is connected to ${escape(outcome.provider)} ${escape(where(outcome.org))}.</p>\n<dl>${rows.join("")}</dl>\n${use}`) };
  }
  const f = outcome.failure;
  const rows = [
    ...(outcome.provider === null ? [] : [row("Connection", `${outcome.provider} ${where(outcome.org)}`)]),
    row("Category", f.category),
    ...(f.code === null ? [] : [row("Provider's code", f.code)]),
    row("What happened", f.message),
  ];
  const next =
    outcome.code === "OAUTH_STATE_INVALID"
      ? "Start the authorization again from Bifrost: each link works once, for 10 minutes."
      : outcome.code === "OAUTH_UNAVAILABLE"
        ? "Try again in a while; if it lasts, check the provider's status page and the engine's outbound network."
        : "Once it is fixed, connect again.";
  const body = [
    `<dl>${rows.join("")}</dl>`,
    `<h2>How to fix it</h2><p>${escape(f.fix)}</p>`,
    `<p>${escape(next)} From a terminal: <code>${escape(connectCommand(outcome.provider, outcome.org))}</code>, or <code>bifrost oauth diagnose ${escape(outcome.provider ?? "<provider>")}</code> to check the configuration.</p>`,
  ];
  return { status: ERROR_CODES[outcome.code].status, html: page(title, false, body.join("\n")) };
}

/** The callback's failure as JSON: the API's error shape, with the category and the provider's code. */
export function callbackError(outcome: Failure): ErrorBody {
  const f = outcome.failure;
  const subject = outcome.provider === null ? "the authorization" : `authorizing ${outcome.provider} ${where(outcome.org)}`;
  return errorBody(outcome.code, `${subject} failed: ${f.category}${f.code === null ? "" : ` (${f.code})`}: ${f.message}`, {
    fix: f.fix,
    category: f.category,
    details: { provider: outcome.provider, org: outcome.org, category: f.category, providerCode: f.code },
  });
}
