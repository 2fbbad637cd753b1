import { BifrostError } from "../common/errors.js";
import { parseBoundedJson, type JsonBounds, type JsonViolation } from "../common/json-bounds.js";
import { GUEST_BOUNDS, readGuestError, type GuestError } from "./bounds.js";

/**
 * How one invocation ended, as the host saw it. Only `threw` carries anything the guest wrote, and
 * that is bounded data (GuestError); every other kind is decided from host-side state.
 */
export type InvocationOutcome =
  | { kind: "returned"; value: unknown }
  | { kind: "threw"; error: GuestError }
  /** What the guest handed back broke a bound before the host parsed it. */
  | { kind: "refused"; code: "RESULT_TOO_LARGE" | "RESULT_NOT_SERIALIZABLE"; message: string }
  | { kind: "limit"; limit: "deadline" | "cpu" | "memory" }
  | { kind: "aborted"; reason: string }
  | { kind: "crashed"; message: string };

/** JSON text from the guest (a host call's arguments, the invocation's envelope): a value at the allowed depth sits one level down in it. */
const GUEST_JSON: JsonBounds = { maxLength: GUEST_BOUNDS.bridgeChars, maxDepth: GUEST_BOUNDS.valueDepth + 1 };

const CALL_SUBJECT: Record<string, string> = { "step.end": "a step result", log: "log data" };

/** A bound broken by JSON the guest sent, as the host error it is. */
function refusal(subject: string, violation: JsonViolation): BifrostError {
  if (violation.reason === "size") {
    return new BifrostError("RESULT_TOO_LARGE", `${subject} is ${violation.length} characters of JSON; the limit is ${GUEST_BOUNDS.bridgeChars}`);
  }
  if (violation.reason === "depth") {
    return new BifrostError("RESULT_NOT_SERIALIZABLE", `${subject} is nested deeper than ${GUEST_BOUNDS.valueDepth} levels`);
  }
  return new BifrostError("RESULT_NOT_SERIALIZABLE", `${subject} is not valid JSON`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * The arguments of one host call, parsed only after their length and nesting were checked: a huge
 * or deeply nested text is refused unread (RESULT_TOO_LARGE / RESULT_NOT_SERIALIZABLE).
 */
export function parseHostArgs(op: string, argsJson: unknown): unknown {
  if (typeof argsJson !== "string") throw new BifrostError("VALIDATION_FAILED", `bad arguments for ${op}`);
  const parsed = parseBoundedJson(argsJson, GUEST_JSON);
  if (!parsed.ok) throw refusal(CALL_SUBJECT[op] ?? `the arguments of ${op}`, parsed.violation);
  return parsed.value;
}

const MALFORMED: GuestError = { name: "Error", message: "the workflow handed back an unreadable result (did it replace JSON or other built-ins?)" };

/** Reads the prelude's `{ok, value}` / `{ok: false, error}` envelope, bounded before it is parsed. */
export function readEnvelope(raw: unknown): InvocationOutcome {
  if (typeof raw !== "string") return { kind: "threw", error: { ...MALFORMED } };
  const parsed = parseBoundedJson(raw, GUEST_JSON);
  if (!parsed.ok) {
    if (parsed.violation.reason === "syntax") return { kind: "threw", error: { ...MALFORMED } };
    const e = refusal("the value the run returned", parsed.violation);
    return { kind: "refused", code: e.code as "RESULT_TOO_LARGE" | "RESULT_NOT_SERIALIZABLE", message: e.message };
  }
  const envelope = parsed.value;
  if (isRecord(envelope) && envelope.ok === true) return { kind: "returned", value: envelope.value ?? null };
  if (isRecord(envelope) && envelope.ok === false) return { kind: "threw", error: readGuestError(envelope.error) };
  return { kind: "threw", error: { ...MALFORMED } };
}
