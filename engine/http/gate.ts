/**
 * The per-host gate: every ctx.http request of the engine's runs passes the gate of its origin
 * before it is sent, so fifty runs share what one of them learned about a host.
 *
 * - Cool-down: a 429 or 503 closes the gate until the server's time (Retry-After, a reset header,
 *   or the backoff the caller chose); nobody sends before it.
 * - Published budgets: a host that says x-ratelimit-remaining / x-ratelimit-reset gets at most
 *   that many requests until the reset, less those started since the request that learned it.
 *   Once the reset has passed, one request goes alone and learns the new budget.
 * - Slow start, for hosts that publish nothing: after first contact and after each cool-down one
 *   request goes alone, and each answer lets one more run at once. The requests a host accepted
 *   between two cool-downs are its learned budget: after the next cool-down the gate starts at
 *   most that many before sending one alone again, so a host with a fixed window sees about one
 *   429 per window rather than one per waiting run.
 * - Optional configured limits (BIFROST_HTTP_HOST_LIMITS): requests in flight at once, and
 *   requests per second (evenly spaced).
 *
 * Waiters are served in arrival order. A waiter says until when it may wait; when the gate knows
 * it will stay closed past that, it refuses at once with the time it opens (GateClosed), so the
 * caller can fail or yield without sleeping in vain.
 */

export interface GateLimits {
  concurrency?: number;
  rps?: number;
}

export interface Ticket {
  readonly seq: number;
  readonly probe: boolean;
  /** How long this request waited at the gate, in ms. */
  readonly waitedMs: number;
}

/** What the request's answer taught the gate. */
export type GateReport =
  | { kind: "answer"; budget?: { remaining: number; resetAt: number } }
  /** 429 or 503: closed until `until` (the server's time, or the caller's backoff). */
  | { kind: "rate-limited"; until: number; budget?: { remaining: number; resetAt: number } }
  /** No answer (a network failure, a timeout, an abort): nothing learned. */
  | { kind: "none" };

/** The gate stays closed past the waiter's limit. `until` is when it opens, if known. */
export class GateClosed extends Error {
  constructor(readonly until: number | undefined) {
    super(until === undefined ? "the host's gate has no free slot in time" : `the host's gate stays closed until ${new Date(until).toISOString()}`);
    this.name = "GateClosed";
  }
}

/** setTimeout fires at once past 2^31-1 ms; a longer wait is re-armed by the next pump instead. */
function timerDelay(ms: number): number {
  return Math.min(2_147_483_647, Math.max(0, ms));
}

/** A gate with slow start grows to this many requests in flight, then stops counting. */
const OPEN_WINDOW = 1_000;

interface Waiter {
  /** Gives up waiting for a free slot (no known time) at this time. */
  latest: number;
  /** Refused at once when the gate's known opening time is later than this. */
  latestKnown: number;
  signal: AbortSignal;
  since: number;
  resolve: (ticket: Ticket) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout | undefined;
  onAbort: () => void;
}

type Admission = { ok: true; probe: boolean } | { ok: false; at: number | undefined };

export class HostGate {
  private blockedUntil = 0;
  private budget: { remaining: number; resetAt: number; seq: number } | undefined;
  private window = 1;
  private learned: number | undefined;
  private startedSinceCool = 0;
  private acceptedSinceCool = 0;
  private inFlight = 0;
  private probeInFlight = false;
  private seq = 0;
  private nextSlot = 0;
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;

