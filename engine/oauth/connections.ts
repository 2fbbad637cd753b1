import { createHash } from "node:crypto";
import { setTimeout as wait } from "node:timers/promises";
import { BifrostError, type ErrorCode } from "../../common/errors.js";
import type { OAuthConnectionRecord, OAuthProviderRecord, OAuthTokens, Storage } from "../../storage/types.js";
import type { Logger } from "../logger.js";
import type { SecretBox } from "../secrets/key.js";
import type { AuthHeaderOptions, ConnectionProvider } from "../http/connection.js";
import { classifyOAuthFailure, describeError, type ClassifiedFailure, type FailureSignal } from "./classify.js";
import { defaultRedirectUri, ENTITY_ID, fillEntity, openClientSecret } from "./providers.js";
import * as tokens from "./token-client.js";
import type { ConnectionStatus, ConnectionView, FailureView } from "./types.js";

/**
 * Connections and their tokens: always fresh when handed out, refreshed once however many callers
 * ask at the same time. In one process a map of refreshes in flight joins callers of the same
 * connection; across processes the connection's refresh lease (a row update, never a lock held
 * across the HTTP call) picks one refresher, and everyone re-reads the stored token after it.
 * Every failure is classified once, logged once as `oauth_failure`, and stored on the connection.
 */

export interface OAuthConnectionsOptions {
  storage: Storage;
  secrets: SecretBox;
  logger: Logger;
  now: () => number;
  /** The refresh lease's holder name: unique per engine process. */
  owner: string;
  publicUrl: string;
  /** A token expiring within this is refreshed before it is handed out. @default 300000 */
  refreshSkewMs?: number;
  /** How long a refresh lease lasts; a refresher that died is replaced after it. @default 90000 */
  leaseMs?: number;
  /** How often a caller looks whether another engine's refresh finished. @default 100 */
  leasePollMs?: number;
  /** How long an authorization link stays valid. @default 600000 */
  stateTtlMs?: number;
}

/** A fresh token as ctx.oauth hands it out (a secret: the caller must keep it out of logs). */
export interface AccessGrant {
  provider: string;
  /** The org of the connection that was used: the run's org, or null for the global one. */
  org: string | null;
  accessToken: string;
  tokenType: string;
  expiresAt: number;
  scopes: string[];
}

export type CallbackOutcome =
  | { ok: true; provider: string; org: string | null; connection: ConnectionView }
  | { ok: false; provider: string | null; org: string | null; code: ErrorCode; failure: FailureView };

/** A token without an expiry is treated as expiring after this (DESIGN §9). */
const DEFAULT_TOKEN_LIFETIME_MS = 3_600_000;
/** Transient failures of one refresh are tried again this many times, after these delays. */
const IN_CALL_RETRY_DELAYS_MS = [250, 1000];
/** A refresh_failed connection is tried again after 30 s, doubling up to an hour. */
const RETRY_BASE_MS = 30_000;
const RETRY_CAP_MS = 3_600_000;

const key = (provider: string, org: string | null) => `${provider}\u0000${org ?? ""}`;
const tokenContext = (provider: string, org: string | null, which: "access_token" | "refresh_token") => `oauth-connection:${provider}:${org ?? ""}:${which}`;
const verifierContext = (id: string) => `oauth-state:${id}`;
export const stateId = (state: string) => createHash("sha256").update(state).digest("base64url");

function failureView(f: ClassifiedFailure, at: number): FailureView {
  return { category: f.category, code: f.code, message: f.description, fix: f.fix, at };
}

function readFailure(value: unknown): FailureView | null {
  if (value === null || typeof value !== "object") return null;
  const v = value as Record<string, unknown>;
  if (typeof v.category !== "string" || typeof v.message !== "string" || typeof v.fix !== "string") return null;
  return { category: v.category as FailureView["category"], code: typeof v.code === "string" ? v.code : null, message: v.message, fix: v.fix, at: typeof v.at === "number" ? v.at : 0 };
}

