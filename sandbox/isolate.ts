import { readFileSync } from "node:fs";
import ivm from "isolated-vm";
import { BifrostError } from "../common/errors.js";
import { capString } from "../common/json-bounds.js";
import { GUEST_BOUNDS } from "./bounds.js";
import { cpuBudgetSpent } from "./cpu.js";
import { parseHostArgs, readEnvelope, type InvocationOutcome } from "./envelope.js";
import type { IsolatePool } from "./pool.js";
import { BUNDLE_FILENAME, mapStack } from "./stack.js";

const PRELUDE = readFileSync(new URL("./guest/prelude.js", import.meta.url), "utf8");

export interface SandboxLimits {
  /** V8 heap limit of the isolate. */
  memoryMb: number;
  /** CPU time one invocation may use, across all its awaits. */
  cpuMs: number;
}

/** A bundled workflow module, as the compiler produced it. */
export interface LoadableModule {
  code: string;
  sourceMap: string;
}

export type { GuestError } from "./bounds.js";
export type { InvocationOutcome } from "./envelope.js";

/** The host side of ctx: an op name and bounded, parsed JSON args in, a JSON-able value out (or a thrown error). */
export type HostHandler = (op: string, args: unknown) => Promise<unknown>;

/** What the guest is told about a host call that failed. */
export interface HostCallError {
  code: string;
  message: string;
  /** Id under which the host recorded this fault; the guest carries it back if the error ends the run. */
  fault?: string;
  /** A failure category and its fix (OAuth), for the workflow to read on the error it receives. */
  category?: string;
  fix?: string;
}

/**
 * Turns a failed host call (a rejection of the handler, or arguments the bridge refused) into what
 * the guest is told. The host records its faults here. Must not throw.
 */
export type HostFaultHandler = (op: string, error: unknown) => HostCallError;

export interface InvokeOptions {
  host?: HostHandler;
  onFault?: HostFaultHandler;
  /** Epoch ms at which the invocation is stopped, including time spent waiting on host calls. */
  deadline: number;
  /** Aborting disposes the isolate at once (engine stop without drain, lost lease). */
  signal?: AbortSignal;
}

export interface RunInput {
  run: unknown;
  params: unknown;
  deadline: number;
  /** Log lines the run may still write; the prelude drops further lines at the source. */
  logBudget?: number;
}

const WATCHDOG_MS = 25;
/** A failed ArrayBuffer allocation counts as the memory limit when the isolate already holds this share of it. */
const MEMORY_EVIDENCE_SHARE = 0.5;
const HEAP_PROBE_MS = 250;

interface Bridge {
  handler: HostHandler | undefined;
  onFault: HostFaultHandler | undefined;
  /** Host calls not yet answered: a context with none left cannot run again by itself. */
  inFlight: number;
}

function defaultCallError(err: unknown): HostCallError {
  if (err instanceof BifrostError) return { code: err.code, message: err.message };
  return { code: "INTERNAL", message: capString(err instanceof Error ? err.message : String(err), GUEST_BOUNDS.errorMessageChars) };
}

const FAILED_CALL = JSON.stringify({ ok: false, error: { code: "INTERNAL", message: "the host call failed" } });

/** The reply envelope for a failed host call. Never throws: a rejected reply can crash the host. */
function errorReply(bridge: Bridge, op: string, err: unknown): string {
  try {
    const e = bridge.onFault ? bridge.onFault(op, err) : defaultCallError(err);
    const error: HostCallError = { code: String(e.code), message: String(e.message) };
    if (typeof e.fault === "string") error.fault = e.fault;
    if (typeof e.category === "string" && typeof e.fix === "string") {
      error.category = e.category;
      error.fix = e.fix;
    }
    return JSON.stringify({ ok: false, error });
  } catch {
    return FAILED_CALL;
  }
}

async function callHost(bridge: Bridge, op: string, argsJson: unknown): Promise<unknown> {
  if (!bridge.handler) throw new BifrostError("VALIDATION_FAILED", "no host calls are available here");
  return bridge.handler(op, parseHostArgs(op, argsJson));
}

/**
 * One workflow module loaded into its own context: create → invoke → dispose.
 * Every invoke gets hard limits: wall-clock deadline, CPU time, memory.
 */
