import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { createTestKey, memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";
import { runBifrost } from "./processes.js";

/** `bifrost state list|get|delete`, embedded on the data directory and as a client of a server. */

const bifrost = (args: string[], env: Record<string, string>) => runBifrost(args, { LOG_LEVEL: "silent", ...env });

const SYNC = workflowSource(
  "sync",
  `const runs = ((await ctx.state.get("runs")) ?? 0) + 1;
    await ctx.state.set("runs", runs);
    await ctx.state.set("since", { at: "2024-05-01T00:00:00Z", org: ctx.run.org });
    return runs;`,
);

const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

describe("bifrost state, embedded", () => {
  it("lists, shows and deletes a workflow's state for one org on the data directory", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "sync.ts": SYNC });
    const env = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: workflowsDir };
    expect((await bifrost(["run", "sync", "--org", "acme"], env)).code).toBe(0);

    const listed = await bifrost(["state", "list", "sync", "--org", "acme", "--json"], env);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({ workflow: "sync", org: "acme", items: [{ key: "runs", value: 1 }, { key: "since", value: { org: "acme" } }] });
    const table = await bifrost(["state", "list", "sync", "--org", "acme"], env);
    expect(table.stdout.split("\n")[0]).toMatch(/^KEY\s+UPDATED\s+BY RUN\s+VALUE$/);
    expect(table.stdout).toMatch(/since\s+\d{4}-\d\d-\d\dT\S+\s+\S+\s+\{"at":"2024-05-01T00:00:00Z","org":"acme"\}/);
    expect((await bifrost(["state", "list", "sync"], env)).stdout).toContain('no state for sync without an org');

    const got = await bifrost(["state", "get", "sync", "since", "--org", "acme"], env);
    expect([got.code, JSON.parse(got.stdout)]).toEqual([0, { at: "2024-05-01T00:00:00Z", org: "acme" }]);
    expect(got.stderr).toMatch(/updated \d{4}-.* by run /);

    const deleted = await bifrost(["state", "delete", "sync", "runs", "--org", "acme"], env);
    expect(deleted.code).toBe(0);
    expect(deleted.stderr).toContain('deleted state key "runs" of sync for org "acme"');
    const gone = await bifrost(["state", "get", "sync", "runs", "--org", "acme"], env);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('error STATE_NOT_FOUND: workflow "sync" has no state key "runs" for org "acme"');
    expect(gone.stderr).toContain("fix: List the workflow's state keys with `bifrost state list <workflow> --org <org>`");

    const usage = await bifrost(["state", "get", "sync"], env);
    expect([usage.code, usage.stderr]).toEqual([2, expect.stringContaining("error CLI_USAGE: usage: bifrost state get <workflow> <key> [--org ORG]")]);
    expect((await bifrost(["state", "list", "nope"], env)).stderr).toContain("error WORKFLOW_NOT_FOUND");
  });
});

describe("bifrost state, against a server", () => {
  it("reads with the key's scope and deletes only with an admin key", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "sync.ts": SYNC });
    const server = await startServer(loadConfig({}, { dataDir: tempDir(), workflowsDir, port: 0, watch: false, pollMs: 50 }), { logger: memoryLogger().logger });
    servers.push(server);
    for (const org of ["acme", "contoso"]) {
      const { run } = await server.engine.triggerRun("sync", { org });
      expect((await server.engine.waitForRun(run.id, 30_000)).status).toBe("succeeded");
    }
    // The CLI's own directories are empty: what it prints comes from the server.
    const local = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: tempDir("bifrost-wf-"), BIFROST_URL: server.url };
    const viewer = { ...local, BIFROST_API_KEY: await createTestKey(server.engine, "viewer", "acme") };
    const admin = { ...local, BIFROST_API_KEY: await createTestKey(server.engine, "admin") };

    const mine = JSON.parse((await bifrost(["state", "list", "sync", "--json"], viewer)).stdout) as { org: string; items: { key: string }[] };
    expect([mine.org, mine.items.map((i) => i.key)]).toEqual(["acme", ["runs", "since"]]);
    const hidden = await bifrost(["state", "get", "sync", "runs", "--org", "contoso"], viewer);
    expect([hidden.code, hidden.stderr]).toEqual([2, expect.stringContaining("error STATE_NOT_FOUND")]);
    const refused = await bifrost(["state", "delete", "sync", "runs"], viewer);
    expect([refused.code, refused.stderr]).toEqual([2, expect.stringContaining("error FORBIDDEN")]);

    const deleted = await bifrost(["state", "delete", "sync", "runs", "--org", "contoso", "--json"], admin);
    expect([deleted.code, JSON.parse(deleted.stdout)]).toEqual([0, { workflow: "sync", org: "contoso", key: "runs", deleted: true }]);
    expect(await server.engine.storage.state.get("sync", "contoso", "runs")).toBeUndefined();
    expect(await server.engine.storage.state.get("sync", "acme", "runs")).toMatchObject({ value: 1 });
  });
});
