import type { Storage } from "../../storage/types.js";
import type { EngineEvents } from "../events.js";
import type { Logger } from "../logger.js";
import { Maintenance } from "../maintenance/maintenance.js";
import type { WorkflowRegistry } from "../registry/registry.js";
import type { Timers } from "./loop.js";
import { DEFAULT_GRACE_MS } from "./plan.js";
import { Scheduler } from "./scheduler.js";

/** Knobs for tests and benchmarks; the defaults are what `bifrost start` uses. */
export interface SchedulingOptions {
  /** @default 60000 */
  graceMs?: number;
  /** @default 60000 */
  scheduleCheckMs?: number;
  /** @default 60000 */
  leaseReaperMs?: number;
  /** @default 60000 */
  tokenRefreshMs?: number;
  timers?: Timers;
}

export interface SchedulingDeps {
  storage: Storage;
  registry: WorkflowRegistry;
  events: EngineEvents;
  logger: Logger;
  now: () => number;
  dataDir: string;
  /** The runner: work was queued. */
  nudge: () => void;
  /** OAuth: refreshes the connections the token-refresh job found due (their token expires within `tokenSkewMs` plus an interval). */
  refreshTokens?: (keys: { provider: string; org: string | null }[]) => Promise<void>;
  tokenSkewMs?: number;
}

/**
 * The scheduler and the maintenance jobs, started and stopped together with an engine that claims
 * runs (`bifrost start`); the CLI's embedded engine builds them but never starts them, so one-off
 * commands fire nothing (they still pause, resume and trigger through the database).
 */
export class Scheduling {
  readonly scheduler: Scheduler;
  private readonly maintenance: Maintenance;
  private starting: Promise<void> | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  constructor(deps: SchedulingDeps, options: SchedulingOptions = {}) {
    const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    this.scheduler = new Scheduler({ ...deps, graceMs, ...(options.timers ? { timers: options.timers } : {}) });
    this.maintenance = new Maintenance({
      dataDir: deps.dataDir,
      logger: deps.logger,
      events: deps.events,
      now: deps.now,
      graceMs,
      ...(options.scheduleCheckMs === undefined ? {} : { scheduleCheckMs: options.scheduleCheckMs }),
      ...(options.leaseReaperMs === undefined ? {} : { leaseReaperMs: options.leaseReaperMs }),
      ...(options.tokenRefreshMs === undefined ? {} : { tokenRefreshMs: options.tokenRefreshMs }),
      ...(deps.refreshTokens ? { onTokensDue: deps.refreshTokens } : {}),
      ...(deps.tokenSkewMs === undefined ? {} : { tokenSkewMs: deps.tokenSkewMs }),
      onSchedules: (keys) => this.scheduler.reconcileKeys(keys),
      onScheduleCheckFailed: () => this.scheduler.releaseDeferred(),
      onExpiredLeases: async (ids) => {
        const reaped = await deps.storage.leases.reapExpired(ids, deps.now());
        if (reaped.length === 0) return;
        deps.logger.info({ runs: reaped }, "runs whose engine stopped renewing their lease are back in the queue");
        deps.nudge();
      },
    });
  }

  /**
   * Starts firing (schedules missed while down wait for the first schedule check) and the jobs. A
   * start that fails (the database is locked or away) is tried again, every 1 s to 30 s, until stop.
   */
  start(): Promise<void> {
    this.starting ??= this.attempt(0);
    return this.starting;
  }

  private async attempt(failures: number): Promise<void> {
    try {
      await this.scheduler.start({ deferOverdue: true });
      await this.maintenance.start();
    } catch (err) {
      if (this.stopped) return;
      const delay = Math.min(30_000, 1_000 * 2 ** failures);
      this.scheduler.logError(err, `the scheduler could not start; trying again in ${delay} ms`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.retry = setTimeout(resolve, delay);
        this.retry.unref();
      });
      if (!this.stopped) await this.attempt(failures + 1);
    }
  }

  /** Resolves once start() has finished (at once when it was never called). */
  started(): Promise<void> {
    return this.starting ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (!this.starting) return;
    // A retry waiting for its turn gives up at once.
    clearTimeout(this.retry);
    this.wake?.();
    await this.starting;
    await this.maintenance.stop();
    await this.scheduler.stop();
  }
}
