import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { bearer, createTestKey, memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";

/** GET/DELETE /api/workflows/:name/state over a real server: views, orgs, org keys and who may reset. */

const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

const SYNC = workflowSource(
  "sync",
  `const runs = ((await ctx.state.get("runs")) ?? 0) + 1;
    await ctx.state.set("runs", runs);
    await ctx.state.set("cursor", { org: ctx.run.org, page: 3 });
    return runs;`,
);

async function serve() {
  const workflowsDir = tempDir("bifrost-wf-");
  writeFiles(workflowsDir, { "sync.ts": SYNC, "plain.ts": workflowSource("plain", "return 1;") });
  const server = await startServer(loadConfig({}, { dataDir: tempDir(), workflowsDir, port: 0, watch: false, pollMs: 50 }), { logger: memoryLogger().logger });
  servers.push(server);
  const sync = async (org: string | null) => {
    const { run } = await server.engine.triggerRun("sync", { org });
    const done = await server.engine.waitForRun(run.id, 30_000);
    expect(done.status).toBe("succeeded");
    return done;
  };
  return { server, sync };
}

function client(server: RunningServer, key: string) {
  return async (method: string, path: string) => {
    const res = await fetch(server.url + path, { method, headers: bearer(key) });
    const text = await res.text();
    return { status: res.status, body: (text === "" ? null : JSON.parse(text)) as Record<string, any> | null };
  };
}

describe("the state API", () => {
  it("lists and shows a workflow's state per org, no org apart, for a key that may read", async () => {
    const { server, sync } = await serve();
    const plain = await sync(null);
    const acme = await sync("acme");
    await sync("acme");
    const api = client(server, await createTestKey(server.engine, "viewer"));

    const none = await api("GET", "/api/workflows/sync/state");
    expect(none.status).toBe(200);
    expect(none.body).toEqual({
      workflow: "sync",
      org: null,
      items: [
        { key: "cursor", value: { org: null, page: 3 }, updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), updatedByRun: plain.id },
        { key: "runs", value: 1, updatedAt: expect.any(String), updatedByRun: plain.id },
      ],
    });
    const listed = await api("GET", "/api/workflows/sync/state?org=acme");
    expect(listed.body?.org).toBe("acme");
    expect(listed.body?.items.map((i: { key: string; value: unknown }) => [i.key, i.value])).toEqual([["cursor", { org: "acme", page: 3 }], ["runs", 2]]);
    expect(listed.body?.items[0].updatedByRun).not.toBe(acme.id);

    expect(await api("GET", "/api/workflows/sync/state/runs?org=acme")).toMatchObject({ status: 200, body: { key: "runs", value: 2 } });
    expect(await api("GET", "/api/workflows/sync/state?org=contoso")).toMatchObject({ status: 200, body: { org: "contoso", items: [] } });
    expect(await api("GET", "/api/workflows/plain/state")).toMatchObject({ status: 200, body: { items: [] } });

    const missing = await api("GET", "/api/workflows/sync/state/nothing?org=acme");
    expect(missing).toMatchObject({ status: 404, body: { error: { code: "STATE_NOT_FOUND", message: 'workflow "sync" has no state key "nothing" for org "acme"' } } });
    expect(missing.body?.error.fix).toContain("GET /api/workflows/:name/state?org=<org>");
    expect(await api("GET", "/api/workflows/nope/state")).toMatchObject({ status: 404, body: { error: { code: "WORKFLOW_NOT_FOUND" } } });
    expect(await api("GET", "/api/workflows/nope/state/runs")).toMatchObject({ status: 404, body: { error: { code: "WORKFLOW_NOT_FOUND" } } });
    expect(await api("GET", "/api/workflows/sync/state/has%20space")).toMatchObject({ status: 400, body: { error: { code: "VALIDATION_FAILED" } } });
    expect(await api("GET", "/api/workflows/sync/state?org=not%20an%20org")).toMatchObject({ status: 400, body: { error: { code: "VALIDATION_FAILED" } } });
    expect(await api("GET", "/api/workflows/sync/state?bogus=1")).toMatchObject({ status: 400, body: { error: { code: "VALIDATION_FAILED" } } });
  });

  it("shows an org key its own org only: another org's state answers exactly as state nobody wrote", async () => {
    const { server, sync } = await serve();
    await sync(null);
    await sync("acme");
    await sync("contoso");
    const acme = client(server, await createTestKey(server.engine, "viewer", "acme"));
    const admin = client(server, await createTestKey(server.engine, "admin"));

    // Without ?org an org key reads its own org, never the no-org state.
    expect(await acme("GET", "/api/workflows/sync/state")).toMatchObject({ status: 200, body: { org: "acme", items: [{ key: "cursor", value: { org: "acme" } }, { key: "runs" }] } });
    expect(await acme("GET", "/api/workflows/sync/state/cursor")).toMatchObject({ status: 200, body: { value: { org: "acme", page: 3 } } });
    expect(await acme("GET", "/api/workflows/sync/state?org=acme")).toMatchObject({ status: 200, body: { org: "acme" } });
    expect(await acme("GET", "/api/workflows/sync/state?org=contoso")).toEqual({ status: 200, body: { workflow: "sync", org: "contoso", items: [] } });

    const hidden = await acme("GET", "/api/workflows/sync/state/cursor?org=contoso");
    expect(hidden.status).toBe(404);
    expect(await admin("DELETE", "/api/workflows/sync/state/cursor?org=contoso")).toEqual({ status: 204, body: null });
    expect(await admin("GET", "/api/workflows/sync/state/cursor?org=contoso")).toEqual(hidden);
  });

  it("lets only an admin reset a key, for the org it names, and the next run starts over", async () => {
    const { server, sync } = await serve();
    await sync(null);
    await sync("acme");
    await sync("acme");
    const viewer = client(server, await createTestKey(server.engine, "viewer"));
    const operator = client(server, await createTestKey(server.engine, "operator"));
    const admin = client(server, await createTestKey(server.engine, "admin"));
    for (const api of [viewer, operator]) expect(await api("DELETE", "/api/workflows/sync/state/runs?org=acme")).toMatchObject({ status: 403, body: { error: { code: "FORBIDDEN" } } });

    expect(await admin("DELETE", "/api/workflows/sync/state/runs?org=acme")).toEqual({ status: 204, body: null });
    expect(await admin("DELETE", "/api/workflows/sync/state/runs?org=acme")).toMatchObject({ status: 404, body: { error: { code: "STATE_NOT_FOUND" } } });
    expect(await admin("DELETE", "/api/workflows/nope/state/runs")).toMatchObject({ status: 404, body: { error: { code: "WORKFLOW_NOT_FOUND" } } });
    // The no-org key and the other keys are untouched.
    expect(await admin("GET", "/api/workflows/sync/state/runs")).toMatchObject({ status: 200, body: { value: 1 } });
    expect((await admin("GET", "/api/workflows/sync/state?org=acme")).body?.items.map((i: { key: string }) => i.key)).toEqual(["cursor"]);
    expect((await sync("acme")).result).toBe(1);
  });
});
