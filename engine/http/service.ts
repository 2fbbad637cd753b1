/** What every run of one engine shares for ctx.http: configuration, the host gates, the HTTP agent, the connection provider. */
import { HttpClient, systemResolve, type Resolve } from "./client.js";
import type { HttpConfig } from "./config.js";
import { NO_CONNECTIONS, type ConnectionProvider } from "./connection.js";
import { HostGates } from "./gate.js";

export interface HttpServiceOptions {
  /** Host name resolution (tests map names to addresses without real DNS). */
  resolve?: Resolve;
  /** OAuth connections for `connection:`; without one, every connection is CONNECTION_NOT_FOUND. */
  connections?: ConnectionProvider;
  /** Jitter source (tests pin it). */
  random?: () => number;
}

export class HttpService {
  readonly gates: HostGates;
  readonly client: HttpClient;
  readonly connections: ConnectionProvider;
  readonly random: () => number;

  constructor(
    readonly config: HttpConfig,
    options: HttpServiceOptions = {},
    readonly now: () => number = Date.now,
  ) {
    this.gates = new HostGates(now);
    this.client = new HttpClient(options.resolve ?? systemResolve);
    this.connections = options.connections ?? NO_CONNECTIONS;
    this.random = options.random ?? Math.random;
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
