import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { Runner, type RunSignals } from "../engine/runner/runner.js";
import { uuidv7 } from "../engine/ids.js";
import { openStorage } from "../storage/index.js";
import type { RunRecord, Storage } from "../storage/types.js";
import { openTestEngine, tempDir, workflowSource } from "./helpers.js";
import { spawnLockHolder, type LockHolder } from "./lock-holder.js";

const engines: Engine[] = [];
const holders: LockHolder[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const h of holders.splice(0)) h.kill();
  for (const e of engines.splice(0)) await e.stop(0).catch(() => {});
  for (const c of cleanups.splice(0)) await c();
});

async function started(options: Parameters<typeof openTestEngine>[0]) {
  const t = await openTestEngine(options);
  engines.push(t.engine);
  t.engine.start({ watch: false });
  return t;
}

/** A workflow that knows whether it is resuming: its first step is skipped on resume. */
const resumable = (body: string) =>
  workflowSource(
    "resumable",
    `
    let fresh = false;
    await ctx.step("start", () => { fresh = true; return 1; });
    if (!fresh) return "resumed";
${body}`,
  );

/** Records the order of invocation starts and ends of one run. */
function timeline(engine: Engine): { of: (runId: string) => string[] } {
  const events: Array<{ runId: string; what: string }> = [];
  engine.events.on("run:started", (e) => events.push({ runId: e.runId, what: "started" }));
  engine.events.on("invocation:ended", (e) => events.push({ runId: e.runId, what: `ended:${e.decision}` }));
  return { of: (runId) => events.filter((e) => e.runId === runId).map((e) => e.what) };
}

async function expectContiguousLogs(engine: Engine, runId: string): Promise<void> {
  const seqs = (await engine.storage.logs.list(runId, { limit: 10_000 })).map((l) => l.seq);
  expect(seqs).toEqual(seqs.map((_, i) => i + 1));
}

describe("leases", () => {
  it("stops an invocation whose lease cannot be renewed before the lease ends, and never runs it twice at once", async () => {
    const leaseMs = 600;
    const { engine, dataDir, logLines } = await started({
      workflows: { "resumable.ts": resumable(`ctx.log.info("spinning"); await ctx.step("spin", () => { for (;;) {} });`) },
      config: { leaseMs },
    });
    const holder = await spawnLockHolder(join(dataDir, "bifrost.db"));
    holders.push(holder);
    const order = timeline(engine);
    const spinning = engine.events.next("run:log", (e) => e.line.msg === "spinning");
    const { run } = await engine.triggerRun("resumable");
    await spinning;

    // Another process takes the write lock: the heartbeat cannot renew the lease any more.
    await holder.lock();
    const interrupted = await engine.events.next("run:interrupted", (e) => e.runId === run.id);
    expect(interrupted.reason).toBe("lease_lost");
    // Stopped while the lease was still ours, so no other engine could have started it yet.
    expect(interrupted.at).toBeLessThan(interrupted.leaseUntil);
    await engine.events.next("invocation:ended", (e) => e.runId === run.id);
    // Reads keep working while the file is locked.
    expect((await engine.getRun(run.id)).run.status).toBe("running");

    await holder.release();
    const finished = await engine.waitForRun(run.id, 30_000);
    expect(finished).toMatchObject({ status: "succeeded", result: "resumed", attempt: 1, error: null });
    // One invocation after the other, never two at once.
    expect(order.of(run.id)).toEqual(["started", "ended:abandon", "started", "ended:finish"]);
    const steps = await engine.storage.steps.listForRun(run.id);
    expect(steps.map((s) => [s.name, s.status, s.attempts, s.error?.code ?? null])).toEqual([
      ["start", "succeeded", 1, null],
      ["spin", "failed", 1, "STEP_INTERRUPTED"],
    ]);
    await expectContiguousLogs(engine, run.id);
    expect(logLines().filter((l) => /UNIQUE constraint|could not store run log lines/.test(l))).toEqual([]);
  });

  it("never claims a run it is still executing, even when the lease looks expired", async () => {
    const storage = await openStorage({ dataDir: tempDir() });
    cleanups.push(() => storage.close());
    let offset = 0;
    const now = () => Date.now() + offset;
    const calls: Array<{ run: RunRecord; signals: RunSignals }> = [];
    let onCall: () => void = () => {};
    let releaseFirst!: () => void;
    const firstMayEnd = new Promise<void>((resolve) => (releaseFirst = resolve));
    let claims = 0;
    let onClaim: () => void = () => {};
    const spied: Storage = Object.assign(Object.create(Object.getPrototypeOf(storage)) as Storage, storage, {
      runs: {
        ...storage.runs,
        claimNext: async (...args: Parameters<Storage["runs"]["claimNext"]>) => {
          const claimed = await storage.runs.claimNext(...args);
          claims += 1;
          onClaim();
          return claimed;
        },
      },
    });
    const runner = new Runner(
      spied,
      async (run, signals) => {
        calls.push({ run, signals });
        onCall();
        if (calls.length === 1) await firstMayEnd;
      },
      pino({ level: "silent" }),
      { owner: "me", concurrency: 4, leaseMs: 1_000, pollMs: 10, now },
    );
    const { run } = await storage.runs.create({ id: uuidv7(), workflow: "wf", workflowVersion: "v1", org: null, trigger: "api", params: {}, idempotencyKey: null, scheduledFor: null, now: now() });
    const waitFor = (cond: () => boolean, set: (fn: () => void) => void) =>
      new Promise<void>((resolve) => {
        const check = () => cond() && resolve();
        set(check);
        check();
      });
    runner.start();
    cleanups.push(() => {
      releaseFirst();
      return runner.stop(0);
    });
    await waitFor(() => calls.length === 1, (fn) => (onCall = fn));

    // Every lease in the database has lapsed by this process's clock; the invocation has not ended.
    offset = 60_000;
    const seen = claims;
    await waitFor(() => claims >= seen + 5, (fn) => (onClaim = fn));
    expect(calls).toHaveLength(1);

    // Once the first invocation has ended, the run may be claimed again, under a new token.
    releaseFirst();
    await waitFor(() => calls.length === 2, (fn) => (onCall = fn));
    expect(calls[1]!.run).toMatchObject({ id: run.id, leaseOwner: "me", leaseToken: calls[0]!.run.leaseToken + 1 });
  });
});

