import { BifrostError } from "../../common/errors.js";
import { capString, DEFAULT_JSON_DEPTH, stringifyBounded } from "../../common/json-bounds.js";
import type { Lease, RunRecord, Storage } from "../../storage/types.js";
import { stateKeyProblem, type StateLimits } from "../state/keys.js";
import { storageFault } from "./faults.js";

interface Deps {
  storage: Storage;
  now: () => number;
  limits: StateLimits;
}

/**
 * The host side of one invocation's ctx.state (`state.get`, `state.set`, `state.delete`). Keys and
 * values are validated here whatever the prelude did; a value is measured on the JSON text the host
 * makes of it. A write resolves only once its transaction committed, under the invocation's lease
 * (storage refuses it with LEASE_LOST once the run was claimed again) and into the leased run's own
 * workflow and org.
 */
export class RunState {
  constructor(
    private readonly run: RunRecord,
    private readonly lease: Lease,
    private readonly deps: Deps,
  ) {}

  async handle(op: string, args: Record<string, unknown>): Promise<unknown> {
    const key = this.key(op, args.key);
    if (op === "state.get") return this.get(key);
    if (op === "state.set") return this.set(key, args);
    return this.store(`the deletion of state key "${key}"`, () => this.deps.storage.state.delete(this.lease, key));
  }

  private key(op: string, key: unknown): string {
    const problem = stateKeyProblem(key);
    if (problem) throw new BifrostError("STATE_INVALID", `ctx.${op}(key): ${problem}`);
    return key as string;
  }

  private async get(key: string): Promise<{ found: boolean; value?: unknown }> {
    const record = await this.store(`state key "${key}"`, () => this.deps.storage.state.get(this.run.workflow, this.run.org, key));
    return record ? { found: true, value: record.value } : { found: false };
  }

  private async set(key: string, args: Record<string, unknown>): Promise<null> {
    const what = `ctx.state.set("${key}", value)`;
    const max = this.deps.limits.maxStateValueBytes;
    const tooLarge = (size: string) => new BifrostError("STATE_TOO_LARGE", `${what}: the value is ${size} of JSON; the limit is ${max} bytes`, { details: { key, limit: max } });
    // What the prelude could not send: reported, never trusted beyond the refusal it asks for.
    if (typeof args.invalid === "string") throw new BifrostError("STATE_INVALID", `${what}: the value is not JSON: ${capString(args.invalid, 200)}`);
    if (args.length !== undefined) throw tooLarge(typeof args.length === "number" && Number.isSafeInteger(args.length) ? `${args.length} characters` : "too many characters");
    if (!Object.hasOwn(args, "value")) throw new BifrostError("STATE_INVALID", `${what}: undefined cannot be stored; remove a key with ctx.state.delete(key)`);
    // One character is at least one byte: text longer than the limit in characters is too large.
    const json = stringifyBounded(args.value, { maxDepth: DEFAULT_JSON_DEPTH, maxLength: max });
    if (!json.ok) {
      if (json.violation.reason === "size") throw tooLarge(`${json.violation.length} characters`);
      throw new BifrostError("STATE_INVALID", `${what}: ${json.violation.reason === "depth" ? `the value is nested deeper than ${DEFAULT_JSON_DEPTH} levels` : "the value is not JSON"}`);
    }
    const bytes = Buffer.byteLength(json.text);
    if (bytes > max) throw tooLarge(`${bytes} bytes`);
    const { maxStateKeys } = this.deps.limits;
    const stored = await this.store(`state key "${key}"`, () => this.deps.storage.state.set(this.lease, { key, json: json.text, now: this.deps.now(), maxKeys: maxStateKeys }));
    if (!stored.ok) {
      throw new BifrostError("STATE_TOO_LARGE", `${what}: the workflow keeps ${stored.keys} state keys for this org already; the limit is ${maxStateKeys}`, { details: { key, keys: stored.keys, limit: maxStateKeys } });
    }
    return null;
  }

  /** A storage call; its failure is a host fault (LEASE_LOST, STORAGE_UNAVAILABLE), never the workflow's. */
  private async store<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw storageFault(what, err);
    }
  }
}
