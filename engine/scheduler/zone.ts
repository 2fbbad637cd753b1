/**
 * UTC offsets and their transitions in an IANA time zone, from Intl (pure: no I/O, memoized).
 * An offset is what local wall-clock time adds to UTC: local = instant + offset (milliseconds).
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      era: "short",
    });
    formatters.set(zone, f);
  }
  return f;
}

/** The zone's UTC offset at `instant`, in milliseconds (whole seconds: Intl has no finer field). */
export function offsetAt(zone: string, instant: number): number {
  const whole = Math.floor(instant / 1000) * 1000;
  const parts: Record<string, string> = {};
  for (const p of formatter(zone).formatToParts(new Date(whole))) parts[p.type] = p.value;
  let year = Number(parts.year);
  if (parts.era === "BC" || parts.era === "B") year = 1 - year;
  const local = Date.UTC(year, Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
  return local - whole;
}

/** The instant `at` from which the zone's offset is `after` (it was `before` just until then). */
export interface Transition {
  at: number;
  before: number;
  after: number;
}

/**
 * Sampling step when looking for transitions. Real zones keep an offset for months; two changes
 * within three hours that cancel out would be missed, and no zone in use has them.
 */
const SAMPLE_MS = 3 * 3_600_000;
const byYear = new Map<string, Transition[]>();

function transitionsOfYear(zone: string, year: number): Transition[] {
  const key = `${zone}\u0000${year}`;
  const cached = byYear.get(key);
  if (cached) return cached;
  const found: Transition[] = [];
  const start = Date.UTC(year, 0, 1);
  const end = Date.UTC(year + 1, 0, 1);
  let t = start;
  let offset = offsetAt(zone, t);
  while (t < end) {
    const u = Math.min(t + SAMPLE_MS, end);
    const o = offsetAt(zone, u);
    if (o !== offset) {
      // Bisect (lo has the old offset, hi the new) down to the millisecond.
      let lo = t;
      let hi = u;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (offsetAt(zone, mid) === offset) lo = mid;
        else hi = mid;
      }
      found.push({ at: hi, before: offset, after: offsetAt(zone, hi) });
      offset = o;
    }
    t = u;
  }
  byYear.set(key, found);
  return found;
}

/** How far from an instant transitions are looked for; beyond it the offset is taken as constant. */
const HORIZON_YEARS = 2;

/** A stretch of time with one offset: [start, end). `start`/`end` are ±Infinity past the horizon. */
export interface Segment {
  start: number;
  end: number;
  offset: number;
  /** The transition that starts this segment, if there is one within the horizon. */
  enteredBy: Transition | undefined;
  /** The transition that ends it. */
  leftBy: Transition | undefined;
}

/** The segment of constant offset that contains `instant`. */
export function segmentAt(zone: string, instant: number): Segment {
  const year = new Date(instant).getUTCFullYear();
  let enteredBy: Transition | undefined;
  let leftBy: Transition | undefined;
  for (let y = year; y >= year - HORIZON_YEARS && !enteredBy; y--) {
    const list = transitionsOfYear(zone, y);
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i]!.at <= instant) {
        enteredBy = list[i];
        break;
      }
    }
  }
  for (let y = year; y <= year + HORIZON_YEARS && !leftBy; y++) {
    leftBy = transitionsOfYear(zone, y).find((tr) => tr.at > instant);
  }
  return {
    start: enteredBy?.at ?? -Infinity,
    end: leftBy?.at ?? Infinity,
    offset: enteredBy?.after ?? leftBy?.before ?? offsetAt(zone, instant),
    enteredBy,
    leftBy,
  };
}

/** The segment that follows `segment` (it starts where `segment` ends). */
export function segmentAfter(zone: string, segment: Segment): Segment | undefined {
  return segment.leftBy ? segmentAt(zone, segment.leftBy.at) : undefined;
}

/** The segment that precedes `segment` (it ends where `segment` starts). */
export function segmentBefore(zone: string, segment: Segment): Segment | undefined {
  return segment.enteredBy ? segmentAt(zone, segment.enteredBy.at - 1) : undefined;
}

export function isValidTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
