/**
 * The shapes OAuth's parts agree on: the classifier and checks (pure), the token service, the API
 * and the CLI. Nothing here holds a secret: views say whether a client secret is set, never what it
 * is, and connections carry no token.
 */

/** The failure categories of DESIGN §9; each has one fix text (classify.ts). */
export const OAUTH_CATEGORIES = [
  "redirect_uri_mismatch",
  "invalid_client",
  "scope_mismatch",
  "permission_denied",
  "consent_required",
  "token_expired",
  "app_disabled",
  "policy_blocked",
  "rate_limited",
  "provider_unavailable",
  "connection_lost",
  "authorization_failed",
] as const;
export type OAuthCategory = (typeof OAUTH_CATEGORIES)[number];

export type GrantType = "authorization_code" | "client_credentials";
export const GRANT_TYPES: readonly GrantType[] = ["authorization_code", "client_credentials"];

/** How the client authenticates at the token endpoint: form fields (default) or HTTP Basic. */
export type ClientAuth = "client_secret_post" | "client_secret_basic";
export const CLIENT_AUTHS: readonly ClientAuth[] = ["client_secret_post", "client_secret_basic"];

/**
 * healthy: a token that is valid beyond the refresh window; expiring: valid, but inside it (the
 * refresh job or the next use renews it); refresh_failed: the last refresh failed for a transient
 * reason and is retried with backoff; needs_reauth: only a person can fix it (reconnect, new secret,
 * consent), and workflows get the stored failure at once without calling the provider.
 */
export type ConnectionStatus = "healthy" | "expiring" | "refresh_failed" | "needs_reauth";

/** A provider as the API and CLI show it. */
export interface ProviderView {
  name: string;
  grantType: GrantType;
  /** Required for authorization_code; may contain `{entity_id}`. */
  authorizationUrl: string | null;
  /** May contain `{entity_id}`, filled from the connection's entity id (e.g. a Microsoft tenant id). */
  tokenUrl: string;
  clientId: string;
  /** Write-only: whether a client secret is stored. */
  clientSecretSet: boolean;
  scopes: string[];
  /** The redirect URI sent to the provider: the configured one, or `<public url>/api/oauth/callback`. */
  redirectUri: string;
  /** True when no redirect URI was configured and the default is used. */
  redirectUriDefault: boolean;
  clientAuth: ClientAuth;
  createdAt: number;
  updatedAt: number;
}

/** What a person needs to know about a failure; never holds a token or secret. */
export interface FailureView {
  category: OAuthCategory;
  /** The provider's own code: an OAuth `error` (invalid_grant), an AADSTS code, an HTTP status, an errno. */
  code: string | null;
  message: string;
  fix: string;
  at: number;
}

export interface ConnectionView {
  provider: string;
  /** null: the global connection, used by every org that has none of its own. */
  org: string | null;
  /** What `{entity_id}` in the provider's URLs becomes for this connection (null: not templated). */
  entityId: string | null;
  status: ConnectionStatus;
  tokenType: string | null;
  expiresAt: number | null;
  /** Granted scopes (as the token response said; the requested ones when it said nothing). */
  scopes: string[];
  hasRefreshToken: boolean;
  connectedAt: number | null;
  lastRefreshAt: number | null;
  lastFailure: FailureView | null;
  /** When a refresh_failed connection is tried again. */
  nextRetryAt: number | null;
}

/** One item of the doctor's checklist and of the warnings a saved provider returns. */
export interface OAuthCheck {
  id: string;
  ok: boolean;
  category?: OAuthCategory;
  message: string;
  fix?: string;
}

export interface Diagnosis {
  ok: boolean;
  checks: OAuthCheck[];
}
