import { Migrator, sql, type ExpressionBuilder, type Kysely, type Selectable, type UpdateQueryBuilder, type UpdateResult } from "kysely";
import { BifrostError, ERROR_CODES, type ErrorData } from "../common/errors.js";
import { keyRepository } from "./keys-repository.js";
import { chunkRepository } from "./chunks-repository.js";
import { leaseRepository } from "./leases-repository.js";
import { oauthRepository } from "./oauth-repository.js";
import { scheduleRepository } from "./schedules-repository.js";
import { stateRepository } from "./state-repository.js";
import { secretKeyCheckRepository, webhookSecretRepository } from "./webhook-secrets-repository.js";
import { statsRepository } from "./stats-repository.js";
import { workflowVersionRepository } from "./workflow-versions-repository.js";
import { CodeMigrationProvider } from "./migrations.js";
import type { Database, LogsTable, RunsTable, StepsTable, WorkflowsTable } from "./schema.js";
import {
  LOG_LEVELS,
  type KeyRepository,
  type Lease,
  type LogRecord,
  type LogRepository,
  type NewRun,
  type RunRecord,
  type RunRepository,
  type RunStatus,
  type RunTrigger,
  type StepRecord,
  type StepRepository,
  type StepStatus,
  type Storage,
  type WorkflowRecord,
  type WorkflowRepository,
} from "./types.js";

const json = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value));
const parse = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

export function toRun(row: Selectable<RunsTable>): RunRecord {
  return {
    id: row.id,
    workflow: row.workflow,
    workflowVersion: row.workflow_version,
    org: row.org,
    trigger: row.trigger as RunTrigger,
    status: row.status as RunStatus,
    params: parse(row.params),
    result: parse(row.result),
    error: parse(row.error) as ErrorData | null,
    attempt: row.attempt,
    idempotencyKey: row.idempotency_key,
    queuedAt: row.queued_at,
    runAt: row.run_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    scheduledFor: row.scheduled_for,
    leaseOwner: row.lease_owner,
    leaseUntil: row.lease_until,
    leaseToken: row.lease_token,
    cancelRequestedAt: row.cancel_requested_at,
    retryOf: row.retry_of,
  };
}

