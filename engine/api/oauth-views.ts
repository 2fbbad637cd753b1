import { OAUTH_CATEGORIES, type ConnectionView, type FailureView, type ProviderView } from "../oauth/types.js";

/**
 * OAuth as the API answers it (and `bifrost oauth … --json` prints it): the engine's views with
 * times as ISO strings, and the JSON Schemas that document them. Nothing here can hold a secret:
 * the views it converts carry none (a provider says whether its client secret is set, a
 * connection carries no token).
 */

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function providerApiView(p: ProviderView) {
  return { ...p, createdAt: new Date(p.createdAt).toISOString(), updatedAt: new Date(p.updatedAt).toISOString() };
}

export function failureApiView(f: FailureView) {
  return { category: f.category, code: f.code, message: f.message, fix: f.fix, at: new Date(f.at).toISOString() };
}

export function connectionApiView(c: ConnectionView) {
  return {
    provider: c.provider,
    org: c.org,
    entityId: c.entityId,
    status: c.status,
    tokenType: c.tokenType,
    expiresAt: iso(c.expiresAt),
    scopes: c.scopes,
    hasRefreshToken: c.hasRefreshToken,
    connectedAt: iso(c.connectedAt),
    lastRefreshAt: iso(c.lastRefreshAt),
    lastFailure: c.lastFailure && failureApiView(c.lastFailure),
    nextRetryAt: iso(c.nextRetryAt),
  };
}

export type ProviderApiView = ReturnType<typeof providerApiView>;
export type ConnectionApiView = ReturnType<typeof connectionApiView>;

type Schema = Record<string, unknown>;
const object = (properties: Record<string, Schema>, optional: string[] = []): Schema => ({
  type: "object",
  additionalProperties: false,
  required: Object.keys(properties).filter((k) => !optional.includes(k)),
  properties,
});
const time = { type: ["string", "null"], format: "date-time" };
const text = { type: "string" };
const nullableText = { type: ["string", "null"] };
const category = { type: "string", enum: [...OAUTH_CATEGORIES] };

export const providerSchema = object({
  name: text,
  grantType: { type: "string", enum: ["authorization_code", "client_credentials"] },
  authorizationUrl: { ...nullableText, description: "may contain {entity_id}" },
  tokenUrl: { ...text, description: "may contain {entity_id}, filled per connection (e.g. a Microsoft tenant id)" },
  clientId: text,
  clientSecretSet: { type: "boolean", description: "the client secret is write-only: never returned, only whether one is stored" },
  scopes: { type: "array", items: text },
  redirectUri: { ...text, description: "the redirect URI sent to the provider: the configured one, or <BIFROST_PUBLIC_URL>/api/oauth/callback" },
  redirectUriDefault: { type: "boolean", description: "true when no redirect URI was configured" },
  clientAuth: { type: "string", enum: ["client_secret_post", "client_secret_basic"], description: "how the client authenticates at the token endpoint" },
  createdAt: { type: "string", format: "date-time" },
  updatedAt: { type: "string", format: "date-time" },
});

export const checkSchema = object({ id: text, ok: { type: "boolean" }, category, message: text, fix: text }, ["category", "fix"]);

export const savedProvider = object({ provider: providerSchema, warnings: { type: "array", items: checkSchema, description: "the configuration checks that failed, each with its fix" } });
export const providerList = object({ items: { type: "array", items: providerSchema } });

const failureSchema = object({ category, code: { ...nullableText, description: "the provider's own code: an OAuth error, an AADSTS code, an HTTP status, an errno" }, message: text, fix: text, at: { type: "string", format: "date-time" } });

export const connectionSchema = object({
  provider: text,
  org: { ...nullableText, description: "null: the global connection, used by every org without one of its own" },
  entityId: { ...nullableText, description: "what {entity_id} in the provider's URLs becomes for this connection" },
  status: { type: "string", enum: ["healthy", "expiring", "refresh_failed", "needs_reauth"] },
  tokenType: nullableText,
  expiresAt: time,
  scopes: { type: "array", items: text, description: "the granted scopes" },
  hasRefreshToken: { type: "boolean" },
  connectedAt: time,
  lastRefreshAt: time,
  lastFailure: { anyOf: [{ type: "null" }, failureSchema] },
  nextRetryAt: { ...time, description: "when a refresh_failed connection is tried again" },
});

export const connectionReply = object({ connection: connectionSchema });
export const connectionList = object({ items: { type: "array", items: connectionSchema } });
export const diagnosisSchema = object({ ok: { type: "boolean", description: "false when any check failed" }, checks: { type: "array", items: checkSchema } });
export const authorizationLink = object({ url: { ...text, description: "the provider's authorization URL to open (state and PKCE challenge included)" }, expiresAt: { type: "string", format: "date-time" } });
export const callbackSuccess = object({ ok: { type: "boolean", enum: [true] }, provider: text, org: nullableText, connection: connectionSchema });
