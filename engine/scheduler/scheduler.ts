import { BifrostError, isBifrostError } from "../../common/errors.js";
import type { RunRecord, ScheduleRecord, ScheduleTx, Storage } from "../../storage/types.js";
import type { EngineEvents, FireSkip, ScheduleChange } from "../events.js";
import { uuidv7 } from "../ids.js";
import type { Logger } from "../logger.js";
import type { ScheduleDefinition } from "../registry/definition.js";
import type { RegisteredWorkflow, WorkflowRegistry } from "../registry/registry.js";
import { ParamsValidator } from "../runner/params.js";
import { compileCron, nextFire } from "./cron.js";
import { SchedulerLoop, type Timers } from "./loop.js";
import { applyOverlap, type OverlapOutcome } from "./overlap.js";
import { DEFAULT_GRACE_MS, planFires, type Plan } from "./plan.js";

/**
 * Fires schedules: the loop (loop.ts) holds one entry per (workflow, org) that is not paused, and
 * calls `fire` when one is due. A fire is one transaction (storage ScheduleTx): it checks that the
 * row still is what this engine planned from (same cron and zone, not paused, same next fire), so
 * an engine with a stale view writes nothing and reloads instead; it applies the overlap policy,
 * inserts the runs (the database refuses a fire that exists already) and advances the next fire.
 * Any number of engines may run this on one database: each fire starts one run.
 *
 * The scheduler learns of changes made by this engine at once (registration events, pause and
 * resume through it) and of those made elsewhere at its next fire of that schedule (the row has
 * moved on) or from the schedule check (engine/maintenance), whichever comes first.
 */

export interface SchedulerDeps {
  storage: Storage;
  registry: Pick<WorkflowRegistry, "get" | "list" | "refresh" | "retain">;
  events: EngineEvents;
  logger: Logger;
  now: () => number;
  /** A run was queued: the runner looks for work. */
  nudge: () => void;
  /** Fires found at most this late are on time. @default 60 s */
  graceMs?: number;
  timers?: Timers;
}

interface Entry {
  key: string;
  next: number | null;
  workflow: string;
  org: string | null;
  cron: string;
  timezone: string;
}

/** Who asks: an org key sees and operates its org's schedules only. */
export interface ScheduleScope {
  org?: string | undefined;
}

export interface ScheduleView {
  workflow: string;
  org: string | null;
  cron: string;
  timezone: string;
  overlap: ScheduleDefinition["overlap"];
  catchUp: ScheduleDefinition["catchUp"];
  nextFireAt: number | null;
  lastFireAt: number | null;
  lastRunId: string | null;
  lastRunStatus: RunRecord["status"] | null;
  paused: boolean;
  pausedAt: number | null;
}

/** A due entry planned and ready to be decided in the fire's transaction. */
interface Ready {
  i: number;
  entry: Entry;
  workflow: RegisteredWorkflow;
  spec: ScheduleDefinition;
  plan: Plan;
  defaults: { ok: true; params: unknown } | { ok: false; error: unknown };
}

type Decided =
  | { kind: "missing" }
  | { kind: "moved"; row: ScheduleRecord }
  | { kind: "fired"; row: ScheduleRecord; outcome: OverlapOutcome; started: RunRecord[]; newlyPending: number | null };

const keyOf = (workflow: string, org: string | null) => `${workflow}\u0000${org ?? ""}`;
export const orgsOf = (s: ScheduleDefinition): (string | null)[] => s.orgs ?? [null];

export class Scheduler {
  private readonly loop: SchedulerLoop<Entry>;
  private readonly params = new ParamsValidator();
  private readonly offs: (() => void)[] = [];
  private started = false;
  /** Overdue at start (missed while no engine ran): left to the schedule check's catch-up. */
  private readonly deferred = new Map<string, Entry>();

  constructor(private readonly deps: SchedulerDeps) {
    this.loop = new SchedulerLoop<Entry>({
      now: deps.now,
      fire: (entries, now) => this.fire(entries, now),
      onError: (err, entry) => deps.logger.error({ err, workflow: entry.workflow, org: entry.org }, "firing a schedule failed; retrying"),
      ...(deps.timers ? { timers: deps.timers } : {}),
    });
  }

  private get graceMs(): number {
    return this.deps.graceMs ?? DEFAULT_GRACE_MS;
  }

  /** Schedules this engine fires (not paused), for tests and metrics. */
  get size(): number {
    return this.loop.size;
  }

