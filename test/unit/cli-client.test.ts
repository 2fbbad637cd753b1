import { describe, expect, it } from "vitest";
import { BifrostError, hintFor } from "../../common/errors.js";
import { ApiClient, clientSettings } from "../../engine/cli/client.js";
import { SseParser } from "../../engine/cli/sse.js";

const settings = { url: "http://bifrost.test", apiKey: "bfk_test" };

/** A client whose fetch answers `status` with `body` (a string is sent as it is). */
function answering(status: number, body: unknown, headers: Record<string, string> = { "content-type": "application/json" }) {
  const calls: { url: string; init: RequestInit | undefined }[] = [];
  const fetchFn = (async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), init });
    return new Response(typeof body === "string" ? body : JSON.stringify(body), { status, headers });
  }) as typeof fetch;
  return { client: new ApiClient(settings, fetchFn), calls };
}

async function thrown(promise: Promise<unknown>): Promise<BifrostError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BifrostError);
  return err as BifrostError;
}

describe("server-sent events parser", () => {
  it("splits events across chunks, CRLF split in two, comments, multi-line data and a carried id", () => {
    const parser = new SseParser();
    const events = [
      ...parser.feed(": hello\r"),
      ...parser.feed("\nid: 1\nevent: log\ndata: {\"a\":"),
      ...parser.feed("1}\r\n\r"),
      ...parser.feed("\n"),
      ...parser.feed("data: one\ndata: two\n\n"),
      ...parser.feed("event: end\ndata:{}\n"),
    ];
    expect(events).toEqual([
      { event: "log", data: '{"a":1}', id: "1" },
      { event: "message", data: "one\ntwo", id: "1" },
    ]);
    expect(parser.feed("\n")).toEqual([{ event: "end", data: "{}", id: "1" }]);
  });

  it("refuses a line that never ends past its bound", () => {
    const parser = new SseParser(100);
    expect(() => parser.feed("data: " + "x".repeat(200))).toThrow(/longer than 100/);
  });
});

describe("client settings", () => {
  it("is embedded without BIFROST_URL, and needs a key and an http(s) address with it", () => {
    expect(clientSettings({})).toBeUndefined();
    expect(clientSettings({ BIFROST_API_KEY: "k" })).toBeUndefined();
    expect(clientSettings({ BIFROST_URL: "http://127.0.0.1:7071/", BIFROST_API_KEY: " k " })).toEqual({ url: "http://127.0.0.1:7071", apiKey: "k" });
    expect(clientSettings({ BIFROST_URL: "https://ops.example.com/bifrost", BIFROST_API_KEY: "k" })?.url).toBe("https://ops.example.com/bifrost");
    for (const env of [{ BIFROST_URL: "http://x" }, { BIFROST_URL: "ftp://x", BIFROST_API_KEY: "k" }, { BIFROST_URL: "127.0.0.1:7071", BIFROST_API_KEY: "k" }, { BIFROST_URL: "http://x", BIFROST_API_KEY: "two words" }]) {
      expect(() => clientSettings(env)).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
    }
  });
});

describe("API client errors", () => {
  it("sends the key as a bearer token and the query in the URL", async () => {
    const { client, calls } = answering(200, { items: [] });
    expect(await client.get("/api/runs", { limit: 5, status: undefined })).toEqual({ items: [] });
    expect(calls[0]!.url).toBe("http://bifrost.test/api/runs?limit=5");
    expect(new Headers(calls[0]!.init?.headers).get("authorization")).toBe("Bearer bfk_test");
  });

  it("shows the CLI hint in place of the registry's HTTP hint, and keeps a route's own fix", async () => {
    const http = answering(400, { error: { code: "INVALID_PARAMS", message: "bad", fix: hintFor("INVALID_PARAMS", "http"), details: { problems: [] } } });
    const err = await thrown(http.client.get("/x"));
    expect([err.code, err.message, err.fixFor("cli"), err.details]).toEqual(["INVALID_PARAMS", "bad", hintFor("INVALID_PARAMS", "cli"), { problems: [] }]);

    const own = answering(404, { error: { code: "WORKFLOW_NOT_FOUND", message: "gone", fix: "Fix the module at the reported file and line." } });
    expect((await thrown(own.client.get("/x"))).fixFor("cli")).toBe("Fix the module at the reported file and line.");
  });

  it("says what is wrong when the address is not a Bifrost server, or nothing answers", async () => {
    expect((await thrown(answering(200, "<html>", { "content-type": "text/html" }).client.get("/x"))).code).toBe("SERVER_REPLY_INVALID");
    expect((await thrown(answering(404, { message: "Not Found" }).client.get("/x"))).code).toBe("SERVER_REPLY_INVALID");
    const unknown = await thrown(answering(418, { error: { code: "TEAPOT", message: "short and stout" } }).client.get("/x"));
    expect([unknown.code, unknown.message]).toEqual(["SERVER_REPLY_INVALID", expect.stringContaining("TEAPOT")]);
    const route = await thrown(answering(404, { error: { code: "ROUTE_NOT_FOUND", message: "No route GET /x", fix: hintFor("ROUTE_NOT_FOUND", "http") } }).client.get("/x"));
    expect(route.fixFor("cli")).toMatch(/BIFROST_URL/);

    const refused = new ApiClient(settings, (async () => {
      throw new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }) });
    }) as typeof fetch);
    const err = await thrown(refused.get("/x"));
    expect([err.code, err.message]).toEqual(["SERVER_UNREACHABLE", expect.stringContaining("ECONNREFUSED")]);
  });
});
