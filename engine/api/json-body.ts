import type { FastifyInstance } from "fastify";
import { BifrostError } from "../../common/errors.js";
import { capString } from "../../common/json-bounds.js";
import { describePath, findForbiddenKey } from "../forbidden-keys.js";

/**
 * Parses a JSON request body. Replaces fastify's parser, which calls a body with a `__proto__` key
 * "not valid JSON" and drops the parser's reason. The size is bounded by fastify's bodyLimit
 * before this runs; JSON.parse is iterative in V8, and so is the key scan, so depth costs nothing
 * here (params depth is bounded where params are validated, for HTTP and CLI alike).
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === "") {
    throw new BifrostError("INVALID_JSON", "The body is empty but Content-Type is application/json: send a JSON object such as {}, or no Content-Type");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BifrostError("INVALID_JSON", `The body is not valid JSON: ${capString((err as Error).message, 200)}`);
  }
  const forbidden = findForbiddenKey(value);
  if (forbidden) {
    const where = forbidden.path.length === 0 ? "the top level of the body" : describePath("body", forbidden.path);
    throw new BifrostError("VALIDATION_FAILED", `The body contains a forbidden "${forbidden.key}" key at ${where}: such keys are refused because merging them would alter object prototypes`, {
      details: { problems: [{ path: where, message: `forbidden key "${forbidden.key}"` }] },
      fix: "Rename or remove the key.",
    });
  }
  return value;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * A body's bytes as text. JSON is UTF-8 (RFC 8259): bytes that are not are refused, not replaced
 * by U+FFFD behind the caller's back (which would also change what a webhook signature covers).
 */
export function decodeBody(bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new BifrostError("INVALID_JSON", "The body is not valid UTF-8: JSON bodies must be encoded as UTF-8");
  }
}

export function parseJsonBytes(bytes: Buffer): unknown {
  return parseJsonBody(decodeBody(bytes));
}

/** JSON is UTF-8: a body declared in another charset is refused rather than read as something else. */
export function checkCharset(contentType: string | undefined): void {
  for (const parameter of (contentType ?? "").split(";").slice(1)) {
    const [name = "", value = ""] = parameter.split("=");
    if (name.trim().toLowerCase() !== "charset") continue;
    const charset = value.trim().replace(/^"(.*)"$/, "$1").toLowerCase();
    if (charset !== "utf-8" && charset !== "utf8") {
      throw new BifrostError("UNSUPPORTED_MEDIA_TYPE", `The body is declared as charset ${JSON.stringify(capString(charset, 40))}: JSON bodies must be UTF-8`, {
        fix: "Send the body as UTF-8, with Content-Type: application/json (or application/json; charset=utf-8).",
      });
    }
  }
}

export function installJsonBodyParser(app: FastifyInstance): void {
  // Only JSON is accepted: anything else is a 415 with the API's error shape.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
    try {
      checkCharset(request.headers["content-type"]);
      done(null, parseJsonBytes(body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  // No body at all is an empty object to a route that takes one (fastify would validate it as
  // null and refuse it): POST .../runs without a body is a run with default params.
  app.addHook("preValidation", async (request) => {
    if (request.body === undefined && request.routeOptions.schema?.body !== undefined) request.body = {};
  });
}