function toStep(row: Selectable<StepsTable>): StepRecord {
  return {
    runId: row.run_id,
    name: row.name,
    status: row.status as StepStatus,
    result: parse(row.result),
    error: parse(row.error) as ErrorData | null,
    attempts: row.attempts,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

function toLog(row: Selectable<LogsTable>): LogRecord {
  const line: LogRecord = { runId: row.run_id, seq: row.seq, ts: row.ts, level: LOG_LEVELS[row.level] ?? "info", msg: row.msg };
  if (row.data !== null) line.data = JSON.parse(row.data);
  if (row.step !== null) line.step = row.step;
  return line;
}

function toWorkflow(row: Selectable<WorkflowsTable>): WorkflowRecord {
  return {
    name: row.name,
    version: row.version,
    sourceKind: row.source_kind as WorkflowRecord["sourceKind"],
    file: row.file,
    source: row.source,
    code: row.code,
    sourceMap: row.source_map,
    meta: JSON.parse(row.meta),
    registeredAt: row.registered_at,
    updatedAt: row.updated_at,
  };
}

/**
 * Storage over any Kysely dialect. Dialect differences are confined to `dialect` checks
 * (row locking for claims); everything else is portable SQL.
 */
export interface KyselyStorageOptions {
  /** Where the data lives, for messages (a file path, or a URL without its password). */
  location: string;
  /** Checks that a write could start now (SQLite: nobody else holds the write lock). */
  probe?: (budgetMs: number) => Promise<void>;
  onClose?: () => Promise<void>;
}

/** How long /health waits for the write lock before calling the database unavailable. */
const PROBE_BUDGET_MS = 500;

export class KyselyStorage implements Storage {
  readonly workflows: WorkflowRepository;
  readonly workflowVersions: ReturnType<typeof workflowVersionRepository>;
  readonly runs: RunRepository;
  readonly steps: StepRepository;
  readonly chunks: ReturnType<typeof chunkRepository>;
  readonly logs: LogRepository;
  readonly keys: KeyRepository;
  readonly webhookSecrets: ReturnType<typeof webhookSecretRepository>;
  readonly secretKeyCheck: ReturnType<typeof secretKeyCheckRepository>;
  readonly stats: ReturnType<typeof statsRepository>;
  readonly schedules: ReturnType<typeof scheduleRepository>;
  readonly leases: ReturnType<typeof leaseRepository>;
  readonly oauth: ReturnType<typeof oauthRepository>;
  readonly state: ReturnType<typeof stateRepository>;

  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: "sqlite" | "postgres",
    private readonly options: KyselyStorageOptions,
  ) {
    this.workflows = workflowRepository(db);
    this.workflowVersions = workflowVersionRepository(db);
    this.runs = runRepository(db, dialect);
    this.steps = stepRepository(db);
    this.chunks = chunkRepository(db);
    this.logs = logRepository(db);
    this.keys = keyRepository(db);
    this.webhookSecrets = webhookSecretRepository(db);
    this.secretKeyCheck = secretKeyCheckRepository(db);
    this.stats = statsRepository(db);
    this.schedules = scheduleRepository(db, dialect);
    this.leases = leaseRepository(db);
    this.oauth = oauthRepository(db);
    this.state = stateRepository(db);
  }

  async migrate(): Promise<void> {
    const migrator = new Migrator({ db: this.db, provider: new CodeMigrationProvider(this.dialect) });
    const { error, results } = await migrator.migrateToLatest();
    if (!error) return;
    if (error instanceof BifrostError) throw error;
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new BifrostError("STORAGE_UNAVAILABLE", `the database ${this.options.location} could not be brought up to date: migration ${failed} failed: ${(error as Error).message}`, {
      cause: error,
      fix: "The database looks damaged or was changed by hand (e.g. a lost or corrupt -wal file): restore it from a backup, or move it away to start with a new one.",
    });
  }

  async ping(): Promise<void> {
    // The probe goes around this engine's own queue of writes: a ping must not wait behind them.
    if (this.options.probe) await this.options.probe(PROBE_BUDGET_MS);
    else await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    await this.db.destroy();
    await this.options.onClose?.();
  }
}

function workflowRepository(db: Db): WorkflowRepository {
  return {
    async upsert(r) {
      const row = {
        name: r.name,
        version: r.version,
        source_kind: r.sourceKind,
        file: r.file,
        source: r.source,
        code: r.code,
        source_map: r.sourceMap,
        meta: JSON.stringify(r.meta),
        registered_at: r.registeredAt,
        updated_at: r.updatedAt,
      };
      const { name: _name, registered_at: _registered, ...update } = row;
      await db.insertInto("workflows").values(row).onConflict((oc) => oc.column("name").doUpdateSet(update)).execute();
    },
    async get(name) {
      const row = await db.selectFrom("workflows").selectAll().where("name", "=", name).executeTakeFirst();
      return row && toWorkflow(row);
    },
    async list() {
      return (await db.selectFrom("workflows").selectAll().orderBy("name").execute()).map(toWorkflow);
    },
    async delete(name) {
      const res = await db.deleteFrom("workflows").where("name", "=", name).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    },
  };
}

/** A run is claimable when it is queued and due, or running under a lease that has expired. */
const claimable =
  (now: number) =>
  (w: ExpressionBuilder<Database, "runs">) =>
    w.or([w.and([w("status", "=", "queued"), w("run_at", "<=", now)]), w.and([w("status", "=", "running"), w("lease_until", "<", now)])]);

const claimedBy = (owner: string, now: number, leaseUntil: number) => ({
  status: "running",
  lease_owner: owner,
  lease_until: leaseUntil,
  lease_token: sql<number>`lease_token + 1`,
  started_at: sql<number>`coalesce(started_at, ${now})`,
});

type Db = Kysely<Database>;

export const leaseLost = (lease: Lease) =>
  new BifrostError("LEASE_LOST", `run ${lease.runId} is no longer held by this invocation (it was claimed again or finished); the write was refused`);

/** Rows of the run still under this lease: the guard of every fenced write. */
export const underLease = (db: Db, lease: Lease) =>
  db.selectFrom("runs").select("id").where("id", "=", lease.runId).where("lease_owner", "=", lease.owner).where("lease_token", "=", lease.token).where("status", "=", "running");

/** Runs `write` in a transaction that first checks the lease, so a stale owner writes nothing. */
export async function fenced<T>(db: Db, lease: Lease, write: (trx: Db) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    if (!(await underLease(trx, lease).executeTakeFirst())) throw leaseLost(lease);
    return write(trx);
  });
}

/** The error of a cancelled run, whichever path cancelled it. */
const CANCELLED_ERROR: ErrorData = { code: "RUN_CANCELLED", message: "the run was cancelled", fix: ERROR_CODES.RUN_CANCELLED.hint };

