import type { RunRecord, Storage } from "../../storage/types.js";
import type { EngineEvents } from "../events.js";
import type { Logger } from "../logger.js";

export interface RunnerOptions {
  owner: string;
  concurrency: number;
  leaseMs: number;
  /** How often to look for runs queued by other processes (in-process triggers nudge at once). */
  pollMs: number;
  now: () => number;
  events?: EngineEvents;
  /**
   * How often, while runs execute here, to look for cancel requests made elsewhere (the API, the CLI,
   * another engine): a cancelled run stops within about this long. @default 500
   */
  cancelCheckMs?: number;
}

const DEFAULT_CANCEL_CHECK_MS = 500;

type State = "idle" | "running" | "stopping" | "stopped";

/**
 * `stop` asks the run to stop cooperatively (ctx.signal fires; the run is released for resume);
 * `kill` stops its sandbox at once and the invocation writes nothing more.
 */
export interface RunSignals {
  stop: AbortSignal;
  kill: AbortSignal;
  /**
   * Whether the lease still covers this moment (its guard margin included). The guard timer stops
   * an invocation in time; this answers synchronously for a side effect about to leave the host
   * (a ctx.http request), so an engine that was frozen past its lease sends nothing before the
   * timer gets to run. Absent: always held (tests that drive executeRun by hand).
   */
  leaseHeld?: () => boolean;
}

export type Execute = (run: RunRecord, signals: RunSignals) => Promise<void>;

/** The `kill` reason that means "the user cancelled this run" rather than "this engine stops". */
export const CANCELLED = "cancelled";
/** The `kill` reason when this engine could not renew the run's lease in time. */
export const LEASE_LOST = "lease lost";

