import type { FastifyInstance } from "fastify";
import type { Engine } from "../engine.js";
import { EngineMetrics } from "../metrics/metrics.js";

/**
 * GET /metrics (Prometheus text format; access "read": run and workflow names are not for
 * anonymous eyes) and the count of every reply by method, route pattern and status. Patterns, not
 * paths, label the requests: a client cannot blow up the number of series by inventing paths.
 */
export function installMetrics(app: FastifyInstance, engine: Engine): EngineMetrics {
  const metrics = new EngineMetrics({ events: engine.events, storage: engine.storage, logger: engine.logger });
  app.addHook("onResponse", async (request, reply) => {
    metrics.observeHttp(request.method, request.routeOptions.url ?? "(unmatched)", reply.statusCode);
  });
  app.addHook("onClose", async () => metrics.close());
  app.get("/metrics", { config: { access: "read" } }, async (_request, reply) => {
    const text = await metrics.text();
    return reply.type(metrics.contentType).send(text);
  });
  return metrics;
}
