import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { BifrostError, ERROR_CODES, type ErrorCode } from "../../common/errors.js";
import { capString } from "../../common/json-bounds.js";
import type { Logger } from "../logger.js";
import type { RouteTable } from "./route-table.js";

/**
 * Every 4xx/5xx the API sends has one shape, `{ error: { code, message, fix, category?, details? } }`, with a
 * code from the registry: route errors, validation, body parsing, and the replies fastify and
 * Node's HTTP parser would otherwise write in their own words (bad URL encoding, an unknown
 * method, oversized headers, a request during shutdown).
 */

export const BODY_LIMIT = 1024 * 1024;
/** Longest path parameter the router accepts; route schemas bound each parameter more tightly. */
export const MAX_PARAM_LENGTH = 1000;
/** Problems listed for one invalid request; a body with 100,000 unknown fields fails 100,000 times. */
const MAX_PROBLEMS = 20;

export interface ErrorBody {
  /** `category`: a failure category with its own fix (OAuth's token_expired, invalid_client, …). */
  error: { code: ErrorCode; message: string; fix: string; category?: string; details?: unknown };
}

export function errorBody(code: ErrorCode, message: string, options: { details?: unknown; fix?: string; category?: string | undefined } = {}): ErrorBody {
  const error: ErrorBody["error"] = { code, message, fix: options.fix ?? ERROR_CODES[code].hint };
  if (options.category !== undefined) error.category = options.category;
  if (options.details !== undefined) error.details = options.details;
  return { error };
}

/** The path of a request as quoted in a message: clients can send 16 KB of it. */
function pathOf(url: string): string {
  return capString(url.split("?")[0] ?? "", 200);
}

/** Fastify's own error codes, with the code and the words clients see instead. */
const FASTIFY_ERRORS: Record<string, (err: FastifyError, request: FastifyRequest) => [ErrorCode, string, string?]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () => ["PAYLOAD_TOO_LARGE", `The request body is larger than the limit of ${BODY_LIMIT} bytes`],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: (_err, request) => [
    "UNSUPPORTED_MEDIA_TYPE",
    `Content-Type ${JSON.stringify(capString(String(request.headers["content-type"] ?? ""), 100))} is not supported: request bodies are JSON`,
  ],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => ["MALFORMED_REQUEST", "The request body's size does not match its Content-Length header"],
  FST_ERR_CTP_EMPTY_JSON_BODY: () => ["INVALID_JSON", "The body is empty but Content-Type is application/json: send a JSON object, or no Content-Type"],
  FST_ERR_CTP_INVALID_JSON_BODY: () => ["INVALID_JSON", "The body is not valid JSON"],
  FST_ERR_BAD_URL: (_err, request) => ["MALFORMED_REQUEST", `The path ${JSON.stringify(pathOf(request.url))} is not validly percent-encoded: every "%" must start an escape such as %20`],
  FST_ERR_MAX_PARAM_LENGTH: (_err, request) => [
    "VALIDATION_FAILED",
    `A path segment of ${JSON.stringify(pathOf(request.url))} is longer than ${MAX_PARAM_LENGTH} characters`,
    "Shorten the path: run ids and workflow names are at most 64 characters.",
  ],
  FST_ERR_NOT_FOUND: (_err, request) => ["ROUTE_NOT_FOUND", `No route ${request.method} ${pathOf(request.url)}`],
};

/** Used when fastify reports a status it has no code for: the nearest truthful code. */
const BY_STATUS: Record<number, ErrorCode> = { 404: "ROUTE_NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 408: "REQUEST_TIMEOUT", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 431: "HEADERS_TOO_LARGE" };

function sendError(reply: FastifyReply, code: ErrorCode, message: string, options: { details?: unknown; fix?: string } = {}): FastifyReply {
  return reply.status(ERROR_CODES[code].status).send(errorBody(code, message, options));
}

/** fastify's `frameworkErrors` option: errors raised before a route is found (bad URL, long parameter). */
export function onFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const known = FASTIFY_ERRORS[err.code];
  if (known) {
    const [code, message, fix] = known(err, request);
    void sendError(reply, code, message, fix === undefined ? {} : { fix });
    return;
  }
  request.log.error({ err }, "framework error");
  void sendError(reply, "INTERNAL", "Internal error; the engine log has details");
}

