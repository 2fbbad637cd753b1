import type { FastifyInstance, RouteOptions } from "fastify";

/**
 * Every route the app serves, collected as it is added (an onRoute hook), so that what needs the
 * whole list — 405 answers, the OpenAPI coverage test, the malformed-request sweep — sees a new
 * route without being told about it.
 */
export interface RouteEntry {
  method: string;
  url: string;
  route: RouteOptions;
}

export class RouteTable {
  private readonly entries: RouteEntry[] = [];

  add(route: RouteOptions): void {
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) this.entries.push({ method: method.toUpperCase(), url: route.url, route });
  }

  list(): readonly RouteEntry[] {
    return this.entries;
  }

  /** The methods some route serves at this concrete path (sorted), or [] when no route has the path. */
  methodsFor(path: string): string[] {
    const methods = new Set(this.entries.filter((e) => pathMatches(e.url, path)).map((e) => e.method));
    return [...methods].sort();
  }
}

/**
 * Whether a concrete path is one a route pattern serves: `:param` matches one non-empty segment,
 * a trailing `*` the rest. Pure; the patterns are the app's own, never a client's.
 */
export function pathMatches(pattern: string, path: string): boolean {
  const want = pattern.split("/");
  const got = path.split("/");
  for (let i = 0; i < want.length; i++) {
    const segment = want[i]!;
    if (segment === "*" && i === want.length - 1) return true;
    const actual = got[i];
    if (actual === undefined) return false;
    if (segment.startsWith(":")) {
      if (actual === "") return false;
    } else if (segment !== actual) return false;
  }
  return got.length === want.length;
}

declare module "fastify" {
  interface FastifyInstance {
    /** Every route of the app (engine/api/route-table.ts). */
    routeTable: RouteTable;
  }
}

/** Call before any route is added. */
export function installRouteTable(app: FastifyInstance): RouteTable {
  const table = new RouteTable();
  app.decorate("routeTable", table);
  app.addHook("onRoute", (route) => table.add(route));
  return table;
}
