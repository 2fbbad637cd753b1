/**
 * Host patterns of the HTTP configuration (allow-lists, per-host limits): "api.example.com",
 * "*.example.com" (its subdomains), either with ":port", IPv4 literals and "[v6]" literals. Pure.
 */

export interface HostPattern {
  /** Lower case, no trailing dot; for "*.example.com", "example.com". */
  host: string;
  wildcard: boolean;
  port: number | undefined;
  /** As written in the configuration, for messages. */
  text: string;
}

const LABEL = /^[a-z0-9-]{1,63}$/;
const V6 = /^\[[0-9a-f:.]+\]$/;

function isHostName(host: string): boolean {
  return host.split(".").every((label) => LABEL.test(label) && !label.startsWith("-") && !label.endsWith("-"));
}

/** A pattern, or why it is not one. */
export function parseHostPattern(input: string): HostPattern | string {
  const text = input.trim().toLowerCase();
  if (text.length === 0 || text.length > 260) return "a host pattern must be 1 to 260 characters";
  let host = text;
  let port: number | undefined;
  const colon = text.lastIndexOf(":");
  if (colon !== -1 && (!text.startsWith("[") || text.lastIndexOf("]") < colon)) {
    const digits = text.slice(colon + 1);
    port = /^[0-9]{1,5}$/.test(digits) ? Number(digits) : Number.NaN;
    if (!(port! >= 1 && port! <= 65535)) return `"${input}" has an invalid port`;
    host = text.slice(0, colon);
  }
  const wildcard = host.startsWith("*.");
  if (wildcard) host = host.slice(2);
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (!(isHostName(host) || (!wildcard && V6.test(host)))) return `"${input}" is not a host name, "*.domain" or an address`;
  return { host, wildcard, port, text: input.trim() };
}

/** Whether a request's host (as URL.hostname gives it) and effective port match the pattern. */
export function matchesHost(pattern: HostPattern, hostname: string, port: number): boolean {
  if (pattern.port !== undefined && pattern.port !== port) return false;
  let host = hostname.toLowerCase();
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (!pattern.wildcard) return host === pattern.host;
  return host.length > pattern.host.length + 1 && host.endsWith(`.${pattern.host}`);
}

/** The port a URL connects to. */
export function effectivePort(url: URL): number {
  if (url.port !== "") return Number(url.port);
  return url.protocol === "https:" ? 443 : 80;
}
