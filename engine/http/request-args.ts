/**
 * The arguments of one ctx.http call, as the guest sent them (parsed JSON, nothing trusted), read
 * into a bounded, typed request. Pure. Everything refused is HTTP_REQUEST_INVALID naming the
 * option, or HTTP_BODY_TOO_LARGE.
 */
import { BifrostError } from "../../common/errors.js";
import { capString, stringifyBounded, DEFAULT_JSON_DEPTH } from "../../common/json-bounds.js";
import { parseDuration, DURATION_MAX_LENGTH } from "../duration.js";
import { HTTP_METHODS, type HttpMethod } from "./retry-policy.js";

export interface RetryOptions {
  /** Tries in all, the first included. */
  attempts: number;
  /** Time the call may spend waiting between its tries (rate limits and backoff together). */
  maxWaitMs: number;
}

export interface HttpRequestSpec {
  method: HttpMethod;
  url: URL;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: Buffer | undefined;
  timeoutMs: number | undefined;
  retry: RetryOptions;
  throwOnError: boolean;
  idempotencyKey: string | undefined;
  connection: string | undefined;
}

export const REQUEST_BOUNDS = {
  urlChars: 8 * 1024,
  /** After the query is added. */
  fullUrlChars: 16 * 1024,
  headers: 64,
  headerNameChars: 256,
  headerValueChars: 8 * 1024,
  headerTotalChars: 64 * 1024,
  queryKeys: 200,
  queryValues: 1_000,
  maxTimeoutMs: 10 * 60_000,
  maxAttempts: 10,
  maxWaitMs: 3_600_000,
} as const;

export const DEFAULT_RETRY: RetryOptions = { attempts: 5, maxWaitMs: 5 * 60_000 };

const OPTION_NAMES = ["connection", "headers", "query", "json", "body", "timeout", "retry", "throwOnError", "idempotencyKey"] as const;

