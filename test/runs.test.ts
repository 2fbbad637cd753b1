import { afterEach, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { openTestEngine, workflowSource } from "./helpers.js";

const engines: Engine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop(0).catch(() => {});
});

async function started(options: Parameters<typeof openTestEngine>[0]) {
  const t = await openTestEngine(options);
  engines.push(t.engine);
  t.engine.start({ watch: false });
  return t;
}

async function runToEnd(engine: Engine, name: string, params: unknown = {}) {
  const { run } = await engine.triggerRun(name, { params });
  return engine.waitForRun(run.id, 30_000);
}

async function messages(engine: Engine, runId: string): Promise<string[]> {
  return (await engine.storage.logs.list(runId, { limit: 10_000 })).map((l) => l.msg);
}

const twoSteps = workflowSource(
  "two_steps",
  `
    const a = await ctx.step("a", () => { ctx.log.info("a body ran"); return { value: 1 }; });
    const b = await ctx.step("b", () => {
      ctx.log.info("b body ran");
      if (params.failFirstAttempt && ctx.run.attempt === 1) throw new Error("b failed on attempt 1");
      return 2;
    });
    return a.value + b;
  `,
  `\n  retry: { attempts: 3, backoff: "fixed", delay: 1 },`,
);

describe("durable steps", () => {
  it("reuses a finished step when run() executes again for a retry", async () => {
    const { engine } = await started({ workflows: { "two_steps.ts": twoSteps } });
    const run = await runToEnd(engine, "two_steps", { failFirstAttempt: true });
    expect(run).toMatchObject({ status: "succeeded", result: 3, attempt: 2 });
    const logs = await messages(engine, run.id);
    expect(logs.filter((m) => m === "a body ran")).toHaveLength(1);
    expect(logs.filter((m) => m === "b body ran")).toHaveLength(2);
    expect(logs.some((m) => m.startsWith("attempt 1 of 3 failed: b failed on attempt 1"))).toBe(true);
    const steps = await engine.storage.steps.listForRun(run.id);
    expect(steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ["a", "succeeded", 1],
      ["b", "succeeded", 2],
    ]);
  });

  it("resumes a run whose engine died, without re-running committed steps", async () => {
    const leaseMs = 5_000;
    const first = await started({ workflows: { "two_steps.ts": twoSteps }, config: { leaseMs } });
    // Kill the engine the moment step "a" is committed, before run() can continue.
    first.engine.events.on("step:finished", (e) => {
      if (e.name === "a") void first.engine.crashForTesting();
    });
    const { run } = await first.engine.triggerRun("two_steps", { params: {} });
    await first.engine.events.next("step:finished", (e) => e.runId === run.id && e.name === "a");
    engines.splice(engines.indexOf(first.engine), 1);

    const orphan = await first.engine.storage.runs.get(run.id);
    expect(orphan?.status).toBe("running");

    // A second engine on the same database, whose clock is past the dead engine's lease.
    const second = await started({ dataDir: first.dataDir, workflowsDir: first.workflowsDir, config: { leaseMs }, deps: { now: () => Date.now() + leaseMs + 1_000 } });
    const finished = await second.engine.waitForRun(run.id, 30_000);
    await first.engine.storage.close();
    expect(finished).toMatchObject({ status: "succeeded", result: 3, attempt: 1 });
    const logs = await messages(second.engine, run.id);
    expect(logs.filter((m) => m === "a body ran")).toHaveLength(1);
    expect(logs.filter((m) => m === "b body ran")).toHaveLength(1);
  });

  it("splits work into chunk steps and resumes after a chunk timeout from the last committed chunk", async () => {
    const { engine } = await started({
      workflows: {
        "chunky.ts": workflowSource(
          "chunky",
          `
          const items = Array.from({ length: 12 }, (_, i) => i + 1);
          const sums = await ctx.chunks("sum", items, { size: 2 }, (batch, index) => {
            ctx.log.info("chunk " + index);
            const until = Date.now() + 60;
            while (Date.now() < until) {}
            return batch[0] + batch[1];
          });
          return { sums, invocationAttempt: ctx.run.attempt };
        `,
          `\n  chunkTimeout: "250ms",\n  timeout: "30s",`,
        ),
      },
    });
    const resumed: string[] = [];
    engine.events.on("run:requeued", (e) => e.reason === "resume" && resumed.push(e.runId));
    const run = await runToEnd(engine, "chunky");
    expect(run.status).toBe("succeeded");
    expect(run.result).toEqual({ sums: [3, 7, 11, 15, 19, 23], invocationAttempt: 1 });
    expect(resumed.length).toBeGreaterThan(0);
    const steps = await engine.storage.steps.listForRun(run.id);
    expect(steps.map((s) => s.name).sort()).toEqual(["sum#0", "sum#1", "sum#2", "sum#3", "sum#4", "sum#5"]);
    expect(steps.every((s) => s.status === "succeeded")).toBe(true);
    // A chunk whose first attempt committed ran exactly once. A chunk cut off by a timeout ran again;
    // its first attempt may have been stopped before or after its log line left the sandbox.
    const logs = await messages(engine, run.id);
    for (const step of steps) {
      const ran = logs.filter((m) => m === `chunk ${step.name.split("#")[1]}`).length;
      if (step.attempts === 1) expect(ran, step.name).toBe(1);
      else expect(ran, step.name).toBeGreaterThanOrEqual(1);
      expect(ran, step.name).toBeLessThanOrEqual(step.attempts);
    }
    // The invocation either reached chunkTimeout after a commit, or ended before a chunk that would
    // not have fitted (test/chunk-yield.test.ts): either way the log says why the run resumed.
    expect(logs.some((m) => m.includes("resuming from the last committed step") || m.includes("would not finish within this invocation"))).toBe(true);
  });

  it("fails with the step name, the mapped stack and an error log line after the last attempt", async () => {
    const { engine } = await started({
      workflows: {
        "fails.ts": workflowSource("fails", `await ctx.step("explode", () => { throw new TypeError("bad ticket"); });`, `\n  retry: { attempts: 2, delay: 1 },`),
      },
    });
    const run = await runToEnd(engine, "fails");
    expect(run).toMatchObject({ status: "failed", attempt: 2, error: { code: "WORKFLOW_ERROR", message: "bad ticket", step: "explode" } });
    expect(run.error?.stack).toMatch(/fails\.ts:6:\d+/);
    const logs = await engine.storage.logs.list(run.id, { limit: 100 });
    expect(logs.at(-1)).toMatchObject({ level: "error", msg: "run failed: bad ticket" });
    const [step] = await engine.storage.steps.listForRun(run.id);
    expect(step).toMatchObject({ name: "explode", status: "failed", attempts: 2, error: { message: "bad ticket" } });
  });

  it("rejects duplicate step names and oversized results with stable codes", async () => {
    const { engine } = await started({
      workflows: {
        "dupes.ts": workflowSource("dupes", `await ctx.step("x", () => 1); await ctx.step("x", () => 2);`),
        "huge.ts": workflowSource("huge", `return "x".repeat(2 * 1024 * 1024);`),
        "bigint.ts": workflowSource("bigint", `return { n: 10n };`),
      },
    });
    const [dupes, huge, bigint] = await Promise.all([runToEnd(engine, "dupes"), runToEnd(engine, "huge"), runToEnd(engine, "bigint")]);
    expect(dupes).toMatchObject({ status: "failed", error: { code: "STEP_INVALID" } });
    expect(huge).toMatchObject({ status: "failed", error: { code: "RESULT_TOO_LARGE" } });
    expect(bigint).toMatchObject({ status: "failed", error: { code: "RESULT_NOT_SERIALIZABLE" } });
  });
});

