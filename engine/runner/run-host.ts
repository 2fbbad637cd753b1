import { mapStack } from "../../sandbox/index.js";
import type { HostHandler } from "../../sandbox/index.js";
import { LOG_LEVELS, type Lease, type LogLevel, type LogRecord, type RunRecord, type Storage } from "../../storage/types.js";
import { BifrostError, type ErrorData } from "../../common/errors.js";
import type { EngineEvents } from "../events.js";
import type { Logger } from "../logger.js";

export interface RunHostLimits {
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

/** Checks a value the guest asked to store; JSON-ness was already enforced inside the sandbox. */
export function checkResultSize(value: unknown, maxBytes: number, what: string): void {
  const bytes = Buffer.byteLength(JSON.stringify(value ?? null));
  if (bytes > maxBytes) {
    throw new BifrostError("RESULT_TOO_LARGE", `${what} is ${bytes} bytes; the limit is ${maxBytes} bytes`);
  }
}

/**
 * The host side of one run's ctx: log lines (sequence-numbered, written in order, mirrored to pino)
 * and durable steps. One instance per invocation; the run's lease guarantees a single writer.
 */
export class RunHost {
  private seq: number;
  private buffer: LogRecord[] = [];
  private writing: Promise<void> = Promise.resolve();
  private dropped = 0;
  private readonly log: Logger;
  /** Steps committed during this invocation: a timed-out invocation that made progress may resume. */
  committedSteps = 0;
  lastFailedStep: { name: string; message: string } | undefined;

  constructor(
    private readonly run: RunRecord,
    startSeq: number,
    private readonly deps: Deps,
  ) {
    this.seq = startSeq;
    this.log = deps.logger.child({ runId: run.id, workflow: run.workflow });
    this.lease = { runId: run.id, owner: run.leaseOwner ?? "", token: run.leaseToken };
  }

  /** The claim this invocation runs under: storage refuses its writes once the run is claimed again. */
  private readonly lease: Lease;

  readonly handler: HostHandler = async (op, args) => {
    if (!isRecord(args)) throw new BifrostError("VALIDATION_FAILED", `bad arguments for ${op}`);
    switch (op) {
      case "log":
        this.append(LOG_LEVELS.includes(args.level as LogLevel) ? (args.level as LogLevel) : "info", String(args.msg ?? ""), args.data, typeof args.step === "string" ? args.step : undefined);
        return null;
      case "step.begin":
        return this.beginStep(String(args.name));
      case "step.end":
        return this.endStep(String(args.name), args);
      default:
        throw new BifrostError("VALIDATION_FAILED", `unknown host call "${op}"`);
    }
  };

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
    if (Buffer.byteLength(msg) > maxLogMessageBytes) msg = `${Buffer.from(msg).subarray(0, maxLogMessageBytes).toString()}… [truncated]`;
    if (data !== undefined) {
      const bytes = Buffer.byteLength(JSON.stringify(data));
      if (bytes > maxLogDataBytes) data = { truncated: true, bytes };
    }
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
      this.log.error({ err, lines: lines.length }, "could not store run log lines");
      return;
    }
    for (const line of lines) this.deps.events.emit("run:log", { runId: this.run.id, line });
  }

  /** Resolves when every line appended so far is stored. */
  async flush(): Promise<void> {
    let current: Promise<void>;
    do {
      current = this.writing;
      await current;
    } while (current !== this.writing);
    if (this.dropped > 0) this.log.warn({ dropped: this.dropped }, "run log lines dropped at the per-run limit");
  }

  private async beginStep(name: string): Promise<{ done: boolean; result?: unknown }> {
    const step = await this.deps.storage.steps.begin(this.lease, name, this.deps.now());
    if (step.status === "succeeded") return { done: true, result: step.result };
    return { done: false };
  }

  private async endStep(name: string, args: Record<string, unknown>): Promise<null> {
    const finishedAt = this.deps.now();
    if (args.ok === true) {
      checkResultSize(args.result, this.deps.limits.maxResultBytes, `the result of step "${name}"`);
      await this.deps.storage.steps.finish(this.lease, name, { status: "succeeded", result: args.result ?? null, finishedAt });
      this.committedSteps += 1;
      this.deps.events.emit("step:finished", { runId: this.run.id, name, status: "succeeded" });
      return null;
    }
    const raw = isRecord(args.error) ? args.error : {};
    const error: ErrorData = {
      code: typeof raw.code === "string" ? raw.code : "WORKFLOW_ERROR",
      message: String(raw.message ?? "step failed"),
      step: name,
    };
    if (typeof raw.stack === "string") error.stack = mapStack(raw.stack, this.deps.sourceMap);
    this.lastFailedStep = { name, message: error.message };
    await this.deps.storage.steps.finish(this.lease, name, { status: "failed", error, finishedAt });
    this.deps.events.emit("step:finished", { runId: this.run.id, name, status: "failed" });
    return null;
  }
}
