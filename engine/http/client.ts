/**
 * One HTTP exchange of ctx.http over undici: the address every connection goes to is checked
 * against metadata ranges after DNS resolution (the check is the lookup, so the address checked
 * is the address connected to), redirects are followed by hand so that every hop is checked
 * again, the answer is read up to a size limit, and the whole exchange has one timeout.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import type { LookupFunction } from "node:net";
import { Agent, request } from "undici";
import { BifrostError } from "../../common/errors.js";
import { metadataAddressReason, metadataHostReason } from "./metadata.js";
import { describeUrl } from "./redact.js";
import type { HttpMethod } from "./retry-policy.js";

/** Resolves a host name to its addresses (tests inject one; the default asks the system resolver). */
export type Resolve = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

export const systemResolve: Resolve = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

export interface Exchange {
  method: HttpMethod;
  url: URL;
  headers: Record<string, string>;
  body: Buffer | undefined;
  timeoutMs: number;
  maxResponseBytes: number;
  signal: AbortSignal;
  /** Checks a redirect's target (allow-list); throws to refuse it. */
  checkRedirect: (url: URL) => void;
}

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** The URL that answered, after redirects. */
  url: URL;
}

/** A failure with no answer. `phase: "connect"` when nothing reached the server. */
export class NetworkFailure extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly phase: "connect" | "exchange",
    readonly timedOut: boolean,
  ) {
    super(message);
    this.name = "NetworkFailure";
  }
}

