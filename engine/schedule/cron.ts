import { CronExpressionParser } from "cron-parser";

/** Pure cron helpers over cron-parser, evaluated in the schedule's IANA time zone. */

/**
 * Expressions and zone names come from workflow definitions (guest code): longer ones are refused
 * before cron-parser or Intl see them. A 6-field expression with lists fits easily in 200.
 */
export const CRON_MAX_LENGTH = 200;
/** The longest IANA name is 32 characters ("America/Argentina/ComodRivadavia"). */
export const TIMEZONE_MAX_LENGTH = 64;

export function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Returns an error message for a bad expression, or undefined when it parses. */
export function cronError(expression: string, timezone: string): string | undefined {
  if (expression.length > CRON_MAX_LENGTH) return `cron expression is ${expression.length} characters long; at most ${CRON_MAX_LENGTH}`;
  if (timezone.length > TIMEZONE_MAX_LENGTH) return `time zone name is ${timezone.length} characters long; at most ${TIMEZONE_MAX_LENGTH}`;
  if (!isValidTimeZone(timezone)) return `unknown time zone "${timezone}" (use an IANA name such as "Europe/London")`;
  const fields = expression.trim().split(/\s+/).length;
  if (fields < 5 || fields > 6) return `cron expression "${expression}" must have 5 fields (minute hour day month weekday) or 6 with seconds`;
  try {
    CronExpressionParser.parse(expression, { tz: timezone });
    return undefined;
  } catch (err) {
    return `invalid cron expression "${expression}": ${(err as Error).message}`;
  }
}

export function nextFireTime(expression: string, timezone: string, after: number): number {
  return CronExpressionParser.parse(expression, { tz: timezone, currentDate: new Date(after) }).next().toDate().getTime();
}
