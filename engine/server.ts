import type { FastifyInstance } from "fastify";
import { buildApp } from "./api/app.js";
import type { EngineConfig } from "./config.js";
import { Engine, type EngineDeps } from "./engine.js";

export interface RunningServer {
  engine: Engine;
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

/** Opens the engine, starts running workflows and listens for HTTP. */
export async function startServer(config: EngineConfig, deps: EngineDeps = {}): Promise<RunningServer> {
  const engine = await Engine.open(config, deps);
  const app = await buildApp({ engine });
  try {
    engine.start();
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await app.close().catch(() => {});
    await engine.stop(0);
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  let closing: Promise<void> | undefined;
  return {
    engine,
    app,
    url: `http://${host}:${port}`,
    close() {
      // Stop accepting requests, then drain runs (their leases are released if the grace ends).
      closing ??= app.close().then(() => engine.stop());
      return closing;
    },
  };
}
