/**
 * The doctor's reachability probe: one GET to an OAuth endpoint, to learn whether it answers and
 * how fast. Any status is an answer (a token endpoint answers GET with 400 or 405); redirects are
 * not followed and the body is thrown away unread. Never throws.
 */
import { request, type Dispatcher } from "undici";
import { metadataHostReason } from "../http/metadata.js";
import { findNetwork } from "./describe-error.js";
import { cleanText } from "./text.js";

export type ProbeResult = { reached: true; status: number; ms: number } | { reached: false; ms: number; code: string | null; message: string };

export const DEFAULT_PROBE_TIMEOUT_MS = 5_000;

export async function probeUrl(url: string, opts: { timeoutMs?: number; dispatcher?: Dispatcher } = {}): Promise<ProbeResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return { reached: false, ms: elapsed(), code: "ERR_INVALID_URL", message: "not a valid URL" };
  }
  if (target.protocol !== "https:" && target.protocol !== "http:") return { reached: false, ms: elapsed(), code: "ERR_INVALID_URL", message: `only http and https URLs can be probed, not ${cleanText(target.protocol, 20)}` };
  // The same refusal as ctx.http: an admin's URL must not make the engine call its cloud's metadata service.
  const forbidden = metadataHostReason(target.hostname);
  if (forbidden) return { reached: false, ms: elapsed(), code: "HOST_FORBIDDEN", message: `the host is ${forbidden}` };

  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  try {
    const res = await request(target, {
      method: "GET",
      headers: { accept: "application/json", "user-agent": "bifrost-oauth-doctor" },
      signal: timeout.signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    });
    const ms = elapsed();
    // Destroying an unread body emits an error nobody else listens for.
    res.body.on("error", () => {});
    res.body.destroy();
    return { reached: true, status: res.statusCode, ms };
  } catch (err) {
    if (timeout.signal.aborted) return { reached: false, ms: elapsed(), code: "ETIMEDOUT", message: `no answer within ${timeoutMs} ms` };
    const network = findNetwork(err);
    const message = network?.message || cleanText((err as { message?: unknown } | null)?.message, 200) || "the request failed";
    return { reached: false, ms: elapsed(), code: network?.code ?? null, message };
  } finally {
    clearTimeout(timer);
  }
}
