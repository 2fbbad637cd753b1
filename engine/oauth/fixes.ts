/**
 * The fix texts a person reads next to an OAuth failure: one per category (DESIGN §9), and more
 * precise ones for the signals that say exactly what went wrong (an expired secret, a declined
 * consent, a TLS failure). Pure.
 */
import { OAUTH_CATEGORIES, type OAuthCategory } from "./types.js";

/** What a fix may name to be concrete. None of it is secret. */
export interface FixContext {
  /** The redirect URI Bifrost sends (ProviderView.redirectUri). */
  redirectUri?: string;
  /** The provider's name in Bifrost. */
  provider?: string;
  /** How the connection is named to a person, e.g. "HaloPSA (org acme)". */
  connection?: string;
  /** The connection's org (null: the global one), for the reconnect command. */
  org?: string | null;
}

/** Failures precise enough for their own fix; the category's fix covers the rest. */
export type FixReason =
  | "secret_invalid"
  | "secret_expired"
  | "secret_missing"
  | "app_not_found"
  | "tenant_not_found"
  | "grant_not_allowed"
  | "code_expired_or_used"
  | "user_declined"
  | "refresh_revoked"
  | "mfa"
  | "conditional_access"
  | "ip_blocked"
  | "malformed"
  | "wrong_endpoint"
  | "state"
  | "config"
  | "dns"
  | "refused"
  | "timeout"
  | "reset"
  | "tls";

function connectCommand(c: FixContext): string {
  const org = c.org ? ` --org ${c.org}` : "";
  return `bifrost oauth connect ${c.provider ?? "<provider>"}${org}`;
}

const connectionName = (c: FixContext) => c.connection ?? "the connection";

const CATEGORY_FIX: Record<OAuthCategory, (c: FixContext) => string> = {
  redirect_uri_mismatch: (c) =>
    c.redirectUri
      ? `Register exactly ${c.redirectUri} as a redirect URI in the provider's app registration (same protocol, host, port and path, no trailing slash), and make sure that is the address Bifrost is reached at (BIFROST_PUBLIC_URL); then authorize again (${connectCommand(c)}).`
      : `Make the redirect URI registered at the provider match the one Bifrost sends exactly (protocol, host, port and path: <BIFROST_PUBLIC_URL>/api/oauth/callback), then authorize again (${connectCommand(c)}).`,
  invalid_client: (c) =>
    `Verify the client id and secret: copy them again from the provider's app registration without labels or spaces (for Microsoft, the secret's Value, not its Secret ID), create a new secret if it expired, save them on the provider in Bifrost, then connect again (${connectCommand(c)}).`,
  scope_mismatch: (c) =>
    `Request exactly the scopes the provider documents (spelling, case and resource prefix such as https://graph.microsoft.com/): fix the provider's scopes in Bifrost and the app's permissions at the provider, then authorize again (${connectCommand(c)}).`,
  permission_denied: (c) =>
    `The token lacks a permission this call needs: add the scope to the provider in Bifrost and the permission to the app at the provider (with admin consent where the provider needs it), then authorize again (${connectCommand(c)}).`,
  consent_required: (c) =>
    `A user or an administrator must approve the requested scopes: authorize again (${connectCommand(c)}) and accept the consent screen, or have an administrator grant consent for the organization (Microsoft: API permissions → Grant admin consent).`,
  token_expired: (c) =>
    `Authorize ${connectionName(c)} again (${connectCommand(c)}): its token can no longer be refreshed (revoked, expired after a password change or after going unused too long).`,
  app_disabled: (c) =>
    `The app registration is disabled at the provider: enable it (Microsoft Entra: Enterprise applications → the app → Properties → "Enabled for users to sign-in?" = Yes), then connect again (${connectCommand(c)}).`,
  policy_blocked: () =>
    "A policy at the provider blocked the request (MFA, Conditional Access or an IP allow-list): complete MFA interactively, have an administrator exclude this app or account from the policy, or allow the engine's outbound IP address.",
  rate_limited: () =>
    "The provider is rate limiting: Bifrost backs off and retries automatically; if it keeps happening, make fewer calls (batch them, lengthen schedule intervals).",
  provider_unavailable: () => "The provider had a temporary failure: Bifrost retries automatically; if it persists, check the provider's status page.",
  connection_lost: () =>
    "The provider could not be reached: check the network, DNS, the firewall (outbound HTTPS, port 443) and any proxy between the engine and the provider; Bifrost retries automatically.",
  authorization_failed: (c) =>
    `Check the provider's configuration in Bifrost (authorization and token URLs, client id, grant type, scopes) against the provider's documentation, run bifrost oauth diagnose ${c.provider ?? "<provider>"}, then authorize again (${connectCommand(c)}).`,
};

