/**
 * The secrets one invocation handed to the guest (OAuth access tokens from ctx.oauth): the guest
 * may do anything with them, but whatever it hands back to be stored (log lines, step and run
 * results, errors and stacks) has them replaced first. Linear: one `includes` and `replaceAll`
 * per string and secret, over values the host has already bounded.
 */
export const REDACTED = "[redacted]";
/** Shorter strings are not worth hiding and would mangle ordinary text. */
const MIN_SECRET_LENGTH = 8;
const MAX_DEPTH = 64;

export class SecretRedactor {
  private readonly secrets = new Set<string>();

  add(secret: string): void {
    if (secret.length >= MIN_SECRET_LENGTH) this.secrets.add(secret);
  }

  /** The length of the longest secret (0 without any). */
  get longest(): number {
    let n = 0;
    for (const s of this.secrets) n = Math.max(n, s.length);
    return n;
  }

  text(value: string): string {
    let out = value;
    for (const s of this.secrets) if (out.includes(s)) out = out.replaceAll(s, REDACTED);
    return out;
  }

  /** A copy of a JSON-like value with every secret replaced, in keys and strings alike. */
  value<T>(value: T): T {
    return this.secrets.size === 0 ? value : (this.walk(value, 0) as T);
  }

  private walk(value: unknown, depth: number): unknown {
    if (typeof value === "string") return this.text(value);
    if (value === null || typeof value !== "object" || depth > MAX_DEPTH) return value;
    if (Array.isArray(value)) return value.map((v) => this.walk(v, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[this.text(k)] = this.walk(v, depth + 1);
    return out;
  }
}
