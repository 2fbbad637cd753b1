import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ErrorData } from "../../common/errors.js";
import type { RunRecord, Storage } from "../../storage/types.js";
import type { EngineEvents } from "../events.js";
import type { Logger } from "../logger.js";

export interface MetricsDeps {
  events: EngineEvents;
  storage: Storage;
  logger: Logger;
}

/** Which sandbox limit a run error reports, if any. */
export function limitKind(error: ErrorData | null | undefined): "cpu" | "memory" | "deadline" | undefined {
  switch (error?.code) {
    case "SANDBOX_CPU_LIMIT":
      return "cpu";
    case "SANDBOX_MEMORY_LIMIT":
      return "memory";
    case "RUN_TIMED_OUT":
      return "deadline";
    default:
      return undefined;
  }
}

/** Seconds from 10 ms to 4 h: trivial runs up to long syncs. */
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14_400];

/**
 * Prometheus metrics of one engine process, fed by the engine's typed events (engine/events.ts),
 * never by the runner code. Counters count what this process saw; the queue gauges are read from
 * the database at scrape time, so every process reports the same queue.
 */
export class EngineMetrics {
  readonly registry = new Registry();
  private readonly offs: (() => void)[] = [];
  private readonly httpRequests: Counter<"method" | "route" | "status">;
  private readonly queue: Gauge<"workflow">;
  private readonly running: Gauge<"workflow">;

  constructor(private readonly deps: MetricsDeps) {
    const registers = [this.registry];
    const triggered = new Counter({ name: "bifrost_runs_triggered_total", help: "Runs created, by workflow and trigger", labelNames: ["workflow", "trigger"], registers });
    const started = new Counter({
      name: "bifrost_runs_started_total",
      help: "Invocations started: a run's first start, each retry attempt and each resume",
      labelNames: ["workflow"],
      registers,
    });
    const finished = new Counter({ name: "bifrost_runs_finished_total", help: "Runs that reached a final status, by workflow and status", labelNames: ["workflow", "status"], registers });
    const duration = new Histogram({
      name: "bifrost_run_duration_seconds",
      help: "Time from a run's start to its end, by workflow and final status",
      labelNames: ["workflow", "status"],
      buckets: DURATION_BUCKETS,
      registers,
    });
    const limits = new Counter({
      name: "bifrost_sandbox_limit_hits_total",
      help: "Invocations stopped by a sandbox limit (cpu, memory, deadline), by workflow and kind",
      labelNames: ["workflow", "kind"],
      registers,
    });
    this.httpRequests = new Counter({ name: "bifrost_http_requests_total", help: "HTTP requests answered, by method, route pattern and status", labelNames: ["method", "route", "status"], registers });
    this.queue = new Gauge({ name: "bifrost_queue_depth", help: "Runs waiting in the queue (status queued, due or not), by workflow", labelNames: ["workflow"], registers });
    this.running = new Gauge({ name: "bifrost_runs_running", help: "Runs being executed (status running) by any engine process, by workflow", labelNames: ["workflow"], registers });
    const { storage, logger } = deps;
    const countLimit = (workflow: string, error: ErrorData | null | undefined) => {
      const kind = limitKind(error);
      if (kind) limits.inc({ workflow, kind });
    };
    const { events } = deps;
    this.offs.push(
      events.on("run:queued", ({ run }) => triggered.inc({ workflow: run.workflow, trigger: run.trigger })),
      events.on("run:started", ({ workflow }) => started.inc({ workflow })),
      events.on("run:finished", ({ run }) => {
        finished.inc({ workflow: run.workflow, status: run.status });
        if (run.startedAt !== null && run.finishedAt !== null) duration.observe({ workflow: run.workflow, status: run.status }, Math.max(0, run.finishedAt - run.startedAt) / 1000);
        countLimit(run.workflow, run.error);
      }),
      // A limit hit that leads to a retry or a resume is not a finish: the requeue names it.
      events.on("run:requeued", ({ workflow, error, limit }) => {
        if (limit) limits.inc({ workflow, kind: limit });
        else countLimit(workflow, error);
      }),
    );
  }

  observeHttp(method: string, route: string, status: number): void {
    this.httpRequests.inc({ method, route, status: String(status) });
  }

  /** Text exposition format. The queue gauges are read from the database now; if it does not answer they are left out. */
  async text(): Promise<string> {
    const rows = await this.deps.storage.stats.unfinishedRuns().catch((err: unknown) => {
      this.deps.logger.warn({ err }, "metrics: could not count queued and running runs");
      return [];
    });
    // Set without an await in between, so that concurrent scrapes never mix their counts.
    this.queue.reset();
    this.running.reset();
    for (const r of rows) (r.status === "queued" ? this.queue : this.running).set({ workflow: r.workflow }, r.count);
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    for (const off of this.offs.splice(0)) off();
  }
}