const REASON_FIX: Record<FixReason, (c: FixContext) => string> = {
  secret_invalid: (c) =>
    `The provider rejected the client secret: copy the secret's Value (not its Secret ID) from the app registration (Microsoft: Certificates & secrets) or create a new secret, save it on the provider in Bifrost, then connect again (${connectCommand(c)}).`,
  secret_expired: (c) =>
    `The client secret has expired: create a new client secret in the app registration (Microsoft: Certificates & secrets), save its Value on the provider in Bifrost, then connect again (${connectCommand(c)}).`,
  secret_missing: (c) => `Set the provider's client secret in Bifrost (the secret's Value from the app registration), then connect again (${connectCommand(c)}).`,
  app_not_found: () =>
    "The client id is not an app in this tenant: check the client id (Microsoft: Application (client) ID) and the tenant that fills {entity_id}; an app from another tenant must first be consented to by an administrator of this one.",
  tenant_not_found: () => "The tenant in the URL does not exist: check the connection's entity id (the tenant id or domain that fills {entity_id}) and the provider's URLs.",
  grant_not_allowed: () =>
    "The provider does not allow this client to use this grant: enable the grant type (authorization code or client credentials) for the app at the provider, and check that the client id is the app's.",
  code_expired_or_used: (c) =>
    `The authorization code expired or was already used (codes are single-use and short-lived): start the authorization again from Bifrost (${connectCommand(c)}) and complete it without delay.`,
  user_declined: (c) =>
    `The sign-in was cancelled or the consent declined: start the authorization again (${connectCommand(c)}) and accept the requested permissions, or have an administrator grant consent for the organization.`,
  refresh_revoked: (c) => `Authorize ${connectionName(c)} again (${connectCommand(c)}): the provider no longer accepts its refresh token (revoked, expired or replaced).`,
  mfa: (c) =>
    `The provider requires multi-factor authentication for this sign-in: authorize again interactively and complete MFA (${connectCommand(c)}); for unattended access, use a client-credentials provider or have an administrator adjust the MFA policy for this app.`,
  conditional_access: () =>
    "A Conditional Access policy blocked the sign-in: an administrator of the tenant finds the policy in the sign-in logs and allows this app, the engine's IP address or location, or the device.",
  ip_blocked: () => "The provider refused the engine's IP address: add the engine's outbound IP address to the provider's IP allow-list (or to the policy that blocks it), then try again.",
  malformed: (c) =>
    `The provider called the request malformed (this is not rate limiting: waiting will not help): check the provider's URLs (a real tenant id in place of {entity_id}), client id, grant type and scopes against the provider's documentation (bifrost oauth diagnose ${c.provider ?? "<provider>"}).`,
  wrong_endpoint: () =>
    "The token URL did not answer like an OAuth token endpoint: set the provider's tokenUrl to the token endpoint from the provider's documentation (or its /.well-known/openid-configuration), without redirects.",
  state: (c) =>
    `Start the authorization again from Bifrost (${connectCommand(c)}): each authorization link completes once and expires, so a reloaded, bookmarked or late callback is refused.`,
  config: (c) => `Fix the provider's configuration in Bifrost (bifrost oauth diagnose ${c.provider ?? "<provider>"} lists every check with its fix).`,
  dns: () => "The provider's host name did not resolve: check the host in the provider's URLs for typos, and that the engine's machine can resolve names (DNS).",
  refused: () => "Nothing accepted the connection at the provider's host and port: check the port in the URL, and that a firewall allows outbound connections (HTTPS, port 443).",
  timeout: () => "The provider did not answer in time: check that the firewall or proxy allows outbound HTTPS (port 443) to the provider; a passing slowness is retried automatically.",
  reset: () => "The connection was cut in the middle: often a firewall, proxy or TLS-inspecting device in between; it is retried automatically, and if it persists check outbound HTTPS (port 443).",
  tls: () =>
    "The TLS connection failed: the provider's certificate was not trusted or not valid for the host. If a proxy inspects TLS, give Node its CA with NODE_EXTRA_CA_CERTS; check that the URL's host name is the certificate's; an expired certificate is the provider's to renew.",
};

/** The fix for a category, as concrete as the context allows (the exact redirect URI, the reconnect command). */
export function fixFor(category: OAuthCategory, context: FixContext = {}): string {
  return CATEGORY_FIX[category](context);
}

export function reasonFix(reason: FixReason, context: FixContext = {}): string {
  return REASON_FIX[reason](context);
}

/** Each category's fix without context: the table of the README and DESIGN §9. */
export const CATEGORY_FIXES: Record<OAuthCategory, string> = Object.fromEntries(OAUTH_CATEGORIES.map((c) => [c, fixFor(c)])) as Record<OAuthCategory, string>;
