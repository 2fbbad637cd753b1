import type { RunRecord, Storage } from "../../storage/types.js";
import type { Logger } from "../logger.js";

export interface RunnerOptions {
  owner: string;
  concurrency: number;
  leaseMs: number;
  /** How often to look for runs queued by other processes (in-process triggers nudge at once). */
  pollMs: number;
  now: () => number;
}

type State = "idle" | "running" | "stopping" | "stopped";

/**
 * `stop` asks the run to stop cooperatively (ctx.signal fires; the run is released for resume);
 * `kill` stops its sandbox at once and the invocation writes nothing more.
 */
export interface RunSignals {
  stop: AbortSignal;
  kill: AbortSignal;
}

export type Execute = (run: RunRecord, signals: RunSignals) => Promise<void>;

/** The `kill` reason that means "the user cancelled this run" rather than "this engine stops". */
export const CANCELLED = "cancelled";

interface Active {
  stop: AbortController;
  kill: AbortController;
  done: Promise<void>;
}

/**
 * Claims runs with a lease and executes up to `concurrency` at once; a heartbeat renews leases.
 * It is handed its I/O (storage, execute) so the same loop serves every dialect.
 */
export class Runner {
  private state: State = "idle";
  private readonly active = new Map<string, Active>();
  private pollTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private claiming = false;
  private claimAgain = false;
  private claimQueue = true;

  constructor(
    private readonly storage: Storage,
    private readonly execute: Execute,
    private readonly logger: Logger,
    private readonly options: RunnerOptions,
  ) {}

  get activeCount(): number {
    return this.active.size;
  }

  /** Starts the heartbeat and, unless `claim` is false, the claim loop over the shared queue. */
  start(opts: { claim?: boolean } = {}): void {
    if (this.state !== "idle") throw new Error(`runner cannot start from state ${this.state}`);
    this.state = "running";
    this.claimQueue = opts.claim ?? true;
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), Math.max(50, Math.floor(this.options.leaseMs / 3)));
    if (this.claimQueue) {
      this.pollTimer = setInterval(() => this.nudge(), this.options.pollMs);
      this.nudge();
    }
  }

  /** Something was queued: look for work now. */
  nudge(): void {
    if (this.state !== "running" || !this.claimQueue) return;
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    void this.claimLoop();
  }

  /** Executes a run this process already holds the lease for (the CLI's own run). */
  adopt(run: RunRecord): Promise<void> {
    if (this.state !== "running") throw new Error("runner is not running");
    return this.launch(run);
  }

  private async claimLoop(): Promise<void> {
    this.claiming = true;
    try {
      do {
        this.claimAgain = false;
        while (this.state === "running" && this.active.size < this.options.concurrency) {
          const now = this.options.now();
          const run = await this.storage.runs.claimNext(this.options.owner, now, now + this.options.leaseMs);
          if (!run) break;
          void this.launch(run);
        }
      } while (this.claimAgain && this.state === "running");
    } catch (err) {
      this.logger.error({ err }, "claiming runs failed; retrying at the next poll");
    } finally {
      this.claiming = false;
    }
  }

  private launch(run: RunRecord): Promise<void> {
    const stop = new AbortController();
    const kill = new AbortController();
    const done = this.execute(run, { stop: stop.signal, kill: kill.signal })
      .catch((err: unknown) => this.logger.error({ err, runId: run.id }, "run execution failed inside the engine"))
      .finally(() => {
        this.active.delete(run.id);
        this.nudge();
      });
    this.active.set(run.id, { stop, kill, done });
    return done;
  }

  private async heartbeat(): Promise<void> {
    const ids = [...this.active.keys()];
    if (ids.length === 0) return;
    try {
      const kept = new Set(await this.storage.runs.renewLeases(this.options.owner, ids, this.options.now() + this.options.leaseMs));
      for (const id of ids) {
        // A run that just finished is no longer "running" either; only abort ones still executing.
        if (!kept.has(id)) this.active.get(id)?.kill.abort("lease lost");
      }
    } catch (err) {
      this.logger.error({ err }, "renewing run leases failed");
    }
  }

  /**
   * Stops claiming and fires ctx.signal in running invocations; they get `graceMs` to finish or
   * checkpoint. The rest are then stopped and their leases released, so another engine resumes
   * them from their last committed step at once.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.state === "stopped" || this.state === "stopping") return;
    this.state = "stopping";
    clearInterval(this.pollTimer);
    for (const a of this.active.values()) a.stop.abort("engine stopping");
    const all = Promise.all([...this.active.values()].map((a) => a.done));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"grace">((resolve) => (timer = setTimeout(() => resolve("grace"), graceMs)));
    const result = await Promise.race([all.then(() => "done" as const), graceOver]);
    clearTimeout(timer);
    if (result === "grace") {
      const ids = [...this.active.keys()];
      for (const a of this.active.values()) a.kill.abort("engine stopping");
      await all;
      await this.storage.runs.releaseLeases(this.options.owner, ids).catch((err: unknown) => this.logger.error({ err }, "releasing leases failed"));
      this.logger.warn({ runs: ids }, "stopped runs at the end of the grace period; released for resume");
    }
    clearInterval(this.heartbeatTimer);
    this.state = "stopped";
  }

  /** Cancels a run executing in this process; false if it is not running here. */
  cancel(id: string): boolean {
    const active = this.active.get(id);
    if (!active) return false;
    active.kill.abort(CANCELLED);
    return true;
  }

  /** Stops everything at once and writes nothing, as if the process died (leases expire on their own). */
  kill(): void {
    this.state = "stopped";
    clearInterval(this.pollTimer);
    clearInterval(this.heartbeatTimer);
    for (const a of this.active.values()) a.kill.abort("killed");
  }
}
