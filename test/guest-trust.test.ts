import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { openTestEngine, workflowSource } from "./helpers.js";

// Workflow code is hostile: whatever it hands back is bounded, and the run's code is the host's.
const DEEP = `let v = 1; for (let i = 0; i < 10000; i++) v = [v];`;

const workflows: Record<string, string> = {
  // item 2: values the host cannot serialize
  "deep_result.ts": workflowSource("deep_result", `${DEEP} return v;`),
  "deep_step.ts": workflowSource("deep_step", `${DEEP} await ctx.step("deep", () => v);`),
  "deep_log.ts": workflowSource("deep_log", `${DEEP} ctx.log.info("deep", v); ctx.log.info("after", { ok: true }); return "done";`),
  "deep_throw.ts": workflowSource("deep_throw", `${DEEP} throw v;`),
  "bigint_step.ts": workflowSource("bigint_step", `await ctx.step("big", () => ({ n: 10n }));`),
  "huge_step.ts": workflowSource("huge_step", `await ctx.step("huge", () => "x".repeat(2 * 1024 * 1024));`),
  "huge_text.ts": workflowSource("huge_text", `return "x".repeat(5 * 1024 * 1024);`),
  // item 4: sizes
  "huge_message.ts": workflowSource("huge_message", `throw new Error("E".repeat(20 * 1024 * 1024));`),
  "huge_stack.ts": workflowSource("huge_stack", `const e = new Error("boom"); e.stack = "Error: boom\\n" + ":1".repeat(200000) + "("; throw e;`),
  "long_step_name.ts": workflowSource("long_step_name", `await ctx.step("s".repeat(4 * 1024 * 1024), () => 1);`),
  "control_step_name.ts": workflowSource("control_step_name", `await ctx.step("a\\nb", () => 1);`),
  "forged_json.ts": workflowSource(
    "forged_json",
    // Replacing JSON.stringify used to let the workflow write the host call's arguments itself.
    `JSON.stringify = () => JSON_FORGED; ctx.log.info("plain line"); return "done";`.replace("JSON_FORGED", `'{"level":"constructor","msg":"forged","step":"' + "S".repeat(1000) + '"}'`),
  ),
  // item 5: codes come from the host only
  "forged_code.ts": workflowSource("forged_code", `throw Object.assign(new Error("mine"), { code: params.code });`),
  "forged_fault.ts": workflowSource("forged_fault", `throw Object.assign(new Error("made up"), { code: "LEASE_LOST", fault: "0b7e6a52-9c8d-4f3e-8a1b-2c3d4e5f6a7b" });`),
  "forged_step_code.ts": workflowSource("forged_step_code", `await ctx.step("s", () => { throw Object.assign(new Error("step says so"), { code: "SANDBOX_CPU_LIMIT" }); });`),
  "rethrown_fault.ts": workflowSource(
    "rethrown_fault",
    `try { await ctx.step("big", () => "x".repeat(2 * 1024 * 1024)); } catch (e) { throw Object.assign(new Error("wrapped: " + e.message), { code: "WORKFLOW_OK", fault: e.fault }); }`,
  ),
  "swallowed_fault.ts": workflowSource("swallowed_fault", `try { await ctx.step("x", () => 1); await ctx.step("x", () => 2); } catch (e) { return { caught: e.code }; }`),
  "own_step_invalid.ts": workflowSource("own_step_invalid", `throw Object.assign(new Error("not the host's"), { code: "STEP_INVALID" });`),
  "bad_chunks.ts": workflowSource("bad_chunks", `await ctx.chunks("c", "not an array", { size: 2 }, async () => 1);`),
  // item 3: a hostile stack thrown while the module loads reaches the registry's frame parser
  "hostile_top.ts": `import { workflow } from "bifrost";
const e = new Error("boom");
e.stack = "Error: boom\\n" + ":1".repeat(200000) + "(";
throw e;
export default workflow({ name: "hostile_top", async run() {} });
`,
  // item 7: a log flood
  "flood.ts": workflowSource("flood", `for (let i = 0; i < 1e6; i++) ctx.log.info("line " + i); return "survived";`),
};

