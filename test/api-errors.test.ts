import { Agent, request as httpRequest } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_CODES, type ErrorCode } from "../common/errors.js";
import { buildApp } from "../engine/api/app.js";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { bearer, createTestKey, memoryLogger, openTestEngine, tempDir, workflowSource, writeFiles } from "./helpers.js";

/**
 * Every 4xx/5xx is `{ error: { code, message, fix, details? } }` with a registry code and that
 * code's status, including replies that fastify or Node's HTTP parser would write themselves.
 * Cases inject() cannot produce (an unknown method, oversized headers) go over a real socket.
 */

let server: RunningServer;
let port: number;
/** Requests past the parser carry a key, so that the answers under test are not 401s. */
let auth: { authorization: string };

beforeAll(async () => {
  const workflowsDir = tempDir("bifrost-wf-");
  writeFiles(workflowsDir, {
    "echo.ts": workflowSource("echo", "return params;"),
    "nested.ts": workflowSource("nested", "return params;", `\n  params: { type: "object", properties: { s: { type: "string", pattern: "^(a+)+$" } } },`),
    "lookahead.ts": workflowSource("lookahead", "return 1;", `\n  params: { type: "object", properties: { s: { type: "string", pattern: "^(?=x)x$" } } },`),
  });
  server = await startServer(loadConfig({}, { dataDir: tempDir(), workflowsDir, port: 0, watch: false, pollMs: 50 }), { logger: memoryLogger().logger });
  port = Number(new URL(server.url).port);
  auth = bearer(await createTestKey(server.engine));
});

afterAll(async () => {
  await server?.close();
});

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** Writes `text` on a fresh socket and reads the reply until the server closes it. */
function rawRequest(text: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(text));
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (data += chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const [head = "", ...rest] = data.split("\r\n\r\n");
      const [statusLine = "", ...headerLines] = head.split("\r\n");
      const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      const text = rest.join("\r\n\r\n");
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body: text ? (JSON.parse(text) as unknown) : undefined });
    });
  });
}

async function post(path: string, body: string, contentType = "application/json"): Promise<Reply> {
  const res = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": contentType, ...auth }, body });
  const text = await res.text();
  return { status: res.status, headers: Object.fromEntries(res.headers), body: text ? (JSON.parse(text) as unknown) : undefined };
}

/** Asserts the one error shape and returns its code and message. */
function errorOf(reply: Reply): { code: ErrorCode; message: string; fix: string; details?: unknown } {
  expect(reply.headers["content-type"]).toMatch(/^application\/json/);
  const body = reply.body as { error: Record<string, unknown> };
  expect(Object.keys(body)).toEqual(["error"]);
  const keys = Object.keys(body.error);
  expect(keys.slice(0, 3)).toEqual(["code", "message", "fix"]);
  expect(keys.slice(3).every((k) => k === "details")).toBe(true);
  const code = body.error.code as ErrorCode;
  expect(Object.keys(ERROR_CODES)).toContain(code);
  expect(reply.status).toBe(ERROR_CODES[code].status);
  expect(body.error.message).toEqual(expect.any(String));
  expect(body.error.fix).toEqual(expect.any(String));
  return body.error as { code: ErrorCode; message: string; fix: string; details?: unknown };
}

