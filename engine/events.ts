import { EventEmitter } from "node:events";
import type { ErrorData } from "../common/errors.js";
import type { LogRecord, RunRecord } from "../storage/types.js";

export type SandboxLimitKind = "cpu" | "memory" | "deadline";

/** Everything observable the engine does. Tests wait on these instead of sleeping. */
export interface EngineEventMap extends ScheduleEventMap {
  "workflow:registered": { name: string; version: string; sourceKind: "file" | "api"; file: string | null };
  "workflow:rejected": { file: string | null; name?: string; error: ErrorData };
  "workflow:removed": { name: string };
  "run:queued": { run: RunRecord };
  "run:started": { runId: string; workflow: string; attempt: number };
  "run:log": { runId: string; line: LogRecord };
  "step:finished": { runId: string; name: string; status: "succeeded" | "failed" };
  /** Back in the queue; `limit` when a sandbox limit ended the invocation and the run resumes anyway (chunkTimeout). */
  "run:requeued": { runId: string; workflow: string; reason: "retry" | "resume" | "released"; runAt: number; error: ErrorData | null; limit?: SandboxLimitKind };
  /** This engine stopped an invocation because it could no longer be sure it holds the run. */
  "run:interrupted": { runId: string; reason: "lease_lost"; at: number; leaseUntil: number };
  "run:finished": { run: RunRecord };
  /** One invocation is over: its decision and whether storage recorded it (false for abandon). */
  "invocation:ended": { runId: string; decision: "finish" | "requeue" | "abandon"; recorded: boolean };
  /** A webhook workflow got its first secret, or a new one. The secret itself is never in an event. */
  "webhook:secret": { workflow: string; reason: "created" | "rotated" };
}

/** Why a due fire started no run. */
export type FireSkip = "overlap" | "queued" | "dropped" | "missed" | "params";

export type ScheduleChange = "loaded" | "registered" | "fired" | "paused" | "resumed" | "removed" | "synced";

export interface ScheduleEventMap {
  /** A fire created its run (`manual`: trigger-now). `at` is when, so `at - scheduledFor` is the lag. */
  "schedule:fired": { workflow: string; org: string | null; scheduledFor: number; runId: string; at: number; manual: boolean };
  /**
   * A due fire started no run: an unfinished run (overlap skip), a fire already pending (dropped),
   * now pending itself (queued), missed while no engine ran (catchUp), or params the schema refuses.
   * `scheduledFor` is null for missed fires (`from` is the first of them).
   */
  "schedule:skipped": { workflow: string; org: string | null; scheduledFor: number | null; from?: number; reason: FireSkip; at: number };
  /** This engine's view of a schedule changed (its next fire, or paused). */
  "schedule:changed": { workflow: string; org: string | null; nextFireAt: number | null; paused: boolean; reason: ScheduleChange };
  /** A maintenance job (engine/maintenance) ran: what it found. */
  "maintenance:ran": { job: "lease-reaper" | "schedule-check" | "token-refresh"; found: number; at: number };
}

export type EngineEventName = keyof EngineEventMap;

export class EngineEvents {
  private readonly emitter = new EventEmitter();

  constructor(private readonly onListenerError: (event: string, err: unknown) => void = () => {}) {
    this.emitter.setMaxListeners(0);
  }

  on<E extends EngineEventName>(event: E, listener: (payload: EngineEventMap[E]) => void): () => void {
    this.emitter.on(event, listener);
    return () => this.emitter.off(event, listener);
  }

  /** A listener that throws must never break the engine: errors are reported, not propagated. */
  emit<E extends EngineEventName>(event: E, payload: EngineEventMap[E]): void {
    for (const listener of this.emitter.listeners(event)) {
      try {
        (listener as (p: EngineEventMap[E]) => void)(payload);
      } catch (err) {
        this.onListenerError(event, err);
      }
    }
  }

  /** Resolves with the first payload of `event` that matches. */
  next<E extends EngineEventName>(event: E, match: (payload: EngineEventMap[E]) => boolean = () => true): Promise<EngineEventMap[E]> {
    return new Promise((resolve) => {
      const off = this.on(event, (payload) => {
        if (match(payload)) {
          off();
          resolve(payload);
        }
      });
    });
  }
}
