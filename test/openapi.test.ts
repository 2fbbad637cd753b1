import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RouteEntry } from "../engine/api/route-table.js";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { sign } from "../engine/webhooks/signature.js";
import { bearer, createTestKey, memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";

/**
 * The OpenAPI document covers every route with a summary, the documentation page works offline,
 * and real replies match the response schemas the document publishes (so the schemas cannot drift
 * from views.ts: the app serializes with JSON.stringify, a schema never strips a field).
 */

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

let server: RunningServer;
let admin: string;

beforeAll(async () => {
  const workflowsDir = tempDir("bifrost-wf-");
  writeFiles(workflowsDir, {
    "greet.ts": workflowSource(
      "greet",
      `ctx.log.info("hi", { who: params.name }); await ctx.step("s", () => 1); return { hello: params.name };`,
      `\n  webhook: true,\n  schedule: { cron: "0 9 * * 1" },\n  params: { type: "object", properties: { name: { type: "string", default: "you" } } },`,
    ),
    "boom.ts": workflowSource("boom", `await ctx.step("fails", () => { throw new Error("no"); });`),
    "broken.ts": "export default {",
  });
  server = await startServer(loadConfig({}, { dataDir: tempDir(), workflowsDir, port: 0, watch: false, pollMs: 50 }), { logger: memoryLogger().logger });
  admin = await createTestKey(server.engine);
});

afterAll(async () => {
  await server?.close();
});

interface Document {
  openapi: string;
  paths: Record<string, Record<string, { summary?: string; security?: unknown[]; responses?: Record<string, unknown> }>>;
}

const documented = () => server.app.routeTable.list().filter((e) => e.method !== "HEAD" && !e.url.startsWith("/docs") && e.url !== "/openapi.json");
const openApiPath = (url: string) => url.replace(/:([a-zA-Z]+)/g, "{$1}");

describe("the OpenAPI document", () => {
  it("is served at /openapi.json without a key and lists every route with a summary", async () => {
    const res = await fetch(`${server.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Document;
    expect(doc.openapi).toBe("3.1.0");
    const missing: string[] = [];
    for (const e of documented()) {
      const op = doc.paths[openApiPath(e.url)]?.[e.method.toLowerCase()];
      if (!op?.summary) missing.push(`${e.method} ${e.url}`);
    }
    expect(missing).toEqual([]);
    expect(Object.keys(doc.paths)).not.toContain("/docs");
    expect(doc.paths["/health"]?.get?.security).toEqual([]);
    expect(doc.paths["/api/runs"]?.get?.security).toEqual([{ apiKey: [] }]);
    expect(doc.paths["/api/hooks/{workflow}"]?.post?.security).toEqual([{ webhookSignature: [] }, { apiKey: [] }]);
    expect(Object.keys(doc.paths["/api/workflows/{name}/runs"]?.post?.responses ?? {})).toEqual(expect.arrayContaining(["200", "202", "400", "409"]));
  });

  it("has a page at /docs whose assets the engine serves itself", async () => {
    const page = await fetch(`${server.url}/docs/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((src) => !src.startsWith("http"));
    expect(assets.length).toBeGreaterThan(2);
    for (const asset of assets) {
      const res = await fetch(new URL(asset, `${server.url}/docs/`));
      // Read every body: an unread one keeps its connection busy and the server from closing.
      expect({ asset, status: res.status, bytes: (await res.arrayBuffer()).byteLength > 0 }).toEqual({ asset, status: 200, bytes: true });
    }
    expect(html).not.toMatch(/https?:\/\/(?!localhost|127\.0\.0\.1)[a-z]/i);
    const init = await (await fetch(`${server.url}/docs/static/swagger-initializer.js`)).text();
    expect(init).toContain("json");
    expect(((await (await fetch(`${server.url}/docs/json`)).json()) as Document).openapi).toBe("3.1.0");
  });
});

describe("replies match the published response schemas", () => {
  const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));
  const validators = new Map<string, ValidateFunction>();

  function routeOf(method: string, url: string): RouteEntry {
    const entry = server.app.routeTable.list().find((e) => e.method === method && e.url === url);
    if (!entry) throw new Error(`no route ${method} ${url}`);
    return entry;
  }

  /** Calls a route and checks the reply against the schema its route publishes for that status. */
  async function check(method: string, url: string, path: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<Record<string, unknown>> {
    const res = await fetch(server.url + path, { method, headers: { ...bearer(admin), ...(init.body !== undefined && { "content-type": "application/json" }), ...init.headers }, ...(init.body !== undefined && { body: init.body }) });
    const body = (await res.json()) as Record<string, unknown>;
    const schema = (routeOf(method, url).route.schema?.response as Record<string, object> | undefined)?.[String(res.status)];
    expect({ route: `${method} ${url}`, status: res.status, documented: schema !== undefined }).toEqual({ route: `${method} ${url}`, status: res.status, documented: true });
    const key = `${method} ${url} ${res.status}`;
    const validate = validators.get(key) ?? ajv.compile(schema!);
    validators.set(key, validate);
    const ok = validate(body);
    expect({ route: key, errors: ok ? [] : validate.errors }).toEqual({ route: key, errors: [] });
    return body;
  }

  it("for health, workflows, runs, steps, logs and errors", async () => {
    await check("GET", "/health", "/health");
    await check("GET", "/api/workflows", "/api/workflows");
    await check("GET", "/api/workflows/:name", "/api/workflows/greet");
    await check("GET", "/api/workflows/:name", "/api/workflows/missing");
    const queued = await check("POST", "/api/workflows/:name/runs", "/api/workflows/greet/runs", { body: JSON.stringify({ params: { name: "Ada" } }) });
    await check("POST", "/api/workflows/:name/runs", "/api/workflows/greet/runs", { body: JSON.stringify({ params: { name: "Ada" }, wait: 20_000, org: "contoso", idempotencyKey: "k" }) });
    const failed = await check("POST", "/api/workflows/:name/runs", "/api/workflows/boom/runs", { body: JSON.stringify({ wait: 20_000 }) });
    expect(failed.error).toMatchObject({ code: "WORKFLOW_ERROR", step: "fails" });
    await check("POST", "/api/workflows/:name/runs", "/api/workflows/greet/runs", { body: JSON.stringify({ params: { name: 1 } }) });
    await check("POST", "/api/workflows/:name/runs", "/api/workflows/greet/runs", { body: JSON.stringify({ params: { name: "Bo" }, idempotencyKey: "k" }) });
    await check("GET", "/api/runs", "/api/runs?limit=2");
    await check("GET", "/api/runs/:id", `/api/runs/${queued.id as string}`);
    await server.engine.waitForRun(queued.id as string, 20_000);
    await check("GET", "/api/runs/:id", `/api/runs/${failed.id as string}`);
    const logs = await check("GET", "/api/runs/:id/logs", `/api/runs/${queued.id as string}/logs`);
    expect((logs.items as unknown[]).length).toBeGreaterThan(0);
    await check("GET", "/api/runs/:id/logs", `/api/runs/${queued.id as string}/logs?limit=nope`);
    const retried = await check("POST", "/api/runs/:id/retry", `/api/runs/${failed.id as string}/retry`, { body: JSON.stringify({ wait: 20_000 }) });
    expect(retried).toMatchObject({ trigger: "retry", retryOf: failed.id });
    await check("POST", "/api/runs/:id/cancel", `/api/runs/${failed.id as string}/cancel`, { body: "{}" });
  });

  it("for webhooks", async () => {
    const info = await check("GET", "/api/workflows/:name/webhook", "/api/workflows/greet/webhook");
    const rotated = await check("POST", "/api/workflows/:name/webhook/rotate", "/api/workflows/greet/webhook/rotate");
    expect(rotated.secret).not.toBe(info.secret);
    const body = JSON.stringify({ name: "hook" });
    await check("POST", "/api/hooks/:workflow", "/api/hooks/greet", { body, headers: { authorization: "", "x-bifrost-signature": sign(rotated.secret as string, Buffer.from(body)) } });
    await check("POST", "/api/hooks/:workflow", "/api/hooks/greet", { body, headers: { authorization: "", "x-bifrost-signature": sign(info.secret as string, Buffer.from(body)) } });
  });
});
