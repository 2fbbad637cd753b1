// Types for workflow authors: `import { workflow } from "bifrost"`. This is the whole API a
// workflow module sees; everything runs inside the sandbox, and every effect goes through ctx.

/** A JSON value: what params, step results and run results are made of. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** A JSON Schema object describing run params (validated before a run is created). */
export type JsonSchema = { [keyword: string]: unknown };

/** "30s", "5m", "1h", "1h30m", or milliseconds. */
export type Duration = string | number;

export interface RunInfo {
  readonly id: string;
  readonly workflow: string;
  readonly org: string | null;
  readonly trigger: "api" | "schedule" | "webhook" | "cli" | "retry";
  /** Run-level attempt, 1 on the first try (see `retry`). */
  readonly attempt: number;
  /** ISO time of the schedule fire this run belongs to, or null. */
  readonly scheduledFor: string | null;
}

export interface RunLogger {
  debug(message: string, data?: unknown): void;
  info(message: string, data?: unknown): void;
  warn(message: string, data?: unknown): void;
  error(message: string, data?: unknown): void;
}

/** Like an AbortSignal: a listener added after the abort does not fire, so check `aborted` first. */
export interface SandboxSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: () => void): void;
  removeEventListener(type: "abort", listener: () => void): void;
  throwIfAborted(): void;
}

/**
 * Small JSON values kept per workflow and org across runs: a delta token, a cursor, a last-synced
 * time (not the data itself). Each call resolves once it is committed. Keys are 1 to 128 letters,
 * digits, "_", ".", ":" or "-", starting with a letter or digit; a value is at most 64 KB of JSON,
 * and a workflow keeps at most 1,000 keys per org. See the README's "State between runs" for what
 * a resume repeats.
 */
export interface WorkflowState {
  /** The stored value (as JSON gave it back: Dates are strings), or undefined when none is stored. */
  get<T = Json>(key: string): Promise<T | undefined>;
  /** Stores a JSON value (undefined is refused: use delete). Durable when it resolves. */
  set(key: string, value: unknown): Promise<void>;
  /** Removes the key; whether it existed. */
  delete(key: string): Promise<boolean>;
}

/** A connection's token, fresh when handed out. It is a secret: the engine removes it from anything the run stores. */
export interface OAuthConnection {
  readonly provider: string;
  readonly accessToken: string;
  /** Usually "bearer". */
  readonly tokenType: string;
  readonly expiresAt: Date;
  /** Seconds left when the token was handed out. */
  readonly expiresIn: number;
  /** The scopes the provider granted. */
  readonly scopes: readonly string[];
  isExpired(): boolean;
  /** The Authorization header value, e.g. "Bearer eyJ…". */
  getAuthHeader(): string;
}

export interface OAuthClient {
  /**
   * The connection of `provider` for the run's org, else the global one; refreshed first when it
   * expires within the refresh skew (5 minutes). Fails at once, without calling the provider, when
   * the connection needs a person (`needs_reauth`); the error has `code`, `category` and `fix`.
   */
  getConnection(provider: string): Promise<OAuthConnection>;
}

export type HttpMethod = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS";

export interface HttpOptions {
  /**
   * An OAuth connection ("HaloPSA") whose fresh token is sent as Authorization (the org's, else the
   * global one); a 401 refreshes it once and repeats once. A connection that is missing fails with
   * CONNECTION_NOT_FOUND, one that needs a person with OAUTH_NEEDS_REAUTH (with category and fix).
   */
  connection?: string;
  /** Request headers (names are case-insensitive; Host, Content-Length and framing headers are the engine's). */
  headers?: Record<string, string | number | boolean>;
  /** Added to the URL's query; an array repeats the name. null and undefined values are left out. */
  query?: Record<string, string | number | boolean | null | undefined | Array<string | number | boolean>>;
  /** A JSON body (Content-Type: application/json unless headers say otherwise). */
  json?: unknown;
  /** A text body (Content-Type: text/plain unless headers say otherwise). */
  body?: string;
  /** Per try; default 30 s (BIFROST_HTTP_TIMEOUT_MS), never past ctx.deadline. */
  timeout?: Duration;
  /**
   * Retries of 429 and 503 (after the server's Retry-After), and of other 5xx and network errors
   * for idempotent methods or with an idempotencyKey. `attempts` counts the first try (default 5);
   * `maxWait` bounds the waiting of the whole call (default "5m"). `false`: one try.
   */
  retry?: false | { attempts?: number; maxWait?: Duration };
  /** Default true: an answer outside 2xx throws an HttpError. false: it is returned. */
  throwOnError?: boolean;
  /** Sent as Idempotency-Key; lets a POST or PATCH be retried after a 5xx or a network error. */
  idempotencyKey?: string;
}

export interface HttpResponse<T = unknown> {
  status: number;
  /** status is 2xx. */
  ok: boolean;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Parsed JSON when the response says it is JSON, else the text ("" when empty). */
  body: T;
}

/** What ctx.http throws for an answer outside 2xx (after retries). `code` is "HTTP_ERROR". */
export interface HttpError extends Error {
  name: "HttpError";
  code: "HTTP_ERROR";
  status: number;
  /** An excerpt of the answer's body (at most 500 characters). */
  body: string;
  /** For a connection's 401 or 403: "token_expired" or "permission_denied". */
  category?: string;
  fix?: string;
}

/**
 * HTTP from the host: rate limits (429/503 and Retry-After) are waited out and shared by every run
 * of the engine, other failures are retried where repeating is safe, every retry is on the run log.
 */
