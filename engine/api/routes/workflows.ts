import type { FastifyPluginAsync } from "fastify";
import type { Engine } from "../../engine.js";
import { workflowListView, workflowView } from "../views.js";

const nameParams = {
  type: "object",
  properties: { name: { type: "string", minLength: 1, maxLength: 64 } },
  required: ["name"],
} as const;

export const workflowRoutes = (engine: Engine): FastifyPluginAsync =>
  async (app) => {
    app.get("/api/workflows", { config: { access: "read" } }, async () => {
      return workflowListView(engine.registry, engine.now());
    });

    app.get<{ Params: { name: string } }>("/api/workflows/:name", { schema: { params: nameParams }, config: { access: "read" } }, async (request) => {
      const workflow = await engine.getWorkflow(request.params.name);
      return workflowView(workflow, engine.registry.problemFor(workflow), engine.now());
    });
  };
