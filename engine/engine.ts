import { basename } from "node:path";
import { IsolatePool } from "../sandbox/index.js";
import { openStorage } from "../storage/index.js";
import { FINISHED_STATUSES, type LogQuery, type LogRecord, type RunFilter, type RunRecord, type RunTrigger, type Storage } from "../storage/types.js";
import type { EngineConfig } from "./config.js";
import type { RunDetail } from "./api/views.js";
import { BifrostError, isBifrostError } from "../common/errors.js";
import { createFirstAdminKey, type CreatedKey } from "./auth/key-store.js";
import { inScope, ORG_PATTERN, type RunScope } from "./auth/org.js";
import { cancelRun, type Cancelled } from "./control/cancel.js";
import { retryRun } from "./control/retry.js";
import { EngineEvents } from "./events.js";
import { uuidv7 } from "./ids.js";
import { createLogger, type Logger } from "./logger.js";
import { WorkflowRegistry, type RegisteredWorkflow } from "./registry/registry.js";
import { watchDirectory } from "./registry/watch.js";
import { executeRun } from "./runner/execute.js";
import { HttpService, type HttpServiceOptions } from "./http/service.js";
import { ParamsValidator } from "./runner/params.js";
import { DEFAULT_RUN_HOST_LIMITS, type RunHostLimits } from "./runner/run-host.js";
import { Runner } from "./runner/runner.js";
import { assertReplay } from "./idempotency/replay.js";
import { keyFileTooOpen, openSecretBox, type SecretBox } from "./secrets/key.js";
import { Webhooks } from "./webhooks/webhooks.js";
import { Scheduling, type SchedulingOptions } from "./scheduler/scheduling.js";
import { OAuth, type OAuthOptions } from "./oauth/oauth.js";

export interface TriggerInput {
  params?: unknown;
  org?: string | null;
  trigger?: RunTrigger;
  idempotencyKey?: string | null;
  scheduledFor?: number | null;
  /** The run this one retries (trigger "retry"): it starts with that run's succeeded steps. */
  retryOf?: string | null;
}

export interface EngineDeps {
  logger?: Logger;
  /** Injected clock (tests move it forward to expire leases). */
  now?: () => number;
  hostLimits?: Partial<RunHostLimits>;
  /** How long a statement waits for another process's database lock (tests shorten it). @default 5000 */
  storageBusyMs?: number;
  /** Scheduler and maintenance knobs (tests shorten the intervals). */
  scheduling?: SchedulingOptions;
  /** ctx.http: name resolution, OAuth connections, jitter (tests inject them). */
  http?: HttpServiceOptions;
  /** OAuth knobs (tests shorten the refresh skew and lease, inject the doctor's probe). */
  oauth?: Pick<OAuthOptions, "connections" | "probe">;
}

/** setTimeout's upper bound; longer delays fire at once. */
const MAX_TIMER_MS = 2_147_483_647;
const IDEMPOTENCY_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** Wires storage, registry and runner together; the HTTP API and CLI drive it. */
export class Engine {
  readonly events: EngineEvents;
  readonly registry: WorkflowRegistry;
  readonly webhooks: Webhooks;
  private readonly runner: Runner;
  private readonly params = new ParamsValidator();
  private readonly pool: IsolatePool;
  private stopWatching: (() => void) | undefined;
  private stopping = false;
  /** Fires schedules and runs the maintenance jobs once started (engine/scheduler/scheduling.ts). */
  readonly scheduling: Scheduling;

