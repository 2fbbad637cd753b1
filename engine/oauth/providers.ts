import { BifrostError } from "../../common/errors.js";
import type { OAuthProviderRecord } from "../../storage/types.js";
import type { SecretBox } from "../secrets/key.js";
import { CALLBACK_PATH } from "./config-checks.js";
import { CLIENT_AUTHS, GRANT_TYPES, type ClientAuth, type GrantType, type ProviderView } from "./types.js";

/** Provider names appear in URLs, `connection:` options and log lines: short, plain, case kept ("HaloPSA"). */
export const PROVIDER_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const MAX_URL = 2048;
const MAX_FIELD = 4096;
const MAX_SCOPES = 100;

/** What a person sends to create or change a provider; a missing clientSecret keeps the stored one. */
export interface ProviderInput {
  grantType: GrantType;
  authorizationUrl?: string | null;
  tokenUrl: string;
  clientId: string;
  clientSecret?: string | null;
  scopes?: string[] | string;
  redirectUri?: string | null;
  clientAuth?: ClientAuth;
}

export const secretContext = (provider: string) => `oauth-provider:${provider}:client_secret`;

export function defaultRedirectUri(publicUrl: string): string {
  return `${publicUrl}${CALLBACK_PATH}`;
}

function problem(field: string, message: string): BifrostError {
  return new BifrostError("VALIDATION_FAILED", `${field}: ${message}`, { details: [{ field, message }] });
}

function text(input: Record<string, unknown>, field: string, max: number, required: boolean): string | null {
  const value = input[field];
  if (value === undefined || value === null || value === "") {
    if (required) throw problem(field, "is required");
    return null;
  }
  if (typeof value !== "string") throw problem(field, "must be a string");
  if (value.length > max) throw problem(field, `must be at most ${max} characters`);
  return value;
}

/** An absolute http(s) URL; `{entity_id}` may stand anywhere in it and is filled per connection. */
function url(input: Record<string, unknown>, field: string, required: boolean): string | null {
  const value = text(input, field, MAX_URL, required);
  if (value === null) return null;
  let parsed: URL;
  try {
    parsed = new URL(value.replaceAll("{entity_id}", "entity"));
  } catch {
    throw problem(field, "must be an absolute URL such as https://login.example.com/oauth2/token");
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw problem(field, "must be an http:// or https:// URL");
  return value;
}

function scopes(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const list = typeof value === "string" ? value.split(" ") : value;
  if (!Array.isArray(list)) throw problem("scopes", "must be an array of strings or one space-separated string");
  const out: string[] = [];
  for (const s of list) {
    if (typeof s !== "string" || s.length > 512 || /[\s"\\]/.test(s)) throw problem("scopes", "each scope is a string of at most 512 characters without spaces or quotes");
    if (s !== "" && !out.includes(s)) out.push(s);
  }
  if (out.length > MAX_SCOPES) throw problem("scopes", `at most ${MAX_SCOPES} scopes`);
  return out;
}

/** The validated fields of a provider (the client secret still in the clear, for the checks). */
export interface ProviderFields {
  grantType: GrantType;
  authorizationUrl: string | null;
  tokenUrl: string;
  clientId: string;
  /** undefined: keep the stored secret; null: remove it. */
  clientSecret: string | null | undefined;
  scopes: string[];
  redirectUri: string | null;
  clientAuth: ClientAuth;
}

export function parseProviderInput(name: string, body: unknown): ProviderFields {
  if (!PROVIDER_NAME.test(name)) throw problem("name", "a provider name starts with a letter and has at most 64 letters, digits, '_', '.' or '-'");
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw problem("body", "must be a JSON object");
  const input = body as Record<string, unknown>;
  const known = new Set(["grantType", "authorizationUrl", "tokenUrl", "clientId", "clientSecret", "scopes", "redirectUri", "clientAuth"]);
  for (const key of Object.keys(input)) if (!known.has(key)) throw problem(key, `is not a provider field (expected ${[...known].join(", ")})`);
  const grantType = input.grantType ?? "authorization_code";
  if (typeof grantType !== "string" || !(GRANT_TYPES as readonly string[]).includes(grantType)) throw problem("grantType", `must be one of ${GRANT_TYPES.join(", ")}`);
  const clientAuth = input.clientAuth ?? "client_secret_post";
  if (typeof clientAuth !== "string" || !(CLIENT_AUTHS as readonly string[]).includes(clientAuth)) throw problem("clientAuth", `must be one of ${CLIENT_AUTHS.join(", ")} (how the token endpoint expects the client id and secret: form fields, or HTTP Basic)`);
  const fields: ProviderFields = {
    grantType: grantType as GrantType,
    authorizationUrl: url(input, "authorizationUrl", grantType === "authorization_code"),
    tokenUrl: url(input, "tokenUrl", true) as string,
    // Kept as typed, spaces included: the configuration checks name such mistakes rather than hide them.
    clientId: text(input, "clientId", MAX_FIELD, true) as string,
    clientSecret: input.clientSecret === undefined ? undefined : text(input, "clientSecret", MAX_FIELD, false),
    scopes: scopes(input.scopes),
    redirectUri: url(input, "redirectUri", false),
    clientAuth: clientAuth as ClientAuth,
  };
  return fields;
}

export function toProviderRecord(name: string, fields: ProviderFields, sealedSecret: string | null, existing: OAuthProviderRecord | undefined, now: number): OAuthProviderRecord {
  return {
    name,
    grantType: fields.grantType,
    authorizationUrl: fields.authorizationUrl,
    tokenUrl: fields.tokenUrl,
    clientId: fields.clientId,
    clientSecretSealed: sealedSecret,
    scopes: fields.scopes,
    redirectUri: fields.redirectUri,
    clientAuth: fields.clientAuth,
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
  };
}

export function providerView(record: OAuthProviderRecord, publicUrl: string): ProviderView {
  return {
    name: record.name,
    grantType: record.grantType as GrantType,
    authorizationUrl: record.authorizationUrl,
    tokenUrl: record.tokenUrl,
    clientId: record.clientId,
    clientSecretSet: record.clientSecretSealed !== null,
    scopes: record.scopes,
    redirectUri: record.redirectUri ?? defaultRedirectUri(publicUrl),
    redirectUriDefault: record.redirectUri === null,
    clientAuth: record.clientAuth === "client_secret_basic" ? "client_secret_basic" : "client_secret_post",
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

export function openClientSecret(secrets: SecretBox, record: OAuthProviderRecord): string | null {
  return record.clientSecretSealed === null ? null : secrets.open(record.clientSecretSealed, secretContext(record.name));
}

/** A provider URL for one connection: `{entity_id}` filled, or a clear error when there is nothing to fill it with. */
export function fillEntity(template: string, entityId: string | null, field: string, provider: string): string {
  if (!template.includes("{entity_id}")) return template;
  if (entityId === null) {
    throw new BifrostError("VALIDATION_FAILED", `the ${field} of provider "${provider}" contains {entity_id}, and this connection has no entity id`, {
      fix: "Connect with an entity id (the org's tenant id): ?entityId=… on the authorize or connect route, --entity-id on `bifrost oauth connect`.",
    });
  }
  return template.replaceAll("{entity_id}", encodeURIComponent(entityId));
}

export const ENTITY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
