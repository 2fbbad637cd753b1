import { afterEach, describe, expect, it } from "vitest";
import { EngineEvents, type EngineEventMap } from "../engine/events.js";
import type { ScheduleDefinition, WorkflowDefinition } from "../engine/registry/definition.js";
import type { RegisteredWorkflow } from "../engine/registry/registry.js";
import { Scheduler } from "../engine/scheduler/scheduler.js";
import { openStorage } from "../storage/index.js";
import type { RunRecord, Storage } from "../storage/types.js";
import { fakeTime } from "./fake-time.js";
import { memoryLogger, tempDir } from "./helpers.js";

/**
 * Overlap, catch-up after downtime, pause and re-registration, against real storage with a
 * controllable clock: the scheduler's timer and clock are the test's, so every fire is observed
 * at the instant the test moves time to.
 */

const MIN = 60_000;
const HOUR = 60 * MIN;
/** 2026-06-01T00:00:30Z: 30 s before a minute boundary. */
const T0 = Date.parse("2026-06-01T00:00:00Z") - 30_000;

const opened: { storage: Storage; schedulers: Scheduler[] }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0)) {
    for (const s of o.schedulers) await s.stop();
    await o.storage.close();
  }
});

function registered(name: string, schedule: Partial<ScheduleDefinition> & { cron: string }): RegisteredWorkflow {
  const definition: WorkflowDefinition = {
    name,
    description: null,
    params: { type: "object" },
    schedule: { timezone: "UTC", overlap: "skip", catchUp: "latest", catchUpWindowMs: 24 * HOUR, ...schedule },
    timeoutMs: HOUR,
    chunkTimeoutMs: MIN,
    retry: { attempts: 1, backoff: "fixed", delayMs: 1000, maxDelayMs: 1000 },
  };
  return { definition, version: `v-${schedule.cron}`, sourceKind: "file", file: null, module: { code: "", sourceMap: "", version: "v" }, source: "", registeredAt: 0, updatedAt: 0 };
}

/** The registry as the scheduler sees it: what is registered, changeable by the test. */
function fakeRegistry(workflows: RegisteredWorkflow[]) {
  const byName = new Map(workflows.map((w) => [w.definition.name, w]));
  return {
    byName,
    get: (name: string) => byName.get(name),
    list: () => [...byName.values()],
    refresh: async (name: string) => byName.get(name),
    retain: async () => {},
  };
}

async function setup(workflows: RegisteredWorkflow[], start = T0, storage?: Storage) {
  const store = storage ?? (await openStorage({ dataDir: tempDir() }));
  const entry = opened.find((o) => o.storage === store) ?? { storage: store, schedulers: [] };
  if (!opened.includes(entry)) opened.push(entry);
  const clock = fakeTime(start);
  const events = new EngineEvents();
  const registry = fakeRegistry(workflows);
  const scheduler = new Scheduler({ storage: store, registry, events, logger: memoryLogger().logger, now: clock.now, nudge: () => {}, timers: clock.timers });
  entry.schedulers.push(scheduler);
  const seen: { [E in keyof EngineEventMap]?: EngineEventMap[E][] } = {};
  for (const name of ["schedule:fired", "schedule:skipped", "schedule:changed"] as const) {
    seen[name] = [];
    events.on(name, (e) => (seen[name] as unknown[]).push(e));
  }
  return { storage: store, clock, events, registry, scheduler, seen };
}

const at = (t: number) => new Date(t).toISOString().slice(11, 19);
const firedAt = (seen: { "schedule:fired"?: { scheduledFor: number }[] }) => (seen["schedule:fired"] ?? []).map((e) => at(e.scheduledFor));

async function finish(storage: Storage, events: EngineEvents, run: RunRecord, now: number): Promise<void> {
  const claimed = await storage.runs.claim(run.id, "test", now, now + MIN);
  const done = await storage.runs.finish({ runId: run.id, owner: "test", token: claimed!.leaseToken }, { status: "succeeded", finishedAt: now });
  events.emit("run:finished", { run: done! });
}

const scheduledRuns = async (storage: Storage, workflow: string) => (await storage.runs.list({ workflow, trigger: "schedule", limit: 500 })).reverse();

