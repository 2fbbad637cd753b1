import { randomUUID } from "node:crypto";
import { BifrostError, ERROR_CODES, type ErrorCode, type ErrorData } from "../../common/errors.js";
import { capString } from "../../common/json-bounds.js";
import { GUEST_BOUNDS } from "../../sandbox/index.js";

/** An error the host itself produced during an invocation (a refused call, a failed write). */
export interface HostFault {
  /** Unguessable: the guest can only hand back ids it was given. */
  id: string;
  op: string;
  error: ErrorData;
}

/** Faults kept per invocation; a guest that provokes more only loses the oldest ids. */
const MAX_FAULTS = 256;

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === "string") return err;
  try {
    return String(err);
  } catch {
    return "an unreadable error";
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_CODES, code);
}

/** Plain error data for anything thrown on the host side; never throws, never trusts `toData`. */
export function errorDataOf(err: unknown): ErrorData {
  if (err instanceof BifrostError && isErrorCode(err.code)) {
    const data: ErrorData = { code: err.code, message: capString(err.message, GUEST_BOUNDS.errorMessageChars), fix: err.fix };
    if (err.category !== undefined) data.category = err.category;
    if (err.details !== undefined) data.details = err.details;
    return data;
  }
  return { code: "INTERNAL", message: capString(messageOf(err), GUEST_BOUNDS.errorMessageChars), fix: ERROR_CODES.INTERNAL.hint };
}

/** A failed storage write, as the host fault it is: the run is never blamed for it. */
export function storageFault(what: string, err: unknown): BifrostError {
  // Storage names its own failures (LEASE_LOST, STORAGE_UNAVAILABLE); anything else is a defect.
  if (err instanceof BifrostError) return err;
  return new BifrostError("INTERNAL", `${what} could not be stored: ${messageOf(err)}`, { cause: err });
}

/**
 * The faults of one invocation. Storage faults that decide the run regardless of what the workflow
 * did with them are kept apart: LEASE_LOST (write nothing more) outranks STORAGE_UNAVAILABLE
 * (resume later).
 */
export class HostFaults {
  private readonly byId = new Map<string, HostFault>();
  private storageError: ErrorData | undefined;

  record(op: string, err: unknown): HostFault {
    const fault: HostFault = { id: randomUUID(), op, error: errorDataOf(err) };
    const { code } = fault.error;
    if (code === "LEASE_LOST" || (code === "STORAGE_UNAVAILABLE" && this.storageError?.code !== "LEASE_LOST")) this.storageError = fault.error;
    if (this.byId.size >= MAX_FAULTS) this.byId.delete(this.byId.keys().next().value as string);
    this.byId.set(fault.id, fault);
    return fault;
  }

  get(id: string): HostFault | undefined {
    return this.byId.get(id);
  }

  /** The storage fault that decides the invocation, if any. */
  get storage(): ErrorData | undefined {
    return this.storageError;
  }
}
