import type { RouteOptions } from "fastify";
import type { Access } from "./access.js";
import * as s from "./schemas.js";

/**
 * What each route is for and what it answers, for the OpenAPI document (/openapi.json, /docs).
 * Kept beside, not inside, the route files so that the routes stay readable; `documentRoute`
 * merges an entry into its route's schema as the route is added (a route's own schema wins).
 * test/openapi.test.ts fails for a route without an entry, and checks real replies against the
 * response schemas.
 */
export interface RouteDoc {
  summary: string;
  description?: string;
  tags: string[];
  response?: Record<string, Record<string, unknown>>;
}

const json = (schema: Record<string, unknown>, description: string) => ({ description, ...schema });

export const ROUTE_DOCS: Record<string, RouteDoc> = {
  "GET /health": {
    summary: "Liveness and readiness",
    description: "200 while the database answers, 503 when it does not. Needs no key.",
    tags: ["engine"],
    response: { 200: json(s.health, "the engine and its database are up"), 503: json(s.health, "the database does not answer") },
  },
  "GET /metrics": {
    summary: "Prometheus metrics",
    description: "Text exposition format: runs started and finished, queue depth, run durations, sandbox limit hits, HTTP requests. Needs a key that may read.",
    tags: ["engine"],
    response: { 200: { description: "Prometheus text format (text/plain; version=0.0.4)", type: "string" }, ...s.errors(401, 403) },
  },
  "GET /api/workflows": {
    summary: "List workflows",
    description: "The registered workflows, and the modules that failed to load and have no good version.",
    tags: ["workflows"],
    response: { 200: json(s.workflowList, "workflows and problems"), ...s.errors(401, 403) },
  },
  "GET /api/workflows/:name": {
    summary: "Show a workflow",
    tags: ["workflows"],
    response: { 200: json(s.workflow, "the workflow"), ...s.errors(400, 401, 403, 404) },
  },
  "PUT /api/workflows/:name": {
    summary: "Register or replace a workflow from source",
    description: "Compiles and validates the module text in `source`; its name must match the path. A compile or validation error is a 400 with file, line and reason, and the previous version keeps running.",
    tags: ["workflows"],
    response: { 200: json(s.workflow, "the workflow: a version was replaced (or the text was the version serving)"), 201: json(s.workflow, "the workflow: the name was new"), ...s.errors(400, 401, 403, 409, 413, 415) },
  },
  "DELETE /api/workflows/:name": {
    summary: "Unregister a workflow",
    description: "Its runs are kept; queued and running runs finish on the version they were triggered with. A workflow defined by a file is a 409 WORKFLOW_FILE_MANAGED.",
    tags: ["workflows"],
    response: { 204: { description: "unregistered", type: "null" }, ...s.errors(400, 401, 403, 404, 409) },
  },
  "POST /api/workflows/:name/runs": {
    summary: "Start a run",
    description:
      "Every field is optional; no body at all is a run with default params. With `wait` the reply is the run once it finished (200) or as it stands when the wait elapses (202). " +
      "An `idempotencyKey` is scoped to the workflow: the same key with the same params and org returns the first run (header `idempotent-replayed: true`), with other params or org it is a 409 IDEMPOTENCY_CONFLICT.",
    tags: ["runs"],
    response: {
      200: json(s.runWithSteps, "the finished run (with wait)"),
      202: { description: "the run was queued: its id and status, or with wait the run as it stands", anyOf: [s.accepted, s.runWithSteps] },
      ...s.errors(400, 401, 403, 404, 409, 413, 415),
    },
  },
  "GET /api/runs": {
    summary: "List runs",
    description: "Newest first, `limit` per page; pass `nextCursor` back as `cursor` for the next page. An org key sees its org only.",
    tags: ["runs"],
    response: { 200: json(s.runPage, "a page of runs"), ...s.errors(400, 401, 403) },
  },
  "GET /api/runs/:id": {
    summary: "Show a run with its steps",
    tags: ["runs"],
    response: { 200: json(s.runWithSteps, "the run"), ...s.errors(400, 401, 403, 404) },
  },
  "GET /api/runs/:id/logs": {
    summary: "A run's log lines",
    description: "A page of lines after `after`; with `Accept: text/event-stream` a live stream (`event: log`, `id: <seq>`) until the run ends (`event: end`); `Last-Event-ID` resumes.",
    tags: ["runs"],
    response: { 200: json(s.logPage, "a page of log lines (or an event stream)"), ...s.errors(400, 401, 403, 404) },
  },
  "POST /api/runs/:id/cancel": {
    summary: "Cancel a run",
    description: "A queued run never starts; a running one is stopped and ends cancelled. A finished run is a 409. With `wait`, the run once it ended (200) or as it stands when the wait elapses (202).",
    tags: ["runs"],
    response: { 200: json(s.runWithSteps, "the run, ended"), 202: json(s.runWithSteps, "the run, not ended yet"), ...s.errors(400, 401, 403, 404, 409) },
  },
  "POST /api/runs/:id/retry": {
    summary: "Retry a failed, timed-out or cancelled run",
    description: "A new run that reuses the run's finished steps (trigger `retry`, `retryOf` the run). With `wait`, the new run once it ended (200) or as it stands (202).",
    tags: ["runs"],
    response: { 200: json(s.runWithSteps, "the new run, ended"), 202: json(s.runWithSteps, "the new run, not ended yet"), ...s.errors(400, 401, 403, 404, 409) },
  },
  "POST /api/hooks/:workflow": {
    summary: "Start a run from a webhook",
    description:
      "For workflows that declare `webhook: true`. The JSON body is the run's params. Authenticated by `X-Bifrost-Signature: sha256=<hex HMAC-SHA256 of the raw body>` under the workflow's webhook secret, " +
      "or by an API key that may trigger. An optional `Idempotency-Key` header makes redeliveries return the first run.",
    tags: ["webhooks"],
    response: { 202: json(s.accepted, "the run was queued"), ...s.errors(400, 401, 403, 404, 409, 413, 415) },
  },
  "GET /api/workflows/:name/webhook": {
    summary: "Show a workflow's webhook secret",
    description: "The secret, the header to send and a curl example that signs a body with openssl. Admin only; the secret appears in no other reply or log.",
    tags: ["webhooks"],
    response: { 200: json(s.webhookInfo, "the webhook"), ...s.errors(400, 401, 403, 404) },
  },
  "POST /api/workflows/:name/webhook/rotate": {
    summary: "Rotate a workflow's webhook secret",
    description: "A new secret replaces the old one at once.",
    tags: ["webhooks"],
    response: { 200: json(s.webhookInfo, "the webhook with its new secret"), ...s.errors(400, 401, 403, 404) },
  },
};

