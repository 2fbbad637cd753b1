import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { buildApp } from "../engine/api/app.js";
import type { Engine } from "../engine/engine.js";
import { MAX_SOURCE_BYTES } from "../engine/registry/registry.js";
import { bearer, createTestKey, openTestEngine, workflowSource } from "./helpers.js";

/** PUT and DELETE /api/workflows/:name, through inject(). */

const opened: { engine: Engine; app: FastifyInstance }[] = [];
afterEach(async () => {
  for (const { engine, app } of opened.splice(0)) {
    await app.close();
    await engine.stop(0);
  }
});

async function open(extra: Parameters<typeof openTestEngine>[0] = {}) {
  const t = await openTestEngine(extra);
  const app = await buildApp({ engine: t.engine });
  opened.push({ engine: t.engine, app });
  t.engine.start({ watch: false });
  const admin = await createTestKey(t.engine, "admin");
  return { ...t, app, admin };
}

interface Reply {
  status: number;
  headers: Record<string, unknown>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON replies, read field by field
  body: any;
}

async function call(app: FastifyInstance, method: "GET" | "PUT" | "DELETE" | "POST", url: string, key: string | undefined, payload?: unknown): Promise<Reply> {
  const res = await app.inject({
    method,
    url,
    headers: { ...(key === undefined ? {} : bearer(key)), ...(payload === undefined ? {} : { "content-type": "application/json" }) },
    ...(payload === undefined ? {} : { payload: typeof payload === "string" ? payload : JSON.stringify(payload) }),
  });
  return { status: res.statusCode, headers: res.headers, body: res.body ? JSON.parse(res.body) : undefined };
}

const returning = (name: string, label: string) => workflowSource(name, `return ${JSON.stringify(label)};`);

