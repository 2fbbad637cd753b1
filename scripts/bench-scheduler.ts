// The scheduler's figures for `npm run bench` (scripts/bench.ts): fire lag and idle CPU with
// 10,000 schedules, each beside a baseline measured in the same run (a bare setTimeout's lag; the
// process idle with no schedules), and the cost of one maintenance job run against an empty worker.
import { Worker } from "node:worker_threads";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { EngineEvents } from "../engine/events.js";
import { Maintenance } from "../engine/maintenance/maintenance.js";
import type { RegisteredWorkflow } from "../engine/registry/registry.js";
import { Scheduler } from "../engine/scheduler/scheduler.js";
import { openStorage } from "../storage/index.js";

const SCHEDULES = Number(process.env.BENCH_SCHEDULES ?? 10_000);
const FIRE_SAMPLES = Number(process.env.BENCH_FIRE_SAMPLES ?? 30);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 10_000);
const ORGS = Number(process.env.BENCH_ORGS ?? 1_000);

type Row = (what: string, value: string, baseline: string, ratio: string) => void;

function percentile(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function workflow(name: string, cron: string, orgs?: string[]): RegisteredWorkflow {
  return {
    definition: {
      name,
      description: null,
      params: { type: "object" },
      schedule: { cron, timezone: "UTC", overlap: "allow", catchUp: "latest", catchUpWindowMs: 86_400_000, ...(orgs ? { orgs } : {}) },
      timeoutMs: 3_600_000,
      chunkTimeoutMs: 60_000,
      retry: { attempts: 1, backoff: "fixed", delayMs: 1000, maxDelayMs: 1000 },
    },
    version: "bench",
    sourceKind: "file",
    file: null,
    module: { code: "", sourceMap: "", version: "bench" },
    source: "",
    registeredAt: 0,
    updatedAt: 0,
  };
}

/** A daily 6-field cron at the UTC time of instant `t` (whole seconds). */
const dailyAt = (t: number) => {
  const d = new Date(t);
  return `${d.getUTCSeconds()} ${d.getUTCMinutes()} ${d.getUTCHours()} * * *`;
};

/** CPU time (user + system) this process uses while it waits `ms`. */
async function idleCpu(ms: number): Promise<number> {
  const before = process.cpuUsage();
  await new Promise((r) => setTimeout(r, ms));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

/**
 * How late bare setTimeout timers aimed at instants a second apart fire (Date.now() resolution),
 * half a second off the schedules' instants so that the two never wait for each other.
 */
async function timerLag(samples: number): Promise<number[]> {
  const lags: number[] = [];
  const first = Math.ceil(Date.now() / 1000) * 1000 + 1500;
  await Promise.all(
    Array.from({ length: samples }, (_, i) => {
      const target = first + i * 1000;
      return new Promise<void>((resolve) =>
        setTimeout(() => {
          lags.push(Date.now() - target);
          resolve();
        }, target - Date.now()),
      );
    }),
  );
  return lags;
}

async function workerRun(file: string, workerData: unknown): Promise<{ wallMs: number; cpuMs: number }> {
  const cpu = process.cpuUsage();
  const t = performance.now();
  await new Promise<void>((resolve, reject) => {
    const w = new Worker(file, { execArgv: [], workerData });
    w.on("error", reject);
    w.on("exit", () => resolve());
  });
  const used = process.cpuUsage(cpu);
  return { wallMs: performance.now() - t, cpuMs: (used.user + used.system) / 1000 };
}

export async function benchScheduler(dir: string, row: Row): Promise<void> {
  const dataDir = join(dir, "data-scheduler");
  const storage = await openStorage({ dataDir });
  const logger = pino({ level: "silent" });
  const events = new EngineEvents();
  // Opening storage and compiling leave work behind: idle means after it.
  await new Promise((r) => setTimeout(r, 2_000));
  const baselineIdle = await idleCpu(IDLE_MS);
  // After loading (a few seconds at most), a settling pause and the idle window.
  const probesFrom = Math.ceil(Date.now() / 1000) * 1000 + IDLE_MS + 12_000;
  const workflows = new Map<string, RegisteredWorkflow>();
  for (let i = 0; i < SCHEDULES; i++) {
    // The first FIRE_SAMPLES fire once each, a second apart, after the idle window; the others
    // fire once a day at times spread over the hours that do not come up during the bench.
    const at = i < FIRE_SAMPLES ? probesFrom + i * 1000 : probesFrom + 3_600_000 + (i * 7_919_000) % (20 * 3_600_000);
    workflows.set(`s${i}`, workflow(`s${i}`, dailyAt(at)));
  }
  const registry = {
    get: (name: string) => workflows.get(name),
    list: () => [...workflows.values()],
    refresh: async (name: string) => workflows.get(name),
    retain: async () => {},
  };

  const scheduler = new Scheduler({ storage, registry, events, logger, now: Date.now, nudge: () => {} });
  const loadStarted = performance.now();
  await scheduler.start();
  const loadMs = performance.now() - loadStarted;
  const lags: number[] = [];
  const done = new Promise<void>((resolve) =>
    events.on("schedule:fired", (e) => {
      // When the run is committed, not when the fire began.
      lags.push(Date.now() - e.scheduledFor);
      if (lags.length === FIRE_SAMPLES) resolve();
    }),
  );
  // Loading leaves garbage behind; idle means after the collector has had its turn.
  await new Promise((r) => setTimeout(r, 2_000));
  const schedulerIdle = await idleCpu(IDLE_MS);
  const baselineLag = timerLag(FIRE_SAMPLES);
  // The scheduler's timer never holds a process open (a server's socket does); this bench has none.
  const keepAlive = setInterval(() => {}, 60_000);
  await done;
  clearInterval(keepAlive);
  const timerLags = await baselineLag;
  await scheduler.stop();

  row(`schedule fire lag p50 (${SCHEDULES} schedules, run committed)`, `${percentile(lags, 0.5)} ms`, `bare setTimeout ${percentile(timerLags, 0.5)} ms`, "");
  row("  p99", `${percentile(lags, 0.99)} ms`, `bare setTimeout ${percentile(timerLags, 0.99)} ms`, "");
  row(`idle CPU over ${IDLE_MS / 1000} s with ${SCHEDULES} schedules armed`, `${schedulerIdle.toFixed(1)} ms`, `no schedules ${baselineIdle.toFixed(1)} ms`, `${schedulerIdle >= baselineIdle ? "+" : ""}${(schedulerIdle - baselineIdle).toFixed(1)} ms`);
  row(`  loading ${SCHEDULES} schedules at start (rows + next fires)`, `${loadMs.toFixed(0)} ms`, "", "");

  // One schedule-check run over those rows, as bree runs it, against an empty worker thread.
  const empty = join(dir, "empty-worker.mjs");
  writeFileSync(empty, 'import { parentPort } from "node:worker_threads"; parentPort.postMessage("done");\n');
  await workerRun(empty, {});
  const emptyRun = await workerRun(empty, {});
  const maintenance = new Maintenance({ dataDir, logger, events, now: Date.now, graceMs: 60_000, scheduleCheckMs: 3_600_000, leaseReaperMs: 3_600_000, onSchedules: async () => {}, onExpiredLeases: async () => {} });
  const cpu = process.cpuUsage();
  const t = performance.now();
  const checked = events.next("maintenance:ran", (e) => e.job === "schedule-check");
  await maintenance.start();
  await checked;
  const checkWall = performance.now() - t;
  const used = process.cpuUsage(cpu);
  await maintenance.stop();
  row("schedule-check job, one run (worker thread)", `${checkWall.toFixed(0)} ms wall, ${((used.user + used.system) / 1000).toFixed(0)} ms CPU`, `empty worker ${emptyRun.wallMs.toFixed(0)} ms wall, ${emptyRun.cpuMs.toFixed(0)} ms CPU`, "");

  // One schedule for many orgs (the same sync for every client): all fire at one instant.
  const orgs = Array.from({ length: ORGS }, (_, i) => `client-${i}`);
  const many = workflow("sync_all", dailyAt(Math.ceil(Date.now() / 1000) * 1000 + 5_000), orgs);
  const manyRegistry = { get: () => many, list: () => [many], refresh: async () => many, retain: async () => {} };
  const manyEvents = new EngineEvents();
  const fanOut = new Scheduler({ storage, registry: manyRegistry, events: manyEvents, logger, now: Date.now, nudge: () => {} });
  const orgLags: number[] = [];
  const allFired = new Promise<void>((resolve) =>
    manyEvents.on("schedule:fired", (e) => {
      orgLags.push(Date.now() - e.scheduledFor);
      if (orgLags.length === ORGS) resolve();
    }),
  );
  await fanOut.start();
  const keepOpen = setInterval(() => {}, 60_000);
  await allFired;
  clearInterval(keepOpen);
  await fanOut.stop();
  row(`one schedule for ${ORGS} orgs: lag of the first and the last run`, `${Math.min(...orgLags)} ms / ${Math.max(...orgLags)} ms`, `${((ORGS / Math.max(1, Math.max(...orgLags))) * 1000).toFixed(0)} fires/s`, "");
  await storage.close();
}
