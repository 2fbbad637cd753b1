import { afterEach, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { openTestEngine, workflowSource } from "./helpers.js";

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