  private constructor(
    readonly config: EngineConfig,
    readonly storage: Storage,
    readonly logger: Logger,
    readonly now: () => number,
    hostLimits: RunHostLimits,
    /** Seals stored secrets (webhook secrets; OAuth material later). */
    readonly secrets: SecretBox,
    /** ctx.http's host gates, agent and connections, shared by every run of this engine. */
    readonly http: HttpService,
    /** OAuth providers, connections and the doctor; its connections give ctx.http and ctx.oauth their tokens. */
    readonly oauth: OAuth,
    schedulingOptions: SchedulingOptions = {},
  ) {
    this.events = new EngineEvents((event, err) => logger.error({ err, event }, "engine event listener threw"));
    this.registry = new WorkflowRegistry({
      storage,
      events: this.events,
      logger,
      limits: this.sandboxLimits,
      workflowsDir: config.workflowsDir,
      now,
    });
    // Before any workflow loads: the first registration of a webhook workflow creates its secret.
    this.webhooks = new Webhooks({
      storage,
      secrets,
      events: this.events,
      logger,
      now,
      publicUrl: config.publicUrl,
      // The database's current version: another engine process may have registered or removed it.
      lookup: (name) => this.registry.resolve(name),
      known: (name) => this.registry.get(name),
    });
    this.pool = new IsolatePool({ memoryMb: config.sandboxMemoryMb, maxIdle: config.concurrency });
    const execDeps = {
      pool: this.pool,
      storage,
      registry: this.registry,
      events: this.events,
      logger,
      now,
      owner: config.owner,
      sandboxLimits: this.sandboxLimits,
      hostLimits,
      http,
      oauth: oauth.connections,
    };
    this.runner = new Runner(storage, (run, signals) => executeRun(run, signals, execDeps), logger, {
      owner: config.owner,
      concurrency: config.concurrency,
      leaseMs: config.leaseMs,
      pollMs: config.pollMs,
      now,
      events: this.events,
    });
    this.scheduling = new Scheduling({ storage, registry: this.registry, events: this.events, logger, now, dataDir: config.dataDir, nudge: () => this.runner.nudge(), refreshTokens: (keys) => oauth.connections.refreshDue(keys), tokenSkewMs: oauth.connections.refreshSkew }, schedulingOptions);
  }

  /** Opens storage (migrating it) and loads stored and file workflows. Does not start running. */
  static async open(config: EngineConfig, deps: EngineDeps = {}): Promise<Engine> {
    const logger = deps.logger ?? createLogger({ level: config.logLevel });
    const storage = await openStorage({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, ...(deps.storageBusyMs === undefined ? {} : { busyBudgetMs: deps.storageBusyMs }) });
    let secrets: SecretBox;
    try {
      secrets = await openSecretBox({ envKey: config.secretKey, dataDir: config.dataDir, check: storage.secretKeyCheck, now: (deps.now ?? Date.now)() });
    } catch (err) {
      await storage.close();
      throw err;
    }
    if (secrets.source.generated) logger.info({ file: secrets.source.name }, "created the secret key that seals stored secrets; back it up with the database");
    else if (secrets.source.kind === "file" && keyFileTooOpen(secrets.source.name)) logger.warn({ file: secrets.source.name }, "the secret key file can be read by other users: chmod 600 it");
    const now = deps.now ?? Date.now;
    const oauth = new OAuth({ storage, secrets, logger, now, owner: config.owner, publicUrl: config.publicUrl, publicUrlSet: config.publicUrlSet, ...deps.oauth });
    const http = new HttpService(config.http, { connections: oauth.connections, ...deps.http }, now);
    const engine = new Engine(config, storage, logger, now, { ...DEFAULT_RUN_HOST_LIMITS, ...deps.hostLimits }, secrets, http, oauth, deps.scheduling);
    try {
      await engine.registry.loadStored();
      await engine.registry.loadDirectory();
      await engine.webhooks.settled();
    } catch (err) {
      await storage.close();
      throw err;
    }
    return engine;
  }

  get sandboxLimits() {
    return { memoryMb: this.config.sandboxMemoryMb, cpuMs: this.config.sandboxCpuMs };
  }

  /**
   * Starts executing runs. `claim: false` runs only runs handed to it (the CLI's embedded engine),
   * and then fires no schedules unless `schedules` says so.
   */
  start(options: { claim?: boolean; watch?: boolean; schedules?: boolean } = {}): void {
    this.runner.start({ claim: options.claim ?? true });
    if (options.schedules ?? options.claim ?? true) void this.scheduling.start();
    if (options.watch ?? this.config.watch) {
      this.stopWatching = watchDirectory(this.config.workflowsDir, () => this.registry.loadDirectory(), this.logger);
    }
  }

