import { afterEach, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { openTestEngine, workflowSource, writeFiles } from "./helpers.js";

const engines: Engine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop(0);
});

async function open(options: Parameters<typeof openTestEngine>[0] = {}) {
  const opened = await openTestEngine(options);
  engines.push(opened.engine);
  return opened;
}

const scheduled = (name: string, schedule: string, body = `return { scheduledFor: ctx.run.scheduledFor, trigger: ctx.run.trigger, org: ctx.run.org };`) =>
  workflowSource(name, body, `\n  schedule: ${schedule},`);

describe("firing", () => {
  it("fires a per-second schedule: runs with trigger schedule and scheduledFor, in ctx.run too", async () => {
    const { engine } = await open({ workflows: { "tick.ts": scheduled("tick", `{ cron: "* * * * * *", overlap: "allow" }`) } });
    const fired: { scheduledFor: number; runId: string; at: number }[] = [];
    const three = new Promise<void>((resolve) =>
      engine.events.on("schedule:fired", (e) => {
        fired.push(e);
        if (fired.length === 3) resolve();
      }),
    );
    engine.start();
    await three;
    for (const f of fired) {
      expect(f.scheduledFor % 1000).toBe(0);
      expect(f.at).toBeGreaterThanOrEqual(f.scheduledFor);
    }
    expect(fired[1]!.scheduledFor - fired[0]!.scheduledFor).toBe(1000);
    const finished = await engine.waitForRun(fired[0]!.runId, 30_000);
    expect(finished).toMatchObject({ status: "succeeded", trigger: "schedule", scheduledFor: fired[0]!.scheduledFor });
    expect(finished.result).toEqual({ scheduledFor: new Date(fired[0]!.scheduledFor).toISOString(), trigger: "schedule", org: null });
  });
});

describe("after downtime, through the schedule check (bree)", () => {
  it("catches up per catchUp once the engine is back: none, latest and all", async () => {
    const hourly = (catchUp: string) => scheduled(`up_${catchUp}`, `{ cron: "0 * * * *", catchUp: "${catchUp}", overlap: "allow" }`, "return 1;");
    const workflows = { "none.ts": hourly("none"), "latest.ts": hourly("latest"), "all.ts": hourly("all") };
    const first = await open({ workflows });
    first.engine.start();
    await first.engine.scheduling.started();
    const rows = await first.engine.storage.schedules.list({});
    const nextHour = rows[0]!.nextFireAt!;
    expect(rows.map((r) => r.nextFireAt)).toEqual([nextHour, nextHour, nextHour]);
    await first.engine.stop(0);
    engines.splice(engines.indexOf(first.engine), 1);

    // Back 4 hours 20 minutes after that fire: 5 fires were missed, none is on time.
    const offset = nextHour + 4 * 3_600_000 + 20 * 60_000 - Date.now();
    const second = await open({ dataDir: first.dataDir, workflowsDir: first.workflowsDir, deps: { now: () => Date.now() + offset } });
    const fired: { workflow: string; scheduledFor: number }[] = [];
    second.engine.events.on("schedule:fired", (e) => fired.push(e));
    const missed = new Promise<void>((resolve) => second.engine.events.on("schedule:skipped", (e) => e.workflow === "up_none" && e.reason === "missed" && resolve()));
    const checked = second.engine.events.next("maintenance:ran", (e) => e.job === "schedule-check" && e.found === 3);
    const six = new Promise<void>((resolve) => second.engine.events.on("schedule:fired", () => fired.length === 6 && resolve()));
    second.engine.start();
    await Promise.all([checked, missed, six]);
    const hours = (name: string) => fired.filter((f) => f.workflow === name).map((f) => (f.scheduledFor - nextHour) / 3_600_000);
    expect(hours("up_none")).toEqual([]);
    expect(hours("up_latest")).toEqual([4]);
    expect(hours("up_all")).toEqual([0, 1, 2, 3, 4]);
    const next = (await second.engine.storage.schedules.list({})).map((r) => r.nextFireAt);
    expect(next).toEqual([nextHour + 5 * 3_600_000, nextHour + 5 * 3_600_000, nextHour + 5 * 3_600_000]);
  });
});

