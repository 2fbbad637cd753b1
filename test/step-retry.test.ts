import { afterEach, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { engineTracker, workflowSource, type TestEngineOptions } from "./helpers.js";
import { ScriptedServer } from "./http-servers.js";

/** The engine's clock: real time plus an offset a test moves forward instead of waiting. */
function clock() {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms: number) => void (offset += ms) };
}

const engines = engineTracker();
const servers: ScriptedServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function started(options: TestEngineOptions) {
  const t = await engines.open(options);
  t.engine.start({ watch: false });
  return t;
}

async function runToEnd(engine: Engine, name: string, params: unknown = {}) {
  const { run } = await engine.triggerRun(name, { params });
  return engine.waitForRun(run.id, 60_000);
}

const messages = async (engine: Engine, runId: string) => (await engine.storage.logs.list(runId, { limit: 1000 })).map((l) => l.msg);
const stepRows = async (engine: Engine, runId: string) => (await engine.storage.steps.listForRun(runId)).map((s) => [s.name, s.status, s.attempts]);

describe("ctx.step retry", () => {
  it("retries the failing step alone, in place after a short pause, without redoing finished steps", async () => {
    const { engine } = await started({
      workflows: {
        "flaky.ts": workflowSource(
          "flaky",
          `
          await ctx.step("first", () => { ctx.log.info("first ran"); return 1; });
          let tries = 0;
          const value = await ctx.step("flaky", () => {
            tries += 1;
            if (tries < 3) throw new Error("not yet " + tries);
            return tries;
          }, { retry: { attempts: 5, backoff: "fixed", delay: 10 } });
          return value;
        `,
        ),
      },
    });
    const requeues: string[] = [];
    engine.events.on("run:requeued", (e) => requeues.push(e.runId));
    const run = await runToEnd(engine, "flaky");
    expect(run).toMatchObject({ status: "succeeded", result: 3, attempt: 1 });
    expect(requeues).toEqual([]);
    expect(await stepRows(engine, run.id)).toEqual([
      ["first", "succeeded", 1],
      ["flaky", "succeeded", 3],
    ]);
    const logs = await messages(engine, run.id);
    expect(logs.filter((m) => m === "first ran")).toHaveLength(1);
    expect(logs).toContain('step "flaky" failed (attempt 1 of 5): not yet 1; retrying in 10ms');
    expect(logs).toContain('step "flaky" failed (attempt 2 of 5): not yet 2; retrying in 10ms');
  });

  it("throws the step's error once its attempts are used, and the run fails naming the step", async () => {
    const { engine } = await started({
      workflows: { "broken.ts": workflowSource("broken", `await ctx.step("broken", () => { throw new Error("always"); }, { retry: { attempts: 3, delay: 1 } });`) },
    });
    const run = await runToEnd(engine, "broken");
    expect(run).toMatchObject({ status: "failed", attempt: 1, error: { code: "WORKFLOW_ERROR", message: "always", step: "broken" } });
    expect(await stepRows(engine, run.id)).toEqual([["broken", "failed", 3]]);
  });

  it("does not hold the invocation through a longer pause: the run waits in the queue and the next try runs in a fresh invocation", async () => {
    const time = clock();
    const { engine } = await started({
      workflows: {
        "later.ts": workflowSource(
          "later",
          `
          // Only the first invocation runs "first"'s body: on resume it is committed.
          let fresh = false;
          await ctx.step("first", () => { fresh = true; return 1; });
          return await ctx.step("later", () => { if (fresh) throw new Error("first invocation"); return "second"; }, { retry: { attempts: 3, delay: "5s" } });
        `,
        ),
      },
      deps: { now: time.now },
    });
    const { run } = await engine.triggerRun("later");
    const back = await engine.events.next("run:requeued", (e) => e.runId === run.id);
    const queued = await engine.storage.runs.get(run.id);
    expect(queued).toMatchObject({ status: "queued", attempt: 1 });
    expect(back.runAt - (queued!.startedAt ?? 0)).toBeGreaterThanOrEqual(5_000);
    expect(await stepRows(engine, run.id)).toEqual([
      ["first", "succeeded", 1],
      ["later", "failed", 1],
    ]);
    expect((await messages(engine, run.id)).some((m) => m.startsWith('step "later" is tried again at ') && m.includes("(attempt 2 of 3) in a fresh invocation"))).toBe(true);

    time.advance(5_000);
    expect(await engine.waitForRun(run.id, 60_000)).toMatchObject({ status: "succeeded", result: "second", attempt: 1 });
    expect(await stepRows(engine, run.id)).toEqual([
      ["first", "succeeded", 1],
      ["later", "succeeded", 2],
    ]);
  });

  it("passes ctx.chunks' retry to each chunk: only the failing chunk is tried again", async () => {
    const { engine } = await started({
      workflows: {
        "chunky.ts": workflowSource(
          "chunky",
          `
          let failed = false;
          return await ctx.chunks("sum", [1, 2, 3, 4, 5, 6], { size: 2, retry: { attempts: 2, delay: 1 } }, (batch, i) => {
            ctx.log.info("chunk " + i);
            if (i === 1 && !failed) { failed = true; throw new Error("chunk 1 failed once"); }
            return batch[0] + batch[1];
          });
        `,
        ),
      },
    });
    const run = await runToEnd(engine, "chunky");
    expect(run).toMatchObject({ status: "succeeded", result: [3, 7, 11] });
    expect(await stepRows(engine, run.id)).toEqual([
      ["sum#0", "succeeded", 1],
      ["sum#1", "succeeded", 2],
      ["sum#2", "succeeded", 1],
    ]);
    const logs = await messages(engine, run.id);
    expect(["chunk 0", "chunk 1", "chunk 2"].map((m) => logs.filter((l) => l === m).length)).toEqual([1, 2, 1]);
  });

  it("refuses bad retry options on the host with STEP_RETRY_INVALID", async () => {
    const { engine } = await started({
      workflows: {
        "bad.ts": workflowSource(
          "bad",
          `
          const options = [
            { retry: { attempts: 0 } },
            { retry: { attempts: 1.5 } },
            { retry: { attempts: 101 } },
            { retry: { attempts: 2, backoff: "linear" } },
            { retry: { attempts: 2, delay: "forever" } },
            { retry: { attempts: 2, delay: -5 } },
            { retry: { attempts: 2, delay: "30d" } },
            { retry: { attempts: 2, jitter: true } },
            { retry: "often" },
            { retries: 3 },
            "retry",
          ][params.i];
          if (params.chunks) await ctx.chunks("c", [1], { size: 1, retry: options.retry }, () => 1);
          else await ctx.step("s", () => 1, options);
          return "ran";
        `,
        ),
      },
    });
    const cases = [...Array.from({ length: 11 }, (_, i) => ({ i })), { i: 0, chunks: true }, { i: 4, chunks: true }];
    const runs = await Promise.all(cases.map((params) => runToEnd(engine, "bad", params)));
    for (const [n, run] of runs.entries()) {
      expect({ case: cases[n], status: run.status, code: run.error?.code }).toEqual({ case: cases[n], status: "failed", code: "STEP_RETRY_INVALID" });
    }
  });
});

