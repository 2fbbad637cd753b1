import type { ErrorData } from "../common/errors.js";

/** Records as the engine sees them: times are epoch milliseconds, JSON columns already parsed. */

export type RunStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled" | "timed_out";
export type RunTrigger = "api" | "schedule" | "webhook" | "cli" | "retry";
export type StepStatus = "running" | "succeeded" | "failed";
export type LogLevel = "debug" | "info" | "warn" | "error";

export const FINISHED_STATUSES: readonly RunStatus[] = ["succeeded", "failed", "cancelled", "timed_out"];
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

export interface RunRecord {
  id: string;
  workflow: string;
  workflowVersion: string | null;
  org: string | null;
  trigger: RunTrigger;
  status: RunStatus;
  params: unknown;
  result: unknown;
  error: ErrorData | null;
  attempt: number;
  idempotencyKey: string | null;
  queuedAt: number;
  runAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  scheduledFor: number | null;
  leaseOwner: string | null;
  leaseUntil: number | null;
  /** Fencing token of the current claim; every claim increments it. */
  leaseToken: number;
  /**
   * When a cancel was asked for while the run was running: the engine executing it stops it. Storage
   * always sets it (and `retryOf`); records built by hand may leave both out.
   */
  cancelRequestedAt?: number | null;
  /** The run this one retries (trigger "retry"), whose succeeded steps it started with. */
  retryOf?: string | null;
}

/** One claim of a run: writes made under it fail with LEASE_LOST once the run was claimed again. */
export interface Lease {
  runId: string;
  owner: string;
  token: number;
}

export interface StepRecord {
  runId: string;
  name: string;
  status: StepStatus;
  result: unknown;
  error: ErrorData | null;
  attempts: number;
  startedAt: number;
  finishedAt: number | null;
}

export interface LogRecord {
  runId: string;
  seq: number;
  ts: number;
  level: LogLevel;
  msg: string;
  data?: unknown;
  step?: string;
}

export interface WorkflowRecord {
  name: string;
  version: string;
  sourceKind: "file" | "api";
  file: string | null;
  source: string;
  code: string;
  sourceMap: string;
  meta: unknown;
  registeredAt: number;
  updatedAt: number;
}

export interface NewRun {
  id: string;
  workflow: string;
  workflowVersion: string | null;
  org: string | null;
  trigger: RunTrigger;
  params: unknown;
  idempotencyKey: string | null;
  scheduledFor: number | null;
  now: number;
  /** Create the run already claimed by this owner (the CLI's embedded engine runs its own run). */
  claim?: { owner: string; leaseUntil: number };
  /**
   * The finished run this one retries: its succeeded steps are copied in the same transaction, so
   * no engine can claim the new run before they are there (their bodies never run again).
   */
  retryOf?: string | null;
}

export interface RunFilter {
  workflow?: string;
  status?: RunStatus;
  trigger?: RunTrigger;
  org?: string;
  since?: number;
  until?: number;
  /** Return runs with an id lower than this one (the cursor). */
  beforeId?: string;
  limit: number;
}

export interface RunOutcome {
  status: Extract<RunStatus, "succeeded" | "failed" | "cancelled" | "timed_out">;
  result?: unknown;
  error?: ErrorData | null;
  finishedAt: number;
}

export interface LogQuery {
  afterSeq?: number;
  minLevel?: LogLevel;
  limit: number;
}

export interface WorkflowRepository {
  upsert(record: WorkflowRecord): Promise<void>;
  get(name: string): Promise<WorkflowRecord | undefined>;
  list(): Promise<WorkflowRecord[]>;
  delete(name: string): Promise<boolean>;
}

/** One version of a workflow: what a run triggered with it executes. */
export interface WorkflowVersionRecord {
  name: string;
  version: string;
  code: string;
  sourceMap: string;
  meta: unknown;
  createdAt: number;
  sourceKind: "file" | "api";
  file: string | null;
  /** The module text as registered. */
  source: string;
}

