import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Bree from "bree";
import { SQLITE_FILE } from "../../storage/sqlite.js";
import type { EngineEvents } from "../events.js";
import type { Logger } from "../logger.js";

/**
 * The engine's periodic jobs, run by bree in worker threads (engine/maintenance/jobs/*.mjs). Bree
 * keeps no state and neither do the jobs: each run opens its own read-only database connection,
 * finds work, posts it back and ends; this thread acts on it through storage. So the database stays
 * the source of truth, a job that dies loses nothing (the next run finds the same work), and the
 * scans never block the event loop that fires schedules and heartbeats leases.
 *
 * - `schedule-check`: right after start, then every `scheduleCheckMs`: schedules changed by other
 *   processes, overdue (missed while no engine ran: the catch-up after start) or holding a pending
 *   fire; the scheduler reconciles them.
 * - `lease-reaper`: every `leaseReaperMs`: runs still "running" under a lease that ended; they go
 *   back to the queue (storage checks the expiry again) and the runner is woken.
 * - `token-refresh`: every `tokenRefreshMs`: OAuth connections whose token expires within the next
 *   interval plus the refresh skew, and failed refreshes due again; the connections refresh them.
 *
 * A worker thread costs about 50 ms of CPU per run, hence the minute between runs by default. The
 * jobs read SQLite with better-sqlite3 (the only database this release supports); PostgreSQL, when
 * it lands, needs them to open a pg connection instead.
 */

export interface MaintenanceOptions {
  dataDir: string;
  logger: Logger;
  events: EngineEvents;
  now: () => number;
  /** The scheduler's grace: a fire later than this was missed. */
  graceMs: number;
  /** @default 60000 */
  scheduleCheckMs?: number;
  /** @default 60000 */
  leaseReaperMs?: number;
  onSchedules(keys: { workflow: string; org: string | null }[]): Promise<void>;
  /** The schedule check's worker failed: what it would have reported must be handled without it. */
  onScheduleCheckFailed?: () => void;
  onExpiredLeases(ids: string[]): Promise<void>;
  /** @default 60000 */
  tokenRefreshMs?: number;
  /** The OAuth refresh skew: a token expiring within it (plus one interval) is refreshed now. */
  tokenSkewMs?: number;
  onTokensDue?(keys: { provider: string; org: string | null }[]): Promise<void>;
}

const DEFAULT_INTERVAL_MS = 60_000;
/** Rows one run of a job reports; the next run reports the rest. */
const BATCH = 10_000;
const job = (name: string) => fileURLToPath(new URL(`./jobs/${name}.mjs`, import.meta.url));

type JobMessage =
  | { kind: "schedules"; keys: { workflow: string; org: string | null }[]; at: number }
  | { kind: "leases"; ids: string[]; at: number }
  | { kind: "tokens"; keys: { provider: string; org: string | null }[]; at: number };

export class Maintenance {
  private bree: Bree | undefined;
  private readonly handling = new Set<Promise<void>>();

  constructor(private readonly options: MaintenanceOptions) {}

  async start(): Promise<void> {
    if (this.bree) return;
    const o = this.options;
    const scheduleCheckMs = o.scheduleCheckMs ?? DEFAULT_INTERVAL_MS;
    const leaseReaperMs = o.leaseReaperMs ?? DEFAULT_INTERVAL_MS;
    const tokenRefreshMs = o.tokenRefreshMs ?? DEFAULT_INTERVAL_MS;
    const common = { file: join(o.dataDir, SQLITE_FILE), clockOffsetMs: o.now() - Date.now(), limit: BATCH };
    const log = o.logger;
    this.bree = new Bree({
      root: false,
      doRootCheck: false,
      // Bree reports every worker's start and end at info; they are routine.
      logger: { info: (...args: unknown[]) => log.debug({ bree: args[0] }, "maintenance"), warn: (...args: unknown[]) => log.warn({ bree: args[0] }, "maintenance"), error: (...args: unknown[]) => log.error({ bree: args[0] }, "maintenance") },
      // Workers reject --no-node-snapshot (which isolated-vm needs in this thread) and need no loader.
      worker: { execArgv: [] },
      jobs: [
        // Overlaps the previous check a little, so that a change made just as it ran is not missed.
        { name: "schedule-check", path: job("schedule-check"), timeout: 0, interval: scheduleCheckMs, worker: { workerData: { ...common, sinceMs: scheduleCheckMs + 5_000, graceMs: o.graceMs } } },
        { name: "lease-reaper", path: job("lease-reaper"), timeout: leaseReaperMs, interval: leaseReaperMs, worker: { workerData: common } },
        ...(o.onTokensDue
          ? [{ name: "token-refresh", path: job("token-refresh"), timeout: tokenRefreshMs, interval: tokenRefreshMs, worker: { workerData: { ...common, windowMs: tokenRefreshMs + (o.tokenSkewMs ?? 300_000) } } }]
          : []),
      ],
      workerMessageHandler: ({ name, message }) => {
        if (message === "done" || typeof message !== "object" || message === null) return;
        this.track(this.handle(name, message as JobMessage));
      },
      errorHandler: (error, data) => {
        log.error({ err: error, job: data.name }, "a maintenance job failed; it runs again at its next interval");
        if (data.name === "schedule-check") o.onScheduleCheckFailed?.();
      },
    });
    await this.bree.start();
  }

  async stop(): Promise<void> {
    const bree = this.bree;
    this.bree = undefined;
    if (bree) await bree.stop();
    await Promise.allSettled([...this.handling]);
  }

  private track(work: Promise<void>): void {
    this.handling.add(work);
    void work.finally(() => this.handling.delete(work));
  }

  private async handle(name: string, message: JobMessage): Promise<void> {
    try {
      if (message.kind === "schedules") await this.options.onSchedules(message.keys);
      else if (message.kind === "tokens") await this.options.onTokensDue?.(message.keys);
      else await this.options.onExpiredLeases(message.ids);
      const found = message.kind === "leases" ? message.ids.length : message.keys.length;
      const job = message.kind === "schedules" ? "schedule-check" : message.kind === "tokens" ? "token-refresh" : "lease-reaper";
      this.options.events.emit("maintenance:ran", { job, found, at: message.at });
    } catch (err) {
      this.options.logger.error({ err, job: name }, "acting on a maintenance job's findings failed; its next run finds them again");
    }
  }
}
