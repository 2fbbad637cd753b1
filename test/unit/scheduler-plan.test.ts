import { describe, expect, it } from "vitest";
import { applyOverlap, compileCron, describeCron, planFires, type CatchUp } from "../../engine/scheduler/index.js";

const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = Date.parse("2026-06-01T00:00:00Z");
const everyMinute = compileCron("* * * * *", "UTC");
const iso = (ts: number[]) => ts.map((t) => new Date(t).toISOString().slice(11, 16));

/** A schedule whose first unhandled fire was `next`, looked at `nowOffset` after it. */
function plan(catchUp: CatchUp, next: number, now: number, windowMs = 24 * HOUR) {
  return planFires(everyMinute, { next, now, catchUp, catchUpWindowMs: windowMs });
}

describe("catch-up planning", () => {
  it("fires a due fire on time whatever the policy, and nothing before it is due", () => {
    for (const catchUp of ["none", "latest", "all"] as const) {
      expect(plan(catchUp, T0, T0 + 5)).toEqual({ fires: [T0], dropped: false, next: T0 + MIN });
      expect(plan(catchUp, T0, T0 - 1)).toEqual({ fires: [], dropped: false, next: T0 });
    }
  });

  it("counts fires up to the grace period late as on time (a busy moment), not as missed", () => {
    // Looked at 30 s after 00:01: 00:01 is on time; 00:00 is 90 s late, missed.
    const now = T0 + MIN + 30_000;
    expect(iso(plan("none", T0, now).fires)).toEqual(["00:01"]);
    expect(plan("none", T0, now).dropped).toBe(true);
    expect(iso(plan("latest", T0, now).fires)).toEqual(["00:01"]);
    expect(iso(plan("all", T0, now).fires)).toEqual(["00:00", "00:01"]);
    expect(plan("all", T0, now).dropped).toBe(false);
  });

  it("after downtime: none drops, latest runs the most recent, all runs the window's fires", () => {
    // Down from 00:00 to 03:00:30 (the 03:00 fire is on time).
    const now = T0 + 3 * HOUR + 30_000;
    expect(plan("none", T0, now)).toEqual({ fires: [T0 + 3 * HOUR], dropped: true, next: T0 + 3 * HOUR + MIN });
    expect(iso(plan("latest", T0, now).fires)).toEqual(["03:00"]);
    const all = plan("all", T0, now);
    expect(all.fires.length).toBe(100);
    expect(iso([all.fires[0]!, all.fires[99]!])).toEqual(["01:21", "03:00"]);
  });

  it("latest runs the most recent missed fire when no fire is on time", () => {
    const hourly = compileCron("0 * * * *", "UTC");
    const now = T0 + 5 * HOUR + 20 * MIN;
    const p = planFires(hourly, { next: T0 + HOUR, now, catchUp: "latest", catchUpWindowMs: 24 * HOUR });
    expect(iso(p.fires)).toEqual(["05:00"]);
    expect(p.dropped).toBe(true);
    expect(p.next).toBe(T0 + 6 * HOUR);
    const none = planFires(hourly, { next: T0 + HOUR, now, catchUp: "none", catchUpWindowMs: 24 * HOUR });
    expect(none.fires).toEqual([]);
    expect(none.dropped).toBe(true);
    const all = planFires(hourly, { next: T0 + HOUR, now, catchUp: "all", catchUpWindowMs: 24 * HOUR });
    expect(iso(all.fires)).toEqual(["01:00", "02:00", "03:00", "04:00", "05:00"]);
    expect(all.dropped).toBe(false);
  });

  it("keeps missed fires within catchUpWindow only, for latest and all", () => {
    const hourly = compileCron("0 * * * *", "UTC");
    const now = T0 + 5 * HOUR + 20 * MIN;
    const all = planFires(hourly, { next: T0 + HOUR, now, catchUp: "all", catchUpWindowMs: 2 * HOUR });
    expect(iso(all.fires)).toEqual(["04:00", "05:00"]);
    expect(all.dropped).toBe(true);
    const latest = planFires(hourly, { next: T0 + HOUR, now, catchUp: "latest", catchUpWindowMs: 10 * MIN });
    expect(latest.fires).toEqual([]);
  });

  it("creates at most 100 fires, the most recent ones", () => {
    const now = T0 + 10 * HOUR;
    const p = plan("all", T0, now);
    expect(p.fires.length).toBe(100);
    expect(p.fires[99]).toBe(now);
    expect(p.fires[0]).toBe(now - 99 * MIN);
    expect(p.dropped).toBe(true);
    // A per-second schedule a day behind is planned without walking the whole day.
    const perSecond = compileCron("* * * * * *", "UTC");
    const q = planFires(perSecond, { next: T0, now: T0 + 24 * HOUR, catchUp: "all", catchUpWindowMs: 24 * HOUR });
    expect(q.fires.length).toBe(100);
    expect(q.next).toBe(T0 + 24 * HOUR + 1000);
  });

  it("applies the DST policy to missed fires too", () => {
    // New York's spring-forward night, down from 01:00 to 04:00 EDT: 02:30 daily fires at 03:00 EDT.
    const daily = compileCron("30 2 * * *", "America/New_York");
    const p = planFires(daily, { next: Date.parse("2026-03-08T07:00:00Z"), now: Date.parse("2026-03-08T08:00:00Z"), catchUp: "all", catchUpWindowMs: 24 * HOUR });
    expect(p.fires.map((t) => new Date(t).toISOString())).toEqual(["2026-03-08T07:00:00.000Z"]);
    expect(new Date(p.next!).toISOString()).toBe("2026-03-09T06:30:00.000Z");
  });
});

