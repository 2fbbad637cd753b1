import * as client from "openid-client";
import type { OAuthWhere } from "./classify.js";

/**
 * Every token call of the engine, through openid-client: client credentials, the authorization
 * code with PKCE, refresh. Small free functions over a Configuration built per connection (its
 * URLs carry the connection's entity id). Errors are openid-client's own; the caller classifies
 * them (classify.ts) knowing where they happened.
 */

export interface Endpoints {
  tokenUrl: string;
  authorizationUrl: string | null;
  clientId: string;
  clientSecret: string | null;
  /** Form fields (default) or HTTP Basic. */
  clientAuth?: "client_secret_post" | "client_secret_basic";
}

/** What a token response said, before sealing. */
export interface TokenResponse {
  accessToken: string;
  refreshToken: string | null;
  tokenType: string | null;
  /** Seconds; null when the provider gave no expiry. */
  expiresIn: number | null;
  /** Granted scopes when the provider listed them. */
  scope: string[] | null;
}

/** Token calls give up after this long; the caller's own deadline may be shorter (signal). */
const TOKEN_CALL_TIMEOUT_S = 20;

/**
 * The issuer openid-client checks an `iss` against. Token URLs do not name their issuer; the
 * Microsoft identity platform's issuer is its tenant's `/v2.0`, anyone else's is taken to be the
 * token URL's origin.
 */
function issuerOf(tokenUrl: URL): string {
  const ms = /^(\/[^/]+)\/oauth2\/v2\.0\/token$/.exec(tokenUrl.pathname);
  return ms ? `${tokenUrl.origin}${ms[1]}/v2.0` : tokenUrl.origin;
}

export function configuration(endpoints: Endpoints): client.Configuration {
  const tokenUrl = new URL(endpoints.tokenUrl);
  const metadata: client.ServerMetadata = {
    issuer: issuerOf(tokenUrl),
    token_endpoint: tokenUrl.href,
    ...(endpoints.authorizationUrl ? { authorization_endpoint: endpoints.authorizationUrl } : {}),
  };
  // client_secret_post by default: what Microsoft's and HaloPSA's token endpoints document.
  const auth = endpoints.clientSecret === null ? client.None() : endpoints.clientAuth === "client_secret_basic" ? client.ClientSecretBasic(endpoints.clientSecret) : client.ClientSecretPost(endpoints.clientSecret);
  const config = new client.Configuration(metadata, endpoints.clientId, undefined, auth);
  config.timeout = TOKEN_CALL_TIMEOUT_S;
  // Plain http only where the provider URL itself says so (a local or test provider); the
  // configuration checks warn about http outside localhost.
  if (tokenUrl.protocol === "http:" || (endpoints.authorizationUrl?.startsWith("http:") ?? false)) client.allowInsecureRequests(config);
  return config;
}

function toResponse(r: client.TokenEndpointResponse): TokenResponse {
  const expiresIn = typeof r.expires_in === "number" && Number.isFinite(r.expires_in) && r.expires_in > 0 ? r.expires_in : null;
  return {
    accessToken: r.access_token,
    refreshToken: typeof r.refresh_token === "string" && r.refresh_token !== "" ? r.refresh_token : null,
    tokenType: typeof r.token_type === "string" ? r.token_type.toLowerCase() : null,
    expiresIn,
    scope: typeof r.scope === "string" ? r.scope.split(" ").filter((s) => s !== "") : null,
  };
}

/** A token call that failed, with where it was, for the classifier. */
export class TokenCallError extends Error {
  constructor(
    readonly where: OAuthWhere,
    readonly original: unknown,
  ) {
    super(`the ${where} token call failed`);
    this.name = "TokenCallError";
  }
}

async function call(where: OAuthWhere, fn: () => Promise<client.TokenEndpointResponse>): Promise<TokenResponse> {
  try {
    return toResponse(await fn());
  } catch (err) {
    // openid-client hands an unexpected answer over unread (err.cause is the Response): the
    // classifier needs only its status and headers, so the body is let go instead of kept open.
    const cause = (err as { cause?: unknown } | null)?.cause;
    if (cause instanceof Response && cause.body && !cause.bodyUsed) void cause.body.cancel().catch(() => {});
    throw new TokenCallError(where, err);
  }
}

const scopeParam = (scopes: string[]): Record<string, string> => (scopes.length > 0 ? { scope: scopes.join(" ") } : {});

export function clientCredentials(config: client.Configuration, scopes: string[]): Promise<TokenResponse> {
  return call("client_credentials", () => client.clientCredentialsGrant(config, scopeParam(scopes)));
}

export function refresh(config: client.Configuration, refreshToken: string): Promise<TokenResponse> {
  return call("refresh", () => client.refreshTokenGrant(config, refreshToken));
}

export interface AuthorizationRequest {
  url: URL;
  state: string;
  codeVerifier: string;
}

export async function authorizationRequest(config: client.Configuration, redirectUri: string, scopes: string[]): Promise<AuthorizationRequest> {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    response_type: "code",
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
    state,
    ...scopeParam(scopes),
  });
  return { url, state, codeVerifier };
}

/**
 * Redeems the code of a callback. The state was checked (and used up) against the database
 * before this; `iss` is dropped because the state already binds the answer to this provider, and
 * token URLs do not say their issuer exactly (see issuerOf).
 */
export function exchangeCode(config: client.Configuration, redirectUri: string, query: URLSearchParams, codeVerifier: string, state: string): Promise<TokenResponse> {
  const current = new URL(redirectUri);
  for (const [k, v] of query) if (k !== "iss") current.searchParams.append(k, v);
  return call("callback", () => client.authorizationCodeGrant(config, current, { pkceCodeVerifier: codeVerifier, expectedState: state }));
}