export class WorkflowSandbox {
  private disposeReason: "deadline" | "cpu" | "aborted" | undefined;
  private abortReason = "";
  /** Set after a clean invocation: the isolate may serve another run. */
  private reusable = false;

  private constructor(
    private readonly isolate: ivm.Isolate,
    private readonly context: ivm.Context,
    private readonly invokeRef: ivm.Reference<(kind: string, input: string) => Promise<string>>,
    private readonly sourceMap: string,
    private readonly limits: SandboxLimits,
    private readonly bridge: Bridge,
    private readonly pool: IsolatePool | undefined,
  ) {}

  /**
   * Loads a module into a new context: of a fresh isolate, or of a pooled one when `pool` is
   * given (pooled isolates cache the compiled prelude and bundles).
   */
  static async create(module: LoadableModule & { version?: string }, limits: SandboxLimits, pool?: IsolatePool): Promise<WorkflowSandbox> {
    const isolate = pool ? await pool.acquire() : new ivm.Isolate({ memoryLimit: limits.memoryMb });
    let context: ivm.Context | undefined;
    try {
      context = await isolate.createContext();
      const bridge: Bridge = { handler: undefined, onFault: undefined, inFlight: 0 };
      const hostRef = new ivm.Reference(async (op: unknown, argsJson: unknown): Promise<string> => {
        // Always resolve: a rejected promise handed back to isolated-vm can crash the host.
        bridge.inFlight += 1;
        const name = typeof op === "string" ? capString(op, GUEST_BOUNDS.opChars) : "(unnamed)";
        try {
          const value = await callHost(bridge, name, argsJson);
          return JSON.stringify({ ok: true, value: value ?? null });
        } catch (err) {
          return errorReply(bridge, name, err);
        } finally {
          bridge.inFlight -= 1;
        }
      });
      const script = (key: string | undefined, compile: () => Promise<ivm.Script>) => (pool && key ? pool.script(isolate, key, compile) : compile());
      const prelude = await script("prelude", () => isolate.compileScript(PRELUDE, { filename: "bifrost-prelude.js" }));
      const preludeRef = (await prelude.run(context, { reference: true, timeout: 1000 })) as ivm.Reference<(host: unknown) => unknown>;
      const invokeRef = (await preludeRef.apply(undefined, [hostRef], { result: { reference: true }, timeout: 1000 })) as ivm.Reference<
        (kind: string, input: string) => Promise<string>
      >;
      preludeRef.release();
      const bundle = await script(module.version && `module:${module.version}`, () =>
        isolate.compileScript(`globalThis.__bifrost_factory = function (module, exports) {\n${module.code}\n};`, { filename: BUNDLE_FILENAME, lineOffset: -1 }),
      );
      await bundle.run(context, { timeout: 1000 });
      return new WorkflowSandbox(isolate, context, invokeRef, module.sourceMap, limits, bridge, pool);
    } catch (err) {
      context?.release();
      if (!isolate.isDisposed) isolate.dispose();
      throw err;
    }
  }

  /** Reads the workflow definition (everything but functions) by evaluating the module. */
  async readDefinition(timeoutMs = 2000): Promise<InvocationOutcome> {
    return this.invoke("meta", null, { deadline: Date.now() + timeoutMs });
  }

  /** Runs the workflow's run(ctx, params) once. */
  async run(input: RunInput, options: InvokeOptions): Promise<InvocationOutcome> {
    return this.invoke("run", input, options);
  }

  /** Fires ctx.signal inside the sandbox so the workflow can stop cooperatively. */
  async signalAbort(reason: string): Promise<void> {
    if (this.isolate.isDisposed) return;
    await this.invokeRef.apply(undefined, ["abort", JSON.stringify(reason)], { arguments: { copy: true }, result: { promise: true, copy: true }, timeout: 1000 }).catch(() => {});
  }