const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const CONNECT_CODES = new Set(["ECONNREFUSED", "UND_ERR_CONNECT_TIMEOUT", "EAI_AGAIN", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"]);

function forbidden(url: URL, reason: string, how: string): BifrostError {
  return new BifrostError("HTTP_HOST_FORBIDDEN", `ctx.http refused ${describeUrl(url)}: ${how} ${reason}`, { details: { host: url.host } });
}

/** The lookup undici connects with: it refuses every metadata address a name resolves to. */
function checkedLookup(resolve: Resolve): LookupFunction {
  return (hostname, options, callback) => {
    const reason = metadataHostReason(hostname);
    if (reason) return callback(new BifrostError("HTTP_HOST_FORBIDDEN", `ctx.http refused the host ${hostname}: it is ${reason}`, { details: { host: hostname } }), "", 0);
    resolve(hostname).then(
      (all) => {
        const wanted = options.family === 4 || options.family === 6 ? all.filter((a) => a.family === options.family) : all;
        if (wanted.length === 0) {
          const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
          return callback(err, "", 0);
        }
        for (const a of wanted) {
          const why = metadataAddressReason(a.address);
          if (why) return callback(new BifrostError("HTTP_HOST_FORBIDDEN", `ctx.http refused the host ${hostname}: it resolves to ${a.address}, ${why}`, { details: { host: hostname, address: a.address } }), "", 0);
        }
        if (options.all) return (callback as unknown as (err: null, addresses: Array<{ address: string; family: number }>) => void)(null, wanted);
        callback(null, wanted[0]!.address, wanted[0]!.family);
      },
      (err: unknown) => callback(err as NodeJS.ErrnoException, "", 0),
    );
  };
}

function flatten(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function codeOf(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  if (e && typeof e.code === "string") return e.code;
  if (e && e.cause && typeof e.cause.code === "string") return e.cause.code;
  return "UNKNOWN";
}

function bifrostErrorIn(err: unknown): BifrostError | undefined {
  if (err instanceof BifrostError) return err;
  const cause = (err as { cause?: unknown } | null)?.cause;
  return cause instanceof BifrostError ? cause : undefined;
}

export class HttpClient {
  private readonly agent: Agent;

  constructor(resolve: Resolve = systemResolve) {
    this.agent = new Agent({ connect: { lookup: checkedLookup(resolve) }, keepAliveTimeout: 4_000 });
  }

  /** Sends the request, following up to 5 redirects; each hop's target is checked before it is contacted. */
  async send(ex: Exchange): Promise<Answer> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new Error("timeout")), ex.timeoutMs);
    const signal = AbortSignal.any([ex.signal, timeout.signal]);
    let { method, url, body } = ex;
    const headers = { ...ex.headers };
    try {
      for (let hop = 0; ; hop++) {
        const reason = metadataHostReason(url.hostname);
        if (reason) throw forbidden(url, reason, hop === 0 ? "it is" : "a redirect led to");
        const answer = await this.once(method, url, headers, body, ex.maxResponseBytes, signal, timeout.signal, ex.timeoutMs);
        const location = answer.headers.location;
        if (!REDIRECTS.has(answer.status) || location === undefined) return answer;
        if (hop >= MAX_REDIRECTS) {
          throw new BifrostError("HTTP_TOO_MANY_REDIRECTS", `ctx.http: ${method} ${describeUrl(ex.url)} was redirected more than ${MAX_REDIRECTS} times`, { details: { status: answer.status } });
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          return answer;
        }
        if (next.protocol !== "http:" && next.protocol !== "https:") return answer;
        next.hash = "";
        ex.checkRedirect(next);
        // Credentials are for the origin they were given for.
        if (next.origin !== url.origin) {
          delete headers.authorization;
          delete headers.cookie;
        }
        if (answer.status === 303 || ((answer.status === 301 || answer.status === 302) && method === "POST")) {
          if (method !== "HEAD") method = "GET";
          body = undefined;
          delete headers["content-type"];
        }
        url = next;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private async once(method: HttpMethod, url: URL, headers: Record<string, string>, body: Buffer | undefined, maxBytes: number, signal: AbortSignal, timeout: AbortSignal, timeoutMs: number): Promise<Answer> {
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(url, { method, headers, body, signal, dispatcher: this.agent, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    } catch (err) {
      throw this.failure(err, url, timeout, true);
    }
    const out = flatten(res.headers as Record<string, string | string[] | undefined>);
    const declared = Number(out["content-length"]);
    const tooLarge = (bytes: number) =>
      new BifrostError("HTTP_BODY_TOO_LARGE", `ctx.http: the answer of ${method} ${describeUrl(url)} is ${bytes > maxBytes && Number.isFinite(declared) && declared === bytes ? `${bytes} bytes` : `over ${maxBytes} bytes`}; the limit is ${maxBytes} bytes (BIFROST_HTTP_MAX_RESPONSE_BYTES)`, {
        details: { direction: "response", limit: maxBytes, status: res.statusCode },
      });
    if (Number.isFinite(declared) && declared > maxBytes) {
      // Destroying an unread body emits an AbortError nobody else listens for.
      res.body.on("error", () => {});
      res.body.destroy();
      throw tooLarge(declared);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > maxBytes) {
          res.body.destroy();
          throw tooLarge(size);
        }
        chunks.push(buf);
      }
    } catch (err) {
      if (err instanceof BifrostError) throw err;
      throw this.failure(err, url, timeout, false);
    }
    return { status: res.statusCode, headers: out, body: Buffer.concat(chunks, size), url };
  }

  private failure(err: unknown, url: URL, timeout: AbortSignal, beforeAnswer: boolean): Error {
    const own = bifrostErrorIn(err);
    if (own) return own;
    if (timeout.aborted) return new NetworkFailure(`no answer from ${url.host} in time`, "TIMEOUT", "exchange", true);
    const code = codeOf(err);
    if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") return new NetworkFailure(`no answer from ${url.host} in time`, code, "exchange", true);
    // Anything else that aborted is the invocation ending: the caller stops.
    if ((err as { name?: unknown } | null)?.name === "AbortError" || code === "UND_ERR_ABORTED") return err instanceof Error ? err : new Error(String(err));
    const phase = beforeAnswer && CONNECT_CODES.has(code) ? "connect" : "exchange";
    const message = err instanceof Error ? err.message : String(err);
    return new NetworkFailure(`${url.host}: ${message.length > 300 ? `${message.slice(0, 300)}…` : message}`, code, phase, false);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
