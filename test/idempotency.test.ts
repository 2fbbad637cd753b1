import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { bearer, createTestKey, memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";

/**
 * idempotencyKey over a real server: the same request replays its first run, another request
 * reusing the key is a 409 IDEMPOTENCY_CONFLICT (not a silent replay), keys are per workflow.
 */

let server: RunningServer;
let admin: string;

beforeAll(async () => {
  const workflowsDir = tempDir("bifrost-wf-");
  writeFiles(workflowsDir, {
    "echo.ts": workflowSource("echo", "return params;", `\n  params: { type: "object", properties: { a: { type: "integer" }, b: { type: "object" }, mode: { type: "string", default: "full" } } },`),
    "other.ts": workflowSource("other", "return params;"),
  });
  server = await startServer(loadConfig({}, { dataDir: tempDir(), workflowsDir, port: 0, watch: false, pollMs: 50 }), { logger: memoryLogger().logger });
  admin = await createTestKey(server.engine);
});

afterAll(async () => {
  await server?.close();
});

async function trigger(workflow: string, body: unknown, key = admin) {
  const res = await fetch(`${server.url}/api/workflows/${workflow}/runs`, { method: "POST", headers: { "content-type": "application/json", ...bearer(key) }, body: typeof body === "string" ? body : JSON.stringify(body) });
  return { status: res.status, replayed: res.headers.get("idempotent-replayed"), body: (await res.json()) as { id?: string; status?: string; error?: { code: string; message: string; details?: unknown } } };
}

const runsOf = async (workflow: string) => (await server.engine.listRuns({ workflow, limit: 1000 })).length;

describe("idempotency keys", () => {
  it("the same key with the same params replays the first run, whatever the key order", async () => {
    const first = await trigger("echo", { params: { a: 1, b: { x: 1, y: [1, 2] } }, idempotencyKey: "same-1" });
    expect({ status: first.status, replayed: first.replayed }).toEqual({ status: 202, replayed: null });
    // Raw text so that the key order really differs on the wire.
    const again = await trigger("echo", '{"idempotencyKey":"same-1","params":{"b":{"y":[1,2],"x":1},"a":1}}');
    expect({ status: again.status, replayed: again.replayed, id: again.body.id }).toEqual({ status: 202, replayed: "true", id: first.body.id });
    // Defaults are applied before comparing: naming the default is the same request.
    expect((await trigger("echo", { params: { a: 1, b: { x: 1, y: [1, 2] }, mode: "full" }, idempotencyKey: "same-1" })).body.id).toBe(first.body.id);
    // With wait, the replay is the first run as it now stands.
    const waited = await trigger("echo", { params: { a: 1, b: { x: 1, y: [1, 2] } }, idempotencyKey: "same-1", wait: 20_000 });
    expect({ status: waited.status, replayed: waited.replayed, id: waited.body.id, state: waited.body.status }).toEqual({ status: 200, replayed: "true", id: first.body.id, state: "succeeded" });
  });

  it("the same key with other params is 409 IDEMPOTENCY_CONFLICT and starts nothing", async () => {
    const first = await trigger("echo", { params: { a: 1 }, idempotencyKey: "conflict-1" });
    expect(first.status).toBe(202);
    const before = await runsOf("echo");
    for (const params of [{ a: 2 }, { a: 1, b: {} }, {}, { a: 1, mode: "quick" }]) {
      const again = await trigger("echo", { params, idempotencyKey: "conflict-1" });
      expect({ status: again.status, code: again.body.error?.code }).toEqual({ status: 409, code: "IDEMPOTENCY_CONFLICT" });
      expect(again.body.error?.details).toEqual({ workflow: "echo", idempotencyKey: "conflict-1", differs: "params" });
      expect(again.body.error?.message).not.toContain(first.body.id!);
    }
    expect(await runsOf("echo")).toBe(before);
  });

  it("a key is scoped to its org: the same key from another org is that org's own request", async () => {
    const contoso = await createTestKey(server.engine, "operator", "contoso");
    const fabrikam = await createTestKey(server.engine, "operator", "fabrikam");
    const first = await trigger("echo", { params: { a: 7 }, idempotencyKey: "org-1" }, contoso);
    expect(first.status).toBe(202);
    // Another org learns nothing of the first (not even that the key was used): it gets its own run.
    const other = await trigger("echo", { params: { a: 99 }, idempotencyKey: "org-1" }, fabrikam);
    expect(other.status).toBe(202);
    expect(other.body.id).not.toBe(first.body.id);
    expect(JSON.stringify(other.body)).not.toContain("contoso");
    // Each org's key replays its own run; runs without an org are one more scope.
    expect((await trigger("echo", { params: { a: 99 }, idempotencyKey: "org-1" }, fabrikam)).body.id).toBe(other.body.id);
    expect((await trigger("echo", { params: { a: 7 }, idempotencyKey: "org-1", org: "contoso" })).body.id).toBe(first.body.id);
    const global = await trigger("echo", { params: { a: 7 }, idempotencyKey: "org-1" });
    expect(global.status).toBe(202);
    expect([first.body.id, other.body.id]).not.toContain(global.body.id);
  });

  it("a key is scoped to its workflow", async () => {
    const a = await trigger("echo", { params: { a: 1 }, idempotencyKey: "scoped-1" });
    const b = await trigger("other", { params: { anything: true }, idempotencyKey: "scoped-1" });
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(b.body.id).not.toBe(a.body.id);
    expect(b.replayed).toBeNull();
  });

  it("no body at all is a run with default params", async () => {
    const res = await fetch(`${server.url}/api/workflows/echo/runs`, { method: "POST", headers: bearer(admin) });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect(await server.engine.waitForRun(id, 20_000)).toMatchObject({ status: "succeeded", params: { mode: "full" }, result: { mode: "full" } });
  });
});
