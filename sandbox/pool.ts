import ivm from "isolated-vm";

export interface IsolatePoolOptions {
  memoryMb: number;
  /** Idle isolates kept for reuse. */
  maxIdle: number;
  /** Runs an isolate serves before it is replaced (garbage of released contexts accumulates). */
  maxUses?: number;
  /** Replace an isolate whose used heap exceeds this share of its limit. */
  maxHeapRatio?: number;
}

interface Entry {
  isolate: ivm.Isolate;
  uses: number;
  scripts: Map<string, ivm.Script>;
}

const MAX_CACHED_SCRIPTS = 32;
const RELEASE_PROBE_MS = 1000;
const ACQUIRE_WAIT_MS = 10;

/**
 * Reusable isolates: each run still gets a fresh context (its own globals and built-ins), but not
 * a fresh V8 heap. An isolate is handed to one run at a time and goes back only after a clean
 * invocation (see WorkflowSandbox.dispose); anything else disposes it.
 */
export class IsolatePool {
  private readonly idle: Entry[] = [];
  private readonly entries = new WeakMap<ivm.Isolate, Entry>();
  private readonly maxUses: number;
  private readonly maxHeapRatio: number;
  private closed = false;
  private readonly releasing = new Set<Promise<void>>();

  constructor(private readonly options: IsolatePoolOptions) {
    this.maxUses = options.maxUses ?? 100;
    this.maxHeapRatio = options.maxHeapRatio ?? 0.5;
  }

  /**
   * An idle isolate, or a new one. A run that just ended may be handing its isolate back: that is
   * waited for briefly (the probe normally answers at once), never for long.
   */
  async acquire(): Promise<ivm.Isolate> {
    const idle = this.takeIdle();
    if (idle) return idle;
    if (this.releasing.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([...this.releasing, new Promise<void>((resolve) => (timer = setTimeout(resolve, ACQUIRE_WAIT_MS)))]);
      clearTimeout(timer);
      const released = this.takeIdle();
      if (released) return released;
    }
    const isolate = new ivm.Isolate({ memoryLimit: this.options.memoryMb });
    this.entries.set(isolate, { isolate, uses: 1, scripts: new Map() });
    return isolate;
  }

  private takeIdle(): ivm.Isolate | undefined {
    for (;;) {
      const entry = this.idle.pop();
      if (!entry) return undefined;
      if (!entry.isolate.isDisposed) {
        entry.uses += 1;
        return entry.isolate;
      }
    }
  }

  /** A script compiled once per isolate and run in each new context (prelude, workflow bundles). */
  async script(isolate: ivm.Isolate, key: string, compile: () => Promise<ivm.Script>): Promise<ivm.Script> {
    const entry = this.entries.get(isolate);
    if (!entry) return compile();
    const cached = entry.scripts.get(key);
    if (cached) return cached;
    const script = await compile();
    if (entry.scripts.size >= MAX_CACHED_SCRIPTS) {
      const oldest = entry.scripts.keys().next().value as string;
      entry.scripts.get(oldest)?.release();
      entry.scripts.delete(oldest);
    }
    entry.scripts.set(key, script);
    return script;
  }

  /**
   * Takes an isolate back after a clean invocation. Its heap is measured asynchronously: workflow
   * code may still be running in it (a continuation of a late host reply), and a synchronous probe
   * would block the engine until it stops. An isolate that does not answer in time is disposed.
   */
  release(isolate: ivm.Isolate): void {
    const entry = this.entries.get(isolate);
    if (!entry || isolate.isDisposed) return;
    if (entry.uses >= this.maxUses || this.idle.length >= this.options.maxIdle || this.closed) {
      isolate.dispose();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const answered = isolate.getHeapStatistics().then((heap) => heap, () => undefined);
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), RELEASE_PROBE_MS)));
    const settled = Promise.race([answered, late]).then((heap) => {
      clearTimeout(timer);
      this.releasing.delete(settled);
      if (isolate.isDisposed) return;
      const tooBig = !heap || heap.used_heap_size > this.maxHeapRatio * this.options.memoryMb * 1024 * 1024;
      if (tooBig || this.closed || this.idle.length >= this.options.maxIdle) isolate.dispose();
      else this.idle.push(entry);
    });
    this.releasing.add(settled);
  }

  /** Resolves once every isolate handed back so far is either idle or disposed. */
  async settled(): Promise<void> {
    while (this.releasing.size > 0) await Promise.all([...this.releasing]);
  }

  get idleCount(): number {
    return this.idle.length;
  }

  /**
   * Disposes the idle isolates and waits for isolates still being torn down. isolated-vm frees an
   * isolate that was stopped while it ran (memory limit, CPU or deadline kill) on its own thread,
   * after the run has already been decided; `process.exit()` during that free segfaults, because
   * Node's exit tears down the V8 platform without running isolated-vm's exit hook (which would
   * wait). The free holds isolated-vm's allocator lock, which creating an isolate takes too: making
   * and disposing a tiny isolate returns only once no free is in progress.
   */
  close(): void {
    this.closed = true;
    for (const entry of this.idle.splice(0)) if (!entry.isolate.isDisposed) entry.isolate.dispose();
    new ivm.Isolate({ memoryLimit: 8 }).dispose();
  }
}