/** Set by the engine (framing, the connection's token), never by the workflow. */
const RESERVED_HEADERS = new Set(["host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "expect", "proxy-connection", "proxy-authorization", "http2-settings"]);

const TOKEN_CHARS = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;
const CONNECTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function refuse(message: string): BifrostError {
  return new BifrostError("HTTP_REQUEST_INVALID", `ctx.http: ${message}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function shown(value: string, max = 80): string {
  return JSON.stringify(capString(value, max));
}

/** Header values: no control characters but tab (CR/LF would split the header). */
function badValueChar(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

function readMethod(raw: unknown): HttpMethod {
  if (typeof raw !== "string") throw refuse("the method must be a string such as \"GET\"");
  const method = raw.toUpperCase();
  if (!(HTTP_METHODS as readonly string[]).includes(method)) throw refuse(`method ${shown(raw, 20)} is not one of ${HTTP_METHODS.join(", ")}`);
  return method as HttpMethod;
}

function readUrl(raw: unknown): URL {
  if (typeof raw !== "string" || raw.length === 0) throw refuse("the url must be a non-empty string such as \"https://api.example.com/items\"");
  if (raw.length > REQUEST_BOUNDS.urlChars) throw refuse(`the url is ${raw.length} characters; the limit is ${REQUEST_BOUNDS.urlChars}`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse(`${shown(raw)} is not an absolute URL (write it with https:// and the host)`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw refuse(`only http:// and https:// URLs can be called (got ${shown(url.protocol, 20)})`);
  if (url.username !== "" || url.password !== "") throw refuse("credentials in the URL are refused (they would show in logs): pass them in headers, e.g. headers: { authorization: \"Basic …\" }");
  url.hash = "";
  return url;
}

function readHeaders(raw: unknown, into: Record<string, string>): void {
  if (raw === undefined) return;
  if (!isRecord(raw)) throw refuse("headers must be an object of name → string");
  const entries = Object.entries(raw);
  if (entries.length > REQUEST_BOUNDS.headers) throw refuse(`at most ${REQUEST_BOUNDS.headers} headers (got ${entries.length})`);
  let total = 0;
  for (const [name, value] of entries) {
    if (name.length === 0 || name.length > REQUEST_BOUNDS.headerNameChars || !TOKEN_CHARS.test(name)) throw refuse(`header name ${shown(name)} is not a valid HTTP header name`);
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower)) throw refuse(`header "${lower}" is set by the engine and cannot be passed`);
    if (value === undefined || value === null) continue;
    if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") throw refuse(`header "${lower}" must be a string`);
    const text = String(value);
    if (text.length > REQUEST_BOUNDS.headerValueChars) throw refuse(`header "${lower}" is ${text.length} characters; the limit is ${REQUEST_BOUNDS.headerValueChars}`);
    if (badValueChar(text)) throw refuse(`header "${lower}" contains a line break or another control character`);
    if (lower in into) throw refuse(`header "${lower}" is given twice`);
    total += lower.length + text.length;
    into[lower] = text;
  }
  if (total > REQUEST_BOUNDS.headerTotalChars) throw refuse(`the headers are ${total} characters in all; the limit is ${REQUEST_BOUNDS.headerTotalChars}`);
}

function queryValue(key: string, v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return String(v);
  throw refuse(`query.${capString(key, 40)} must be a string, number, boolean or an array of them`);
}

function addQuery(url: URL, raw: unknown): void {
  if (raw === undefined) return;
  if (!isRecord(raw)) throw refuse("query must be an object of name → value");
  const entries = Object.entries(raw);
  if (entries.length > REQUEST_BOUNDS.queryKeys) throw refuse(`query has ${entries.length} names; the limit is ${REQUEST_BOUNDS.queryKeys}`);
  let values = 0;
  for (const [key, value] of entries) {
    const list = Array.isArray(value) ? value : [value];
    values += list.length;
    if (values > REQUEST_BOUNDS.queryValues) throw refuse(`query has more than ${REQUEST_BOUNDS.queryValues} values`);
    for (const v of list) {
      const text = queryValue(key, v);
      if (text !== undefined) url.searchParams.append(key, text);
    }
  }
  if (url.href.length > REQUEST_BOUNDS.fullUrlChars) throw refuse(`the URL with its query is ${url.href.length} characters; the limit is ${REQUEST_BOUNDS.fullUrlChars}`);
}

function tooLarge(bytes: number, limit: number): BifrostError {
  return new BifrostError("HTTP_BODY_TOO_LARGE", `ctx.http: the request body is ${bytes} bytes; the limit is ${limit} bytes (BIFROST_HTTP_MAX_REQUEST_BYTES)`, { details: { direction: "request", bytes, limit } });
}

function readBody(options: Record<string, unknown>, method: HttpMethod, headers: Record<string, string>, maxBytes: number): Buffer | undefined {
  const hasJson = Object.hasOwn(options, "json");
  const hasBody = Object.hasOwn(options, "body") && options.body !== undefined && options.body !== null;
  if (!hasJson && !hasBody) return undefined;
  if (hasJson && hasBody) throw refuse("pass either json or body, not both");
  if (method === "GET" || method === "HEAD") throw refuse(`a ${method} request cannot carry a body`);
  let text: string;
  if (hasJson) {
    const json = stringifyBounded(options.json, { maxDepth: DEFAULT_JSON_DEPTH, maxLength: maxBytes + 1 });
    if (!json.ok) {
      if (json.violation.reason === "size") throw tooLarge(json.violation.length, maxBytes);
      throw refuse(`json is not JSON-serializable: ${json.violation.reason === "depth" ? `nested deeper than ${DEFAULT_JSON_DEPTH} levels` : "unreadable"}`);
    }
    text = json.text;
    headers["content-type"] ??= "application/json";
  } else {
    if (typeof options.body !== "string") throw refuse("body must be a string (use json for objects)");
    text = options.body;
    headers["content-type"] ??= "text/plain; charset=utf-8";
  }
  // Characters first, so measuring a huge string in bytes costs nothing.
  if (text.length > maxBytes) throw tooLarge(Buffer.byteLength(text), maxBytes);
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length > maxBytes) throw tooLarge(bytes.length, maxBytes);
  return bytes;
}

function readTimeout(raw: unknown): number | undefined {
  if (raw === undefined || raw === null) return undefined;
  const ms = typeof raw === "string" && raw.length > DURATION_MAX_LENGTH ? undefined : parseDuration(raw);
  if (ms === undefined || ms > REQUEST_BOUNDS.maxTimeoutMs) throw refuse(`timeout must be a duration from 1ms to 10m, such as 5000 or "30s"`);
  return ms;
}

function readRetry(raw: unknown): RetryOptions {
  if (raw === undefined || raw === null || raw === true) return { ...DEFAULT_RETRY };
  if (raw === false) return { attempts: 1, maxWaitMs: 0 };
  if (!isRecord(raw)) throw refuse("retry must be false or { attempts?, maxWait? }");
  const retry = { ...DEFAULT_RETRY };
  for (const [key, value] of Object.entries(raw)) {
    if (key === "attempts") {
      if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > REQUEST_BOUNDS.maxAttempts) throw refuse(`retry.attempts must be an integer from 1 to ${REQUEST_BOUNDS.maxAttempts} (tries in all, the first included)`);
      retry.attempts = value as number;
    } else if (key === "maxWait") {
      const ms = value === 0 ? 0 : typeof value === "string" && value.length > DURATION_MAX_LENGTH ? undefined : parseDuration(value);
      if (ms === undefined || ms > REQUEST_BOUNDS.maxWaitMs) throw refuse(`retry.maxWait must be a duration up to 1h, such as "2m"`);
      retry.maxWaitMs = ms;
    } else {
      throw refuse(`retry has no option ${shown(key, 40)} (use attempts and maxWait)`);
    }
  }
  return retry;
}

