import type { FastifyError, FastifyInstance } from "fastify";
import { BifrostError, ERROR_CODES, type ErrorCode } from "../../common/errors.js";

/** Fastify's own error codes, translated into ours so clients see one vocabulary. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: "INVALID_JSON",
  FST_ERR_CTP_EMPTY_JSON_BODY: "INVALID_JSON",
  FST_ERR_CTP_BODY_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "VALIDATION_FAILED",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "VALIDATION_FAILED",
};

export function errorBody(code: ErrorCode, message: string, details?: unknown) {
  const error: { code: ErrorCode; message: string; fix: string; details?: unknown } = { code, message, fix: ERROR_CODES[code].hint };
  if (details !== undefined) error.details = details;
  return { error };
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send(errorBody("ROUTE_NOT_FOUND", `No route ${request.method} ${request.url.split("?")[0]}`));
  });

  app.setErrorHandler((err: FastifyError | BifrostError, request, reply) => {
    if (err instanceof BifrostError) {
      if (err.status >= 500) request.log.error({ err }, err.message);
      return reply.status(err.status).send(errorBody(err.code, err.message, err.details));
    }
    if (err.validation) {
      const problems = err.validation.map((v) => ({ path: `${err.validationContext ?? "body"}${v.instancePath.replaceAll("/", ".")}`, message: v.message ?? "is invalid", params: v.params }));
      const message = problems.map((p) => `${p.path} ${p.message}${"additionalProperty" in (p.params ?? {}) ? ` ("${String((p.params as { additionalProperty: unknown }).additionalProperty)}")` : ""}`).join("; ");
      return reply.status(400).send(errorBody("VALIDATION_FAILED", `Invalid request: ${message}`, { problems }));
    }
    const mapped = err.code ? FASTIFY_CODES[err.code] : undefined;
    if (mapped) return reply.status(err.statusCode ?? ERROR_CODES[mapped].status).send(errorBody(mapped, err.message));
    if (err.statusCode && err.statusCode < 500) {
      return reply.status(err.statusCode).send(errorBody("VALIDATION_FAILED", err.message));
    }
    request.log.error({ err }, "unhandled error in request");
    return reply.status(500).send(errorBody("INTERNAL", "Internal error; the engine log has details"));
  });
}
