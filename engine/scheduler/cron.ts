import { CronExpressionParser, type CronExpression } from "cron-parser";
import { isValidTimeZone, segmentAfter, segmentAt, segmentBefore, type Segment } from "./zone.js";

/**
 * Fire times of a cron expression in an IANA time zone, with the DST policy of the README's
 * "Schedules" section. Pure: no I/O, no clock; every function takes the instant it works from.
 *
 * cron-parser matches the expression against *wall-clock* time: it is run in UTC over "floating"
 * times (local wall-clock time written as if it were UTC), where no hour is skipped or repeated.
 * This module maps those wall-clock times to instants segment by segment (stretches of one UTC
 * offset, zone.ts), which is where the policy lives:
 *
 * - a wall-clock time that does not exist (spring forward) fires once, at the instant the gap ends
 *   (03:00 when 02:00–03:00 is skipped); several such times collapse into that one fire;
 * - a wall-clock time that happens twice (fall back) fires twice when the schedule fires every hour
 *   (its hour field matches all 24 hours: hourly and sub-hourly schedules keep their rhythm), and
 *   once, the first time, otherwise (daily, weekly, monthly...).
 *
 * cron-parser's own zone handling differs (test/unit/scheduler-cron.test.ts shows each case): it
 * fires a skipped 02:30 at 03:30, and in a 30-minute shift (Australia/Lord_Howe) it skips valid
 * times after the gap and repeated ones in the fold.
 */

/**
 * Expressions and zone names come from workflow definitions (guest code): longer ones are refused
 * before cron-parser or Intl see them. A 6-field expression with lists fits easily in 200.
 */
export const CRON_MAX_LENGTH = 200;
/** The longest IANA name is 32 characters ("America/Argentina/ComodRivadavia"). */
export const TIMEZONE_MAX_LENGTH = 64;

export { isValidTimeZone };

/** A parsed expression in its zone; build with compileCron (memoized). */
export interface CompiledCron {
  readonly cron: string;
  readonly timezone: string;
  /** Fires in both copies of a repeated (fall-back) wall-clock time: the hour field is every hour. */
  readonly repeatsInFold: boolean;
  /** cron-parser over floating time (UTC); reset before each use. */
  readonly floating: CronExpression;
}

/** Returns an error message for a bad expression or zone, or undefined when both are good. */
export function cronError(expression: string, timezone: string): string | undefined {
  if (expression.length > CRON_MAX_LENGTH) return `cron expression is ${expression.length} characters long; at most ${CRON_MAX_LENGTH}`;
  if (timezone.length > TIMEZONE_MAX_LENGTH) return `time zone name is ${timezone.length} characters long; at most ${TIMEZONE_MAX_LENGTH}`;
  if (!isValidTimeZone(timezone)) return `unknown time zone "${timezone}" (use an IANA name such as "Europe/London")`;
  const fields = expression.trim().split(/\s+/).length;
  if (fields < 5 || fields > 6) return `cron expression "${expression}" must have 5 fields (minute hour day month weekday) or 6 with seconds`;
  try {
    CronExpressionParser.parse(expression, { tz: "UTC" });
    return undefined;
  } catch (err) {
    return `invalid cron expression "${expression}": ${(err as Error).message}`;
  }
}

const compiled = new Map<string, CompiledCron>();
/** Enough for every schedule of a large deployment; past it the oldest entries are dropped. */
const MAX_COMPILED = 50_000;

/** Parses `cron` for `timezone`; throws cron-parser's error for a bad expression (validate first). */
export function compileCron(cron: string, timezone: string): CompiledCron {
  const key = `${timezone}\u0000${cron}`;
  const hit = compiled.get(key);
  if (hit) return hit;
  const floating = CronExpressionParser.parse(cron, { tz: "UTC" });
  const result: CompiledCron = { cron, timezone, repeatsInFold: floating.fields.hour.values.length === 24, floating };
  if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value as string);
  compiled.set(key, result);
  return result;
}

/** First floating occurrence strictly after `f`, or null when there is none. */
function floatingNext(c: CompiledCron, f: number): number | null {
  try {
    c.floating.reset(new Date(f));
    return c.floating.next().getTime();
  } catch {
    return null;
  }
}

/** Last floating occurrence strictly before `f`, or null when there is none. */
function floatingPrev(c: CompiledCron, f: number): number | null {
  try {
    c.floating.reset(new Date(f));
    return c.floating.prev().getTime();
  } catch {
    return null;
  }
}

/** Length of the repeated wall-clock stretch that starts `segment`, 0 when it does not start with a fold. */
function foldLength(segment: Segment): number {
  const t = segment.enteredBy;
  return t && t.before > t.after ? t.before - t.after : 0;
}

/** `instant` is the second happening of a repeated wall-clock time that this schedule fires once. */
function isSecondCopy(c: CompiledCron, segment: Segment, instant: number): boolean {
  return !c.repeatsInFold && instant < segment.start + foldLength(segment);
}

/** A wall-clock time the schedule matches was skipped by the gap that ends `segment` (which starts `next`). */
function gapHasFire(c: CompiledCron, segment: Segment, next: Segment): boolean {
  if (next.offset <= segment.offset) return false;
  const g = floatingNext(c, segment.end + segment.offset - 1);
  return g !== null && g < segment.end + next.offset;
}

/** Steps through segments; a cron that matches nothing for this long is taken as never firing. */
const MAX_STEPS = 64;

/** The first fire strictly after `after`, or null when the expression never fires again. */
export function nextFire(c: CompiledCron, after: number): number | null {
  let segment = segmentAt(c.timezone, after);
  let cursor = after;
  for (let step = 0; step < MAX_STEPS; step++) {
    const f = floatingNext(c, cursor + segment.offset);
    if (f !== null && f - segment.offset < segment.end) {
      const instant = f - segment.offset;
      if (!isSecondCopy(c, segment, instant)) return instant;
      // Every match in the rest of the repeated stretch is a second copy too: skip past it.
      cursor = segment.start + foldLength(segment) - 1;
      continue;
    }
    const next = segmentAfter(c.timezone, segment);
    if (!next) return null;
    if (gapHasFire(c, segment, next)) return segment.end;
    cursor = segment.end - 1;
    segment = next;
  }
  return null;
}

/** The last fire strictly before `before`, or null when there is none. */
export function prevFire(c: CompiledCron, before: number): number | null {
  let segment = segmentAt(c.timezone, before - 1);
  let cursor = before;
  for (let step = 0; step < MAX_STEPS; step++) {
    const f = floatingPrev(c, cursor + segment.offset);
    if (f !== null && f - segment.offset >= segment.start) {
      const instant = f - segment.offset;
      if (!isSecondCopy(c, segment, instant)) return instant;
      // Matches between the segment's start and here are second copies as well.
    }
    const previous = segmentBefore(c.timezone, segment);
    if (!previous) return null;
    if (segment.start < cursor && gapHasFire(c, previous, segment)) return segment.start;
    cursor = segment.start;
    segment = previous;
  }
  return null;
}

/** Fires in (from, to], oldest first, at most `limit` of them (the earliest). */
export function firesBetween(c: CompiledCron, from: number, to: number, limit: number): number[] {
  const out: number[] = [];
  let t = from;
  while (out.length < limit) {
    const next = nextFire(c, t);
    if (next === null || next > to) break;
    out.push(next);
    t = next;
  }
  return out;
}

/** Next fire after `after` for an expression and zone; null when it never fires again. */
export function nextFireTime(expression: string, timezone: string, after: number): number | null {
  return nextFire(compileCron(expression, timezone), after);
}