/** The error a classified failure is for the API, the CLI and a run: its category and fix go with it. */
function categorizedError(code: ErrorCode, subject: string, f: FailureView | ClassifiedFailure): BifrostError {
  const description = "description" in f ? f.description : f.message;
  return new BifrostError(code, `${subject}: ${f.category}${f.code ? ` (${f.code})` : ""}: ${description}`, { category: f.category, fix: f.fix, details: { category: f.category, providerCode: f.code } });
}

const failureError = (f: ClassifiedFailure, subject: string): BifrostError => categorizedError(f.retryable ? "OAUTH_UNAVAILABLE" : "OAUTH_FAILED", subject, f);

export class OAuthConnections implements ConnectionProvider {
  private readonly inFlight = new Map<string, Promise<AccessGrant>>();
  private readonly skewMs: number;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly stateTtlMs: number;

  constructor(private readonly o: OAuthConnectionsOptions) {
    this.skewMs = o.refreshSkewMs ?? 300_000;
    this.leaseMs = o.leaseMs ?? 90_000;
    this.pollMs = o.leasePollMs ?? 100;
    this.stateTtlMs = o.stateTtlMs ?? 600_000;
  }

  get refreshSkew(): number {
    return this.skewMs;
  }

  // --- handing out tokens ---------------------------------------------------------------------

  /** The org's own connection, else the global one. */
  async resolve(provider: string, org: string | null): Promise<OAuthConnectionRecord | undefined> {
    if (org !== null) {
      const own = await this.o.storage.oauth.getConnection(provider, org);
      if (own) return own;
    }
    return this.o.storage.oauth.getConnection(provider, null);
  }

  /** A fresh token of `provider` for `org` (org first, then global). `forceRefresh`: the last one was refused. */
  async token(provider: string, org: string | null, options: { forceRefresh?: boolean; signal?: AbortSignal } = {}): Promise<AccessGrant> {
    const conn = await this.resolve(provider, org);
    if (!conn) {
      const known = await this.o.storage.oauth.getProvider(provider);
      const where = org === null ? "globally" : `for org "${org}" or globally`;
      throw new BifrostError("CONNECTION_NOT_FOUND", known ? `provider "${provider}" is not connected ${where}` : `there is no OAuth provider "${provider}" and no connection of that name ${where}`);
    }
    if (conn.status === "needs_reauth") throw this.reauthError(conn);
    if (!options.forceRefresh && conn.accessTokenSealed !== null && this.isFresh(conn)) return this.grant(conn);
    return untilAborted(this.refreshShared(conn, options.forceRefresh === true), options.signal);
  }

  async authHeader(provider: string, org: string | null, options: AuthHeaderOptions): Promise<string> {
    const grant = await this.token(provider, org, options);
    return authorization(grant);
  }

  /** An API refused the connection's fresh token: classified, logged and kept as its last failure. */
  async apiRefused(provider: string, org: string | null, answer: { status: number; wwwAuthenticate?: string }): Promise<{ category: string; fix: string }> {
    const conn = await this.resolve(provider, org);
    const signal: FailureSignal = { kind: "http_status", where: "api", status: answer.status, ...(answer.wwwAuthenticate ? { wwwAuthenticate: answer.wwwAuthenticate } : {}) };
    const failure = this.classify(signal, provider, conn?.org ?? org);
    if (conn) await this.o.storage.oauth.recordFailure(conn.provider, conn.org, { status: conn.status, failure: failureView(failure, this.o.now()), nextRetryAt: conn.nextRetryAt }, this.o.now());
    return { category: failure.category, fix: failure.fix };
  }

  /**
   * Far enough from its expiry to hand out. The window is the refresh skew, but at most half the
   * token's lifetime: a provider that issues 60-second tokens is not asked for a new one on every use.
   */
  private isFresh(conn: OAuthConnectionRecord): boolean {
    return conn.expiresAt !== null && conn.expiresAt - this.o.now() > this.refreshWindow(conn, conn.expiresAt);
  }

