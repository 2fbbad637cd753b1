import type { FastifyPluginAsync } from "fastify";
import type { Engine } from "../../engine.js";
import { problemView, workflowView } from "../views.js";

const nameParams = {
  type: "object",
  properties: { name: { type: "string", minLength: 1, maxLength: 64 } },
  required: ["name"],
} as const;

export const workflowRoutes = (engine: Engine): FastifyPluginAsync =>
  async (app) => {
    app.get("/api/workflows", { config: { access: "read" } }, async () => {
      const now = engine.now();
      const items = engine.registry.list().map((w) => workflowView(w, engine.registry.problemFor(w), now));
      // Modules that failed to load and have no good version to fall back on.
      const names = new Set(items.map((i) => i.file));
      const problems = engine.registry
        .problems()
        .filter((p) => p.file === null || !names.has(p.file))
        .map(problemView);
      return { items, problems };
    });

    app.get<{ Params: { name: string } }>("/api/workflows/:name", { schema: { params: nameParams }, config: { access: "read" } }, async (request) => {
      const workflow = await engine.getWorkflow(request.params.name);
      return workflowView(workflow, engine.registry.problemFor(workflow), engine.now());
    });
  };
