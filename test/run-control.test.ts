import { afterEach, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { EngineEvents } from "../engine/events.js";
import { Runner } from "../engine/runner/runner.js";
import { uuidv7 } from "../engine/ids.js";
import { openStorage } from "../storage/index.js";
import type { Storage } from "../storage/types.js";
import { memoryLogger, openTestEngine, tempDir, workflowSource } from "./helpers.js";

const engines: Engine[] = [];
const storages: Storage[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop(0).catch(() => {});
  for (const s of storages.splice(0)) await s.close().catch(() => {});
});

async function open(options: Parameters<typeof openTestEngine>[0]) {
  const t = await openTestEngine(options);
  engines.push(t.engine);
  return t;
}

const SPIN = workflowSource("spin", `ctx.log.info("spinning"); for (;;) {}`);
/** Fails unless it is a retry; its step logs a line, so a step that ran twice shows. */
const FLAKY = workflowSource(
  "flaky",
  `const ticket = await ctx.step("load", () => { ctx.log.info("loading ticket"); return 42; });
   if (ctx.run.trigger !== "retry") throw new Error("upstream down");
   return { ticket, attempt: ctx.run.attempt };`,
);

async function messages(engine: Engine, runId: string): Promise<string[]> {
  return (await engine.storage.logs.list(runId, { limit: 1000 })).map((l) => l.msg);
}

describe("cancel", () => {
  it("stops a never-yielding run that another engine on the same database executes", async () => {
    const worker = await open({ workflows: { "spin.ts": SPIN } });
    const api = await open({ dataDir: worker.dataDir, workflowsDir: worker.workflowsDir });
    worker.engine.start({ watch: false });
    // The second engine only answers requests here: the run executes in the first.
    api.engine.start({ claim: false, watch: false });

    const { run } = await worker.engine.triggerRun("spin");
    await worker.engine.events.next("run:log", (e) => e.runId === run.id && e.line.msg === "spinning");
    const finished = worker.engine.events.next("run:finished", (e) => e.run.id === run.id);

    const cancelled = await api.engine.cancel(run.id);
    expect(cancelled).toMatchObject({ outcome: "requested", run: { status: "running", cancelRequestedAt: expect.any(Number) } });
    expect((await finished).run).toMatchObject({ status: "cancelled", error: { code: "RUN_CANCELLED" }, leaseOwner: null });
    expect(await api.engine.waitForRun(run.id, 30_000)).toMatchObject({ status: "cancelled" });
    expect((await messages(api.engine, run.id)).filter((m) => m === "spinning")).toHaveLength(1);
  });

  it("never starts a queued run", async () => {
    const { engine } = await open({ workflows: { "flaky.ts": FLAKY, "spin.ts": SPIN } });
    const started: string[] = [];
    engine.events.on("run:started", (e) => started.push(e.runId));
    const { run } = await engine.triggerRun("flaky");
    expect(await engine.cancel(run.id)).toMatchObject({ outcome: "cancelled", run: { status: "cancelled", startedAt: null, error: { code: "RUN_CANCELLED" } } });
    // Start the engine and let it work a later run to its end: the cancelled one stays untouched.
    engine.start({ watch: false });
    const later = (await engine.triggerRun("flaky")).run;
    expect((await engine.waitForRun(later.id, 30_000)).status).toBe("failed");
    expect(started).toEqual([later.id]);
    expect(await engine.storage.runs.get(run.id)).toMatchObject({ status: "cancelled", startedAt: null });
  });

  it("ends a run cancelled while its engine was down without running it again", async () => {
    let offset = 0;
    const dead = await open({ workflows: { "spin.ts": SPIN }, config: { leaseMs: 60_000 } });
    const next = await open({ dataDir: dead.dataDir, workflowsDir: dead.workflowsDir, config: { leaseMs: 60_000 }, deps: { now: () => Date.now() + offset } });
    dead.engine.start({ watch: false });
    const { run } = await dead.engine.triggerRun("spin");
    await dead.engine.events.next("run:log", (e) => e.runId === run.id);
    // The engine dies holding the run: its lease stays in the database.
    await dead.engine.crashForTesting();
    expect((await next.engine.cancel(run.id)).outcome).toBe("requested");

    // Once the lease has run out the next engine claims the run and ends it as cancelled at once.
    offset = 120_000;
    const started: string[] = [];
    next.engine.events.on("run:started", (e) => started.push(e.runId));
    const finished = next.engine.events.next("run:finished", (e) => e.run.id === run.id);
    next.engine.start({ watch: false });
    expect((await finished).run).toMatchObject({ status: "cancelled", error: { code: "RUN_CANCELLED" } });
    expect(started).toEqual([run.id]);
    expect((await messages(next.engine, run.id)).filter((m) => m === "spinning")).toHaveLength(1);
  });

  it("is RUN_NOT_CANCELLABLE once the run has finished, RUN_NOT_FOUND for an unknown id or another org's run", async () => {
    const { engine } = await open({ workflows: { "flaky.ts": FLAKY } });
    engine.start({ watch: false });
    const { run } = await engine.triggerRun("flaky", { org: "contoso" });
    await engine.waitForRun(run.id, 30_000);
    await expect(engine.cancel(run.id)).rejects.toMatchObject({ code: "RUN_NOT_CANCELLABLE", status: 409, details: { id: run.id, status: "failed" } });
    await expect(engine.cancel(uuidv7())).rejects.toMatchObject({ code: "RUN_NOT_FOUND" });
    await expect(engine.cancel(run.id, { org: "fabrikam" })).rejects.toMatchObject({ code: "RUN_NOT_FOUND" });
    expect(await engine.cancelRun(run.id)).toBe(false);
  });

  it("ends a run cancelled while its invocation handed it back to the queue, and says so", async () => {
    const storage = await openStorage({ dataDir: tempDir() });
    storages.push(storage);
    const events = new EngineEvents();
    const owner = "runner-test";
    const runner = new Runner(
      storage,
      async (run) => {
        // The cancel lands between the invocation's decision to retry and its write.
        await storage.runs.cancel(run.id, Date.now());
        const requeued = await storage.runs.requeue({ runId: run.id, owner, token: run.leaseToken }, { runAt: Date.now() + 3_600_000, attempt: 2, error: null });
        events.emit("invocation:ended", { runId: run.id, decision: "requeue", recorded: requeued });
      },
      memoryLogger().logger,
      { owner, concurrency: 1, leaseMs: 30_000, pollMs: 20, now: Date.now, events },
    );
    const { run } = await storage.runs.create({ id: uuidv7(), workflow: "w", workflowVersion: "v", org: null, trigger: "api", params: {}, idempotencyKey: null, scheduledFor: null, now: Date.now() });
    const finished = events.next("run:finished", (e) => e.run.id === run.id);
    runner.start();
    try {
      expect((await finished).run).toMatchObject({ status: "cancelled", error: { code: "RUN_CANCELLED" } });
    } finally {
      await runner.stop(0);
    }
  });
});