interface Active {
  stop: AbortController;
  kill: AbortController;
  done: Promise<void>;
  /** Until when the database is known to hold the run for us. */
  leaseUntil: number;
  guard: NodeJS.Timeout | undefined;
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
  private renewing = false;
  private cancelTimer: NodeJS.Timeout | undefined;
  private checkingCancels = false;

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
    // Separate from the heartbeat, which runs only every leaseMs/3 (10 s): a cancel must not wait that long.
    this.cancelTimer = setInterval(() => void this.checkCancels(), this.options.cancelCheckMs ?? DEFAULT_CANCEL_CHECK_MS);
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
          // Never our own runs still executing: their lease may look expired while a renewal waits.
          const run = await this.storage.runs.claimNext(this.options.owner, now, now + this.options.leaseMs, [...this.active.keys()]);
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
    const active: Active = { stop, kill, done: Promise.resolve(), leaseUntil: run.leaseUntil ?? this.options.now() + this.options.leaseMs, guard: undefined };
    this.active.set(run.id, active);
    this.guardLease(run.id, active);
    // Claimed with a cancel already asked for (its previous engine died before seeing it): the
    // invocation starts stopped and records the cancel through the usual decision.
    if (run.cancelRequestedAt != null) kill.abort(CANCELLED);
    let ended: { decision: string; recorded: boolean } | undefined;
    const offEnded = this.options.events?.on("invocation:ended", (e) => {
      if (e.runId === run.id) ended = e;
    });
    const margin = this.leaseMargin();
    const leaseHeld = () => !kill.signal.aborted && this.options.now() < active.leaseUntil - margin;
    active.done = this.execute(run, { stop: stop.signal, kill: kill.signal, leaseHeld })
      .catch((err: unknown) => this.logger.error({ err, runId: run.id }, "run execution failed inside the engine"))
      .then(() => offEnded?.())
      .then(() => (ended?.decision === "requeue" && !ended.recorded ? this.announceCancelledInstead(run.id) : undefined))
      .catch((err: unknown) => this.logger.error({ err, runId: run.id }, "reading the run after its invocation failed"))
      .finally(() => {
        clearTimeout(active.guard);
        // Only now may this process claim the run again: the invocation has written its last.
        this.active.delete(run.id);
        this.nudge();
      });
    return active.done;
  }

  /**
   * A requeue that storage refused because the run was cancelled meanwhile ended the run
   * (`requeue` cancels it instead); nobody announced that yet.
   */
  private async announceCancelledInstead(id: string): Promise<void> {
    const run = await this.storage.runs.get(id);
    if (run?.status === "cancelled") this.options.events?.emit("run:finished", { run });
  }

  /**
   * Cancels asked for in the database (by the API or CLI of any process) reach the invocation here:
   * its sandbox is stopped at once, even in code that never yields, and the run ends cancelled.
   * One cheap read by primary key, only while runs execute, never two at a time.
   */
  private async checkCancels(): Promise<void> {
    if (this.checkingCancels || this.active.size === 0) return;
    this.checkingCancels = true;
    try {
      for (const id of await this.storage.runs.cancelRequested([...this.active.keys()])) {
        const active = this.active.get(id);
        if (!active || active.kill.signal.aborted) continue;
        this.logger.info({ runId: id }, "cancel requested: stopping the run");
        active.kill.abort(CANCELLED);
      }
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      this.logger.warn({ code: e.code, err: String(e.message ?? err) }, "looking for cancel requests failed; trying again shortly");
    } finally {
      this.checkingCancels = false;
    }
  }

  /**
   * An invocation must stop before its lease ends, or another engine could start the same run
   * while it still executes. The guard fires a margin before the lease runs out unless a renewal
   * moved it; storage fencing then refuses whatever the stopped invocation still tries to write.
   */
  private leaseMargin(): number {
    return Math.max(20, Math.floor(this.options.leaseMs / 10));
  }

  private guardLease(id: string, active: Active): void {
    clearTimeout(active.guard);
    const margin = this.leaseMargin();
    const wait = Math.max(0, active.leaseUntil - margin - this.options.now());
    active.guard = setTimeout(() => this.loseLease(id, active, "the lease could not be renewed in time"), wait);
  }

  private loseLease(id: string, active: Active, why: string): void {
    if (active.kill.signal.aborted) return;
    this.logger.warn({ runId: id, leaseUntil: active.leaseUntil }, `stopping the run's invocation: ${why}; it resumes from its last committed step`);
    this.options.events?.emit("run:interrupted", { runId: id, reason: "lease_lost", at: this.options.now(), leaseUntil: active.leaseUntil });
    active.kill.abort(LEASE_LOST);
  }

  private async heartbeat(): Promise<void> {
    // One renewal at a time: one that waits on a locked database must not pile up behind itself.
    if (this.renewing) return;
    const ids = [...this.active.keys()];
    if (ids.length === 0) return;
    this.renewing = true;
    try {
      const leaseUntil = this.options.now() + this.options.leaseMs;
      const kept = new Set(await this.storage.runs.renewLeases(this.options.owner, ids, leaseUntil));
      for (const id of ids) {
        const active = this.active.get(id);
        if (!active) continue;
        if (kept.has(id)) {
          active.leaseUntil = leaseUntil;
          this.guardLease(id, active);
        } else if (await this.takenOver(id)) {
          this.loseLease(id, active, "the run is no longer held by this engine");
        }
      }
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      this.logger.error({ code: e.code, err: String(e.message ?? err) }, "renewing run leases failed; invocations stop before their leases end unless a renewal succeeds");
    } finally {
      this.renewing = false;
    }
  }

  /** A renewal that kept nothing: the run either just finished here, or another engine holds it. */
  private async takenOver(id: string): Promise<boolean> {
    const run = await this.storage.runs.get(id);
    return run?.status === "running" && run.leaseOwner !== this.options.owner;
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
    clearInterval(this.cancelTimer);
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
    clearInterval(this.cancelTimer);
    for (const a of this.active.values()) a.kill.abort("killed");
  }
}
