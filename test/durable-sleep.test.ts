import { describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { engineTracker, workflowSource, type TestEngineOptions } from "./helpers.js";

/** The engine's clock: real time plus an offset a test moves forward instead of waiting. */
function clock() {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms: number) => void (offset += ms) };
}

const engines = engineTracker();

async function started(options: TestEngineOptions) {
  const t = await engines.open(options);
  t.engine.start({ watch: false });
  return t;
}

const messages = async (engine: Engine, runId: string) => (await engine.storage.logs.list(runId, { limit: 1000 })).map((l) => l.msg);

/** Resolves when the run goes back to the queue (a sleep, a retry's pause), with the time it is due. */
const requeued = (engine: Engine, runId: string) => engine.events.next("run:requeued", (e) => e.runId === runId);

const SLEEPER = workflowSource(
  "sleeper",
  `
    await ctx.step("before", () => { ctx.log.info("before ran"); return 1; });
    await ctx.sleep(params.for ?? "30s");
    ctx.log.info("woke");
    return await ctx.step("after", () => "done");
  `,
);
const QUICK = workflowSource("quick", `return 1;`);

describe("ctx.sleep from one second up", () => {
  it("commits the sleep, ends the invocation and frees its slot; the run resumes at the wake time and skips the finished sleep", async () => {
    const time = clock();
    const { engine } = await started({ workflows: { "sleeper.ts": SLEEPER, "quick.ts": QUICK }, config: { concurrency: 1 }, deps: { now: time.now } });
    const { run } = await engine.triggerRun("sleeper", { params: { for: "30s" } });
    const back = await requeued(engine, run.id);
    expect(back.reason).toBe("resume");

    const sleeping = await engine.getRun(run.id);
    const sleep = sleeping.steps.find((s) => s.name === "sleep#0")!;
    expect(sleep).toMatchObject({ status: "succeeded", attempts: 1 });
    const wakeAt = (sleep.result as { wakeAt: number }).wakeAt;
    expect(wakeAt - sleep.startedAt).toBe(30_000);
    expect(sleep.finishedAt).toBe(wakeAt);
    expect(sleeping.run).toMatchObject({ status: "queued", runAt: wakeAt, error: null, leaseOwner: null });
    expect(back.runAt).toBe(wakeAt);
    expect(await messages(engine, run.id)).toContain(`sleeping until ${new Date(wakeAt).toISOString()} (sleep#0); the run waits in the queue and resumes then`);

    // The one slot is free: another run starts and finishes while the first sleeps.
    const quick = await engine.triggerRun("quick");
    expect(await engine.waitForRun(quick.run.id, 30_000)).toMatchObject({ status: "succeeded" });
    expect((await engine.storage.runs.get(run.id))?.status).toBe("queued");

    time.advance(30_000);
    const finished = await engine.waitForRun(run.id, 60_000);
    expect(finished).toMatchObject({ status: "succeeded", result: "done", attempt: 1 });
    const logs = await messages(engine, run.id);
    expect(logs.filter((m) => m === "before ran")).toHaveLength(1);
    expect(logs.filter((m) => m === "woke")).toHaveLength(1);
    expect(logs.filter((m) => m.startsWith("sleeping until"))).toHaveLength(1);
    const steps = await engine.storage.steps.listForRun(run.id);
    expect(steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ["before", "succeeded", 1],
      ["sleep#0", "succeeded", 1],
      ["after", "succeeded", 1],
    ]);
  });

  it("survives a restart of the engine: the reopened engine resumes at the original wake time, never restarting the wait", async () => {
    const time = clock();
    const first = await started({ workflows: { "sleeper.ts": SLEEPER }, deps: { now: time.now } });
    const { run } = await first.engine.triggerRun("sleeper", { params: { for: "30m" } });
    const { runAt: wakeAt } = await requeued(first.engine, run.id);
    await first.engine.stop(0);

    time.advance(30 * 60_000);
    const second = await engines.open({ dataDir: first.dataDir, workflowsDir: first.workflowsDir, deps: { now: time.now } });
    expect(await second.engine.storage.runs.get(run.id)).toMatchObject({ status: "queued", runAt: wakeAt });
    const resumedAt = second.engine.events.next("run:started", (e) => e.runId === run.id).then(() => time.now());
    second.engine.start({ watch: false });
    const finished = await second.engine.waitForRun(run.id, 60_000);
    expect(finished).toMatchObject({ status: "succeeded", result: "done" });
    expect(await resumedAt).toBeGreaterThanOrEqual(wakeAt);
    // The replayed ctx.sleep("30m") found its record and did not wait another hour.
    const logs = await messages(second.engine, run.id);
    expect(logs.filter((m) => m.startsWith("sleeping until"))).toEqual([`sleeping until ${new Date(wakeAt).toISOString()} (sleep#0); the run waits in the queue and resumes then`]);
    expect(logs.filter((m) => m === "before ran")).toHaveLength(1);
    const sleep = (await second.engine.storage.steps.listForRun(run.id)).find((s) => s.name === "sleep#0");
    expect(sleep).toMatchObject({ status: "succeeded", attempts: 1, result: { wakeAt } });
  });

  it("sleeps until a time given as an ISO string, a Date or epoch milliseconds; a past time returns at once", async () => {
    const time = clock();
    const { engine } = await started({
      workflows: {
        "until.ts": workflowSource(
          "until",
          `
          await ctx.sleepUntil(params.iso);
          await ctx.sleepUntil(new Date(params.ms));
          await ctx.sleepUntil(params.ms);
          await ctx.sleepUntil("2001-01-01T00:00:00Z");
          return "awake";
        `,
        ),
      },
      deps: { now: time.now },
    });
    const wake = time.now() + 10_000;
    const { run } = await engine.triggerRun("until", { params: { iso: new Date(wake).toISOString(), ms: wake + 5_000 } });
    expect((await requeued(engine, run.id)).runAt).toBe(wake);
    time.advance(10_000);
    expect((await requeued(engine, run.id)).runAt).toBe(wake + 5_000);
    time.advance(5_000);
    expect(await engine.waitForRun(run.id, 60_000)).toMatchObject({ status: "succeeded", result: "awake" });
    // The Date and the epoch milliseconds name the same instant: the third sleep had nothing left
    // to wait and wrote no record, nor did the fourth.
    const names = (await engine.storage.steps.listForRun(run.id)).map((s) => s.name);
    expect(names).toEqual(["sleep#0", "sleep#1"]);
  });

  it("can be cancelled while it sleeps: the queued run ends cancelled at once", async () => {
    const { engine } = await started({ workflows: { "sleeper.ts": SLEEPER } });
    const { run } = await engine.triggerRun("sleeper", { params: { for: "10m" } });
    await requeued(engine, run.id);
    const cancelled = await engine.cancel(run.id);
    expect(cancelled.outcome).toBe("cancelled");
    expect(await engine.storage.runs.get(run.id)).toMatchObject({ status: "cancelled", error: { code: "RUN_CANCELLED" } });
    expect((await engine.storage.steps.listForRun(run.id)).some((s) => s.status === "running")).toBe(false);
  });

  it("ends the run timed_out at once when it would wake after the run's timeout", async () => {
    const { engine } = await started({ workflows: { "long.ts": workflowSource("long", `await ctx.step("a", () => 1); await ctx.sleep("2h"); return 1;`, `\n  timeout: "1h",`) } });
    const { run } = await engine.triggerRun("long");
    const finished = await engine.waitForRun(run.id, 30_000);
    expect(finished).toMatchObject({ status: "timed_out", error: { code: "RUN_TIMED_OUT" } });
    expect(finished.error?.message).toMatch(/^ctx\.sleep \(sleep#0\) would wake at .+, after the run's timeout ends it at /);
    expect((await engine.storage.steps.listForRun(run.id)).map((s) => s.name)).toEqual(["a"]);
  });
});

describe("ctx.sleep under a second", () => {
  it("waits in place: no record, no requeue", async () => {
    const { engine } = await started({ workflows: { "short.ts": workflowSource("short", `await ctx.sleep(20); await ctx.sleep("30ms"); await ctx.sleep(0); return "ok";`) } });
    const requeues: string[] = [];
    engine.events.on("run:requeued", (e) => requeues.push(e.runId));
    const { run } = await engine.triggerRun("short");
    expect(await engine.waitForRun(run.id, 30_000)).toMatchObject({ status: "succeeded", result: "ok" });
    expect(requeues).toEqual([]);
    expect(await engine.storage.steps.listForRun(run.id)).toEqual([]);
  });

  it("is stopped by a cancel", async () => {
    const { engine } = await started({ workflows: { "nap.ts": workflowSource("nap", `for (;;) { ctx.log.info("napping"); await ctx.sleep(500); }`) } });
    const { run } = await engine.triggerRun("nap");
    await engine.events.next("run:log", (e) => e.runId === run.id && e.line.msg === "napping");
    await engine.cancel(run.id);
    expect(await engine.waitForRun(run.id, 30_000)).toMatchObject({ status: "cancelled", error: { code: "RUN_CANCELLED" } });
  });
});

describe("ctx.sleep arguments are checked on the host", () => {
  it("refuses what is not a bounded, finite, non-negative duration or time with SLEEP_INVALID", async () => {
    const { engine } = await started({
      workflows: {
        "bad.ts": workflowSource(
          "bad",
          `
          const calls = {
            negative: () => ctx.sleep(-1),
            nan: () => ctx.sleep(NaN),
            infinite: () => ctx.sleep(Infinity),
            text: () => ctx.sleep("soon"),
            huge: () => ctx.sleep("1".repeat(100000) + "s"),
            object: () => ctx.sleep({ seconds: 5 }),
            missing: () => ctx.sleep(),
            tooLong: () => ctx.sleep("8d"),
            badDate: () => ctx.sleepUntil("next tuesday"),
            invalidDate: () => ctx.sleepUntil(new Date(NaN)),
            farDate: () => ctx.sleepUntil("2999-01-01T00:00:00Z"),
            bool: () => ctx.sleepUntil(true),
          };
          await calls[params.call]();
          return "slept";
        `,
        ),
      },
    });
    const calls = ["negative", "nan", "infinite", "text", "huge", "object", "missing", "tooLong", "badDate", "invalidDate", "farDate", "bool"];
    const runs = await Promise.all(calls.map(async (call) => engine.waitForRun((await engine.triggerRun("bad", { params: { call } })).run.id, 30_000)));
    for (const [i, run] of runs.entries()) {
      expect({ call: calls[i], status: run.status, code: run.error?.code }).toEqual({ call: calls[i], status: "failed", code: "SLEEP_INVALID" });
      expect(run.error?.message.length).toBeLessThan(300);
    }
  });

  it("reserves the sleep records' names", async () => {
    const { engine } = await started({
      workflows: {
        "clash.ts": workflowSource("clash", `await ctx.step("sleep#0", () => 1);`),
        "clash2.ts": workflowSource("clash2", `await ctx.chunks("sleep", [1], { size: 1 }, () => 1);`),
      },
    });
    for (const name of ["clash", "clash2"]) {
      const run = await engine.waitForRun((await engine.triggerRun(name)).run.id, 30_000);
      expect(run).toMatchObject({ status: "failed", error: { code: "STEP_INVALID", message: expect.stringContaining("reserved") } });
    }
  });

  it("says to use ctx.sleep when a workflow reaches for setTimeout", async () => {
    const { engine } = await started({ workflows: { "timer.ts": workflowSource("timer", `setTimeout(() => {}, 10);`) } });
    const run = await engine.waitForRun((await engine.triggerRun("timer")).run.id, 30_000);
    expect(run.error?.message).toMatch(/^setTimeout\(\) is not available in a Bifrost workflow: use await ctx\.sleep\(duration\)/);
  });
});