  async getWorkflow(name: string): Promise<RegisteredWorkflow> {
    const workflow = await this.registry.resolve(name);
    if (workflow) return workflow;
    // A module that failed to load is the likely reason: say so rather than just "not found".
    const problem = this.registry.problems().find((p) => p.name === name || (p.file !== null && basename(p.file).replace(/\.[mc]?[jt]s$/, "") === name));
    if (problem) {
      throw new BifrostError("WORKFLOW_NOT_FOUND", `No workflow named "${name}" is registered: its module failed to load: ${problem.error.message}`, {
        details: { workflow: name, loadError: { code: problem.error.code, message: problem.error.message, details: problem.error.details } },
        fix: "Fix the module at the reported file and line: a running engine reloads it when the file is saved, and every CLI command reads it afresh.",
      });
    }
    throw new BifrostError("WORKFLOW_NOT_FOUND", `No workflow named "${name}" is registered`, { details: { workflow: name } });
  }

  /**
   * Validates params and queues a run. With `adopt`, the run is created already claimed by this
   * process and executed here at once (the CLI's `run`).
   */
  async triggerRun(name: string, input: TriggerInput = {}, options: { adopt?: boolean } = {}): Promise<{ run: RunRecord; created: boolean; done?: Promise<void> }> {
    if (this.stopping) throw new BifrostError("ENGINE_STOPPING", "The engine is shutting down and accepts no new runs");
    const workflow = await this.getWorkflow(name);
    if (input.org != null && !ORG_PATTERN.test(input.org)) {
      throw new BifrostError("VALIDATION_FAILED", `org ${JSON.stringify(input.org)} is invalid: use letters, digits, "_", ".", ":" or "-" (at most 128)`);
    }
    if (input.idempotencyKey != null && !IDEMPOTENCY_PATTERN.test(input.idempotencyKey)) {
      throw new BifrostError("VALIDATION_FAILED", "idempotencyKey must be 1 to 200 printable ASCII characters without spaces");
    }
    const params = this.params.validate({ name, version: workflow.version, params: workflow.definition.params }, input.params);
    const now = this.now();
    const { run, created } = await this.storage.runs.create({
      id: uuidv7(now),
      workflow: name,
      workflowVersion: workflow.version,
      org: input.org ?? null,
      trigger: input.trigger ?? "api",
      params,
      idempotencyKey: input.idempotencyKey ?? null,
      scheduledFor: input.scheduledFor ?? null,
      now,
      ...(options.adopt ? { claim: { owner: this.config.owner, leaseUntil: now + this.config.leaseMs } } : {}),
      ...(input.retryOf ? { retryOf: input.retryOf } : {}),
    });
    if (!created) {
      assertReplay(name, input.idempotencyKey ?? "", run, { params, org: input.org ?? null });
      return { run, created };
    }
    // Its version's bundle stays while the run is unfinished, whatever is registered meanwhile.
    await this.registry.retain(workflow);
    this.events.emit("run:queued", { run });
    if (options.adopt) return { run, created, done: this.runner.adopt(run) };
    this.runner.nudge();
    return { run, created };
  }

  /**
   * Drives a run adopted by this process to its end: after a failed attempt with retries left it
   * waits for the retry time and claims the run again (unless another engine took it).
   */
  async runHere(id: string, firstInvocation: Promise<void>): Promise<RunRecord> {
    await firstInvocation;
    for (;;) {
      const run = await this.requireRun(id);
      if (FINISHED_STATUSES.includes(run.status)) return run;
      if (run.status === "running") return this.waitForRun(id, MAX_TIMER_MS);
      // Sleep until the retry is due, unless the run ends first (cancelled meanwhile).
      const waited = await this.waitForRun(id, Math.min(MAX_TIMER_MS, Math.max(0, run.runAt - this.now())));
      if (FINISHED_STATUSES.includes(waited.status)) return waited;
      const now = this.now();
      const claimed = await this.storage.runs.claim(id, this.config.owner, now, now + this.config.leaseMs);
      if (claimed) await this.runner.adopt(claimed);
    }
  }

  /** `cancel` for callers that only need to know whether there was anything to cancel (Ctrl-C in `bifrost run`). */
  async cancelRun(id: string): Promise<boolean> {
    try {
      await this.cancel(id);
      return true;
    } catch (err) {
      if (isBifrostError(err) && (err.code === "RUN_NOT_CANCELLABLE" || err.code === "RUN_NOT_FOUND")) return false;
      throw err;
    }
  }

  /**
   * Cancels a run wherever it executes (engine/control/cancel.ts): `cancelled` when it is over at
   * once, `requested` when its engine is stopping it. RUN_NOT_CANCELLABLE once it has finished.
   */
  cancel(id: string, scope?: RunScope): Promise<Cancelled> {
    return cancelRun({ storage: this.storage, now: this.now, events: this.events, requireRun: (i, s) => this.requireRun(i, s), stopHere: (i) => this.runner.cancel(i) }, id, scope);
  }

