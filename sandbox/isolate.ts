import { readFileSync } from "node:fs";
import ivm from "isolated-vm";
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

/** Error data thrown by user code, with its stack mapped back to the user's files. */
export interface GuestError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

export type InvocationOutcome =
  | { kind: "returned"; value: unknown }
  | { kind: "threw"; error: GuestError }
  | { kind: "limit"; limit: "deadline" | "cpu" | "memory" }
  | { kind: "aborted"; reason: string }
  | { kind: "crashed"; message: string };

/** The host side of ctx: an op name and JSON args in, a JSON-able value out (or a thrown error). */
export type HostHandler = (op: string, args: unknown) => Promise<unknown>;

export interface InvokeOptions {
  host?: HostHandler;
  /** Epoch ms at which the invocation is stopped, including time spent waiting on host calls. */
  deadline: number;
  /** Aborting disposes the isolate at once (engine stop without drain, lost lease). */
  signal?: AbortSignal;
}

const WATCHDOG_MS = 25;

interface Bridge {
  handler: HostHandler | undefined;
  /** Host calls not yet answered: a context with none left cannot run again by itself. */
  inFlight: number;
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
    const isolate = pool ? pool.acquire() : new ivm.Isolate({ memoryLimit: limits.memoryMb });
    let context: ivm.Context | undefined;
    try {
      context = await isolate.createContext();
      const bridge: Bridge = { handler: undefined, inFlight: 0 };
      const hostRef = new ivm.Reference(async (op: string, argsJson: string): Promise<string> => {
        // Always resolve: a rejected promise handed back to isolated-vm can crash the host.
        bridge.inFlight += 1;
        try {
          if (!bridge.handler) throw new Error("no host calls are available here");
          const value = await bridge.handler(op, JSON.parse(argsJson));
          return JSON.stringify({ ok: true, value: value ?? null });
        } catch (err) {
          const e = err as { code?: unknown; message?: unknown };
          return JSON.stringify({ ok: false, error: { code: typeof e.code === "string" ? e.code : "INTERNAL", message: String(e.message ?? err) } });
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
  async run(input: { run: unknown; params: unknown; deadline: number }, options: InvokeOptions): Promise<InvocationOutcome> {
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
    const cpuStart = this.isolate.cpuTime;
    const cpuBudgetNs = BigInt(this.limits.cpuMs) * 1_000_000n;
    const wallMs = Math.max(1, options.deadline - Date.now());
    const kill = (reason: "deadline" | "cpu" | "aborted") => {
      if (this.isolate.isDisposed) return;
      this.disposeReason ??= reason;
      this.isolate.dispose();
    };
    const wallTimer = setTimeout(() => kill("deadline"), wallMs);
    const watchdog = setInterval(() => {
      if (!this.isolate.isDisposed && this.isolate.cpuTime - cpuStart > cpuBudgetNs) kill("cpu");
    }, WATCHDOG_MS);
    const onAbort = () => {
      this.abortReason = String(options.signal?.reason ?? "aborted");
      kill("aborted");
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    const syncLimit = this.limits.cpuMs <= wallMs ? "cpu" : "deadline";
    try {
      const raw = await this.invokeRef.apply(undefined, [kind, JSON.stringify(input)], {
        arguments: { copy: true },
        result: { promise: true, copy: true },
        // Covers the synchronous part precisely; the watchdog covers CPU spent after awaits.
        timeout: Math.min(this.limits.cpuMs, wallMs),
      });
      const envelope = JSON.parse(raw) as { ok: true; value: unknown } | { ok: false; error: GuestError };
      this.reusable = this.bridge.inFlight === 0 && !this.isolate.isDisposed;
      if (envelope.ok) return { kind: "returned", value: envelope.value };
      const error = envelope.error;
      if (error.stack) error.stack = mapStack(error.stack, this.sourceMap);
      return { kind: "threw", error };
    } catch (err) {
      return this.classifyFailure(err, syncLimit);
    } finally {
      clearTimeout(wallTimer);
      clearInterval(watchdog);
      options.signal?.removeEventListener("abort", onAbort);
      this.bridge.handler = undefined;
    }
  }

  private classifyFailure(err: unknown, syncLimit: "cpu" | "deadline"): InvocationOutcome {
    const message = err instanceof Error ? err.message : String(err);
    if (this.disposeReason === "aborted") return { kind: "aborted", reason: this.abortReason };
    if (this.disposeReason) return { kind: "limit", limit: this.disposeReason };
    if (/memory limit/i.test(message)) return { kind: "limit", limit: "memory" };
    // isolated-vm's own synchronous timeout: the sync part ran past the CPU or wall budget.
    if (/timed out/i.test(message)) return { kind: "limit", limit: syncLimit };
    return { kind: "crashed", message };
  }

  get disposed(): boolean {
    return this.isolate.isDisposed;
  }

  /** Ends the sandbox. A pooled isolate goes back to its pool only after a clean invocation. */
  dispose(): void {
    this.invokeRef.release();
    if (this.isolate.isDisposed) return;
    this.context.release();
    if (this.pool && this.reusable && this.bridge.inFlight === 0) this.pool.release(this.isolate);
    else this.isolate.dispose();
  }
}
