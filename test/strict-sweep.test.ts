import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ERROR_CODES, type ErrorCode } from "../common/errors.js";
import type { RouteEntry } from "../engine/api/route-table.js";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { bearer, createTestKey, memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";

/**
 * The malformed-request sweep: every route the app serves (read from the app itself, so a new
 * route is swept without being listed here) gets wrong types, unknown fields, huge, truncated and
 * non-UTF-8 bodies, wrong content types, bad cursors, bad path parameters, wrong methods and missing
 * or weak keys. No answer may be a 5xx, and every 4xx is in the one error shape with a registry
 * code and that code's status. Nothing here is a request a route should accept.
 */

let server: RunningServer;
let admin: string;
let viewer: string;
let runId: string;

beforeAll(async () => {
  const workflowsDir = tempDir("bifrost-wf-");
  writeFiles(workflowsDir, {
    "echo.ts": workflowSource("echo", "return params;", `\n  params: { type: "object", properties: { a: { type: "integer" } }, additionalProperties: false },`),
    "hook.ts": workflowSource("hook", "return params;", `\n  webhook: true,\n  params: { type: "object", properties: { a: { type: "integer" } }, additionalProperties: false },`),
  });
  server = await startServer(loadConfig({}, { dataDir: tempDir(), workflowsDir, port: 0, watch: false, pollMs: 50 }), { logger: memoryLogger().logger });
  admin = await createTestKey(server.engine, "admin");
  viewer = await createTestKey(server.engine, "viewer");
  runId = (await server.engine.triggerRun("echo", { params: { a: 1 } })).run.id;
  await server.engine.waitForRun(runId, 20_000);
});

afterAll(async () => {
  await server?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One request over a socket (fetch refuses some of what this sends: bodies on GET, odd methods). */
function send(method: string, path: string, options: { headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Answer> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, method, path, headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    if (options.body !== undefined) req.end(options.body);
    else req.end();
  });
}

const problems: string[] = [];
let checked = 0;
beforeEach(() => {
  problems.length = 0;
});

/** Records a problem unless the answer is a 4xx in the error shape (or, where allowed, a success). */
function judge(what: string, answer: Answer, expect4xx = true): void {
  checked++;
  if (answer.status >= 500) return void problems.push(`${what}: ${answer.status} ${answer.text.slice(0, 200)}`);
  if (answer.status < 400) {
    if (expect4xx) problems.push(`${what}: accepted with ${answer.status}`);
    return;
  }
  // A reply to HEAD has no body to judge.
  if (what.startsWith("HEAD ")) return;
  if (!String(answer.headers["content-type"] ?? "").startsWith("application/json")) return void problems.push(`${what}: ${answer.status} is not JSON`);
  let body: { error?: { code?: string; message?: unknown; fix?: unknown } };
  try {
    body = JSON.parse(answer.text) as typeof body;
  } catch {
    return void problems.push(`${what}: ${answer.status} body is not JSON`);
  }
  const keys = Object.keys(body);
  const code = body.error?.code as ErrorCode | undefined;
  if (keys.length !== 1 || keys[0] !== "error" || !code || !(code in ERROR_CODES)) return void problems.push(`${what}: not the error shape: ${answer.text.slice(0, 200)}`);
  if (ERROR_CODES[code].status !== answer.status) problems.push(`${what}: ${code} answered with ${answer.status}, its status is ${ERROR_CODES[code].status}`);
  if (typeof body.error?.message !== "string" || typeof body.error?.fix !== "string") problems.push(`${what}: message or fix missing`);
}

/** A path the route really serves: "hook" is registered and takes webhooks, `runId` exists. */
function concrete(url: string): string {
  return url
    .replace(":workflow", "hook")
    .replace(":name", "hook")
    .replace(":id", runId)
    .replace(/\*$/, "x");
}

const schemaOf = (entry: RouteEntry, part: "querystring" | "body") => (entry.route.schema as Record<string, { properties?: Record<string, { type?: unknown; enum?: unknown[]; maxLength?: number }> }> | undefined)?.[part];

/** A value of the wrong type for a schema property. */
function wrongValue(property: { type?: unknown; enum?: unknown[] }): unknown {
  const types = Array.isArray(property.type) ? property.type : [property.type];
  if (types.includes("string")) return 12345;
  if (types.includes("integer") || types.includes("number")) return "12";
  if (types.includes("boolean")) return "true";
  if (types.includes("object")) return ["not", "an", "object"];
  return { unexpected: [1, 2, 3] };
}

function wrongQueryValue(property: { type?: unknown; enum?: unknown[]; maxLength?: number }): string {
  const types = Array.isArray(property.type) ? property.type : [property.type];
  if (types.includes("integer") || types.includes("number")) return "twelve";
  if (property.enum) return "no-such-value";
  return "x".repeat((property.maxLength ?? 10_000) + 1);
}

const apiRoutes = () => server.app.routeTable.list().filter((e) => !e.url.startsWith("/docs"));
const authed = (extra: Record<string, string> = {}) => ({ ...bearer(admin), ...extra });
const json = (extra: Record<string, string> = {}) => authed({ "content-type": "application/json", ...extra });

/** Built when used: the headers carry the key made in beforeAll. */
const bodyCases = (): [string, Record<string, string>, Buffer | string][] => [
  ["an unknown field", json(), JSON.stringify({ bogusField: 1 })],
  ["a truncated body", json(), '{"params": {"a": '],
  ["a body cut inside a string", json(), '{"params": "abc'],
  ["a body that is not UTF-8", json(), Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d])],
  ["a body that is an array", json(), "[]"],
  ["a body that is a number", json(), "12"],
  ["a body that is a string", json(), '"text"'],
  ["JSON null", json(), "null"],
  ["an empty JSON body", json(), ""],
  ["a huge body", json(), JSON.stringify({ params: { s: "x".repeat(1_200_000) } })],
  ["a deeply nested body", json(), `{"params": ${"[".repeat(20_000)}${"]".repeat(20_000)}}`],
  ["a __proto__ key", json(), '{"__proto__": {"polluted": true}}'],
  ["text/plain", authed({ "content-type": "text/plain" }), "params=1"],
  ["a form body", authed({ "content-type": "application/x-www-form-urlencoded" }), "params=1"],
  ["a multipart body", authed({ "content-type": "multipart/form-data; boundary=x" }), "--x\r\n\r\n--x--"],
  ["a content type with a bad parameter", authed({ "content-type": "application/json; charset=latin-1; ;;" }), "{}"],
  ["a body without a content type", authed(), "{}"],
];

