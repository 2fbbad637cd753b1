import { BifrostError, ERROR_CODES, type ErrorCode } from "../../common/errors.js";
import { SseParser } from "./sse.js";

/**
 * The CLI as a client of a running server: when BIFROST_URL and BIFROST_API_KEY are set, commands
 * that read or trigger work send their requests there (`Authorization: Bearer`) instead of opening
 * the data directory. Server errors come back as BifrostErrors with the server's code, so the CLI
 * prints them as it prints its own; a fix written for HTTP is replaced by the code's CLI hint.
 */

export interface ClientSettings {
  /** The server's base address, without a trailing slash. */
  url: string;
  apiKey: string;
}

type Env = Record<string, string | undefined>;

/** An API key travels in a header: printable ASCII without spaces, and not absurdly long. */
const KEY_PATTERN = /^[\x21-\x7e]{1,512}$/;

/**
 * Where the CLI's client commands go: a server when BIFROST_URL is set (BIFROST_API_KEY then
 * required), or undefined to work embedded on the data directory.
 */
export function clientSettings(env: Env = process.env): ClientSettings | undefined {
  const raw = env.BIFROST_URL?.trim();
  if (!raw) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    throw new BifrostError("CONFIG_INVALID", `BIFROST_URL=${JSON.stringify(raw.slice(0, 200))} is invalid: expected the server's http:// or https:// address, such as http://127.0.0.1:7071`, {
      fix: "Set BIFROST_URL to the address `bifrost start` prints (scheme, host and port, e.g. http://127.0.0.1:7071), or unset it to work on the local data directory.",
    });
  }
  const apiKey = env.BIFROST_API_KEY?.trim();
  if (!apiKey) {
    throw new BifrostError("CONFIG_INVALID", "BIFROST_URL is set but BIFROST_API_KEY is not: the server needs an API key", {
      fix: "Set BIFROST_API_KEY to a key of that server (an administrator makes one with `bifrost keys create --role operator`), or unset BIFROST_URL to work on the local data directory.",
    });
  }
  if (!KEY_PATTERN.test(apiKey)) {
    throw new BifrostError("CONFIG_INVALID", "BIFROST_API_KEY is invalid: an API key is one word of printable ASCII characters", {
      fix: "Set BIFROST_API_KEY to the key exactly as `bifrost keys create` printed it.",
    });
  }
  return { url: url.href.replace(/\/+$/, ""), apiKey };
}

/** The client for this environment, or undefined when the CLI works embedded. */
export function clientFromEnv(env: Env = process.env): ApiClient | undefined {
  const settings = clientSettings(env);
  return settings && new ApiClient(settings);
}

export type Method = "GET" | "POST" | "PUT" | "DELETE";
export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  /** Sent as JSON; leave out for a request without a body. */
  body?: unknown;
  /** @default 30000; a request that waits on purpose (`wait`) passes more. */
  timeoutMs?: number;
}

export interface Reply<T> {
  status: number;
  headers: Headers;
  body: T;
}

/** A log line as the API sends it. */
export interface LogLineView {
  seq: number;
  ts: string;
  level: "debug" | "info" | "warn" | "error";
  msg: string;
  data?: unknown;
  step?: string;
}

export interface FollowOptions {
  /** Resume after this sequence number (0: from the first line). */
  after?: number;
  onLine: (line: LogLineView) => void;
  /** How long the server may stay unreachable before following gives up. @default 30000 */
  reconnectBudgetMs?: number;
  signal?: AbortSignal;
}

/** Largest reply read: a run view holds at most a 1 MB result and its params. */
const MAX_REPLY_BYTES = 16 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;
const LEVELS = ["debug", "info", "warn", "error"];

export class ApiClient {
  constructor(
    readonly settings: ClientSettings,
    private readonly fetchFn: typeof fetch = fetch,
  ) {}

  get url(): string {
    return this.settings.url;
  }

  /** Sends one request; a reply of 400 or above is thrown as the server's error. */
  async request<T>(method: Method, path: string, options: RequestOptions = {}): Promise<Reply<T>> {
    const response = await this.send(method, path, options, { accept: "application/json" });
    const text = await readBounded(response, this.url);
    return { status: response.status, headers: response.headers, body: parseReply(response.status, text, this.url) as T };
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>("GET", path, query ? { query } : {}).then((r) => r.body);
  }

  /**
   * Streams a run's log lines over server-sent events until the run ends, and returns how it
   * ended. A stream the server closes (a restart, a deploy) is opened again with `after` set to
   * the last line received, so no line is lost or repeated.
   */
  async followLogs(runId: string, options: FollowOptions): Promise<{ status: string | null }> {
    let after = options.after ?? 0;
    const budget = options.reconnectBudgetMs ?? 30_000;
    let failingSince: number | undefined;
    let delay = 0;
    for (;;) {
      let streamed = false;
      let received = false;
      try {
        const response = await this.send("GET", `/api/runs/${encodeURIComponent(runId)}/logs`, { query: { after }, timeoutMs: 0, ...(options.signal && { signal: options.signal }) }, { accept: "text/event-stream" });
        if (response.status >= 400) {
          const text = await readBounded(response, this.url);
          parseReply(response.status, text, this.url);
        }
        if (!(response.headers.get("content-type") ?? "").startsWith("text/event-stream") || !response.body) {
          throw invalidReply(this.url, `answered the log stream with ${response.status} ${response.headers.get("content-type") ?? "no content type"} instead of an event stream`);
        }
        streamed = true;
        failingSince = undefined;
        const parser = new SseParser();
        const decoder = new TextDecoder();
        for await (const chunk of response.body) {
          for (const event of parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }))) {
            received = true;
            if (event.event === "end") return { status: endStatus(event.data) };
            if (event.event !== "log") continue;
            const line = logLineOf(event.data, this.url);
            // The server resumes strictly after `after`; a line at or before it was already shown.
            if (line.seq <= after) continue;
            after = line.seq;
            options.onLine(line);
          }
        }
        // The server closed the stream before the run ended: open it again where it stopped.
      } catch (err) {
        if (options.signal?.aborted) throw err;
        if (!transient(err)) throw err;
        const now = Date.now();
        failingSince ??= now;
        if (!streamed && now - failingSince > budget) throw err;
      }
      // At once after a stream that made progress; backing off while the server is away (or keeps
      // closing streams without sending anything).
      delay = received ? 0 : Math.min(2_000, Math.max(100, delay * 2));
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  private async send(method: Method, path: string, options: RequestOptions & { signal?: AbortSignal }, headers: Record<string, string>): Promise<Response> {
    const url = new URL(this.url + path);
    for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const signals = [options.signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined].filter((s): s is AbortSignal => s !== undefined);
    const init: RequestInit = {
      method,
      headers: {
        ...headers,
        authorization: `Bearer ${this.settings.apiKey}`,
        ...(options.body !== undefined && { "content-type": "application/json" }),
      },
      ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
      ...(signals.length > 0 && { signal: AbortSignal.any(signals) }),
    };
    try {
      return await this.fetchFn(url, init);
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw unreachable(this.url, err);
    }
  }
}

