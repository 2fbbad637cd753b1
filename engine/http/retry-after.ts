/**
 * When a server says the next request may be sent, read from its response headers. Pure: the
 * clock is an argument. Header values come from a server we do not control, so every parse here is
 * bounded and linear, and anything unreadable is ignored rather than trusted.
 */

/** A server's wait, as an absolute time. `capped` when it asked for longer than MAX_SERVER_WAIT_MS. */
export interface ServerWait {
  at: number;
  source: "retry-after" | "x-ratelimit-reset" | "ratelimit-reset" | "x-rate-limit-reset";
  capped: boolean;
}

/** A request budget a server publishes (x-ratelimit-remaining with its reset). */
export interface PublishedBudget {
  remaining: number;
  resetAt: number;
}

/** Longer waits are cut to this; no call budget allows it, so the call fails clearly instead of sleeping for years. */
export const MAX_SERVER_WAIT_MS = 24 * 3_600_000;

/** Below this a bare number in a reset header is a delta in seconds; from here, epoch seconds (2001 on); from 1e12, epoch ms. */
const EPOCH_SECONDS_FROM = 1e9;
const EPOCH_MS_FROM = 1e12;

export type HeaderBag = Readonly<Record<string, string | undefined>>;

/** Digits with an optional fraction ("120", "1.5"): no sign, no exponent, at most 20 characters. */
export function parseSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (text.length === 0 || text.length > 20) return undefined;
  let dot = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e && !dot && i > 0 && i < text.length - 1) dot = true;
    else if (c < 0x30 || c > 0x39) return undefined;
  }
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

const DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/**
 * An HTTP-date (IMF-fixdate, RFC 850 or asctime): each starts with a day name, which keeps
 * Date.parse from reading a bare number ("1" parses as the year 2001) or other junk as a date.
 */
export function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (text.length < 20 || text.length > 64) return undefined;
  if (!DAY_NAMES.includes(text.slice(0, 3).toLowerCase())) return undefined;
  const at = Date.parse(text);
  return Number.isFinite(at) ? at : undefined;
}

function bounded(at: number, now: number, source: ServerWait["source"]): ServerWait {
  const latest = now + MAX_SERVER_WAIT_MS;
  if (at > latest) return { at: latest, source, capped: true };
  return { at: Math.max(now, at), source, capped: false };
}

/** A reset header's number as an absolute time: a delta in seconds, or epoch seconds, or epoch ms. */
export function resetTime(value: string | undefined, now: number): number | undefined {
  const n = parseSeconds(value);
  if (n === undefined) return undefined;
  if (n >= EPOCH_MS_FROM) return Math.ceil(n);
  if (n >= EPOCH_SECONDS_FROM) return Math.ceil(n * 1000);
  return now + Math.ceil(n * 1000);
}

const RESET_HEADERS = ["x-ratelimit-reset", "ratelimit-reset", "x-rate-limit-reset"] as const;
const REMAINING_HEADERS = ["x-ratelimit-remaining", "ratelimit-remaining", "x-rate-limit-remaining"] as const;

/**
 * The server's wait after a 429 or 503: Retry-After (delta seconds or an HTTP-date), else a reset
 * header. A date in the past means "now"; a negative or unreadable value is ignored (the caller
 * backs off instead); a far-future one is capped and marked.
 */
export function serverWait(headers: HeaderBag, now: number): ServerWait | undefined {
  const retryAfter = headers["retry-after"];
  if (retryAfter !== undefined) {
    const seconds = parseSeconds(retryAfter);
    if (seconds !== undefined) return bounded(now + Math.ceil(seconds * 1000), now, "retry-after");
    const date = parseHttpDate(retryAfter);
    if (date !== undefined) return bounded(date, now, "retry-after");
  }
  for (const name of RESET_HEADERS) {
    const at = resetTime(headers[name], now);
    if (at !== undefined) return bounded(at, now, name);
  }
  return undefined;
}

/** The budget a response publishes, if it names both what remains and when it resets. */
export function publishedBudget(headers: HeaderBag, now: number): PublishedBudget | undefined {
  for (let i = 0; i < REMAINING_HEADERS.length; i++) {
    const remaining = parseSeconds(headers[REMAINING_HEADERS[i]!]);
    if (remaining === undefined || !Number.isSafeInteger(remaining)) continue;
    const resetAt = resetTime(headers[RESET_HEADERS[i]!], now);
    if (resetAt === undefined) continue;
    return { remaining, resetAt: Math.min(Math.max(now, resetAt), now + MAX_SERVER_WAIT_MS) };
  }
  return undefined;
}
