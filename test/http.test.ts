import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { openStorage } from "../storage/index.js";
import { bearer, createTestKey, memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";

let server: RunningServer;
let base: string;
/** An admin key: these tests are about the API itself (test/auth.test.ts covers roles and orgs). */
let key: string;

beforeAll(async () => {
  const workflowsDir = tempDir("bifrost-wf-");
  writeFiles(workflowsDir, {
    "greet.ts": workflowSource(
      "greet",
      `ctx.log.info("starting", { name: params.name });
       const upper = await ctx.step("shout", () => params.name.toUpperCase());
       ctx.log.warn("shouted");
       return { greeting: "HELLO " + upper };`,
      `\n  description: "greets",\n  params: { type: "object", properties: { name: { type: "string", minLength: 1 } }, required: ["name"], additionalProperties: false },\n  schedule: { cron: "0 9 * * 1", timezone: "America/New_York" },`,
    ),
    "gate.ts": workflowSource("gate", `ctx.log.info("waiting"); await new Promise(() => {});`, `\n  timeout: "1500ms",`),
    "broken.ts": "export default {",
  });
  const config = loadConfig({}, { dataDir: tempDir(), workflowsDir, port: 0, watch: false, pollMs: 50 });
  server = await startServer(config, { logger: memoryLogger().logger });
  base = server.url;
  key = await createTestKey(server.engine);
});

afterAll(async () => {
  await server.close();
});

async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? { ...bearer(key), ...headers } : { "content-type": "application/json", ...bearer(key), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

describe("HTTP API over a listening server", () => {
  it("reports health", async () => {
    expect(await api("GET", "/health")).toMatchObject({ status: 200, body: { status: "ok", database: "ok", dialect: "sqlite" } });
  });

  it("lists workflows with params schema, schedule, next fire time, source kind and version; and modules that failed", async () => {
    const { status, body } = await api("GET", "/api/workflows");
    expect(status).toBe(200);
    expect(body.items.map((w: { name: string }) => w.name)).toEqual(["gate", "greet"]);
    const greet = body.items.find((w: { name: string }) => w.name === "greet");
    expect(greet).toMatchObject({
      name: "greet",
      description: "greets",
      params: { required: ["name"] },
      schedule: { cron: "0 9 * * 1", timezone: "America/New_York", overlap: "skip", catchUp: "latest" },
      sourceKind: "file",
      version: expect.stringMatching(/^[0-9a-f]{16}$/),
      lastError: null,
    });
    const next = new Date(greet.nextFireAt);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(next.getUTCDay()).toBe(1);
    expect(body.problems).toHaveLength(1);
    expect(body.problems[0]).toMatchObject({ error: { code: "WORKFLOW_COMPILE_ERROR" } });
    expect(body.problems[0].error.message).toMatch(/broken\.ts:1:\d+/);

    expect(await api("GET", "/api/workflows/greet")).toMatchObject({ status: 200, body: { name: "greet" } });
    expect(await api("GET", "/api/workflows/missing")).toMatchObject({ status: 404, body: { error: { code: "WORKFLOW_NOT_FOUND" } } });
  });

  it("triggers a run, waits for it, and reads back result, steps and ordered logs", async () => {
    const triggered = await api("POST", "/api/workflows/greet/runs", { params: { name: "ada" }, wait: 20_000, org: "contoso" });
    expect(triggered.status).toBe(200);
    const run = triggered.body;
    expect(run).toMatchObject({
      workflow: "greet",
      org: "contoso",
      trigger: "api",
      status: "succeeded",
      params: { name: "ada" },
      result: { greeting: "HELLO ADA" },
      error: null,
      attempt: 1,
      scheduledFor: null,
      steps: [{ name: "shout", status: "succeeded", attempts: 1, error: null }],
    });
    expect(run.durationMs).toBeGreaterThanOrEqual(0);
    for (const key of ["queuedAt", "startedAt", "finishedAt"]) expect(new Date(run[key]).toISOString()).toBe(run[key]);

    expect((await api("GET", `/api/runs/${run.id}`)).body).toMatchObject({ id: run.id, status: "succeeded", steps: [{ name: "shout" }] });
    const logs = await api("GET", `/api/runs/${run.id}/logs`);
    expect(logs.body.items).toEqual([
      { seq: 1, ts: expect.any(String), level: "info", msg: "starting", data: { name: "ada" } },
      { seq: 2, ts: expect.any(String), level: "warn", msg: "shouted" },
    ]);
    expect((await api("GET", `/api/runs/${run.id}/logs?level=warn`)).body.items.map((l: { seq: number }) => l.seq)).toEqual([2]);
    expect((await api("GET", `/api/runs/${run.id}/logs?after=1`)).body.items.map((l: { seq: number }) => l.seq)).toEqual([2]);
  });

  it("answers 202 with id and status without wait, and the current state when a wait elapses", async () => {
    const quick = await api("POST", "/api/workflows/greet/runs", { params: { name: "bo" } });
    expect(quick.status).toBe(202);
    expect(Object.keys(quick.body).sort()).toEqual(["id", "status"]);
    expect(quick.body.status).toBe("queued");

    const slow = await api("POST", "/api/workflows/gate/runs", { wait: 100 });
    expect(slow.status).toBe(202);
    expect(["queued", "running"]).toContain(slow.body.status);
    const done = await api("POST", "/api/workflows/gate/runs", { wait: true });
    expect(done).toMatchObject({ status: 200, body: { status: "timed_out", error: { code: "RUN_TIMED_OUT" } } });
  });

  it("streams log lines as server-sent events until the run ends", async () => {
    const { body } = await api("POST", "/api/workflows/greet/runs", { params: { name: "sse" }, wait: 20_000 });
    const res = await fetch(`${base}/api/runs/${body.id}/logs`, { headers: { accept: "text/event-stream", ...bearer(key) } });
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const text = await res.text();
    const events = text.trim().split("\n\n").map((block) => Object.fromEntries(block.split("\n").map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)])));
    expect(events.map((e) => e.event)).toEqual(["log", "log", "end"]);
    expect(events.map((e) => e.id)).toEqual(["1", "2", undefined]);
    expect(JSON.parse(events[0]!.data!)).toMatchObject({ seq: 1, msg: "starting" });
    expect(JSON.parse(events[2]!.data!)).toEqual({ id: body.id, status: "succeeded" });
  });

  it("lists runs newest first with filters and cursor pagination", async () => {
    const ids: string[] = [];
    for (const name of ["p1", "p2", "p3"]) ids.push((await api("POST", "/api/workflows/greet/runs", { params: { name }, org: "fabrikam", wait: 20_000 })).body.id);
    const page1 = await api("GET", "/api/runs?org=fabrikam&limit=2");
    expect(page1.body.items.map((r: { id: string }) => r.id)).toEqual([ids[2], ids[1]]);
    expect(page1.body.nextCursor).toEqual(expect.any(String));
    const page2 = await api("GET", `/api/runs?org=fabrikam&limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body).toEqual({ items: [expect.objectContaining({ id: ids[0] })], nextCursor: null });
    const failed = await api("GET", "/api/runs?status=timed_out&workflow=gate");
    expect(failed.body.items.every((r: { status: string }) => r.status === "timed_out")).toBe(true);
    expect((await api("GET", `/api/runs?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).body.items).toEqual([]);
  });

  it("rejects bad input with stable codes and loses nothing", async () => {
    const before = (await api("GET", "/api/runs?limit=200")).body.items.length;
    const cases: [string, string, unknown, number, string][] = [
      ["POST", "/api/workflows/greet/runs", { params: { name: 5 } }, 400, "INVALID_PARAMS"],
      ["POST", "/api/workflows/greet/runs", { params: {} }, 400, "INVALID_PARAMS"],
      ["POST", "/api/workflows/nope/runs", {}, 404, "WORKFLOW_NOT_FOUND"],
      ["POST", "/api/workflows/greet/runs", '{"params": {', 400, "INVALID_JSON"],
      ["POST", "/api/workflows/greet/runs", { params: { name: "x" }, extra: 1 }, 400, "VALIDATION_FAILED"],
      ["POST", "/api/workflows/greet/runs", { params: { name: "x" }, wait: "5" }, 400, "VALIDATION_FAILED"],
      ["POST", "/api/workflows/greet/runs", { params: { name: "x" }, org: "bad org!" }, 400, "VALIDATION_FAILED"],
      ["GET", "/api/runs?status=exploded", undefined, 400, "VALIDATION_FAILED"],
      ["GET", "/api/runs?cursor=garbage", undefined, 400, "VALIDATION_FAILED"],
      ["GET", "/api/runs?since=yesterday", undefined, 400, "VALIDATION_FAILED"],
      ["GET", "/api/runs/00000000-0000-7000-8000-000000000000", undefined, 404, "RUN_NOT_FOUND"],
      ["GET", "/api/runs/00000000-0000-7000-8000-000000000000/logs", undefined, 404, "RUN_NOT_FOUND"],
      ["GET", "/api/nothing-here", undefined, 404, "ROUTE_NOT_FOUND"],
    ];
    for (const [method, path, body, status, code] of cases) {
      const res = await api(method, path, body);
      expect({ path, body, status: res.status, code: res.body?.error?.code }).toEqual({ path, body, status, code });
      expect(res.body.error.message, `${path} message`).toEqual(expect.any(String));
      expect(res.body.error.message.length).toBeGreaterThan(10);
    }
    const broken = await api("POST", "/api/workflows/broken/runs", {});
    expect(broken).toMatchObject({ status: 404, body: { error: { code: "WORKFLOW_NOT_FOUND", details: { loadError: { code: "WORKFLOW_COMPILE_ERROR" } } } } });
    expect(broken.body.error.message).toMatch(/its module failed to load: (\S*\/)?broken\.ts:1:\d+/);
    const invalid = await api("POST", "/api/workflows/greet/runs", { params: { name: 5 } });
    expect(invalid.body.error.message).toMatch(/params\.name must be string/);
    expect(invalid.body.error.details.problems[0]).toMatchObject({ path: "/name" });
    expect((await api("GET", "/api/runs?limit=200")).body.items.length).toBe(before);
    // The engine still serves runs after all of that.
    expect((await api("POST", "/api/workflows/greet/runs", { params: { name: "ok" }, wait: 20_000 })).body.status).toBe("succeeded");
  });

  it("replays an idempotent trigger", async () => {
    const a = await api("POST", "/api/workflows/greet/runs", { params: { name: "once" }, idempotencyKey: "k-1" });
    const b = await api("POST", "/api/workflows/greet/runs", { params: { name: "once" }, idempotencyKey: "k-1" });
    expect(b.body.id).toBe(a.body.id);
    expect(b.headers.get("idempotent-replayed")).toBe("true");
  });
});

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

