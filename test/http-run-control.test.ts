import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import type { Engine } from "../engine/engine.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { bearer, createTestKey, memoryLogger, openTestEngine, tempDir, workflowSource, writeFiles } from "./helpers.js";

/** POST /api/runs/:id/cancel and /retry over a listening server, with a second engine on its database. */

let server: RunningServer;
let worker: Engine;
const keys = { admin: "", operator: "", viewer: "", otherOrg: "" };

const FLAKY = workflowSource(
  "flaky",
  `const ticket = await ctx.step("load", () => { ctx.log.info("loading ticket"); return 42; });
   if (ctx.run.trigger !== "retry") throw new Error("upstream down");
   return { ticket };`,
);

beforeAll(async () => {
  const workflowsDir = tempDir("bifrost-wf-");
  writeFiles(workflowsDir, {
    "spin.ts": workflowSource("spin", `ctx.log.info("spinning"); for (;;) {}`),
    "flaky.ts": FLAKY,
    "later.ts": workflowSource("later", `throw new Error("first try fails");`, `\n  retry: { attempts: 2, delay: "1h" },`),
  });
  const dataDir = tempDir();
  server = await startServer(loadConfig({}, { dataDir, workflowsDir, port: 0, watch: false, pollMs: 50 }), { logger: memoryLogger().logger });
  keys.admin = await createTestKey(server.engine, "admin");
  keys.operator = await createTestKey(server.engine, "operator");
  keys.viewer = await createTestKey(server.engine, "viewer");
  keys.otherOrg = await createTestKey(server.engine, "operator", "fabrikam");
  // Another engine process on the same database, executing runs handed to it.
  worker = (await openTestEngine({ dataDir, workflowsDir })).engine;
  worker.start({ claim: false, watch: false });
});

afterAll(async () => {
  await worker?.stop(0);
  await server?.close();
});

