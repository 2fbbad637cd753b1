import type { FastifyPluginAsync } from "fastify";
import { FINISHED_STATUSES, type RunRecord } from "../../../storage/types.js";
import type { Engine } from "../../engine.js";
import { orgScope } from "../auth.js";
import { runView } from "../views.js";
import { MAX_WAIT_MS } from "./runs.js";

/**
 * Cancel and retry. Both answer with the run view (retry: the new run's, with the steps it
 * reused): 200 once it has finished, 202 while it goes on. `wait` (milliseconds, or true for up to
 * 5 minutes) holds the reply until then, as on POST /api/workflows/:name/runs.
 */

const idParams = { type: "object", properties: { id: { type: "string", minLength: 1, maxLength: 64 } }, required: ["id"] } as const;
const controlBody = {
  type: "object",
  additionalProperties: false,
  properties: { wait: { anyOf: [{ type: "boolean" }, { type: "integer", minimum: 0 }] } },
} as const;

interface ControlRequest {
  Params: { id: string };
  Body: { wait?: boolean | number } | undefined;
}

const waitMsOf = (wait: boolean | number | undefined): number => (wait === true ? MAX_WAIT_MS : typeof wait === "number" ? Math.min(wait, MAX_WAIT_MS) : 0);

export const runControlRoutes = (engine: Engine): FastifyPluginAsync =>
  async (app) => {
    /** Without `wait`, the run as the request left it; with it, the run once it ended or the wait ran out. */
    const answer = async (acted: RunRecord, wait: boolean | number | undefined) => {
      const waitMs = waitMsOf(wait);
      const run = waitMs > 0 ? await engine.waitForRun(acted.id, waitMs) : acted;
      return { status: FINISHED_STATUSES.includes(run.status) ? 200 : 202, body: runView(run, await engine.runDetail(run.id)) };
    };

    app.post<ControlRequest>("/api/runs/:id/cancel", { schema: { params: idParams, body: controlBody }, config: { access: "trigger" } }, async (request, reply) => {
      const { run } = await engine.cancel(request.params.id, { org: orgScope(request) });
      const { status, body } = await answer(run, request.body?.wait);
      return reply.status(status).send(body);
    });

    app.post<ControlRequest>("/api/runs/:id/retry", { schema: { params: idParams, body: controlBody }, config: { access: "trigger" } }, async (request, reply) => {
      const { run } = await engine.retry(request.params.id, { org: orgScope(request) });
      const { status, body } = await answer(run, request.body?.wait);
      return reply.status(status).send(body);
    });
  };