/** The keys of a shape the README documents as `{ a, b, c? }` right after `prefix`. */
function documented(prefix: string): { required: string[]; optional: string[] } {
  const at = readme.indexOf(prefix);
  expect(at, `README documents ${prefix}`).toBeGreaterThanOrEqual(0);
  // Top-level keys of the `{ ... }` that follows, skipping nested shapes such as `[{ file, at }]`.
  const text = readme.slice(at + prefix.length);
  expect(text[0], `README shape after ${prefix}`).toBe("{");
  const keys: string[] = [];
  let depth = 0;
  let current = "";
  for (const c of text) {
    if (c === "{" || c === "[") depth++;
    if (c === "}" || c === "]") depth--;
    if (depth === 0) break;
    if (depth === 1 && c === ",") {
      keys.push(current);
      current = "";
    } else if (depth === 1 && c !== "{") current += c;
  }
  keys.push(current);
  for (let i = 0; i < keys.length; i++) keys[i] = keys[i]!.split(":")[0]!.trim();
  return { required: keys.filter((k) => !k.endsWith("?")), optional: keys.filter((k) => k.endsWith("?")).map((k) => k.slice(0, -1)) };
}

/** `value` has every required key of the documented shape and no key the README does not name. */
function expectDocumented(value: object, prefix: string, extra: string[] = []): void {
  const { required, optional } = documented(prefix);
  const keys = Object.keys(value);
  expect({ prefix, missing: [...required, ...extra].filter((k) => !keys.includes(k)) }).toEqual({ prefix, missing: [] });
  expect({ prefix, undocumented: keys.filter((k) => ![...required, ...optional, ...extra].includes(k)) }).toEqual({ prefix, undocumented: [] });
}