  /**
   * Starts a new run that retries a failed, timed-out or cancelled one, reusing its succeeded steps
   * (engine/control/retry.ts). With `adopt`, it executes here (the CLI's embedded `runs retry`).
   */
  retry(id: string, scope?: RunScope, options: { adopt?: boolean } = {}): ReturnType<Engine["triggerRun"]> {
    return retryRun({ requireRun: (i, s) => this.requireRun(i, s), trigger: (name, input) => this.triggerRun(name, input, options) }, id, scope);
  }

  /**
   * The run, if the caller may see it. A run outside the caller's org (`scope`) is answered exactly
   * as a run that does not exist, so an org key cannot learn that another org's run id is real.
   */
  async requireRun(id: string, scope?: RunScope): Promise<RunRecord> {
    const run = await this.storage.runs.get(id);
    if (!run || !inScope(run, scope)) throw new BifrostError("RUN_NOT_FOUND", `No run with id "${id}"`, { details: { id } });
    return run;
  }

  async getRun(id: string, scope?: RunScope): Promise<{ run: RunRecord } & RunDetail> {
    const run = await this.requireRun(id, scope);
    return { run, ...(await this.runDetail(id)) };
  }

  /** A run's steps and chunk progress (`done/total` per ctx.chunks call), for its record. */
  async runDetail(id: string): Promise<RunDetail> {
    return { steps: await this.storage.steps.listForRun(id), chunks: await this.storage.chunks.listForRun(id) };
  }

  listRuns(filter: RunFilter): Promise<RunRecord[]> {
    return this.storage.runs.list(filter);
  }

  async listLogs(id: string, query: LogQuery, scope?: RunScope): Promise<LogRecord[]> {
    await this.requireRun(id, scope);
    return this.storage.logs.list(id, query);
  }

  /** Resolves with the run once it has finished, or with its current state after `timeoutMs`. */
  async waitForRun(id: string, timeoutMs: number): Promise<RunRecord> {
    return new Promise<RunRecord>((resolve, reject) => {
      let settled = false;
      const settle = (run: RunRecord | undefined, err?: unknown) => {
        if (settled) return;
        settled = true;
        off();
        clearTimeout(timer);
        clearInterval(poll);
        if (run) resolve(run);
        else reject(err ?? new BifrostError("RUN_NOT_FOUND", `No run with id "${id}"`));
      };
      const off = this.events.on("run:finished", ({ run }) => run.id === id && settle(run));
      const check = async (final: boolean) => {
        try {
          const run = await this.storage.runs.get(id);
          if (!run || final || FINISHED_STATUSES.includes(run.status)) settle(run);
        } catch (err) {
          settle(undefined, err);
        }
      };
      // Another engine process may finish the run: poll storage as well as listening.
      const poll = setInterval(() => void check(false), this.config.pollMs);
      const timer = setTimeout(() => void check(true), Math.max(0, timeoutMs));
      void check(false);
    });
  }

  /**
   * On a database without any API key (a first start), creates an admin key and returns it: the
   * caller shows it once. Undefined when a key exists. The key is never logged or stored in clear.
   */
  createFirstAdminKey(): Promise<CreatedKey | undefined> {
    return createFirstAdminKey(this.storage, this.now());
  }

  async health(): Promise<{ ok: boolean; database: "ok" | string }> {
    try {
      await this.storage.ping();
      return { ok: true, database: "ok" };
    } catch (err) {
      return { ok: false, database: (err as Error).message };
    }
  }

  /** Graceful stop: no new claims, running invocations get the grace period, then storage closes. */
  async stop(graceMs = this.config.shutdownGraceMs): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.stopWatching?.();
    await this.scheduling.stop();
    await this.runner.stop(graceMs);
    await this.http.close();
    this.pool.close();
    await this.webhooks.settled();
    await this.registry.close();
    await this.storage.close();
  }

  /** Test hook for crash scenarios: stop at once and write nothing more, as if the process died. */
  async crashForTesting(): Promise<void> {
    this.stopping = true;
    this.stopWatching?.();
    void this.scheduling.stop();
    this.runner.kill();
  }
}