/** Steps an ended invocation left `running` never stay so once the run has moved on. */
export async function interruptSteps(db: Db, runId: string, now: number, why: string): Promise<void> {
  const error: ErrorData = { code: "STEP_INTERRUPTED", message: `the invocation ended (${why}) before this step finished`, fix: ERROR_CODES.STEP_INTERRUPTED.hint };
  await db.updateTable("steps").set({ status: "failed", error: JSON.stringify(error), finished_at: now }).where("run_id", "=", runId).where("status", "=", "running").execute();
}

const cancelledBy = (now: number) => ({ status: "cancelled", error: json(CANCELLED_ERROR), finished_at: now, lease_owner: null, lease_until: null });

/** Of the runs `update` selects, those with a cancel request end cancelled rather than go back to the queue. */
export async function cancelRequestedRuns(trx: Db, update: UpdateQueryBuilder<Database, "runs", "runs", UpdateResult>, now: number): Promise<void> {
  const rows = await update.where("cancel_requested_at", "is not", null).set(cancelledBy(now)).returning("id").execute();
  for (const { id } of rows) await interruptSteps(trx, id, now, "the run was cancelled");
}

/** A retry starts with the steps its original finished: their bodies never run again. */
async function copySucceededSteps(trx: Db, from: string, to: string): Promise<void> {
  await trx
    .insertInto("steps")
    .columns(["run_id", "name", "status", "result", "error", "attempts", "started_at", "finished_at"])
    .expression((eb) =>
      eb
        .selectFrom("steps")
        .select((s) => [sql<string>`${to}`.as("run_id"), "name", "status", "result", "error", "attempts", "started_at", "finished_at"])
        .where("run_id", "=", from)
        .where("status", "=", "succeeded"),
    )
    .execute();
}

/** The runs row of a new run: queued, or already claimed by its creator (`claim`). */
export function runRow(run: NewRun) {
  return {
    id: run.id,
    workflow: run.workflow,
    workflow_version: run.workflowVersion,
    org: run.org,
    trigger: run.trigger,
    status: run.claim ? "running" : "queued",
    params: json(run.params),
    attempt: 1,
    idempotency_key: run.idempotencyKey,
    queued_at: run.now,
    run_at: run.now,
    scheduled_for: run.scheduledFor,
    lease_owner: run.claim?.owner ?? null,
    lease_until: run.claim?.leaseUntil ?? null,
    lease_token: run.claim ? 1 : 0,
    started_at: run.claim ? run.now : null,
    retry_of: run.retryOf ?? null,
  };
}

