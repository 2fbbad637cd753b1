import { pino, type Logger, type DestinationStream } from "pino";

export type { Logger };

/**
 * Paths pino censors in every engine log line. Run data, request headers and OAuth material may
 * carry credentials; child loggers must not pass their own `redact` (it would replace this list).
 */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "headers.authorization",
  "*.headers.authorization",
  "accessToken",
  "refreshToken",
  "clientSecret",
  "access_token",
  "refresh_token",
  "client_secret",
  "*.accessToken",
  "*.refreshToken",
  "*.clientSecret",
  "*.access_token",
  "*.refresh_token",
  "*.client_secret",
  "*.password",
  "*.secret",
];

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { service: "bifrost" },
      redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
