import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { bearer, createTestKey, memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";

/** GET/POST /api/schedules over a real server: views, access, org keys, pause/resume/trigger across restarts. */

const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

const YEARLY = `{ cron: "0 0 1 1 *", timezone: "Europe/London", orgs: ["acme", "contoso"] }`;
const MODULES = {
  // Fires once a year: nothing fires during the test unless triggered.
  "sync.ts": workflowSource("sync", "return { org: ctx.run.org, scheduledFor: ctx.run.scheduledFor };", `\n  schedule: ${YEARLY},`),
  "report.ts": workflowSource("report", "return 1;", `\n  schedule: { cron: "30 9 * * 1-5", timezone: "America/New_York" },`),
  "plain.ts": workflowSource("plain", "return 1;"),
};

async function serve(dataDir = tempDir(), workflowsDir = tempDir("bifrost-wf-"), modules: Record<string, string> = MODULES) {
  writeFiles(workflowsDir, modules);
  const config = loadConfig({}, { dataDir, workflowsDir, port: 0, watch: false, pollMs: 50 });
  const server = await startServer(config, { logger: memoryLogger().logger });
  servers.push(server);
  await server.engine.scheduling.started();
  return { server, dataDir, workflowsDir };
}

function client(server: RunningServer, key: string) {
  return async (method: string, path: string, body?: unknown) => {
    const res = await fetch(server.url + path, {
      method,
      headers: body === undefined ? bearer(key) : { "content-type": "application/json", ...bearer(key) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
}

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
/** The keys the README documents for `- **Schedule:** \`{ ... }\``. */
function documentedScheduleKeys(): string[] {
  const m = /- \*\*Schedule:\*\* `\{ ([^}]*) \}`/.exec(readme);
  expect(m, "README documents the schedule view").not.toBeNull();
  return m![1]!.split(",").map((k) => k.trim());
}

describe("GET /api/schedules", () => {
  it("lists one item per workflow and org with the cron in words, next fire and no last run yet", async () => {
    const { server } = await serve();
    const api = client(server, await createTestKey(server.engine, "viewer"));
    const { status, body } = await api("GET", "/api/schedules");
    expect(status).toBe(200);
    expect(body.items.map((s: { workflow: string; org: string | null }) => `${s.workflow}/${s.org}`)).toEqual(["report/null", "sync/acme", "sync/contoso"]);
    const report = body.items[0];
    expect(Object.keys(report).sort()).toEqual(documentedScheduleKeys().sort());
    expect(report).toMatchObject({ cron: "30 9 * * 1-5", description: "at 09:30 on Monday to Friday", timezone: "America/New_York", overlap: "skip", catchUp: "latest", paused: false, lastFireAt: null, lastRunId: null, lastRunStatus: null, pausedAt: null });
    expect(Date.parse(report.nextFireAt)).toBeGreaterThan(Date.now());
    expect(body.items[1].nextFireAt).toMatch(/-01-01T00:00:00.000Z$/);
    const filtered = await api("GET", "/api/schedules?workflow=sync&org=contoso");
    expect(filtered.body.items.map((s: { org: string }) => s.org)).toEqual(["contoso"]);
    expect((await api("GET", "/api/schedules?bogus=1")).status).toBe(400);
    // The workflow itself shows the orgs it fires for.
    expect((await api("GET", "/api/workflows/sync")).body.schedule).toMatchObject({ cron: "0 0 1 1 *", orgs: ["acme", "contoso"] });
    expect("orgs" in (await api("GET", "/api/workflows/report")).body.schedule).toBe(false);
  });

  it("shows an org key its org's schedules only", async () => {
    const { server } = await serve();
    const api = client(server, await createTestKey(server.engine, "operator", "acme"));
    const { body } = await api("GET", "/api/schedules");
    expect(body.items.map((s: { workflow: string; org: string }) => `${s.workflow}/${s.org}`)).toEqual(["sync/acme"]);
    expect((await api("GET", "/api/schedules?org=contoso")).body.items).toEqual([]);
    // Another org's schedule, and one without orgs, answer as if they did not exist.
    expect((await api("POST", "/api/schedules/sync/pause", { org: "contoso" })).body.error.code).toBe("SCHEDULE_NOT_FOUND");
    expect((await api("POST", "/api/schedules/report/trigger")).status).toBe(404);
    const paused = await api("POST", "/api/schedules/sync/pause");
    expect(paused.body.items.map((s: { org: string; paused: boolean }) => [s.org, s.paused])).toEqual([["acme", true]]);
    const admin = client(server, await createTestKey(server.engine));
    expect((await admin("GET", "/api/schedules?workflow=sync")).body.items.map((s: { paused: boolean }) => s.paused)).toEqual([true, false]);
  });

  it("needs a key that may trigger to pause, resume or trigger", async () => {
    const { server } = await serve();
    const viewer = client(server, await createTestKey(server.engine, "viewer"));
    for (const verb of ["pause", "resume", "trigger"]) expect((await viewer("POST", `/api/schedules/sync/${verb}`)).body.error.code).toBe("FORBIDDEN");
    const anonymous = await fetch(`${server.url}/api/schedules`);
    expect(anonymous.status).toBe(401);
  });

  it("answers SCHEDULE_NOT_FOUND for a workflow without a schedule or an org it does not list, with a fix", async () => {
    const { server } = await serve();
    const api = client(server, await createTestKey(server.engine));
    for (const [path, body] of [
      ["/api/schedules/plain/pause", undefined],
      ["/api/schedules/missing/resume", undefined],
      ["/api/schedules/sync/trigger", { org: "globex" }],
      ["/api/schedules/sync/trigger", { org: null }],
    ] as const) {
      const res = await api("POST", path, body);
      expect({ path, status: res.status, code: res.body.error.code }).toEqual({ path, status: 404, code: "SCHEDULE_NOT_FOUND" });
      expect(res.body.error.fix).toMatch(/GET \/api\/schedules/);
    }
    expect((await api("POST", "/api/schedules/sync/pause", { org: "acme", extra: 1 })).status).toBe(400);
  });
});

describe("pause, resume and trigger", () => {
  it("trigger fires now: one run per org with trigger schedule and scheduledFor, paused or not", async () => {
    const { server } = await serve();
    const api = client(server, await createTestKey(server.engine));
    await api("POST", "/api/schedules/sync/pause", { org: "contoso" });
    const before = Date.now();
    const { status, body } = await api("POST", "/api/schedules/sync/trigger");
    expect(status).toBe(202);
    expect(body.runs.map((r: { org: string; trigger: string }) => [r.org, r.trigger])).toEqual([
      ["acme", "schedule"],
      ["contoso", "schedule"],
    ]);
    const run = await server.engine.waitForRun(body.runs[1].id, 30_000);
    expect(run.status).toBe("succeeded");
    expect(run.scheduledFor).toBeGreaterThanOrEqual(before);
    expect(run.result).toEqual({ org: "contoso", scheduledFor: new Date(run.scheduledFor!).toISOString() });
    const listed = (await api("GET", "/api/schedules?workflow=sync&org=contoso")).body.items[0];
    expect(listed).toMatchObject({ lastRunId: run.id, lastRunStatus: "succeeded", lastFireAt: new Date(run.scheduledFor!).toISOString(), paused: true, nextFireAt: null });
  });

  it("pause and resume survive a restart and a re-registration; resume starts from now", async () => {
    const { server, dataDir, workflowsDir } = await serve();
    const api = client(server, await createTestKey(server.engine));
    const paused = await api("POST", "/api/schedules/report/pause");
    expect(paused.body.items).toEqual([expect.objectContaining({ workflow: "report", paused: true, nextFireAt: null })]);
    expect(server.engine.scheduling.scheduler.entries().armed).not.toContain("report\u0000");
    await server.close();
    servers.splice(0);

    // The module changes (a new cron) while the engine is down: still paused when it comes back.
    const changed = { ...MODULES, "report.ts": workflowSource("report", "return 2;", `\n  schedule: { cron: "45 9 * * 1-5", timezone: "America/New_York" },`) };
    const again = await serve(dataDir, workflowsDir, changed).then((s) => s.server);
    const api2 = client(again, await createTestKey(again.engine));
    const listed = (await api2("GET", "/api/schedules?workflow=report")).body.items[0];
    expect(listed).toMatchObject({ cron: "45 9 * * 1-5", paused: true, nextFireAt: null });
    expect(again.engine.scheduling.scheduler.entries().armed).not.toContain("report\u0000");
    const resumed = (await api2("POST", "/api/schedules/report/resume")).body.items[0];
    expect(resumed.paused).toBe(false);
    expect(Date.parse(resumed.nextFireAt)).toBeGreaterThan(Date.now());
    expect(new Date(resumed.nextFireAt).getUTCMinutes()).toBe(45);
    expect(again.engine.scheduling.scheduler.entries().armed).toContain("report\u0000");
    // Resuming twice changes nothing.
    expect((await api2("POST", "/api/schedules/report/resume")).body.items[0]).toEqual(resumed);
  });
});