describe("overlap", () => {
  it("skip: no new fire while the previous run is unfinished", async () => {
    const { storage, clock, events, scheduler, seen } = await setup([registered("w", { cron: "* * * * *", overlap: "skip" })]);
    await scheduler.start();
    await clock.advance(T0 + 30_000);
    await clock.advance(T0 + 90_000);
    expect(firedAt(seen)).toEqual(["00:00:00"]);
    expect(seen["schedule:skipped"]!.map((e) => [at(e.scheduledFor!), e.reason])).toEqual([["00:01:00", "overlap"]]);
    const [first] = await scheduledRuns(storage, "w");
    await finish(storage, events, first!, clock.now());
    await clock.advance(T0 + 150_000);
    expect(firedAt(seen)).toEqual(["00:00:00", "00:02:00"]);
  });

  it("queue: keeps one pending fire, starts it when the previous run ends, drops later ones", async () => {
    const { storage, clock, events, scheduler, seen } = await setup([registered("w", { cron: "* * * * *", overlap: "queue" })]);
    await scheduler.start();
    await clock.advance(T0 + 30_000);
    await clock.advance(T0 + 90_000);
    await clock.advance(T0 + 150_000);
    expect(firedAt(seen)).toEqual(["00:00:00"]);
    expect(seen["schedule:skipped"]!.map((e) => [at(e.scheduledFor!), e.reason])).toEqual([
      ["00:01:00", "queued"],
      ["00:02:00", "dropped"],
    ]);
    expect((await storage.schedules.get("w", null))!.pendingFor).toBe(T0 + 90_000);
    const [first] = await scheduledRuns(storage, "w");
    await finish(storage, events, first!, clock.now());
    await clock.advance(clock.now());
    // The pending fire starts as soon as the first run ends, with its own scheduledFor.
    expect(firedAt(seen)).toEqual(["00:00:00", "00:01:00"]);
    expect((await storage.schedules.get("w", null))!.pendingFor).toBeNull();
    expect((await scheduledRuns(storage, "w")).map((r) => at(r.scheduledFor!))).toEqual(["00:00:00", "00:01:00"]);
  });

  it("allow: every fire starts", async () => {
    const { storage, clock, scheduler, seen } = await setup([registered("w", { cron: "* * * * *", overlap: "allow" })]);
    await scheduler.start();
    for (let i = 0; i < 3; i++) await clock.advance(T0 + 30_000 + i * MIN);
    expect(firedAt(seen)).toEqual(["00:00:00", "00:01:00", "00:02:00"]);
    expect((await scheduledRuns(storage, "w")).every((r) => r.status === "queued")).toBe(true);
  });
});