describe("a locked database", () => {
  it("is STORAGE_UNAVAILABLE: /health says so at once, the run is not blamed and resumes when the lock goes", async () => {
    const { engine, dataDir, logLines } = await started({
      workflows: { "resumable.ts": resumable(`for (let i = 0; ; i++) await ctx.step("s" + i, () => i);`) },
      config: { leaseMs: 1_000 },
      deps: { storageBusyMs: 200 },
    });
    const holder = await spawnLockHolder(join(dataDir, "bifrost.db"));
    holders.push(holder);
    const { run } = await engine.triggerRun("resumable");
    await engine.events.next("step:finished", (e) => e.runId === run.id && e.name === "s3");

    await holder.lock();
    // Answered while the lock is still held: the engine does not wait for it.
    const health = await engine.health();
    expect(health.ok).toBe(false);
    expect(health.database).toMatch(/locked by another process/);
    const ended = await engine.events.next("invocation:ended", (e) => e.runId === run.id);
    expect(ended.recorded).toBe(false);
    expect((await engine.getRun(run.id)).run).toMatchObject({ status: "running", error: null });

    await holder.release();
    const finished = await engine.waitForRun(run.id, 30_000);
    expect(finished).toMatchObject({ status: "succeeded", result: "resumed", error: null, attempt: 1 });
    expect(await engine.health()).toMatchObject({ ok: true });
    expect(logLines().some((l) => l.includes("WORKFLOW_ERROR"))).toBe(false);
    await expectContiguousLogs(engine, run.id);
  });

  it("does not freeze the engine while another process holds the lock", async () => {
    const { engine, dataDir } = await started({ workflows: { "resumable.ts": resumable("return 1;") }, deps: { storageBusyMs: 60_000 } });
    const holder = await spawnLockHolder(join(dataDir, "bifrost.db"));
    holders.push(holder);
    await holder.lock();
    // A write waits for the lock without blocking the event loop: timers and reads go on.
    let writeSettled = false;
    const write = engine.triggerRun("resumable").finally(() => (writeSettled = true));
    await new Promise<void>((resolve) => setImmediate(resolve));
    const health = await engine.health();
    expect(health.ok).toBe(false);
    expect(writeSettled).toBe(false);
    await holder.release();
    const { run } = await write;
    expect((await engine.waitForRun(run.id, 30_000)).status).toBe("succeeded");
  });
});
