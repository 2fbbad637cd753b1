import type { FastifyPluginAsync } from "fastify";
import type { Engine } from "../../engine.js";
import type { WebhookInfo } from "../../webhooks/webhooks.js";

const nameParams = { type: "object", properties: { name: { type: "string", minLength: 1, maxLength: 64 } }, required: ["name"] } as const;

/** The admin's view of a workflow's webhook: the one reply that carries its secret. */
export function webhookView(info: WebhookInfo) {
  return {
    workflow: info.workflow,
    url: info.url,
    header: info.header,
    secret: info.secret,
    example: info.example,
    createdAt: new Date(info.createdAt).toISOString(),
    rotatedAt: info.rotatedAt === null ? null : new Date(info.rotatedAt).toISOString(),
  };
}

export const webhookRoutes = (engine: Engine): FastifyPluginAsync =>
  async (app) => {
    app.get<{ Params: { name: string } }>("/api/workflows/:name/webhook", { schema: { params: nameParams }, config: { access: "admin" } }, async (request, reply) => {
      void reply.header("cache-control", "no-store");
      return webhookView(await engine.webhooks.info(request.params.name));
    });

    app.post<{ Params: { name: string } }>("/api/workflows/:name/webhook/rotate", { schema: { params: nameParams }, config: { access: "admin" } }, async (request, reply) => {
      void reply.header("cache-control", "no-store");
      return webhookView(await engine.webhooks.rotate(request.params.name));
    });
  };