describe("replies the framework used to write in its own shape", () => {
  it("an unknown method (refused by Node's HTTP parser)", async () => {
    const reply = await rawRequest("FOO /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    expect(errorOf(reply)).toMatchObject({ code: "MALFORMED_REQUEST", message: expect.stringContaining("not a standard HTTP method") });
  });

  it("headers over the server's limit", async () => {
    const reply = await rawRequest(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    expect(reply.status).toBe(431);
    expect(errorOf(reply)).toMatchObject({ code: "HEADERS_TOO_LARGE", message: expect.stringContaining("16 KB") });
  });

  it("a request that is not HTTP at all, and conflicting length headers", async () => {
    expect(errorOf(await rawRequest("hello there\r\n\r\n")).code).toBe("MALFORMED_REQUEST");
    const smuggle = await rawRequest("POST /api/workflows/echo/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    expect(errorOf(smuggle).code).toBe("MALFORMED_REQUEST");
  });

  it("a path that is not validly percent-encoded", async () => {
    const reply = await rawRequest("GET /api/workflows/%ZZ/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    expect(errorOf(reply)).toMatchObject({ code: "MALFORMED_REQUEST", message: expect.stringContaining('"/api/workflows/%ZZ/runs" is not validly percent-encoded') });
  });

  it("a path parameter past the router's limit, and one past the route's", async () => {
    const long = await rawRequest(`GET /api/runs/${"x".repeat(5000)} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    const error = errorOf(long);
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.message.length).toBeLessThan(400);
    const res = await fetch(`${server.url}/api/runs/${"x".repeat(100)}`, { headers: auth });
    expect(errorOf({ status: res.status, headers: Object.fromEntries(res.headers), body: await res.json() })).toMatchObject({ code: "VALIDATION_FAILED", message: expect.stringContaining("params.id") });
  });

  it("a method Node knows but no route has: 405 on a path that exists, 404 on one that does not", async () => {
    const reply = await rawRequest("PROPFIND /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    expect(errorOf(reply)).toMatchObject({ code: "METHOD_NOT_ALLOWED", message: "PROPFIND is not allowed on /api/runs: it accepts GET, HEAD" });
    expect(reply.headers.allow).toBe("GET, HEAD");
    const post = await rawRequest("DELETE /api/runs/abc/logs?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    expect(errorOf(post)).toMatchObject({ code: "METHOD_NOT_ALLOWED", message: "DELETE is not allowed on /api/runs/abc/logs: it accepts GET, HEAD" });
    const unknown = await rawRequest("PROPFIND /api/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    expect(errorOf(unknown)).toMatchObject({ code: "ROUTE_NOT_FOUND", message: "No route PROPFIND /api/nothing" });
  });

  it("bodies that are not JSON, too large, or empty", async () => {
    expect(errorOf(await post("/api/workflows/echo/runs", "name=ada", "text/plain"))).toMatchObject({ code: "UNSUPPORTED_MEDIA_TYPE", message: expect.stringContaining('"text/plain"') });
    expect(errorOf(await post("/api/workflows/echo/runs", "{bad"))).toMatchObject({ code: "INVALID_JSON", message: expect.stringMatching(/^The body is not valid JSON: /) });
    expect(errorOf(await post("/api/workflows/echo/runs", ""))).toMatchObject({ code: "INVALID_JSON", message: expect.stringContaining("empty") });
    expect(errorOf(await post("/api/workflows/echo/runs", JSON.stringify({ params: { s: "x".repeat(1024 * 1024) } }))).code).toBe("PAYLOAD_TOO_LARGE");
  });
});

describe("bodies read as they are, never coerced", () => {
  it("a body that is not UTF-8, or declared in another charset, is refused rather than misread", async () => {
    const latin1 = await fetch(`${server.url}/api/workflows/echo/runs`, { method: "POST", headers: { "content-type": "application/json", ...auth }, body: Buffer.from('{"params": {"s": "caf\xe9"}}', "latin1") });
    expect(errorOf({ status: latin1.status, headers: Object.fromEntries(latin1.headers), body: await latin1.json() })).toMatchObject({ code: "INVALID_JSON", message: expect.stringContaining("not valid UTF-8") });
    expect(errorOf(await post("/api/workflows/echo/runs", "{}", "application/json; charset=iso-8859-1"))).toMatchObject({ code: "UNSUPPORTED_MEDIA_TYPE", message: expect.stringContaining('"iso-8859-1"') });
    expect(await post("/api/workflows/echo/runs", JSON.stringify({ params: { s: "café" }, wait: 20_000 }), 'application/json; charset="UTF-8"')).toMatchObject({ status: 200, body: { result: { s: "café" } } });
  });

  it("params: null is a value the schema judges, not absent params", async () => {
    expect(errorOf(await post("/api/workflows/echo/runs", '{"params": null}'))).toMatchObject({ code: "INVALID_PARAMS", message: expect.stringContaining("must be object") });
  });
});

describe("fix hints", () => {
  it("a validation error without details does not point at details", async () => {
    const paths = [`/api/runs?cursor=garbage`, `/api/runs?since=yesterday`, `/api/runs?until=${"9".repeat(100)}`, `/api/runs/${"x".repeat(5000)}`];
    for (const path of paths) {
      const res = await fetch(`${server.url}${path}`, { headers: auth });
      const error = errorOf({ status: res.status, headers: Object.fromEntries(res.headers), body: await res.json() });
      expect({ path, code: error.code }).toEqual({ path, code: "VALIDATION_FAILED" });
      if (error.details === undefined) expect({ path, fix: error.fix }).not.toEqual({ path, fix: ERROR_CODES.VALIDATION_FAILED.hint });
    }
    const res = await fetch(`${server.url}/api/runs?since=yesterday`, { headers: auth });
    expect(((await res.json()) as { error: { fix: string } }).error.fix).toBe("Pass since as an ISO 8601 date-time such as 2026-01-31T09:00:00Z, or as epoch milliseconds.");
  });
});

describe("bodies with prototype keys", () => {
  it("are refused for what they are, not as invalid JSON", async () => {
    const top = errorOf(await post("/api/workflows/echo/runs", '{"__proto__": {"polluted": true}}'));
    expect(top).toMatchObject({ code: "VALIDATION_FAILED", message: expect.stringContaining('forbidden "__proto__" key at the top level of the body') });
    const inner = errorOf(await post("/api/workflows/echo/runs", '{"params": {"a": [{"constructor": {"prototype": {"x": 1}}}]}}'));
    expect(inner).toMatchObject({ code: "VALIDATION_FAILED", message: expect.stringContaining('forbidden "constructor.prototype" key at body.params.a[0]') });
    // Nothing was polluted, and a plain "constructor" field is data like any other.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const ok = await post("/api/workflows/echo/runs", JSON.stringify({ params: { constructor: "fine" }, wait: 20_000 }));
    expect(ok).toMatchObject({ status: 200, body: { status: "succeeded", result: { constructor: "fine" } } });
  });
});

describe("params bounds over HTTP", () => {
  it("3,000-deep params are a 400 INVALID_PARAMS and the engine keeps serving", async () => {
    const body = `{"params": {"x": ${"[".repeat(3000)}${"]".repeat(3000)}}}`;
    expect(errorOf(await post("/api/workflows/echo/runs", body))).toMatchObject({ code: "INVALID_PARAMS", message: expect.stringContaining("nest more than 64 levels deep") });
    expect(await post("/api/workflows/echo/runs", JSON.stringify({ params: { x: [[1]] }, wait: 20_000 }))).toMatchObject({ status: 200, body: { result: { x: [[1]] } } });
  });

  it("a catastrophic schema pattern is matched in linear time", async () => {
    // On a backtracking engine, 29 "a"s took 3.4 s and each one more doubles it: 60 would never end.
    const refused = errorOf(await post("/api/workflows/nested/runs", JSON.stringify({ params: { s: `${"a".repeat(60)}!` } })));
    expect(refused).toMatchObject({ code: "INVALID_PARAMS", message: expect.stringContaining("must match pattern") });
    expect(await post("/api/workflows/nested/runs", JSON.stringify({ params: { s: "aaaa" }, wait: 20_000 }))).toMatchObject({ status: 200, body: { status: "succeeded" } });
  });

  it("a pattern the linear engine cannot match is refused at registration, named", async () => {
    const res = await fetch(`${server.url}/api/workflows`, { headers: auth });
    const { items, problems } = (await res.json()) as { items: { name: string }[]; problems: { error: { code: string; message: string } }[] };
    expect(items.map((w) => w.name)).not.toContain("lookahead");
    expect(problems).toContainEqual(expect.objectContaining({ error: expect.objectContaining({ code: "WORKFLOW_INVALID", message: expect.stringContaining('pattern "^(?=x)x$" uses a lookahead') }) }));
  });
});

describe("requests during shutdown", () => {
  it("are answered 503 ENGINE_STOPPING in the error shape", async () => {
    const { engine } = await openTestEngine({ workflows: { "echo.ts": workflowSource("echo", "return 1;") } });
    const app = await buildApp({ engine });
    let entered!: () => void;
    const closing = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    app.addHook("preClose", async () => {
      entered();
      await released;
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    let closed: Promise<void> | undefined;
    try {
      await app.listen({ port: 0, host: "127.0.0.1" });
      const address = app.server.address();
      const appPort = typeof address === "object" && address ? address.port : 0;
      const get = () =>
        new Promise<Reply>((resolve, reject) => {
          const req = httpRequest({ host: "127.0.0.1", port: appPort, path: "/health", agent }, (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (c: string) => (text += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body: JSON.parse(text) as unknown }));
          });
          req.on("error", reject);
          req.end();
        });
      expect((await get()).status).toBe(200);
      closed = app.close();
      await closing;
      // The kept-alive connection is still open while the server drains.
      expect(errorOf(await get())).toMatchObject({ code: "ENGINE_STOPPING" });
    } finally {
      release();
      await closed;
      agent.destroy();
      if (!closed) await app.close();
      await engine.stop(0);
    }
  });
});