describe("runs", () => {
  it("stores log lines in order with sequence numbers, and caps them per run", async () => {
    const { engine } = await started({
      workflows: { "chatty.ts": workflowSource("chatty", `for (let i = 1; i <= params.lines; i++) ctx.log[i % 2 ? "info" : "debug"]("line " + i, { i }); return "done";`) },
      deps: { hostLimits: { maxLogLines: 50 } },
    });
    const small = await runToEnd(engine, "chatty", { lines: 30 });
    const lines = await engine.storage.logs.list(small.id, { limit: 1000 });
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(lines.map((l) => l.msg)).toEqual(Array.from({ length: 30 }, (_, i) => `line ${i + 1}`));
    expect(lines[1]).toMatchObject({ level: "debug", data: { i: 2 } });
    expect(await engine.storage.logs.list(small.id, { limit: 1000, minLevel: "info" })).toHaveLength(15);

    const big = await runToEnd(engine, "chatty", { lines: 200 });
    const capped = await engine.storage.logs.list(big.id, { limit: 1000 });
    expect(big.status).toBe("succeeded");
    expect(capped).toHaveLength(50);
    expect(capped.at(-1)).toMatchObject({ level: "warn", msg: "log limit of 50 lines reached: further lines of this run are dropped" });
  });

  it("runs at most BIFROST_CONCURRENCY runs at once and works through the rest of the queue", async () => {
    const { engine } = await started({
      config: { concurrency: 2 },
      workflows: { "hold.ts": workflowSource("hold", `await new Promise(() => {});`, `\n  timeout: "300ms",`) },
    });
    let running = 0;
    let peak = 0;
    engine.events.on("run:started", () => (peak = Math.max(peak, ++running)));
    engine.events.on("run:finished", () => running--);
    const ids = await Promise.all([1, 2, 3, 4, 5].map(async () => (await engine.triggerRun("hold")).run.id));
    const finished = await Promise.all(ids.map((id) => engine.waitForRun(id, 30_000)));
    expect(finished.map((r) => r.status)).toEqual(["timed_out", "timed_out", "timed_out", "timed_out", "timed_out"]);
    expect(peak).toBe(2);
  });

  it("cancels a running run and a run waiting for its retry", async () => {
    const { engine } = await started({
      workflows: {
        "stuck.ts": workflowSource("stuck", `ctx.log.info("in"); await new Promise(() => {});`),
        "later.ts": workflowSource("later", `throw new Error("first try fails");`, `\n  retry: { attempts: 2, delay: "1h" },`),
      },
    });
    const stuck = (await engine.triggerRun("stuck")).run;
    await engine.events.next("run:log", (e) => e.runId === stuck.id);
    expect(await engine.cancelRun(stuck.id)).toBe(true);
    expect(await engine.waitForRun(stuck.id, 30_000)).toMatchObject({ status: "cancelled", error: { code: "RUN_CANCELLED" } });

    const later = (await engine.triggerRun("later")).run;
    await engine.events.next("run:requeued", (e) => e.runId === later.id);
    expect(await engine.cancelRun(later.id)).toBe(true);
    expect(await engine.waitForRun(later.id, 30_000)).toMatchObject({ status: "cancelled", attempt: 2 });
    expect(await engine.cancelRun(later.id)).toBe(false);
  });

  it("writes console output to the run log", async () => {
    const { engine } = await started({ workflows: { "noisy.ts": workflowSource("noisy", `console.log("count", 3, { a: 1 }); console.error("bad"); await ctx.step("s", () => console.warn("inside"));`) } });
    const run = await runToEnd(engine, "noisy");
    const lines = await engine.storage.logs.list(run.id, { limit: 10 });
    expect(lines.map((l) => [l.level, l.msg, l.step])).toEqual([
      ["info", 'count 3 {"a":1}', undefined],
      ["error", "bad", undefined],
      ["warn", "inside", "s"],
    ]);
  });

  it("truncates oversized log messages and data", async () => {
    const { engine } = await started({
      workflows: { "loud.ts": workflowSource("loud", `ctx.log.info("m".repeat(100000), { blob: "d".repeat(200000) }); ctx.log.info("small", { blob: "d".repeat(1000) });`) },
    });
    const run = await runToEnd(engine, "loud");
    const [big, small] = await engine.storage.logs.list(run.id, { limit: 10 });
    expect(big!.msg).toBe(`${"m".repeat(8 * 1024)}… [truncated]`);
    expect(big!.data).toEqual({ truncated: true, bytes: expect.any(Number) });
    expect(small).toMatchObject({ msg: "small", data: { blob: "d".repeat(1000) } });
  });

  it("validates params before creating a run and applies schema defaults", async () => {
    const { engine } = await started({
      workflows: {
        "typed.ts": workflowSource("typed", `return params;`, `\n  params: { type: "object", properties: { n: { type: "integer", minimum: 1 }, mode: { type: "string", default: "full" } }, required: ["n"], additionalProperties: false },`),
      },
    });
    await expect(engine.triggerRun("typed", { params: { n: "3" } })).rejects.toMatchObject({ code: "INVALID_PARAMS", message: expect.stringMatching(/params\.n must be integer/) });
    await expect(engine.triggerRun("typed", { params: { n: 1, extra: true } })).rejects.toMatchObject({ code: "INVALID_PARAMS", message: expect.stringMatching(/unknown property "extra"/) });
    await expect(engine.triggerRun("typed", { params: {} })).rejects.toMatchObject({ code: "INVALID_PARAMS", message: expect.stringMatching(/missing required property "n"/) });
    await expect(engine.triggerRun("nope")).rejects.toMatchObject({ code: "WORKFLOW_NOT_FOUND" });
    expect(await engine.storage.runs.list({ limit: 10 })).toHaveLength(0);
    expect((await runToEnd(engine, "typed", { n: 2 })).result).toEqual({ n: 2, mode: "full" });
  });

  it("returns the same run for a repeated idempotency key", async () => {
    const { engine } = await started({ workflows: { "once.ts": workflowSource("once", "return ctx.run.id;") } });
    const a = await engine.triggerRun("once", { idempotencyKey: "ticket-42" });
    const b = await engine.triggerRun("once", { idempotencyKey: "ticket-42" });
    expect(a.created).toBe(true);
    expect(b).toMatchObject({ created: false, run: { id: a.run.id } });
    expect(await engine.storage.runs.list({ limit: 10 })).toHaveLength(1);
  });

  it("fires ctx.signal on a graceful stop and puts a cooperating run back in the queue", async () => {
    const t = await started({
      workflows: {
        "polite.ts": workflowSource(
          "polite",
          `await ctx.step("one", () => 1);
           // Like AbortSignal, a listener added after the abort does not fire: check first.
           await new Promise((resolve) => (ctx.signal.aborted ? resolve() : ctx.signal.addEventListener("abort", resolve)));
           ctx.log.info("asked to stop: " + ctx.signal.reason);
           ctx.signal.throwIfAborted();
           return "never";`,
        ),
      },
    });
    const { run } = await t.engine.triggerRun("polite");
    await t.engine.events.next("step:finished", (e) => e.runId === run.id);
    const requeued = t.engine.events.next("run:requeued", (e) => e.runId === run.id);
    engines.pop();
    await t.engine.stop(60_000);
    expect((await requeued).reason).toBe("resume");
    const reopened = await openTestEngine({ dataDir: t.dataDir, workflowsDir: t.workflowsDir });
    engines.push(reopened.engine);
    expect(await reopened.engine.storage.runs.get(run.id)).toMatchObject({ status: "queued", leaseOwner: null, attempt: 1, error: null });
    expect(await messages(reopened.engine, run.id)).toEqual(["asked to stop: engine stopping", "stopped at the engine's request; the run resumes from its last committed step"]);
  });

  it("decides 'stopped at the engine's request' from the engine's own stop, whatever the run threw", async () => {
    const t = await started({
      workflows: {
        "own_error.ts": workflowSource(
          "own_error",
          `await ctx.step("one", () => 1);
           await new Promise((resolve) => (ctx.signal.aborted ? resolve() : ctx.signal.addEventListener("abort", resolve)));
           throw new Error("stopping, as asked");`,
        ),
      },
    });
    const { run } = await t.engine.triggerRun("own_error");
    await t.engine.events.next("step:finished", (e) => e.runId === run.id);
    const requeued = t.engine.events.next("run:requeued", (e) => e.runId === run.id);
    engines.pop();
    await t.engine.stop(60_000);
    expect((await requeued).reason).toBe("resume");
    const reopened = await openTestEngine({ dataDir: t.dataDir, workflowsDir: t.workflowsDir });
    engines.push(reopened.engine);
    expect(await reopened.engine.storage.runs.get(run.id)).toMatchObject({ status: "queued", attempt: 1, error: null });
  });

  it("releases the leases of unfinished runs when stopped, so another engine can resume them", async () => {
    const t = await started({ workflows: { "slow.ts": workflowSource("slow", `await ctx.step("one", () => 1); await new Promise(() => {});`) } });
    const { run } = await t.engine.triggerRun("slow");
    await t.engine.events.next("step:finished", (e) => e.runId === run.id);
    engines.pop();
    await t.engine.stop(0);
    const reopened = await openTestEngine({ dataDir: t.dataDir, workflowsDir: t.workflowsDir });
    engines.push(reopened.engine);
    expect(await reopened.engine.storage.runs.get(run.id)).toMatchObject({ status: "queued", leaseOwner: null });
  });
});
