import { CronExpressionParser } from "cron-parser";

/** Pure cron helpers over cron-parser, evaluated in the schedule's IANA time zone. */

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
