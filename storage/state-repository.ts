import type { Kysely, Selectable } from "kysely";
import { leaseLost, underLease } from "./kysely-storage.js";
import type { Database, WorkflowStateTable } from "./schema.js";
import type { Lease, StateRecord, StateRepository } from "./types.js";

/**
 * ctx.state: small JSON values per (workflow, org) that runs keep between them (a delta token, a
 * cursor). A run's writes are fenced by its lease in the transaction that writes, and take the
 * workflow and org from the leased run's row, so an invocation can neither write after losing its
 * run nor write into another workflow's or org's state. "No org" is stored as "" (org names start
 * with a letter or digit, so it is never an org's).
 */

const NO_ORG = "";
const orgKey = (org: string | null) => org ?? NO_ORG;

function toState(row: Selectable<WorkflowStateTable>): StateRecord {
  return {
    workflow: row.workflow,
    org: row.org_key === NO_ORG ? null : row.org_key,
    key: row.key,
    value: JSON.parse(row.value) as unknown,
    updatedAt: row.updated_at,
    updatedByRun: row.updated_by_run,
  };
}

type Db = Kysely<Database>;

/** The leased run's workflow and org, in the transaction that writes; LEASE_LOST otherwise. */
async function leasedScope(trx: Db, lease: Lease): Promise<{ workflow: string; org: string }> {
  const run = await underLease(trx, lease).select(["workflow", "org"]).executeTakeFirst();
  if (!run) throw leaseLost(lease);
  return { workflow: run.workflow, org: orgKey(run.org) };
}

export function stateRepository(db: Db): StateRepository {
  const rows = (q: Db, workflow: string, org: string) => q.selectFrom("workflow_state").where("workflow", "=", workflow).where("org_key", "=", org);
  const remove = (q: Db, workflow: string, org: string, key: string) =>
    q.deleteFrom("workflow_state").where("workflow", "=", workflow).where("org_key", "=", org).where("key", "=", key).executeTakeFirst();

  return {
    async get(workflow, org, key) {
      const row = await rows(db, workflow, orgKey(org)).selectAll().where("key", "=", key).executeTakeFirst();
      return row && toState(row);
    },

    async list(workflow, org) {
      return (await rows(db, workflow, orgKey(org)).selectAll().orderBy("key").execute()).map(toState);
    },

    async set(lease, { key, json, now, maxKeys }) {
      return db.transaction().execute(async (trx) => {
        const { workflow, org } = await leasedScope(trx, lease);
        const exists = await rows(trx, workflow, org).select("key").where("key", "=", key).executeTakeFirst();
        if (!exists) {
          // Counted in the writing transaction: on SQLite it is exclusive, so the cap holds exactly.
          const { count } = await rows(trx, workflow, org).select((eb) => eb.fn.countAll<number>().as("count")).executeTakeFirstOrThrow();
          if (Number(count) >= maxKeys) return { ok: false as const, keys: Number(count) };
        }
        const values = { value: json, updated_at: now, updated_by_run: lease.runId };
        await trx
          .insertInto("workflow_state")
          .values({ workflow, org_key: org, key, ...values })
          .onConflict((oc) => oc.columns(["workflow", "org_key", "key"]).doUpdateSet(values))
          .execute();
        return { ok: true as const };
      });
    },

    async delete(lease, key) {
      return db.transaction().execute(async (trx) => {
        const { workflow, org } = await leasedScope(trx, lease);
        return Number((await remove(trx, workflow, org, key)).numDeletedRows) > 0;
      });
    },

    async reset(workflow, org, key) {
      return Number((await remove(db, workflow, orgKey(org), key)).numDeletedRows) > 0;
    },
  };
}
