import type { Timers } from "../engine/scheduler/loop.js";

/**
 * A controllable clock and timer queue for the scheduler: time moves only when a test calls
 * `advance`, which runs due timers in order (and the timers they set), letting promises settle
 * between them, so a test observes every fire without sleeping.
 */
export function fakeTime(start: number) {
  let now = start;
  let seq = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const timers: Timers = {
    set: (fn, ms) => {
      const id = ++seq;
      pending.set(id, { at: now + ms, fn });
      return id;
    },
    clear: (handle) => void pending.delete(handle as number),
  };
  const settle = async () => {
    // Storage calls go through a thread pool and back: give them a few turns of the loop.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };
  async function advance(to: number): Promise<void> {
    for (;;) {
      await settle();
      const due = [...pending.entries()].filter(([, t]) => t.at <= to).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      pending.delete(due[0]);
      now = Math.max(now, due[1].at);
      due[1].fn();
    }
    now = Math.max(now, to);
    await settle();
  }
  return { now: () => now, timers, advance, pendingCount: () => pending.size };
}
