import { CronExpressionParser } from "cron-parser";
import { describe, expect, it } from "vitest";
import { compileCron, cronError, firesBetween, nextFire, prevFire } from "../../engine/scheduler/index.js";
import { offsetAt } from "../../engine/scheduler/zone.js";

/**
 * Cron math and the DST policy, with fixed instants (no clock). 2026's transitions:
 * - America/New_York: 8 March 02:00 EST → 03:00 EDT; 1 November 02:00 EDT → 01:00 EST.
 * - Europe/London: 29 March 01:00 GMT → 02:00 BST; 25 October 02:00 BST → 01:00 GMT.
 * - Australia/Lord_Howe (30-minute shift): 5 April 02:00 (+11) → 01:30 (+10:30);
 *   4 October 02:00 (+10:30) → 02:30 (+11).
 */

const NY = "America/New_York";
const LONDON = "Europe/London";
const LORD_HOWE = "Australia/Lord_Howe";

/** cron-parser's own fires in the zone (its iterator, without the scheduler's correction). */
function cronParserFires(cron: string, zone: string, from: string, count: number): string[] {
  const it = CronExpressionParser.parse(cron, { tz: zone, currentDate: new Date(from) });
  return Array.from({ length: count }, () => it.next().toDate().toISOString());
}

/** Fires in (from, to] as ISO instants. */
function fires(cron: string, zone: string, from: string, to: string): string[] {
  return firesBetween(compileCron(cron, zone), Date.parse(from), Date.parse(to), 500).map((t) => new Date(t).toISOString());
}

