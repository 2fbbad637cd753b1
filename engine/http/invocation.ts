/**
 * ctx.http for one invocation: reads the guest's call, passes the host's gate, sends, and repeats
 * what may be repeated within the call's budget (attempts, total wait) and the invocation's
 * deadline. Every retry is a line on the run's log; the counts of the invocation are kept for its
 * summary line.
 */
import { BifrostError, type ErrorData } from "../../common/errors.js";
import { formatDuration } from "../duration.js";
import type { LogLevel } from "../../storage/types.js";
import { DEFAULT_BACKOFF, fullJitterDelay } from "./backoff.js";
import { NetworkFailure, type Answer } from "./client.js";
import { GateClosed, type GateReport, type HostGate, type Ticket } from "./gate.js";
import { metadataHostReason } from "./metadata.js";
import { allowListProblem, hostLimitsFor } from "./policy.js";
import { describeUrl } from "./redact.js";
import { readRequestArgs, type HttpRequestSpec } from "./request-args.js";
import { bodyExcerpt, guestResponse, type GuestResponse } from "./response.js";
import { publishedBudget, serverWait } from "./retry-after.js";
import { retryVerdict, type RetryVerdict } from "./retry-policy.js";
import type { HttpService } from "./service.js";

/** No wait may end closer to the deadline than this: the request after it needs time too. */
export const DEADLINE_MARGIN_MS = 250;
/**
 * Calls one invocation may have pending at once. Each holds its request and, once answered, its
 * response on the host: without a bound, a loop that never awaits could pile up gigabytes.
 */
export const MAX_PENDING_CALLS = 32;
/** A 429 or 503 without a time is not answered at once, whatever the jitter drew. */
const RATE_LIMIT_MIN_BACKOFF_MS = 250;

export interface HttpStats {
  requests: number;
  retries: number;
  /** 429 and 503 answers. */
  rateLimited: number;
  /** Time calls spent waiting: at their host's gate and before retries. */
  waitMs: number;
}

export interface InvocationHttpDeps {
  service: HttpService;
  run: { id: string; workflow: string; org: string | null };
  /** When the invocation is stopped. */
  deadline: number;
  /** When the whole run times out. */
  runDeadline: number;
  /** Aborted when the invocation ends (cancel, engine stop, yield). */
  signal: AbortSignal;
  /** Whether the run may end this invocation and resume later (it committed a step in it). */
  canYield: () => boolean;
  /** Ends the invocation now; the run resumes at `at`. */
  yieldUntil: (at: number, reason: string) => void;
  log: (level: LogLevel, msg: string, data: Record<string, unknown>) => void;
  /** Records a host fault and returns its id (for an error handed to the guest as a value). */
  recordFault: (err: BifrostError) => string;
  /** Whether the run's lease still holds: no request leaves once it does not. */
  leaseHeld?: () => boolean;
}

/** What the guest receives: the answer, or the data of the HttpError it throws. */
export type HttpReply = { response: GuestResponse } | { error: ErrorData & { status: number; body: string; fault: string } };

/** The connection's 401/403 that remained, as OAuth categories. */
const AUTH_CATEGORIES: Record<number, { category: string; fix: string }> = {
  401: { category: "token_expired", fix: "The server refused the connection's token even after a refresh: connect the connection again (its refresh token may be revoked or expired) and check that it is the connection for this API." },
  403: { category: "permission_denied", fix: "The connection's token is valid but lacks the permission for this call: grant the scope or role to the app, consent again, and reconnect." },
};

export class InvocationHttp {
  readonly stats: HttpStats = { requests: 0, retries: 0, rateLimited: 0, waitMs: 0 };
  private pending = 0;

  constructor(private readonly deps: InvocationHttpDeps) {}

  private get now(): number {
    return this.deps.service.now();
  }

  /** The host op "http.request": `{ method, url, options }` from the guest. */
  async request(args: unknown): Promise<HttpReply> {
    if (this.pending >= MAX_PENDING_CALLS) {
      throw new BifrostError("HTTP_REQUEST_INVALID", `ctx.http: more than ${MAX_PENDING_CALLS} calls are pending at once in this invocation; await some before starting more (for example, process items in batches of ${MAX_PENDING_CALLS})`);
    }
    this.pending += 1;
    try {
      return await this.send(args);
    } finally {
      this.pending -= 1;
    }
  }