describe("PUT /api/workflows/:name", () => {
  it("creates (201), replaces (200) and answers with the workflow as GET shows it", async () => {
    const { app, admin } = await open();
    const created = await call(app, "PUT", "/api/workflows/greeter", admin, { source: returning("greeter", "v1") });
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe("/api/workflows/greeter");
    expect(created.body).toMatchObject({ name: "greeter", sourceKind: "api", file: null, version: expect.stringMatching(/^[0-9a-f]{16}$/), lastError: null });
    expect((await call(app, "GET", "/api/workflows/greeter", admin)).body).toEqual(created.body);

    const same = await call(app, "PUT", "/api/workflows/greeter", admin, { source: returning("greeter", "v1") });
    expect([same.status, same.body.version]).toEqual([200, created.body.version]);
    const replaced = await call(app, "PUT", "/api/workflows/greeter", admin, { source: returning("greeter", "v2") });
    expect(replaced.status).toBe(200);
    expect(replaced.body.version).not.toBe(created.body.version);
    expect(replaced.body.registeredAt).toBe(created.body.registeredAt);

    const run = await call(app, "POST", "/api/workflows/greeter/runs", admin, { wait: 20_000 });
    expect(run.body).toMatchObject({ status: "succeeded", result: "v2", workflowVersion: replaced.body.version });
    expect((await call(app, "GET", `/api/runs/${run.body.id}`, admin)).body.workflowVersion).toBe(replaced.body.version);
  });

  it("answers a compile or validation error with 400, file, line and reason, and keeps the previous version running", async () => {
    const { app, admin } = await open();
    const v1 = (await call(app, "PUT", "/api/workflows/steady", admin, { source: returning("steady", "v1") })).body.version;
    const broken = await call(app, "PUT", "/api/workflows/steady", admin, { source: workflowSource("steady", "return 'v2' +;") });
    expect(broken.status).toBe(400);
    expect(broken.body.error).toMatchObject({ code: "WORKFLOW_COMPILE_ERROR", details: { file: "steady.ts", line: 5, reason: expect.any(String) } });
    expect(broken.body.error.message).toMatch(/^steady\.ts:5:\d+: /);

    const invalid = await call(app, "PUT", "/api/workflows/steady", admin, { source: workflowSource("steady", "return 1;", `\n  timeout: "soon",`) });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error).toMatchObject({ code: "WORKFLOW_INVALID", details: { file: "steady.ts", line: 4, reason: expect.stringMatching(/timeout: "soon" is not a duration/) } });

    const throws = await call(app, "PUT", "/api/workflows/steady", admin, { source: `import { workflow } from "bifrost";\nthrow new Error("no config");\nexport default workflow({ name: "steady", run() {} });\n` });
    expect(throws.body.error).toMatchObject({ code: "WORKFLOW_INVALID", details: { file: "steady.ts", line: 2, reason: "no config" } });

    const shown = await call(app, "GET", "/api/workflows/steady", admin);
    expect(shown.body).toMatchObject({ version: v1, lastError: null });
    const run = await call(app, "POST", "/api/workflows/steady/runs", admin, { wait: 20_000 });
    expect(run.body).toMatchObject({ status: "succeeded", result: "v1", workflowVersion: v1 });
  });

  it("refuses a module whose name is not the path's, and a path that is no workflow name", async () => {
    const { app, admin } = await open();
    const mismatch = await call(app, "PUT", "/api/workflows/expected", admin, { source: returning("actual", "x") });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error).toMatchObject({ code: "WORKFLOW_INVALID", details: { file: "expected.ts", line: 3 } });
    expect(mismatch.body.error.message).toMatch(/named "actual" but was sent as "expected"/);
    const badName = await call(app, "PUT", "/api/workflows/Not-Valid", admin, { source: returning("not-valid", "x") });
    expect([badName.status, badName.body.error.code]).toEqual([400, "WORKFLOW_INVALID"]);
    expect((await call(app, "GET", "/api/workflows/expected", admin)).status).toBe(404);
  });

  it("bounds the body: over 1 MB is 413; a wrong body is 400", async () => {
    const { app, admin } = await open();
    const huge = await call(app, "PUT", "/api/workflows/huge", admin, { source: returning("huge", "x") + `// ${"x".repeat(MAX_SOURCE_BYTES)}\n` });
    expect([huge.status, huge.body.error.code]).toEqual([413, "PAYLOAD_TOO_LARGE"]);
    for (const body of [{}, { source: "" }, { source: 42 }, { source: returning("huge", "x"), extra: true }, { name: "huge" }]) {
      const res = await call(app, "PUT", "/api/workflows/huge", admin, body);
      expect({ body, status: res.status, code: res.body.error.code }).toEqual({ body, status: 400, code: "VALIDATION_FAILED" });
    }
    const notJson = await call(app, "PUT", "/api/workflows/huge", admin, "{");
    expect([notJson.status, notJson.body.error.code]).toEqual([400, "INVALID_JSON"]);
    expect((await call(app, "GET", "/api/workflows/huge", admin)).status).toBe(404);
  });

  it("does not replace a workflow defined by a file (409), nor delete one", async () => {
    const { app, admin, workflowsDir } = await open({ workflows: { "filed.ts": returning("filed", "file") } });
    const put = await call(app, "PUT", "/api/workflows/filed", admin, { source: returning("filed", "api") });
    expect(put.status).toBe(409);
    expect(put.body.error).toMatchObject({ code: "WORKFLOW_NAME_CONFLICT", details: { registeredBy: `${workflowsDir}/filed.ts` } });
    const del = await call(app, "DELETE", "/api/workflows/filed", admin);
    expect(del.status).toBe(409);
    expect(del.body.error).toMatchObject({ code: "WORKFLOW_FILE_MANAGED", fix: expect.stringMatching(/Delete or rename .*filed\.ts/) });
    expect((await call(app, "GET", "/api/workflows/filed", admin)).body.sourceKind).toBe("file");
  });

  it("needs an admin key", async () => {
    const { app, engine, admin } = await open();
    const operator = await createTestKey(engine, "operator");
    const orgOperator = await createTestKey(engine, "operator", "contoso");
    const source = { source: returning("guarded", "x") };
    expect((await call(app, "PUT", "/api/workflows/guarded", undefined, source)).body.error.code).toBe("UNAUTHENTICATED");
    for (const key of [operator, orgOperator]) {
      const res = await call(app, "PUT", "/api/workflows/guarded", key, source);
      expect([res.status, res.body.error.code]).toEqual([403, "FORBIDDEN"]);
    }
    expect((await call(app, "PUT", "/api/workflows/guarded", admin, source)).status).toBe(201);
    expect((await call(app, "DELETE", "/api/workflows/guarded", undefined)).status).toBe(401);
    expect((await call(app, "DELETE", "/api/workflows/guarded", operator)).status).toBe(403);
    expect((await call(app, "GET", "/api/workflows/guarded", admin)).status).toBe(200);
  });

  it("lists what another engine process registered or removed since", async () => {
    const { app, admin, engine, dataDir, workflowsDir } = await open();
    await call(app, "PUT", "/api/workflows/old_one", admin, { source: returning("old_one", "x") });
    const other = await openTestEngine({ dataDir, workflowsDir });
    opened.push({ engine: other.engine, app: await buildApp({ engine: other.engine }) });
    const v2 = (await other.engine.registry.registerSource("new_one", returning("new_one", "y"))).workflow.version;
    await other.engine.registry.unregisterSource("old_one");
    expect(engine.registry.get("old_one")).toBeDefined();
    const list = await call(app, "GET", "/api/workflows", admin);
    expect(list.body.items.map((w: { name: string; version: string }) => [w.name, w.version])).toEqual([["new_one", v2]]);
  });

  it("persists a registered workflow: a second engine on the same data directory serves it", async () => {
    const { app, admin, dataDir, workflowsDir } = await open();
    const put = await call(app, "PUT", "/api/workflows/kept", admin, { source: returning("kept", "kept") });
    const first = opened.pop()!;
    await first.app.close();
    await first.engine.stop(0);

    const again = await open({ dataDir, workflowsDir });
    const shown = await call(again.app, "GET", "/api/workflows/kept", again.admin);
    expect(shown.body).toMatchObject({ name: "kept", sourceKind: "api", version: put.body.version });
    const run = await call(again.app, "POST", "/api/workflows/kept/runs", again.admin, { wait: 20_000 });
    expect(run.body).toMatchObject({ status: "succeeded", result: "kept" });
  });
});