describe("restart after downtime", () => {
  /** Runs an engine's scheduler until 00:10 (next fire 01:00), stops it, and brings up another at `back`. */
  async function downtime(schedule: Partial<ScheduleDefinition>, back: number, missed = true) {
    const workflow = registered("w", { cron: "0 * * * *", overlap: "allow", ...schedule });
    const before = await setup([workflow], T0 + 10 * MIN);
    await before.scheduler.start();
    expect((await before.storage.schedules.get("w", null))!.nextFireAt).toBe(T0 + 30_000 + HOUR);
    await before.scheduler.stop();
    const after = await setup([workflow], back, before.storage);
    // As an engine starts: missed fires wait for the schedule check (engine/maintenance).
    await after.scheduler.start({ deferOverdue: true });
    expect(after.scheduler.entries()).toEqual(missed ? { armed: [], deferred: ["w\u0000"] } : { armed: ["w\u0000"], deferred: [] });
    expect(after.seen["schedule:fired"]).toEqual([]);
    await after.scheduler.reconcile(await after.storage.schedules.list({}));
    await after.clock.advance(back);
    return after;
  }

  // Down from 00:10 until 05:20: the fires of 01:00 to 05:00 were missed.
  const back = T0 + 30_000 + 5 * HOUR + 20 * MIN;

  it("catchUp none: nothing runs; the next fire is the next hour", async () => {
    const { seen, storage } = await downtime({ catchUp: "none" }, back);
    expect(firedAt(seen)).toEqual([]);
    expect(seen["schedule:skipped"]!.map((e) => [e.reason, at(e.from!)])).toEqual([["missed", "01:00:00"]]);
    expect((await storage.schedules.get("w", null))!.nextFireAt).toBe(T0 + 30_000 + 6 * HOUR);
  });

  it("catchUp latest: one run, for the most recent missed fire", async () => {
    const { seen } = await downtime({ catchUp: "latest" }, back);
    expect(firedAt(seen)).toEqual(["05:00:00"]);
  });

  it("catchUp all: every missed fire within the window, oldest first", async () => {
    const { seen, storage } = await downtime({ catchUp: "all" }, back);
    expect(firedAt(seen)).toEqual(["01:00:00", "02:00:00", "03:00:00", "04:00:00", "05:00:00"]);
    expect((await scheduledRuns(storage, "w")).map((r) => at(r.scheduledFor!))).toEqual(["01:00:00", "02:00:00", "03:00:00", "04:00:00", "05:00:00"]);
  });

  it("catchUp all honours catchUpWindow, and overlap applies to missed fires too", async () => {
    const windowed = await downtime({ catchUp: "all", catchUpWindowMs: 2 * HOUR + 30 * MIN }, back);
    expect(firedAt(windowed.seen)).toEqual(["03:00:00", "04:00:00", "05:00:00"]);
  });

  it("without the schedule check (its worker failed), missed fires are caught up on here", async () => {
    const workflow = registered("w", { cron: "0 * * * *", overlap: "allow", catchUp: "latest" });
    const before = await setup([workflow], T0 + 10 * MIN);
    await before.scheduler.start();
    await before.scheduler.stop();
    const after = await setup([workflow], back, before.storage);
    await after.scheduler.start({ deferOverdue: true });
    after.scheduler.releaseDeferred();
    await after.clock.advance(back);
    expect(firedAt(after.seen)).toEqual(["05:00:00"]);
  });

  it("a fire found less than a minute late is on time whatever catchUp says", async () => {
    const { seen } = await downtime({ catchUp: "none" }, T0 + 30_000 + HOUR + 20_000, false);
    expect(firedAt(seen)).toEqual(["01:00:00"]);
  });
});

describe("params", () => {
  it("a workflow whose params schema refuses no params starts no scheduled run, says why, and moves on", async () => {
    const strict = registered("w", { cron: "* * * * *" });
    strict.definition.params = { type: "object", properties: { since: { type: "string" } }, required: ["since"] };
    const { clock, scheduler, seen, storage } = await setup([strict]);
    await scheduler.start();
    await clock.advance(T0 + 30_000);
    expect(seen["schedule:skipped"]!.map((e) => [e.reason, at(e.scheduledFor!)])).toEqual([["params", "00:00:00"]]);
    expect(await scheduledRuns(storage, "w")).toEqual([]);
    expect((await storage.schedules.get("w", null))!.nextFireAt).toBe(T0 + 90_000);
    await expect(scheduler.trigger("w")).rejects.toMatchObject({ code: "INVALID_PARAMS", fix: expect.stringMatching(/default/) });
  });

  it("a scheduled run gets the schema's defaults", async () => {
    const withDefaults = registered("w", { cron: "* * * * *" });
    withDefaults.definition.params = { type: "object", properties: { since: { type: "string", default: "yesterday" } } };
    const { clock, scheduler, storage } = await setup([withDefaults]);
    await scheduler.start();
    await clock.advance(T0 + 30_000);
    expect((await scheduledRuns(storage, "w")).map((r) => r.params)).toEqual([{ since: "yesterday" }]);
  });
});

