import { sql, type Kysely, type Selectable } from "kysely";
import type { Database, WebhookSecretsTable } from "./schema.js";
import type { SecretKeyCheckRepository, WebhookSecretRecord, WebhookSecretRepository } from "./types.js";

function toSecret(row: Selectable<WebhookSecretsTable>): WebhookSecretRecord {
  return { workflow: row.workflow, org: row.org === "" ? null : row.org, sealed: row.secret, createdAt: row.created_at, rotatedAt: row.rotated_at, previousSealed: row.previous_secret, previousUntil: row.previous_until };
}

export function webhookSecretRepository(db: Kysely<Database>): WebhookSecretRepository {
  const get = async (workflow: string, org: string | null) => {
    const row = await db.selectFrom("webhook_secrets").selectAll().where("workflow", "=", workflow).where("org", "=", org ?? "").executeTakeFirst();
    return row && toSecret(row);
  };
  return {
    get,
    async createIfAbsent(record) {
      // Two engines registering the same webhook workflow at once both end up with the first secret.
      await db
        .insertInto("webhook_secrets")
        .values({ workflow: record.workflow, org: record.org ?? "", secret: record.sealed, created_at: record.createdAt, rotated_at: null, previous_secret: null, previous_until: null })
        .onConflict((oc) => oc.columns(["workflow", "org"]).doNothing())
        .execute();
      const stored = await get(record.workflow, record.org);
      if (!stored) throw new Error(`the webhook secret of ${record.workflow} was not stored`);
      return stored;
    },
    async replace(workflow, org, sealed, now, previousUntil) {
      // In one statement: the secret being replaced (the row's old value) becomes the previous one.
      const previous = previousUntil === null ? { previous_secret: null, previous_until: null } : { previous_secret: sql<string>`secret`, previous_until: previousUntil };
      const row = await db.updateTable("webhook_secrets").set({ ...previous, secret: sealed, rotated_at: now }).where("workflow", "=", workflow).where("org", "=", org ?? "").returningAll().executeTakeFirst();
      return row && toSecret(row);
    },
  };
}

const CHECK_ID = "default";

export function secretKeyCheckRepository(db: Kysely<Database>): SecretKeyCheckRepository {
  const get = async () => (await db.selectFrom("secret_key_check").select("fingerprint").where("id", "=", CHECK_ID).executeTakeFirst())?.fingerprint;
  return {
    get,
    async remember(fingerprint, now) {
      await db.insertInto("secret_key_check").values({ id: CHECK_ID, fingerprint, created_at: now }).onConflict((oc) => oc.column("id").doNothing()).execute();
      const stored = await get();
      if (stored === undefined) throw new Error("the secret key fingerprint was not stored");
      return stored;
    },
  };
}
