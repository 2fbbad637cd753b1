import type { FastifyPluginAsync } from "fastify";
import type { Engine } from "../../engine.js";
import { BifrostError } from "../../../common/errors.js";
import { requestedOrg } from "../../auth/org.js";
import { parseDuration } from "../../duration.js";
import type { WebhookInfo } from "../../webhooks/webhooks.js";

const nameParams = { type: "object", properties: { name: { type: "string", minLength: 1, maxLength: 64 } }, required: ["name"] } as const;

/** The admin's view of a workflow's webhook: the one reply that carries its secret. */
export function webhookView(info: WebhookInfo) {
  return {
    workflow: info.workflow,
    org: info.org,
    url: info.url,
    header: info.header,
    secret: info.secret,
    example: info.example,
    createdAt: new Date(info.createdAt).toISOString(),
    rotatedAt: info.rotatedAt === null ? null : new Date(info.rotatedAt).toISOString(),
    previousValidUntil: info.previousValidUntil === null ? null : new Date(info.previousValidUntil).toISOString(),
  };
}

/** `?grace=` of a rotation: "0" (at once) or a duration such as "1h"; absent, the default grace. */
export function readGrace(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (text.trim() === "0") return 0;
  const ms = parseDuration(text);
  if (ms === undefined) throw new BifrostError("VALIDATION_FAILED", `grace: ${JSON.stringify(text.slice(0, 40))} is not a duration; use 0 (the old secret stops at once) or e.g. 30m, 24h, 7d`, { details: [{ field: "grace", message: "a duration such as 24h, or 0" }] });
  return ms;
}

const orgProperty = { type: "string", maxLength: 128, description: "the org whose hook this is (its own secret; runs it starts belong to the org); absent: the org-less hook" } as const;
const infoQuery = { type: "object", additionalProperties: false, properties: { org: orgProperty } } as const;
const rotateQuery = { type: "object", additionalProperties: false, properties: { org: orgProperty, grace: { type: "string", maxLength: 32, description: "how long the old secret keeps working: 0, or a duration such as 1h (default 24h, at most 7d)" } } } as const;

/** `?org=` of a hook: an org name (checked), or null for the org-less hook. */
export function hookOrg(text: string | undefined): string | null {
  return requestedOrg(text, "the org-less hook");
}

export const webhookRoutes = (engine: Engine): FastifyPluginAsync =>
  async (app) => {
    app.get<{ Params: { name: string }; Querystring: { org?: string } }>("/api/workflows/:name/webhook", { schema: { params: nameParams, querystring: infoQuery }, config: { access: "admin" } }, async (request, reply) => {
      void reply.header("cache-control", "no-store");
      return webhookView(await engine.webhooks.info(request.params.name, hookOrg(request.query.org)));
    });

    app.post<{ Params: { name: string }; Querystring: { grace?: string; org?: string } }>("/api/workflows/:name/webhook/rotate", { schema: { params: nameParams, querystring: rotateQuery }, config: { access: "admin" } }, async (request, reply) => {
      void reply.header("cache-control", "no-store");
      return webhookView(await engine.webhooks.rotate(request.params.name, readGrace(request.query.grace), hookOrg(request.query.org)));
    });
  };