  /**
   * Loads every schedule and starts firing. With `deferOverdue`, schedules whose next fire was
   * missed (more than the grace period ago: no engine ran) wait for `reconcile` (the schedule
   * check after start) to catch up on them.
   */
  async start(options: { deferOverdue?: boolean } = {}): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { events } = this.deps;
    this.offs.push(
      events.on("workflow:registered", ({ name }) => void this.guard(this.syncWorkflow(name, "registered"))),
      events.on("workflow:removed", ({ name }) => this.removeWorkflow(name)),
      events.on("run:finished", ({ run }) => {
        if (run.trigger === "schedule") void this.guard(this.promote(run.workflow, run.org));
      }),
    );
    const workflows = this.deps.registry.list().filter((w) => w.definition.schedule);
    // The first params compile of a process is slow (ajv warming up): pay it now, not in a fire.
    const first = workflows[0];
    if (first) this.defaultParams(first);
    let rows: ScheduleRecord[];
    try {
      rows = await this.seed(workflows);
    } catch (err) {
      // Not started: a later start() tries again from the beginning.
      await this.stop();
      throw err;
    }
    const now = this.deps.now();
    for (const row of rows) {
      const entry = this.entryOf(row);
      if (!entry) continue;
      if (options.deferOverdue && entry.next !== null && entry.next < now - this.graceMs) this.deferred.set(entry.key, entry);
      else this.loop.set(entry);
      this.changed(row, "loaded");
    }
    this.loop.start();
  }

  async stop(): Promise<void> {
    this.started = false;
    for (const off of this.offs.splice(0)) off();
    await this.loop.stop();
  }

  /**
   * Rows another engine changed, or found overdue or pending by the schedule check: this engine
   * takes the database's view (and catches up on missed fires through its next fire).
   */
  async reconcile(rows: readonly ScheduleRecord[]): Promise<void> {
    if (!this.started) return;
    for (const row of rows) {
      const key = keyOf(row.workflow, row.org);
      this.deferred.delete(key);
      let workflow = this.deps.registry.get(row.workflow);
      const spec = workflow?.definition.schedule;
      if (!spec || spec.cron !== row.cron || spec.timezone !== row.timezone) {
        // Another engine registered a version this one has not seen yet.
        workflow = await this.deps.registry.refresh(row.workflow);
        const current = workflow?.definition.schedule;
        if (current && orgsOf(current).includes(row.org)) await this.syncWorkflow(row.workflow, "synced");
        else await this.retire(row);
        continue;
      }
      if (!orgsOf(spec).includes(row.org)) {
        await this.retire(row);
        continue;
      }
      if (row.pendingFor !== null) await this.promote(row.workflow, row.org);
      const entry = this.entryOf(row);
      const current = this.loop.get(key);
      if (!entry) {
        if (current) this.loop.delete(key);
      } else if (!current || current.next !== entry.next || current.cron !== entry.cron) this.loop.set(entry);
      else continue;
      this.changed(row, "synced");
    }
  }

  /**
   * The schedule check could not run (its worker failed): schedules left for it are armed here
   * instead, so missed fires are caught up on anyway.
   */
  releaseDeferred(): void {
    for (const [key, entry] of this.deferred) {
      this.deferred.delete(key);
      this.loop.set(entry);
    }
  }

  /** `reconcile` for rows named by (workflow, org), read afresh from storage. */
  async reconcileKeys(keys: readonly { workflow: string; org: string | null }[]): Promise<void> {
    if (!this.started || keys.length === 0) return;
    const wanted = new Set(keys.map((k) => keyOf(k.workflow, k.org)));
    const rows: ScheduleRecord[] = [];
    for (const workflow of new Set(keys.map((k) => k.workflow))) {
      for (const row of await this.deps.storage.schedules.list({ workflow })) if (wanted.has(keyOf(row.workflow, row.org))) rows.push(row);
    }
    await this.reconcile(rows);
  }

  logError(err: unknown, message: string): void {
    this.deps.logger.error({ err }, message);
  }

  /** The schedules the loop holds (tests), and those waiting for the catch-up check. */
  entries(): { armed: string[]; deferred: string[] } {
    return { armed: this.loop.keys(), deferred: [...this.deferred.keys()] };
  }

  // --- operations (API and CLI) ------------------------------------------------------------

  async list(filter: { workflow?: string; org?: string }, scope: ScheduleScope = {}): Promise<ScheduleView[]> {
    if (scope.org !== undefined && filter.org !== undefined && filter.org !== scope.org) return [];
    const org = scope.org ?? filter.org;
    const rows = await this.deps.storage.schedules.list({ ...(filter.workflow !== undefined && { workflow: filter.workflow }), ...(org !== undefined && { org }) });
    const byKey = new Map(rows.map((r) => [keyOf(r.workflow, r.org), r]));
    const now = this.deps.now();
    const views: ScheduleView[] = [];
    for (const workflow of this.deps.registry.list()) {
      const spec = workflow.definition.schedule;
      if (!spec || (filter.workflow !== undefined && workflow.definition.name !== filter.workflow)) continue;
      for (const o of orgsOf(spec)) {
        if (org !== undefined && o !== org) continue;
        views.push(this.view(workflow.definition.name, o, spec, byKey.get(keyOf(workflow.definition.name, o)), now));
      }
    }
    return views;
  }

  /** Pauses the schedule (one org, or every org it fires for). A paused schedule accumulates nothing. */
  async pause(workflow: string, options: { org?: string | null | undefined; scope?: ScheduleScope } = {}): Promise<ScheduleView[]> {
    return this.setPaused(workflow, options, true);
  }

  /** Resumes from now: fires due while it was paused are not replayed. */
  async resume(workflow: string, options: { org?: string | null | undefined; scope?: ScheduleScope } = {}): Promise<ScheduleView[]> {
    return this.setPaused(workflow, options, false);
  }

  /**
   * Fires now, for one org or every org of the schedule, paused or not and whatever the overlap
   * policy: a run per org with trigger "schedule" and `scheduledFor` now. Its next fire is unchanged.
   */
  async trigger(workflow: string, options: { org?: string | null | undefined; scope?: ScheduleScope } = {}): Promise<RunRecord[]> {
    const { registered, orgs } = await this.target(workflow, options);
    await this.seed([registered]);
    const now = this.deps.now();
    const defaults = this.defaultParams(registered);
    if (!defaults.ok) {
      const why = isBifrostError(defaults.error) ? defaults.error.message : String(defaults.error);
      throw new BifrostError("INVALID_PARAMS", `A scheduled run of "${workflow}" starts without params, and its params schema refuses that: ${why}`, {
        ...(isBifrostError(defaults.error) && defaults.error.details !== undefined ? { details: defaults.error.details } : {}),
        fix: "Give every required param a default in the workflow's params schema: a scheduled run starts with the schema's defaults.",
      });
    }
    const params = defaults.params;
    const runs: RunRecord[] = [];
    for (const org of orgs) {
      const run = await this.deps.storage.schedules.transact(workflow, org, async (tx) => {
        const created = await tx.insertRun(this.newRun(registered, org, now, params, now));
        if (created) await tx.update({ lastFireAt: now, lastRunId: created.id }, now);
        return created;
      });
      if (run) runs.push(run);
    }
    await this.announce(registered, runs, now, true);
    return runs;
  }

  // --- internals --------------------------------------------------------------------------

  /** A scheduled run's params: the schema's defaults applied to no params (or why there are none). */
  private defaultParams(workflow: RegisteredWorkflow): { ok: true; params: unknown } | { ok: false; error: unknown } {
    try {
      return { ok: true, params: this.params.validate({ name: workflow.definition.name, version: workflow.version, params: workflow.definition.params }, undefined) };
    } catch (error) {
      return { ok: false, error };
    }
  }

  private async guard(work: Promise<unknown>): Promise<void> {
    try {
      await work;
    } catch (err) {
      this.deps.logger.error({ err }, "scheduler bookkeeping failed");
    }
  }

  private entryOf(row: ScheduleRecord): Entry | undefined {
    if (row.paused) return undefined;
    return { key: keyOf(row.workflow, row.org), next: row.nextFireAt, workflow: row.workflow, org: row.org, cron: row.cron, timezone: row.timezone };
  }

  private changed(row: Pick<ScheduleRecord, "workflow" | "org" | "nextFireAt" | "paused">, reason: ScheduleChange): void {
    this.deps.events.emit("schedule:changed", { workflow: row.workflow, org: row.org, nextFireAt: row.nextFireAt, paused: row.paused, reason });
  }

  /** Ensures the rows of these workflows' schedules exist and match their cron and zone. */
  private async seed(workflows: RegisteredWorkflow[]): Promise<ScheduleRecord[]> {
    const now = this.deps.now();
    const seeds = workflows.flatMap((w) => {
      const spec = w.definition.schedule;
      if (!spec) return [];
      const next = nextFire(compileCron(spec.cron, spec.timezone), now);
      return orgsOf(spec).map((org) => ({ workflow: w.definition.name, org, cron: spec.cron, timezone: spec.timezone, nextFireAt: next }));
    });
    return seeds.length === 0 ? [] : this.deps.storage.schedules.sync(seeds, now);
  }

  /** A (re-)registered workflow: its rows follow the new definition; orgs no longer listed stop. */
  private async syncWorkflow(name: string, reason: "registered" | "synced"): Promise<void> {
    if (!this.started) return;
    const workflow = this.deps.registry.get(name);
    const spec = workflow?.definition.schedule;
    const wanted = new Set(spec ? orgsOf(spec).map((o) => keyOf(name, o)) : []);
    for (const key of [...this.loop.keys(), ...this.deferred.keys()]) {
      if (key.startsWith(`${name}\u0000`) && !wanted.has(key)) {
        this.loop.delete(key);
        this.deferred.delete(key);
      }
    }
    if (!workflow || !spec) return;
    for (const row of await this.seed([workflow])) {
      const entry = this.entryOf(row);
      const key = keyOf(row.workflow, row.org);
      if (this.deferred.has(key)) continue;
      if (entry) this.loop.set(entry);
      else this.loop.delete(key);
      this.changed(row, reason);
    }
  }

  /**
   * A row whose workflow, schedule or org is gone: it stops being overdue (so the schedule check
   * stops reporting it) and keeps its paused flag and last fire for a schedule that comes back.
   */
  private async retire(row: ScheduleRecord): Promise<void> {
    this.loop.delete(keyOf(row.workflow, row.org));
    if (row.nextFireAt === null && row.pendingFor === null) return;
    await this.deps.storage.schedules.transact(row.workflow, row.org, (tx) => tx.update({ nextFireAt: null, pendingFor: null }, this.deps.now()));
  }

  private removeWorkflow(name: string): void {
    for (const key of [...this.loop.keys(), ...this.deferred.keys()]) {
      if (!key.startsWith(`${name}\u0000`)) continue;
      const entry = this.loop.get(key) ?? this.deferred.get(key);
      this.loop.delete(key);
      this.deferred.delete(key);
      if (entry) this.changed({ workflow: entry.workflow, org: entry.org, nextFireAt: null, paused: false }, "removed");
    }
  }

  private newRun(workflow: RegisteredWorkflow, org: string | null, scheduledFor: number, params: unknown, now: number) {
    return {
      id: uuidv7(now),
      workflow: workflow.definition.name,
      workflowVersion: workflow.version,
      org,
      trigger: "schedule" as const,
      params,
      idempotencyKey: null,
      scheduledFor,
      now,
    };
  }

  /** After a commit: keep the version's bundle, tell the runner and the listeners. */
  private async announce(workflow: RegisteredWorkflow, runs: RunRecord[], now: number, manual: boolean): Promise<void> {
    if (runs.length === 0) return;
    await this.deps.registry.retain(workflow);
    for (const run of runs) {
      this.deps.events.emit("run:queued", { run });
      this.deps.events.emit("schedule:fired", { workflow: run.workflow, org: run.org, scheduledFor: run.scheduledFor ?? now, runId: run.id, at: now, manual });
    }
    this.deps.nudge();
  }

  private skipped(entry: { workflow: string; org: string | null }, scheduledFor: number | null, reason: FireSkip, at: number, from?: number): void {
    this.deps.events.emit("schedule:skipped", { workflow: entry.workflow, org: entry.org, scheduledFor, reason, at, ...(from === undefined ? {} : { from }) });
  }

  /**
   * Due entries: plan each, then decide and write them all in one transaction (the orgs of one
   * schedule are due together). Returns each entry as it is next, in order.
   */
  private async fire(entries: Entry[], now: number): Promise<(Entry | null)[]> {
    const results: (Entry | null)[] = entries.map(() => null);
    const ready: Ready[] = [];
    for (const [i, entry] of entries.entries()) {
      const workflow = this.deps.registry.get(entry.workflow);
      const spec = workflow?.definition.schedule;
      if (!workflow || !spec || !orgsOf(spec).includes(entry.org)) continue;
      if (spec.cron !== entry.cron || spec.timezone !== entry.timezone || entry.next === null) {
        await this.syncWorkflow(entry.workflow, "synced");
        results[i] = this.loop.get(entry.key) ?? null;
        continue;
      }
      const plan = planFires(compileCron(spec.cron, spec.timezone), { next: entry.next, now, catchUp: spec.catchUp, catchUpWindowMs: spec.catchUpWindowMs, graceMs: this.graceMs });
      ready.push({ i, entry, workflow, spec, plan, defaults: this.defaultParams(workflow) });
    }
    if (ready.length === 0) return results;
    const decided = await this.deps.storage.schedules.transactMany(async (open) => {
      const out: Decided[] = [];
      for (const r of ready) {
        const tx = await open(r.entry.workflow, r.entry.org);
        out.push(tx ? await this.decide(tx, r, now) : { kind: "missing" });
      }
      return out;
    });
    for (const [n, r] of ready.entries()) {
      const result = decided[n]!;
      try {
        results[r.i] = await this.afterFire(r, result, now);
      } catch (err) {
        // Committed already: only the bookkeeping failed. The entry goes on from the row.
        this.deps.logger.error({ err, workflow: r.entry.workflow, org: r.entry.org }, "after a schedule fired, announcing it failed");
        results[r.i] = result.kind === "missing" ? r.entry : (this.entryOf(result.row) ?? null);
      }
    }
    return results;
  }

  /** Inside the fire's transaction: nothing if the row moved on, else overlap, runs and the next fire. */
  private async decide(tx: ScheduleTx, r: Ready, now: number): Promise<Decided> {
    const { entry, spec, plan, defaults, workflow } = r;
    const row = tx.row;
    // Someone else moved the row on: take its view instead of writing.
    if (row.cron !== entry.cron || row.timezone !== entry.timezone || row.paused || row.nextFireAt !== entry.next) return { kind: "moved", row };
    const fires = defaults.ok ? plan.fires : [];
    // With allow and nothing pending, whether a run is unfinished changes nothing: no query.
    const unfinished = spec.overlap === "allow" && row.pendingFor === null ? false : await tx.unfinishedRun();
    const outcome = applyOverlap(spec.overlap, { unfinished, pending: row.pendingFor }, fires);
    const started: RunRecord[] = [];
    const params = defaults.ok ? defaults.params : undefined;
    for (const at of outcome.start) {
      const run = await tx.insertRun(this.newRun(workflow, entry.org, at, params, now));
      if (run) started.push(run);
    }
    const last = started[started.length - 1];
    const updated = await tx.update({ nextFireAt: plan.next, pendingFor: outcome.pending, ...(last ? { lastFireAt: last.scheduledFor, lastRunId: last.id } : {}) }, now);
    return { kind: "fired", row: updated, outcome, started, newlyPending: outcome.pending !== null && outcome.pending !== row.pendingFor ? outcome.pending : null };
  }

  /** After the commit: events, the runner, and the entry as it is next. */
  private async afterFire(r: Ready, result: Decided, now: number): Promise<Entry | null> {
    const { entry, spec, plan, defaults, workflow } = r;
    if (result.kind === "missing") {
      // The row is gone (it was never created, or removed by hand): create it again.
      await this.syncWorkflow(entry.workflow, "synced");
      return this.loop.get(entry.key) ?? null;
    }
    if (result.kind === "moved") {
      if (result.row.cron !== spec.cron || result.row.timezone !== spec.timezone) {
        await this.deps.registry.refresh(entry.workflow);
        await this.syncWorkflow(entry.workflow, "synced");
        return this.loop.get(entry.key) ?? null;
      }
      this.changed(result.row, "synced");
      return this.entryOf(result.row) ?? null;
    }
    if (!defaults.ok) {
      for (const at of plan.fires) this.skipped(entry, at, "params", now);
      const why = isBifrostError(defaults.error) ? defaults.error.message : String(defaults.error);
      this.deps.logger.error({ workflow: entry.workflow, org: entry.org }, `a scheduled fire started no run: ${why}; give every param a default so that a run without params is valid`);
    }
    if (plan.dropped) this.skipped(entry, null, "missed", now, entry.next ?? undefined);
    for (const at of result.outcome.skipped) this.skipped(entry, at, "overlap", now);
    for (const at of result.outcome.dropped) this.skipped(entry, at, "dropped", now);
    if (result.newlyPending !== null) this.skipped(entry, result.newlyPending, "queued", now);
    await this.announce(workflow, result.started, now, false);
    this.changed(result.row, "fired");
    return this.entryOf(result.row) ?? null;
  }

  /** A scheduled run ended: a fire pending behind it (overlap: queue) starts now. */
  private async promote(workflowName: string, org: string | null): Promise<void> {
    if (!this.started) return;
    const workflow = this.deps.registry.get(workflowName);
    const spec = workflow?.definition.schedule;
    if (!workflow || !spec) return;
    const now = this.deps.now();
    const defaults = this.defaultParams(workflow);
    if (!defaults.ok) return;
    const params = defaults.params;
    const started = await this.deps.storage.schedules.transact(workflowName, org, async (tx) => {
      if (tx.row.pendingFor === null || tx.row.paused) return [];
      const outcome = applyOverlap(spec.overlap, { unfinished: await tx.unfinishedRun(), pending: tx.row.pendingFor }, []);
      if (outcome.start.length === 0) return [];
      const runs: RunRecord[] = [];
      for (const at of outcome.start) {
        const run = await tx.insertRun(this.newRun(workflow, org, at, params, now));
        if (run) runs.push(run);
      }
      const last = runs[runs.length - 1];
      await tx.update({ pendingFor: outcome.pending, ...(last ? { lastFireAt: last.scheduledFor, lastRunId: last.id } : {}) }, now);
      return runs;
    });
    await this.announce(workflow, started ?? [], now, false);
  }

  /** Which workflow and orgs an operation acts on, as the caller may see them. */
  private async target(name: string, options: { org?: string | null | undefined; scope?: ScheduleScope }): Promise<{ registered: RegisteredWorkflow; orgs: (string | null)[] }> {
    const registered = this.deps.registry.get(name) ?? (await this.deps.registry.refresh(name));
    const spec = registered?.definition.schedule;
    const scopeOrg = options.scope?.org;
    const notFound = (why: string) =>
      new BifrostError("SCHEDULE_NOT_FOUND", `No schedule ${why}`, { details: { workflow: name, ...(options.org != null ? { org: options.org } : {}) } });
    if (!registered || !spec) throw notFound(`for workflow "${name}"${registered ? ": its definition declares none" : ""}`);
    const all = orgsOf(spec);
    // An org key acts in its org only; another org's schedule is answered as one that does not exist.
    let orgs = scopeOrg === undefined ? all : all.filter((o) => o === scopeOrg);
    if (options.org !== undefined) orgs = orgs.filter((o) => o === options.org);
    if (orgs.length === 0) throw notFound(`of workflow "${name}" for ${options.org != null ? `org "${options.org}"` : scopeOrg !== undefined ? "this key's org" : "that org"}`);
    return { registered, orgs };
  }

  private async setPaused(name: string, options: { org?: string | null | undefined; scope?: ScheduleScope }, paused: boolean): Promise<ScheduleView[]> {
    const { registered, orgs } = await this.target(name, options);
    const spec = registered.definition.schedule!;
    await this.seed([registered]);
    const now = this.deps.now();
    const next = paused ? undefined : nextFire(compileCron(spec.cron, spec.timezone), now);
    for (const org of orgs) {
      const row = await this.deps.storage.schedules.setPaused(name, org, paused, now, next);
      if (!row) continue;
      const key = keyOf(name, org);
      this.deferred.delete(key);
      const entry = this.entryOf(row);
      if (this.started) {
        if (entry) this.loop.set(entry);
        else this.loop.delete(key);
      }
      this.changed(row, paused ? "paused" : "resumed");
    }
    const views = await this.list({ workflow: name });
    return views.filter((v) => orgs.includes(v.org));
  }

  private view(workflow: string, org: string | null, spec: ScheduleDefinition, row: ScheduleRecord | undefined, now: number): ScheduleView {
    const current = row && row.cron === spec.cron && row.timezone === spec.timezone;
    return {
      workflow,
      org,
      cron: spec.cron,
      timezone: spec.timezone,
      overlap: spec.overlap,
      catchUp: spec.catchUp,
      // A row not yet written (no engine fired it yet) or written for an older cron: what it will be.
      nextFireAt: row?.paused ? null : current ? row.nextFireAt : nextFire(compileCron(spec.cron, spec.timezone), now),
      lastFireAt: row?.lastFireAt ?? null,
      lastRunId: row?.lastRunId ?? null,
      lastRunStatus: row?.lastRunStatus ?? null,
      paused: row?.paused ?? false,
      pausedAt: row?.pausedAt ?? null,
    };
  }
}