describe("across engines on one database", () => {
  it("a pause and a resume made elsewhere reach a running engine through the schedule check", async () => {
    const a = await open({ workflows: { "tick.ts": scheduled("tick", `{ cron: "0 0 1 1 *" }`, "return 1;") }, deps: { scheduling: { scheduleCheckMs: 200 } } });
    a.engine.start();
    await a.engine.scheduling.started();
    expect(a.engine.scheduling.scheduler.entries().armed).toEqual(["tick\u0000"]);
    // Another process (the CLI's embedded engine: opened, never started).
    const b = await open({ dataDir: a.dataDir, workflowsDir: a.workflowsDir });
    const paused = a.engine.events.next("schedule:changed", (e) => e.workflow === "tick" && e.paused);
    await b.engine.scheduling.scheduler.pause("tick");
    await paused;
    expect(a.engine.scheduling.scheduler.entries().armed).toEqual([]);
    const resumed = a.engine.events.next("schedule:changed", (e) => e.workflow === "tick" && !e.paused);
    await b.engine.scheduling.scheduler.resume("tick");
    expect((await resumed).nextFireAt).toBeGreaterThan(Date.now());
    expect(a.engine.scheduling.scheduler.entries().armed).toEqual(["tick\u0000"]);
  });

  it("the lease reaper puts a run whose engine died back in the queue", async () => {
    const { engine } = await open({ workflows: { "w.ts": workflowSource("w", "return 1;") }, deps: { scheduling: { leaseReaperMs: 100 } } });
    const { run } = await engine.triggerRun("w");
    const now = Date.now();
    // Claimed by an engine that then died: its lease ended a moment ago.
    const claimed = await engine.storage.runs.claim(run.id, "dead-engine", now, now + 60_000);
    await engine.storage.steps.begin({ runId: run.id, owner: "dead-engine", token: claimed!.leaseToken }, "fetch", now);
    await engine.storage.runs.renewLeases("dead-engine", [run.id], now - 1_000);
    const reaped = engine.events.next("maintenance:ran", (e) => e.job === "lease-reaper" && e.found === 1);
    // Claims nothing itself, so only the reaper can move the run.
    engine.start({ claim: false, schedules: true });
    await reaped;
    const after = await engine.storage.runs.get(run.id);
    expect(after).toMatchObject({ status: "queued", leaseOwner: null, leaseUntil: null });
    const [step] = await engine.storage.steps.listForRun(run.id);
    expect(step).toMatchObject({ status: "failed", error: expect.objectContaining({ code: "STEP_INTERRUPTED" }) });
  });

  it("the CLI's embedded engine (claim: false) fires nothing and starts no maintenance", async () => {
    const { engine } = await open({ workflows: { "tick.ts": scheduled("tick", `{ cron: "* * * * * *" }`) } });
    engine.start({ claim: false, watch: false });
    await engine.scheduling.started();
    expect(engine.scheduling.scheduler.entries()).toEqual({ armed: [], deferred: [] });
    expect(await engine.storage.schedules.list({})).toEqual([]);
  });
});

describe("starting", () => {
  it("tries again when the database refuses the scheduler's start", async () => {
    const { engine, logLines } = await open({ workflows: { "tick.ts": scheduled("tick", `{ cron: "0 0 1 1 *" }`) } });
    const schedules = engine.storage.schedules;
    const sync = schedules.sync.bind(schedules);
    let refusals = 1;
    schedules.sync = async (seeds, now) => {
      if (refusals-- > 0) throw new Error("database is locked");
      return sync(seeds, now);
    };
    const loaded = engine.events.next("schedule:changed", (e) => e.reason === "loaded");
    engine.start();
    expect(await loaded).toMatchObject({ workflow: "tick", paused: false });
    await engine.scheduling.started();
    expect(engine.scheduling.scheduler.entries().armed).toEqual(["tick\u0000"]);
    expect(logLines().some((l) => l.includes("the scheduler could not start; trying again in 1000 ms"))).toBe(true);
  });
});

describe("a module whose schedule changes", () => {
  it("takes the new cron at once; the old one's fires never happen", async () => {
    const { engine, workflowsDir } = await open({ workflows: { "tick.ts": scheduled("tick", `{ cron: "0 0 1 1 *", overlap: "allow" }`) } });
    engine.start();
    await engine.scheduling.started();
    const yearly = (await engine.storage.schedules.get("tick", null))!.nextFireAt!;
    expect(new Date(yearly).toISOString()).toMatch(/-01-01T00:00:00.000Z$/);
    writeFiles(workflowsDir, { "tick.ts": scheduled("tick", `{ cron: "* * * * * *", overlap: "allow" }`) });
    const changed = engine.events.next("schedule:changed", (e) => e.reason === "registered");
    const fired = engine.events.next("schedule:fired");
    await engine.registry.loadDirectory();
    expect((await changed).nextFireAt).toBeLessThan(yearly);
    const first = await fired;
    expect(first.scheduledFor % 1000).toBe(0);
    // And back: per-second fires stop; the next fire is the yearly one again.
    writeFiles(workflowsDir, { "tick.ts": scheduled("tick", `{ cron: "0 0 1 1 *", overlap: "allow" }`) });
    const back = engine.events.next("schedule:changed", (e) => e.reason === "registered");
    await engine.registry.loadDirectory();
    expect((await back).nextFireAt).toBe(yearly);
    expect(engine.scheduling.scheduler.entries().armed).toEqual(["tick\u0000"]);
    expect((await engine.storage.schedules.get("tick", null))!.nextFireAt).toBe(yearly);
  });
});
