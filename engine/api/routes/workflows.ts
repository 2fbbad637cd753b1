import type { FastifyPluginAsync } from "fastify";
import type { Engine } from "../../engine.js";
import { workflowListView, workflowView } from "../views.js";

const nameParams = {
  type: "object",
  properties: { name: { type: "string", minLength: 1, maxLength: 64 } },
  required: ["name"],
} as const;

/** The module's text; the 1 MB body limit bounds it, and the registry checks its byte size too. */
const sourceBody = {
  type: "object",
  additionalProperties: false,
  required: ["source"],
  properties: { source: { type: "string", minLength: 1 } },
} as const;

export const workflowRoutes = (engine: Engine): FastifyPluginAsync =>
  async (app) => {
    app.get("/api/workflows", { config: { access: "read" } }, async () => {
      // Another engine process may have registered or removed workflows since.
      await engine.registry.sync();
      return workflowListView(engine.registry, engine.now());
    });

    app.get<{ Params: { name: string } }>("/api/workflows/:name", { schema: { params: nameParams }, config: { access: "read" } }, async (request) => {
      const workflow = await engine.getWorkflow(request.params.name);
      return workflowView(workflow, engine.registry.problemFor(workflow), engine.now());
    });

    // Workflows are shared by every org; admin keys have none (engine/auth/key-store.ts).
    // 201 when the name is new, 200 when it replaced a version (or the text was the version serving).
    app.put<{ Params: { name: string }; Body: { source: string } }>(
      "/api/workflows/:name",
      { schema: { params: nameParams, body: sourceBody }, config: { access: "admin" } },
      async (request, reply) => {
        const { workflow, created } = await engine.registry.registerSource(request.params.name, request.body.source);
        if (created) void reply.header("location", `/api/workflows/${workflow.definition.name}`);
        return reply.status(created ? 201 : 200).send(workflowView(workflow, engine.registry.problemFor(workflow), engine.now()));
      },
    );

    // Its runs are kept; queued and running ones finish on their version.
    app.delete<{ Params: { name: string } }>("/api/workflows/:name", { schema: { params: nameParams }, config: { access: "admin" } }, async (request, reply) => {
      await engine.registry.unregisterSource(request.params.name);
      return reply.status(204).send();
    });
  };