describe("the README documents exactly what the API returns", () => {
  it("names no design file outside the repository", () => {
    expect(readme).not.toMatch(/DESIGN/);
  });

  it("health, workflows, runs, steps, errors and log lines", async () => {
    const health = await api("GET", "/health");
    expectDocumented(health.body, "liveness and readiness: `200 ");

    const workflow = (await api("GET", "/api/workflows/greet")).body;
    expectDocumented(workflow, "- **Workflow:** `");
    expectDocumented(workflow.schedule, "`schedule` is `");
    expectDocumented(workflow.retry, "`retry` is `");
    expectDocumented(await api("GET", "/api/workflows").then((r) => r.body), "| `GET /api/workflows` | `");

    const quick = await api("POST", "/api/workflows/greet/runs", { params: { name: "doc" } });
    expectDocumented(quick.body, "Without `wait`: `202 ");
    const done = (await api("POST", "/api/workflows/greet/runs", { params: { name: "doc" }, wait: 20_000 })).body;
    expectDocumented(done, "- **Run record:** `", ["steps", "chunks"]);
    expectDocumented(done.steps[0], "- **Step:** `");
    const list = (await api("GET", "/api/runs?workflow=greet&limit=1")).body;
    expectDocumented(list, "| `GET /api/runs` | `?workflow&status&trigger&org&since&until&limit&cursor`: `");
    expectDocumented(list.items[0], "- **Run record:** `");

    const failed = (await api("POST", "/api/workflows/gate/runs", { wait: true })).body;
    expect(failed.error).toBeTruthy();
    expectDocumented(failed.error, "- **Run or step error:** `");

    const logs = (await api("GET", `/api/runs/${done.id}/logs`)).body;
    expectDocumented(logs, "| `GET /api/runs/:id/logs` | `?level&after&limit`: `");
    for (const line of logs.items) expectDocumented(line, "- **Log line:** `");

    const error = (await api("GET", "/api/nothing")).body;
    const shape = /```json\n(\{ "error": .*\})\n```/.exec(readme)?.[1];
    expect(Object.keys(JSON.parse(shape!).error)).toEqual(["code", "message", "fix", "details"]);
    expect(Object.keys(error.error)).toEqual(["code", "message", "fix"]);
  });
});

describe("HTTP shutdown", () => {
  it("ends open log streams and releases running runs when the server closes", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "gate.ts": workflowSource("gate", `ctx.log.info("waiting"); await new Promise(() => {});`) });
    const dataDir = tempDir();
    const config = loadConfig({}, { dataDir, workflowsDir, port: 0, watch: false, pollMs: 50, shutdownGraceMs: 0 });
    const own = await startServer(config, { logger: memoryLogger().logger });
    const { run } = await own.engine.triggerRun("gate");
    const res = await fetch(`${own.url}/api/runs/${run.id}/logs`, { headers: { accept: "text/event-stream", ...bearer(await createTestKey(own.engine, "viewer")) } });
    const reader = res.body!.getReader();
    let text = "";
    while (!text.includes("waiting")) text += new TextDecoder().decode((await reader.read()).value);
    await own.close();
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
    }
    const storage = await openStorage({ dataDir });
    expect(await storage.runs.get(run.id)).toMatchObject({ status: "queued", leaseOwner: null });
    await storage.close();
  });
});