function runRepository(db: Db, dialect: "sqlite" | "postgres"): RunRepository {
  const owned = (trx: Db, lease: Lease) =>
    trx.updateTable("runs").where("id", "=", lease.runId).where("lease_owner", "=", lease.owner).where("lease_token", "=", lease.token).where("status", "=", "running");

  /** After a claim: steps of the invocation that held the run before are over. */
  const claimed = async (row: Selectable<RunsTable> | undefined, now: number) => {
    if (!row) return undefined;
    await interruptSteps(db, row.id, now, "the run was claimed again");
    return toRun(row);
  };

  return {
    async create(run: NewRun) {
      const row = runRow(run);
      const insert = (q: Db) =>
        q
          .insertInto("runs")
          .values(row)
          // Only runs_idempotency can conflict here (ids are fresh; schedule fires are inserted elsewhere).
          .onConflict((oc) => oc.doNothing())
          .returningAll()
          .executeTakeFirst();
      const retryOf = run.retryOf;
      const inserted = retryOf
        ? await db.transaction().execute(async (trx) => {
            const created = await insert(trx);
            if (created) await copySucceededSteps(trx, retryOf, run.id);
            return created;
          })
        : await insert(db);
      if (inserted) return { run: toRun(inserted), created: true };
      if (run.idempotencyKey === null) throw new Error(`run ${run.id} was not stored: the database refused it as a duplicate`);
      const existing = await db
        .selectFrom("runs")
        .selectAll()
        .where("workflow", "=", run.workflow)
        .where(sql`coalesce(org, '')`, "=", run.org ?? "")
        .where("idempotency_key", "=", run.idempotencyKey)
        .executeTakeFirstOrThrow();
      return { run: toRun(existing), created: false };
    },

    async get(id) {
      const row = await db.selectFrom("runs").selectAll().where("id", "=", id).executeTakeFirst();
      return row && toRun(row);
    },

    async list(f) {
      let q = db.selectFrom("runs").selectAll();
      if (f.workflow !== undefined) q = q.where("workflow", "=", f.workflow);
      if (f.status !== undefined) q = q.where("status", "=", f.status);
      if (f.trigger !== undefined) q = q.where("trigger", "=", f.trigger);
      if (f.org !== undefined) q = q.where("org", "=", f.org);
      if (f.since !== undefined) q = q.where("queued_at", ">=", f.since);
      if (f.until !== undefined) q = q.where("queued_at", "<", f.until);
      if (f.beforeId !== undefined) q = q.where("id", "<", f.beforeId);
      return (await q.orderBy("id", "desc").limit(f.limit).execute()).map(toRun);
    },

    async claimNext(owner, now, leaseUntil, exclude = []) {
      const row = await db
        .updateTable("runs")
        .set(claimedBy(owner, now, leaseUntil))
        .where("id", "=", (eb) =>
          eb
            .selectFrom("runs")
            .select("id")
            .where(claimable(now))
            .$if(exclude.length > 0, (qb) => qb.where("id", "not in", [...exclude]))
            .orderBy("run_at")
            .orderBy("id")
            .limit(1)
            .$if(dialect === "postgres", (qb) => qb.forUpdate().skipLocked()),
        )
        // Re-checked on the outer row so a concurrent claimer on PostgreSQL cannot double-claim.
        .where(claimable(now))
        .returningAll()
        .executeTakeFirst();
      return claimed(row, now);
    },

    async claim(id, owner, now, leaseUntil) {
      const row = await db
        .updateTable("runs")
        .set(claimedBy(owner, now, leaseUntil))
        .where("id", "=", id)
        .where(claimable(now))
        .returningAll()
        .executeTakeFirst();
      return claimed(row, now);
    },

    async renewLeases(owner, ids, leaseUntil) {
      if (ids.length === 0) return [];
      const rows = await db
        .updateTable("runs")
        .set({ lease_until: leaseUntil })
        .where("id", "in", [...ids])
        .where("lease_owner", "=", owner)
        .where("status", "=", "running")
        .returning("id")
        .execute();
      return rows.map((r) => r.id);
    },

    async finish(lease, outcome) {
      return db.transaction().execute(async (trx) => {
        const row = await owned(trx, lease)
          .set({
            status: outcome.status,
            result: json(outcome.result ?? null),
            error: json(outcome.error ?? null),
            finished_at: outcome.finishedAt,
            lease_owner: null,
            lease_until: null,
          })
          .returningAll()
          .executeTakeFirst();
        if (row) await interruptSteps(trx, lease.runId, outcome.finishedAt, `the run ${outcome.status}`);
        return row && toRun(row);
      });
    },

    async requeue(lease, patch) {
      return db.transaction().execute(async (trx) => {
        const res = await owned(trx, lease)
          .where("cancel_requested_at", "is", null)
          .set({ status: "queued", run_at: patch.runAt, attempt: patch.attempt, error: json(patch.error), lease_owner: null, lease_until: null })
          .executeTakeFirst();
        const done = Number(res.numUpdatedRows) > 0;
        // The steps ended when the invocation did, not when the run is due again (a sleep's wake time).
        if (done) await interruptSteps(trx, lease.runId, patch.at ?? patch.runAt, "the run was handed back to the queue");
        // Someone cancelled the run while this invocation was deciding to hand it back.
        else await cancelRequestedRuns(trx, owned(trx, lease), Date.now());
        return done;
      });
    },

    async cancel(id, now) {
      return db.transaction().execute(async (trx) => {
        // Nobody executes a queued run, nor one whose lease ran out (its engine stopped it before).
        const stopped = await trx
          .updateTable("runs")
          .set({ ...cancelledBy(now), cancel_requested_at: sql<number>`coalesce(cancel_requested_at, ${now})` })
          .where("id", "=", id)
          .where((w) => w.or([w("status", "=", "queued"), w.and([w("status", "=", "running"), w("lease_until", "<", now)])]))
          .returningAll()
          .executeTakeFirst();
        if (stopped) {
          await interruptSteps(trx, id, now, "the run was cancelled");
          return { run: toRun(stopped), state: "cancelled" as const };
        }
        const requested = await trx
          .updateTable("runs")
          .set({ cancel_requested_at: sql<number>`coalesce(cancel_requested_at, ${now})` })
          .where("id", "=", id)
          .where("status", "=", "running")
          .returningAll()
          .executeTakeFirst();
        if (requested) return { run: toRun(requested), state: "requested" as const };
        const row = await trx.selectFrom("runs").selectAll().where("id", "=", id).executeTakeFirst();
        return row && { run: toRun(row), state: "finished" as const };
      });
    },

    async cancelRequested(ids) {
      if (ids.length === 0) return [];
      const rows = await db.selectFrom("runs").select("id").where("id", "in", [...ids]).where("status", "=", "running").where("cancel_requested_at", "is not", null).execute();
      return rows.map((r) => r.id);
    },

    async cancelQueued(id, error, now) {
      return db.transaction().execute(async (trx) => {
        const row = await trx
          .updateTable("runs")
          .set({ status: "cancelled", error: json(error), finished_at: now })
          .where("id", "=", id)
          .where("status", "=", "queued")
          .returningAll()
          .executeTakeFirst();
        if (row) await interruptSteps(trx, id, now, "the run was cancelled");
        return row && toRun(row);
      });
    },

    async releaseLeases(owner, ids) {
      if (ids.length === 0) return;
      await db.transaction().execute(async (trx) => {
        const held = () => trx.updateTable("runs").where("id", "in", [...ids]).where("lease_owner", "=", owner).where("status", "=", "running");
        await cancelRequestedRuns(trx, held(), Date.now());
        const rows = await held()
          .set({ status: "queued", lease_owner: null, lease_until: null })
          .returning("id")
          .execute();
        for (const { id } of rows) await interruptSteps(trx, id, Date.now(), "the engine stopped and released the run");
      });
    },
  };
}