  private refreshWindow(conn: OAuthConnectionRecord, expiresAt: number): number {
    const issuedAt = conn.lastRefreshAt ?? conn.connectedAt ?? expiresAt;
    return Math.min(this.skewMs, Math.max(0, expiresAt - issuedAt) / 2);
  }

  private isValid(conn: OAuthConnectionRecord): boolean {
    return conn.accessTokenSealed !== null && conn.expiresAt !== null && conn.expiresAt > this.o.now();
  }

  private grant(conn: OAuthConnectionRecord): AccessGrant {
    return {
      provider: conn.provider,
      org: conn.org,
      accessToken: this.o.secrets.open(conn.accessTokenSealed ?? "", tokenContext(conn.provider, conn.org, "access_token")),
      tokenType: conn.tokenType ?? "bearer",
      expiresAt: conn.expiresAt ?? this.o.now(),
      scopes: conn.scopes,
    };
  }

  private reauthError(conn: OAuthConnectionRecord): BifrostError {
    const failure = readFailure(conn.lastFailure);
    const subject = `the ${conn.provider} connection${conn.org === null ? "" : ` of org "${conn.org}"`} needs to be connected again`;
    return failure ? categorizedError("OAUTH_NEEDS_REAUTH", subject, failure) : new BifrostError("OAUTH_NEEDS_REAUTH", subject);
  }

  /**
   * One refresh per connection in this process; callers that arrive meanwhile share its outcome.
   * It is everyone's, so no caller's signal stops it: a caller whose invocation ends stops waiting
   * (untilAborted), the others still get the token.
   */
  private refreshShared(conn: OAuthConnectionRecord, force: boolean): Promise<AccessGrant> {
    const k = key(conn.provider, conn.org);
    const running = this.inFlight.get(k);
    if (running) return running;
    const started = this.refreshLeased(conn.provider, conn.org, conn.generation, force).finally(() => this.inFlight.delete(k));
    this.inFlight.set(k, started);
    return started;
  }

  /**
   * Refreshes under the connection's lease. `seen` is the generation the caller found stale: a
   * newer one stored by another engine meanwhile is used instead of refreshing again.
   */
  private async refreshLeased(provider: string, org: string | null, seen: number, force: boolean): Promise<AccessGrant> {
    const { storage, owner, now } = { storage: this.o.storage, owner: this.o.owner, now: this.o.now };
    // A token another engine stored since the caller looked is the refresh the caller wanted.
    const newer = (c: OAuthConnectionRecord) => c.generation > seen && this.isValid(c);
    for (let round = 0; ; round++) {
      const leased = await storage.oauth.takeRefreshLease(provider, org, owner, now() + this.leaseMs, now());
      if (!leased) {
        const after = await this.awaitOtherRefresh(provider, org, seen);
        if (!after) throw new BifrostError("CONNECTION_NOT_FOUND", `the ${provider} connection was removed while it was being refreshed`);
        if (after.status === "needs_reauth") throw this.reauthError(after);
        if (newer(after)) return this.grant(after);
        if (round >= 3) throw new BifrostError("OAUTH_UNAVAILABLE", `the ${provider} connection is being refreshed by another engine that has not finished`);
        continue;
      }
      // Under the lease, the stored row is the truth: another engine may have refreshed already.
      if (newer(leased) || leased.status === "needs_reauth") {
        await storage.oauth.releaseRefreshLease(provider, org, owner);
        if (leased.status === "needs_reauth") throw this.reauthError(leased);
        return this.grant(leased);
      }
      return this.refreshHere(leased, force);
    }
  }

  private async awaitOtherRefresh(provider: string, org: string | null, seen: number): Promise<OAuthConnectionRecord | undefined> {
    const giveUpAt = this.o.now() + this.leaseMs + 1000;
    this.o.logger.debug({ provider, org }, "another engine is refreshing this OAuth connection; waiting for its token");
    for (;;) {
      await wait(this.pollMs);
      const row = await this.o.storage.oauth.getConnection(provider, org);
      if (!row || row.generation > seen || row.refreshOwner === null || (row.refreshUntil ?? 0) < this.o.now() || this.o.now() > giveUpAt) return row;
    }
  }

