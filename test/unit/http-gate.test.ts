import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { GateClosed, HostGate, type Ticket } from "../../engine/http/gate.js";

// The gate on a fake clock: what it admits, and when, is decided by its rules alone.
beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

const signal = new AbortController().signal;
const FAR = 10_000_000_000;

function tracked(gate: HostGate, latest = FAR, latestKnown?: number) {
  const state: { ticket?: Ticket; error?: unknown } = {};
  gate.acquire({ latest, ...(latestKnown === undefined ? {} : { latestKnown }), signal }).then(
    (t) => (state.ticket = t),
    (e: unknown) => (state.error = e),
  );
  return state;
}

const answer = { kind: "answer" } as const;

describe("the per-host gate", () => {
  it("sends one request alone to a new host, then one more at once per answer (slow start)", async () => {
    const gate = new HostGate("http://a.test", {}, Date.now);
    const waiting = [tracked(gate), tracked(gate), tracked(gate), tracked(gate)];
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.map((w) => w.ticket !== undefined)).toEqual([true, false, false, false]);
    gate.release(waiting[0]!.ticket!, answer);
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.map((w) => w.ticket !== undefined)).toEqual([true, true, true, false]);
  });

  it("keeps to a configured concurrency and requests per second", async () => {
    const gate = new HostGate("http://a.test", { concurrency: 2, rps: 5 }, Date.now);
    // Open the slow-start window first.
    for (let i = 0; i < 4; i++) {
      const w = tracked(gate);
      await vi.advanceTimersByTimeAsync(200);
      gate.release(w.ticket!, answer);
    }
    const start = Date.now();
    const times: number[] = [];
    const tickets: Ticket[] = [];
    for (let i = 0; i < 3; i++) void gate.acquire({ latest: FAR, signal }).then((t) => (times.push(Date.now() - start), tickets.push(t)));
    await vi.advanceTimersByTimeAsync(1_000);
    // Two in flight at once, the second 200 ms after the first (5 per second); the third waits for a slot.
    expect(times).toEqual([0, 201]);
    gate.release(tickets[0]!, answer);
    await vi.advanceTimersByTimeAsync(0);
    expect(times).toHaveLength(3);
  });

  it("cools down after a 429 until the server's time, for every waiter, and refuses at once those who cannot wait that long", async () => {
    const gate = new HostGate("http://a.test", {}, Date.now);
    const first = tracked(gate);
    await vi.advanceTimersByTimeAsync(0);
    const until = Date.now() + 3_000;
    gate.release(first.ticket!, { kind: "rate-limited", until });
    const patient = tracked(gate);
    const hurried = tracked(gate, FAR, Date.now() + 1_000);
    await vi.advanceTimersByTimeAsync(0);
    expect(hurried.error).toBeInstanceOf(GateClosed);
    expect((hurried.error as GateClosed).until).toBe(until);
    await vi.advanceTimersByTimeAsync(2_990);
    expect(patient.ticket).toBeUndefined();
    await vi.advanceTimersByTimeAsync(20);
    expect(patient.ticket).toMatchObject({ probe: true });
    expect(patient.ticket!.waitedMs).toBeGreaterThanOrEqual(3_000);
  });

  it("spends a published budget, waits for its reset, then probes alone", async () => {
    const gate = new HostGate("http://a.test", {}, Date.now);
    const first = tracked(gate);
    await vi.advanceTimersByTimeAsync(0);
    gate.release(first.ticket!, { kind: "answer", budget: { remaining: 2, resetAt: Date.now() + 1_000 } });
    const next = [tracked(gate), tracked(gate), tracked(gate), tracked(gate)];
    await vi.advanceTimersByTimeAsync(0);
    expect(next.map((w) => w.ticket !== undefined)).toEqual([true, true, false, false]);
    await vi.advanceTimersByTimeAsync(1_001);
    // The reset passed: one request learns the new budget before the others go.
    expect(next.map((w) => w.ticket !== undefined)).toEqual([true, true, true, false]);
    gate.release(next[2]!.ticket!, { kind: "answer", budget: { remaining: 9, resetAt: Date.now() + 1_000 } });
    await vi.advanceTimersByTimeAsync(0);
    expect(next[3]!.ticket).toBeDefined();
  });

  it("after a cool-down starts no more than the host accepted before it, then one alone", async () => {
    const gate = new HostGate("http://a.test", {}, Date.now);
    // Three answers, then a 429: the learned budget is 3.
    for (let i = 0; i < 3; i++) {
      const w = tracked(gate);
      await vi.advanceTimersByTimeAsync(0);
      gate.release(w.ticket!, answer);
    }
    const refused = tracked(gate);
    await vi.advanceTimersByTimeAsync(0);
    gate.release(refused.ticket!, { kind: "rate-limited", until: Date.now() + 1_000 });
    const waiting = Array.from({ length: 6 }, () => tracked(gate));
    await vi.advanceTimersByTimeAsync(1_001);
    // Each round: the requests the gate let go at once; all of them then answer.
    const rounds: number[] = [];
    const seen = new Set<Ticket>();
    for (let round = 0; round < 4; round++) {
      const fresh = waiting.map((w) => w.ticket).filter((t): t is Ticket => t !== undefined && !seen.has(t));
      rounds.push(fresh.length);
      for (const t of fresh) {
        seen.add(t);
        gate.release(t, answer);
      }
      await vi.advanceTimersByTimeAsync(0);
    }
    // One alone, then slow start up to the learned 3 started, then one at a time.
    expect(rounds).toEqual([1, 2, 1, 1]);
  });

  it("gives up waiting for a slot at `latest` with GateClosed", async () => {
    const gate = new HostGate("http://a.test", { concurrency: 1 }, Date.now);
    tracked(gate);
    const second = tracked(gate, Date.now() + 500);
    await vi.advanceTimersByTimeAsync(499);
    expect(second.error).toBeUndefined();
    await vi.advanceTimersByTimeAsync(2);
    expect(second.error).toBeInstanceOf(GateClosed);
  });
});
