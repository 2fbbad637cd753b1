import { Ajv } from "ajv";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Engine } from "../engine.js";
import "./access.js";
import { installAuth } from "./auth.js";
import { BODY_LIMIT, installErrorHandling, MAX_PARAM_LENGTH, onClientError, onFrameworkError } from "./errors.js";
import { installJsonBodyParser } from "./json-body.js";
import { installRouteTable } from "./route-table.js";
import { healthRoutes } from "./routes/health.js";
import { hookRoutes } from "./routes/hooks.js";
import { webhookRoutes } from "./routes/webhooks.js";
import { installStrictSchemas } from "./strict.js";
import { installMetrics } from "./metrics.js";
import { installOpenApi } from "./openapi.js";
import { runControlRoutes } from "./routes/run-control.js";
import { runRoutes } from "./routes/runs.js";
import { oauthRoutes } from "./routes/oauth.js";
import { scheduleRoutes } from "./routes/schedules.js";
import { stateRoutes } from "./routes/state.js";
import { workflowRoutes } from "./routes/workflows.js";

export interface AppOptions {
  engine: Engine;
}

/**
 * Builds the HTTP API without listening (tests use inject(); `start` calls listen()).
 * Bodies are validated strictly: no coercion, no silent stripping of unknown fields.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { engine } = options;
  const app = Fastify({
    loggerInstance: engine.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Replies fastify and Node would write in their own shape go through errors.ts instead:
    // requests during close, bad URL encoding, and what the HTTP parser refuses.
    return503OnClosing: false,
    frameworkErrors: onFrameworkError,
    clientErrorHandler: (err, socket) => onClientError(err, socket, engine.logger),
  });
  const bodyAjv = new Ajv({ allErrors: true, removeAdditional: false, coerceTypes: false, useDefaults: true, strict: false });
  // Query strings and path params are text: coercing "5" to 5 is intended there.
  const queryAjv = new Ajv({ allErrors: true, removeAdditional: false, coerceTypes: true, useDefaults: true, strict: false });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === "body" ? bodyAjv : queryAjv).compile(schema));
  // Response schemas document replies (OpenAPI); they must never strip or coerce what a route sends.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  const routes = installRouteTable(app);
  installStrictSchemas(app);
  installErrorHandling(app, routes);
  installJsonBodyParser(app);
  // Every route must declare its access; checked over the route table once all routes exist.
  installAuth(app, engine);
  // Before any route is added too: the document is built from the routes as they are added.
  await installOpenApi(app);
  installMetrics(app, engine);
  await app.register(healthRoutes(engine));
  await app.register(workflowRoutes(engine));
  await app.register(runRoutes(engine));
  await app.register(scheduleRoutes(engine));
  await app.register(stateRoutes(engine));
  await app.register(webhookRoutes(engine));
  await app.register(hookRoutes(engine));
  await app.register(runControlRoutes(engine));
  await app.register(oauthRoutes(engine));
  return app;
}
