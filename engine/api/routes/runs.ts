import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { FINISHED_STATUSES, LOG_LEVELS, type LogLevel, type RunStatus, type RunTrigger } from "../../../storage/types.js";
import { triggerOrg } from "../../auth/org.js";
import type { Engine } from "../../engine.js";
import { orgScope } from "../auth.js";
import { decodeCursor, encodeCursor, parseTime } from "../cursor.js";
import { streamLogs } from "../log-stream.js";
import { logView, runView } from "../views.js";

/** Longest a trigger request may hold the connection with `wait`. */
export const MAX_WAIT_MS = 5 * 60_000;
const STATUSES: RunStatus[] = ["queued", "running", "succeeded", "failed", "cancelled", "timed_out"];
const TRIGGERS: RunTrigger[] = ["api", "schedule", "webhook", "cli", "retry"];

const triggerBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    params: {},
    org: { type: ["string", "null"], minLength: 1, maxLength: 128 },
    idempotencyKey: { type: ["string", "null"], minLength: 1, maxLength: 200 },
    wait: { anyOf: [{ type: "boolean" }, { type: "integer", minimum: 0 }] },
  },
} as const;

const listQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    workflow: { type: "string", maxLength: 64 },
    status: { type: "string", enum: STATUSES },
    trigger: { type: "string", enum: TRIGGERS },
    org: { type: "string", maxLength: 128 },
    since: { type: "string", maxLength: 64 },
    until: { type: "string", maxLength: 64 },
    limit: { type: "integer", minimum: 1, maximum: 200, default: 50 },
    cursor: { type: "string", maxLength: 200 },
  },
} as const;

const logsQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    level: { type: "string", enum: LOG_LEVELS },
    after: { type: "integer", minimum: 0 },
    limit: { type: "integer", minimum: 1, maximum: 5000, default: 1000 },
  },
} as const;

const idParams = { type: "object", properties: { id: { type: "string", minLength: 1, maxLength: 64 } }, required: ["id"] } as const;
const nameParams = { type: "object", properties: { name: { type: "string", minLength: 1, maxLength: 64 } }, required: ["name"] } as const;

interface TriggerRequest {
  Params: { name: string };
  Body: { params?: unknown; org?: string | null; idempotencyKey?: string | null; wait?: boolean | number } | undefined;
}
interface ListRequest {
  Querystring: { workflow?: string; status?: RunStatus; trigger?: RunTrigger; org?: string; since?: string; until?: string; limit: number; cursor?: string };
}
interface LogsRequest {
  Params: { id: string };
  Querystring: { level?: LogLevel; after?: number; limit: number };
}

export const runRoutes = (engine: Engine): FastifyPluginAsync =>
  async (app) => {
    const openStreams = new Set<() => void>();
    app.addHook("preClose", async () => {
      for (const end of [...openStreams]) end();
    });

    app.post<TriggerRequest>("/api/workflows/:name/runs", { schema: { params: nameParams, body: triggerBody }, config: { access: "trigger" } }, async (request, reply) => {
      const body = request.body ?? {};
      const { run, created } = await engine.triggerRun(request.params.name, {
        params: body.params,
        org: triggerOrg(orgScope(request), body.org),
        idempotencyKey: body.idempotencyKey ?? null,
        trigger: "api",
      });
      if (!created) void reply.header("idempotent-replayed", "true");
      const waitMs = body.wait === true ? MAX_WAIT_MS : typeof body.wait === "number" ? Math.min(body.wait, MAX_WAIT_MS) : 0;
      if (waitMs === 0) return reply.status(202).send({ id: run.id, status: run.status });
      const current = await engine.waitForRun(run.id, waitMs);
      return reply.status(FINISHED_STATUSES.includes(current.status) ? 200 : 202).send(runView(current, await engine.runDetail(run.id)));
    });

    app.get<ListRequest>("/api/runs", { schema: { querystring: listQuery }, config: { access: "read" } }, async (request) => {
      const q = request.query;
      // An org key lists its own org only: asking for another org is an empty page.
      const scope = orgScope(request);
      if (scope !== undefined && q.org !== undefined && q.org !== scope) return { items: [], nextCursor: null };
      const org = scope ?? q.org;
      const runs = await engine.listRuns({
        ...(q.workflow !== undefined && { workflow: q.workflow }),
        ...(q.status !== undefined && { status: q.status }),
        ...(q.trigger !== undefined && { trigger: q.trigger }),
        ...(org !== undefined && { org }),
        ...(q.since !== undefined && { since: parseTime(q.since, "since") }),
        ...(q.until !== undefined && { until: parseTime(q.until, "until") }),
        ...(q.cursor !== undefined && { beforeId: decodeCursor(q.cursor) }),
        limit: q.limit + 1,
      });
      const page = runs.slice(0, q.limit);
      const last = page[page.length - 1];
      return { items: page.map((r) => runView(r)), nextCursor: runs.length > q.limit && last ? encodeCursor(last.id) : null };
    });

    app.get<{ Params: { id: string } }>("/api/runs/:id", { schema: { params: idParams }, config: { access: "read" } }, async (request) => {
      const { run, ...detail } = await engine.getRun(request.params.id, { org: orgScope(request) });
      return runView(run, detail);
    });

    app.get<LogsRequest>("/api/runs/:id/logs", { schema: { params: idParams, querystring: logsQuery }, config: { access: "read" } }, async (request: FastifyRequest<LogsRequest>, reply: FastifyReply) => {
      const { id } = request.params;
      const { level, limit } = request.query;
      const lastEventId = Number(request.headers["last-event-id"]);
      const after = request.query.after ?? (Number.isInteger(lastEventId) ? lastEventId : undefined);
      if ((request.headers.accept ?? "").includes("text/event-stream")) {
        await engine.getRun(id, { org: orgScope(request) });
        return streamLogs(engine, request, reply, { runId: id, open: openStreams, ...(after !== undefined && { after }), ...(level !== undefined && { level }) });
      }
      const lines = await engine.listLogs(id, { ...(after !== undefined && { afterSeq: after }), ...(level !== undefined && { minLevel: level }), limit }, { org: orgScope(request) });
      const last = lines[lines.length - 1];
      return { items: lines.map(logView), nextAfter: lines.length === limit && last ? last.seq : null };
    });
  };
