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

  constructor(private readonly options: IsolatePoolOptions) {
    this.maxUses = options.maxUses ?? 100;
    this.maxHeapRatio = options.maxHeapRatio ?? 0.5;
  }

  acquire(): ivm.Isolate {
    for (;;) {
      const entry = this.idle.pop();
      if (!entry) break;
      if (!entry.isolate.isDisposed) {
        entry.uses += 1;
        return entry.isolate;
      }
    }
    const isolate = new ivm.Isolate({ memoryLimit: this.options.memoryMb });
    this.entries.set(isolate, { isolate, uses: 1, scripts: new Map() });
    return isolate;
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

  release(isolate: ivm.Isolate): void {
    const entry = this.entries.get(isolate);
    if (!entry || isolate.isDisposed) return;
    const heap = isolate.getHeapStatisticsSync();
    const tooBig = heap.used_heap_size > this.maxHeapRatio * this.options.memoryMb * 1024 * 1024;
    if (entry.uses >= this.maxUses || tooBig || this.idle.length >= this.options.maxIdle) {
      isolate.dispose();
      return;
    }
    this.idle.push(entry);
  }

  get idleCount(): number {
    return this.idle.length;
  }

  close(): void {
    for (const entry of this.idle.splice(0)) if (!entry.isolate.isDisposed) entry.isolate.dispose();
  }
}