describe("retry", () => {
  it("starts a new run that reuses the finished steps: a step's side effect happens once across both", async () => {
    const { engine } = await open({ workflows: { "flaky.ts": FLAKY } });
    engine.start({ watch: false });
    const { run: first } = await engine.triggerRun("flaky", { org: "contoso" });
    expect(await engine.waitForRun(first.id, 30_000)).toMatchObject({ status: "failed", error: { message: expect.stringContaining("upstream down") } });

    const { run: retry } = await engine.retry(first.id);
    expect(retry).toMatchObject({ trigger: "retry", retryOf: first.id, workflow: "flaky", org: "contoso", attempt: 1, status: "queued" });
    expect(retry.id).not.toBe(first.id);
    expect(await engine.waitForRun(retry.id, 30_000)).toMatchObject({ status: "succeeded", result: { ticket: 42, attempt: 1 } });

    const lines = [...(await messages(engine, first.id)), ...(await messages(engine, retry.id))];
    expect(lines.filter((m) => m === "loading ticket")).toHaveLength(1);
    expect((await engine.getRun(retry.id)).steps).toMatchObject([{ name: "load", status: "succeeded", attempts: 1 }]);
    // The original is kept as it ended.
    expect(await engine.storage.runs.get(first.id)).toMatchObject({ status: "failed", retryOf: null });
  });

  it("retries cancelled and timed-out runs, and refuses queued, running and succeeded ones", async () => {
    const { engine } = await open({ workflows: { "flaky.ts": FLAKY, "spin.ts": SPIN } });
    const queued = (await engine.triggerRun("flaky")).run;
    await expect(engine.retry(queued.id)).rejects.toMatchObject({ code: "RUN_NOT_RETRYABLE", status: 409, details: { status: "queued" } });
    await engine.cancel(queued.id);
    engine.start({ watch: false });
    const again = await engine.retry(queued.id);
    expect(await engine.waitForRun(again.run.id, 30_000)).toMatchObject({ status: "succeeded", trigger: "retry", retryOf: queued.id });
    await expect(engine.retry(again.run.id)).rejects.toMatchObject({ code: "RUN_NOT_RETRYABLE", message: expect.stringContaining("succeeded") });

    const spinning = (await engine.triggerRun("spin")).run;
    await engine.events.next("run:log", (e) => e.runId === spinning.id);
    await expect(engine.retry(spinning.id)).rejects.toMatchObject({ code: "RUN_NOT_RETRYABLE", details: { status: "running" } });
    await engine.cancel(spinning.id);
    await expect(engine.retry(spinning.id, { org: "contoso" })).rejects.toMatchObject({ code: "RUN_NOT_FOUND" });
    await expect(engine.retry(uuidv7())).rejects.toMatchObject({ code: "RUN_NOT_FOUND" });
  });
});