export interface HttpClient {
  request<T = unknown>(method: HttpMethod, url: string, options?: HttpOptions): Promise<HttpResponse<T>>;
  get<T = unknown>(url: string, options?: HttpOptions): Promise<HttpResponse<T>>;
  head<T = unknown>(url: string, options?: HttpOptions): Promise<HttpResponse<T>>;
  post<T = unknown>(url: string, options?: HttpOptions): Promise<HttpResponse<T>>;
  put<T = unknown>(url: string, options?: HttpOptions): Promise<HttpResponse<T>>;
  patch<T = unknown>(url: string, options?: HttpOptions): Promise<HttpResponse<T>>;
  delete<T = unknown>(url: string, options?: HttpOptions): Promise<HttpResponse<T>>;
}

/** A step's own retry policy: the step alone is tried again, finished steps are not redone. */
export interface StepRetry {
  /** Total tries counting the first, 1 to 100; the step record's `attempts` shows how many were made. */
  attempts: number;
  /** Default "exponential" (delay, then twice as long each time). */
  backoff?: "exponential" | "fixed";
  /** Pause before the second try, default "1s". A pause under a second is spent in place; a longer one ends the invocation and the run resumes after it. */
  delay?: Duration;
  /** Upper bound of an exponential pause, default "1h". */
  maxDelay?: Duration;
}

export interface StepOptions {
  retry?: StepRetry;
}

export interface WorkflowContext {
  readonly run: RunInfo;
  /** Lines are stored with the run, in order, and mirrored to the engine log. */
  readonly log: RunLogger;
  /** HTTP requests, run by the engine (the sandbox has no fetch). See the README's "ctx.http". */
  readonly http: HttpClient;
  /** Values kept per workflow and org across runs (the run's org; runs without an org share theirs). */
  readonly state: WorkflowState;
  /** OAuth connections, configured in the engine (see the README's "OAuth"). */
  readonly oauth: OAuthClient;
  /**
   * A durable step: `fn` runs once and its JSON result is committed. When the run resumes (after
   * a crash, a retry or a chunk timeout) run() starts again from the top and a finished step
   * returns its stored result without running. Names must be unique within a run.
   * The result passes through JSON: Dates become strings, undefined becomes null.
   */
  step<T>(name: string, fn: () => T | Promise<T>, options?: StepOptions): Promise<T>;
  /**
   * Splits `items` into chunks of `size`; each chunk is the durable step `name#i` (with `retry`,
   * each chunk is retried alone). The run record shows `done/total` per chunks call. A chunk cut
   * off by a crash or a timeout runs again (at least once): make chunk bodies idempotent.
   */
  chunks<I, R>(name: string, items: readonly I[], options: { size: number } & StepOptions, fn: (batch: I[], index: number) => R | Promise<R>): Promise<R[]>;
  /**
   * Waits `duration` ("30s", "5m", "1h" or milliseconds; at most 7 days). From one second up the
   * wait is durable: it is committed as the step record `sleep#n` (the run's n-th sleep, 0 first),
   * the invocation ends and the run waits in the queue (status `queued`) until the wake time, then
   * run() replays and the finished sleep returns at once. Shorter waits happen in place. A sleep
   * that would wake after the run's `timeout` ends the run `timed_out` at once.
   */
  sleep(duration: Duration): Promise<void>;
  /** Like `sleep`, until a time (a Date, an ISO time or epoch milliseconds); a past time returns at once. */
  sleepUntil(date: Date | string | number): Promise<void>;
  /** When the current invocation will be stopped. */
  readonly deadline: Date;
  /**
   * Aborted when the engine asks the run to stop (graceful shutdown). A run that then throws
   * (`ctx.signal.throwIfAborted()`) is put back in the queue and resumes from its last committed step.
   */
  readonly signal: SandboxSignal;
}

export interface Schedule {
  cron: string;
  /** IANA time zone, default "UTC". */
  timezone?: string;
  overlap?: "skip" | "queue" | "allow";
  catchUp?: "none" | "latest" | "all";
  catchUpWindow?: Duration;
  /** One run per listed org at each fire (`ctx.run.org`); without it, fires have no org. */
  orgs?: string[];
}

export interface WorkflowDefinition<P = Record<string, unknown>, R = unknown> {
  /** Unique, /^[a-z][a-z0-9_-]{0,63}$/. */
  name: string;
  description?: string;
  params?: JsonSchema;
  schedule?: Schedule;
  /** Whole run, wall clock. Default "1h". */
  timeout?: Duration;
  /** One invocation of run(). Default "5m". */
  chunkTimeout?: Duration;
  /** Run-level retries of failed runs; finished steps are reused. attempts counts the first try. */
  retry?: { attempts: number; backoff?: "exponential" | "fixed"; delay?: Duration; maxDelay?: Duration };
  /** Accept POST /api/hooks/<name> signed with the workflow's webhook secret (X-Bifrost-Signature). Default false. */
  webhook?: boolean;
  /** Must be deterministic outside steps: it runs again from the top on every resume. */
  run(ctx: WorkflowContext, params: P): R | Promise<R>;
}

export function workflow<P = Record<string, unknown>, R = unknown>(definition: WorkflowDefinition<P, R>): WorkflowDefinition<P, R>;

declare global {
  /** console.* inside the sandbox writes to the run log (log → info). */
  var console: {
    log(...args: unknown[]): void;
    info(...args: unknown[]): void;
    debug(...args: unknown[]): void;
    warn(...args: unknown[]): void;
    error(...args: unknown[]): void;
  };
}