describe("the host never trusts the guest", () => {
  let engine: Engine;
  let logLines: () => string[];

  beforeAll(async () => {
    ({ engine, logLines } = await openTestEngine({ config: { concurrency: 4 }, workflows }));
    engine.start();
  });

  afterAll(async () => {
    await engine.stop(0);
  });

  async function runToEnd(name: string, params: unknown = {}) {
    const { run } = await engine.triggerRun(name, { params });
    return engine.waitForRun(run.id, 30_000);
  }

  describe("values the host cannot serialize end in a recorded RESULT_NOT_SERIALIZABLE", () => {
    it("for a run result nested 10,000 deep", async () => {
      const run = await runToEnd("deep_result");
      expect(run).toMatchObject({ status: "failed", error: { code: "RESULT_NOT_SERIALIZABLE", message: "the run result is not JSON-serializable: nested deeper than 64 levels" } });
    });

    it("for a step result, recorded on the step too", async () => {
      const run = await runToEnd("deep_step");
      expect(run).toMatchObject({ status: "failed", error: { code: "RESULT_NOT_SERIALIZABLE", step: "deep", message: 'the result of step "deep" is not JSON-serializable: nested deeper than 64 levels' } });
      const [step] = await engine.storage.steps.listForRun(run.id);
      expect(step).toMatchObject({ name: "deep", status: "failed", error: { code: "RESULT_NOT_SERIALIZABLE" } });
      const bigint = await runToEnd("bigint_step");
      expect(bigint).toMatchObject({ status: "failed", error: { code: "RESULT_NOT_SERIALIZABLE", step: "big", message: expect.stringMatching(/^the result of step "big" is not JSON-serializable: .*BigInt/) } });
    });

    it("for log data, stored as a marker while the run goes on", async () => {
      const run = await runToEnd("deep_log");
      expect(run).toMatchObject({ status: "succeeded", result: "done" });
      const lines = await engine.storage.logs.list(run.id, { limit: 10 });
      expect(lines.map((l) => [l.msg, l.data])).toEqual([
        ["deep", { truncated: true, reason: "RESULT_NOT_SERIALIZABLE: nested deeper than 64 levels" }],
        ["after", { ok: true }],
      ]);
    });

    it("for a thrown value, kept as a bounded message", async () => {
      const run = await runToEnd("deep_throw");
      expect(run.error).toMatchObject({ code: "WORKFLOW_ERROR" });
      expect(run.error!.message.length).toBeLessThanOrEqual(8 * 1024);
    });

    it("and values over the size limit are RESULT_TOO_LARGE, decided by the host", async () => {
      const [step, text] = await Promise.all([runToEnd("huge_step"), runToEnd("huge_text")]);
      expect(step).toMatchObject({ status: "failed", error: { code: "RESULT_TOO_LARGE", step: "huge", message: 'the result of step "huge" is 2097154 bytes; the limit is 1048576 bytes' } });
      expect(text).toMatchObject({ status: "failed", error: { code: "RESULT_TOO_LARGE", message: expect.stringMatching(/^the run result is \d+ characters of JSON/) } });
    });
  });

  describe("everything the guest hands back is bounded by the host", () => {
    it("stores a 20 MB thrown message as a bounded message", async () => {
      const run = await runToEnd("huge_message");
      expect(run.error).toMatchObject({ code: "WORKFLOW_ERROR", details: { name: "Error" } });
      expect(run.error!.message.length).toBe(8 * 1024);
      expect(run.error!.message.endsWith("… [truncated]")).toBe(true);
      expect(JSON.stringify(await engine.storage.runs.get(run.id)).length).toBeLessThan(64 * 1024);
    });

    it("caps a hostile stack before mapping it", async () => {
      const run = await runToEnd("huge_stack");
      expect(run.error).toMatchObject({ code: "WORKFLOW_ERROR", message: "boom" });
      expect(run.error!.stack!.length).toBeLessThanOrEqual(16 * 1024);
    });

    it("validates step names on the host: non-empty, at most 200 characters, no control characters", async () => {
      const [long, control] = await Promise.all([runToEnd("long_step_name"), runToEnd("control_step_name")]);
      expect(long).toMatchObject({ status: "failed", error: { code: "STEP_INVALID", message: "ctx.step(name, fn): a step name must be at most 200 characters (got 201)" } });
      expect(control).toMatchObject({ status: "failed", error: { code: "STEP_INVALID", message: expect.stringMatching(/control characters/) } });
      expect(await engine.storage.steps.listForRun(long.id)).toEqual([]);
    });

    it("does not let a replaced JSON.stringify write the host call's arguments", async () => {
      const run = await runToEnd("forged_json");
      const lines = await engine.storage.logs.list(run.id, { limit: 10 });
      expect(lines.map((l) => [l.level, l.msg, l.step])).toEqual([["info", "plain line", undefined]]);
    });
  });

  it("reads a hostile stack thrown at module load in linear time, bounded", () => {
    const problem = engine.registry.problems().find((p) => p.file?.endsWith("hostile_top.ts"));
    expect(problem?.error).toMatchObject({ code: "WORKFLOW_INVALID", message: expect.stringMatching(/hostile_top\.ts: boom$/) });
    const details = problem!.error.details as { stack: string };
    expect(details.stack.length).toBeLessThanOrEqual(16 * 1024);
  });

  describe("codes of engine decisions come from the host only", () => {
    it.each(["constructor", "__proto__", "SANDBOX_MEMORY_LIMIT", "RUN_CANCELLED", "RUN_ABORTED", "toString"])("a thrown code %s is the workflow's data, not the run's code", async (code) => {
      const run = await runToEnd("forged_code", { code });
      expect(run).toMatchObject({ status: "failed", error: { code: "WORKFLOW_ERROR", message: "mine", fix: expect.stringMatching(/The workflow threw/), details: { name: "Error", code } } });
    });

    it("a made-up fault id or a workflow's own engine-like code stays WORKFLOW_ERROR", async () => {
      const [fault, own] = await Promise.all([runToEnd("forged_fault"), runToEnd("own_step_invalid")]);
      expect(fault.error).toMatchObject({ code: "WORKFLOW_ERROR", details: { code: "LEASE_LOST" } });
      expect(own.error).toMatchObject({ code: "WORKFLOW_ERROR", details: { code: "STEP_INVALID" } });
    });

    it("a failed step's record keeps the workflow's code as data", async () => {
      const run = await runToEnd("forged_step_code");
      expect(run.error).toMatchObject({ code: "WORKFLOW_ERROR", step: "s", details: { code: "SANDBOX_CPU_LIMIT" } });
      const [step] = await engine.storage.steps.listForRun(run.id);
      expect(step!.error).toMatchObject({ code: "WORKFLOW_ERROR", details: { code: "SANDBOX_CPU_LIMIT" } });
    });

    it("an error carrying a fault the host recorded ends the run with the host's record", async () => {
      const run = await runToEnd("rethrown_fault");
      expect(run.error).toMatchObject({ code: "RESULT_TOO_LARGE", message: 'the result of step "big" is 2097154 bytes; the limit is 1048576 bytes' });
      expect(run.error?.details).toBeUndefined();
    });

    it("a host fault the workflow caught is the workflow's to handle", async () => {
      expect(await runToEnd("swallowed_fault")).toMatchObject({ status: "succeeded", result: { caught: "STEP_INVALID" } });
      expect(await runToEnd("bad_chunks")).toMatchObject({ status: "failed", error: { code: "STEP_INVALID", message: 'ctx.chunks("c"): items must be an array' } });
    });
  });

  it("drops a log flood at the source after the per-run cap, marks the cut and counts what it dropped", async () => {
    const run = await runToEnd("flood");
    expect(run).toMatchObject({ status: "succeeded", result: "survived" });
    const lines = await engine.storage.logs.list(run.id, { limit: 20_000 });
    expect(lines).toHaveLength(10_000);
    expect(lines[9_998]).toMatchObject({ seq: 9_999, msg: "line 9998" });
    expect(lines[9_999]).toMatchObject({ seq: 10_000, level: "warn", msg: "log limit of 10000 lines reached: further lines of this run are dropped" });
    const dropped = logLines()
      .map((l) => JSON.parse(l) as { runId?: string; dropped?: number; msg?: string })
      .filter((l) => l.runId === run.id && l.dropped !== undefined);
    expect(dropped).toEqual([expect.objectContaining({ dropped: 990_000, msg: "run log lines dropped at the per-run limit" })]);
  });
});
