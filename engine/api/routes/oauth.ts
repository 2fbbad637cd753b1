import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import { BifrostError, ERROR_CODES } from "../../../common/errors.js";
import { requestedOrg } from "../../auth/org.js";
import type { Engine } from "../../engine.js";
import { ENTITY_ID, PROVIDER_NAME } from "../../oauth/providers.js";
import { orgScope } from "../auth.js";
import { callbackError, callbackPage, PAGE_HEADERS } from "../oauth-page.js";
import * as v from "../oauth-views.js";
import { errors } from "../schemas.js";

/**
 * OAuth over HTTP (DESIGN §6, §9). Providers and connections are managed with an admin key (admin
 * keys have no org); connection status and the doctor need a key that may read, and an org key
 * sees its own org's connections only. The callback needs no key: the provider sends a person's
 * browser there, and the single-use state is what ties it to an authorization this engine began.
 */

const name = { type: "string", minLength: 1, maxLength: 64, pattern: PROVIDER_NAME.source };
const org = { type: "string", maxLength: 128, description: "the org (absent: the global connection, used by every org without its own)" };
const entityId = { type: "string", maxLength: 128, pattern: ENTITY_ID.source, description: "what {entity_id} in the provider's URLs becomes (default: the org's name), e.g. a Microsoft tenant id" };
const nameParams = { type: "object", properties: { name }, required: ["name"] } as const;
const providerParams = { type: "object", properties: { provider: name }, required: ["provider"] } as const;
const orgQuery = { type: "object", additionalProperties: false, properties: { org } } as const;
const connectQuery = { type: "object", additionalProperties: false, properties: { org, entityId } } as const;
const authorizeQuery = {
  type: "object",
  additionalProperties: false,
  properties: { org, entityId, redirect: { type: "boolean", description: "false: answer 200 { url, expiresAt } instead of the redirect (also with Accept: application/json)" } },
} as const;
const listQuery = { type: "object", additionalProperties: false, properties: { provider: name, org } } as const;
const scopeList = { type: "array", maxItems: 100, items: { type: "string", maxLength: 512 } };
const providerBody = {
  type: "object",
  additionalProperties: false,
  required: ["tokenUrl", "clientId"],
  properties: {
    grantType: { type: "string", enum: ["authorization_code", "client_credentials"], description: "default authorization_code" },
    authorizationUrl: { type: ["string", "null"], maxLength: 2048, description: "required for authorization_code; may contain {entity_id}" },
    tokenUrl: { type: "string", maxLength: 2048, description: "may contain {entity_id}" },
    clientId: { type: "string", maxLength: 4096 },
    clientSecret: { type: ["string", "null"], maxLength: 4096, description: "write-only; absent keeps the stored one, null removes it" },
    scopes: { anyOf: [scopeList, { type: "string", maxLength: 51_200 }], description: "an array, or one space-separated string" },
    redirectUri: { type: ["string", "null"], maxLength: 2048, description: "default <BIFROST_PUBLIC_URL>/api/oauth/callback" },
    clientAuth: { type: "string", enum: ["client_secret_post", "client_secret_basic"], description: "how the token endpoint takes the client id and secret: form fields (default) or HTTP Basic" },
  },
} as const;
// The provider adds fields of its own (iss, session_state, scope…) that the code exchange checks or ignores.
const callbackQuery = {
  type: "object",
  additionalProperties: { type: "string", maxLength: 4096 },
  properties: {
    code: { type: "string", maxLength: 4096 },
    state: { type: "string", maxLength: 512 },
    error: { type: "string", maxLength: 256 },
    error_description: { type: "string", maxLength: 4096 },
  },
} as const;

const security = [{ apiKey: [] }];
const tags = ["oauth"];

/** The org an admin route acts on: the one asked for (checked), or null for the global connection. */
function askedOrg(requested: string | undefined): string | null {
  return requestedOrg(requested, "the global connection");
}

/** The org a read route looks at: an org key its own (naming another is a 403), other keys the one asked for. */
function readOrg(request: FastifyRequest, requested: string | undefined): string | null {
  const org = askedOrg(requested);
  const scope = orgScope(request);
  if (scope === undefined || org === null || org === scope) return scope ?? org;
  // The caller named the org, so saying it is out of reach reveals nothing it did not know.
  throw new BifrostError("FORBIDDEN", `This API key is limited to org "${scope}" and cannot diagnose org "${org}"`, {
    details: { org, keyOrg: scope },
    fix: `Leave org out (this key diagnoses "${scope}"), or use a key of org "${org}" or one without an org.`,
  });
}

