import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BifrostError } from "../common/errors.js";
import type { Engine, EngineDeps } from "../engine/engine.js";
import type { EngineConfig } from "../engine/config.js";
import { loadHttpConfig } from "../engine/http/config.js";
import type { ConnectionProvider } from "../engine/http/connection.js";
import type { LogRecord, RunRecord } from "../storage/types.js";
import { openTestEngine, workflowSource } from "./helpers.js";
import { json, ScriptedServer, text, type Handler } from "./http-servers.js";

// One workflow for most cases: it makes the call its params describe and returns what came back,
// or, with `catch`, what the HttpError it threw carried.
const CALL = workflowSource(
  "call",
  `
    const { method, url, options, catch: caught } = params;
    try {
      const res = await ctx.http.request(method, url, options);
      return { status: res.status, ok: res.ok, body: res.body, headers: res.headers };
    } catch (err) {
      if (!caught) throw err;
      return { name: err.name, code: err.code, status: err.status ?? null, body: err.body ?? null, category: err.category ?? null, message: err.message };
    }
  `,
);

// Commits a step, then calls: a wait past the chunk deadline lets the run yield and resume.
const STEPPED = workflowSource(
  "stepped",
  `
    await ctx.step("before", () => { ctx.log.info("before ran"); return 1; });
    const res = await ctx.http.get(params.url, params.options);
    return { status: res.status, body: res.body };
  `,
  `\n  chunkTimeout: "2s",`,
);

// Starts `n` calls at once; returns what became of those past the first 32, leaving those unawaited.
const MANY = workflowSource(
  "many",
  `
    const calls = Array.from({ length: params.n }, () => ctx.http.get(params.url));
    for (const c of calls) c.catch(() => {});
    const late = await Promise.allSettled(calls.slice(32));
    return late.map((s) => (s.status === "rejected" ? s.reason.code : "answered"));
  `,
);

// Starts a call and returns without awaiting it (once a second call came back).
const DANGLING = workflowSource("dangling", `void ctx.http.get(params.url).catch(() => {}); await ctx.http.get(params.after); return "left";`);

const SHORT = workflowSource("short", `const res = await ctx.http.get(params.url, params.options); return res.status;`, `\n  chunkTimeout: "2s",`);

interface Harness {
  engine: Engine;
  logLines: () => string[];
}

const engines: Engine[] = [];
afterAll(async () => {
  for (const e of engines) await e.stop(0).catch(() => {});
});

