import type { FastifyInstance, RouteOptions } from "fastify";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The route reads its body's bytes itself (a webhook's signature covers them): no body schema. */
    rawBody?: boolean;
  }
}

/** A query string or body that may hold no field at all. */
const NO_FIELDS = { type: "object", additionalProperties: false, properties: {} } as const;
const BODY_METHODS = ["POST", "PUT", "PATCH", "DELETE"];

/**
 * Strict input on every route, including routes that declare no schema for a part: a route
 * without a query schema takes no query fields, and one without a body schema no body fields,
 * so `?bogus=1` or `{"bogus": 1}` is a 400 instead of being silently ignored. Call before any
 * route is added.
 */
export function installStrictSchemas(app: FastifyInstance): void {
  app.addHook("onRoute", (route: RouteOptions) => {
    // The documentation page and its assets belong to @fastify/swagger-ui.
    if (route.url === "/docs" || route.url.startsWith("/docs/")) return;
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((m) => m.toUpperCase());
    const schema = { ...route.schema };
    schema.querystring ??= NO_FIELDS;
    if (schema.body === undefined && !route.config?.rawBody && methods.some((m) => BODY_METHODS.includes(m))) schema.body = NO_FIELDS;
    route.schema = schema;
  });
}