  /** The token call itself, the lease held; its outcome is stored in one write under the lease. */
  private async refreshHere(conn: OAuthConnectionRecord, force: boolean): Promise<AccessGrant> {
    const { provider, org } = conn;
    const subject = `refreshing the ${provider} connection${org === null ? "" : ` of org "${org}"`}`;
    let response: tokens.TokenResponse;
    let failure: ClassifiedFailure | undefined;
    const record = await this.o.storage.oauth.getProvider(provider);
    try {
      if (!record) throw new BifrostError("OAUTH_PROVIDER_NOT_FOUND", `the OAuth provider "${provider}" of this connection was removed`);
      response = await this.callWithRetries(() => this.fetchNewToken(record, conn), (f) => (failure = f), { provider, org });
    } catch (err) {
      if (!failure) {
        await this.o.storage.oauth.releaseRefreshLease(provider, org, this.o.owner);
        throw err;
      }
      const f: ClassifiedFailure = failure;
      const at = this.o.now();
      const nextRetryAt = f.retryable ? at + Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.min(conn.failureCount, 16)) : null;
      await this.o.storage.oauth.finishRefresh(provider, org, this.o.owner, { status: f.retryable ? "refresh_failed" : "needs_reauth", failure: failureView(f, at), nextRetryAt }, at);
      // A token that is still valid serves its caller while the provider is down; a 401 asked for a new one.
      if (f.retryable && !force && this.isValid(conn)) {
        this.o.logger.warn({ provider, org, category: f.category }, "an OAuth token could not be refreshed ahead of its expiry; the current one is still valid and is used");
        return this.grant(conn);
      }
      throw failureError(f, subject);
    }
    const at = this.o.now();
    const sealed = this.seal(provider, org, response, record.scopes, at);
    const stored = await this.o.storage.oauth.finishRefresh(provider, org, this.o.owner, { tokens: sealed }, at);
    if (!stored) {
      // The lease ran out during the call and another engine refreshed: its token is the one kept.
      const now = await this.o.storage.oauth.getConnection(provider, org);
      if (now && now.accessTokenSealed !== null && this.isValid(now)) return this.grant(now);
      throw new BifrostError("OAUTH_UNAVAILABLE", `${subject}: the refresh took longer than its lease and its result was not kept`);
    }
    return { provider, org, accessToken: response.accessToken, tokenType: response.tokenType ?? "bearer", expiresAt: sealed.expiresAt, scopes: sealed.scopes };
  }

  private fetchNewToken(record: OAuthProviderRecord, conn: OAuthConnectionRecord): Promise<tokens.TokenResponse> {
    const config = tokens.configuration(this.endpoints(record, conn.entityId));
    if (record.grantType === "client_credentials") return tokens.clientCredentials(config, record.scopes);
    if (conn.refreshTokenSealed === null) {
      throw new tokens.TokenCallError("refresh", Object.assign(new Error("no refresh token"), { error: "invalid_grant", error_description: "the connection has no refresh token (the provider issued none: request the offline_access scope, or connect again)" }));
    }
    const refreshToken = this.o.secrets.open(conn.refreshTokenSealed, tokenContext(conn.provider, conn.org, "refresh_token"));
    return tokens.refresh(config, refreshToken);
  }

  /** Transient failures (provider 5xx, network, rate limits) are tried again a couple of times at once. */
  private async callWithRetries<T>(fn: () => Promise<T>, onFailure: (f: ClassifiedFailure) => void, context?: { provider: string; org: string | null }): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof tokens.TokenCallError)) throw err;
        const f = classifyOAuthFailure(describeError(err.original, err.where));
        const delay = IN_CALL_RETRY_DELAYS_MS[attempt];
        if (f.retryable && delay !== undefined) {
          await wait(delay * (0.5 + Math.random() / 2));
          continue;
        }
        onFailure(f);
        this.logFailure(f, context);
        throw err;
      }
    }
  }

  // --- connecting ------------------------------------------------------------------------------

  /** Client credentials: fetches a token now and stores it as the connection. */
  async connectClientCredentials(provider: string, org: string | null, entityId: string | null): Promise<ConnectionView> {
    const record = await this.provider(provider);
    if (record.grantType !== "client_credentials") throw new BifrostError("OAUTH_WRONG_GRANT", `provider "${provider}" uses the authorization code grant: a person authorizes it in a browser (GET /api/oauth/providers/${provider}/authorize), it cannot be connected with client credentials`);
    const entity = this.entityFor(record, org, entityId);
    let failure: ClassifiedFailure | undefined;
    try {
      const config = tokens.configuration(this.endpoints(record, entity));
      const response = await this.callWithRetries(() => tokens.clientCredentials(config, record.scopes), (f) => (failure = f), { provider, org });
      const stored = await this.o.storage.oauth.connect(provider, org, entity, this.seal(provider, org, response, record.scopes, this.o.now()), this.o.now());
      return this.view(stored);
    } catch (err) {
      if (!failure) throw err;
      // A provider that is down is tried again by the refresh job (client credentials need no
      // person); a refusal waits for one.
      const at = this.o.now();
      const update = failure.retryable ? { status: "refresh_failed", nextRetryAt: at + RETRY_BASE_MS } : { status: "needs_reauth", nextRetryAt: null };
      await this.o.storage.oauth.recordFailure(provider, org, { ...update, failure: failureView(failure, at) }, at);
      throw failureError(failure, `connecting ${provider}${org === null ? "" : ` for org "${org}"`} with client credentials failed`);
    }
  }

  /** Starts the authorization code flow: the URL to send a person to, with a single-use state and PKCE. */
  async startAuthorization(provider: string, org: string | null, entityId: string | null): Promise<{ url: string; expiresAt: number }> {
    const record = await this.provider(provider);
    if (record.grantType !== "authorization_code") throw new BifrostError("OAUTH_WRONG_GRANT", `provider "${provider}" uses client credentials: connect it with POST /api/oauth/connections/${provider}/connect, there is nothing to authorize in a browser`);
    const entity = this.entityFor(record, org, entityId);
    const redirectUri = record.redirectUri ?? defaultRedirectUri(this.o.publicUrl);
    const request = await tokens.authorizationRequest(tokens.configuration(this.endpoints(record, entity)), redirectUri, record.scopes);
    const id = stateId(request.state);
    const now = this.o.now();
    const expiresAt = now + this.stateTtlMs;
    // Kept a day past their expiry, so a late callback is told its link expired rather than unknown.
    await this.o.storage.oauth.pruneStates(now - 86_400_000);
    await this.o.storage.oauth.createState({ id, provider, org, entityId: entity, codeVerifierSealed: this.o.secrets.seal(request.codeVerifier, verifierContext(id)), redirectUri, createdAt: now, expiresAt, usedAt: null });
    return { url: request.url.href, expiresAt };
  }

  /** The provider sent the person back: uses up the state, redeems the code, stores the tokens. */
  async completeAuthorization(query: URLSearchParams): Promise<CallbackOutcome> {
    const state = query.get("state");
    const consumed = state ? await this.o.storage.oauth.consumeState(stateId(state.slice(0, 512)), this.o.now()) : undefined;
    const pending = consumed?.ok ? consumed.state : undefined;
    const provider = pending?.provider ?? null;
    const org = pending?.org ?? null;
    const fail = async (signal: FailureSignal, code: ErrorCode): Promise<CallbackOutcome> => {
      const f = this.classify(signal, provider ?? "unknown", org);
      const view = failureView(f, this.o.now());
      if (pending) await this.keepAuthorizationFailure(pending.provider, pending.org, view);
      return { ok: false, provider, org, code, failure: view };
    };
    const error = query.get("error");
    // The provider's own refusal says more than a state problem, so it is reported first.
    if (error !== null) {
      const description = query.get("error_description");
      return fail({ kind: "oauth_error", where: "callback", error, ...(description === null ? {} : { description }) }, "OAUTH_FAILED");
    }
    if (!pending) return fail({ kind: "state", reason: state ? (consumed && !consumed.ok ? consumed.reason : "unknown") : "missing" }, "OAUTH_STATE_INVALID");
    const record = await this.o.storage.oauth.getProvider(pending.provider);
    if (!record) return fail({ kind: "config", problem: `the provider "${pending.provider}" was removed while the authorization was in progress` }, "OAUTH_PROVIDER_NOT_FOUND");
    const verifier = this.o.secrets.open(pending.codeVerifierSealed, verifierContext(pending.id));
    try {
      const config = tokens.configuration(this.endpoints(record, pending.entityId));
      const response = await tokens.exchangeCode(config, pending.redirectUri, query, verifier, state as string);
      const stored = await this.o.storage.oauth.connect(pending.provider, pending.org, pending.entityId, this.seal(pending.provider, pending.org, response, record.scopes, this.o.now()), this.o.now());
      return { ok: true, provider: pending.provider, org: pending.org, connection: this.view(stored) };
    } catch (err) {
      if (!(err instanceof tokens.TokenCallError)) throw err;
      const signal = describeError(err.original, "callback");
      const f = classifyOAuthFailure(signal);
      return fail(signal, f.retryable ? "OAUTH_UNAVAILABLE" : "OAUTH_FAILED");
    }
  }

  /** A failed re-authorization leaves a working connection as it was, but keeps the failure to show. */
  private async keepAuthorizationFailure(provider: string, org: string | null, failure: FailureView): Promise<void> {
    const existing = await this.o.storage.oauth.getConnection(provider, org);
    const status = existing && existing.accessTokenSealed !== null ? existing.status : "needs_reauth";
    await this.o.storage.oauth.recordFailure(provider, org, { status, failure, nextRetryAt: existing?.nextRetryAt ?? null }, this.o.now());
  }

  /** Refreshes this exact connection now (API, CLI, the refresh job). */
  async refreshConnection(provider: string, org: string | null): Promise<ConnectionView> {
    const conn = await this.o.storage.oauth.getConnection(provider, org);
    if (!conn) throw new BifrostError("CONNECTION_NOT_FOUND", `provider "${provider}" has no connection ${org === null ? "that is global" : `for org "${org}"`}`);
    if (conn.status === "needs_reauth") throw this.reauthError(conn);
    await this.refreshShared(conn, true);
    const after = await this.o.storage.oauth.getConnection(provider, org);
    return this.view(after ?? conn);
  }

  /** Refreshes what the refresh job found due; failures are already stored and logged. */
  async refreshDue(keys: { provider: string; org: string | null }[]): Promise<void> {
    for (const k of keys) {
      try {
        const conn = await this.o.storage.oauth.getConnection(k.provider, k.org);
        // The job's window (skew plus its interval) decided it is due; only a person can fix needs_reauth.
        if (!conn || conn.status === "needs_reauth") continue;
        await this.refreshShared(conn, false);
      } catch (err) {
        this.o.logger.debug({ err, provider: k.provider, org: k.org }, "a scheduled token refresh failed");
      }
    }
  }

  // --- views and helpers -----------------------------------------------------------------------

  async list(filter: { provider?: string; org?: string | null } = {}): Promise<ConnectionView[]> {
    return (await this.o.storage.oauth.listConnections(filter)).map((c) => this.view(c));
  }

  /** Forgets a connection and its tokens (the provider keeps any grant until it expires or is revoked there). */
  async remove(provider: string, org: string | null): Promise<void> {
    if (!(await this.o.storage.oauth.removeConnection(provider, org))) throw new BifrostError("CONNECTION_NOT_FOUND", `provider "${provider}" has no connection ${org === null ? "that is global" : `for org "${org}"`}`);
  }

  async get(provider: string, org: string | null): Promise<ConnectionView | undefined> {
    const conn = await this.o.storage.oauth.getConnection(provider, org);
    return conn && this.view(conn);
  }

  view(c: OAuthConnectionRecord): ConnectionView {
    let status = c.status as ConnectionStatus;
    // Expiring means what the next use does: refresh first (the same window as isFresh).
    if (status === "healthy" && !this.isFresh(c)) status = "expiring";
    return {
      provider: c.provider,
      org: c.org,
      entityId: c.entityId,
      status,
      tokenType: c.tokenType,
      expiresAt: c.expiresAt,
      scopes: c.scopes,
      hasRefreshToken: c.refreshTokenSealed !== null,
      connectedAt: c.connectedAt,
      lastRefreshAt: c.lastRefreshAt,
      lastFailure: readFailure(c.lastFailure),
      nextRetryAt: c.status === "refresh_failed" ? c.nextRetryAt : null,
    };
  }

  private async provider(name: string): Promise<OAuthProviderRecord> {
    const record = await this.o.storage.oauth.getProvider(name);
    if (!record) throw new BifrostError("OAUTH_PROVIDER_NOT_FOUND", `there is no OAuth provider "${name}"`);
    return record;
  }

  /** The entity id `{entity_id}` becomes: the one given, else the org's name, where the URLs need one. */
  entityFor(record: OAuthProviderRecord, org: string | null, entityId: string | null): string | null {
    if (entityId !== null && !ENTITY_ID.test(entityId)) throw new BifrostError("VALIDATION_FAILED", "entityId: letters, digits, '.', '_' or '-', at most 128 characters (a tenant id or domain)");
    const templated = record.tokenUrl.includes("{entity_id}") || (record.authorizationUrl?.includes("{entity_id}") ?? false);
    if (!templated) return entityId;
    return entityId ?? org;
  }

  endpoints(record: OAuthProviderRecord, entityId: string | null): tokens.Endpoints {
    return {
      tokenUrl: fillEntity(record.tokenUrl, entityId, "tokenUrl", record.name),
      authorizationUrl: record.authorizationUrl === null ? null : fillEntity(record.authorizationUrl, entityId, "authorizationUrl", record.name),
      clientId: record.clientId,
      clientSecret: openClientSecret(this.o.secrets, record),
      clientAuth: record.clientAuth === "client_secret_basic" ? "client_secret_basic" : "client_secret_post",
    };
  }

  private seal(provider: string, org: string | null, r: tokens.TokenResponse, requested: string[], at: number): OAuthTokens {
    return {
      accessTokenSealed: this.o.secrets.seal(r.accessToken, tokenContext(provider, org, "access_token")),
      refreshTokenSealed: r.refreshToken === null ? null : this.o.secrets.seal(r.refreshToken, tokenContext(provider, org, "refresh_token")),
      tokenType: r.tokenType,
      expiresAt: at + (r.expiresIn === null ? DEFAULT_TOKEN_LIFETIME_MS : r.expiresIn * 1000),
      scopes: r.scope ?? requested,
    };
  }

  private classify(signal: FailureSignal, provider: string, org: string | null): ClassifiedFailure {
    const f = classifyOAuthFailure(signal);
    this.logFailure(f, { provider, org });
    return f;
  }

  private logFailure(f: ClassifiedFailure, context: { provider: string; org: string | null } | undefined): void {
    this.o.logger.warn({ event: "oauth_failure", provider: context?.provider, org: context?.org, category: f.category, code: f.code, description: f.description, fix: f.fix }, "oauth_failure");
  }
}

/** `promise`, or the signal's abort, whichever comes first (the promise goes on for others). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new BifrostError("RUN_ABORTED", "the invocation ended while it waited for an OAuth token"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new BifrostError("RUN_ABORTED", "the invocation ended while it waited for an OAuth token"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

export function authorization(grant: AccessGrant): string {
  const type = grant.tokenType.toLowerCase() === "bearer" ? "Bearer" : grant.tokenType;
  return `${type} ${grant.accessToken}`;
}