const resolved: string[] = [];
/** Names resolve here, not through real DNS: *.test is the test server, rebind.test and mapped.test metadata addresses. */
async function testResolve(hostname: string): Promise<Array<{ address: string; family: number }>> {
  resolved.push(hostname);
  if (hostname === "rebind.test") return [{ address: "169.254.169.254", family: 4 }];
  if (hostname === "mapped.test") return [{ address: "::ffff:169.254.169.254", family: 6 }];
  if (hostname.endsWith(".test")) return [{ address: "127.0.0.1", family: 4 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
}

async function harness(options: { config?: Partial<EngineConfig>; deps?: EngineDeps } = {}): Promise<Harness> {
  const deps: EngineDeps = { ...options.deps, http: { resolve: testResolve, ...options.deps?.http } };
  const { engine, logLines } = await openTestEngine({ workflows: { "call.ts": CALL, "stepped.ts": STEPPED, "short.ts": SHORT, "many.ts": MANY, "dangling.ts": DANGLING }, config: { sandboxMemoryMb: 32, ...options.config }, deps });
  engines.push(engine);
  engine.start({ watch: false });
  return { engine, logLines };
}

async function run(engine: Engine, name: string, params: unknown): Promise<RunRecord> {
  const { run } = await engine.triggerRun(name, { params });
  return engine.waitForRun(run.id, 30_000);
}

const call = (h: Harness, method: string, url: string, options?: unknown, caught = false) => run(h.engine, "call", { method, url, options, catch: caught });

async function logs(engine: Engine, runId: string): Promise<LogRecord[]> {
  return engine.storage.logs.list(runId, { limit: 10_000 });
}

const retryLines = async (engine: Engine, runId: string) => (await logs(engine, runId)).filter((l) => l.msg === "http retry").map((l) => l.data as Record<string, unknown>);

let server: ScriptedServer;
let h: Harness;

beforeAll(async () => {
  server = await ScriptedServer.start();
  h = await harness({ config: { http: { ...loadHttpConfig({}), maxResponseBytes: 4096, maxRequestBytes: 2048 } }, deps: { http: { random: () => 0 } } });
});
afterAll(async () => {
  await server?.close();
});

let hosts = 0;
/**
 * A scripted route under a host name of its own: the gate is per origin, so a cool-down that one
 * case provokes never delays another.
 */
function route(path: string, ...handlers: Handler[]): string {
  hosts += 1;
  return server.on(path, ...handlers).replace("127.0.0.1", `h${hosts}.test`);
}

describe("ctx.http answers", () => {
  it("returns status, headers and the parsed JSON body, and counts the invocation's requests", async () => {
    const url = route("/ok", json(200, { items: [1, 2] }, { "x-total": "2" }));
    const r = await call(h, "GET", url, { query: { page: 2 }, headers: { "X-Trace": "t1" } });
    expect(r.status).toBe("succeeded");
    expect(r.result).toMatchObject({ status: 200, ok: true, body: { items: [1, 2] }, headers: { "x-total": "2", "content-type": "application/json" } });
    expect(server.to("/ok")[0]).toMatchObject({ method: "GET", headers: expect.objectContaining({ "x-trace": "t1" }) });
    const summary = (await logs(h.engine, r.id)).find((l) => l.msg === "http summary");
    expect(summary?.data).toEqual({ requests: 1, retries: 0, rateLimited: 0, waitMs: expect.any(Number) });
  });

  it("returns text when the answer is not JSON, and sends json and text bodies", async () => {
    const url = route("/echo", (_req, res, { body }) => res.writeHead(201, { "content-type": "text/plain" }).end(`got ${body}`));
    const r = await call(h, "POST", url, { json: { a: 1 } });
    expect(r.result).toMatchObject({ status: 201, body: 'got {"a":1}' });
    expect(server.to("/echo")[0]!.headers["content-type"]).toBe("application/json");
    const t = await call(h, "PUT", url, { body: "plain" });
    expect(t.result).toMatchObject({ body: "got plain" });
  });
});

/** Gaps between consecutive arrivals on the server's clock. */
const gaps = (path: string) => {
  const at = server.to(path).map((a) => a.at);
  return at.slice(1).map((t, i) => t - at[i]!);
};

describe("429 and 503 wait for the server's time", () => {
  it("honours Retry-After in seconds, and logs the retry without secrets", async () => {
    const url = route("/ra-seconds", text(429, "slow down", { "retry-after": "1" }), json(200, { done: true }));
    const r = await call(h, "GET", `${url}?access_token=s3cr3t-token&page=1`, { headers: { authorization: "Bearer s3cr3t-token" } });
    expect(r.result).toMatchObject({ status: 200, body: { done: true } });
    const [first, second] = server.to("/ra-seconds");
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(first!.retryAfterMs!);
    const lines = await retryLines(h.engine, r.id);
    expect(lines).toEqual([{ method: "GET", host: new URL(url).host, attempt: 1, status: 429, waitMs: expect.any(Number), reason: "rate limited (429)" }]);
    expect(lines[0]!.waitMs).toBeGreaterThan(900);
    const stored = JSON.stringify(await logs(h.engine, r.id)) + h.logLines().join("\n");
    expect(stored).not.toContain("s3cr3t");
    const summary = (await logs(h.engine, r.id)).find((l) => l.msg === "http summary")?.data as Record<string, number>;
    expect(summary).toMatchObject({ requests: 2, retries: 1, rateLimited: 1 });
    expect(summary.waitMs).toBeGreaterThan(900);
  });

  it("honours Retry-After as an HTTP date", async () => {
    let until = 0;
    const url = route(
      "/ra-date",
      (_req, res) => {
        until = Math.ceil((Date.now() + 1_000) / 1000) * 1000;
        res.writeHead(503, { "retry-after": new Date(until).toUTCString() }).end();
      },
      json(200, { done: true }),
    );
    const r = await call(h, "GET", url);
    expect(r.result).toMatchObject({ status: 200 });
    expect(server.to("/ra-date")[1]!.at).toBeGreaterThanOrEqual(until);
    expect((await retryLines(h.engine, r.id))[0]).toMatchObject({ status: 503, reason: "service unavailable (503)" });
  });

  it("honours x-ratelimit-reset when there is no Retry-After", async () => {
    const url = route("/reset", text(429, "", { "x-ratelimit-reset": "1", "x-ratelimit-remaining": "0" }), json(200, {}));
    const r = await call(h, "GET", url);
    expect(r.result).toMatchObject({ status: 200 });
    expect(gaps("/reset")[0]).toBeGreaterThanOrEqual(1_000);
  });

  it("backs off without a header: at least the rate-limit floor after a 503, jittered for 5xx", async () => {
    const url = route("/no-header", text(503, "busy"), text(500, "oops"), json(200, { ok: 1 }));
    const r = await call(h, "GET", url);
    expect(r.result).toMatchObject({ status: 200 });
    expect(server.to("/no-header")).toHaveLength(3);
    // random() is pinned to 0: a 503 waits the 250 ms floor, a 500 the jitter's 0.
    expect(gaps("/no-header")[0]).toBeGreaterThanOrEqual(250);
    expect((await retryLines(h.engine, r.id)).map((l) => [l.status, l.reason])).toEqual([
      [503, "service unavailable (503)"],
      [500, "server error (500)"],
    ]);
  });
});

describe("budgets", () => {
  it("stops after retry.attempts with HTTP_RETRY_BUDGET_EXHAUSTED", async () => {
    const url = route("/always-503", text(503, "down", { "retry-after": "0" }));
    const r = await call(h, "GET", url, { retry: { attempts: 3 } });
    expect(r.status).toBe("failed");
    expect(r.error).toMatchObject({ code: "HTTP_RETRY_BUDGET_EXHAUSTED", message: expect.stringContaining("503 to all 3 tries"), details: expect.objectContaining({ status: 503, attempts: 3 }) });
    expect(server.to("/always-503")).toHaveLength(3);
  });

  it("returns the last answer instead when throwOnError is false", async () => {
    const url = route("/always-429", text(429, "later", { "retry-after": "0" }));
    const r = await call(h, "GET", url, { retry: { attempts: 2 }, throwOnError: false });
    expect(r.result).toMatchObject({ status: 429, ok: false, body: "later" });
    expect(server.to("/always-429")).toHaveLength(2);
  });

  it("does not wait longer than retry.maxWait: it fails at once instead", async () => {
    const url = route("/long-wait", text(429, "", { "retry-after": "30" }));
    const r = await call(h, "GET", url, { retry: { maxWait: "1s" } });
    expect(r.error).toMatchObject({ code: "HTTP_RETRY_BUDGET_EXHAUSTED", message: expect.stringContaining("retry.maxWait (1s)") });
    expect(server.to("/long-wait")).toHaveLength(1);
  });

  it("never sleeps past the invocation's deadline: without a committed step it fails at once", async () => {
    const url = route("/past-deadline", text(429, "", { "retry-after": "10" }));
    const r = await run(h.engine, "short", { url });
    expect(r.status).toBe("failed");
    expect(r.error).toMatchObject({ code: "HTTP_RETRY_BUDGET_EXHAUSTED", message: expect.stringContaining("after the invocation's deadline") });
    expect(server.to("/past-deadline")).toHaveLength(1);
    // The host stays cooled down for every run: the next call is refused without being sent.
    const again = await run(h.engine, "short", { url });
    expect(again.error).toMatchObject({ code: "HTTP_RETRY_BUDGET_EXHAUSTED", message: expect.stringContaining("cooling down") });
    expect(server.to("/past-deadline")).toHaveLength(1);
  });

  it("with a committed step, yields at the deadline and resumes when the server allows", async () => {
    // Retry-After equals the chunk timeout: the wait ends after the deadline however early the 429 came.
    const url = route("/yield", text(429, "", { "retry-after": "2" }), json(200, { resumed: true }));
    const r = await run(h.engine, "stepped", { url });
    expect(r, JSON.stringify({ error: r.error, logs: (await logs(h.engine, r.id)).map((l) => l.msg) })).toMatchObject({ status: "succeeded", result: { status: 200, body: { resumed: true } } });
    const [first, second] = server.to("/yield");
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(first!.retryAfterMs!);
    const messages = (await logs(h.engine, r.id)).map((l) => l.msg);
    expect(messages.filter((m) => m === "before ran")).toHaveLength(1);
    expect(messages.some((m) => m.includes("the run yields and resumes at"))).toBe(true);
    expect(messages.filter((m) => m === "http summary")).toHaveLength(2);
  });
});

describe("what is repeated", () => {
  it("never repeats a POST after a 500 without an idempotency key", async () => {
    const url = route("/post-500", text(500, "exploded"), json(200, {}));
    const r = await call(h, "POST", url, { json: { order: 1 } });
    expect(r.error).toMatchObject({ code: "HTTP_ERROR", message: expect.stringContaining("answered 500: exploded (not retried: POST is not idempotent"), details: expect.objectContaining({ status: 500 }) });
    expect(server.to("/post-500")).toHaveLength(1);
  });

  it("repeats a POST with an idempotency key, sending the same key each time", async () => {
    const url = route("/post-key", text(500, "exploded"), json(201, { id: 7 }));
    const r = await call(h, "POST", url, { json: { order: 1 }, idempotencyKey: "order-1" });
    expect(r.result).toMatchObject({ status: 201, body: { id: 7 } });
    expect(server.to("/post-key").map((a) => a.headers["idempotency-key"])).toEqual(["order-1", "order-1"]);
  });

  it("retries a GET after network errors, and gives up with HTTP_TIMEOUT on a slow server", async () => {
    const url = route("/slow", (_req, res) => setTimeout(() => res.writeHead(200).end("late"), 5_000).unref());
    const r = await call(h, "GET", url, { timeout: 200, retry: { attempts: 2 } });
    expect(r.error).toMatchObject({ code: "HTTP_TIMEOUT", message: expect.stringContaining("after 2 tries") });
    expect(server.to("/slow")).toHaveLength(2);
    const reset = route("/reset-conn", (req) => req.socket.destroy(), json(200, { fine: true }));
    expect((await call(h, "GET", reset)).result).toMatchObject({ status: 200 });
    expect(server.to("/reset-conn")).toHaveLength(2);
  });
});

describe("errors the workflow sees", () => {
  it("throws an HttpError with status and a body excerpt; the run's code is the host's", async () => {
    const url = route("/missing", json(404, { error: "no such ticket" }));
    const caught = await call(h, "GET", url, undefined, true);
    expect(caught.result).toMatchObject({ name: "HttpError", code: "HTTP_ERROR", status: 404, body: '{"error":"no such ticket"}' });
    const failed = await call(h, "GET", url);
    expect(failed.error).toMatchObject({ code: "HTTP_ERROR", message: `GET ${url} answered 404: {"error":"no such ticket"}`, details: { status: 404, method: "GET", host: new URL(url).host, body: '{"error":"no such ticket"}' } });
  });

  it("returns the answer instead with throwOnError: false", async () => {
    const url = route("/missing2", json(404, { error: "gone" }));
    const r = await call(h, "GET", url, { throwOnError: false });
    expect(r.result).toMatchObject({ status: 404, ok: false, body: { error: "gone" } });
  });

  it("refuses bad arguments on the host with HTTP_REQUEST_INVALID", async () => {
    const r = await call(h, "BREW", server.url);
    expect(r.error).toMatchObject({ code: "HTTP_REQUEST_INVALID", message: expect.stringContaining('method "BREW"') });
    const h2 = await call(h, "GET", server.url, { headers: { "x-a": "1\r\nx-b: 2" } });
    expect(h2.error?.code).toBe("HTTP_REQUEST_INVALID");
  });
});

describe("limits", () => {
  it("refuses an answer over the response limit, declared or streamed", async () => {
    const declared = route("/big", text(200, "x".repeat(5000), { "content-length": "5000" }));
    expect((await call(h, "GET", declared)).error).toMatchObject({ code: "HTTP_BODY_TOO_LARGE", message: expect.stringContaining("5000 bytes; the limit is 4096") });
    const streamed = route("/big-chunked", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      for (let i = 0; i < 10; i++) res.write("y".repeat(1000));
      res.end();
    });
    expect((await call(h, "GET", streamed)).error).toMatchObject({ code: "HTTP_BODY_TOO_LARGE", message: expect.stringContaining("over 4096 bytes") });
  });

  it("refuses a request body over the limit before sending anything", async () => {
    const url = route("/upload", json(200, {}));
    const r = await call(h, "POST", url, { body: "z".repeat(3000) });
    expect(r.error).toMatchObject({ code: "HTTP_BODY_TOO_LARGE", details: expect.objectContaining({ direction: "request", limit: 2048 }) });
    expect(server.to("/upload")).toHaveLength(0);
  });
});

describe("pending calls", () => {
  it("refuses more than 32 calls pending at once in one invocation, and serves the others", async () => {
    // The first request is held, so the 32 started before it are all still pending (the gate
    // sends a new host one request alone) when the last 8 arrive.
    const url = route("/many", () => {});
    const r = await run(h.engine, "many", { url, n: 40 });
    expect(r.result).toEqual(Array(8).fill("HTTP_REQUEST_INVALID"));
    expect(server.to("/many").length).toBeLessThanOrEqual(1);
  });
});

describe("calls the workflow never awaited", () => {
  it("stop with the invocation instead of outliving its decision", async () => {
    let closed!: () => void;
    let arrived!: () => void;
    const gone = new Promise<void>((resolve) => (closed = resolve));
    const hanging = new Promise<void>((resolve) => (arrived = resolve));
    // Never answers: only the client giving up closes the connection.
    const url = route("/hang", (req) => {
      req.socket.once("close", () => closed());
      arrived();
    });
    // Answers once the hanging call is at the server, so the run ends while it is in flight.
    const after = route("/after", (req, res, ctx) => void hanging.then(() => json(200, {})(req, res, ctx)));
    const r = await run(h.engine, "dangling", { url, after });
    expect(r).toMatchObject({ status: "succeeded", result: "left" });
    await gone;
    expect(server.to("/hang")).toHaveLength(1);
  });
});

describe("metadata addresses are refused", () => {
  it("by address, in any spelling, and by name", async () => {
    for (const url of ["http://169.254.169.254/latest/meta-data/", "http://0xa9fea9fe/", "http://2852039166/", "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/", "http://metadata.google.internal/computeMetadata/v1/"]) {
      const r = await call(h, "GET", url);
      expect({ url, code: r.error?.code }).toEqual({ url, code: "HTTP_HOST_FORBIDDEN" });
    }
  });

  it("after DNS resolution: a name that resolves to a metadata address is never connected to", async () => {
    const r = await call(h, "GET", "http://rebind.test/latest/meta-data/");
    expect(r.error).toMatchObject({ code: "HTTP_HOST_FORBIDDEN", message: expect.stringContaining("resolves to 169.254.169.254") });
    const mapped = await call(h, "GET", "http://mapped.test/");
    expect(mapped.error).toMatchObject({ code: "HTTP_HOST_FORBIDDEN", message: expect.stringContaining("::ffff:169.254.169.254") });
    // The same resolver serves ordinary names.
    const ok = server.on("/named", json(200, { via: "api.test" }));
    expect((await call(h, "GET", ok.replace("127.0.0.1", "api.test"))).result).toMatchObject({ status: 200, body: { via: "api.test" } });
    expect(resolved).toEqual(expect.arrayContaining(["rebind.test", "mapped.test", "api.test"]));
  });

  it("through redirects", async () => {
    const hops = server.on("/hop", (_req, res) => res.writeHead(302, { location: "/hop2" }).end(), json(200, { followed: true }));
    server.on("/hop2", json(200, { followed: true }));
    expect((await call(h, "GET", hops)).result).toMatchObject({ status: 200, body: { followed: true } });
    for (const target of ["http://169.254.169.254/latest/meta-data/iam/", "http://metadata.google.internal/", "http://rebind.test/"]) {
      const url = route(`/redirect-${encodeURIComponent(target)}`, (_req, res) => res.writeHead(307, { location: target }).end());
      const r = await call(h, "GET", url);
      expect({ target, code: r.error?.code }).toEqual({ target, code: "HTTP_HOST_FORBIDDEN" });
    }
    const loop = server.on("/loop", (_req, res) => res.writeHead(302, { location: "/loop" }).end());
    expect((await call(h, "GET", loop)).error?.code).toBe("HTTP_TOO_MANY_REDIRECTS");
  });
});

describe("allow-lists", () => {
  it("restrict a workflow to its hosts, redirects included", async () => {
    const allowed = await harness({
      config: { http: loadHttpConfig({ BIFROST_HTTP_ALLOWED_HOSTS: JSON.stringify({ "workflow:call": ["api.test"] }) }) },
      deps: {},
    });
    const ok = server.on("/allowed", json(200, {}));
    expect((await call(allowed, "GET", ok.replace("127.0.0.1", "api.test"))).result).toMatchObject({ status: 200 });
    const refused = await call(allowed, "GET", ok);
    expect(refused.error).toMatchObject({ code: "HTTP_HOST_NOT_ALLOWED", message: expect.stringContaining('allow-list "workflow:call"') });
    const away = server.on("/away", (_req, res) => res.writeHead(302, { location: `http://other.test:${server.port}/allowed` }).end());
    expect((await call(allowed, "GET", away.replace("127.0.0.1", "api.test"))).error?.code).toBe("HTTP_HOST_NOT_ALLOWED");
  });
});

describe("connections", () => {
  it("fails with CONNECTION_NOT_FOUND, before sending anything, for a provider that is not connected", async () => {
    const url = route("/needs-auth", json(200, {}));
    const r = await call(h, "GET", url, { connection: "HaloPSA" });
    expect(r.error).toMatchObject({ code: "CONNECTION_NOT_FOUND", message: expect.stringContaining('"HaloPSA"') });
    expect(server.to("/needs-auth")).toHaveLength(0);
  });

  /** A provider whose first token is stale; a forced refresh gives the fresh one (or, with `broken`, another stale one). */
  function fakeProvider(broken: boolean): ConnectionProvider & { calls: Array<{ provider: string; org: string | null; forceRefresh: boolean }> } {
    const calls: Array<{ provider: string; org: string | null; forceRefresh: boolean }> = [];
    return {
      calls,
      async authHeader(provider, org, { forceRefresh }) {
        calls.push({ provider, org, forceRefresh });
        if (provider !== "HaloPSA") throw new BifrostError("CONNECTION_NOT_FOUND", `no connection "${provider}"`);
        return forceRefresh && !broken ? "Bearer fresh-token-123" : "Bearer stale-token-456";
      },
    };
  }
  const bearerOnly: Handler = (req, res) => (req.headers.authorization === "Bearer fresh-token-123" ? json(200, { me: "ok" }) : json(401, { error: "invalid_token" }))(req, res, { body: "", count: 0, arrivals: [] });

  it("a 401 refreshes the token once and repeats the request once", async () => {
    const provider = fakeProvider(false);
    const withAuth = await harness({ deps: { http: { connections: provider } } });
    const url = route("/me", bearerOnly);
    const r = await call(withAuth, "POST", url, { connection: "HaloPSA", json: {} });
    expect(r.result).toMatchObject({ status: 200, body: { me: "ok" } });
    expect(server.to("/me").map((a) => a.headers.authorization)).toEqual(["Bearer stale-token-456", "Bearer fresh-token-123"]);
    expect(provider.calls).toEqual([
      { provider: "HaloPSA", org: null, forceRefresh: false },
      { provider: "HaloPSA", org: null, forceRefresh: true },
    ]);
    expect((await retryLines(withAuth.engine, r.id))[0]).toMatchObject({ status: 401, reason: expect.stringContaining("refreshed") });
    const everything = JSON.stringify(await logs(withAuth.engine, r.id)) + withAuth.logLines().join("\n");
    expect(everything).not.toContain("token-123");
    expect(everything).not.toContain("token-456");
  });

  it("a 401 the refresh does not fix is token_expired; a 403 is permission_denied and not repeated", async () => {
    const provider = fakeProvider(true);
    const withAuth = await harness({ deps: { http: { connections: provider } } });
    const url = route("/me-broken", bearerOnly);
    const r = await call(withAuth, "GET", url, { connection: "HaloPSA" });
    expect(r.error).toMatchObject({ code: "HTTP_ERROR", category: "token_expired", fix: expect.stringContaining("connect the connection again"), details: expect.objectContaining({ status: 401 }) });
    expect(server.to("/me-broken")).toHaveLength(2);
    const forbidden = route("/admin-only", json(403, { error: "insufficient_scope" }));
    const caught = await call(withAuth, "GET", forbidden, { connection: "HaloPSA" }, true);
    expect(caught.result).toMatchObject({ code: "HTTP_ERROR", status: 403, category: "permission_denied" });
    expect(server.to("/admin-only")).toHaveLength(1);
    expect(JSON.stringify(r.error)).not.toContain("stale-token");
  });
});