/** A browser always accepts text/html; the callback answers anything else (scripts, tests) in JSON. */
const acceptsHtml = (request: FastifyRequest) => String(request.headers.accept ?? "").includes("text/html");
/** The authorize link as JSON only when asked for by name: a browser or plain client follows the redirect. */
const asksForJson = (request: FastifyRequest) => !acceptsHtml(request) && String(request.headers.accept ?? "").includes("application/json");

export const oauthRoutes = (engine: Engine): FastifyPluginAsync =>
  async (app) => {
    const oauth = engine.oauth;

    app.put<{ Params: { name: string }; Body: unknown }>(
      "/api/oauth/providers/:name",
      {
        schema: {
          summary: "Create or replace an OAuth provider",
          description:
            "Saving runs the configuration checks (client id and secret format, redirect URI, HTTPS, scopes) and returns those that failed as `warnings`, each with its fix. The client secret is write-only: leave it out to keep the stored one. The provider's connections are kept.",
          tags,
          security,
          params: nameParams,
          body: providerBody,
          response: { 200: { description: "replaced", ...v.savedProvider }, 201: { description: "created", ...v.savedProvider }, ...errors(400, 401, 403, 413, 415) },
        },
        config: { access: "admin" },
      },
      async (request, reply) => {
        const saved = await oauth.putProvider(request.params.name, request.body);
        return reply.status(saved.created ? 201 : 200).send({ provider: v.providerApiView(saved.provider), warnings: saved.warnings });
      },
    );

    app.get(
      "/api/oauth/providers",
      {
        schema: { summary: "List OAuth providers", description: "Provider configuration is management: admin only. No client secret is ever returned, only `clientSecretSet`.", tags, security, response: { 200: { description: "the providers", ...v.providerList }, ...errors(400, 401, 403) } },
        config: { access: "admin" },
      },
      async () => ({ items: (await oauth.listProviders()).map(v.providerApiView) }),
    );

    app.get<{ Params: { name: string } }>(
      "/api/oauth/providers/:name",
      { schema: { summary: "Show an OAuth provider", tags, security, params: nameParams, response: { 200: { description: "the provider", ...v.providerSchema }, ...errors(400, 401, 403, 404) } }, config: { access: "admin" } },
      async (request) => v.providerApiView(await oauth.getProvider(request.params.name)),
    );

    app.delete<{ Params: { name: string } }>(
      "/api/oauth/providers/:name",
      {
        schema: { summary: "Remove an OAuth provider", description: "Removes its connections and their tokens with it.", tags, security, params: nameParams, response: { 204: { description: "removed", type: "null" }, ...errors(400, 401, 403, 404) } },
        config: { access: "admin" },
      },
      async (request, reply) => {
        await oauth.removeProvider(request.params.name);
        return reply.status(204).send();
      },
    );

    app.get<{ Params: { name: string }; Querystring: { org?: string; entityId?: string; redirect?: boolean } }>(
      "/api/oauth/providers/:name/authorize",
      {
        schema: {
          summary: "Start the authorization code flow",
          description:
            "302 to the provider's authorization URL with a single-use `state` (valid 10 minutes) and a PKCE challenge; the provider sends the browser back to /api/oauth/callback. With `Accept: application/json` or `redirect=false`: 200 `{ url, expiresAt }` to open elsewhere.",
          tags,
          security,
          params: nameParams,
          querystring: authorizeQuery,
          response: { 200: { description: "the link to open", ...v.authorizationLink }, 302: { description: "to the provider (Location)", type: "null" }, ...errors(400, 401, 403, 404, 409) },
        },
        config: { access: "admin" },
      },
      async (request, reply) => {
        const { org, entityId, redirect } = request.query;
        const link = await oauth.connections.startAuthorization(request.params.name, askedOrg(org), entityId ?? null);
        void reply.header("cache-control", "no-store");
        if (redirect === false || asksForJson(request)) return { url: link.url, expiresAt: new Date(link.expiresAt).toISOString() };
        return reply.redirect(link.url, 302);
      },
    );

    app.get<{ Querystring: Record<string, string> }>(
      "/api/oauth/callback",
      {
        schema: {
          summary: "Complete the authorization code flow",
          description:
            "Where the provider sends the browser back (needs no key). Uses up the state, redeems the code with the PKCE verifier and stores the tokens. Answers a small page saying what happened and what to do; failures (`error=`, a used or expired state, a refused code) are categorized with their fix (400, or 503 when the provider could not be reached). Clients that do not accept text/html get JSON: `{ ok, provider, org, connection }`, or the error shape with `category`.",
          tags,
          security: [],
          querystring: callbackQuery,
          response: { 200: { description: "connected (an HTML page, or this JSON)", ...v.callbackSuccess }, ...errors(400, 404, 503) },
        },
        config: { access: "public" },
      },
      async (request, reply) => {
        const query = new URLSearchParams();
        for (const [key, value] of Object.entries(request.query)) query.set(key, value);
        const outcome = await oauth.connections.completeAuthorization(query);
        if (!acceptsHtml(request)) {
          void reply.header("cache-control", "no-store");
          if (outcome.ok) return { ok: true, provider: outcome.provider, org: outcome.org, connection: v.connectionApiView(outcome.connection) };
          const body = callbackError(outcome);
          return reply.status(ERROR_CODES[body.error.code].status).send(body);
        }
        const { status, html } = callbackPage(outcome);
        return reply.status(status).headers(PAGE_HEADERS).send(html);
      },
    );

    app.post<{ Params: { provider: string }; Querystring: { org?: string; entityId?: string } }>(
      "/api/oauth/connections/:provider/connect",
      {
        schema: {
          summary: "Connect a client-credentials provider",
          description: "Fetches a token now and stores it as the org's connection (or the global one). A refusal is 400 OAUTH_FAILED with the failure's `category` and `fix`; an unreachable provider 503 OAUTH_UNAVAILABLE.",
          tags,
          security,
          params: providerParams,
          querystring: connectQuery,
          response: { 200: { description: "the connection", ...v.connectionReply }, ...errors(400, 401, 403, 404, 409, 503) },
        },
        config: { access: "admin" },
      },
      async (request) => {
        const { org, entityId } = request.query;
        return { connection: v.connectionApiView(await oauth.connections.connectClientCredentials(request.params.provider, askedOrg(org), entityId ?? null)) };
      },
    );

    app.get<{ Querystring: { provider?: string; org?: string } }>(
      "/api/oauth/connections",
      {
        schema: {
          summary: "List OAuth connections",
          description: "Status (`healthy`, `expiring`, `refresh_failed`, `needs_reauth`), expiry, granted scopes, last refresh and last failure with its fix; never a token. An org key sees its own org's connections only.",
          tags,
          security,
          querystring: listQuery,
          response: { 200: { description: "the connections", ...v.connectionList }, ...errors(400, 401, 403) },
        },
        config: { access: "read" },
      },
      async (request) => {
        const { provider } = request.query;
        const asked = request.query.org === undefined ? undefined : askedOrg(request.query.org);
        const scope = orgScope(request);
        if (scope !== undefined && asked !== undefined && asked !== scope) return { items: [] };
        const org = scope ?? asked;
        const items = await oauth.connections.list({ ...(provider !== undefined && { provider }), ...(org !== undefined && { org }) });
        return { items: items.map(v.connectionApiView) };
      },
    );

    app.post<{ Params: { provider: string }; Querystring: { org?: string } }>(
      "/api/oauth/connections/:provider/refresh",
      {
        schema: {
          summary: "Refresh a connection now",
          description: "A new token from the provider (refresh token, or client credentials again). A connection that needs re-authorization is 409 OAUTH_NEEDS_REAUTH with its last failure's fix, without calling the provider.",
          tags,
          security,
          params: providerParams,
          querystring: orgQuery,
          response: { 200: { description: "the connection", ...v.connectionReply }, ...errors(400, 401, 403, 404, 409, 503) },
        },
        config: { access: "admin" },
      },
      async (request) => ({ connection: v.connectionApiView(await oauth.connections.refreshConnection(request.params.provider, askedOrg(request.query.org))) }),
    );

    app.delete<{ Params: { provider: string }; Querystring: { org?: string } }>(
      "/api/oauth/connections/:provider",
      {
        schema: {
          summary: "Remove a connection",
          description: "Forgets the connection and its tokens; the provider keeps its grant until it expires or is revoked there.",
          tags,
          security,
          params: providerParams,
          querystring: orgQuery,
          response: { 204: { description: "removed", type: "null" }, ...errors(400, 401, 403, 404) },
        },
        config: { access: "admin" },
      },
      async (request, reply) => {
        await oauth.connections.remove(request.params.provider, askedOrg(request.query.org));
        return reply.status(204).send();
      },
    );

    app.get<{ Params: { name: string }; Querystring: { org?: string } }>(
      "/api/oauth/providers/:name/diagnose",
      {
        schema: {
          summary: "Diagnose a provider and its connection",
          description:
            "The troubleshooting checklist as data: configuration, reachability of the authorization and token endpoints, the token's state (the org's connection, else the global one) and the last failure, each check with its fix. `ok` is false when any check failed. An org key diagnoses its own org.",
          tags,
          security,
          params: nameParams,
          querystring: orgQuery,
          response: { 200: { description: "the checks", ...v.diagnosisSchema }, ...errors(400, 401, 403, 404) },
        },
        config: { access: "read" },
      },
      async (request) => oauth.diagnose(request.params.name, readOrg(request, request.query.org)),
    );
  };
