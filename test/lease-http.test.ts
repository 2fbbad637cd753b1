import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { engineTracker, workflowSource } from "./helpers.js";
import { listenLocal } from "./http-servers.js";

/**
 * An engine that was frozen (SIGSTOP, a stalled VM) past its run's lease must not send the run's
 * next request when it wakes, even before its lease-guard timer gets to fire: another engine may
 * hold the run by then. The engine clock jumps past the lease while a request is held, which is
 * what a frozen process sees when it wakes.
 */

const FLOW = workflowSource(
  "flow",
  `
    await ctx.step("first", () => 1);
    await ctx.http.get(params.base + "/gate");
    await ctx.step("effect", async () => (await ctx.http.post(params.base + "/effect", { json: {}, idempotencyKey: "e1" })).status);
    return "done";
  `,
);

const tracker = engineTracker();
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe("ctx.http and the run's lease", () => {
  it("sends nothing once the lease ran out, and the run resumes and sends it under a new claim", async () => {
    const clock = { offset: 0 };
    const seen: string[] = [];
    let held: ServerResponse | undefined;
    let gateArrived: () => void = () => {};
    const gate = new Promise<void>((resolve) => (gateArrived = resolve));
    const server = await listenLocal((req, res) => {
      seen.push(req.url ?? "");
      if (req.url === "/gate" && held === undefined) {
        held = res;
        gateArrived();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    closers.push(server.close);
    const base = server.url;

    // A long lease: neither the heartbeat nor the guard timer runs during the test's few milliseconds.
    const { engine } = await tracker.open({ workflows: { "flow.ts": FLOW }, config: { sandboxMemoryMb: 32, leaseMs: 60_000 }, deps: { now: () => Date.now() + clock.offset } });
    const interrupted: string[] = [];
    engine.events.on("invocation:ended", (e) => interrupted.push(e.decision));
    engine.start({ watch: false });
    const { run } = await engine.triggerRun("flow", { params: { base } });
    await gate;
    // The process "wakes" 61 s later: the lease ended while the request was out.
    clock.offset += 61_000;
    held!.writeHead(200, { "content-type": "application/json" }).end("{}");
    const done = await engine.waitForRun(run.id, 30_000);

    expect(done.status).toBe("succeeded");
    // The first invocation was abandoned at its next request; the second claim sent it once.
    expect(interrupted[0]).toBe("abandon");
    expect(seen.filter((u) => u === "/effect")).toHaveLength(1);
    const steps = await engine.storage.steps.listForRun(run.id);
    expect(steps.map((s) => [s.name, s.status])).toEqual([["first", "succeeded"], ["effect", "succeeded"]]);
  });
});
