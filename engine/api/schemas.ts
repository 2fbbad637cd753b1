import { ERROR_CODES } from "../../common/errors.js";
import { LOG_LEVELS } from "../../storage/types.js";

/**
 * JSON Schemas of what the API answers (views.ts builds the objects), for the OpenAPI document.
 * They document; they do not serialize (app.ts serializes with JSON.stringify, so a field missing
 * here is never silently dropped from a reply). test/openapi.test.ts checks real replies against
 * them, so they cannot drift from views.ts unnoticed.
 */

type Schema = Record<string, unknown>;

const nullable = (type: string | string[]): string[] => [...(Array.isArray(type) ? type : [type]), "null"];
const time = { type: nullable("string"), format: "date-time" };
const object = (properties: Record<string, Schema>, optional: string[] = []): Schema => ({
  type: "object",
  additionalProperties: false,
  required: Object.keys(properties).filter((k) => !optional.includes(k)),
  properties,
});
/** Any JSON value (params, results, details). */
const anyJson: Schema = {};

export const RUN_STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "timed_out"];
export const RUN_TRIGGERS = ["api", "schedule", "webhook", "cli", "retry"];

export const errorResponse = object({
  error: object(
    {
      code: { type: "string", enum: Object.keys(ERROR_CODES) },
      message: { type: "string" },
      fix: { type: "string" },
      category: { type: "string", description: "a failure category with its own fix (OAuth: token_expired, invalid_client, …)" },
      details: anyJson,
    },
    ["category", "details"],
  ),
});

/** A run's or step's error (`code` may be a workflow's own for errors stored before codes were host-only). */
const runError: Schema = {
  anyOf: [
    { type: "null" },
    object(
      {
        code: { type: "string" },
        message: { type: "string" },
        category: { type: "string" },
        fix: { type: "string" },
        step: { type: "string" },
        stack: { type: "string" },
        details: anyJson,
      },
      ["category", "fix", "step", "stack", "details"],
    ),
  ],
};

export const step = object({
  name: { type: "string" },
  status: { type: "string", enum: ["running", "succeeded", "failed"] },
  attempts: { type: "integer" },
  startedAt: time,
  finishedAt: time,
  durationMs: { type: nullable("integer") },
  error: runError,
});

const runProperties = {
  id: { type: "string", format: "uuid" },
  workflow: { type: "string" },
  workflowVersion: { type: nullable("string") },
  org: { type: nullable("string") },
  trigger: { type: "string", enum: RUN_TRIGGERS },
  status: { type: "string", enum: RUN_STATUSES },
  params: anyJson,
  result: anyJson,
  error: runError,
  attempt: { type: "integer" },
  idempotencyKey: { type: nullable("string") },
  queuedAt: time,
  runAt: time,
  startedAt: time,
  finishedAt: time,
  durationMs: { type: nullable("integer") },
  scheduledFor: time,
  retryOf: { type: nullable("string"), format: "uuid" },
  cancelRequestedAt: time,
};

export const run = object(runProperties);
/** Progress of one ctx.chunks call: committed chunks of its total. */
const chunkProgress = object({ name: { type: "string" }, done: { type: "integer" }, total: { type: "integer" } });
export const runWithSteps = object({ ...runProperties, steps: { type: "array", items: step }, chunks: { type: "array", items: chunkProgress } });
export const accepted = object({ id: { type: "string", format: "uuid" }, status: { type: "string", enum: RUN_STATUSES } });
export const runPage = object({ items: { type: "array", items: run }, nextCursor: { type: nullable("string") } });

export const logLine = object(
  {
    seq: { type: "integer" },
    ts: { type: "string", format: "date-time" },
    level: { type: "string", enum: [...LOG_LEVELS] },
    msg: { type: "string" },
    data: anyJson,
    step: { type: "string" },
  },
  ["data", "step"],
);
export const logPage = object({ items: { type: "array", items: logLine }, nextAfter: { type: nullable("integer") } });

const storedError = object(
  { code: { type: "string" }, message: { type: "string" }, category: { type: "string" }, fix: { type: "string" }, step: { type: "string" }, stack: { type: "string" }, details: anyJson },
  ["category", "fix", "step", "stack", "details"],
);

export const workflow = object({
  name: { type: "string" },
  description: { type: nullable("string") },
  params: { type: "object", description: "the params JSON Schema" },
  schedule: {
    anyOf: [
      { type: "null" },
      object({
        cron: { type: "string" },
        timezone: { type: "string" },
        overlap: { type: "string", enum: ["skip", "queue", "allow"] },
        catchUp: { type: "string", enum: ["none", "latest", "all"] },
        catchUpWindowMs: { type: "integer" },
        orgs: { type: "array", items: { type: "string" } },
      }, ["orgs"]),
    ],
  },
  nextFireAt: time,
  timeoutMs: { type: "integer" },
  chunkTimeoutMs: { type: "integer" },
  retry: object({ attempts: { type: "integer" }, backoff: { type: "string", enum: ["exponential", "fixed"] }, delayMs: { type: "integer" }, maxDelayMs: { type: "integer" } }),
  webhook: { type: "boolean" },
  sourceKind: { type: "string", enum: ["file", "api"] },
  file: { type: nullable("string") },
  version: { type: "string" },
  registeredAt: time,
  updatedAt: time,
  lastError: { anyOf: [{ type: "null" }, { ...storedError, required: ["code", "message", "at"], properties: { ...(storedError.properties as Schema), at: time } }] },
});

export const workflowList = object({
  items: { type: "array", items: workflow },
  problems: {
    type: "array",
    items: object({ file: { type: nullable("string") }, name: { type: "string" }, error: { anyOf: [{ type: "null" }, storedError] }, at: time }, ["name"]),
  },
});

export const health = object({ status: { type: "string", enum: ["ok", "unavailable"] }, database: { type: "string" }, dialect: { type: "string", enum: ["sqlite", "postgres"] } });

export const webhookInfo = object({
  workflow: { type: "string" },
  org: { type: nullable("string"), description: "null: the org-less hook; else the hook of that org, with its own secret" },
  url: { type: "string" },
  header: { type: "string", enum: ["X-Bifrost-Signature"] },
  secret: { type: "string", description: "HMAC-SHA256 key of the signature: shown only here" },
  example: { type: "string", description: "a shell snippet that signs a body with openssl and sends it with curl" },
  createdAt: { type: "string", format: "date-time" },
  rotatedAt: time,
  previousValidUntil: { ...time, description: "until when the secret the last rotation replaced is still accepted; null once it is not" },
});

/** Every error status a route can answer, in one shape. */
export const errors = (...statuses: number[]): Record<string, Schema> =>
  Object.fromEntries(statuses.map((status) => [String(status), { description: "an error (see the README's Error codes)", ...errorResponse }]));
