import { afterEach, describe, expect, it } from "vitest";
import { engineTracker, workflowSource } from "./helpers.js";
import { listenLocal } from "./http-servers.js";

/**
 * Between chunks the runner ends an invocation whose next chunk would not fit in what is left of
 * its chunkTimeout, and the run goes on in a fresh invocation: no chunk is started only to be cut
 * off and run again. The engine's clock stands still except when the receiving server moves it on,
 * so the chunks' durations are exact and the test needs no real waiting.
 */

const SYNC = workflowSource(
  "sync",
  `
    const items = Array.from({ length: params.n }, (_, i) => i);
    const done = await ctx.chunks("upsert", items, { size: 1 }, async (batch, index) => {
      await ctx.http.post(params.url, { json: { index }, idempotencyKey: "chunk-" + index });
      return index;
    });
    return done.length;
  `,
  `\n  chunkTimeout: "2s",\n  timeout: "1h",`,
);

const tracker = engineTracker();
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe("chunked invocations", () => {
  it("ends the invocation before a chunk that would not fit, and goes on in a fresh one", async () => {
    const clock = { offset: 0 };
    const received: number[] = [];
    const server = await listenLocal((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        received.push((JSON.parse(body) as { index: number }).index);
        clock.offset += 800; // each chunk takes 0.8 s of engine time
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    closers.push(server.close);
    const url = `${server.url}/upsert`;

    // The engine's clock moves only when a chunk's request arrives: chunk durations are exactly 0.8 s
    // however slow the machine is.
    const base = Date.now();
    const { engine } = await tracker.open({ workflows: { "sync.ts": SYNC }, config: { sandboxMemoryMb: 32 }, deps: { now: () => base + clock.offset } });
    let invocations = 0;
    engine.events.on("invocation:ended", () => (invocations += 1));
    engine.start({ watch: false });
    const { run } = await engine.triggerRun("sync", { params: { n: 6, url } });
    const done = await engine.waitForRun(run.id, 30_000);

    expect(done.status).toBe("succeeded");
    expect(done.result).toBe(6);
    // Every chunk ran once: none was started and then cut off by the deadline.
    expect(received).toEqual([0, 1, 2, 3, 4, 5]);
    const steps = await engine.storage.steps.listForRun(run.id);
    expect(steps.filter((s) => s.name.startsWith("upsert#")).map((s) => [s.name, s.status, s.attempts])).toEqual([0, 1, 2, 3, 4, 5].map((i) => [`upsert#${i}`, "succeeded", 1]));
    const lines = (await engine.storage.logs.list(run.id, { limit: 100 })).filter((l) => l.msg.includes("would not finish within this invocation"));
    // Two chunks of 0.8 s fit in 2 s; the third goes to a fresh invocation: 6 chunks, 3 invocations.
    expect(lines.map((l) => l.msg.slice(0, 16))).toEqual(['chunk "upsert#2"', 'chunk "upsert#4"']);
    expect(invocations).toBe(3);
  });
});
