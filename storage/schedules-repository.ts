import type { Kysely, Selectable } from "kysely";
import { runRow, toRun } from "./kysely-storage.js";
import type { Database, SchedulesTable } from "./schema.js";
import type { RunRecord, RunStatus, ScheduleRecord, ScheduleRepository, ScheduleSeed, ScheduleTx } from "./types.js";

/**
 * Schedule state per (workflow, org): the cron and zone its next fire was computed for, next and
 * last fire, paused, the one pending fire (overlap: queue). Fires themselves are runs, unique per
 * (workflow, org, scheduled_for) among runs with trigger "schedule" (index runs_schedule_fire), so a
 * fire inserted twice (two engines, a retried write) is one run. "No org" is stored as "" because
 * primary keys and unique indexes treat NULLs as all different.
 */

const NO_ORG = "";
const orgKey = (org: string | null) => org ?? NO_ORG;
/** Rows per multi-row statement (SQLite's bound-parameter limit is far above 500 × 12). */
const BATCH = 500;

function toSchedule(row: Selectable<SchedulesTable>): ScheduleRecord {
  return {
    workflow: row.workflow,
    org: row.org === NO_ORG ? null : row.org,
    cron: row.cron,
    timezone: row.timezone,
    nextFireAt: row.next_fire_at === null ? null : Number(row.next_fire_at),
    lastFireAt: row.last_fire_at === null ? null : Number(row.last_fire_at),
    lastRunId: row.last_run_id,
    paused: Number(row.paused) === 1,
    pausedAt: row.paused_at === null ? null : Number(row.paused_at),
    pendingFor: row.pending_for === null ? null : Number(row.pending_for),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    changedAt: Number(row.changed_at),
  };
}

type Db = Kysely<Database>;

/** The row (locked on PostgreSQL) and what a fire does with it, inside the transaction `trx`. */
async function openRow(trx: Db, workflow: string, org: string | null, dialect: "sqlite" | "postgres"): Promise<ScheduleTx | undefined> {
  const row = await trx
    .selectFrom("schedules")
    .selectAll()
    .where("workflow", "=", workflow)
    .where("org", "=", orgKey(org))
    .$if(dialect === "postgres", (qb) => qb.forUpdate())
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    row: toSchedule(row),
    async unfinishedRun() {
      const found = await trx
        .selectFrom("runs")
        .select("id")
        .where("workflow", "=", workflow)
        .where((eb) => (org === null ? eb("org", "is", null) : eb("org", "=", org)))
        .where("trigger", "=", "schedule")
        .where("status", "in", ["queued", "running"])
        .limit(1)
        .executeTakeFirst();
      return found !== undefined;
    },
    async insertRun(run): Promise<RunRecord | undefined> {
      // The fire may exist already (another engine created it): then nothing is inserted.
      const inserted = await trx.insertInto("runs").values(runRow(run)).onConflict((oc) => oc.doNothing()).returningAll().executeTakeFirst();
      return inserted && toRun(inserted);
    },
    async update(patch, now) {
      const set: { updated_at: number; next_fire_at?: number | null; last_fire_at?: number | null; last_run_id?: string | null; pending_for?: number | null } = { updated_at: now };
      if (patch.nextFireAt !== undefined) set.next_fire_at = patch.nextFireAt;
      if (patch.lastFireAt !== undefined) set.last_fire_at = patch.lastFireAt;
      if (patch.lastRunId !== undefined) set.last_run_id = patch.lastRunId;
      if (patch.pendingFor !== undefined) set.pending_for = patch.pendingFor;
      const updated = await trx.updateTable("schedules").set(set).where("workflow", "=", workflow).where("org", "=", orgKey(org)).returningAll().executeTakeFirstOrThrow();
      return toSchedule(updated);
    },
  };
}

