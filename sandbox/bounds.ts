import { capString, DEFAULT_JSON_DEPTH } from "../common/json-bounds.js";

/**
 * Bounds on everything the guest hands the host. The prelude cuts to the same sizes first (so huge
 * values are never copied out), but these are what the host enforces, whatever the guest claims.
 */
export const GUEST_BOUNDS = {
  /** Nesting of a result, step result or log data (deeper is RESULT_NOT_SERIALIZABLE). */
  valueDepth: DEFAULT_JSON_DEPTH,
  /** JSON text of one host call's arguments, and of the invocation's envelope, in UTF-16 units. */
  bridgeChars: 4 * 1024 * 1024,
  errorMessageChars: 8 * 1024,
  stackChars: 16 * 1024,
  stackFrames: 50,
  /** Error names and a workflow's own error codes. */
  nameChars: 200,
  stepNameChars: 200,
  /** Host call op names (the prelude's are short literals). */
  opChars: 64,
} as const;

/** Error data thrown by workflow code, bounded. Nothing in it is an engine code. */
export interface GuestError {
  name: string;
  message: string;
  stack?: string;
  /** The workflow's own `err.code`: data for the user, never the run's code. */
  code?: string;
  /** Id of a host fault the error carried out of the sandbox (see RunHost faults). */
  fault?: string;
}

// C0 and C1 control characters, DEL included.
function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/** Why a step name is refused, or undefined if it is valid: non-empty, ≤200 characters, no control characters. */
export function stepNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string" || name.length === 0) return "a step name must be a non-empty string";
  if (name.length > GUEST_BOUNDS.stepNameChars) return `a step name must be at most ${GUEST_BOUNDS.stepNameChars} characters (got ${name.length})`;
  if (hasControlChar(name)) return "a step name must not contain control characters (newlines, tabs, ...)";
  return undefined;
}

/** Cuts a stack to its first frames and a bounded length, before anything parses it. */
export function capStack(stack: string): string {
  let text = capString(stack, GUEST_BOUNDS.stackChars);
  let frames = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) {
    frames += 1;
    if (frames > GUEST_BOUNDS.stackFrames) {
      text = `${text.slice(0, i)}\n    … more frames cut`;
      break;
    }
  }
  return text;
}

function boundedString(value: unknown, max: number): string | undefined {
  return typeof value === "string" ? capString(value, max) : undefined;
}

/** Fault ids are UUIDs minted by the host; anything else cannot name one. */
const FAULT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Reads error data the guest handed back (any JSON value) into a bounded GuestError. */
export function readGuestError(raw: unknown): GuestError {
  const r = raw !== null && typeof raw === "object" && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const name = boundedString(r.name, GUEST_BOUNDS.nameChars) || "Error";
  const message = boundedString(r.message, GUEST_BOUNDS.errorMessageChars) ?? "";
  const error: GuestError = { name, message };
  const stack = boundedString(r.stack, GUEST_BOUNDS.stackChars);
  if (stack) error.stack = capStack(stack);
  const code = boundedString(r.code, GUEST_BOUNDS.nameChars);
  if (code) error.code = code;
  if (typeof r.fault === "string" && r.fault.length === 36 && FAULT_ID.test(r.fault)) error.fault = r.fault;
  return error;
}
