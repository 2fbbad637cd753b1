/**
 * Provider text (error descriptions, challenge headers, bodies) is untrusted and unbounded: these
 * helpers cut it first and then work in one linear pass, so a huge or hostile string costs no more
 * than its cap. Pure.
 */
import { capString } from "../../common/json-bounds.js";

/** The longest description a failure carries (DESIGN §9: stored, logged, shown). */
export const MAX_DESCRIPTION = 500;

/** How much of a raw provider string is ever looked at. */
export const MAX_SCAN = 4_000;

/**
 * One line of readable text: control characters (C0, DEL, C1, line and paragraph separators,
 * bidirectional overrides) become spaces, runs of spaces collapse, the ends are trimmed and the
 * result is capped at `max`.
 */
export function cleanText(value: unknown, max = MAX_DESCRIPTION): string {
  if (typeof value !== "string") return "";
  const raw = value.length > max * 2 + 16 ? value.slice(0, max * 2 + 16) : value;
  let out = "";
  let space = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    const blank = c <= 0x20 || (c >= 0x7f && c <= 0xa0) || c === 0x2028 || c === 0x2029 || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c === 0xfeff;
    if (blank) {
      space = out.length > 0;
      continue;
    }
    if (space) out += " ";
    space = false;
    out += raw[i];
  }
  return capString(out, max, "…");
}

/** cleanText that ends like a sentence (a full stop added when it has no end mark), still within `max`. */
export function cleanSentence(value: string, max = MAX_DESCRIPTION): string {
  const text = cleanText(value, max - 1);
  return text === "" || /[.!?…]$/.test(text) ? text : `${text}.`;
}

/** A provider's code (an OAuth `error`, a Graph error code): printable ASCII without spaces, ≤ 64 characters. */
export function cleanCode(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const text = value.slice(0, 64);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x22 || c === 0x5c) return undefined;
  }
  return text.length > 0 ? text : undefined;
}

const AADSTS = /AADSTS(\d{4,9})/;

/** The first Microsoft AADSTS number in a text ("700082" for "AADSTS700082: ..."), or undefined. */
export function aadstsNumber(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  return AADSTS.exec(text.slice(0, MAX_SCAN))?.[1];
}

/** `name="value"` or `name=token` from a WWW-Authenticate header (capped), or undefined. */
export function challengeParam(header: string, name: "error" | "error_description" | "scope"): string | undefined {
  const text = header.slice(0, MAX_SCAN);
  // The name must start a parameter: not be the tail of another ("xerror=") nor "error" of "error_description=".
  const re = new RegExp(`(?:^|[\\s,])${name}\\s*=\\s*(?:"([^"]*)"|([^\\s,"]+))`, "i");
  const m = re.exec(text);
  if (!m) return undefined;
  return m[1] ?? m[2];
}
