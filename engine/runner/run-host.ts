import { mapStack, readGuestError, stepNameProblem, type GuestError, type HostFaultHandler, type HostHandler } from "../../sandbox/index.js";
import { LOG_LEVELS, type Lease, type LogLevel, type LogRecord, type RunRecord, type Storage } from "../../storage/types.js";
import { BifrostError, ERROR_CODES, type ErrorData } from "../../common/errors.js";
import { capString } from "../../common/json-bounds.js";
import type { EngineEvents } from "../events.js";
import type { Logger } from "../logger.js";
import type { InvocationHttp } from "../http/invocation.js";
import type { InvocationOAuth } from "../oauth/ctx-oauth.js";
import { SecretRedactor } from "./secret-redactor.js";
import { HostFaults, storageFault } from "./faults.js";
import { boundLogData, resultProblem } from "./result-bounds.js";
import { RunState } from "./run-state.js";
import { DEFAULT_STATE_LIMITS, type StateLimits } from "../state/keys.js";
import { retryDelayMs } from "./backoff.js";
import { formatDuration } from "../duration.js";
import type { RetryDefinition } from "../registry/definition.js";
import { DURABLE_WAIT_MS, isSleepStepName, readStepRetry, sleepStepName, wakeTime } from "./waits.js";

export interface RunHostLimits extends StateLimits {
  maxLogLines: number;
  maxLogMessageBytes: number;
  maxLogDataBytes: number;
  maxResultBytes: number;
}

export const DEFAULT_RUN_HOST_LIMITS: RunHostLimits = {
  maxLogLines: 10_000,
  maxLogMessageBytes: 8 * 1024,
  maxLogDataBytes: 64 * 1024,
  maxResultBytes: 1024 * 1024,
  ...DEFAULT_STATE_LIMITS,
};

interface Deps {
  storage: Storage;
  events: EngineEvents;
  logger: Logger;
  now: () => number;
  sourceMap: string;
  limits: RunHostLimits;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === "string" && (LOG_LEVELS as readonly string[]).includes(v);
}

/**
 * What the host may do to the invocation it serves (set by the executor, which knows its limits):
 * wait in place until `deadline`, or end it for a wait that is longer (`yieldUntil`) or that would
 * pass the run's `timeout` (`timeOut`).
 */
export interface InvocationControl {
  /** When this invocation is stopped (its chunkTimeout, or the run's timeout if sooner). */
  deadline: number;
  /** When the run's `timeout` ends it. */
  runDeadline: number;
  /** Aborted when the invocation ends for any reason: a wait in place stops with it. */
  signal: AbortSignal;
  /** True once the engine asked the run to stop (shutdown): it resumes anyway, so nothing waits. */
  stopping(): boolean;
  /** Ends the invocation; the run is queued again and resumes at `at` from its last committed step. */
  yieldUntil(at: number, line: string): void;
  /** Ends the invocation and the run `timed_out` with this error. */
  timeOut(error: ErrorData): void;
}

