/** The answer as the workflow sees it, and the error data of an answer it did not want. Pure. */
import { capString, parseBoundedJson, DEFAULT_JSON_DEPTH } from "../../common/json-bounds.js";

export interface GuestResponse {
  status: number;
  ok: boolean;
  headers: Record<string, string>;
  /** Parsed JSON when the answer says it is JSON (and parses), else the text ("" when empty). */
  body: unknown;
}

const EXCERPT_CHARS = 500;

/** application/json, text/json and any +json type (application/problem+json, …). */
export function isJsonType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(";");
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return type === "application/json" || type === "text/json" || type.endsWith("+json");
}

/** JSON nested deeper than the sandbox bound stays text: it could not cross as a value. */
export function guestResponse(status: number, headers: Record<string, string>, body: Buffer): GuestResponse {
  const text = body.toString("utf8");
  let value: unknown = text;
  if (text.length > 0 && isJsonType(headers["content-type"])) {
    const parsed = parseBoundedJson(text, { maxLength: text.length, maxDepth: DEFAULT_JSON_DEPTH });
    if (parsed.ok) value = parsed.value;
  }
  return { status, ok: status >= 200 && status <= 299, headers, body: value };
}

/** A short, single-line excerpt of an answer for messages. */
export function bodyExcerpt(body: Buffer, max = EXCERPT_CHARS): string {
  const text = body.subarray(0, max * 4).toString("utf8");
  let flat = "";
  for (let i = 0; i < text.length && flat.length <= max; i++) {
    const c = text.charCodeAt(i);
    flat += c < 0x20 || c === 0x7f ? " " : text[i];
  }
  return capString(flat.trim(), max);
}