describe("overlap", () => {
  const A = 1;
  const B = 2;
  const C = 3;
  it("skip: no new fire while a run is unfinished", () => {
    expect(applyOverlap("skip", { unfinished: false, pending: null }, [A])).toEqual({ start: [A], pending: null, skipped: [], dropped: [] });
    expect(applyOverlap("skip", { unfinished: true, pending: null }, [A])).toEqual({ start: [], pending: null, skipped: [A], dropped: [] });
    // A catch-up batch starts its first fire; the others would overlap it.
    expect(applyOverlap("skip", { unfinished: false, pending: null }, [A, B, C])).toEqual({ start: [A], pending: null, skipped: [B, C], dropped: [] });
  });

  it("queue: keeps one pending fire, which starts when nothing is unfinished", () => {
    expect(applyOverlap("queue", { unfinished: true, pending: null }, [A, B])).toEqual({ start: [], pending: A, skipped: [], dropped: [B] });
    expect(applyOverlap("queue", { unfinished: true, pending: A }, [B])).toEqual({ start: [], pending: A, skipped: [], dropped: [B] });
    // The unfinished run ended: the pending fire starts first, the new one waits behind it.
    expect(applyOverlap("queue", { unfinished: false, pending: A }, [B])).toEqual({ start: [A], pending: B, skipped: [], dropped: [] });
    expect(applyOverlap("queue", { unfinished: false, pending: A }, [])).toEqual({ start: [A], pending: null, skipped: [], dropped: [] });
  });

  it("allow: every fire starts", () => {
    expect(applyOverlap("allow", { unfinished: true, pending: null }, [A, B, C])).toEqual({ start: [A, B, C], pending: null, skipped: [], dropped: [] });
  });
});

describe("cron in words", () => {
  it("reads common expressions", () => {
    expect(describeCron("0 9 * * 1")).toBe("at 09:00 on Monday");
    expect(describeCron("*/15 * * * *")).toBe("every 15 minutes");
    expect(describeCron("* * * * * *")).toBe("every second");
    expect(describeCron("0 * * * *")).toBe("at the start of every hour");
    expect(describeCron("*/10 9-17 * * 1-5")).toBe("every 10 minutes between 09:00 and 17:59 on Monday to Friday");
    expect(describeCron("0 9,17 * * *")).toBe("at 09:00 and 17:00");
    expect(describeCron("0 8 1 jan,jul *")).toBe("at 08:00 on day 1 of the month in January and July");
  });

  it("quotes what it cannot put simply instead of guessing", () => {
    expect(describeCron("0 12 * * 1#2")).toBe('at 12:00 on weekday "1#2"');
    expect(describeCron("0 0 L * *")).toBe('at 00:00 on day "L" of the month');
  });
});