async function api(method: string, path: string, key: string | undefined, body?: unknown) {
  const res = await fetch(server.url + path, {
    method,
    headers: { ...(key ? bearer(key) : {}), ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A never-yielding run executing in the worker engine, once its first line is out. */
async function spinningInWorker(org: string | null = null): Promise<string> {
  const { run } = await worker.triggerRun("spin", { org }, { adopt: true });
  await worker.events.next("run:log", (e) => e.runId === run.id);
  return run.id;
}

describe("POST /api/runs/:id/cancel", () => {
  it("stops a never-yielding run executing in another engine process: 202 while it stops, then cancelled", async () => {
    const id = await spinningInWorker();
    const finished = worker.events.next("run:finished", (e) => e.run.id === id);
    const res = await api("POST", `/api/runs/${id}/cancel`, keys.operator);
    expect(res).toMatchObject({ status: 202, body: { id, status: "running", cancelRequestedAt: expect.any(String), retryOf: null } });
    expect((await finished).run).toMatchObject({ status: "cancelled", error: { code: "RUN_CANCELLED" } });
    expect(await api("GET", `/api/runs/${id}`, keys.viewer)).toMatchObject({ status: 200, body: { status: "cancelled", error: { code: "RUN_CANCELLED" } } });
  });

  it("with wait, answers 200 with the cancelled run", async () => {
    const id = await spinningInWorker();
    expect(await api("POST", `/api/runs/${id}/cancel`, keys.admin, { wait: true })).toMatchObject({ status: 200, body: { id, status: "cancelled", steps: [] } });
  });

  it("cancels a queued run at once (200) and answers 409 RUN_NOT_CANCELLABLE once it has finished", async () => {
    // Queued for its retry in an hour: no engine holds it.
    const { run } = await server.engine.triggerRun("later");
    await server.engine.events.next("run:requeued", (e) => e.runId === run.id);
    expect(await api("POST", `/api/runs/${run.id}/cancel`, keys.operator)).toMatchObject({ status: 200, body: { id: run.id, status: "cancelled", attempt: 2, error: { code: "RUN_CANCELLED" } } });
    const again = await api("POST", `/api/runs/${run.id}/cancel`, keys.operator);
    expect(again).toMatchObject({ status: 409, body: { error: { code: "RUN_NOT_CANCELLABLE", details: { id: run.id, status: "cancelled" } } } });
    expect(again.body.error.fix).toMatch(/retry/);
  });

  it("needs a key that may trigger, and hides another org's run", async () => {
    const id = await spinningInWorker("contoso");
    try {
      expect(await api("POST", `/api/runs/${id}/cancel`, undefined)).toMatchObject({ status: 401, body: { error: { code: "UNAUTHENTICATED" } } });
      expect(await api("POST", `/api/runs/${id}/cancel`, keys.viewer)).toMatchObject({ status: 403, body: { error: { code: "FORBIDDEN" } } });
      expect(await api("POST", `/api/runs/${id}/cancel`, keys.otherOrg)).toMatchObject({ status: 404, body: { error: { code: "RUN_NOT_FOUND" } } });
      expect(await api("POST", `/api/runs/${id}/cancel`, keys.operator, { wait: "soon" })).toMatchObject({ status: 400, body: { error: { code: "VALIDATION_FAILED" } } });
      expect(await api("POST", `/api/runs/${id}/cancel`, keys.operator, { force: true })).toMatchObject({ status: 400, body: { error: { code: "VALIDATION_FAILED" } } });
      // None of those touched the run.
      expect((await worker.storage.runs.get(id))?.cancelRequestedAt).toBeNull();
    } finally {
      await worker.cancel(id);
      await worker.waitForRun(id, 30_000);
    }
  });
});

describe("POST /api/runs/:id/retry", () => {
  it("starts a new run that reuses the finished step: its side effect happens once", async () => {
    const first = await api("POST", "/api/workflows/flaky/runs", keys.operator, { wait: true });
    expect(first.body).toMatchObject({ status: "failed", steps: [{ name: "load", status: "succeeded" }] });

    const retry = await api("POST", `/api/runs/${first.body.id}/retry`, keys.operator, { wait: true });
    expect(retry).toMatchObject({ status: 200, body: { status: "succeeded", trigger: "retry", retryOf: first.body.id, attempt: 1, result: { ticket: 42 }, steps: [{ name: "load", status: "succeeded" }] } });
    expect(retry.body.id).not.toBe(first.body.id);

    const logs = await Promise.all([first.body.id, retry.body.id].map((id: string) => api("GET", `/api/runs/${id}/logs`, keys.viewer)));
    const lines = logs.flatMap((l) => l.body.items.map((i: { msg: string }) => i.msg));
    expect(lines.filter((m: string) => m === "loading ticket")).toHaveLength(1);
    expect(await api("GET", "/api/runs?trigger=retry", keys.viewer)).toMatchObject({ body: { items: [{ id: retry.body.id, retryOf: first.body.id }] } });

    // Without wait the reply is the queued (or already running) retry, 202.
    const quick = await api("POST", `/api/runs/${first.body.id}/retry`, keys.operator);
    expect(quick).toMatchObject({ status: 202, body: { trigger: "retry", retryOf: first.body.id } });
    await server.engine.waitForRun(quick.body.id, 30_000);
  });

  it("answers 409 RUN_NOT_RETRYABLE for a succeeded or running run, 403 for a viewer, 404 for another org", async () => {
    const id = await spinningInWorker();
    try {
      expect(await api("POST", `/api/runs/${id}/retry`, keys.operator)).toMatchObject({ status: 409, body: { error: { code: "RUN_NOT_RETRYABLE", details: { status: "running" } } } });
    } finally {
      await worker.cancel(id);
      await worker.waitForRun(id, 30_000);
    }
    expect(await api("POST", `/api/runs/${id}/retry`, keys.viewer)).toMatchObject({ status: 403 });
    expect(await api("POST", `/api/runs/${id}/retry`, keys.otherOrg)).toMatchObject({ status: 404, body: { error: { code: "RUN_NOT_FOUND" } } });
    const retried = await api("POST", `/api/runs/${id}/retry`, keys.operator);
    expect(retried).toMatchObject({ status: 202, body: { retryOf: id } });
    await api("POST", `/api/runs/${retried.body.id}/cancel`, keys.operator, { wait: true });
  });
});
