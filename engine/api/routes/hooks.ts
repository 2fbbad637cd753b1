import type { FastifyPluginAsync } from "fastify";
import { BifrostError } from "../../../common/errors.js";
import type { Engine } from "../../engine.js";
import { triggerOrg } from "../../auth/org.js";
import { orgScope } from "../auth.js";
import { hookOrg } from "./webhooks.js";
import { checkCharset, parseJsonBytes } from "../json-body.js";

const hookParams = { type: "object", properties: { workflow: { type: "string", minLength: 1, maxLength: 64 } }, required: ["workflow"] } as const;
const hookQuery = { type: "object", additionalProperties: false, properties: { org: { type: "string", maxLength: 128, description: "the org the run belongs to: the call is signed with that org's secret of the hook" } } } as const;
const IDEMPOTENCY_HEADER = "idempotency-key";

const SIGNATURE_PROBLEM = {
  missing: "The request carries neither an X-Bifrost-Signature header nor an API key",
  garbled: "The X-Bifrost-Signature header is not of the form sha256=<64 hex digits>",
  mismatch: "The X-Bifrost-Signature does not match the body: it was not signed with the current webhook secret of this workflow (and of the org in ?org=, which has its own), or the body changed on the way",
} as const;

/**
 * POST /api/hooks/:workflow: a webhook starts a run of a workflow that declares `webhook: true`,
 * with the JSON body as its params. The signature covers the raw bytes, so this plugin keeps them:
 * the body is parsed only after the signature checks out (an unsigned caller learns nothing of
 * how the body or the params schema is judged).
 */
export const hookRoutes = (engine: Engine): FastifyPluginAsync =>
  async (app) => {
    // Only in this plugin's context: every other route keeps the JSON parser of json-body.ts.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
      try {
        checkCharset(request.headers["content-type"]);
        done(null, body);
      } catch (err) {
        done(err as Error, undefined);
      }
    });

    app.post<{ Params: { workflow: string }; Querystring: { org?: string } }>(
      "/api/hooks/:workflow",
      { schema: { params: hookParams, querystring: hookQuery }, config: { access: "webhook", rawBody: true } },
      async (request, reply) => {
        const name = request.params.workflow;
        const org = hookOrg(request.query.org);
        await engine.webhooks.requireWebhook(name);
        // No body at all (no Content-Type) is a run with default params; an empty JSON body is not JSON.
        const hasBody = Buffer.isBuffer(request.body);
        const raw = hasBody ? (request.body as Buffer) : Buffer.alloc(0);
        const signature = request.headers["x-bifrost-signature"];
        if (signature !== undefined) {
          const check = await engine.webhooks.verify(name, raw, Array.isArray(signature) ? signature.join(", ") : signature, org);
          if (!check.ok) throw new BifrostError("WEBHOOK_SIGNATURE_INVALID", SIGNATURE_PROBLEM[check.reason]);
          // The secret of that org's hook signed it: the call acts for that org only.
          request.principal = { keyId: null, role: "operator", org };
        } else if (!request.principal) {
          // The auth plugin lets no unsigned call through without a key; this holds even without it.
          throw new BifrostError("WEBHOOK_SIGNATURE_INVALID", SIGNATURE_PROBLEM.missing);
        }
        const params = hasBody ? parseJsonBytes(raw) : undefined;
        const key = request.headers[IDEMPOTENCY_HEADER];
        const { run, created } = await engine.triggerRun(name, {
          params,
          // A key of one org acts in its own org only, as on POST /api/workflows/:name/runs.
          org: triggerOrg(orgScope(request), org),
          trigger: "webhook",
          idempotencyKey: typeof key === "string" ? key : null,
        });
        if (!created) void reply.header("idempotent-replayed", "true");
        return reply.status(202).send({ id: run.id, status: run.status });
      },
    );
  };
