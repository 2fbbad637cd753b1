import type { FastifyPluginAsync } from "fastify";
import type { Engine } from "../../engine.js";
import { MAX_STATE_KEY, STATE_KEY_PATTERN } from "../../state/keys.js";
import { getState, listState, resetState } from "../../state/workflow-state.js";
import { orgScope } from "../auth.js";
import { errors } from "../schemas.js";

/**
 * A workflow's ctx.state, for a person debugging a sync: read with a key that may read, reset one
 * key with an admin key. `?org=` picks the org (without it: the runs without an org); an org key
 * reads its own org, and another org's state answers as absent.
 */

const item = {
  type: "object",
  additionalProperties: false,
  required: ["key", "value", "updatedAt", "updatedByRun"],
  properties: {
    key: { type: "string" },
    value: { description: "the JSON value a run stored with ctx.state.set" },
    updatedAt: { type: "string", format: "date-time" },
    updatedByRun: { type: ["string", "null"], description: "the run whose ctx.state.set wrote it" },
  },
};
const list = {
  type: "object",
  additionalProperties: false,
  required: ["workflow", "org", "items"],
  properties: { workflow: { type: "string" }, org: { type: ["string", "null"], description: "the org read (an org key's own when it names none)" }, items: { type: "array", items: item } },
};

const orgQuery = {
  type: "object",
  additionalProperties: false,
  properties: { org: { type: "string", maxLength: 128, description: "the org whose state to read; absent: the runs without an org (an org key: its own org)" } },
} as const;
const nameParams = { type: "object", properties: { name: { type: "string", minLength: 1, maxLength: 64 } }, required: ["name"] } as const;
const keyParams = {
  type: "object",
  properties: { name: { type: "string", minLength: 1, maxLength: 64 }, key: { type: "string", minLength: 1, maxLength: MAX_STATE_KEY, pattern: STATE_KEY_PATTERN.source } },
  required: ["name", "key"],
} as const;

interface KeyRequest {
  Params: { name: string; key: string };
  Querystring: { org?: string };
}

const security = [{ apiKey: [] }];

export const stateRoutes = (engine: Engine): FastifyPluginAsync =>
  async (app) => {
    app.get<{ Params: { name: string }; Querystring: { org?: string } }>(
      "/api/workflows/:name/state",
      {
        schema: {
          summary: "List a workflow's state",
          description: "The keys runs of the workflow stored with ctx.state.set for one org, by key, with their values, when and by which run they were last written.",
          tags: ["state"],
          security,
          params: nameParams,
          querystring: orgQuery,
          response: { 200: { description: "the workflow's state for the org", ...list }, ...errors(400, 401, 403, 404) },
        },
        config: { access: "read" },
      },
      async (request) => listState(engine, request.params.name, request.query.org, { org: orgScope(request) }),
    );

    app.get<KeyRequest>(
      "/api/workflows/:name/state/:key",
      {
        schema: {
          summary: "Show one state value",
          description: "404 STATE_NOT_FOUND when no run stored the key for that org.",
          tags: ["state"],
          security,
          params: keyParams,
          querystring: orgQuery,
          response: { 200: { description: "the value", ...item }, ...errors(400, 401, 403, 404) },
        },
        config: { access: "read" },
      },
      async (request) => getState(engine, request.params.name, request.params.key, request.query.org, { org: orgScope(request) }),
    );

    app.delete<KeyRequest>(
      "/api/workflows/:name/state/:key",
      {
        schema: {
          summary: "Reset one state value",
          description: "Deletes the key for that org: the next run that reads it finds nothing. A run in progress that stores it again wins. Admin only.",
          tags: ["state"],
          security,
          params: keyParams,
          querystring: orgQuery,
          response: { 204: { description: "deleted", type: "null" }, ...errors(400, 401, 403, 404) },
        },
        config: { access: "admin" },
      },
      async (request, reply) => {
        await resetState(engine, request.params.name, request.params.key, request.query.org);
        return reply.status(204).send();
      },
    );
  };