/** Reads `{ method, url, options }` from the guest into a request the host can send. */
export function readRequestArgs(args: unknown, limits: { maxRequestBytes: number }): HttpRequestSpec {
  if (!isRecord(args)) throw refuse("bad arguments");
  const method = readMethod(args.method);
  const url = readUrl(args.url);
  const options = args.options === undefined || args.options === null ? {} : args.options;
  if (!isRecord(options)) throw refuse("the options must be an object");
  for (const key of Object.keys(options)) {
    if (!(OPTION_NAMES as readonly string[]).includes(key)) throw refuse(`unknown option ${shown(key, 40)}; the options are ${OPTION_NAMES.join(", ")}`);
  }
  const headers: Record<string, string> = {};
  readHeaders(options.headers, headers);
  addQuery(url, options.query);
  const body = readBody(options, method, headers, limits.maxRequestBytes);

  let idempotencyKey: string | undefined;
  if (options.idempotencyKey !== undefined && options.idempotencyKey !== null) {
    if (typeof options.idempotencyKey !== "string" || !IDEMPOTENCY_KEY.test(options.idempotencyKey)) throw refuse("idempotencyKey must be 1 to 200 printable ASCII characters without spaces");
    if (headers["idempotency-key"] !== undefined && headers["idempotency-key"] !== options.idempotencyKey) throw refuse("idempotencyKey and the Idempotency-Key header differ");
    idempotencyKey = options.idempotencyKey;
    headers["idempotency-key"] = idempotencyKey;
  } else if (headers["idempotency-key"] !== undefined) {
    idempotencyKey = headers["idempotency-key"];
  }

  let connection: string | undefined;
  if (options.connection !== undefined && options.connection !== null) {
    if (typeof options.connection !== "string" || !CONNECTION_NAME.test(options.connection)) throw refuse("connection must be a provider name such as \"HaloPSA\" (letters, digits, _ . -, at most 64)");
    if (headers.authorization !== undefined) throw refuse("pass either connection or an Authorization header, not both: the connection sets Authorization");
    connection = options.connection;
  }

  if (options.throwOnError !== undefined && typeof options.throwOnError !== "boolean") throw refuse("throwOnError must be true or false");
  return {
    method,
    url,
    headers,
    body,
    timeoutMs: readTimeout(options.timeout),
    retry: readRetry(options.retry),
    throwOnError: options.throwOnError !== false,
    idempotencyKey,
    connection,
  };
}