/** Routes that are not part of the API itself (the documentation and its assets). */
export function isDocumentationRoute(url: string): boolean {
  return url === "/openapi.json" || url === "/docs" || url.startsWith("/docs/");
}

const SECURITY: Record<Access, Record<string, string[]>[]> = {
  public: [],
  read: [{ apiKey: [] }],
  trigger: [{ apiKey: [] }],
  admin: [{ apiKey: [] }],
  webhook: [{ webhookSignature: [] }, { apiKey: [] }],
};

/** The route's entry merged into its schema (the route's own fields win). */
export function documentRoute(route: RouteOptions): void {
  const method = (Array.isArray(route.method) ? route.method[0] : route.method)?.toUpperCase() ?? "";
  if (isDocumentationRoute(route.url)) {
    // The documentation is public and not part of the document it serves.
    route.config = { ...route.config, access: route.config?.access ?? "public" };
    route.schema = { ...route.schema, hide: true };
    return;
  }
  const doc = ROUTE_DOCS[`${method} ${route.url}`];
  if (!doc) return;
  const access = route.config?.access;
  route.schema = {
    summary: doc.summary,
    ...(doc.description !== undefined && { description: doc.description }),
    tags: doc.tags,
    ...(access !== undefined && { security: SECURITY[access] }),
    ...route.schema,
    response: { ...doc.response, ...(route.schema?.response as Record<string, unknown> | undefined) },
  };
}
