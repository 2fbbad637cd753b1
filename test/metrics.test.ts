import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../engine/config.js";
import { startServer, type RunningServer } from "../engine/server.js";
import { bearer, createTestKey, memoryLogger, tempDir, workflowSource, writeFiles } from "./helpers.js";

/** GET /metrics over a real server: counters fed by engine events, gauges read from the database. */

let server: RunningServer;
let viewer: string;

beforeAll(async () => {
  const workflowsDir = tempDir("bifrost-wf-");
  writeFiles(workflowsDir, {
    "ok.ts": workflowSource("ok", "return 1;"),
    "spin.ts": workflowSource("spin", "for (;;) {}"),
    "slow.ts": workflowSource("slow", "await new Promise(() => {});", `\n  timeout: "300ms",`),
    "hog.ts": workflowSource("hog", `const hog = []; for (;;) hog.push(new Array(100000).fill("x".repeat(10)));`, `\n  retry: { attempts: 2, delay: "10ms" },`),
    "gate.ts": workflowSource("gate", "await new Promise(() => {});"),
    // Hangs at its chunkTimeout after committing a step, once; the resumed invocation finishes.
    "chunky.ts": workflowSource("chunky", `let fresh = false; await ctx.step("a", () => { fresh = true; return 1; }); if (fresh) await new Promise(() => {}); return 2;`, `\n  chunkTimeout: "300ms",`),
  });
  const config = loadConfig({}, { dataDir: tempDir(), workflowsDir, port: 0, watch: false, pollMs: 50, concurrency: 1, sandboxCpuMs: 1500, sandboxMemoryMb: 32, shutdownGraceMs: 0 });
  server = await startServer(config, { logger: memoryLogger().logger });
  viewer = await createTestKey(server.engine, "viewer");
});

afterAll(async () => {
  await server?.close();
});

/** Sample values by `name{labels}` as Prometheus writes them (labels in the order they were declared). */
async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`${server.url}/metrics`, { headers: bearer(viewer) });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

async function finish(workflow: string) {
  const { run } = await server.engine.triggerRun(workflow);
  return server.engine.waitForRun(run.id, 30_000);
}

describe("metrics", () => {
  it("need a key that may read", async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
    const body = (await (await fetch(`${server.url}/metrics`)).json()) as { error: { code: string } };
    expect(body.error.code).toBe("UNAUTHENTICATED");
  });

  it("count runs triggered, started and finished, with their durations", async () => {
    expect((await finish("ok")).status).toBe("succeeded");
    expect((await finish("ok")).status).toBe("succeeded");
    const m = await scrape();
    expect(m.get('bifrost_runs_triggered_total{workflow="ok",trigger="api"}')).toBe(2);
    expect(m.get('bifrost_runs_started_total{workflow="ok"}')).toBe(2);
    expect(m.get('bifrost_runs_finished_total{workflow="ok",status="succeeded"}')).toBe(2);
    expect(m.get('bifrost_run_duration_seconds_count{workflow="ok",status="succeeded"}')).toBe(2);
    expect(m.get('bifrost_run_duration_seconds_bucket{le="+Inf",workflow="ok",status="succeeded"}')).toBe(2);
    expect(m.get('bifrost_run_duration_seconds_sum{workflow="ok",status="succeeded"}')).toBeGreaterThanOrEqual(0);
  });

  it("count sandbox limit hits by kind, also when the run is retried", async () => {
    expect(await finish("spin")).toMatchObject({ status: "timed_out", error: { code: "SANDBOX_CPU_LIMIT" } });
    expect(await finish("slow")).toMatchObject({ status: "timed_out", error: { code: "RUN_TIMED_OUT" } });
    // Two attempts, both over the memory limit: one hit that led to a retry, one that ended the run.
    expect(await finish("hog")).toMatchObject({ status: "failed", attempt: 2, error: { code: "SANDBOX_MEMORY_LIMIT" } });
    const m = await scrape();
    expect(m.get('bifrost_sandbox_limit_hits_total{workflow="spin",kind="cpu"}')).toBe(1);
    expect(m.get('bifrost_sandbox_limit_hits_total{workflow="slow",kind="deadline"}')).toBe(1);
    expect(m.get('bifrost_sandbox_limit_hits_total{workflow="hog",kind="memory"}')).toBe(2);
    expect(m.get('bifrost_runs_started_total{workflow="hog"}')).toBe(2);
    expect(m.get('bifrost_runs_finished_total{workflow="hog",status="failed"}')).toBe(1);
    expect(m.get('bifrost_runs_finished_total{workflow="spin",status="timed_out"}')).toBe(1);
    expect(m.get('bifrost_sandbox_limit_hits_total{workflow="ok",kind="cpu"}')).toBeUndefined();
  });

  it("count a chunkTimeout that the run resumes from", async () => {
    expect(await finish("chunky")).toMatchObject({ status: "succeeded", result: 2 });
    const m = await scrape();
    expect(m.get('bifrost_sandbox_limit_hits_total{workflow="chunky",kind="deadline"}')).toBe(1);
    expect(m.get('bifrost_runs_started_total{workflow="chunky"}')).toBe(2);
  });

  it("count HTTP requests by method, route pattern and status", async () => {
    const { run } = await server.engine.triggerRun("ok");
    await server.engine.waitForRun(run.id, 30_000);
    for (let i = 0; i < 3; i++) await fetch(`${server.url}/api/runs/${run.id}`, { headers: bearer(viewer) });
    await fetch(`${server.url}/api/runs/${"0".repeat(8)}-0000-7000-8000-${"0".repeat(12)}`, { headers: bearer(viewer) });
    await fetch(`${server.url}/no/such/path/${Math.random()}`);
    const m = await scrape();
    expect(m.get('bifrost_http_requests_total{method="GET",route="/api/runs/:id",status="200"}')).toBe(3);
    expect(m.get('bifrost_http_requests_total{method="GET",route="/api/runs/:id",status="404"}')).toBe(1);
    expect(m.get('bifrost_http_requests_total{method="GET",route="(unmatched)",status="404"}')).toBe(1);
    expect(m.get('bifrost_http_requests_total{method="GET",route="/metrics",status="401"}')).toBe(2);
    // Paths are not labels: only patterns are.
    expect([...m.keys()].some((k) => k.includes(run.id) || k.includes("/no/such"))).toBe(false);
  });

  it("read the queue depth and the running runs from the database", async () => {
    const { run: gate } = await server.engine.triggerRun("gate");
    await server.engine.events.next("run:started", (e) => e.runId === gate.id);
    // One slot (concurrency 1) is held by the gate: these wait in the queue.
    await server.engine.triggerRun("ok");
    await server.engine.triggerRun("ok");
    const m = await scrape();
    expect(m.get('bifrost_queue_depth{workflow="ok"}')).toBe(2);
    expect(m.get('bifrost_runs_running{workflow="gate"}')).toBe(1);
    expect(m.get('bifrost_queue_depth{workflow="gate"}')).toBeUndefined();
  });
});