  private async invoke(kind: "meta" | "run", input: unknown, options: InvokeOptions): Promise<InvocationOutcome> {
    if (this.isolate.isDisposed) return { kind: "crashed", message: "the sandbox was already disposed" };
    this.bridge.handler = options.host;
    this.bridge.onFault = options.onFault;
    const cpuStart = this.isolate.cpuTime;
    const processCpuStart = process.cpuUsage();
    const wallMs = Math.max(1, options.deadline - Date.now());
    const kill = (reason: "deadline" | "cpu" | "aborted") => {
      if (this.isolate.isDisposed) return;
      this.disposeReason ??= reason;
      this.isolate.dispose();
    };
    const wallTimer = setTimeout(() => kill("deadline"), wallMs);
    const watchdog = setInterval(() => {
      if (this.isolate.isDisposed) return;
      const processCpu = process.cpuUsage(processCpuStart);
      if (cpuBudgetSpent(this.isolate.cpuTime - cpuStart, processCpu.user + processCpu.system, this.limits.cpuMs)) kill("cpu");
    }, WATCHDOG_MS);
    const onAbort = () => {
      this.abortReason = String(options.signal?.reason ?? "aborted");
      kill("aborted");
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    try {
      // No isolated-vm `timeout` here: it measures wall-clock time. The watchdog covers CPU, synchronous
      // parts included (the call is asynchronous, so the host keeps running beside it).
      const raw: unknown = await this.invokeRef.apply(undefined, [kind, JSON.stringify(input)], {
        arguments: { copy: true },
        result: { promise: true, copy: true },
      });
      this.reusable = this.bridge.inFlight === 0 && !this.isolate.isDisposed;
      return await this.readEnvelope(raw);
    } catch (err) {
      return this.classifyFailure(err);
    } finally {
      clearTimeout(wallTimer);
      clearInterval(watchdog);
      options.signal?.removeEventListener("abort", onAbort);
      this.bridge.handler = undefined;
      this.bridge.onFault = undefined;
    }
  }

  /** Reads what the prelude returned; only a `threw` outcome carries guest data, bounded. */
  private async readEnvelope(raw: unknown): Promise<InvocationOutcome> {
    const outcome = readEnvelope(raw);
    if (outcome.kind !== "threw") return outcome;
    const { error } = outcome;
    if (error.stack) error.stack = mapStack(error.stack, this.sourceMap);
    // V8 throws this RangeError when isolated-vm's allocator refuses a buffer past the memory limit;
    // the message alone is the guest's to forge, the isolate's heap is not.
    if (error.name === "RangeError" && error.message === "Array buffer allocation failed" && (await this.nearMemoryLimit())) {
      return { kind: "limit", limit: "memory" };
    }
    return outcome;
  }

  /** Host-side evidence: the isolate's heap plus its external buffers hold most of its memory limit. */
  private async nearMemoryLimit(): Promise<boolean> {
    if (this.isolate.isDisposed) return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Asynchronous, and given up after a while: the guest may still be running code.
      const heap = await Promise.race([this.isolate.getHeapStatistics(), new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), HEAP_PROBE_MS)))]);
      if (!heap) return false;
      return heap.used_heap_size + heap.externally_allocated_size >= MEMORY_EVIDENCE_SHARE * this.limits.memoryMb * 1024 * 1024;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  private classifyFailure(err: unknown): InvocationOutcome {
    if (this.disposeReason === "aborted") return { kind: "aborted", reason: this.abortReason };
    if (this.disposeReason) return { kind: "limit", limit: this.disposeReason };
    // Only isolated-vm disposes an isolate the host did not: when it passes its memory limit.
    if (this.isolate.isDisposed) return { kind: "limit", limit: "memory" };
    const message = err instanceof Error ? err.message : String(err);
    return { kind: "crashed", message: capString(message, GUEST_BOUNDS.errorMessageChars) };
  }

  get disposed(): boolean {
    return this.isolate.isDisposed;
  }

  /** Ends the sandbox. A pooled isolate goes back to its pool only after a clean invocation. */
  dispose(): void {
    try {
      this.invokeRef.release();
      if (this.isolate.isDisposed) return;
      this.context.release();
      if (this.pool && this.reusable && this.bridge.inFlight === 0) this.pool.release(this.isolate);
      else this.isolate.dispose();
    } catch {
      if (!this.isolate.isDisposed) this.isolate.dispose();
    }
  }
}
