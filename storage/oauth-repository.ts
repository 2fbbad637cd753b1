import { sql, type Kysely, type Selectable } from "kysely";
import type { Database, OAuthConnectionsTable, OAuthProvidersTable, OAuthStatesTable } from "./schema.js";
import type { ConsumedState, OAuthConnectionRecord, OAuthProviderRecord, OAuthRepository, OAuthStateRecord, OAuthTokens } from "./types.js";

/** "" stands for "no org" in key columns (see 0007_schedules). */
const orgKey = (org: string | null): string => org ?? "";
const orgOf = (key: string): string | null => (key === "" ? null : key);

function strings(text: string): string[] {
  const value: unknown = JSON.parse(text);
  return Array.isArray(value) ? value.filter((s): s is string => typeof s === "string") : [];
}

function toProvider(row: Selectable<OAuthProvidersTable>): OAuthProviderRecord {
  return {
    name: row.name,
    grantType: row.grant_type,
    authorizationUrl: row.authorization_url,
    tokenUrl: row.token_url,
    clientId: row.client_id,
    clientSecretSealed: row.client_secret,
    scopes: strings(row.scopes),
    redirectUri: row.redirect_uri,
    clientAuth: row.client_auth,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toConnection(row: Selectable<OAuthConnectionsTable>): OAuthConnectionRecord {
  return {
    provider: row.provider,
    org: orgOf(row.org),
    entityId: row.entity_id,
    accessTokenSealed: row.access_token,
    refreshTokenSealed: row.refresh_token,
    tokenType: row.token_type,
    expiresAt: row.expires_at,
    scopes: strings(row.scopes),
    status: row.status,
    connectedAt: row.connected_at,
    lastRefreshAt: row.last_refresh_at,
    lastFailure: row.last_failure === null ? null : (JSON.parse(row.last_failure) as unknown),
    failureCount: row.failure_count,
    nextRetryAt: row.next_retry_at,
    refreshOwner: row.refresh_owner,
    refreshUntil: row.refresh_until,
    generation: row.generation,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toState(row: Selectable<OAuthStatesTable>): OAuthStateRecord {
  return {
    id: row.id,
    provider: row.provider,
    org: orgOf(row.org),
    entityId: row.entity_id,
    codeVerifierSealed: row.code_verifier,
    redirectUri: row.redirect_uri,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    usedAt: row.used_at,
  };
}

const tokenColumns = (t: OAuthTokens) => ({
  access_token: t.accessTokenSealed,
  token_type: t.tokenType,
  expires_at: t.expiresAt,
  scopes: JSON.stringify(t.scopes),
});

/**
 * Providers, connections and authorizations in progress. Every change of a connection's tokens is
 * one statement, so an access token and the refresh token that came with it are never stored
 * apart; refresh writes are fenced by the refresh lease (owner and expiry checked in the statement).
 */
export function oauthRepository(db: Kysely<Database>): OAuthRepository {
  const getConnection = async (provider: string, org: string | null) => {
    const row = await db.selectFrom("oauth_connections").selectAll().where("provider", "=", provider).where("org", "=", orgKey(org)).executeTakeFirst();
    return row && toConnection(row);
  };
  const getProvider = async (name: string) => {
    const row = await db.selectFrom("oauth_providers").selectAll().where("name", "=", name).executeTakeFirst();
    return row && toProvider(row);
  };
  const ofConnection = (provider: string, org: string | null) => ({ provider, org: orgKey(org) });

  return {
    getProvider,
    async putProvider(r) {
      await db
        .insertInto("oauth_providers")
        .values({
          name: r.name,
          grant_type: r.grantType,
          authorization_url: r.authorizationUrl,
          token_url: r.tokenUrl,
          client_id: r.clientId,
          client_secret: r.clientSecretSealed,
          scopes: JSON.stringify(r.scopes),
          redirect_uri: r.redirectUri,
          client_auth: r.clientAuth,
          created_at: r.createdAt,
          updated_at: r.updatedAt,
        })
        .onConflict((oc) =>
          oc.column("name").doUpdateSet({
            grant_type: r.grantType,
            authorization_url: r.authorizationUrl,
            token_url: r.tokenUrl,
            client_id: r.clientId,
            client_secret: r.clientSecretSealed,
            scopes: JSON.stringify(r.scopes),
            redirect_uri: r.redirectUri,
            client_auth: r.clientAuth,
            updated_at: r.updatedAt,
          }),
        )
        .execute();
      const stored = await getProvider(r.name);
      if (!stored) throw new Error(`the OAuth provider ${r.name} was not stored`);
      return stored;
    },
    async listProviders() {
      return (await db.selectFrom("oauth_providers").selectAll().orderBy("name").execute()).map(toProvider);
    },
    async removeProvider(name) {
      return db.transaction().execute(async (trx) => {
        await trx.deleteFrom("oauth_connections").where("provider", "=", name).execute();
        await trx.deleteFrom("oauth_states").where("provider", "=", name).execute();
        const result = await trx.deleteFrom("oauth_providers").where("name", "=", name).executeTakeFirst();
        return Number(result.numDeletedRows) > 0;
      });
    },
    getConnection,
    async listConnections(filter = {}) {
      let query = db.selectFrom("oauth_connections").selectAll().orderBy("provider").orderBy("org");
      if (filter.provider !== undefined) query = query.where("provider", "=", filter.provider);
      if (filter.org !== undefined) query = query.where("org", "=", orgKey(filter.org));
      return (await query.execute()).map(toConnection);
    },
    async connect(provider, org, entityId, tokens, now) {
      const values = {
        ...tokenColumns(tokens),
        refresh_token: tokens.refreshTokenSealed,
        entity_id: entityId,
        status: "healthy",
        connected_at: now,
        last_refresh_at: now,
        last_failure: null,
        failure_count: 0,
        next_retry_at: null,
        refresh_owner: null,
        refresh_until: null,
        updated_at: now,
      };
      await db
        .insertInto("oauth_connections")
        .values({ ...ofConnection(provider, org), ...values, generation: 1, created_at: now })
        .onConflict((oc) => oc.columns(["provider", "org"]).doUpdateSet({ ...values, generation: sql<number>`oauth_connections.generation + 1` }))
        .execute();
      const stored = await getConnection(provider, org);
      if (!stored) throw new Error(`the ${provider} connection was not stored`);
      return stored;
    },
    async takeRefreshLease(provider, org, owner, until, now) {
      const row = await db
        .updateTable("oauth_connections")
        .set({ refresh_owner: owner, refresh_until: until })
        .where("provider", "=", provider)
        .where("org", "=", orgKey(org))
        .where((eb) => eb.or([eb("refresh_owner", "is", null), eb("refresh_until", "<", now), eb("refresh_owner", "=", owner)]))
        .returningAll()
        .executeTakeFirst();
      return row && toConnection(row);
    },
    async finishRefresh(provider, org, owner, outcome, now) {
      const base = { refresh_owner: null, refresh_until: null, updated_at: now };
      const update =
        "tokens" in outcome
          ? {
              ...base,
              ...tokenColumns(outcome.tokens),
              // A provider that does not rotate keeps the refresh token it issued before.
              refresh_token: outcome.tokens.refreshTokenSealed === null ? sql<string | null>`refresh_token` : outcome.tokens.refreshTokenSealed,
              status: "healthy",
              last_refresh_at: now,
              last_failure: null,
              failure_count: 0,
              next_retry_at: null,
              generation: sql<number>`generation + 1`,
            }
          : {
              ...base,
              status: outcome.status,
              last_failure: JSON.stringify(outcome.failure),
              failure_count: sql<number>`failure_count + 1`,
              next_retry_at: outcome.nextRetryAt,
            };
      const result = await db
        .updateTable("oauth_connections")
        .set(update)
        .where("provider", "=", provider)
        .where("org", "=", orgKey(org))
        .where("refresh_owner", "=", owner)
        .where("refresh_until", ">=", now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async recordFailure(provider, org, update, now) {
      // A first authorization that failed leaves a connection without tokens, so the failure and
      // its fix are where a person looks (connections list, diagnose).
      const failure = { status: update.status, last_failure: JSON.stringify(update.failure), next_retry_at: update.nextRetryAt, updated_at: now };
      await db
        .insertInto("oauth_connections")
        .values({ ...ofConnection(provider, org), ...failure, scopes: "[]", failure_count: 1, created_at: now })
        .onConflict((oc) => oc.columns(["provider", "org"]).doUpdateSet({ ...failure, failure_count: sql<number>`oauth_connections.failure_count + 1` }))
        .execute();
    },
    async releaseRefreshLease(provider, org, owner) {
      await db.updateTable("oauth_connections").set({ refresh_owner: null, refresh_until: null }).where("provider", "=", provider).where("org", "=", orgKey(org)).where("refresh_owner", "=", owner).execute();
    },
    async removeConnection(provider, org) {
      const result = await db.deleteFrom("oauth_connections").where("provider", "=", provider).where("org", "=", orgKey(org)).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async dueForRefresh(before, now, limit) {
      const rows = await db
        .selectFrom("oauth_connections")
        .select(["provider", "org"])
        .where((eb) =>
          eb.or([
            eb.and([eb("status", "=", "healthy"), eb("expires_at", "<", before)]),
            eb.and([eb("status", "=", "refresh_failed"), eb.or([eb("next_retry_at", "is", null), eb("next_retry_at", "<=", now)])]),
          ]),
        )
        .orderBy("expires_at")
        .limit(limit)
        .execute();
      return rows.map((r) => ({ provider: r.provider, org: orgOf(r.org) }));
    },
    async createState(r) {
      await db
        .insertInto("oauth_states")
        .values({
          id: r.id,
          provider: r.provider,
          org: orgKey(r.org),
          entity_id: r.entityId,
          code_verifier: r.codeVerifierSealed,
          redirect_uri: r.redirectUri,
          created_at: r.createdAt,
          expires_at: r.expiresAt,
          used_at: r.usedAt,
        })
        .execute();
    },
    async consumeState(id, now): Promise<ConsumedState> {
      // The update is the check: of two callbacks with one state, exactly one marks it used.
      const row = await db.updateTable("oauth_states").set({ used_at: now }).where("id", "=", id).where("used_at", "is", null).where("expires_at", ">", now).returningAll().executeTakeFirst();
      if (row) return { ok: true, state: toState(row) };
      const seen = await db.selectFrom("oauth_states").select(["used_at", "expires_at"]).where("id", "=", id).executeTakeFirst();
      if (!seen) return { ok: false, reason: "unknown" };
      return { ok: false, reason: seen.used_at !== null ? "used" : "expired" };
    },
    async pruneStates(before) {
      const result = await db.deleteFrom("oauth_states").where("expires_at", "<", before).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