describe("pause and re-registration", () => {
  it("a paused schedule accumulates nothing and resuming does not replay the paused time", async () => {
    const { storage, clock, scheduler, seen } = await setup([registered("w", { cron: "* * * * *", overlap: "allow", catchUp: "all" })]);
    await scheduler.start();
    await clock.advance(T0 + 30_000);
    expect(firedAt(seen)).toEqual(["00:00:00"]);
    await scheduler.pause("w");
    await clock.advance(T0 + 30_000 + 10 * MIN + 10_000);
    expect(firedAt(seen)).toEqual(["00:00:00"]);
    const [view] = await scheduler.resume("w");
    expect(view).toMatchObject({ paused: false, nextFireAt: T0 + 30_000 + 11 * MIN });
    await clock.advance(T0 + 30_000 + 11 * MIN);
    expect(firedAt(seen)).toEqual(["00:00:00", "00:11:00"]);
    expect((await scheduledRuns(storage, "w")).length).toBe(2);
  });

  it("a pause made by another engine stops this one's next fire, read from the row", async () => {
    const workflow = registered("w", { cron: "* * * * *", overlap: "allow" });
    const a = await setup([workflow]);
    await a.scheduler.start();
    const b = await setup([workflow], T0, a.storage);
    await b.scheduler.pause("w");
    await a.clock.advance(T0 + 30_000);
    expect(firedAt(a.seen)).toEqual([]);
    expect(a.scheduler.entries().armed).toEqual([]);
  });

  it("re-registering with a changed cron recomputes the next fire and never fires the old one", async () => {
    const { clock, registry, events, scheduler, seen, storage } = await setup([registered("w", { cron: "0 * * * *", overlap: "allow" })]);
    await scheduler.start();
    expect((await storage.schedules.get("w", null))!.nextFireAt).toBe(T0 + 30_000);
    await clock.advance(T0 + 10 * MIN);
    registry.byName.set("w", registered("w", { cron: "45 * * * *", overlap: "allow" }));
    events.emit("workflow:registered", { name: "w", version: "v2", sourceKind: "file", file: null });
    await clock.advance(clock.now());
    const row = await storage.schedules.get("w", null);
    expect(row).toMatchObject({ cron: "45 * * * *", nextFireAt: T0 + 30_000 + 45 * MIN });
    expect(seen["schedule:changed"]!.at(-1)).toMatchObject({ reason: "registered", nextFireAt: T0 + 30_000 + 45 * MIN });
    await clock.advance(T0 + 30_000 + 2 * HOUR);
    // 00:00 fired under the old cron; its 01:00 never does.
    expect(firedAt(seen)).toEqual(["00:00:00", "00:45:00", "01:45:00"]);
  });

  it("orgs: one run per org per fire; an org removed from the list stops firing", async () => {
    const { clock, registry, events, scheduler, seen, storage } = await setup([registered("w", { cron: "* * * * *", overlap: "allow", orgs: ["acme", "contoso"] })]);
    await scheduler.start();
    await clock.advance(T0 + 30_000);
    expect(seen["schedule:fired"]!.map((e) => [e.org, at(e.scheduledFor)])).toEqual([
      ["acme", "00:00:00"],
      ["contoso", "00:00:00"],
    ]);
    registry.byName.set("w", registered("w", { cron: "* * * * *", overlap: "allow", orgs: ["contoso"] }));
    events.emit("workflow:registered", { name: "w", version: "v2", sourceKind: "file", file: null });
    await clock.advance(T0 + 90_000);
    expect(seen["schedule:fired"]!.slice(2).map((e) => [e.org, at(e.scheduledFor)])).toEqual([["contoso", "00:01:00"]]);
    // acme's row, overdue now, is reported by the schedule check: it is retired, not fired.
    await clock.advance(T0 + 10 * MIN);
    const overdue = await storage.schedules.attention(Infinity, clock.now() - 60_000, 10);
    expect(overdue.map((r) => r.org)).toEqual(["acme"]);
    await scheduler.reconcile(overdue);
    expect((await storage.schedules.get("w", "acme"))!.nextFireAt).toBeNull();
    expect(await storage.schedules.attention(Infinity, clock.now() - 60_000, 10)).toEqual([]);
    // Listed again, it fires from its next fire on.
    registry.byName.set("w", registered("w", { cron: "* * * * *", overlap: "allow", orgs: ["acme", "contoso"] }));
    events.emit("workflow:registered", { name: "w", version: "v3", sourceKind: "file", file: null });
    await clock.advance(clock.now());
    expect((await storage.schedules.get("w", "acme"))!.nextFireAt).toBe(T0 + 30_000 + 10 * MIN);
  });
});