/**
 * The bundles of workflow versions. A version is stored while it is a workflow's current version or
 * a queued or running run was triggered with it; `sweep` drops the others.
 */
export interface WorkflowVersionRepository {
  /** Stores a version unless it is stored already (a version's content never changes). */
  put(record: WorkflowVersionRecord): Promise<void>;
  get(name: string, version: string): Promise<WorkflowVersionRecord | undefined>;
  /** The version a workflow's current registration has (the workflows table), read cheaply. */
  current(name: string): Promise<string | undefined>;
  /** Every registered workflow's current version. */
  currentAll(): Promise<{ name: string; version: string }[]>;
  /** Versions stored for a workflow, oldest first. */
  list(name: string): Promise<{ version: string; createdAt: number }[]>;
  /**
   * Deletes at most `limit` versions (of `name`, or of any workflow) that are not current and that
   * no queued or running run uses; returns how many it deleted.
   */
  sweep(options: { name?: string; limit: number }): Promise<number>;
}

export interface RunRepository {
  /** Inserts a run; with an idempotency key that already exists, returns the existing run instead. */
  create(run: NewRun): Promise<{ run: RunRecord; created: boolean }>;
  get(id: string): Promise<RunRecord | undefined>;
  list(filter: RunFilter): Promise<RunRecord[]>;
  /**
   * Atomically claims the next due queued run, or a running run whose lease expired. The first
   * claim sets `startedAt`; every claim increments `leaseToken` and marks steps that an earlier
   * invocation left `running` as failed (STEP_INTERRUPTED). `exclude` lists runs this process is
   * still executing: it never claims those, whatever their lease says.
   */
  claimNext(owner: string, now: number, leaseUntil: number, exclude?: readonly string[]): Promise<RunRecord | undefined>;
  /** Claims one specific run if it is due (queued, or running with an expired lease). */
  claim(id: string, owner: string, now: number, leaseUntil: number): Promise<RunRecord | undefined>;
  /** Extends the leases this owner still holds; returns the ids it still owns. */
  renewLeases(owner: string, ids: readonly string[], leaseUntil: number): Promise<string[]>;
  /** Writes a final outcome if the lease still holds the run; undefined when it lost the lease. */
  finish(lease: Lease, outcome: RunOutcome): Promise<RunRecord | undefined>;
  /**
   * Puts a claimed run back in the queue (retry or resume), keeping its finished steps. A run that
   * carries a cancel request ends cancelled instead (and this returns false): it never waits in the
   * queue for a retry nobody wants.
   */
  /** `at`: when the invocation handed the run back; steps it left running end then (default `runAt`). */
  requeue(lease: Lease, patch: { runAt: number; attempt: number; error: ErrorData | null; at?: number }): Promise<boolean>;
  /** Cancels a run that no engine is executing (status queued); undefined if it was not queued. */
  cancelQueued(id: string, error: ErrorData, now: number): Promise<RunRecord | undefined>;
  /**
   * Cancels a run (error RUN_CANCELLED): at once when no engine executes it (queued, or running
   * under an expired lease); otherwise records the request (`cancelRequestedAt`) for the engine that
   * executes it, which stops it. `finished` when the run had already ended; undefined if none.
   */
  cancel(id: string, now: number): Promise<{ run: RunRecord; state: "cancelled" | "requested" | "finished" } | undefined>;
  /** Of these runs, the ones still running that carry a cancel request. */
  cancelRequested(ids: readonly string[]): Promise<string[]>;
  /** Releases leases of unfinished runs this owner holds so another engine can take them now (those with a cancel request end cancelled). */
  releaseLeases(owner: string, ids: readonly string[]): Promise<void>;
}

/**
 * Step and log writes are fenced: each takes the lease of the invocation that makes it and fails
 * with LEASE_LOST when the run has been claimed again since, so an engine that lost a run can
 * never write into the invocation that replaced it.
 */
