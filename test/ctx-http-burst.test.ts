// Fifty runs at once against a server that allows ten requests a second: the per-host gate makes
// them share what one learns, so the server sends few 429s, nobody sends before its Retry-After,
// and every request eventually succeeds.
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import type { RunRecord } from "../storage/types.js";
import { openTestEngine, workflowSource } from "./helpers.js";
import { rateLimitedServer, type Arrival } from "./http-servers.js";

const RUNS = 50;
const LIMIT = 10;
const WINDOW_MS = 1_000;

const FETCH = workflowSource(
  "fetch_items",
  `
    const res = await ctx.http.get(params.url, { headers: { "x-run": ctx.run.id }, retry: { attempts: 10 } });
    return res.body;
  `,
);

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function burst(publishBudget: boolean): Promise<{ runs: RunRecord[]; arrivals: Arrival[] }> {
  const server: { app: FastifyInstance; url: string; arrivals: Arrival[] } = await rateLimitedServer({ max: LIMIT, windowMs: WINDOW_MS, publishBudget });
  cleanups.push(() => server.app.close());
  const { engine } = await openTestEngine({ workflows: { "fetch_items.ts": FETCH }, config: { concurrency: RUNS, sandboxMemoryMb: 32 } });
  cleanups.push(() => engine.stop(0));
  engine.start({ watch: false });
  const started = await Promise.all(Array.from({ length: RUNS }, () => engine.triggerRun("fetch_items", { params: { url: `${server.url}/items` } })));
  const runs = await Promise.all(started.map(({ run }) => (engine as Engine).waitForRun(run.id, 60_000)));
  return { runs, arrivals: server.arrivals };
}

/** Every 429 told its run to wait; the run's next request reached the server no earlier (server clock). */
function earlyRetries(arrivals: Arrival[]): Arrival[] {
  const early: Arrival[] = [];
  const byRun = new Map<string, Arrival[]>();
  for (const a of arrivals) byRun.set(String(a.headers["x-run"]), [...(byRun.get(String(a.headers["x-run"])) ?? []), a]);
  for (const list of byRun.values()) {
    for (let i = 0; i + 1 < list.length; i++) {
      const refused = list[i]!;
      if (refused.status === 429 && list[i + 1]!.at < refused.at + (refused.retryAfterMs ?? 0)) early.push(list[i + 1]!);
    }
  }
  return early;
}

function check(runs: RunRecord[], arrivals: Arrival[], bound: number, label: string): void {
  expect(runs.map((r) => r.status)).toEqual(Array(RUNS).fill("succeeded"));
  expect(runs.every((r) => JSON.stringify(r.result) === JSON.stringify({ items: [1, 2, 3] }))).toBe(true);
  const ok = arrivals.filter((a) => a.status === 200);
  const refused = arrivals.filter((a) => a.status === 429);
  // One success per run, each run's last request.
  expect(new Set(ok.map((a) => a.headers["x-run"])).size).toBe(RUNS);
  expect(ok).toHaveLength(RUNS);
  expect(refused.every((a) => (a.retryAfterMs ?? 0) >= 1_000)).toBe(true);
  expect(earlyRetries(arrivals)).toEqual([]);
  const span = arrivals[arrivals.length - 1]!.at - arrivals[0]!.at;
  console.log(`${label}: ${RUNS} runs, ${arrivals.length} requests, ${refused.length} answered 429 (bound ${bound}; a client per run without a shared gate gets about ${RUNS - LIMIT} in the first second alone), over ${span} ms`);
  expect(refused.length).toBeLessThanOrEqual(bound);
}

describe(`a burst of ${RUNS} runs against ${LIMIT} requests per second`, () => {
  it("shares a published budget: at most one 429 per window (a probe sent at the reset the server announced)", async () => {
    const { runs, arrivals } = await burst(true);
    // The gate starts no more than the budget a response published (less those started since), and
    // after the announced reset sends one request alone. The announced reset is rounded up to whole
    // seconds, so only that probe can be early, at most once per window the burst spans.
    check(runs, arrivals, Math.ceil(RUNS / LIMIT), "published budget");
  });

  it("learns an unpublished limit: one window's overshoot, then at most one 429 per window", async () => {
    const { runs, arrivals } = await burst(false);
    // Slow start lets in flight at most one more request than have succeeded since the last
    // cool-down, so the first window can see at most LIMIT + 1 refusals; after that the gate starts
    // only the learned budget (LIMIT) and then one request alone, which is the one 429 per window.
    check(runs, arrivals, LIMIT + 1 + Math.ceil(RUNS / LIMIT), "Retry-After only");
  });
});