describe("DELETE /api/workflows/:name", () => {
  it("unregisters (204) and keeps its runs; unknown is 404", async () => {
    const { app, admin } = await open();
    await call(app, "PUT", "/api/workflows/gone", admin, { source: returning("gone", "v1") });
    const run = await call(app, "POST", "/api/workflows/gone/runs", admin, { wait: 20_000 });
    expect(run.body.status).toBe("succeeded");

    const del = await call(app, "DELETE", "/api/workflows/gone", admin);
    expect([del.status, del.body]).toEqual([204, undefined]);
    expect((await call(app, "GET", "/api/workflows/gone", admin)).body.error.code).toBe("WORKFLOW_NOT_FOUND");
    expect((await call(app, "GET", `/api/runs/${run.body.id}`, admin)).body).toMatchObject({ id: run.body.id, workflow: "gone", status: "succeeded", result: "v1" });
    expect((await call(app, "GET", "/api/runs?workflow=gone", admin)).body.items).toHaveLength(1);
    expect((await call(app, "POST", "/api/workflows/gone/runs", admin, {})).status).toBe(404);

    const unknown = await call(app, "DELETE", "/api/workflows/gone", admin);
    expect([unknown.status, unknown.body.error.code]).toEqual([404, "WORKFLOW_NOT_FOUND"]);
  });

  it("lets a queued run finish on its version after the workflow is deleted", async () => {
    const t = await openTestEngine();
    const app = await buildApp({ engine: t.engine });
    opened.push({ engine: t.engine, app });
    const admin = await createTestKey(t.engine, "admin");
    // Not started: the run waits in the queue while the workflow goes.
    const put = await call(app, "PUT", "/api/workflows/queued", admin, { source: returning("queued", "still here") });
    const queued = await call(app, "POST", "/api/workflows/queued/runs", admin, {});
    expect(queued.status).toBe(202);
    expect((await call(app, "DELETE", "/api/workflows/queued", admin)).status).toBe(204);
    const done = t.engine.events.next("run:finished", (e) => e.run.id === queued.body.id);
    t.engine.start({ watch: false });
    await done;
    const shown = await call(app, "GET", `/api/runs/${queued.body.id}`, admin);
    expect(shown.body).toMatchObject({ status: "succeeded", result: "still here", workflowVersion: put.body.version });
  });
});