/** The ctx.chunks name of a chunk step `name#i`, or undefined for other steps. */
function chunksNameOf(step: string): string | undefined {
  const hash = step.lastIndexOf("#");
  if (hash <= 0 || hash === step.length - 1) return undefined;
  for (let i = hash + 1; i < step.length; i++) {
    const c = step.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  return step.slice(0, hash);
}

/** Errors that repeat whatever is tried again, or that decide the invocation themselves: no step retry. */
const NOT_RETRIED = new Set(["LEASE_LOST", "STORAGE_UNAVAILABLE", "RESULT_TOO_LARGE", "RESULT_NOT_SERIALIZABLE", "STEP_INVALID", "STEP_RETRY_INVALID", "SLEEP_INVALID"]);

/** Resolves after `ms`, or at once when `signal` aborts. */
function waitInPlace(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** A step name the guest sent, for host-authored messages: valid, or not quoted at all. */
function named(name: unknown, what: string): string {
  return typeof name === "string" && stepNameProblem(name) === undefined ? `${what}("${name}")` : what;
}

/**
 * The host side of one run's ctx: log lines (sequence-numbered, written in order, mirrored to pino)
 * and durable steps. One instance per invocation; the run's lease guarantees a single writer.
 *
 * Everything the guest sends is checked here again (the prelude is not trusted): step names and
 * their order, log fields, result sizes. What the host refuses, and every storage write that
 * fails, is a host fault: recorded under an id the guest receives with the error, so a run that
 * ends on it gets the host's code, never one the guest wrote.
 */
export class RunHost {
  private seq: number;
  private buffer: LogRecord[] = [];
  private writing: Promise<void> = Promise.resolve();
  private dropped = 0;
  private readonly log: Logger;
  private readonly faults = new HostFaults();
  /**
   * Steps this invocation began, and whether they ended (a name is usable once per invocation;
   * `retrying`: it failed and its retry policy grants it another try now).
   */
  private readonly steps = new Map<string, "running" | "ended" | "retrying">();
  /** Of the steps running or retrying here: their retry policy and the attempt their record counts. */
  private readonly tries = new Map<string, { attempt: number; retry: RetryDefinition | undefined; startedAt: number }>();
  /** Per ctx.chunks name: the longest a chunk of it took to commit in this invocation. */
  private readonly chunkTook = new Map<string, number>();
  /** ctx.sleep calls so far in this invocation: the n-th is the step record `sleep#n`. */
  private sleeps = 0;
  private invocation: InvocationControl | undefined;
  /** Steps committed during this invocation: a timed-out invocation that made progress may resume. */
  committedSteps = 0;
  /** ctx.http of this invocation (set by the executor, which knows its deadline and how it may yield). */
  private http: InvocationHttp | undefined;
  /** ctx.oauth of this invocation (set by the executor). */
  private oauth: InvocationOAuth | undefined;
  /** Tokens handed to the guest: replaced in everything the run stores. */
  readonly redactor = new SecretRedactor();
  lastFailedStep: { name: string; message: string } | undefined;

  constructor(
    private readonly run: RunRecord,
    startSeq: number,
    private readonly deps: Deps,
  ) {
    this.seq = startSeq;
    this.log = deps.logger.child({ runId: run.id, workflow: run.workflow });
    this.lease = { runId: run.id, owner: run.leaseOwner ?? "", token: run.leaseToken };
    this.state = new RunState(run, this.lease, deps);
  }

  /** The claim this invocation runs under: storage refuses its writes once the run is claimed again. */
  private readonly lease: Lease;
  /** ctx.state of this invocation (./run-state.ts). */
  private readonly state: RunState;

  /** Log lines the run may still write; passed into the sandbox, which drops the rest at the source. */
  get logBudget(): number {
    return Math.max(0, this.deps.limits.maxLogLines - this.seq);
  }

  /** The storage fault (LEASE_LOST or STORAGE_UNAVAILABLE) that decides this invocation, if any. */
  get storageFault(): ErrorData | undefined {
    return this.faults.storage;
  }

  readonly handler: HostHandler = async (op, args) => {
    if (!isRecord(args)) throw new BifrostError("VALIDATION_FAILED", `bad arguments for ${op}`);
    switch (op) {
      case "log":
        this.guestLog(args);
        return null;
      case "log.dropped":
        if (typeof args.count === "number" && Number.isSafeInteger(args.count) && args.count > 0) this.dropped += args.count;
        return null;
      case "step.begin":
        return this.beginStep(args.name, args.hasFn === true, args.options);
      case "step.end":
        return this.endStep(args);
      case "chunks.check":
        return this.checkChunks(args);
      case "sleep":
        return this.sleep(args);
      case "http.request":
        if (!this.http) throw new BifrostError("VALIDATION_FAILED", "ctx.http is not available here");
        return this.http.request(args);
      case "oauth.getConnection":
        if (!this.oauth) throw new BifrostError("VALIDATION_FAILED", "ctx.oauth is not available here");
        return this.oauth.getConnection(args);
      case "state.get":
      case "state.set":
      case "state.delete":
        return this.state.handle(op, args);
      case "value.notSerializable":
        throw new BifrostError("RESULT_NOT_SERIALIZABLE", `${this.valueSubject(args)} is not JSON-serializable: ${typeof args.reason === "string" ? capString(args.reason, 200) : "unknown reason"}`);
      case "value.tooLarge":
        throw new BifrostError("RESULT_TOO_LARGE", `${this.valueSubject(args)} is ${typeof args.length === "number" ? args.length : "too many"} characters of JSON; the limit is ${this.deps.limits.maxResultBytes} bytes`);
      default:
        throw new BifrostError("VALIDATION_FAILED", `unknown host call "${op}"`);
    }
  };

  useHttp(http: InvocationHttp): void {
    this.http = http;
  }

  useOAuth(oauth: InvocationOAuth): void {
    this.oauth = oauth;
  }

  useInvocation(control: InvocationControl): void {
    this.invocation = control;
  }

  /**
   * The step that was running when the invocation was stopped, if it has a retry policy with tries
   * left: a chunk that alone outlasts its chunkTimeout is tried again as its policy says.
   */
  retryOfRunningStep(): { name: string; attempt: number; retry: RetryDefinition; delayMs: number } | undefined {
    for (const [name, state] of this.steps) {
      const tried = this.tries.get(name);
      if (state !== "running" || !tried?.retry || tried.attempt >= tried.retry.attempts) continue;
      return { name, attempt: tried.attempt, retry: tried.retry, delayMs: retryDelayMs(tried.retry, tried.attempt + 1) };
    }
    return undefined;
  }

  /** Records a fault the guest learns of in a reply's value (ctx.http's error answers), and returns its id. */
  recordFault(op: string, err: BifrostError): string {
    return this.faults.record(op, err).id;
  }

  /** Records what the host refused or failed at, and tells the guest under which fault id. */
  readonly onFault: HostFaultHandler = (op, err) => {
    const fault = this.faults.record(op, err);
    if (fault.error.code === "INTERNAL" || fault.error.code === "STORAGE_UNAVAILABLE" || fault.error.code === "LEASE_LOST") {
      this.log.warn({ op, code: fault.error.code, err: fault.error.message }, "a host call of the run failed");
    }
    const reply: { code: string; message: string; fault: string; category?: string; fix?: string } = { code: fault.error.code, message: fault.error.message, fault: fault.id };
    if (fault.error.category !== undefined && fault.error.fix !== undefined) {
      reply.category = fault.error.category;
      reply.fix = fault.error.fix;
    }
    return reply;
  };

  /**
   * The error a guest error stands for: the host's own record when it carries a fault id the host
   * handed out, else WORKFLOW_ERROR with the workflow's name and code kept as details.
   */
  errorFromGuest(e: GuestError): ErrorData {
    const fault = e.fault === undefined ? undefined : this.faults.get(e.fault);
    const error: ErrorData = fault
      ? { ...fault.error }
      : { code: "WORKFLOW_ERROR", message: e.message || e.name, fix: ERROR_CODES.WORKFLOW_ERROR.hint, details: e.code === undefined ? { name: e.name } : { name: e.name, code: e.code } };
    if (e.stack) error.stack = e.stack;
    return this.redactor.value(error);
  }

  /** Why the run's result cannot be stored, decided here on the parsed value. */
  resultProblem(value: unknown): ErrorData | undefined {
    return resultProblem(value, this.deps.limits.maxResultBytes, "the run result")?.toData();
  }

  private valueSubject(args: Record<string, unknown>): string {
    return args.what === "step" && typeof args.name === "string" && stepNameProblem(args.name) === undefined ? `the result of step "${args.name}"` : "the run result";
  }

  private guestLog(args: Record<string, unknown>): void {
    const level = isLogLevel(args.level) ? args.level : "info";
    const msg = typeof args.msg === "string" ? args.msg : "";
    const step = typeof args.step === "string" && stepNameProblem(args.step) === undefined ? args.step : undefined;
    this.append(level, msg, args.data, step);
  }

  /** Appends a log line. Engine-authored lines use this too, so everything shares one sequence. */
  append(level: LogLevel, msg: string, data?: unknown, step?: string): void {
    const { maxLogLines, maxLogMessageBytes, maxLogDataBytes } = this.deps.limits;
    if (this.seq >= maxLogLines) {
      this.dropped += 1;
      return;
    }
    if (this.seq === maxLogLines - 1) {
      level = "warn";
      msg = `log limit of ${maxLogLines} lines reached: further lines of this run are dropped`;
      data = undefined;
      step = undefined;
    }
    // Cut in characters first, so measuring a huge string in bytes costs nothing; the margin keeps
    // a token that straddles the first cut whole until it is redacted.
    msg = this.redactor.text(capString(msg, maxLogMessageBytes + 1 + this.redactor.longest, ""));
    if (Buffer.byteLength(msg) > maxLogMessageBytes) msg = `${Buffer.from(msg).subarray(0, maxLogMessageBytes).toString()}… [truncated]`;
    if (data !== undefined) data = boundLogData(this.redactor.value(data), maxLogDataBytes);
    this.seq += 1;
    const line: LogRecord = { runId: this.run.id, seq: this.seq, ts: this.deps.now(), level, msg };
    if (data !== undefined) line.data = data;
    if (step !== undefined) line.step = step;
    this.log[level]({ seq: line.seq, step, data }, msg);
    this.buffer.push(line);
    if (this.buffer.length === 1) this.writing = this.writing.then(() => this.writeBuffered());
  }

  private async writeBuffered(): Promise<void> {
    const lines = this.buffer;
    this.buffer = [];
    if (lines.length === 0) return;
    try {
      await this.deps.storage.logs.append(this.lease, lines);
    } catch (err) {
      // The guest never sees this write, but it decides the invocation like any storage fault.
      const fault = this.faults.record("log", storageFault("the run's log lines", err));
      this.log.error({ err, code: fault.error.code, lines: lines.length }, "could not store run log lines");
      return;
    }
    for (const line of lines) this.deps.events.emit("run:log", { runId: this.run.id, line });
  }

  /** Resolves when every line appended so far is stored (or failed to be). */
  async flush(): Promise<void> {
    let current: Promise<void>;
    do {
      current = this.writing;
      await current;
    } while (current !== this.writing);
    if (this.dropped > 0) {
      this.log.warn({ dropped: this.dropped }, "run log lines dropped at the per-run limit");
      this.dropped = 0;
    }
  }

  /** A storage call of this invocation; its failure is a host fault, never the workflow's. */
  private async store<T>(what: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      throw storageFault(what, err);
    }
  }

  private async beginStep(name: unknown, hasFn: boolean, options: unknown): Promise<{ done: boolean; result?: unknown }> {
    const problem = stepNameProblem(name);
    if (problem) throw new BifrostError("STEP_INVALID", `ctx.step(name, fn): ${problem}`);
    const stepName = name as string;
    if (!hasFn) throw new BifrostError("STEP_INVALID", `ctx.step("${stepName}", fn): fn must be a function`);
    if (isSleepStepName(stepName)) throw new BifrostError("STEP_INVALID", `step name "${stepName}" is reserved for the records of ctx.sleep; give the step another name`);
    const retry = readStepRetry(options, `ctx.step("${stepName}", fn, options)`);
    const state = this.steps.get(stepName);
    if (state !== undefined && state !== "retrying") throw new BifrostError("STEP_INVALID", `step name "${stepName}" is used twice in one run; give each step a unique name`);
    await this.yieldBeforeChunk(stepName);
    this.steps.set(stepName, "running");
    const step = await this.store(`step "${stepName}"`, () => this.deps.storage.steps.begin(this.lease, stepName, this.deps.now()));
    if (step.status === "succeeded") {
      this.steps.set(stepName, "ended");
      return { done: true, result: step.result };
    }
    this.tries.set(stepName, { attempt: step.attempts, retry, startedAt: step.startedAt });
    return { done: false };
  }

  /**
   * Between chunks: when the next chunk would not fit in what is left of this invocation's
   * chunkTimeout (judged by the longest chunk of the same call so far), the invocation ends here
   * and the run goes on at once in a fresh one with a whole chunkTimeout, instead of starting a
   * chunk that the deadline would cut off and run again. Only after progress, and only when the
   * deadline is the chunk's (a fresh invocation gets more time), never the run's timeout.
   */
  private async yieldBeforeChunk(name: string): Promise<void> {
    const base = chunksNameOf(name);
    const inv = this.invocation;
    const took = base === undefined ? undefined : this.chunkTook.get(base);
    if (took === undefined || !inv || this.committedSteps === 0 || inv.deadline >= inv.runDeadline) return;
    const now = this.deps.now();
    const left = inv.deadline - now;
    if (now + took < inv.deadline) return;
    const stored = await this.store(`step "${name}"`, () => this.deps.storage.steps.get(this.run.id, name));
    if (stored?.status === "succeeded") return;
    inv.yieldUntil(now, `chunk "${name}" would not finish within this invocation: the last chunk took ${formatDuration(took)} and ${formatDuration(Math.max(0, left))} of chunkTimeout are left; the run goes on at once in a fresh invocation`);
    throw new BifrostError("RUN_ABORTED", `the invocation ends before chunk "${name}"; the run resumes with it in a fresh invocation`);
  }

  private async endStep(args: Record<string, unknown>): Promise<{ retry: boolean } | null> {
    const { name } = args;
    if (typeof name !== "string" || this.steps.get(name) !== "running") {
      throw new BifrostError("STEP_INVALID", `${named(name, "step.end")}: the step is not running in this invocation`);
    }
    const finishedAt = this.deps.now();
    if (args.ok === true) {
      const problem = resultProblem(args.result, this.deps.limits.maxResultBytes, `the result of step "${name}"`);
      if (problem) throw problem;
      await this.store(`the result of step "${name}"`, () => this.deps.storage.steps.finish(this.lease, name, { status: "succeeded", result: this.redactor.value(args.result ?? null), finishedAt }));
      this.steps.set(name, "ended");
      this.committedSteps += 1;
      const base = chunksNameOf(name);
      const tried = this.tries.get(name);
      if (base !== undefined && tried) this.chunkTook.set(base, Math.max(this.chunkTook.get(base) ?? 0, finishedAt - tried.startedAt));
      this.deps.events.emit("step:finished", { runId: this.run.id, name, status: "succeeded" });
      return null;
    }
    const guest = readGuestError(args.error);
    if (guest.stack) guest.stack = mapStack(guest.stack, this.deps.sourceMap);
    const error: ErrorData = { ...this.errorFromGuest(guest), step: name };
    this.lastFailedStep = { name, message: error.message };
    await this.store(`the failure of step "${name}"`, () => this.deps.storage.steps.finish(this.lease, name, { status: "failed", error, finishedAt }));
    this.steps.set(name, "ended");
    this.deps.events.emit("step:finished", { runId: this.run.id, name, status: "failed" });
    return { retry: await this.retryStep(name, error) };
  }

  /**
   * Whether a failed step is tried again at once (after a short pause here). A longer pause is
   * not spent holding the sandbox: the invocation ends and the run resumes when it is over, the
   * failure and its attempt count being in the step record. false: the step's error is thrown.
   */
  private async retryStep(name: string, error: ErrorData): Promise<boolean> {
    const tried = this.tries.get(name);
    const inv = this.invocation;
    if (!tried?.retry || !inv || tried.attempt >= tried.retry.attempts || NOT_RETRIED.has(error.code) || this.faults.storage || inv.stopping()) return false;
    const { attempt, retry } = tried;
    const delay = retryDelayMs(retry, attempt + 1);
    const now = this.deps.now();
    const at = now + delay;
    if (at >= inv.runDeadline) {
      this.append("warn", `step "${name}" failed (attempt ${attempt} of ${retry.attempts}): ${error.message}; not retried, the next try would start after the run's timeout`, undefined, name);
      return false;
    }
    this.append("warn", `step "${name}" failed (attempt ${attempt} of ${retry.attempts}): ${error.message}; retrying in ${formatDuration(delay)}`, { code: error.code }, name);
    // In place only if the next try has as long as this one took: one that failed for want of time
    // (a ctx.http call cut at the deadline) gets a fresh invocation's budget instead.
    if (delay < DURABLE_WAIT_MS && at + (now - tried.startedAt) < inv.deadline) {
      await waitInPlace(delay, inv.signal);
      this.steps.set(name, "retrying");
      return !inv.signal.aborted;
    }
    inv.yieldUntil(at, `step "${name}" is tried again at ${new Date(at).toISOString()} (attempt ${attempt + 1} of ${retry.attempts}) in a fresh invocation; the run waits in the queue meanwhile`);
    return false;
  }

  /**
   * ctx.sleep / ctx.sleepUntil. A wait from DURABLE_WAIT_MS up is committed as the step record
   * `sleep#n` (succeeded, its result and finishedAt the wake time) and ends the invocation; the
   * run resumes at the wake time and the replayed call finds the record: it returns at once once
   * that time has passed, and never starts the wait again. Shorter waits are spent here.
   */
  private async sleep(args: Record<string, unknown>): Promise<null> {
    const inv = this.invocation;
    if (!inv) throw new BifrostError("SLEEP_INVALID", "ctx.sleep is not available here");
    const name = sleepStepName(this.sleeps++);
    const now = this.deps.now();
    let wake = wakeTime(args, now);
    if (wake - now >= DURABLE_WAIT_MS || wake > inv.deadline) {
      const step = await this.store(`the sleep "${name}"`, () => this.deps.storage.steps.get(this.run.id, name));
      const stored = step?.status === "succeeded" ? (step.result as { wakeAt?: unknown } | null)?.wakeAt : undefined;
      if (typeof stored === "number" && Number.isFinite(stored)) wake = stored;
      else {
        if (wake > inv.runDeadline) return this.sleepPastTimeout(name, wake, inv);
        await this.store(`the sleep "${name}"`, async () => {
          await this.deps.storage.steps.begin(this.lease, name, now);
          await this.deps.storage.steps.finish(this.lease, name, { status: "succeeded", result: { wakeAt: wake }, finishedAt: wake });
        });
        this.committedSteps += 1;
      }
      this.steps.set(name, "ended");
    }
    const left = wake - this.deps.now();
    if (left <= 0) return null;
    if (wake > inv.runDeadline) return this.sleepPastTimeout(name, wake, inv);
    if (left < DURABLE_WAIT_MS && wake <= inv.deadline) {
      await waitInPlace(left, inv.signal);
      return null;
    }
    inv.yieldUntil(wake, `sleeping until ${new Date(wake).toISOString()} (${name}); the run waits in the queue and resumes then`);
    return null;
  }

  /** Nothing sleeps past the run's timeout: the run ends timed_out now, not when it would wake. */
  private sleepPastTimeout(name: string, wake: number, inv: InvocationControl): null {
    inv.timeOut({
      code: "RUN_TIMED_OUT",
      message: `ctx.sleep (${name}) would wake at ${new Date(wake).toISOString()}, after the run's timeout ends it at ${new Date(inv.runDeadline).toISOString()}`,
      fix: "Raise the workflow's `timeout` above the sleep, or sleep less; a schedule suits waits longer than a run should last.",
    });
    return null;
  }

  /** Checks a ctx.chunks call and records how many chunks it has (the run record shows done/total). */
  private async checkChunks(args: Record<string, unknown>): Promise<null> {
    const problem = stepNameProblem(args.name);
    if (problem) throw new BifrostError("STEP_INVALID", `ctx.chunks(name, items, { size }, fn): ${problem}`);
    const what = named(args.name, "ctx.chunks");
    const name = args.name as string;
    if (name === "sleep") throw new BifrostError("STEP_INVALID", `${what}: the name "sleep" is reserved (its chunk steps would be named like ctx.sleep's records); choose another`);
    if (args.items !== true) throw new BifrostError("STEP_INVALID", `${what}: items must be an array`);
    if (typeof args.size !== "number" || !Number.isInteger(args.size) || args.size < 1) throw new BifrostError("STEP_INVALID", `${what}: size must be a positive integer`);
    if (args.hasFn !== true) throw new BifrostError("STEP_INVALID", `${what}: fn must be a function`);
    readStepRetry(args.options, `${what}: options`);
    // An array's length: a guest array cannot be longer than 2^32 - 1.
    const { count } = args;
    if (typeof count !== "number" || !Number.isInteger(count) || count < 0 || count > 0xffffffff) throw new BifrostError("STEP_INVALID", `${what}: items must be an array`);
    const total = Math.ceil(count / args.size);
    await this.store(`the chunks of "${name}"`, () => this.deps.storage.chunks.start(this.lease, name, total, this.deps.now()));
    return null;
  }
}
