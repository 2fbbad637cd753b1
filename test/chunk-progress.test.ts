import { describe, expect, it } from "vitest";
import { buildApp } from "../engine/api/app.js";
import { bearer, createTestKey, engineTracker, workflowSource } from "./helpers.js";
import { runBifrost } from "./processes.js";

/** The engine's clock: real time plus an offset a test moves forward instead of waiting. */
function clock() {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms: number) => void (offset += ms) };
}

const engines = engineTracker();

// Chunk 2 of 4 sleeps (durably, so mid-chunk): the run is still going, with two chunks committed.
const UPSERT = workflowSource(
  "upsert",
  `
    const items = Array.from({ length: 7 }, (_, i) => i);
    await ctx.chunks("upsert", items, { size: 2 }, async (batch, i) => {
      if (i === 2) await ctx.sleep("1m");
      return batch.length;
    });
    return await ctx.chunks("empty", [], { size: 5 }, () => 1);
  `,
);

describe("chunk progress", () => {
  it("shows done/total per ctx.chunks call in the run record, over the API and in `bifrost runs show`, while the run is going", async () => {
    const time = clock();
    const { engine, dataDir, workflowsDir } = await engines.open({ workflows: { "upsert.ts": UPSERT }, deps: { now: time.now } });
    engine.start({ watch: false });
    const { run } = await engine.triggerRun("upsert");
    await engine.events.next("run:requeued", (e) => e.runId === run.id);

    const going = await engine.getRun(run.id);
    expect(going.run.status).toBe("queued");
    expect(going.chunks).toEqual([{ name: "upsert", done: 2, total: 4 }]);

    const app = await buildApp({ engine });
    try {
      const res = await app.inject({ method: "GET", url: `/api/runs/${run.id}`, headers: bearer(await createTestKey(engine, "viewer")) });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ status: "queued", chunks: [{ name: "upsert", done: 2, total: 4 }] });
    } finally {
      await app.close();
    }

    const shown = await runBifrost(["runs", "show", run.id], { BIFROST_DATA_DIR: dataDir, BIFROST_WORKFLOWS_DIR: workflowsDir });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain("chunks upsert: 2/4");
    expect(shown.stdout).toMatch(/waits until \S+: a sleep or a retry's pause/);

    time.advance(60_000);
    expect(await engine.waitForRun(run.id, 60_000)).toMatchObject({ status: "succeeded", result: [] });
    expect((await engine.getRun(run.id)).chunks).toEqual([
      { name: "upsert", done: 4, total: 4 },
      { name: "empty", done: 0, total: 0 },
    ]);
  });

  it("counts the committed chunks while the chunk body runs", async () => {
    const { engine } = await engines.open({
      workflows: {
        "count.ts": workflowSource(
          "count",
          `await ctx.chunks("rows", Array.from({ length: 10 }, (_, i) => i), { size: 3 }, (batch, i) => { if (i === 3) ctx.log.info("last chunk"); return i; });`,
        ),
      },
    });
    let seen: unknown;
    // The line is stored (and the event fires) while chunk 3 is still running: chunks 0 to 2 are in.
    engine.events.on("run:log", (e) => {
      if (e.line.msg === "last chunk") seen = engine.storage.chunks.listForRun(e.runId);
    });
    engine.start({ watch: false });
    const { run } = await engine.triggerRun("count");
    expect(await engine.waitForRun(run.id, 60_000)).toMatchObject({ status: "succeeded" });
    const progress = (await seen) as { name: string; done: number; total: number }[];
    expect(progress[0]).toMatchObject({ name: "rows", total: 4 });
    expect(progress[0]!.done).toBeGreaterThanOrEqual(3);
    expect((await engine.getRun(run.id)).chunks).toEqual([{ name: "rows", done: 4, total: 4 }]);
  });
});
