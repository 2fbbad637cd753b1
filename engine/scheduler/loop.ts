/**
 * One timer for the earliest due entry (graphile-worker style: the loop is handed its I/O). It
 * keeps a min-heap of entries by due time; `set` and `delete` re-arm the timer only when the
 * earliest entry changes, so 10,000 idle schedules cost one pending timer and no scanning. Due
 * entries are handed to `fire` oldest first, all those due at once together (up to 200): `fire`
 * returns each entry as it should be next (or null to drop it), so a thousand orgs of one schedule
 * due at the same instant are written in one transaction. A `fire` that throws is retried with
 * backoff for the entries it was handed; other entries go on.
 */

export interface LoopEntry {
  key: string;
  /** When the entry is due (epoch ms); null: never (the entry is kept but not armed). */
  next: number | null;
}

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface LoopDeps<E extends LoopEntry> {
  now(): number;
  /** Handles due entries (oldest first); returns, in the same order, each as it is next (null: drop). */
  fire(entries: E[], now: number): Promise<(E | null)[]>;
  onError(err: unknown, entry: E): void;
  /** Node timers unless a test hands its own. */
  timers?: Timers;
}

/** The longest the timer sleeps: a wall clock that jumped forward is noticed within this. */
const MAX_SLEEP_MS = 60_000;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 30_000;
const MAX_REFIRES = 5;
/** Entries handed to one `fire`: one transaction stays short. */
const BATCH = 200;

const nodeTimers: Timers = {
  set: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // The loop never keeps a process alive on its own.
    t.unref();
    return t;
  },
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface HeapItem {
  at: number;
  key: string;
  version: number;
}

/** Binary min-heap on `at`; stale items (an older version of a key) are skipped when popped. */
class Heap {
  private readonly items: HeapItem[] = [];

  get size(): number {
    return this.items.length;
  }

  push(item: HeapItem): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.at <= a[i]!.at) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  peek(): HeapItem | undefined {
    return this.items[0];
  }

  pop(): HeapItem | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.at < a[m]!.at) m = l;
        if (r < a.length && a[r]!.at < a[m]!.at) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }

  /** Rebuilds from the live items only (when stale ones pile up). */
  rebuild(live: HeapItem[]): void {
    this.items.length = 0;
    for (const item of live) this.push(item);
  }
}

export class SchedulerLoop<E extends LoopEntry> {
  private readonly entries = new Map<string, { entry: E; version: number; at: number | null; failures: number }>();
  private readonly heap = new Heap();
  private readonly timers: Timers;
  private timer: unknown;
  private armedAt: number | null = null;
  private running = false;
  private draining: Promise<void> | undefined;
  private version = 0;

  constructor(private readonly deps: LoopDeps<E>) {
    this.timers = deps.timers ?? nodeTimers;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): E | undefined {
    return this.entries.get(key)?.entry;
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** Adds or replaces an entry; it is due at `entry.next`. */
  set(entry: E): void {
    this.place(entry, entry.next, 0);
  }

  delete(key: string): void {
    if (this.entries.delete(key)) this.compact();
  }

  start(): void {
    this.running = true;
    this.arm();
  }

  /** Stops the timer and waits for a fire in progress. */
  async stop(): Promise<void> {
    this.running = false;
    this.disarm();
    await this.draining;
  }

  /** The earliest due time armed, for tests and metrics. */
  get nextWake(): number | null {
    this.skipStale();
    return this.heap.peek()?.at ?? null;
  }

  private place(entry: E, at: number | null, failures: number): void {
    const version = ++this.version;
    this.entries.set(entry.key, { entry, version, at, failures });
    if (at !== null) this.heap.push({ at, key: entry.key, version });
    this.compact();
    this.arm();
  }

  private isLive(item: HeapItem): boolean {
    return this.entries.get(item.key)?.version === item.version;
  }

  private skipStale(): void {
    while (this.heap.size > 0 && !this.isLive(this.heap.peek()!)) this.heap.pop();
  }

  /** Stale heap items are dropped lazily; rebuild when they outnumber the live ones. */
  private compact(): void {
    if (this.heap.size <= 2 * this.entries.size + 64) return;
    const live: HeapItem[] = [];
    for (const [key, e] of this.entries) if (e.at !== null) live.push({ at: e.at, key, version: e.version });
    this.heap.rebuild(live);
  }

  private disarm(): void {
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
    this.armedAt = null;
  }

  /** Sets the one timer for the earliest entry, unless it is set for that time already. */
  private arm(): void {
    if (!this.running || this.draining) return;
    this.skipStale();
    const top = this.heap.peek();
    if (!top) {
      this.disarm();
      return;
    }
    const now = this.deps.now();
    const wakeAt = Math.min(top.at, now + MAX_SLEEP_MS);
    if (this.timer !== undefined && this.armedAt === wakeAt) return;
    this.disarm();
    this.armedAt = wakeAt;
    this.timer = this.timers.set(() => this.wake(), Math.max(0, wakeAt - now));
  }

  private wake(): void {
    this.timer = undefined;
    this.armedAt = null;
    if (!this.running || this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      this.arm();
    });
  }

  /** Fires every entry that is due, oldest first, in batches, re-reading the clock after each. */
  private async drain(): Promise<void> {
    // An entry handed back due again and again within one drain is a bug or a row that keeps moving:
    // it waits like a failure instead of spinning.
    const refired = new Map<string, number>();
    while (this.running) {
      const now = this.deps.now();
      const batch: { key: string; version: number; entry: E; failures: number }[] = [];
      const taken = new Set<string>();
      while (batch.length < BATCH) {
        this.skipStale();
        const top = this.heap.peek();
        if (!top || top.at > now) break;
        this.heap.pop();
        const held = this.entries.get(top.key);
        if (!held || taken.has(top.key)) continue;
        taken.add(top.key);
        batch.push({ key: top.key, version: held.version, entry: held.entry, failures: held.failures });
      }
      if (batch.length === 0) return;
      let results: (E | null)[];
      try {
        results = await this.deps.fire(
          batch.map((b) => b.entry),
          now,
        );
      } catch (err) {
        for (const b of batch) {
          this.deps.onError(err, b.entry);
          // Only if nothing replaced it meanwhile (a re-registration while the fire failed).
          if (this.entries.get(b.key)?.version === b.version) {
            const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** b.failures);
            this.place(b.entry, this.deps.now() + delay, b.failures + 1);
          }
        }
        continue;
      }
      batch.forEach((b, i) => {
        const next = results[i] ?? null;
        // A `set` during the fire (the schedule changed) wins over what the fire returned.
        if (this.entries.get(b.key)?.version !== b.version) return;
        if (next === null) {
          this.entries.delete(b.key);
          return;
        }
        const count = (refired.get(b.key) ?? 0) + 1;
        refired.set(b.key, count);
        const again = next.next !== null && next.next <= this.deps.now() && count > MAX_REFIRES;
        this.place(next, again ? this.deps.now() + RETRY_MIN_MS : next.next, 0);
      });
    }
  }
}
