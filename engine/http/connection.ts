/**
 * The seam between ctx.http and OAuth connections (the OAuth work plugs a provider in here).
 * ctx.http asks for the Authorization value of a connection before the first attempt, and once
 * more with `forceRefresh` after a 401; everything about tokens (storage, refresh, single flight,
 * categories of failure) stays behind this interface.
 */
import { BifrostError } from "../../common/errors.js";

export interface AuthHeaderOptions {
  /** The server refused the token just used (401): refresh it, even if it looks fresh. */
  forceRefresh: boolean;
  /** Aborted when the invocation ends. */
  signal: AbortSignal;
}

export interface ConnectionProvider {
  /**
   * The Authorization header value (e.g. "Bearer …") of `provider`'s connection for `org`, falling
   * back to the global connection. Throws a BifrostError with the failure's code, category and fix.
   * The value is a secret: ctx.http never logs it or hands it to the workflow.
   */
  authHeader(provider: string, org: string | null, options: AuthHeaderOptions): Promise<string>;
  /**
   * The API still refused the connection's token (401 after the refresh, or 403): the category
   * and fix to put in the workflow's error; the provider keeps it as the connection's last failure.
   */
  apiRefused?(provider: string, org: string | null, answer: { status: number; wwwAuthenticate?: string }): Promise<{ category: string; fix: string }>;
}

/** The provider of an engine without OAuth connections: every `connection` is unknown. */
export const NO_CONNECTIONS: ConnectionProvider = {
  async authHeader(provider) {
    throw new BifrostError("CONNECTION_NOT_FOUND", `ctx.http was called with connection "${provider}", but this engine was set up without OAuth connections`);
  },
};