describe("the malformed-request sweep", () => {
  it("covers every route the app serves", () => {
    const urls = new Set(apiRoutes().map((e) => `${e.method} ${e.url}`));
    for (const known of ["GET /health", "GET /api/runs", "POST /api/workflows/:name/runs", "POST /api/hooks/:workflow", "GET /metrics", "GET /openapi.json"]) expect(urls).toContain(known);
  });

  it("wrong methods are 405 with Allow, unknown paths 404, both in the error shape", async () => {
    const byPath = new Map<string, Set<string>>();
    for (const e of apiRoutes()) byPath.set(e.url, (byPath.get(e.url) ?? new Set()).add(e.method));
    for (const [url, methods] of byPath) {
      for (const method of ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
        if (methods.has(method)) continue;
        const answer = await send(method, concrete(url), { headers: authed() });
        judge(`${method} ${url}`, answer);
        if (answer.status !== 405 || !String(answer.headers.allow ?? "").includes([...methods].sort()[0]!)) problems.push(`${method} ${url}: ${answer.status}, allow ${String(answer.headers.allow)}`);
      }
    }
    for (const path of ["/api/nothing", "/api/runs/x/y/z", "/api", "/api/hooks", "/api/workflows/echo/runs/extra"]) {
      const answer = await send("GET", path, { headers: authed() });
      judge(`GET ${path}`, answer);
      if (answer.status !== 404) problems.push(`GET ${path}: ${answer.status}`);
    }
    expect(problems).toEqual([]);
  });

  it("unknown and wrongly typed query fields, and bad cursors", async () => {
    for (const e of apiRoutes()) {
      const path = concrete(e.url);
      judge(`${e.method} ${e.url}?bogus`, await send(e.method, `${path}?bogus=1`, { headers: authed() }));
      judge(`${e.method} ${e.url}?a[]=`, await send(e.method, `${path}?a%5B%5D=1&a%5B%5D=2`, { headers: authed() }));
      for (const [name, property] of Object.entries(schemaOf(e, "querystring")?.properties ?? {})) {
        judge(`${e.method} ${e.url}?${name}=<wrong>`, await send(e.method, `${path}?${name}=${encodeURIComponent(wrongQueryValue(property))}`, { headers: authed() }));
        judge(`${e.method} ${e.url}?${name} twice`, await send(e.method, `${path}?${name}=1&${name}=2`, { headers: authed() }));
      }
      if (schemaOf(e, "querystring")?.properties?.cursor) {
        for (const cursor of ["garbage", "%FF%FE", "eyJiZWZvcmUiOjF9", Buffer.from(JSON.stringify({ before: "../../etc" })).toString("base64url"), "x".repeat(5000)]) {
          judge(`${e.method} ${e.url}?cursor=${cursor.slice(0, 20)}`, await send(e.method, `${path}?cursor=${cursor}`, { headers: authed() }));
        }
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(40);
  });

  it("malformed bodies on every route that takes one, and wrongly typed fields", async () => {
    for (const e of apiRoutes().filter((r) => ["POST", "PUT", "PATCH", "DELETE"].includes(r.method))) {
      const path = concrete(e.url);
      for (const [what, headers, body] of bodyCases()) judge(`${e.method} ${e.url} with ${what}`, await send(e.method, path, { headers, body }));
      for (const [name, property] of Object.entries(schemaOf(e, "body")?.properties ?? {})) {
        judge(`${e.method} ${e.url} with ${name} of the wrong type`, await send(e.method, path, { headers: json(), body: JSON.stringify({ [name]: wrongValue(property) }) }));
      }
    }
    expect(problems).toEqual([]);
  });

  it("bad path parameters, missing and weak keys", async () => {
    for (const e of apiRoutes().filter((r) => r.url.includes(":"))) {
      const headers: Record<string, string> = ["POST", "PUT", "PATCH", "DELETE"].includes(e.method) ? json() : authed();
      for (const value of ["x".repeat(65), "x".repeat(2000), "%00", "..", "%2e%2e", "a%20b", "%F0%9F%92%A9", "nope-not-here"]) {
        const path = e.url.replace(/:[a-z]+/, value).replace(/:[a-z]+/g, "x");
        judge(`${e.method} ${path.slice(0, 80)}`, await send(e.method, path, { headers, body: headers["content-type"] ? '{"bogus": true}' : undefined }));
      }
    }
    for (const e of apiRoutes()) {
      const access = e.route.config?.access;
      if (access === "public") continue;
      const path = concrete(e.url);
      for (const [what, headers] of [
        ["no key", {}],
        ["a malformed key", { authorization: "Bearer not-a-key" }],
        ["a key of another scheme", { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` }],
        ["a huge header", { authorization: `Bearer ${"k".repeat(8000)}` }],
      ] as const) {
        const answer = await send(e.method, path, { headers });
        judge(`${e.method} ${e.url} with ${what}`, answer);
        if (answer.status !== 401) problems.push(`${e.method} ${e.url} with ${what}: ${answer.status}`);
      }
      if (access === "admin" || access === "trigger" || access === "webhook") {
        const answer = await send(e.method, path, { headers: bearer(viewer) });
        judge(`${e.method} ${e.url} as a viewer`, answer);
        if (answer.status !== 403) problems.push(`${e.method} ${e.url} as a viewer: ${answer.status}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("and the engine still serves afterwards", async () => {
    const answer = await send("POST", "/api/workflows/echo/runs", { headers: json(), body: JSON.stringify({ params: { a: 2 }, wait: 20_000 }) });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ status: "succeeded", result: { a: 2 } });
  });
});
