/**
 * The one registry of stable error codes. Every error the engine reports (HTTP, CLI, run records)
 * carries one of these codes; the README's error-code table documents them for users. It lives below
 * engine, sandbox and storage so that every layer can name a code without importing the engine.
 */
export const ERROR_CODES = {
  // request / input
  VALIDATION_FAILED: { status: 400, hint: "Fix the request fields listed in details.", cli: "Fix the option named in the message; `bifrost help` lists the options." },
  INVALID_JSON: { status: 400, hint: "Send a valid JSON body with Content-Type: application/json.", cli: "Pass --params one JSON object, quoted for the shell: --params '{\"name\":\"Ada\"}'." },
  INVALID_PARAMS: { status: 400, hint: "Pass params that match the workflow's params schema (GET /api/workflows/:name).", cli: "Pass --params that match the workflow's params schema (shown by `bifrost workflows list --json`)." },
  ROUTE_NOT_FOUND: { status: 404, hint: "Check the method and path against the HTTP API table in the README." },
  WORKFLOW_NOT_FOUND: { status: 404, hint: "List registered workflows with GET /api/workflows.", cli: "List the workflows with `bifrost workflows list`; the CLI loads modules from BIFROST_WORKFLOWS_DIR (default ./workflows)." },
  SCHEDULE_NOT_FOUND: { status: 404, hint: "List the schedules (workflow and org) with GET /api/schedules; a workflow has a schedule when its definition declares one.", cli: "List the schedules (workflow and org) with `bifrost schedules list`; a workflow has a schedule when its definition declares one." },
  RUN_NOT_FOUND: { status: 404, hint: "List runs with GET /api/runs.", cli: "List runs with `bifrost runs list`; the CLI reads the database in BIFROST_DATA_DIR (default ./data)." },
  PAYLOAD_TOO_LARGE: { status: 413, hint: "Send a smaller request body.", cli: "Pass smaller --params." },
  // HTTP only: the request itself is not one the server can read
  UNSUPPORTED_MEDIA_TYPE: { status: 415, hint: "Send the body as JSON with Content-Type: application/json." },
  MALFORMED_REQUEST: { status: 400, hint: "Send a well-formed HTTP/1.1 request: a standard method, a correctly percent-encoded path and valid headers." },
  HEADERS_TOO_LARGE: { status: 431, hint: "Send smaller request headers (at most 16 KB in all); an oversized cookie or token is the usual cause." },
  REQUEST_TIMEOUT: { status: 408, hint: "Send the whole request without pausing; the server closes connections that stall mid-request." },
  METHOD_NOT_ALLOWED: { status: 405, hint: "Use one of the methods the Allow header lists; the HTTP API table in the README has every route." },
  IDEMPOTENCY_CONFLICT: { status: 409, hint: "Use a new idempotencyKey when the params differ; within one workflow and org, the same key with the same params returns the first run." },
  // webhooks
  WEBHOOK_NOT_FOUND: { status: 404, hint: "Declare webhook: true in the workflow's definition and check its name; GET /api/workflows lists the registered workflows.", cli: "Declare webhook: true in the workflow's definition and check its name; `bifrost workflows list` lists the registered workflows." },
  WEBHOOK_SIGNATURE_INVALID: { status: 401, hint: "Send X-Bifrost-Signature: sha256=<hex HMAC-SHA256 of the raw body> computed with the workflow's webhook secret (GET /api/workflows/:name/webhook), or an API key that may trigger runs." },
  // API keys and roles
  UNAUTHENTICATED: { status: 401, hint: "Send Authorization: Bearer <key> with a key that is not revoked; an administrator creates keys on the engine's machine with bifrost keys create (see the README's \"Keys and orgs\").", cli: "Set BIFROST_API_KEY to a key that is not revoked; an administrator creates one with `bifrost keys create --role operator`." },
  FORBIDDEN: { status: 403, hint: "Use a key whose role and org allow this: viewer reads, operator also triggers runs, admin does everything; an org key acts only in its org (see the README's \"Keys and orgs\").", cli: "Set BIFROST_API_KEY to a key whose role and org allow this: viewer reads, operator also triggers runs, admin does everything." },
  KEY_NOT_FOUND: { status: 404, hint: "List the keys and their ids with bifrost keys list on the engine's machine.", cli: "List the keys and their ids with `bifrost keys list`." },
  // workflow modules
  WORKFLOW_COMPILE_ERROR: { status: 400, hint: "Fix the syntax or import error at the reported file and line." },
  WORKFLOW_INVALID: { status: 400, hint: "Fix the workflow definition at the reported file; the README's \"Writing a workflow\" section lists every field." },
  WORKFLOW_NAME_CONFLICT: { status: 409, hint: "Workflow names must be unique: rename one of the modules." },
  WORKFLOW_FILE_MANAGED: { status: 409, hint: "This workflow is defined by a file in the workflows directory: delete or change that file instead." },
  // run outcomes
  WORKFLOW_ERROR: { status: 500, hint: "The workflow threw: read the message, stack and run logs." },
  WORKFLOW_UNREGISTERED: { status: 500, hint: "The workflow version this run was triggered with is no longer stored (or the workflow is not registered): register the workflow again if it was removed, then trigger a new run, which uses its current version." },
  RUN_TIMED_OUT: { status: 500, hint: "Raise the workflow's `timeout`/`chunkTimeout` or split the work into steps and chunks." },
  SANDBOX_CPU_LIMIT: { status: 500, hint: "The run used too much CPU time (an infinite loop?); fix the loop or raise BIFROST_SANDBOX_CPU_MS." },
  SANDBOX_MEMORY_LIMIT: { status: 500, hint: "The run exceeded its memory limit; process data in chunks or raise BIFROST_SANDBOX_MEMORY_MB." },
  SANDBOX_CRASHED: { status: 500, hint: "The sandbox failed unexpectedly; retry the run and report it if it repeats." },
  RESULT_NOT_SERIALIZABLE: { status: 500, hint: "Return only JSON values (objects, arrays, strings, numbers, booleans, null) from run() and steps." },
  RESULT_TOO_LARGE: { status: 500, hint: "Return a smaller result: store large data elsewhere and return a reference." },
  RUN_CANCELLED: { status: 500, hint: "Someone cancelled the run; trigger it again if the work is still needed." },
  RUN_ABORTED: { status: 500, hint: "The run was stopped by the engine (cancel or shutdown); it resumes or can be retried." },
  STEP_INVALID: { status: 500, hint: "Give every step a non-empty unique name and a function." },
  STEP_INTERRUPTED: { status: 500, hint: "The invocation ended before this step finished; it runs again when the run resumes, so make step bodies idempotent." },
  STEP_RETRY_INVALID: { status: 500, hint: "Pass ctx.step's third argument as { retry: { attempts, backoff?, delay? } }: attempts an integer from 1 to 100 (counting the first try), backoff \"exponential\" or \"fixed\", delay a duration such as \"2s\" of at most 7 days." },
  SLEEP_INVALID: { status: 500, hint: "Pass ctx.sleep a duration (milliseconds, or a string like \"30s\", \"5m\", \"1h\") and ctx.sleepUntil a Date, an ISO time or epoch milliseconds, at most 7 days ahead." },
  // ctx.http
  HTTP_REQUEST_INVALID: { status: 500, hint: "Fix the ctx.http call named in the message: the README's \"ctx.http\" section lists its options and their limits." },
  HTTP_HOST_FORBIDDEN: { status: 500, hint: "Cloud metadata addresses (169.254.169.254, fd00:ec2::254, metadata.google.internal and the like) are always refused, also after DNS resolution and redirects: call the service's public address instead." },
  HTTP_HOST_NOT_ALLOWED: { status: 500, hint: "Add the host to BIFROST_HTTP_ALLOWED_HOSTS for this workflow or org (see the README's \"ctx.http\"), or call a host that is on the list." },
  HTTP_BODY_TOO_LARGE: { status: 500, hint: "Send or fetch less data per call (page through large collections), or raise BIFROST_HTTP_MAX_REQUEST_BYTES or BIFROST_HTTP_MAX_RESPONSE_BYTES." },
  HTTP_TIMEOUT: { status: 500, hint: "The server did not answer in time: pass a longer `timeout` to the ctx.http call (it never runs past the invocation's deadline) or raise BIFROST_HTTP_TIMEOUT_MS." },
  HTTP_NETWORK_ERROR: { status: 500, hint: "Check that the host name resolves and that the server is reachable from the engine (firewall, proxy, TLS certificate); idempotent calls are already retried." },
  HTTP_TOO_MANY_REDIRECTS: { status: 500, hint: "The server redirected more than 5 times in a row: call the final address directly." },
  HTTP_RETRY_BUDGET_EXHAUSTED: { status: 500, hint: "The server kept refusing (rate limits or outages) for longer than the call's budget: raise `retry.attempts` or `retry.maxWait` of the ctx.http call, make fewer calls, or set a per-host limit in BIFROST_HTTP_HOST_LIMITS (see the README's \"ctx.http\")." },
  HTTP_ERROR: { status: 500, hint: "The server answered with an error status: the message has the status and an excerpt of the answer; pass throwOnError: false to handle such answers in the workflow." },
  // OAuth
  CONNECTION_NOT_FOUND: { status: 404, hint: "Connect the provider for this org (or globally) first: GET /api/oauth/providers/:name/authorize?org=… for authorization code, POST /api/oauth/connections/:provider/connect?org=… for client credentials; GET /api/oauth/connections lists the connections (see the README's \"OAuth\").", cli: "Connect the provider for this org (or globally) first with `bifrost oauth connect <provider> [--org O]`; `bifrost oauth connections list` lists the connections." },
  OAUTH_PROVIDER_NOT_FOUND: { status: 404, hint: "List the providers with GET /api/oauth/providers, or add it with PUT /api/oauth/providers/:name (see the README's \"OAuth\").", cli: "List the providers with `bifrost oauth providers list`, or add it with `bifrost oauth providers add <name> ...`." },
  OAUTH_WRONG_GRANT: { status: 409, hint: "Client-credentials providers connect with POST /api/oauth/connections/:provider/connect; authorization-code providers with GET /api/oauth/providers/:name/authorize. Change the provider's grantType if it is wrong.", cli: "`bifrost oauth connect <provider>` connects either kind; change the provider's --grant-type if it is wrong." },
  OAUTH_STATE_INVALID: { status: 400, hint: "The authorization link was used already, has expired (10 minutes) or did not come from this engine: start the authorization again from Bifrost (GET /api/oauth/providers/:name/authorize).", cli: "The authorization link was used already, has expired (10 minutes) or did not come from this engine: run `bifrost oauth connect <provider>` again for a new link." },
  OAUTH_FAILED: { status: 400, hint: "The provider refused: follow the fix given with the error's category (the README's \"OAuth\" has the table), then connect again.", cli: "The provider refused: follow the fix given with the error's category, then run `bifrost oauth connect <provider>` again; `bifrost oauth diagnose <provider>` checks the configuration." },
  OAUTH_NEEDS_REAUTH: { status: 409, hint: "Only a person can fix this connection: follow the fix of its last failure (GET /api/oauth/connections), then connect it again; the engine does not call the provider until then.", cli: "Only a person can fix this connection: follow the fix of its last failure (`bifrost oauth connections list`), then run `bifrost oauth connect <provider>` again." },
  OAUTH_UNAVAILABLE: { status: 503, hint: "The provider could not be reached, answered with a server error or is rate limiting: the engine retries with backoff; check the provider's status and the engine's outbound network if it lasts." },
  // engine
  LEASE_LOST: { status: 503, hint: "This engine could not renew the run's lease in time; the run resumes from its last committed step on whichever engine claims it next." },
  STORAGE_UNAVAILABLE: { status: 503, hint: "Check that the data directory is writable or the database is reachable." },
  ENGINE_STOPPING: { status: 503, hint: "The engine is shutting down; retry against another instance or after restart." },
  CONFIG_INVALID: { status: 500, hint: "Fix the environment variable named in the message (see the README's configuration table)." },
  SECRET_KEY_INVALID: { status: 500, hint: "Set BIFROST_SECRET_KEY to the key this database's secrets were sealed with (32 bytes as base64 or 64 hex digits), or restore secret.key in the data directory." },
  SECRET_CORRUPT: { status: 500, hint: "A stored secret failed its integrity check (it was changed in the database, or sealed under another key); rotate it to replace it." },
  // ctx.state
  STATE_INVALID: { status: 500, hint: "Name ctx.state keys with 1 to 128 letters, digits, \"_\", \".\", \":\" or \"-\" (starting with a letter or digit) and store JSON values (objects, arrays, strings, numbers, booleans, null); remove a key with ctx.state.delete(key)." },
  STATE_TOO_LARGE: { status: 500, hint: "Keep ctx.state small (by default a value is at most 64 KB of JSON, and a workflow keeps at most 1,000 keys per org): store a cursor, a token or a time there, not the data itself, and delete keys that are no longer needed." },
  STATE_NOT_FOUND: { status: 404, hint: "List the workflow's state keys with GET /api/workflows/:name/state?org=<org> (without org: the runs without an org); a key exists once a run stored it with ctx.state.set.", cli: "List the workflow's state keys with `bifrost state list <workflow> --org <org>` (without --org: the runs without an org); a key exists once a run stored it with ctx.state.set." },
  // run control (cancel, retry)
  RUN_NOT_CANCELLABLE: { status: 409, hint: "The run has already finished: nothing is left to cancel. Retry it (POST /api/runs/:id/retry) or trigger a new run to do the work again.", cli: "The run has already finished: nothing is left to cancel. Retry it with `bifrost runs retry <run-id>` or start a new one with `bifrost run <workflow>`." },
  RUN_NOT_RETRYABLE: { status: 409, hint: "Only a failed, timed-out or cancelled run can be retried: wait for a queued or running run to end; trigger a new run to repeat one that succeeded." },
  // the CLI as a client of a server (BIFROST_URL)
  SERVER_UNREACHABLE: { status: 503, hint: "Check that BIFROST_URL is the address of a running Bifrost server (for example http://127.0.0.1:7071) that can be reached from here, or unset BIFROST_URL to work on the local data directory." },
  SERVER_REPLY_INVALID: { status: 502, hint: "Check that BIFROST_URL is the base address of a Bifrost server (scheme, host and port, for example http://127.0.0.1:7071) and that it runs the same release as this command." },
  CLI_USAGE: { status: 400, hint: "Run `bifrost help` for usage." },
  INTERNAL: { status: 500, hint: "An unexpected engine error; the engine log has details.", cli: "An unexpected error; the stack above says where. Run again with LOG_LEVEL=debug for the engine log, and report it if it repeats." },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * A code's status and fix. `hint` is the default, shown by the HTTP API and stored in run records;
 * `cli` replaces it in the terminal where the HTTP wording (routes, bodies, headers) would be false
 * there. Every hint must be true on the surface that shows it.
 */
export interface ErrorCodeInfo {
  status: number;
  hint: string;
  cli?: string;
}

export type Surface = "http" | "cli";

/** The registry's fix for a code, in the words of the surface that shows it. */
export function hintFor(code: ErrorCode, surface: Surface): string {
  const info: ErrorCodeInfo = ERROR_CODES[code];
  return (surface === "cli" ? info.cli : undefined) ?? info.hint;
}

/** Plain-data form of an error: what crosses the sandbox boundary, the API and storage. */
export interface ErrorData {
  code: string;
  message: string;
  category?: string;
  fix?: string;
  step?: string;
  stack?: string;
  details?: unknown;
}

export class BifrostError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details?: unknown;
  readonly fix: string;
  /** The fix the thrower gave for this very case, if any; it beats the registry's hint everywhere. */
  readonly givenFix: string | undefined;
  /** A failure category (OAuth's `token_expired`, `permission_denied`, …) where one applies. */
  readonly category: string | undefined;

  constructor(code: ErrorCode, message: string, options: { details?: unknown; cause?: unknown; fix?: string; category?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "BifrostError";
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.details = options.details;
    this.givenFix = options.fix;
    this.fix = options.fix ?? ERROR_CODES[code].hint;
    this.category = options.category;
  }

  /** The fix to show on one surface: the thrower's own, else the registry's for that surface. */
  fixFor(surface: Surface): string {
    return this.givenFix ?? hintFor(this.code, surface);
  }

  toData(): ErrorData {
    const data: ErrorData = { code: this.code, message: this.message, fix: this.fix };
    if (this.category !== undefined) data.category = this.category;
    if (this.details !== undefined) data.details = this.details;
    return data;
  }
}

export function isBifrostError(value: unknown): value is BifrostError {
  return value instanceof BifrostError;
}

/** Coerce anything thrown into an Error (the engine never rethrows non-Errors). */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === "string" ? value : JSON.stringify(value));
}