/** What Node's HTTP parser reports, in words a client can act on. */
function describeParseError(code: string): [ErrorCode, string] | undefined {
  switch (code) {
    case "HPE_HEADER_OVERFLOW":
      return ["HEADERS_TOO_LARGE", "The request headers are larger than the server accepts (16 KB in all)"];
    case "ERR_HTTP_REQUEST_TIMEOUT":
    case "ERR_HTTP_HEADERS_TIMEOUT":
      return ["REQUEST_TIMEOUT", "The request was not received completely in time"];
    case "HPE_INVALID_METHOD":
      return ["MALFORMED_REQUEST", "The request method is not a standard HTTP method; this API uses GET and POST"];
    case "HPE_INVALID_URL":
      return ["MALFORMED_REQUEST", "The request target is not a valid URL path"];
    case "HPE_INVALID_HEADER_TOKEN":
      return ["MALFORMED_REQUEST", "A request header has a name or value with characters HTTP does not allow"];
    case "HPE_INVALID_CONTENT_LENGTH":
    case "HPE_UNEXPECTED_CONTENT_LENGTH":
      return ["MALFORMED_REQUEST", "The request's Content-Length header is invalid or conflicts with Transfer-Encoding"];
    case "HPE_INVALID_TRANSFER_ENCODING":
    case "HPE_INVALID_CHUNK_SIZE":
      return ["MALFORMED_REQUEST", "The request's chunked body is malformed"];
    case "HPE_INVALID_VERSION":
      return ["MALFORMED_REQUEST", "The request line does not name a valid HTTP version"];
    default:
      return code.startsWith("HPE_") ? ["MALFORMED_REQUEST", `The request is not valid HTTP/1.1 (${code})`] : undefined;
  }
}

/**
 * fastify's `clientErrorHandler`: Node's HTTP parser refused the request before fastify saw it,
 * so the reply is written to the socket by hand, in the API's error shape.
 */
export function onClientError(err: Error & { code?: string }, socket: Socket, logger: Logger): void {
  // A reset connection has nobody left to answer.
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const known = describeParseError(err.code ?? "") ?? (["MALFORMED_REQUEST", "The request could not be read"] as [ErrorCode, string]);
  const [code, message] = known;
  logger.debug({ err, code }, "client error");
  if (socket.writable) {
    const status = ERROR_CODES[code].status;
    const body = JSON.stringify(errorBody(code, message));
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

export function installErrorHandling(app: FastifyInstance, routes?: RouteTable): void {
  app.setNotFoundHandler((request, reply) => {
    // A path that exists under other methods is a 405 saying which, not a 404.
    const path = request.url.split("?")[0] ?? "";
    const allowed = routes?.methodsFor(path) ?? [];
    if (allowed.length > 0) {
      void reply.header("allow", allowed.join(", "));
      void sendError(reply, "METHOD_NOT_ALLOWED", `${request.method} is not allowed on ${pathOf(request.url)}: it accepts ${allowed.join(", ")}`);
      return;
    }
    void sendError(reply, "ROUTE_NOT_FOUND", `No route ${request.method} ${pathOf(request.url)}`);
  });

  // fastify's own 503 during close is in its shape (return503OnClosing is off in app.ts).
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onRequest", async (_request, reply) => {
    if (!closing) return;
    void reply.header("connection", "close");
    return sendError(reply, "ENGINE_STOPPING", "The server is shutting down and accepts no new requests");
  });

  app.setErrorHandler((err: FastifyError | BifrostError, request, reply) => {
    if (err instanceof BifrostError) {
      if (err.status >= 500) request.log.error({ err }, err.message);
      return reply.status(err.status).send(errorBody(err.code, err.message, { details: err.details, fix: err.fix, category: err.category }));
    }
    if (err.validation) {
      const problems = err.validation.slice(0, MAX_PROBLEMS).map((v) => ({
        path: capString(`${err.validationContext ?? "body"}${v.instancePath.replaceAll("/", ".")}`, 200),
        message: v.message ?? "is invalid",
        params: Object.fromEntries(Object.entries(v.params ?? {}).map(([k, value]) => [k, typeof value === "string" ? capString(value, 100) : value])),
      }));
      const parts = problems.map((p) => `${p.path} ${p.message}${typeof p.params.additionalProperty === "string" ? ` ("${p.params.additionalProperty}")` : ""}`);
      if (err.validation.length > problems.length) parts.push(`and ${err.validation.length - problems.length} more`);
      return sendError(reply, "VALIDATION_FAILED", `Invalid request: ${parts.join("; ")}`, { details: { problems } });
    }
    const known = err.code ? FASTIFY_ERRORS[err.code] : undefined;
    if (known) {
      const [code, message, fix] = known(err, request);
      return sendError(reply, code, message, fix === undefined ? {} : { fix });
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return sendError(reply, BY_STATUS[status] ?? "MALFORMED_REQUEST", capString(err.message, 300));
    }
    request.log.error({ err }, "unhandled error in request");
    return sendError(reply, "INTERNAL", "Internal error; the engine log has details");
  });
}