describe("chunkTimeout and timeout", () => {
  it("gives each invocation its own chunkTimeout: a run far longer in total than chunkTimeout, made of short chunks, succeeds", async () => {
    const { engine } = await started({
      workflows: {
        "long.ts": workflowSource(
          "long",
          `
          return await ctx.chunks("work", Array.from({ length: 16 }, (_, i) => i), { size: 1 }, (batch) => {
            const until = Date.now() + 40;
            while (Date.now() < until) {}
            return batch[0];
          });
        `,
          `\n  chunkTimeout: "150ms",\n  timeout: "5m",`,
        ),
      },
    });
    const resumes: string[] = [];
    engine.events.on("run:requeued", (e) => e.reason === "resume" && resumes.push(e.runId));
    const run = await runToEnd(engine, "long");
    expect(run).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(run.result).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(resumes.length).toBeGreaterThan(0);
    expect(run.finishedAt! - run.startedAt!).toBeGreaterThan(150);
  });

  it("times out a chunk that alone exceeds chunkTimeout and tries it again as its retry policy says", async () => {
    const server = await ScriptedServer.start();
    servers.push(server);
    // The first request never gets an answer; the second does.
    const url = server.on("/slow", () => {}, (_req, res) => res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}'));
    const { engine } = await started({
      workflows: {
        "stuck.ts": workflowSource(
          "stuck",
          `
          return await ctx.chunks("fetch", [1], { size: 1, retry: { attempts: 2, delay: 1 } }, async () => (await ctx.http.get(params.url, { retry: false })).body);
        `,
          `\n  chunkTimeout: "500ms",`,
        ),
      },
    });
    const run = await runToEnd(engine, "stuck", { url });
    expect(run).toMatchObject({ status: "succeeded", result: [{ ok: true }], attempt: 1, error: null });
    expect(server.to("/slow")).toHaveLength(2);
    expect(await stepRows(engine, run.id)).toEqual([["fetch#0", "succeeded", 2]]);
    // Cut by the deadline (the sandbox's or ctx.http's, whichever fires first), the next try gets a fresh invocation.
    const logs = await messages(engine, run.id);
    expect(logs.some((m) => m.startsWith('step "fetch#0" did not finish within chunkTimeout (500ms) (attempt 1 of 2); trying it again') || m.startsWith('step "fetch#0" is tried again at '))).toBe(true);
  });

  it("ends a chunk that exceeds chunkTimeout on every try timed_out once its policy is used", async () => {
    const { engine } = await started({
      workflows: { "hang.ts": workflowSource("hang", `await ctx.step("hang", () => new Promise(() => {}), { retry: { attempts: 2, delay: 1 } });`, `\n  chunkTimeout: "200ms",`) },
    });
    const run = await runToEnd(engine, "hang");
    expect(run).toMatchObject({ status: "timed_out", error: { code: "RUN_TIMED_OUT", message: "the run exceeded its chunkTimeout of 200ms without committing a step" } });
    expect((await engine.storage.steps.listForRun(run.id)).map((s) => [s.name, s.status, s.attempts, s.error?.code])).toEqual([["hang", "failed", 2, "STEP_INTERRUPTED"]]);
  });

  it("ends a run that exceeds its timeout timed_out, however its chunks are cut", async () => {
    const { engine } = await started({
      workflows: {
        "endless.ts": workflowSource(
          "endless",
          `
          await ctx.chunks("work", Array.from({ length: 1000 }, (_, i) => i), { size: 1 }, (batch) => {
            const until = Date.now() + 30;
            while (Date.now() < until) {}
            return batch[0];
          });
        `,
          `\n  chunkTimeout: "100ms",\n  timeout: "400ms",\n  retry: { attempts: 3, delay: 1 },`,
        ),
      },
    });
    const run = await runToEnd(engine, "endless");
    expect(run).toMatchObject({ status: "timed_out", attempt: 1, error: { code: "RUN_TIMED_OUT" } });
    expect(run.error?.message).toMatch(/timeout/);
    const done = (await engine.storage.steps.listForRun(run.id)).filter((s) => s.status === "succeeded").length;
    expect(done).toBeGreaterThan(0);
    expect(done).toBeLessThan(1000);
  });
});
