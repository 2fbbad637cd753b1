// `npm run bench`: each Bifrost figure is printed beside a baseline measured in the same run on
// the same machine, so the ratio is what matters (absolute numbers move with machine load).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import ivm from "isolated-vm";
import { pino } from "pino";
import { createKey } from "../engine/auth/key-store.js";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { loadConfig } from "../engine/config.js";
import { Engine } from "../engine/engine.js";
import { compileModule } from "../engine/registry/compile.js";
import { startServer } from "../engine/server.js";
import { IsolatePool, WorkflowSandbox } from "../sandbox/index.js";
import { benchOAuth } from "./bench-oauth.js";
import { benchScheduler } from "./bench-scheduler.js";

const SANDBOX_RUNS = Number(process.env.BENCH_SANDBOX_RUNS ?? 300);
const HTTP_RUNS = Number(process.env.BENCH_HTTP_RUNS ?? 400);
const HTTP_CONCURRENCY = Number(process.env.BENCH_HTTP_CONCURRENCY ?? 8);
const CTX_HTTP_CALLS = Number(process.env.BENCH_CTX_HTTP_CALLS ?? 300);

interface Stats {
  median: number;
  p95: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { median: at(0.5), p95: at(0.95) };
}

async function timeEach(n: number, fn: () => Promise<void>): Promise<Stats> {
  for (let i = 0; i < Math.min(20, n); i++) await fn(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return stats(samples);
}

const TRIVIAL = "function trivial(input) { return { echoed: input.n + 1 }; }";

async function rawNewIsolate(): Promise<void> {
  const isolate = new ivm.Isolate({ memoryLimit: 128 });
  const context = await isolate.createContext();
  const fn = await context.eval(`(${TRIVIAL})`, { reference: true });
  await fn.apply(undefined, [new ivm.ExternalCopy({ n: 1 }).copyInto()], { result: { copy: true, promise: true } });
  isolate.dispose();
}

function rawReusedIsolate(): () => Promise<void> {
  const isolate = new ivm.Isolate({ memoryLimit: 128 });
  return async () => {
    const context = await isolate.createContext();
    const fn = await context.eval(`(${TRIVIAL})`, { reference: true });
    await fn.apply(undefined, [new ivm.ExternalCopy({ n: 1 }).copyInto()], { result: { copy: true, promise: true } });
    context.release();
  };
}

async function httpLoad(url: string, body: string, total: number, concurrency: number, headers: Record<string, string> = {}): Promise<{ perSecond: number; latency: Stats }> {
  let next = 0;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next += 1;
        const t = performance.now();
        const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
        const json = (await res.json()) as { status?: string };
        if (res.status !== 200 || json.status !== "succeeded") throw new Error(`unexpected response ${res.status} ${JSON.stringify(json)}`);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { perSecond: (total / (performance.now() - started)) * 1000, latency: stats(latencies) };
}

const ms = (v: number) => `${v.toFixed(2)} ms`;
const rows: [string, string, string, string][] = [];
const row = (what: string, value: string, baseline: string, ratio: string) => rows.push([what, value, baseline, ratio]);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bifrost-bench-"));
  try {
    const workflowsDir = join(dir, "workflows");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(workflowsDir);
    writeFileSync(
      join(workflowsDir, "trivial.ts"),
      `import { workflow } from "bifrost";\nexport default workflow({ name: "trivial", async run(ctx, params: { n?: number }) { return { echoed: (params.n ?? 0) + 1 }; } });\n`,
    );

    // 1. Sandbox cost per run against the raw isolated-vm floor.
    const newIsolate = await timeEach(SANDBOX_RUNS, rawNewIsolate);
    const reused = await timeEach(SANDBOX_RUNS, rawReusedIsolate());
    const module = await compileModule({ kind: "file", file: join(workflowsDir, "trivial.ts") });
    const host = async () => null;
    const sandboxOnce = (pool?: IsolatePool) => async () => {
      const sandbox = await WorkflowSandbox.create(module, { memoryMb: 128, cpuMs: 60_000 }, pool);
      const deadline = Date.now() + 10_000;
      const out = await sandbox.run({ run: { id: "bench" }, params: { n: 1 }, deadline }, { host, deadline });
      sandbox.dispose();
      if (out.kind !== "returned") throw new Error(`sandbox run failed: ${JSON.stringify(out)}`);
    };
    const fresh = await timeEach(SANDBOX_RUNS, sandboxOnce());
    const pool = new IsolatePool({ memoryMb: 128, maxIdle: 1 });
    const pooled = await timeEach(SANDBOX_RUNS, sandboxOnce(pool));
    pool.close();
    row("sandbox run, fresh isolate (prelude, bundle, run)", ms(fresh.median), `raw new isolate ${ms(newIsolate.median)}`, `${(fresh.median / newIsolate.median).toFixed(2)}x`);
    row("  p95", ms(fresh.p95), `raw new isolate p95 ${ms(newIsolate.p95)}`, "");
    row("sandbox run, pooled isolate (what the engine does)", ms(pooled.median), `raw new context ${ms(reused.median)}`, `${(pooled.median / reused.median).toFixed(2)}x`);
    row("  p95", ms(pooled.p95), `raw new context p95 ${ms(reused.p95)}`, "");

    // 2. End-to-end trivial runs over HTTP with wait, against a bare fastify JSON route.
    const floor = Fastify();
    floor.post("/echo", async (req) => ({ status: "succeeded", echoed: (req.body as { n?: number }).n }));
    await floor.listen({ port: 0, host: "127.0.0.1" });
    const floorAddr = floor.server.address();
    const floorUrl = `http://127.0.0.1:${typeof floorAddr === "object" && floorAddr ? floorAddr.port : 0}/echo`;
    // Both sides get the same Authorization header; only Bifrost checks it (part of its cost).
    const auth = { authorization: `Bearer ${"x".repeat(68)}` };
    const floorLoad = await httpLoad(floorUrl, JSON.stringify({ n: 1 }), HTTP_RUNS, HTTP_CONCURRENCY, auth);
    await floor.close();

    const config = loadConfig({}, { dataDir: join(dir, "data"), workflowsDir, port: 0, host: "127.0.0.1", watch: false, concurrency: HTTP_CONCURRENCY });
    const server = await startServer(config, { logger: pino({ level: "silent" }) });
    const runUrl = `${server.url}/api/workflows/trivial/runs`;
    const { key } = await createKey(server.engine.storage, { role: "operator", name: "bench" }, Date.now());
    auth.authorization = `Bearer ${key}`;
    const body = JSON.stringify({ params: { n: 1 }, wait: true });
    await httpLoad(runUrl, body, 20, HTTP_CONCURRENCY, auth); // warm-up
    const e2e = await httpLoad(runUrl, body, HTTP_RUNS, HTTP_CONCURRENCY, auth);
    await server.close();
    row(`runs/s over HTTP with wait (${HTTP_CONCURRENCY} clients)`, `${e2e.perSecond.toFixed(0)}/s`, `bare fastify POST ${floorLoad.perSecond.toFixed(0)}/s`, `${(e2e.perSecond / floorLoad.perSecond).toFixed(3)}x`);
    row("  latency median", ms(e2e.latency.median), `bare fastify ${ms(floorLoad.latency.median)}`, "");
    row("  latency p95", ms(e2e.latency.p95), `bare fastify ${ms(floorLoad.latency.p95)}`, "");

    // 3. ctx.http per call (sandbox → host op → gate → undici → back into the isolate), against a
    // bare fetch from Node to the same local server.
    const api = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end('{"items":[1,2,3]}'));
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
    const apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}/items`;
    const bare = await timeEach(CTX_HTTP_CALLS, async () => {
      const res = await fetch(apiUrl);
      if ((await res.json()) === null) throw new Error("no body");
    });
    writeFileSync(
      join(workflowsDir, "http_loop.ts"),
      `import { workflow } from "bifrost";\nexport default workflow({ name: "http_loop", async run(ctx, params: { url: string; n: number }) {\n  const samples: number[] = [];\n  for (let i = 0; i < params.n; i++) { const t = Date.now(); const res = await ctx.http.get(params.url); if (!res.ok) throw new Error("status " + res.status); samples.push(Date.now() - t); }\n  return samples;\n} });\n`,
    );
    const engine = await Engine.open(loadConfig({}, { dataDir: join(dir, "data-http"), workflowsDir, port: 0, watch: false }), { logger: pino({ level: "silent" }) });
    engine.start({ watch: false });
    const loop = async (n: number) => {
      const { run } = await engine.triggerRun("http_loop", { params: { url: apiUrl, n } });
      const done = await engine.waitForRun(run.id, 600_000);
      if (done.status !== "succeeded") throw new Error(`http_loop failed: ${JSON.stringify(done.error)}`);
      return done.result as number[];
    };
    await loop(20); // warm-up
    // Date.now() in the sandbox has millisecond resolution: the mean over many calls is the figure.
    const calls = await loop(CTX_HTTP_CALLS);
    const mean = calls.reduce((a, b) => a + b, 0) / calls.length;
    await engine.stop(0);
    await new Promise<void>((resolve) => api.close(() => resolve()));
    row(`ctx.http.get per call (${CTX_HTTP_CALLS} in one run, mean)`, ms(mean), `bare fetch median ${ms(bare.median)}`, `${(mean / bare.median).toFixed(2)}x`);
    row("  overhead per call", ms(mean - bare.median), "", "");

    // 4. OAuth: a fresh token per call, and one refresh shared by concurrent callers (scripts/bench-oauth.ts).
    await benchOAuth(dir, workflowsDir, row);

    // 5. The scheduler: fire lag and idle CPU with 10,000 schedules (scripts/bench-scheduler.ts).
    await benchScheduler(dir, row);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const widths = [0, 1, 2, 3].map((i) => Math.max(...[["figure", "bifrost", "baseline (same run)", "ratio"], ...rows].map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  console.log(`Bifrost benchmarks — node ${process.version}, ${SANDBOX_RUNS} sandbox runs, ${HTTP_RUNS} HTTP runs\n`);
  console.log(line(["figure", "bifrost", "baseline (same run)", "ratio"]));
  for (const r of rows) console.log(line(r));
}

await main();
