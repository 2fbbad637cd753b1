import { describe, expect, it } from "vitest";
import { openStorage } from "../storage/index.js";
import { engineTracker, workflowSource } from "./helpers.js";

const { open } = engineTracker();

const spinner = workflowSource("spinner", `await ctx.step("s1", () => 1); ctx.log.info("spinning"); await ctx.step("s2", () => { for (;;) {} });`);

describe("step records of an ended invocation", () => {
  it("do not stay running after the run is cancelled", async () => {
    const { engine } = await open({ workflows: { "spinner.ts": spinner } });
    engine.start({ watch: false });
    const spinning = engine.events.next("run:log", (e) => e.line.msg === "spinning");
    const { run } = await engine.triggerRun("spinner");
    await spinning;
    expect(await engine.cancelRun(run.id)).toBe(true);
    expect((await engine.waitForRun(run.id, 30_000)).status).toBe("cancelled");
    const { steps } = await engine.getRun(run.id);
    expect(steps.map((s) => [s.name, s.status, s.error?.code ?? null])).toEqual([
      ["s1", "succeeded", null],
      ["s2", "failed", "STEP_INTERRUPTED"],
    ]);
  });

  it("do not stay running after a stop hands the run back for resume", async () => {
    const { engine, dataDir } = await open({ workflows: { "spinner.ts": spinner } });
    engine.start({ watch: false });
    const spinning = engine.events.next("run:log", (e) => e.line.msg === "spinning");
    const { run } = await engine.triggerRun("spinner");
    await spinning;
    // The grace period ends at once: the run is released with its step cut off.
    await engine.stop(0);
    const storage = await openStorage({ dataDir });
    try {
      expect(await storage.runs.get(run.id)).toMatchObject({ status: "queued", leaseOwner: null });
      const steps = await storage.steps.listForRun(run.id);
      expect(steps.map((s) => [s.name, s.status, s.error?.code ?? null])).toEqual([
        ["s1", "succeeded", null],
        ["s2", "failed", "STEP_INTERRUPTED"],
      ]);
    } finally {
      await storage.close();
    }
  });
});