  constructor(
    readonly key: string,
    private readonly limits: GateLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when forgetting this gate loses nothing (no waiters, nothing in flight, no cool-down or budget ahead). */
  idle(now: number): boolean {
    return this.waiters.length === 0 && this.inFlight === 0 && now >= this.blockedUntil && (this.budget === undefined || now >= this.budget.resetAt);
  }

  /** When the gate is closed by a cool-down, until when. */
  get coolingUntil(): number | undefined {
    return this.now() < this.blockedUntil ? this.blockedUntil : undefined;
  }

  /**
   * Waits for a turn. Rejects with GateClosed when the gate's known opening time is after
   * `latestKnown`, or when no slot came free by `latest`; with the signal's reason on abort.
   */
  acquire(options: { latest: number; latestKnown?: number; signal: AbortSignal }): Promise<Ticket> {
    return new Promise<Ticket>((resolve, reject) => {
      if (options.signal.aborted) return reject(options.signal.reason);
      const waiter: Waiter = { latest: options.latest, latestKnown: Math.min(options.latest, options.latestKnown ?? options.latest), signal: options.signal, since: this.now(), resolve, reject, timer: undefined, onAbort: () => this.drop(waiter, options.signal.reason) };
      options.signal.addEventListener("abort", waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.pump();
      // Still waiting on something without a known time (a free slot, a probe's answer): give up at `latest`.
      if (this.waiters.includes(waiter)) waiter.timer = setTimeout(() => this.drop(waiter, new GateClosed(this.openAt())), timerDelay(waiter.latest - this.now())).unref();
    });
  }

  /** Hands the request's outcome back; the next waiters may go. */
  release(ticket: Ticket, report: GateReport): void {
    this.inFlight -= 1;
    if (ticket.probe) this.probeInFlight = false;
    const now = this.now();
    if (report.kind === "rate-limited") {
      this.blockedUntil = Math.max(this.blockedUntil, report.until);
      // The first refusal after a run of answers measures the host's budget; the others in flight with it do not.
      if (this.acceptedSinceCool > 0) this.learned = this.acceptedSinceCool;
      this.acceptedSinceCool = 0;
      this.startedSinceCool = 0;
      this.window = 1;
      this.budget = undefined;
    } else if (report.kind === "answer") {
      this.acceptedSinceCool += 1;
      if (this.window < OPEN_WINDOW) this.window += 1;
      const b = report.budget;
      if (b && (this.budget === undefined || ticket.seq > this.budget.seq)) {
        // Requests started after this one may already have spent part of what it saw remaining.
        this.budget = { remaining: Math.max(0, b.remaining - (this.seq - ticket.seq)), resetAt: Math.max(now, b.resetAt), seq: ticket.seq };
      } else if (!b && this.budget && now >= this.budget.resetAt) {
        // The host stopped publishing a budget: back to slow start, not one probe at a time for ever.
        this.budget = undefined;
      }
    }
    this.pump();
  }

  private admission(now: number): Admission {
    if (now < this.blockedUntil) return { ok: false, at: this.blockedUntil };
    const { concurrency, rps } = this.limits;
    if (concurrency !== undefined && this.inFlight >= concurrency) return { ok: false, at: undefined };
    if (rps !== undefined && now < this.nextSlot) return { ok: false, at: this.nextSlot };
    if (this.budget) {
      if (now < this.budget.resetAt) return this.budget.remaining > 0 ? { ok: true, probe: false } : { ok: false, at: this.budget.resetAt };
      // The published budget has reset: one request learns the new one.
      return this.probeInFlight ? { ok: false, at: undefined } : { ok: true, probe: true };
    }
    const learnedSpent = this.learned !== undefined && this.startedSinceCool >= this.learned;
    const cap = learnedSpent ? 1 : this.window;
    if (this.inFlight >= cap) return { ok: false, at: undefined };
    return { ok: true, probe: cap === 1 };
  }

  /** When the gate opens, if that is a known time. */
  private openAt(): number | undefined {
    const a = this.admission(this.now());
    return a.ok ? undefined : a.at;
  }

  private pump(): void {
    for (;;) {
      const head = this.waiters[0];
      if (!head) break;
      const now = this.now();
      const a = this.admission(now);
      if (!a.ok) {
        if (a.at !== undefined) {
          // A known opening time: refuse now everyone who cannot wait that long.
          for (const w of [...this.waiters]) if (w.latestKnown < a.at) this.drop(w, new GateClosed(a.at));
          if (this.waiters.length > 0) this.wakeAt(a.at);
        }
        break;
      }
      this.waiters.shift();
      this.admit(head, now, a.probe);
    }
  }

  private admit(w: Waiter, now: number, probe: boolean): void {
    clearTimeout(w.timer);
    w.signal.removeEventListener("abort", w.onAbort);
    this.inFlight += 1;
    this.seq += 1;
    this.startedSinceCool += 1;
    if (probe) this.probeInFlight = true;
    if (this.budget && now < this.budget.resetAt) this.budget.remaining -= 1;
    if (this.limits.rps !== undefined) this.nextSlot = Math.max(now, this.nextSlot) + 1000 / this.limits.rps;
    w.resolve({ seq: this.seq, probe, waitedMs: now - w.since });
  }

  private drop(w: Waiter, reason: unknown): void {
    const i = this.waiters.indexOf(w);
    if (i === -1) return;
    this.waiters.splice(i, 1);
    clearTimeout(w.timer);
    w.signal.removeEventListener("abort", w.onAbort);
    w.reject(reason);
    // The head may have been the one blocking the others (a waiter refused for its own limit).
    if (i === 0) queueMicrotask(() => this.pump());
  }

  private wakeAt(at: number): void {
    if (this.timer !== undefined && this.timerAt <= at && this.timerAt > this.now()) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, timerDelay(at - this.now() + 1));
    // A cool-down alone must not keep the process alive; a waiting call does.
    this.timer.unref();
  }
}

/** The gates of one engine (one per process): one per origin, forgotten when idle. */
export class HostGates {
  private readonly gates = new Map<string, HostGate>();

  constructor(private readonly now: () => number = Date.now) {}

  get(origin: string, limits: GateLimits): HostGate {
    let gate = this.gates.get(origin);
    if (!gate) {
      if (this.gates.size >= 1_000) this.sweep();
      gate = new HostGate(origin, limits, this.now);
      this.gates.set(origin, gate);
    }
    return gate;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, gate] of this.gates) if (gate.idle(now)) this.gates.delete(key);
  }
}