  private async send(args: unknown): Promise<HttpReply> {
    const { service } = this.deps;
    const spec = readRequestArgs(args, service.config);
    this.checkTarget(spec.url);
    const rule = hostLimitsFor(service.config.hostLimits, spec.url);
    const gate = service.gates.get(spec.url.origin, { ...(rule?.concurrency ? { concurrency: rule.concurrency } : {}), ...(rule?.rps ? { rps: rule.rps } : {}) });
    let auth = spec.connection ? await this.authHeader(spec.connection, false) : undefined;
    let refreshed = false;
    let waited = 0;
    let last: Answer | undefined;
    for (let attempt = 1; ; attempt++) {
      const turn = await this.turn(gate, spec, attempt, waited, last);
      if ("reply" in turn) return turn.reply;
      const { ticket } = turn;
      waited += ticket.waitedMs;
      this.stats.waitMs += ticket.waitedMs;
      if (this.deps.leaseHeld && !this.deps.leaseHeld()) {
        gate.release(ticket, { kind: "none" });
        throw new BifrostError("LEASE_LOST", "ctx.http sent nothing: this engine's lease on the run ran out (the process was paused or the database unreachable); the run resumes from its last committed step wherever it is claimed next");
      }
      this.stats.requests += 1;
      let answer: Answer;
      try {
        answer = await service.client.send({
          method: spec.method,
          url: spec.url,
          headers: auth === undefined ? spec.headers : { ...spec.headers, authorization: auth },
          body: spec.body,
          timeoutMs: this.timeoutFor(spec),
          maxResponseBytes: service.config.maxResponseBytes,
          signal: this.deps.signal,
          checkRedirect: (url) => this.checkTarget(url),
        });
      } catch (err) {
        gate.release(ticket, { kind: "none" });
        if (this.deps.signal.aborted) throw new BifrostError("RUN_ABORTED", "the invocation ended while ctx.http was waiting for an answer");
        if (!(err instanceof NetworkFailure)) throw err;
        const verdict = retryVerdict(spec.method, { kind: "network", code: err.code, phase: err.phase }, spec.idempotencyKey !== undefined);
        if (!verdict.retry || attempt >= spec.retry.attempts) throw this.networkError(spec, err, attempt, verdict.retry ? undefined : verdict.reason);
        const wakeAt = this.now + fullJitterDelay(attempt, DEFAULT_BACKOFF, service.random);
        const early = this.checkWait(spec, wakeAt, waited, attempt, last, verdict.reason);
        if (early) return early;
        this.retryLine(spec, attempt, undefined, wakeAt, verdict.reason);
        waited += await this.sleepUntil(wakeAt);
        continue;
      }
      last = answer;
      const now = this.now;
      if (answer.status === 401 && spec.connection && !refreshed) {
        gate.release(ticket, { kind: "answer", ...this.budgetOf(answer, now) });
        refreshed = true;
        this.retryLine(spec, attempt, 401, now, "the server refused the connection's token: refreshed it, repeating once");
        auth = await this.authHeader(spec.connection, true);
        // The repeat after a refresh is not one of retry.attempts.
        attempt -= 1;
        continue;
      }
      const verdict: RetryVerdict = answer.status >= 200 && answer.status <= 299 ? { retry: false } : retryVerdict(spec.method, { kind: "status", status: answer.status }, spec.idempotencyKey !== undefined);
      if (!verdict.retry) {
        gate.release(ticket, { kind: "answer", ...this.budgetOf(answer, now) });
        const refusal = spec.connection && (answer.status === 401 || answer.status === 403) ? await this.refusal(spec.connection, answer) : undefined;
        return this.reply(spec, answer, verdict.reason, refusal);
      }
      let wakeAt: number;
      if (verdict.rateLimited) {
        this.stats.rateLimited += 1;
        wakeAt = serverWait(answer.headers, now)?.at ?? now + fullJitterDelay(attempt, { ...DEFAULT_BACKOFF, minMs: RATE_LIMIT_MIN_BACKOFF_MS }, service.random);
        // Every run calling this host waits too.
        const report: GateReport = { kind: "rate-limited", until: wakeAt, ...this.budgetOf(answer, now) };
        gate.release(ticket, report);
      } else {
        wakeAt = now + fullJitterDelay(attempt, DEFAULT_BACKOFF, service.random);
        gate.release(ticket, { kind: "answer", ...this.budgetOf(answer, now) });
      }
      if (attempt >= spec.retry.attempts) return this.exhausted(spec, `it answered ${answer.status} to all ${attempt} tries (retry.attempts ${spec.retry.attempts})`, attempt, waited, answer);
      const early = this.checkWait(spec, wakeAt, waited, attempt, answer, verdict.reason);
      if (early) return early;
      this.retryLine(spec, attempt, answer.status, wakeAt, verdict.reason);
      // A rate limit's wait happens at the gate (shared with every run); a server error's here.
      if (!verdict.rateLimited) waited += await this.sleepUntil(wakeAt);
    }
  }