export function scheduleRepository(db: Db, dialect: "sqlite" | "postgres"): ScheduleRepository {
  const key = (workflow: string, org: string | null) => db.selectFrom("schedules").selectAll().where("workflow", "=", workflow).where("org", "=", orgKey(org));

  return {
    async sync(seeds: readonly ScheduleSeed[], now: number) {
      const out: ScheduleRecord[] = [];
      for (let i = 0; i < seeds.length; i += BATCH) {
        const batch = seeds.slice(i, i + BATCH);
        const rows = batch.map((s) => ({
          workflow: s.workflow,
          org: orgKey(s.org),
          cron: s.cron,
          timezone: s.timezone,
          next_fire_at: s.nextFireAt,
          last_fire_at: null,
          last_run_id: null,
          paused: 0,
          paused_at: null,
          pending_for: null,
          created_at: now,
          updated_at: now,
          changed_at: now,
        }));
        // A row computed for another cron or zone starts over from the given next fire: the old
        // expression's fires (and its pending one) never happen. Paused and last fire are kept.
        await db
          .insertInto("schedules")
          .values(rows)
          .onConflict((oc) =>
            oc
              .columns(["workflow", "org"])
              .doUpdateSet((eb) => ({
                cron: eb.ref("excluded.cron"),
                timezone: eb.ref("excluded.timezone"),
                next_fire_at: eb.ref("excluded.next_fire_at"),
                pending_for: null,
                updated_at: eb.ref("excluded.updated_at"),
                changed_at: eb.ref("excluded.changed_at"),
              }))
              // A row with no next fire is retired (its schedule was gone) or never fires: recompute.
              .where((eb) => eb.or([eb("schedules.cron", "<>", eb.ref("excluded.cron")), eb("schedules.timezone", "<>", eb.ref("excluded.timezone")), eb("schedules.next_fire_at", "is", null)])),
          )
          .execute();
        const workflows = [...new Set(batch.map((s) => s.workflow))];
        const wanted = new Set(batch.map((s) => `${s.workflow}\u0000${orgKey(s.org)}`));
        const read = await db.selectFrom("schedules").selectAll().where("workflow", "in", workflows).execute();
        for (const row of read) if (wanted.has(`${row.workflow}\u0000${row.org}`)) out.push(toSchedule(row));
      }
      return out;
    },

    async get(workflow, org) {
      const row = await key(workflow, org).executeTakeFirst();
      return row && toSchedule(row);
    },

    async list(filter) {
      let q = db.selectFrom("schedules").leftJoin("runs", "runs.id", "schedules.last_run_id").selectAll("schedules").select("runs.status as last_run_status");
      if (filter.workflow !== undefined) q = q.where("schedules.workflow", "=", filter.workflow);
      if (filter.org !== undefined) q = q.where("schedules.org", "=", orgKey(filter.org));
      const rows = await q.orderBy("schedules.workflow").orderBy("schedules.org").execute();
      return rows.map((row) => ({ ...toSchedule(row), lastRunStatus: (row.last_run_status ?? null) as RunStatus | null }));
    },

    async attention(since, dueBefore, limit) {
      const rows = await db
        .selectFrom("schedules")
        .selectAll()
        .where((eb) => eb.or([eb("changed_at", ">", since), eb.and([eb("paused", "=", 0), eb("next_fire_at", "<", dueBefore)]), eb("pending_for", "is not", null)]))
        .orderBy("changed_at")
        .limit(limit)
        .execute();
      return rows.map(toSchedule);
    },

    async setPaused(workflow, org, paused, now, nextFireAt) {
      const rows = await db
        .updateTable("schedules")
        .set({
          paused: paused ? 1 : 0,
          paused_at: paused ? now : null,
          updated_at: now,
          changed_at: now,
          // Nothing accumulates while paused: the pending fire goes, and resuming starts from now.
          pending_for: null,
          ...(nextFireAt === undefined ? {} : { next_fire_at: nextFireAt }),
        })
        .where("workflow", "=", workflow)
        .where("org", "=", orgKey(org))
        .where("paused", "=", paused ? 0 : 1)
        .returningAll()
        .execute();
      return rows[0] && toSchedule(rows[0]);
    },

    async transact(workflow, org, fn) {
      return db.transaction().execute(async (trx) => {
        const tx = await openRow(trx, workflow, org, dialect);
        return tx ? fn(tx) : undefined;
      });
    },

    async transactMany(fn) {
      return db.transaction().execute((trx) => fn((workflow, org) => openRow(trx, workflow, org, dialect)));
    },
  };
}