/** Local wall-clock time of an instant, "HH:MM" with its UTC offset, to read tests against the policy. */
function local(iso: string, zone: string): string {
  const t = Date.parse(iso);
  const off = offsetAt(zone, t) / 60_000;
  const d = new Date(t + off * 60_000);
  const sign = off < 0 ? "-" : "+";
  const abs = Math.abs(off);
  return `${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

/**
 * The policy, checked independently of the implementation: walk every minute of a day in local
 * wall-clock terms and say which instants should fire.
 */
function expectedByWalking(minutes: number[], hours: number[] | "all", zone: string, dayStartUtc: string, dayEndUtc: string): string[] {
  const out = new Set<number>();
  const start = Date.parse(dayStartUtc);
  const end = Date.parse(dayEndUtc);
  const seenWall = new Set<number>();
  let previousOffset = offsetAt(zone, start);
  for (let t = start; t <= end; t += 60_000) {
    const offset = offsetAt(zone, t);
    if (offset > previousOffset) {
      // Spring forward at t: wall times [t + previous, t + offset) never happen; one that matches fires at t.
      for (let w = t + previousOffset; w < t + offset; w += 60_000) {
        const d = new Date(w);
        if (minutes.includes(d.getUTCMinutes()) && (hours === "all" || hours.includes(d.getUTCHours()))) out.add(t);
      }
    }
    previousOffset = offset;
    const wall = t + offset;
    const d = new Date(wall);
    const matches = minutes.includes(d.getUTCMinutes()) && (hours === "all" || hours.includes(d.getUTCHours()));
    if (!matches) continue;
    if (hours !== "all" && seenWall.has(wall)) continue; // once a day: a repeated wall time fires the first time only
    seenWall.add(wall);
    if (t > start) out.add(t);
  }
  return [...out].sort((a, b) => a - b).map((t) => new Date(t).toISOString());
}

describe("validation", () => {
  it("names a bad expression or zone", () => {
    expect(cronError("0 9 * * 1", "UTC")).toBeUndefined();
    expect(cronError("*/10 * * * * *", "UTC")).toBeUndefined();
    expect(cronError("0 9 * * 1", "Nowhere/City")).toMatch(/unknown time zone "Nowhere\/City"/);
    expect(cronError("99 * * * *", "UTC")).toMatch(/invalid cron expression "99 \* \* \* \*"/);
    expect(cronError("* * *", "UTC")).toMatch(/must have 5 fields/);
    expect(cronError("0 0 30 2 *", "UTC")).toMatch(/invalid cron expression/);
  });
});

describe("ordinary fire times", () => {
  it("computes fires in the schedule's zone, strictly after and before the given instant", () => {
    const c = compileCron("0 9 * * 1", NY);
    expect(new Date(nextFire(c, Date.parse("2026-02-28T00:00:00Z"))!).toISOString()).toBe("2026-03-02T14:00:00.000Z");
    expect(new Date(nextFire(c, Date.parse("2026-03-02T14:00:00Z"))!).toISOString()).toBe("2026-03-09T13:00:00.000Z");
    expect(new Date(prevFire(c, Date.parse("2026-03-09T13:00:00Z"))!).toISOString()).toBe("2026-03-02T14:00:00.000Z");
    expect(fires("*/20 * * * * *", "UTC", "2026-06-01T00:00:00Z", "2026-06-01T00:01:00Z")).toEqual([
      "2026-06-01T00:00:20.000Z",
      "2026-06-01T00:00:40.000Z",
      "2026-06-01T00:01:00.000Z",
    ]);
  });
});

describe("spring forward: a wall-clock time that does not exist fires once, when the gap ends", () => {
  it("America/New_York: 02:30 fires at 03:00 EDT; cron-parser says 03:30", () => {
    const day = fires("30 2 * * *", NY, "2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z");
    expect(day.map((t) => local(t, NY))).toEqual(["03:00-04:00", "02:30-04:00"]);
    expect(day[0]).toBe("2026-03-08T07:00:00.000Z");
    // cron-parser's own answer, corrected by the scheduler:
    expect(cronParserFires("30 2 * * *", NY, "2026-03-07T12:00:00Z", 1)).toEqual(["2026-03-08T07:30:00.000Z"]);
  });

  it("America/New_York: several skipped times collapse into one fire; hourly goes 01:00, 03:00", () => {
    expect(fires("*/30 2 * * *", NY, "2026-03-07T12:00:00Z", "2026-03-08T23:00:00Z")).toEqual(["2026-03-08T07:00:00.000Z"]);
    // cron-parser fires 02:00 and 02:30 as 03:00 and 03:30: two fires for one skipped hour.
    expect(cronParserFires("*/30 2 * * *", NY, "2026-03-07T12:00:00Z", 2)).toEqual(["2026-03-08T07:00:00.000Z", "2026-03-08T07:30:00.000Z"]);
    expect(fires("0 * * * *", NY, "2026-03-08T05:30:00Z", "2026-03-08T08:30:00Z").map((t) => local(t, NY))).toEqual(["01:00-05:00", "03:00-04:00", "04:00-04:00"]);
  });

  it("Europe/London: 01:30 fires at 02:00 BST; cron-parser says 02:30", () => {
    expect(fires("30 1 * * *", LONDON, "2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z").map((t) => local(t, LONDON))).toEqual(["02:00+01:00"]);
    expect(cronParserFires("30 1 * * *", LONDON, "2026-03-28T12:00:00Z", 1)).toEqual(["2026-03-29T01:30:00.000Z"]);
  });

  it("Australia/Lord_Howe: 02:15 fires at 02:30 (+11); cron-parser skips the day", () => {
    expect(fires("15 2 * * *", LORD_HOWE, "2026-10-03T00:00:00Z", "2026-10-05T00:00:00Z").map((t) => local(t, LORD_HOWE))).toEqual(["02:30+11:00", "02:15+11:00"]);
    expect(fires("15 2 * * *", LORD_HOWE, "2026-10-03T00:00:00Z", "2026-10-05T00:00:00Z")[0]).toBe("2026-10-03T15:30:00.000Z");
    expect(cronParserFires("15 2 * * *", LORD_HOWE, "2026-10-03T00:00:00Z", 1)).toEqual(["2026-10-04T15:15:00.000Z"]);
  });

  it("Australia/Lord_Howe: every 15 minutes keeps 02:30 and 02:45 (+11), which cron-parser skips", () => {
    const got = fires("*/15 * * * *", LORD_HOWE, "2026-10-03T15:00:00Z", "2026-10-03T16:00:00Z");
    expect(got.map((t) => local(t, LORD_HOWE))).toEqual(["01:45+10:30", "02:30+11:00", "02:45+11:00", "03:00+11:00"]);
    expect(cronParserFires("*/15 * * * *", LORD_HOWE, "2026-10-03T15:00:00Z", 2)).toEqual(["2026-10-03T15:15:00.000Z", "2026-10-03T16:00:00.000Z"]);
  });
});

describe("fall back: a repeated wall-clock time fires once a day for daily jobs, twice for hourly and sub-hourly", () => {
  it("America/New_York: 01:30 daily fires once (EDT); every 30 minutes fires in both 01:00 hours", () => {
    expect(fires("30 1 * * *", NY, "2026-10-31T12:00:00Z", "2026-11-01T12:00:00Z").map((t) => local(t, NY))).toEqual(["01:30-04:00"]);
    expect(fires("*/30 * * * *", NY, "2026-11-01T04:45:00Z", "2026-11-01T07:15:00Z").map((t) => local(t, NY))).toEqual([
      "01:00-04:00",
      "01:30-04:00",
      "01:00-05:00",
      "01:30-05:00",
      "02:00-05:00",
    ]);
    expect(fires("0 * * * *", NY, "2026-11-01T04:30:00Z", "2026-11-01T07:30:00Z").map((t) => local(t, NY))).toEqual(["01:00-04:00", "01:00-05:00", "02:00-05:00"]);
  });

  it("Europe/London: 01:30 daily once (BST), hourly in both", () => {
    expect(fires("30 1 * * *", LONDON, "2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z").map((t) => local(t, LONDON))).toEqual(["01:30+01:00"]);
    expect(fires("0 * * * *", LONDON, "2026-10-24T23:30:00Z", "2026-10-25T02:30:00Z").map((t) => local(t, LONDON))).toEqual(["01:00+01:00", "01:00+00:00", "02:00+00:00"]);
  });

  it("Australia/Lord_Howe: the repeated half hour fires twice every 15 minutes (cron-parser skips it) and once daily", () => {
    const got = fires("*/15 * * * *", LORD_HOWE, "2026-04-04T14:00:00Z", "2026-04-04T15:30:00Z");
    expect(got.map((t) => local(t, LORD_HOWE))).toEqual(["01:15+11:00", "01:30+11:00", "01:45+11:00", "01:30+10:30", "01:45+10:30", "02:00+10:30"]);
    expect(cronParserFires("*/15 * * * *", LORD_HOWE, "2026-04-04T14:30:00Z", 2)).toEqual(["2026-04-04T14:45:00.000Z", "2026-04-04T15:30:00.000Z"]);
    expect(fires("45 1 * * *", LORD_HOWE, "2026-04-04T00:00:00Z", "2026-04-05T00:00:00Z").map((t) => local(t, LORD_HOWE))).toEqual(["01:45+11:00"]);
  });

  it("a weekly job on the transition day fires once", () => {
    // 1 November 2026 is a Sunday.
    expect(fires("30 1 * * 0", NY, "2026-10-30T00:00:00Z", "2026-11-07T00:00:00Z")).toEqual(["2026-11-01T05:30:00.000Z"]);
  });
});

describe("the policy holds minute by minute on every 2026 transition day", () => {
  const days: [string, string, string][] = [
    [NY, "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z"],
    [NY, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"],
    [LONDON, "2026-03-28T20:00:00Z", "2026-03-29T20:00:00Z"],
    [LONDON, "2026-10-24T20:00:00Z", "2026-10-25T20:00:00Z"],
    [LORD_HOWE, "2026-04-04T08:00:00Z", "2026-04-05T08:00:00Z"],
    [LORD_HOWE, "2026-10-03T08:00:00Z", "2026-10-04T08:00:00Z"],
  ];
  const schedules: [string, number[], number[] | "all"][] = [
    ["*/15 * * * *", [0, 15, 30, 45], "all"],
    ["0 * * * *", [0], "all"],
    ["30 * * * *", [30], "all"],
    ["5,35 1-3 * * *", [5, 35], [1, 2, 3]],
    ["30 2 * * *", [30], [2]],
    ["45 1 * * *", [45], [1]],
    ["0 2 * * *", [0], [2]],
  ];
  for (const [zone, from, to] of days) {
    for (const [cron, minutes, hours] of schedules) {
      it(`${cron} in ${zone} from ${from}`, () => {
        const expected = expectedByWalking(minutes, hours, zone, from, to);
        expect(fires(cron, zone, from, to)).toEqual(expected);
        // Walking backwards gives the same fires.
        const c = compileCron(cron, zone);
        const back: string[] = [];
        for (let t = Date.parse(to) + 1; ; ) {
          const p = prevFire(c, t);
          if (p === null || p <= Date.parse(from)) break;
          back.unshift(new Date(p).toISOString());
          t = p;
        }
        expect(back).toEqual(expected);
      });
    }
  }
});