  /** Metadata names and literals, and the allow-lists; redirect targets pass here too. */
  private checkTarget(url: URL): void {
    const reason = metadataHostReason(url.hostname);
    if (reason) throw new BifrostError("HTTP_HOST_FORBIDDEN", `ctx.http refused ${describeUrl(url)}: it is ${reason}`, { details: { host: url.host } });
    const problem = allowListProblem(this.deps.service.config.allowLists, this.deps.run, url);
    if (problem) throw new BifrostError("HTTP_HOST_NOT_ALLOWED", `ctx.http refused ${describeUrl(url)}: ${problem}`, { details: { host: url.host } });
  }

  private async authHeader(connection: string, forceRefresh: boolean): Promise<string> {
    try {
      return await this.deps.service.connections.authHeader(connection, this.deps.run.org, { forceRefresh, signal: this.deps.signal });
    } catch (err) {
      // The run's log says what went wrong with the connection and how to fix it; the error carries both too.
      if (err instanceof BifrostError && err.category !== undefined) this.deps.log("error", "oauth failure", { connection, org: this.deps.run.org, code: err.code, category: err.category, fix: err.fix });
      throw err;
    }
  }

  private budgetOf(answer: Answer, now: number): { budget?: { remaining: number; resetAt: number } } {
    const budget = publishedBudget(answer.headers, now);
    return budget ? { budget } : {};
  }

  /** Per attempt: the call's timeout (or the configured one), never past the deadline. */
  private timeoutFor(spec: HttpRequestSpec): number {
    const left = this.deps.deadline - DEADLINE_MARGIN_MS - this.now;
    return Math.max(1, Math.min(spec.timeoutMs ?? this.deps.service.config.timeoutMs, left));
  }

  /** The gate's turn for this attempt, within the call's wait budget and the deadline. */
  private async turn(gate: HostGate, spec: HttpRequestSpec, attempt: number, waited: number, last: Answer | undefined): Promise<{ ticket: Ticket } | { reply: HttpReply }> {
    const now = this.now;
    const latest = this.deps.deadline - DEADLINE_MARGIN_MS;
    try {
      return { ticket: await gate.acquire({ latest, latestKnown: Math.min(latest, now + Math.max(0, spec.retry.maxWaitMs - waited)), signal: this.deps.signal }) };
    } catch (err) {
      if (this.deps.signal.aborted) throw new BifrostError("RUN_ABORTED", "the invocation ended while ctx.http was waiting at the host's gate");
      if (!(err instanceof GateClosed)) throw err;
      if (err.until === undefined) {
        throw this.exhaustedError(spec, `no turn came free for ${spec.url.host} before the invocation's deadline (BIFROST_HTTP_HOST_LIMITS)`, attempt - 1, waited, last);
      }
      const early = this.checkWait(spec, err.until, waited, attempt - 1, last, "the host is cooling down after a rate limit");
      if (early) return { reply: early };
      // checkWait passes only waits the gate would have taken: the gate refused for its own reasons.
      throw this.exhaustedError(spec, `${spec.url.host} is closed until ${new Date(err.until).toISOString()}`, attempt - 1, waited, last);
    }
  }

  /**
   * A wait until `wakeAt` must fit the call's wait budget and end before the deadline. Past the
   * deadline a run that committed a step yields (resumes at `wakeAt`); anything else fails with
   * HTTP_RETRY_BUDGET_EXHAUSTED, or hands back the last answer when throwOnError is false.
   */
  private checkWait(spec: HttpRequestSpec, wakeAt: number, waited: number, attempt: number, last: Answer | undefined, reason: string): HttpReply | undefined {
    const now = this.now;
    const wait = Math.max(0, wakeAt - now);
    const budgetLeft = spec.retry.maxWaitMs - waited;
    if (wait > budgetLeft) {
      return this.exhausted(spec, `${reason}: the next try may start in ${formatDuration(wait)}, but retry.maxWait (${formatDuration(spec.retry.maxWaitMs)}) leaves ${formatDuration(Math.max(0, budgetLeft))}`, attempt, waited, last);
    }
    if (wakeAt > this.deps.deadline - DEADLINE_MARGIN_MS) {
      if (this.deps.canYield() && wakeAt < this.deps.runDeadline) {
        const why = `${reason}: ${spec.method} ${spec.url.host} may be tried again in ${formatDuration(wait)}, after this invocation's deadline`;
        this.deps.yieldUntil(wakeAt, why);
        throw new BifrostError("RUN_ABORTED", `${why}; the run yields and resumes then`);
      }
      return this.exhausted(spec, `${reason}: the next try may start in ${formatDuration(wait)}, after the invocation's deadline (in ${formatDuration(Math.max(0, this.deps.deadline - now))})`, attempt, waited, last);
    }
    return undefined;
  }

