import type { FastifyPluginAsync } from "fastify";
import type { Engine } from "../../engine.js";

export const healthRoutes = (engine: Engine): FastifyPluginAsync =>
  async (app) => {
    app.get("/health", { config: { access: "public" } }, async (_request, reply) => {
      const health = await engine.health();
      return reply.status(health.ok ? 200 : 503).send({ status: health.ok ? "ok" : "unavailable", database: health.database, dialect: engine.storage.dialect });
    });
  };
