import { BifrostError, isBifrostError } from "../../common/errors.js";
import type { LogLevel } from "../../storage/types.js";
import type { AccessGrant } from "./connections.js";
import { PROVIDER_NAME } from "./providers.js";

/** What ctx.oauth needs of the connections: a fresh token for the run's org (its own, else global). */
export interface TokenSource {
  token(provider: string, org: string | null, options: { signal?: AbortSignal }): Promise<AccessGrant>;
}

/** What the guest receives; the prelude adds expiresIn, isExpired() and getAuthHeader(). */
export interface GuestConnection {
  provider: string;
  accessToken: string;
  tokenType: string;
  expiresAt: number;
  scopes: string[];
}

/**
 * The host side of ctx.oauth.getConnection for one invocation. The token it hands out is
 * remembered (`onSecret`) so that nothing the run stores can carry it; a failure is a line on the
 * run's log with its category and fix, and the error the workflow receives carries both.
 */
export class InvocationOAuth {
  constructor(
    private readonly deps: {
      tokens: TokenSource;
      org: string | null;
      signal: AbortSignal;
      log: (level: LogLevel, msg: string, data: Record<string, unknown>) => void;
      onSecret: (secret: string) => void;
    },
  ) {}

  async getConnection(args: Record<string, unknown>): Promise<GuestConnection> {
    const provider = args.provider;
    if (typeof provider !== "string" || !PROVIDER_NAME.test(provider)) {
      throw new BifrostError("VALIDATION_FAILED", "ctx.oauth.getConnection(provider): provider must be the name of an OAuth provider (letters, digits, '_', '.', '-'; at most 64)");
    }
    try {
      const grant = await this.deps.tokens.token(provider, this.deps.org, { signal: this.deps.signal });
      this.deps.onSecret(grant.accessToken);
      return { provider, accessToken: grant.accessToken, tokenType: grant.tokenType, expiresAt: grant.expiresAt, scopes: [...grant.scopes] };
    } catch (err) {
      if (isBifrostError(err) && err.category !== undefined) {
        this.deps.log("error", "oauth failure", { provider, org: this.deps.org, code: err.code, category: err.category, fix: err.fix });
      }
      throw err;
    }
  }
}