  private retryLine(spec: HttpRequestSpec, attempt: number, status: number | undefined, wakeAt: number, reason: string): void {
    this.stats.retries += 1;
    const data: Record<string, unknown> = { method: spec.method, host: spec.url.host, attempt };
    if (status !== undefined) data.status = status;
    data.waitMs = Math.max(0, wakeAt - this.now);
    data.reason = reason;
    this.deps.log("info", "http retry", data);
  }

  private async sleepUntil(at: number): Promise<number> {
    const start = this.now;
    const ms = Math.max(0, at - start);
    if (ms > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        const signal = this.deps.signal;
        function done() {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        }
        signal.addEventListener("abort", done, { once: true });
      });
      if (this.deps.signal.aborted) throw new BifrostError("RUN_ABORTED", "the invocation ended while ctx.http was waiting to retry");
    }
    const slept = this.now - start;
    this.stats.waitMs += slept;
    return slept;
  }

  /** A 401 or 403 that remained: the connection classifies it and keeps it as its last failure. */
  private async refusal(connection: string, answer: Answer): Promise<{ category: string; fix: string } | undefined> {
    const header = answer.headers["www-authenticate"];
    const provider = this.deps.service.connections;
    if (!provider.apiRefused) return AUTH_CATEGORIES[answer.status];
    try {
      return await provider.apiRefused(connection, this.deps.run.org, { status: answer.status, ...(typeof header === "string" ? { wwwAuthenticate: header.slice(0, 2048) } : {}) });
    } catch {
      return AUTH_CATEGORIES[answer.status];
    }
  }

  private reply(spec: HttpRequestSpec, answer: Answer, notRetried: string | undefined, auth?: { category: string; fix: string }): HttpReply {
    const response = guestResponse(answer.status, answer.headers, answer.body);
    if (response.ok || !spec.throwOnError) return { response };
    const excerpt = bodyExcerpt(answer.body);
    const shown = excerpt.length > 200 ? `${excerpt.slice(0, 200)}…` : excerpt;
    const message = `${spec.method} ${describeUrl(spec.url)} answered ${answer.status}${shown ? `: ${shown}` : ""}${notRetried ? ` (not retried: ${notRetried})` : ""}`;
    const err = new BifrostError("HTTP_ERROR", message, { details: { status: answer.status, method: spec.method, host: spec.url.host, body: excerpt }, ...(auth ? { fix: auth.fix, category: auth.category } : {}) });
    const fault = this.deps.recordFault(err);
    const error: ErrorData & { status: number; body: string; fault: string } = { code: "HTTP_ERROR", message, fix: err.fix, status: answer.status, body: excerpt, fault };
    if (auth) error.category = auth.category;
    return { error };
  }

  private exhaustedError(spec: HttpRequestSpec, why: string, attempts: number, waited: number, last: Answer | undefined): BifrostError {
    const details: Record<string, unknown> = { method: spec.method, host: spec.url.host, attempts, waitedMs: waited };
    if (last) details.status = last.status;
    return new BifrostError("HTTP_RETRY_BUDGET_EXHAUSTED", `${spec.method} ${describeUrl(spec.url)}: ${why}`, { details });
  }

  /** Out of budget: the last answer when the caller handles answers itself, else the error. */
  private exhausted(spec: HttpRequestSpec, why: string, attempts: number, waited: number, last: Answer | undefined): HttpReply {
    if (last && !spec.throwOnError) return { response: guestResponse(last.status, last.headers, last.body) };
    throw this.exhaustedError(spec, why, attempts, waited, last);
  }

  private networkError(spec: HttpRequestSpec, err: NetworkFailure, attempts: number, notRetried: string | undefined): BifrostError {
    const tries = attempts > 1 ? ` after ${attempts} tries` : "";
    const why = notRetried ? ` (not retried: ${notRetried})` : "";
    const details = { method: spec.method, host: spec.url.host, attempts, code: err.code };
    if (err.timedOut) return new BifrostError("HTTP_TIMEOUT", `${spec.method} ${describeUrl(spec.url)}: ${err.message}${tries}${why}`, { details });
    return new BifrostError("HTTP_NETWORK_ERROR", `${spec.method} ${describeUrl(spec.url)}: ${err.message}${tries}${why}`, { details });
  }
}