export interface StepRepository {
  /** Finds the step, or records a new attempt of it (status running, attempts + 1). */
  begin(lease: Lease, name: string, now: number): Promise<StepRecord>;
  finish(lease: Lease, name: string, patch: { status: "succeeded" | "failed"; result?: unknown; error?: ErrorData | null; finishedAt: number }): Promise<void>;
  /** One step's record, read without writing (ctx.sleep looks for its record before it decides). */
  get(runId: string, name: string): Promise<StepRecord | undefined>;
  listForRun(runId: string): Promise<StepRecord[]>;
}

/** One ctx.chunks call of a run: how many chunks it has, and how many of them are committed. */
export interface ChunkProgress {
  name: string;
  /** Committed chunk steps (`name#i`, status succeeded). */
  done: number;
  total: number;
}

export interface ChunkRepository {
  /**
   * Records that the run's ctx.chunks call `name` splits its items into `total` chunks (again on
   * every resume: the call starts again). Fenced like step writes.
   */
  start(lease: Lease, name: string, total: number, now: number): Promise<void>;
  /** The run's chunks calls in the order they first started, with their committed chunk counts. */
  listForRun(runId: string): Promise<ChunkProgress[]>;
}

export interface LogRepository {
  append(lease: Lease, lines: readonly LogRecord[]): Promise<void>;
  list(runId: string, query: LogQuery): Promise<LogRecord[]>;
  maxSeq(runId: string): Promise<number>;
}

/** What an API key may do; the rules are in engine/auth/roles.ts. */
export type KeyRole = "admin" | "operator" | "viewer";
export const KEY_ROLES: readonly KeyRole[] = ["admin", "operator", "viewer"];

