import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";
import type { WorkflowVersionRecord, WorkflowVersionRepository } from "./types.js";

/** Statuses of runs that may still execute, and so still need their version's bundle. */
const UNFINISHED = sql`('queued', 'running')`;

export function workflowVersionRepository(db: Kysely<Database>): WorkflowVersionRepository {
  return {
    async put(r: WorkflowVersionRecord) {
      await db
        .insertInto("workflow_versions")
        .values({
          name: r.name,
          version: r.version,
          code: r.code,
          source_map: r.sourceMap,
          meta: JSON.stringify(r.meta),
          created_at: r.createdAt,
          source_kind: r.sourceKind,
          file: r.file,
          source: r.source,
        })
        .onConflict((oc) => oc.columns(["name", "version"]).doNothing())
        .execute();
    },

    async get(name, version) {
      const row = await db.selectFrom("workflow_versions").selectAll().where("name", "=", name).where("version", "=", version).executeTakeFirst();
      return (
        row && {
          name: row.name,
          version: row.version,
          code: row.code,
          sourceMap: row.source_map,
          meta: JSON.parse(row.meta) as unknown,
          createdAt: row.created_at,
          sourceKind: row.source_kind as WorkflowVersionRecord["sourceKind"],
          file: row.file,
          source: row.source,
        }
      );
    },

    async current(name) {
      const row = await db.selectFrom("workflows").select("version").where("name", "=", name).executeTakeFirst();
      return row?.version;
    },

    async currentAll() {
      return db.selectFrom("workflows").select(["name", "version"]).orderBy("name").execute();
    },

    async list(name) {
      const rows = await db.selectFrom("workflow_versions").select(["version", "created_at"]).where("name", "=", name).orderBy("created_at").orderBy("version").execute();
      return rows.map((r) => ({ version: r.version, createdAt: r.created_at }));
    },

    async sweep({ name, limit }) {
      // One statement: a run created after it started is either seen by it (its version stays) or
      // re-stores its version afterwards (WorkflowRegistry.retain), so no run loses its bundle.
      const unneeded = db
        .selectFrom("workflow_versions as v")
        .select(["v.name", "v.version"])
        .$if(name !== undefined, (q) => q.where("v.name", "=", name!))
        .where((eb) =>
          eb.and([
            eb.not(eb.exists(eb.selectFrom("workflows as w").select("w.name").whereRef("w.name", "=", "v.name").whereRef("w.version", "=", "v.version"))),
            eb.not(
              eb.exists(
                eb
                  .selectFrom("runs as r")
                  .select("r.id")
                  .whereRef("r.workflow", "=", "v.name")
                  .whereRef("r.workflow_version", "=", "v.version")
                  .where(sql.ref("r.status"), "in", UNFINISHED),
              ),
            ),
          ]),
        )
        .limit(limit)
        .$asTuple("name", "version");
      const result = await db
        .deleteFrom("workflow_versions")
        .where((eb) => eb(eb.refTuple("name", "version"), "in", unneeded))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
