/** What of a URL may appear in a log line or an error: never credentials, never secret-looking query values. Pure. */

/** Query parameter names that usually carry a secret (matched as parts of the lower-cased name). */
const SECRET_PARTS = ["token", "secret", "key", "pass", "pwd", "auth", "sig", "session", "code", "credential", "cookie", "jwt", "bearer"];

const MAX_SHOWN = 300;

export function looksSecret(name: string): boolean {
  const lower = name.toLowerCase();
  return SECRET_PARTS.some((part) => lower.includes(part));
}

/** Origin, path and query of a URL with secret-looking values replaced, cut to a readable length. */
export function describeUrl(url: URL): string {
  let query = "";
  if (url.search !== "") {
    const parts: string[] = [];
    for (const [name, value] of url.searchParams) parts.push(`${encodeURIComponent(name)}=${looksSecret(name) ? "[REDACTED]" : encodeURIComponent(value)}`);
    query = `?${parts.join("&")}`;
  }
  const text = `${url.origin}${url.pathname}${query}`;
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text;
}