function stepRepository(db: Db): StepRepository {
  return {
    async begin(lease, name, now) {
      const runId = lease.runId;
      const existing = await db.selectFrom("steps").selectAll().where("run_id", "=", runId).where("name", "=", name).executeTakeFirst();
      if (existing?.status === "succeeded") return toStep(existing);
      return fenced(db, lease, async (trx) => {
        if (!existing) {
          const row = { run_id: runId, name, status: "running", attempts: 1, started_at: now, result: null, error: null, finished_at: null };
          await trx.insertInto("steps").values(row).execute();
          return toStep(row);
        }
        const row = await trx
          .updateTable("steps")
          .set((eb) => ({ status: "running", attempts: eb("attempts", "+", 1), started_at: now, finished_at: null, error: null }))
          .where("run_id", "=", runId)
          .where("name", "=", name)
          .returningAll()
          .executeTakeFirstOrThrow();
        return toStep(row);
      });
    },

    async finish(lease, name, patch) {
      await fenced(db, lease, (trx) =>
        trx
          .updateTable("steps")
          .set({ status: patch.status, result: json(patch.result ?? null), error: json(patch.error ?? null), finished_at: patch.finishedAt })
          .where("run_id", "=", lease.runId)
          .where("name", "=", name)
          .execute(),
      );
    },

    async get(runId, name) {
      const row = await db.selectFrom("steps").selectAll().where("run_id", "=", runId).where("name", "=", name).executeTakeFirst();
      return row && toStep(row);
    },

    async listForRun(runId) {
      const rows = await db.selectFrom("steps").selectAll().where("run_id", "=", runId).orderBy("started_at").orderBy("name").execute();
      return rows.map(toStep);
    },
  };
}

function logRepository(db: Db): LogRepository {
  return {
    async append(lease, lines) {
      if (lines.length === 0) return;
      if (lines.some((l) => l.runId !== lease.runId)) throw new Error("log lines of another run cannot be written under this lease");
      const rows = lines.map((l) => ({
        run_id: l.runId,
        seq: l.seq,
        ts: l.ts,
        level: Math.max(0, LOG_LEVELS.indexOf(l.level)),
        msg: l.msg,
        data: l.data === undefined ? null : JSON.stringify(l.data),
        step: l.step ?? null,
      }));
      await fenced(db, lease, (trx) => trx.insertInto("logs").values(rows).execute());
    },

    async list(runId, query) {
      let q = db.selectFrom("logs").selectAll().where("run_id", "=", runId);
      if (query.afterSeq !== undefined) q = q.where("seq", ">", query.afterSeq);
      if (query.minLevel !== undefined) q = q.where("level", ">=", LOG_LEVELS.indexOf(query.minLevel));
      return (await q.orderBy("seq").limit(query.limit).execute()).map(toLog);
    },

    async maxSeq(runId) {
      const row = await db.selectFrom("logs").select((eb) => eb.fn.max("seq").as("max")).where("run_id", "=", runId).executeTakeFirst();
      return Number(row?.max ?? 0);
    },
  };
}
