import { describe, expect, it } from "vitest";
import { SchedulerLoop, type LoopEntry } from "../../engine/scheduler/loop.js";
import { fakeTime as fakeTimeAt } from "../fake-time.js";

const fakeTime = () => fakeTimeAt(1_000_000);

interface E extends LoopEntry {
  every: number;
}

function makeLoop(clock: ReturnType<typeof fakeTime>, onFire?: (e: E, now: number) => void | Promise<void>) {
  const fired: [string, number][] = [];
  const errors: unknown[] = [];
  const loop = new SchedulerLoop<E>({
    now: clock.now,
    timers: clock.timers,
    fire: async (entries, now) => {
      const out: E[] = [];
      for (const entry of entries) {
        fired.push([entry.key, entry.next!]);
        await onFire?.(entry, now);
        out.push({ ...entry, next: entry.next! + entry.every });
      }
      return out;
    },
    onError: (err) => errors.push(err),
  });
  return { loop, fired, errors };
}

describe("the scheduler loop", () => {
  it("keeps one timer, for the earliest entry, however many entries it holds", async () => {
    const clock = fakeTime();
    const { loop, fired } = makeLoop(clock);
    loop.start();
    for (let i = 0; i < 10_000; i++) loop.set({ key: `s${i}`, next: clock.now() + 3_600_000 + i * 1000, every: 86_400_000 });
    expect(clock.pendingCount()).toBe(1);
    expect(loop.nextWake).toBe(clock.now() + 3_600_000);
    loop.set({ key: "soon", next: clock.now() + 500, every: 1000 });
    expect(clock.pendingCount()).toBe(1);
    await clock.advance(clock.now() + 2_600);
    expect(fired).toEqual([
      ["soon", 1_000_500],
      ["soon", 1_001_500],
      ["soon", 1_002_500],
    ]);
    expect(clock.pendingCount()).toBe(1);
    await loop.stop();
    expect(clock.pendingCount()).toBe(0);
  });

  it("fires due entries oldest first, and a replaced or deleted entry never fires its old time", async () => {
    const clock = fakeTime();
    const { loop, fired } = makeLoop(clock);
    loop.start();
    const t = clock.now();
    loop.set({ key: "b", next: t + 200, every: 10_000 });
    loop.set({ key: "a", next: t + 100, every: 10_000 });
    loop.set({ key: "c", next: t + 300, every: 10_000 });
    loop.set({ key: "c", next: t + 5_000, every: 10_000 });
    loop.delete("b");
    await clock.advance(t + 6_000);
    expect(fired).toEqual([
      ["a", t + 100],
      ["c", t + 5_000],
    ]);
    await loop.stop();
  });

  it("catches up at once when the clock is past several entries (the process was busy)", async () => {
    const clock = fakeTime();
    const { loop, fired } = makeLoop(clock);
    loop.start();
    const t = clock.now();
    loop.set({ key: "x", next: t + 10, every: 100_000 });
    loop.set({ key: "y", next: t + 20, every: 100_000 });
    await clock.advance(t + 50_000);
    expect(fired.map(([k]) => k)).toEqual(["x", "y"]);
    await loop.stop();
  });

  it("retries a fire that failed with backoff while other entries go on", async () => {
    const clock = fakeTime();
    let failures = 2;
    const { loop, fired, errors } = makeLoop(clock, (e) => {
      if (e.key === "flaky" && failures-- > 0) throw new Error("database busy");
    });
    loop.start();
    const t = clock.now();
    loop.set({ key: "flaky", next: t + 10, every: 1_000_000 });
    loop.set({ key: "steady", next: t + 1500, every: 1_000_000 });
    await clock.advance(t + 10_000);
    expect(errors.length).toBe(2);
    // flaky at +10 (fails), +1010 (fails, retry 1 s), +3010 (retry 2 s): succeeds; steady on time between.
    expect(fired).toEqual([
      ["flaky", t + 10],
      ["flaky", t + 10],
      ["steady", t + 1500],
      ["flaky", t + 10],
    ]);
    await loop.stop();
  });

  it("sleeps at most a minute, so a clock that jumped is noticed without a timer per entry", async () => {
    const clock = fakeTime();
    const { loop } = makeLoop(clock);
    loop.start();
    loop.set({ key: "far", next: clock.now() + 30 * 86_400_000, every: 1 });
    await clock.advance(clock.now() + 59_000);
    expect(clock.pendingCount()).toBe(1);
    await loop.stop();
  });

  it("hands entries due at once to one fire, oldest first", async () => {
    const clock = fakeTime();
    const calls: string[][] = [];
    const loop = new SchedulerLoop<LoopEntry>({
      now: clock.now,
      timers: clock.timers,
      fire: async (entries) => {
        calls.push(entries.map((e) => e.key));
        return entries.map(() => null);
      },
      onError: () => {},
    });
    const t = clock.now();
    // All three are overdue when the loop starts (a busy moment, or a restart).
    for (const [key, at] of [["c", -10], ["a", -30], ["b", -20], ["later", 5_000]] as const) loop.set({ key, next: t + at });
    loop.start();
    await clock.advance(t + 100);
    expect(calls).toEqual([["a", "b", "c"]]);
    expect(loop.keys()).toEqual(["later"]);
    await loop.stop();
  });

  it("waits when an entry keeps coming back due instead of spinning", async () => {
    const clock = fakeTime();
    let calls = 0;
    const loop = new SchedulerLoop<LoopEntry>({
      now: clock.now,
      timers: clock.timers,
      fire: async (entries) => {
        calls++;
        return entries.map((entry) => ({ ...entry }));
      },
      onError: () => {},
    });
    loop.start();
    loop.set({ key: "stuck", next: clock.now() });
    await clock.advance(clock.now() + 1);
    expect(calls).toBe(6);
    await clock.advance(clock.now() + 1_000);
    expect(calls).toBeGreaterThan(6);
    await loop.stop();
  });
});
