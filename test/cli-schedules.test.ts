import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { openStorage } from "../storage/index.js";
import { createTestKey, memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";
import { runBifrost } from "./processes.js";

/** `bifrost schedules list|pause|resume|trigger`, embedded on the data directory and as a client of a server. */

const bifrost = (args: string[], env: Record<string, string>) => runBifrost(args, { LOG_LEVEL: "silent", ...env });

const MODULES = {
  // Every second: an embedded CLI engine that fired schedules would leave runs behind.
  "tick.ts": workflowSource("tick", "return 1;", `\n  schedule: { cron: "* * * * * *", orgs: ["acme", "contoso"] },`),
  "plain.ts": workflowSource("plain", "return 1;"),
};

const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

describe("bifrost schedules, embedded", () => {
  it("lists, pauses, resumes and triggers on the data directory, and never fires schedules itself", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, MODULES);
    const dataDir = tempDir();
    const env = { BIFROST_DATA_DIR: dataDir, BIFROST_WORKFLOWS_DIR: workflowsDir };

    const listed = await bifrost(["schedules", "list", "--json"], env);
    expect(listed.code).toBe(0);
    const items = (JSON.parse(listed.stdout) as { items: { workflow: string; org: string; description: string; paused: boolean }[] }).items;
    expect(items.map((s) => [s.workflow, s.org, s.description, s.paused])).toEqual([
      ["tick", "acme", "every second", false],
      ["tick", "contoso", "every second", false],
    ]);

    const paused = await bifrost(["schedules", "pause", "tick", "--org", "acme"], env);
    expect(paused.code).toBe(0);
    expect(paused.stdout).toMatch(/tick\s+acme\s+\* \* \* \* \* \*\s+UTC\s+paused/);
    expect(paused.stderr).toContain("no fire happens and none is kept for later");

    const table = await bifrost(["schedules", "list", "--workflow", "tick"], env);
    expect(table.stdout.split("\n")[0]).toMatch(/^WORKFLOW\s+ORG\s+CRON\s+ZONE\s+NEXT FIRE\s+LAST FIRE\s+LAST RUN\s+WHEN$/);
    expect(table.stdout).toMatch(/contoso\s+\* \* \* \* \* \*\s+UTC\s+\d{4}-\d\d-\d\dT/);

    const triggered = await bifrost(["schedules", "trigger", "tick", "--org", "contoso"], env);
    expect(triggered.code).toBe(0);
    const runId = triggered.stdout.trim();
    expect(triggered.stderr).toContain("an engine serving this data directory (bifrost start) runs them");

    expect((await bifrost(["schedules", "resume", "tick", "--org", "acme", "--json"], env)).code).toBe(0);

    // Five CLI processes held this per-second schedule for seconds: the only run is the triggered one.
    const storage = await openStorage({ dataDir });
    try {
      const runs = await storage.runs.list({ workflow: "tick", limit: 100 });
      expect(runs.map((r) => [r.id, r.trigger, r.org, r.status])).toEqual([[runId, "schedule", "contoso", "queued"]]);
      const rows = await storage.schedules.list({ workflow: "tick" });
      expect(rows.map((r) => [r.org, r.paused, r.lastRunId])).toEqual([
        ["acme", false, null],
        ["contoso", false, runId],
      ]);
    } finally {
      await storage.close();
    }
  });

  it("refuses bad usage and unknown schedules with the CLI's fix", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, MODULES);
    const env = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: workflowsDir };
    const missing = await bifrost(["schedules", "pause", "plain"], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("error SCHEDULE_NOT_FOUND");
    expect(missing.stderr).toContain("bifrost schedules list");
    const noName = await bifrost(["schedules", "trigger"], env);
    expect(noName.stderr).toContain("error CLI_USAGE: missing argument: bifrost schedules trigger <workflow>");
    expect((await bifrost(["schedules", "stop", "tick"], env)).stderr).toContain('unknown command "schedules stop"');
  });
});

describe("bifrost schedules, against a server", () => {
  it("sends list, pause and trigger to BIFROST_URL with the key, and prints what the API returns", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    writeFiles(workflowsDir, { "yearly.ts": workflowSource("yearly", "return ctx.run.org;", `\n  schedule: { cron: "0 0 1 1 *", orgs: ["acme", "contoso"] },`) });
    const server = await startServer(loadConfig({}, { dataDir: tempDir(), workflowsDir, port: 0, watch: false, pollMs: 50 }), { logger: memoryLogger().logger });
    servers.push(server);
    // The CLI's workflows directory is empty: what it prints comes from the server.
    const env = { BIFROST_DATA_DIR: tempDir(), BIFROST_WORKFLOWS_DIR: tempDir("bifrost-wf-"), BIFROST_URL: server.url, BIFROST_API_KEY: await createTestKey(server.engine, "operator", "acme") };
    const listed = JSON.parse((await bifrost(["schedules", "list", "--json"], env)).stdout) as { items: { workflow: string; org: string }[] };
    expect(listed.items.map((s) => `${s.workflow}/${s.org}`)).toEqual(["yearly/acme"]);
    const paused = await bifrost(["schedules", "pause", "yearly", "--json"], env);
    expect(JSON.parse(paused.stdout).items).toEqual([expect.objectContaining({ org: "acme", paused: true })]);
    const triggered = await bifrost(["schedules", "trigger", "yearly", "--json"], env);
    const runs = (JSON.parse(triggered.stdout) as { runs: { id: string; org: string; trigger: string }[] }).runs;
    expect(runs.map((r) => [r.org, r.trigger])).toEqual([["acme", "schedule"]]);
    expect((await server.engine.waitForRun(runs[0]!.id, 30_000)).result).toBe("acme");
    const other = await bifrost(["schedules", "resume", "yearly", "--org", "contoso"], env);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain("error SCHEDULE_NOT_FOUND");
  });
});