export interface ApiKeyRecord {
  id: string;
  name: string;
  role: KeyRole;
  /** The org the key is limited to; null for a key that sees every org. */
  org: string | null;
  /** SHA-256 (hex) of the whole key: the key itself is shown once and never stored. */
  hash: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export type NewApiKey = Omit<ApiKeyRecord, "lastUsedAt" | "revokedAt">;

export interface KeyRepository {
  create(key: NewApiKey): Promise<void>;
  /** Inserts `key` only if no key (not even a revoked one) exists, atomically; false when one does. */
  createFirst(key: NewApiKey): Promise<boolean>;
  get(id: string): Promise<ApiKeyRecord | undefined>;
  /** Oldest first. */
  list(): Promise<ApiKeyRecord[]>;
  /** Sets `revokedAt` unless it is set already; the key as it now stands, undefined if there is none. */
  revoke(id: string, now: number): Promise<ApiKeyRecord | undefined>;
  touch(id: string, now: number): Promise<void>;
}

export interface WebhookSecretRecord {
  workflow: string;
  /** null: the hook without an org (`POST /api/hooks/:workflow`); else `?org=` hooks of that org. */
  org: string | null;
  /** The secret as sealed by engine/secrets; storage never sees it in the clear. */
  sealed: string;
  createdAt: number;
  rotatedAt: number | null;
  /** The secret the last rotation replaced (sealed), and until when it is still accepted. */
  previousSealed: string | null;
  previousUntil: number | null;
}

export interface WebhookSecretRepository {
  get(workflow: string, org: string | null): Promise<WebhookSecretRecord | undefined>;
  /** Stores a first secret unless the workflow has one for that org already; returns the one that is stored. */
  createIfAbsent(record: { workflow: string; org: string | null; sealed: string; createdAt: number }): Promise<WebhookSecretRecord>;
  /**
   * Replaces the secret of a workflow that has one (undefined when it has none); the replaced one
   * stays acceptable until `previousUntil` (null: not at all).
   */
  replace(workflow: string, org: string | null, sealed: string, now: number, previousUntil: number | null): Promise<WebhookSecretRecord | undefined>;
}

export interface SecretKeyCheckRepository {
  /** The fingerprint of the key this database's secrets are sealed with, once one was recorded. */
  get(): Promise<string | undefined>;
  /** Records `fingerprint` unless one is recorded already; returns the recorded one. */
  remember(fingerprint: string, now: number): Promise<string>;
}

export interface StatsRepository {
  /** Queued and running runs, counted per workflow and status. */
  unfinishedRuns(): Promise<{ workflow: string; status: Extract<RunStatus, "queued" | "running">; count: number }[]>;
}

/**
 * Schedule state per workflow and org (storage/schedules-repository.ts). Fires are runs with
 * trigger "schedule", unique per (workflow, org, scheduledFor) in the database.
 */
export interface ScheduleRecord {
  workflow: string;
  /** The org this row fires for (schedule.orgs); null for a schedule without orgs. */
  org: string | null;
  /** The expression and zone `nextFireAt` was computed for. */
  cron: string;
  timezone: string;
  /** The first fire not yet handled; null when the expression never fires again. */
  nextFireAt: number | null;
  /** The scheduled instant of the last fire that started a run. */
  lastFireAt: number | null;
  lastRunId: string | null;
  paused: boolean;
  pausedAt: number | null;
  /** The fire waiting for an unfinished run to end (overlap: queue). */
  pendingFor: number | null;
  createdAt: number;
  updatedAt: number;
  /** Last pause, resume or new cron or zone (not fires): what other engines must hear of. */
  changedAt: number;
  /** Status of the run `lastRunId` names (list only; undefined elsewhere). */
  lastRunStatus?: RunStatus | null;
}

export interface ScheduleSeed {
  workflow: string;
  org: string | null;
  cron: string;
  timezone: string;
  nextFireAt: number | null;
}

export type SchedulePatch = Partial<Pick<ScheduleRecord, "nextFireAt" | "lastFireAt" | "lastRunId" | "pendingFor">>;

/** One schedule row inside a transaction (locked on PostgreSQL; SQLite transactions are exclusive). */
export interface ScheduleTx {
  readonly row: ScheduleRecord;
  /** A queued or running run of this schedule and org (trigger "schedule") exists. */
  unfinishedRun(): Promise<boolean>;
  /** Inserts the run of a fire; undefined when that fire (workflow, org, scheduledFor) exists already. */
  insertRun(run: NewRun): Promise<RunRecord | undefined>;
  update(patch: SchedulePatch, now: number): Promise<ScheduleRecord>;
}

export interface ScheduleRepository {
  /**
   * Inserts the rows that are missing (next fire as given). A row computed for another cron or zone,
   * or without a next fire, takes the new ones and the given next fire, and loses its pending fire;
   * paused and last fire are kept. Returns the rows as stored.
   */
  sync(seeds: readonly ScheduleSeed[], now: number): Promise<ScheduleRecord[]>;
  get(workflow: string, org: string | null): Promise<ScheduleRecord | undefined>;
  /** Every row, or those of one workflow and/or org, with `lastRunStatus`; by workflow, then org. */
  list(filter: { workflow?: string; org?: string | null }): Promise<ScheduleRecord[]>;
  /**
   * Rows an engine should look at again: changed (paused, resumed, new cron or zone) after `since`,
   * unpaused with a next fire before `dueBefore` (overdue), or with a pending fire. At most
   * `limit`, least recently changed first.
   */
  attention(since: number, dueBefore: number, limit: number): Promise<ScheduleRecord[]>;
  /**
   * Pauses or resumes one row (a pause drops its pending fire; `nextFireAt` when given replaces the
   * next fire). Undefined when the row does not exist or is in that state already.
   */
  setPaused(workflow: string, org: string | null, paused: boolean, now: number, nextFireAt?: number | null): Promise<ScheduleRecord | undefined>;
  /** Runs `fn` in one transaction holding the row; undefined (fn not called) when there is no row. */
  transact<T>(workflow: string, org: string | null, fn: (tx: ScheduleTx) => Promise<T>): Promise<T | undefined>;
  /**
   * Runs `fn` in one transaction in which it opens any number of rows (undefined for a row that does
   * not exist): the fires of many schedules due at once commit together.
   */
  transactMany<T>(fn: (open: (workflow: string, org: string | null) => Promise<ScheduleTx | undefined>) => Promise<T>): Promise<T>;
}

/** Leases of engines that stopped renewing them (the lease reaper, engine/maintenance). */
export interface LeaseRepository {
  /**
   * Of these runs, those still running under a lease that ended before `now` go back to the queue
   * (their running steps end STEP_INTERRUPTED; one with a cancel request ends cancelled instead).
   * Returns the ids put back in the queue. A lease renewed since it was found is left alone.
   */
  reapExpired(ids: readonly string[], now: number): Promise<string[]>;
}

/** The engine's whole view of the database. SQLite and PostgreSQL implement the same interface. */
/** An OAuth provider's configuration; the client secret stays sealed here (engine/secrets opens it). */
export interface OAuthProviderRecord {
  name: string;
  grantType: string;
  authorizationUrl: string | null;
  tokenUrl: string;
  clientId: string;
  clientSecretSealed: string | null;
  scopes: string[];
  /** null: the engine's default (<public url>/api/oauth/callback). */
  redirectUri: string | null;
  /** How the client authenticates at the token endpoint: "client_secret_post" or "client_secret_basic". */
  clientAuth: string;
  createdAt: number;
  updatedAt: number;
}

/** Tokens as stored: sealed. */
export interface OAuthTokens {
  accessTokenSealed: string;
  /** null: the provider issued none (client credentials) or kept the old one (see OAuthRepository.finishRefresh). */
  refreshTokenSealed: string | null;
  tokenType: string | null;
  expiresAt: number;
  scopes: string[];
}

export interface OAuthConnectionRecord {
  provider: string;
  /** null: the global connection. */
  org: string | null;
  entityId: string | null;
  accessTokenSealed: string | null;
  refreshTokenSealed: string | null;
  tokenType: string | null;
  expiresAt: number | null;
  scopes: string[];
  /** "healthy" | "refresh_failed" | "needs_reauth" (expiring is derived from expiresAt when shown). */
  status: string;
  connectedAt: number | null;
  lastRefreshAt: number | null;
  /** The last failure as the engine described it (category, code, message, fix, at): no secrets. */
  lastFailure: unknown;
  failureCount: number;
  nextRetryAt: number | null;
  refreshOwner: string | null;
  refreshUntil: number | null;
  /** Grows with every token saved. */
  generation: number;
  createdAt: number;
  updatedAt: number;
}

export interface OAuthStateRecord {
  /** A hash of the state value; the value itself is never stored. */
  id: string;
  provider: string;
  org: string | null;
  entityId: string | null;
  codeVerifierSealed: string;
  redirectUri: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export type ConsumedState = { ok: true; state: OAuthStateRecord } | { ok: false; reason: "unknown" | "used" | "expired" };

export interface OAuthFailureUpdate {
  status: "refresh_failed" | "needs_reauth";
  failure: unknown;
  nextRetryAt: number | null;
}

export interface OAuthRepository {
  /** Creates or replaces a provider (its createdAt is kept). */
  putProvider(record: OAuthProviderRecord): Promise<OAuthProviderRecord>;
  getProvider(name: string): Promise<OAuthProviderRecord | undefined>;
  listProviders(): Promise<OAuthProviderRecord[]>;
  /** Removes the provider with its connections and authorizations in progress. */
  removeProvider(name: string): Promise<boolean>;
  getConnection(provider: string, org: string | null): Promise<OAuthConnectionRecord | undefined>;
  /** `org` undefined: every connection; null: the global ones only. */
  listConnections(filter?: { provider?: string; org?: string | null }): Promise<OAuthConnectionRecord[]>;
  /** A new grant (connect, callback): replaces the connection's tokens, clears failures and any refresh lease. */
  connect(provider: string, org: string | null, entityId: string | null, tokens: OAuthTokens, now: number): Promise<OAuthConnectionRecord>;
  /**
   * Takes the connection's refresh lease when nobody holds it (or its holder's lease ran out);
   * returns the row as it is once taken, so the caller re-reads the stored token under the lease.
   */
  takeRefreshLease(provider: string, org: string | null, owner: string, until: number, now: number): Promise<OAuthConnectionRecord | undefined>;
  /**
   * Stores a refresh's outcome under the lease, in one write: the access token with its rotated
   * refresh token (null keeps the old one), or the failure. False when the lease was lost.
   */
  finishRefresh(provider: string, org: string | null, owner: string, outcome: { tokens: OAuthTokens } | OAuthFailureUpdate, now: number): Promise<boolean>;
  /** Records a failure outside a refresh (a failed authorization, an API that refused the token); creates the connection when it has none. */
  recordFailure(provider: string, org: string | null, update: { status: string; failure: unknown; nextRetryAt: number | null }, now: number): Promise<void>;
  /** Gives the refresh lease back without storing anything (another engine had refreshed already). */
  releaseRefreshLease(provider: string, org: string | null, owner: string): Promise<void>;
  removeConnection(provider: string, org: string | null): Promise<boolean>;
  /** Connections worth refreshing now: healthy ones expiring before `before`, and refresh_failed ones due again. */
  dueForRefresh(before: number, now: number, limit: number): Promise<{ provider: string; org: string | null }[]>;
  createState(record: OAuthStateRecord): Promise<void>;
  /** Marks the state used, once: a second use (or an expired state) is refused. */
  consumeState(id: string, now: number): Promise<ConsumedState>;
  /** Deletes states that expired before `before`. */
  pruneStates(before: number): Promise<number>;
}

/** One ctx.state value (storage/state-repository.ts). */
export interface StateRecord {
  workflow: string;
  /** null: the state of runs without an org, kept apart from every org's. */
  org: string | null;
  key: string;
  value: unknown;
  updatedAt: number;
  updatedByRun: string | null;
}

/**
 * ctx.state per (workflow, org). Writes of a run are fenced like step writes: they take the
 * invocation's lease, fail with LEASE_LOST once the run was claimed again, and write under the
 * workflow and org of the leased run itself. `reset` is an administrator's delete, without a lease.
 */
export interface StateRepository {
  get(workflow: string, org: string | null, key: string): Promise<StateRecord | undefined>;
  /** Every key of one workflow and org, by key. */
  list(workflow: string, org: string | null): Promise<StateRecord[]>;
  /**
   * Stores `json` (JSON text the caller bounded) under `key`; committed when it resolves. A new key
   * past `maxKeys` keys is refused (`ok: false` with the number of keys there are).
   */
  set(lease: Lease, entry: { key: string; json: string; now: number; maxKeys: number }): Promise<{ ok: true } | { ok: false; keys: number }>;
  /** Whether the key existed. */
  delete(lease: Lease, key: string): Promise<boolean>;
  reset(workflow: string, org: string | null, key: string): Promise<boolean>;
}

export interface Storage {
  readonly state: StateRepository;
  readonly oauth: OAuthRepository;
  readonly dialect: "sqlite" | "postgres";
  readonly schedules: ScheduleRepository;
  readonly leases: LeaseRepository;
  readonly stats: StatsRepository;
  readonly webhookSecrets: WebhookSecretRepository;
  readonly secretKeyCheck: SecretKeyCheckRepository;
  readonly keys: KeyRepository;
  readonly workflows: WorkflowRepository;
  readonly workflowVersions: WorkflowVersionRepository;
  readonly runs: RunRepository;
  readonly steps: StepRepository;
  readonly chunks: ChunkRepository;
  readonly logs: LogRepository;
  migrate(): Promise<void>;
  /** Resolves when the database can be read and written now; throws STORAGE_UNAVAILABLE saying why not. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