/** Connection failures and a server that is stopping or restarting: worth trying again. */
function transient(err: unknown): boolean {
  if (!(err instanceof BifrostError)) return err instanceof TypeError;
  return err.code === "SERVER_UNREACHABLE" || err.code === "ENGINE_STOPPING" || err.code === "STORAGE_UNAVAILABLE";
}

function unreachable(base: string, err: unknown): BifrostError {
  const e = err as { name?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const why =
    e.name === "TimeoutError"
      ? "it did not answer in time"
      : typeof e.cause?.code === "string"
        ? `${e.cause.code}${typeof e.cause.message === "string" ? ` (${e.cause.message})` : ""}`
        : String(e.message ?? err);
  return new BifrostError("SERVER_UNREACHABLE", `Could not reach the Bifrost server at ${base} (BIFROST_URL): ${why}`, { cause: err });
}

function invalidReply(base: string, what: string): BifrostError {
  return new BifrostError("SERVER_REPLY_INVALID", `The server at ${base} (BIFROST_URL) ${what}`);
}

async function readBounded(response: Response, base: string): Promise<string> {
  if (!response.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body) {
      size += (chunk as Uint8Array).byteLength;
      if (size > MAX_REPLY_BYTES) throw invalidReply(base, `sent a reply larger than ${MAX_REPLY_BYTES} bytes`);
      chunks.push(chunk as Uint8Array);
    }
  } catch (err) {
    if (err instanceof BifrostError) throw err;
    throw unreachable(base, err);
  }
  return Buffer.concat(chunks).toString("utf8");
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The JSON body of a reply; an error reply is thrown as the server's BifrostError. */
function parseReply(status: number, text: string, base: string): unknown {
  let body: unknown;
  try {
    body = text === "" ? undefined : JSON.parse(text);
  } catch {
    throw invalidReply(base, `answered ${status} with a body that is not JSON: is it a Bifrost server?`);
  }
  if (status < 400) return body;
  const error = isRecord(body) && isRecord(body.error) ? body.error : undefined;
  if (!error || typeof error.code !== "string" || typeof error.message !== "string") {
    throw invalidReply(base, `answered ${status} without a Bifrost error: is it a Bifrost server?`);
  }
  return throwRemote(error.code, error.message, error.fix, error.details, base, error.category);
}

function throwRemote(code: string, message: string, fix: unknown, details: unknown, base: string, category?: unknown): never {
  if (!Object.hasOwn(ERROR_CODES, code)) {
    throw new BifrostError("SERVER_REPLY_INVALID", `The server at ${base} answered with error ${code.slice(0, 64)}, which this command does not know: ${message}`, {
      ...(typeof fix === "string" && { fix }),
      details: { code: code.slice(0, 64) },
    });
  }
  const known = code as ErrorCode;
  if (known === "ROUTE_NOT_FOUND") {
    throw new BifrostError(known, `The server at ${base} has no such route: ${message}`, {
      fix: "Check that BIFROST_URL is the server's base address (scheme, host and port, e.g. http://127.0.0.1:7071) and that the server runs the same release as this command.",
    });
  }
  // The registry's own hint is worded for HTTP: leave it out so the CLI shows the code's CLI hint.
  // A fix the server wrote for this very case (a route's own words) is shown as it is.
  const own = typeof fix === "string" && fix !== ERROR_CODES[known].hint ? fix : undefined;
  // An OAuth failure's category comes back too: the CLI prints it as for an embedded failure.
  throw new BifrostError(known, message, { ...(own !== undefined && { fix: own }), ...(details !== undefined && { details }), ...(typeof category === "string" && { category: category.slice(0, 64) }) });
}

function logLineOf(data: string, base: string): LogLineView {
  let line: unknown;
  try {
    line = JSON.parse(data);
  } catch {
    throw invalidReply(base, "sent a log event that is not JSON");
  }
  if (!isRecord(line) || !Number.isSafeInteger(line.seq) || typeof line.ts !== "string" || typeof line.msg !== "string" || !LEVELS.includes(line.level as string)) {
    throw invalidReply(base, "sent a log event that is not a log line");
  }
  return line as unknown as LogLineView;
}

function endStatus(data: string): string | null {
  try {
    const end: unknown = JSON.parse(data);
    return isRecord(end) && typeof end.status === "string" ? end.status : null;
  } catch {
    return null;
  }
}
