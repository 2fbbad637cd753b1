import type { FastifyPluginAsync } from "fastify";
import type { Engine } from "../../engine.js";
import { describeCron } from "../../scheduler/describe.js";
import type { ScheduleView } from "../../scheduler/scheduler.js";
import { orgScope } from "../auth.js";
import { errors, RUN_STATUSES, run as runSchema } from "../schemas.js";
import { runView } from "../views.js";

/**
 * Schedules: list them, pause, resume and fire now. One row per workflow and org (schedule.orgs).
 * Reading needs a key that may read; pausing, resuming and triggering one that may trigger runs
 * (operator or admin): they are operations on runs-to-be, like cancel and retry. An org key sees
 * and operates only its org's schedules; another org's answers as one that does not exist.
 */

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** GET /api/schedules items, and `bifrost schedules list --json`. */
export function scheduleView(v: ScheduleView) {
  return {
    workflow: v.workflow,
    org: v.org,
    cron: v.cron,
    description: describeCron(v.cron),
    timezone: v.timezone,
    overlap: v.overlap,
    catchUp: v.catchUp,
    nextFireAt: iso(v.nextFireAt),
    lastFireAt: iso(v.lastFireAt),
    lastRunId: v.lastRunId,
    lastRunStatus: v.lastRunStatus,
    paused: v.paused,
    pausedAt: iso(v.pausedAt),
  };
}

const time = { type: ["string", "null"], format: "date-time" };
const scheduleSchema = {
  type: "object",
  additionalProperties: false,
  required: ["workflow", "org", "cron", "description", "timezone", "overlap", "catchUp", "nextFireAt", "lastFireAt", "lastRunId", "lastRunStatus", "paused", "pausedAt"],
  properties: {
    workflow: { type: "string" },
    org: { type: ["string", "null"] },
    cron: { type: "string" },
    description: { type: "string", description: "the cron expression in words" },
    timezone: { type: "string" },
    overlap: { type: "string", enum: ["skip", "queue", "allow"] },
    catchUp: { type: "string", enum: ["none", "latest", "all"] },
    nextFireAt: { ...time, description: "null while paused, or when the expression never fires again" },
    lastFireAt: time,
    lastRunId: { type: ["string", "null"] },
    lastRunStatus: { anyOf: [{ type: "null" }, { type: "string", enum: RUN_STATUSES }] },
    paused: { type: "boolean" },
    pausedAt: time,
  },
};
const scheduleList = { type: "object", additionalProperties: false, required: ["items"], properties: { items: { type: "array", items: scheduleSchema } } };
const triggered = { type: "object", additionalProperties: false, required: ["runs"], properties: { runs: { type: "array", items: runSchema } } };

const listQuery = {
  type: "object",
  additionalProperties: false,
  properties: { workflow: { type: "string", maxLength: 64 }, org: { type: "string", maxLength: 128 } },
} as const;
const workflowParams = { type: "object", properties: { workflow: { type: "string", minLength: 1, maxLength: 64 } }, required: ["workflow"] } as const;
const orgBody = {
  type: "object",
  additionalProperties: false,
  properties: { org: { type: ["string", "null"], maxLength: 128, description: "one org of schedule.orgs (null: the schedule without orgs); absent: every org the key may act on" } },
} as const;

interface OperationRequest {
  Params: { workflow: string };
  Body: { org?: string | null } | undefined;
}

const security = [{ apiKey: [] }];

export const scheduleRoutes = (engine: Engine): FastifyPluginAsync =>
  async (app) => {
    const scheduler = engine.scheduling.scheduler;

    app.get<{ Querystring: { workflow?: string; org?: string } }>(
      "/api/schedules",
      {
        schema: {
          summary: "List schedules",
          description: "One item per workflow and org (schedule.orgs), with the cron in words, the next and last fire and the last run's status. An org key sees its org's only.",
          tags: ["schedules"],
          security,
          querystring: listQuery,
          response: { 200: { description: "the schedules", ...scheduleList }, ...errors(400, 401, 403) },
        },
        config: { access: "read" },
      },
      async (request) => {
        const { workflow, org } = request.query;
        const views = await scheduler.list({ ...(workflow !== undefined && { workflow }), ...(org !== undefined && { org }) }, { org: orgScope(request) });
        return { items: views.map(scheduleView) };
      },
    );

    const operation = (verb: "pause" | "resume", summary: string, description: string) =>
      app.post<OperationRequest>(
        `/api/schedules/:workflow/${verb}`,
        {
          schema: {
            summary,
            description,
            tags: ["schedules"],
            security,
            params: workflowParams,
            body: orgBody,
            response: { 200: { description: "the schedules it acted on, as they are now", ...scheduleList }, ...errors(400, 401, 403, 404) },
          },
          config: { access: "trigger" },
        },
        async (request) => {
          const options = { ...(request.body?.org !== undefined && { org: request.body.org }), scope: { org: orgScope(request) } };
          const views = verb === "pause" ? await scheduler.pause(request.params.workflow, options) : await scheduler.resume(request.params.workflow, options);
          return { items: views.map(scheduleView) };
        },
      );

    operation("pause", "Pause a schedule", "Body `{ org? }`. No fire happens while paused, none is kept for later (a pending one is dropped). Survives restarts and re-registration.");
    operation("resume", "Resume a schedule", "Body `{ org? }`. Fires again from the next fire after now: the paused time is not replayed.");

    app.post<OperationRequest>(
      "/api/schedules/:workflow/trigger",
      {
        schema: {
          summary: "Fire a schedule now",
          description: "Body `{ org? }`. One run per org (trigger `schedule`, `scheduledFor` now), paused or not and whatever the overlap policy; the next fire is unchanged.",
          tags: ["schedules"],
          security,
          params: workflowParams,
          body: orgBody,
          response: { 202: { description: "the runs it queued", ...triggered }, ...errors(400, 401, 403, 404) },
        },
        config: { access: "trigger" },
      },
      async (request, reply) => {
        const options = { ...(request.body?.org !== undefined && { org: request.body.org }), scope: { org: orgScope(request) } };
        const runs = await scheduler.trigger(request.params.workflow, options);
        return reply.status(202).send({ runs: runs.map((r) => runView(r)) });
      },
    );
  };
