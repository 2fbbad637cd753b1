import { sql, type Kysely, type Migration, type MigrationProvider } from "kysely";

type Dialect = "sqlite" | "postgres";

/**
 * Versioned migrations, kept in code (not loaded from files) so they run the same from TypeScript
 * sources, tests and any bundle. Append new entries; never edit a released one.
 */
function migrations(dialect: Dialect): Record<string, Migration> {
  // Epoch-millisecond columns need 64 bits on PostgreSQL; SQLite integers are 64-bit already.
  const time = dialect === "postgres" ? "bigint" : "integer";
  return {
    "0001_initial": {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable("workflows")
          .addColumn("name", "text", (c) => c.primaryKey())
          .addColumn("version", "text", (c) => c.notNull())
          .addColumn("source_kind", "text", (c) => c.notNull())
          .addColumn("file", "text")
          .addColumn("source", "text", (c) => c.notNull())
          .addColumn("code", "text", (c) => c.notNull())
          .addColumn("source_map", "text", (c) => c.notNull())
          .addColumn("meta", "text", (c) => c.notNull())
          .addColumn("registered_at", time, (c) => c.notNull())
          .addColumn("updated_at", time, (c) => c.notNull())
          .execute();

        await db.schema
          .createTable("runs")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("workflow", "text", (c) => c.notNull())
          .addColumn("workflow_version", "text")
          .addColumn("org", "text")
          .addColumn("trigger", "text", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("params", "text")
          .addColumn("result", "text")
          .addColumn("error", "text")
          .addColumn("attempt", "integer", (c) => c.notNull().defaultTo(1))
          .addColumn("idempotency_key", "text")
          .addColumn("queued_at", time, (c) => c.notNull())
          .addColumn("run_at", time, (c) => c.notNull())
          .addColumn("started_at", time)
          .addColumn("finished_at", time)
          .addColumn("scheduled_for", time)
          .addColumn("lease_owner", "text")
          .addColumn("lease_until", time)
          .execute();
        await db.schema.createIndex("runs_claim").on("runs").columns(["status", "run_at"]).execute();
        await db.schema.createIndex("runs_workflow").on("runs").columns(["workflow", "id"]).execute();
        await db.schema
          .createIndex("runs_idempotency")
          .on("runs")
          .columns(["workflow", "idempotency_key"])
          .unique()
          .where(sql.ref("idempotency_key"), "is not", null)
          .execute();

        await db.schema
          .createTable("steps")
          .addColumn("run_id", "text", (c) => c.notNull().references("runs.id").onDelete("cascade"))
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("result", "text")
          .addColumn("error", "text")
          .addColumn("attempts", "integer", (c) => c.notNull())
          .addColumn("started_at", time, (c) => c.notNull())
          .addColumn("finished_at", time)
          .addPrimaryKeyConstraint("steps_pk", ["run_id", "name"])
          .execute();

        await db.schema
          .createTable("logs")
          .addColumn("run_id", "text", (c) => c.notNull().references("runs.id").onDelete("cascade"))
          .addColumn("seq", "integer", (c) => c.notNull())
          .addColumn("ts", time, (c) => c.notNull())
          .addColumn("level", "integer", (c) => c.notNull())
          .addColumn("msg", "text", (c) => c.notNull())
          .addColumn("data", "text")
          .addColumn("step", "text")
          .addPrimaryKeyConstraint("logs_pk", ["run_id", "seq"])
          .execute();
      },
    },
    "0002_lease_token": {
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable("runs").addColumn("lease_token", "integer", (c) => c.notNull().defaultTo(0)).execute();
      },
    },
    "0003_api_keys": {
      async up(db: Kysely<unknown>) {
        // Only a hash of each key is kept: the key itself is shown once, when it is created.
        await db.schema
          .createTable("api_keys")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("role", "text", (c) => c.notNull())
          .addColumn("org", "text")
          .addColumn("key_hash", "text", (c) => c.notNull())
          .addColumn("created_at", time, (c) => c.notNull())
          .addColumn("last_used_at", time)
          .addColumn("revoked_at", time)
          .execute();
      },
    },
    "0004_workflow_versions": {
      async up(db: Kysely<unknown>) {
        // The bundle of every version that is current or that a queued or running run still needs
        // (storage/workflow-versions-repository.ts sweeps the others): a run executes the version it
        // was triggered with. Versions are content hashes, so a row never changes once written.
        await db.schema
          .createTable("workflow_versions")
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("version", "text", (c) => c.notNull())
          .addColumn("code", "text", (c) => c.notNull())
          .addColumn("source_map", "text", (c) => c.notNull())
          .addColumn("meta", "text", (c) => c.notNull())
          .addColumn("created_at", time, (c) => c.notNull())
          // Where the version came from, so that a run of it reads as the registration it was.
          .addColumn("source_kind", "text", (c) => c.notNull())
          .addColumn("file", "text")
          .addColumn("source", "text", (c) => c.notNull())
          .addPrimaryKeyConstraint("workflow_versions_pk", ["name", "version"])
          .execute();
        await sql`insert into workflow_versions (name, version, code, source_map, meta, created_at, source_kind, file, source)
                  select name, version, code, source_map, meta, updated_at, source_kind, file, source from workflows`.execute(db);
        // What the sweep asks for each version: is any unfinished run still on it?
        await db.schema
          .createIndex("runs_unfinished_version")
          .on("runs")
          .columns(["workflow", "workflow_version"])
          .where(sql.ref("status"), "in", sql`('queued', 'running')`)
          .execute();
      },
    },
    "0005_run_control": {
      async up(db: Kysely<unknown>) {
        // A cancel asked for while some engine executes the run: that engine's runner polls for it
        // and stops the invocation (engine/runner/runner.ts). Never cleared: a run that carries it
        // does not go back to the queue.
        await db.schema.alterTable("runs").addColumn("cancel_requested_at", time).execute();
        // The run a retry was made from (trigger "retry"); its succeeded steps were copied over.
        await db.schema.alterTable("runs").addColumn("retry_of", "text").execute();
      },
    },
    "0006_webhooks": {
      async up(db: Kysely<unknown>) {
        // Sealed with the engine's secret key (engine/secrets): AES-256-GCM, never stored in the clear.
        await db.schema
          .createTable("webhook_secrets")
          .addColumn("workflow", "text", (c) => c.primaryKey())
          .addColumn("secret", "text", (c) => c.notNull())
          .addColumn("created_at", time, (c) => c.notNull())
          .addColumn("rotated_at", time)
          .execute();
        // One row: a one-way fingerprint of the key that sealed this database's secrets, so that a
        // wrong key is refused at startup instead of failing to open secrets later.
        await db.schema
          .createTable("secret_key_check")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("fingerprint", "text", (c) => c.notNull())
          .addColumn("created_at", time, (c) => c.notNull())
          .execute();
      },
    },
    "0007_schedules": {
      async up(db: Kysely<unknown>) {
        // Schedule state per workflow and org ("" = no org: key columns cannot hold NULL in
        // PostgreSQL, and NULLs never collide in a unique index). Paused survives restarts and
        // re-registration; cron/timezone say what next_fire_at was computed for.
        await db.schema
          .createTable("schedules")
          .addColumn("workflow", "text", (c) => c.notNull())
          .addColumn("org", "text", (c) => c.notNull())
          .addColumn("cron", "text", (c) => c.notNull())
          .addColumn("timezone", "text", (c) => c.notNull())
          .addColumn("next_fire_at", time)
          .addColumn("last_fire_at", time)
          .addColumn("last_run_id", "text")
          .addColumn("paused", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("paused_at", time)
          .addColumn("pending_for", time)
          .addColumn("created_at", time, (c) => c.notNull())
          .addColumn("updated_at", time, (c) => c.notNull())
          // Set by what other engines must hear of (pause, resume, a new cron or zone), not by fires.
          .addColumn("changed_at", time, (c) => c.notNull())
          .addPrimaryKeyConstraint("schedules_pk", ["workflow", "org"])
          .execute();
        await db.schema.createIndex("schedules_changed").on("schedules").column("changed_at").execute();
        await db.schema.createIndex("schedules_next").on("schedules").columns(["paused", "next_fire_at"]).execute();
        // Exactly once: a fire is a run, and the database refuses a second run of the same fire
        // whichever engine (or retry of a write) tries to insert it.
        await sql`create unique index runs_schedule_fire on runs (workflow, coalesce(org, ''), scheduled_for) where trigger = 'schedule'`.execute(db);
      },
    },
    "0008_oauth": {
      async up(db: Kysely<unknown>) {
        // Client secrets, tokens and PKCE verifiers are sealed (engine/secrets): never in the clear.
        await db.schema
          .createTable("oauth_providers")
          .addColumn("name", "text", (c) => c.primaryKey())
          .addColumn("grant_type", "text", (c) => c.notNull())
          .addColumn("authorization_url", "text")
          .addColumn("token_url", "text", (c) => c.notNull())
          .addColumn("client_id", "text", (c) => c.notNull())
          .addColumn("client_secret", "text")
          .addColumn("scopes", "text", (c) => c.notNull())
          .addColumn("redirect_uri", "text")
          .addColumn("created_at", time, (c) => c.notNull())
          .addColumn("updated_at", time, (c) => c.notNull())
          .execute();
        // One connection per provider and org ("" = the global one, as in schedules). `generation`
        // grows with every token saved, so a refresh that started from an older token never
        // overwrites a newer one; refresh_owner/refresh_until is the cross-process refresh lease,
        // held only for the time of one token call.
        await db.schema
          .createTable("oauth_connections")
          .addColumn("provider", "text", (c) => c.notNull())
          .addColumn("org", "text", (c) => c.notNull())
          .addColumn("entity_id", "text")
          .addColumn("access_token", "text")
          .addColumn("refresh_token", "text")
          .addColumn("token_type", "text")
          .addColumn("expires_at", time)
          .addColumn("scopes", "text", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("connected_at", time)
          .addColumn("last_refresh_at", time)
          .addColumn("last_failure", "text")
          .addColumn("failure_count", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("next_retry_at", time)
          .addColumn("refresh_owner", "text")
          .addColumn("refresh_until", time)
          .addColumn("generation", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("created_at", time, (c) => c.notNull())
          .addColumn("updated_at", time, (c) => c.notNull())
          .addPrimaryKeyConstraint("oauth_connections_pk", ["provider", "org"])
          .execute();
        await db.schema.createIndex("oauth_connections_expiry").on("oauth_connections").columns(["status", "expires_at"]).execute();
        // An authorization in progress: the state's hash (the state itself only travels to the
        // provider and back), single-use and expiring, with the PKCE verifier for its code.
        await db.schema
          .createTable("oauth_states")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("provider", "text", (c) => c.notNull())
          .addColumn("org", "text", (c) => c.notNull())
          .addColumn("entity_id", "text")
          .addColumn("code_verifier", "text", (c) => c.notNull())
          .addColumn("redirect_uri", "text", (c) => c.notNull())
          .addColumn("created_at", time, (c) => c.notNull())
          .addColumn("expires_at", time, (c) => c.notNull())
          .addColumn("used_at", time)
          .execute();
      },
    },
    "0009_workflow_state": {
      async up(db: Kysely<unknown>) {
        // ctx.state: small JSON values per workflow and org kept across runs. org_key "" is "no
        // org" (as in schedules: key columns cannot hold NULL, and NULLs never collide).
        await db.schema
          .createTable("workflow_state")
          .addColumn("workflow", "text", (c) => c.notNull())
          .addColumn("org_key", "text", (c) => c.notNull())
          .addColumn("key", "text", (c) => c.notNull())
          .addColumn("value", "text", (c) => c.notNull())
          .addColumn("updated_at", time, (c) => c.notNull())
          .addColumn("updated_by_run", "text")
          .addPrimaryKeyConstraint("workflow_state_pk", ["workflow", "org_key", "key"])
          .execute();
      },
    },
    "0010_chunk_progress": {
      async up(db: Kysely<unknown>) {
        // How many chunks each ctx.chunks call of a run has, written when the call starts; how many
        // are done is counted from its committed chunk steps, so the two can never disagree.
        await db.schema
          .createTable("run_chunks")
          .addColumn("run_id", "text", (c) => c.notNull().references("runs.id").onDelete("cascade"))
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("total", "integer", (c) => c.notNull())
          .addColumn("started_at", time, (c) => c.notNull())
          .addPrimaryKeyConstraint("run_chunks_pk", ["run_id", "name"])
          .execute();
      },
    },
    "0011_idempotency_per_org": {
      async up(db: Kysely<unknown>) {
        // An idempotency key names one request of one org: the same key from another org is that
        // org's own request, not a conflict that tells it the key is taken. Keys unique per
        // workflow were unique per (workflow, org) too, so the old rows satisfy the new index.
        await db.schema.dropIndex("runs_idempotency").execute();
        await sql`create unique index runs_idempotency on runs (workflow, coalesce(org, ''), idempotency_key) where idempotency_key is not null`.execute(db);
      },
    },
    "0012_webhook_rotation_grace": {
      async up(db: Kysely<unknown>) {
        // The secret a rotation replaced, still accepted until previous_until, so senders can move
        // to the new one without a window of refused calls. Sealed like the current one.
        await db.schema.alterTable("webhook_secrets").addColumn("previous_secret", "text").execute();
        await db.schema.alterTable("webhook_secrets").addColumn("previous_until", time).execute();
      },
    },
    "0013_oauth_client_auth": {
      async up(db: Kysely<unknown>) {
        // How the client authenticates at the token endpoint: form fields (what Microsoft and
        // HaloPSA document, the default) or HTTP Basic (what some providers require).
        await db.schema.alterTable("oauth_providers").addColumn("client_auth", "text", (c) => c.notNull().defaultTo("client_secret_post")).execute();
      },
    },
    "0014_webhook_secrets_per_org": {
      async up(db: Kysely<unknown>) {
        // A webhook secret per workflow and org ("" = the org-less hook, the one secret there was):
        // one client's sender cannot start another client's runs. The key changes, so the table is
        // rebuilt; every existing secret becomes its workflow's org-less one, sealed as before.
        await db.schema
          .createTable("webhook_secrets_by_org")
          .addColumn("workflow", "text", (c) => c.notNull())
          .addColumn("org", "text", (c) => c.notNull())
          .addColumn("secret", "text", (c) => c.notNull())
          .addColumn("created_at", time, (c) => c.notNull())
          .addColumn("rotated_at", time)
          .addColumn("previous_secret", "text")
          .addColumn("previous_until", time)
          .addPrimaryKeyConstraint("webhook_secrets_pk", ["workflow", "org"])
          .execute();
        await sql`insert into webhook_secrets_by_org (workflow, org, secret, created_at, rotated_at, previous_secret, previous_until)
                  select workflow, '', secret, created_at, rotated_at, previous_secret, previous_until from webhook_secrets`.execute(db);
        await db.schema.dropTable("webhook_secrets").execute();
        await db.schema.alterTable("webhook_secrets_by_org").renameTo("webhook_secrets").execute();
      },
    },
  };
}

export class CodeMigrationProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.dialect);
  }
}
