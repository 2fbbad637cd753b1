import { describe, expect, it } from "vitest";
import { backoffCeiling, fullJitterDelay } from "../../engine/http/backoff.js";
import { loadConfig } from "../../engine/config.js";
import { loadHttpConfig } from "../../engine/http/config.js";
import { metadataAddressReason, metadataHostReason, parseIPv4, parseIPv6 } from "../../engine/http/metadata.js";
import { allowListProblem, hostLimitsFor } from "../../engine/http/policy.js";
import { describeUrl } from "../../engine/http/redact.js";
import { readRequestArgs } from "../../engine/http/request-args.js";
import { guestResponse, isJsonType } from "../../engine/http/response.js";
import { MAX_SERVER_WAIT_MS, parseHttpDate, parseSeconds, publishedBudget, serverWait } from "../../engine/http/retry-after.js";
import { retryVerdict } from "../../engine/http/retry-policy.js";

const NOW = Date.parse("2026-03-01T12:00:00Z");

describe("serverWait: when the server allows the next request", () => {
  it("reads Retry-After as delta seconds", () => {
    expect(serverWait({ "retry-after": "120" }, NOW)).toEqual({ at: NOW + 120_000, source: "retry-after", capped: false });
    expect(serverWait({ "retry-after": "0" }, NOW)?.at).toBe(NOW);
    expect(serverWait({ "retry-after": " 1.5 " }, NOW)?.at).toBe(NOW + 1_500);
  });

  it("reads Retry-After as an HTTP-date, in every form HTTP allows; a past date means now", () => {
    expect(serverWait({ "retry-after": "Sun, 01 Mar 2026 12:00:30 GMT" }, NOW)?.at).toBe(NOW + 30_000);
    expect(serverWait({ "retry-after": "Sunday, 01-Mar-26 12:00:30 GMT" }, NOW)?.at).toBe(NOW + 30_000);
    expect(serverWait({ "retry-after": "Sun Mar  1 12:00:30 2026" }, NOW)?.at).toBeGreaterThanOrEqual(NOW);
    expect(serverWait({ "retry-after": "Sat, 28 Feb 2026 12:00:00 GMT" }, NOW)).toEqual({ at: NOW, source: "retry-after", capped: false });
  });

  it("reads x-ratelimit-reset as a delta, epoch seconds or epoch ms", () => {
    expect(serverWait({ "x-ratelimit-reset": "7" }, NOW)).toEqual({ at: NOW + 7_000, source: "x-ratelimit-reset", capped: false });
    expect(serverWait({ "x-ratelimit-reset": String(NOW / 1000 + 60) }, NOW)?.at).toBe(NOW + 60_000);
    expect(serverWait({ "x-ratelimit-reset": String(NOW + 2_500) }, NOW)?.at).toBe(NOW + 2_500);
    expect(serverWait({ "ratelimit-reset": "3" }, NOW)).toEqual({ at: NOW + 3_000, source: "ratelimit-reset", capped: false });
  });

  it("prefers Retry-After, and falls back to the reset header when Retry-After is garbage", () => {
    expect(serverWait({ "retry-after": "5", "x-ratelimit-reset": "50" }, NOW)?.at).toBe(NOW + 5_000);
    expect(serverWait({ "retry-after": "soon", "x-ratelimit-reset": "50" }, NOW)?.at).toBe(NOW + 50_000);
  });

  it("ignores garbage and negative values, so the caller backs off instead", () => {
    for (const value of ["", "  ", "-5", "+5", "1e3", "0x10", "5s", "Infinity", "NaN", "1.", ".5", "1.2.3", "9".repeat(30), "Mon", "Funday, 01 Mar 2026 12:00:00 GMT", "Mon, 99 Foo 2026 99:99:99 GMT"]) {
      expect({ value, wait: serverWait({ "retry-after": value }, NOW) }).toEqual({ value, wait: undefined });
      expect({ value, wait: serverWait({ "x-ratelimit-reset": value }, NOW) }).toEqual({ value, wait: undefined });
    }
    expect(serverWait({}, NOW)).toBeUndefined();
    // Date.parse alone would read "1" as the year 2001.
    expect(parseHttpDate("1")).toBeUndefined();
    expect(parseSeconds("-1")).toBeUndefined();
  });

  it("caps far-future waits and says so", () => {
    expect(serverWait({ "retry-after": "999999999" }, NOW)).toEqual({ at: NOW + MAX_SERVER_WAIT_MS, source: "retry-after", capped: true });
    expect(serverWait({ "retry-after": "Fri, 01 Mar 2126 12:00:00 GMT" }, NOW)?.capped).toBe(true);
    expect(serverWait({ "x-ratelimit-reset": String(NOW / 1000 + 10 * 365 * 86_400) }, NOW)?.capped).toBe(true);
  });

  it("reads a published budget only when both its remaining count and its reset are there", () => {
    expect(publishedBudget({ "x-ratelimit-remaining": "7", "x-ratelimit-reset": "1" }, NOW)).toEqual({ remaining: 7, resetAt: NOW + 1_000 });
    expect(publishedBudget({ "ratelimit-remaining": "0", "ratelimit-reset": "30" }, NOW)).toEqual({ remaining: 0, resetAt: NOW + 30_000 });
    expect(publishedBudget({ "x-ratelimit-remaining": "7" }, NOW)).toBeUndefined();
    expect(publishedBudget({ "x-ratelimit-remaining": "lots", "x-ratelimit-reset": "1" }, NOW)).toBeUndefined();
    expect(publishedBudget({ "x-ratelimit-remaining": "1.5", "x-ratelimit-reset": "1" }, NOW)).toBeUndefined();
  });
});

describe("full-jitter backoff", () => {
  const options = { baseMs: 500, capMs: 8_000 };

  it("doubles its ceiling per retry up to the cap", () => {
    expect([1, 2, 3, 4, 5, 6, 50, 5000].map((r) => backoffCeiling(r, options))).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000, 8000]);
    expect(backoffCeiling(0, options)).toBe(500);
  });

  it("draws uniformly between the minimum and the ceiling", () => {
    expect(fullJitterDelay(3, options, () => 0)).toBe(0);
    expect(fullJitterDelay(3, options, () => 0.999999)).toBe(1999);
    expect(fullJitterDelay(3, options, () => 0.5)).toBe(1000);
    expect(fullJitterDelay(3, { ...options, minMs: 250 }, () => 0)).toBe(250);
    expect(fullJitterDelay(3, { ...options, minMs: 250 }, () => 0.5)).toBe(1125);
    // A minimum above the ceiling is the ceiling.
    expect(fullJitterDelay(1, { baseMs: 100, capMs: 100, minMs: 500 }, () => 0.3)).toBe(100);
  });

  it("stays within its bounds for every draw, and survives a broken random source", () => {
    for (let retry = 1; retry <= 12; retry++) {
      const ceiling = backoffCeiling(retry, options);
      for (let i = 0; i < 200; i++) {
        const d = fullJitterDelay(retry, options);
        expect(d >= 0 && d <= ceiling).toBe(true);
      }
    }
    for (const bad of [Number.NaN, -1, 1, 7, Infinity]) expect(fullJitterDelay(2, options, () => bad)).toBe(500);
  });
});

describe("the retry decision table", () => {
  it("retries 429 and 503 for every method, as rate limits", () => {
    for (const method of ["GET", "POST", "PATCH"] as const) {
      expect(retryVerdict(method, { kind: "status", status: 429 }, false)).toMatchObject({ retry: true, rateLimited: true });
      expect(retryVerdict(method, { kind: "status", status: 503 }, false)).toMatchObject({ retry: true, rateLimited: true });
    }
  });

  it("retries other 5xx and network errors only when repeating is safe", () => {
    for (const status of [500, 502, 504, 408]) {
      for (const method of ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"] as const) expect(retryVerdict(method, { kind: "status", status }, false)).toMatchObject({ retry: true, rateLimited: false });
      expect(retryVerdict("POST", { kind: "status", status }, false)).toMatchObject({ retry: false, reason: expect.stringContaining("idempotencyKey") });
      expect(retryVerdict("PATCH", { kind: "status", status }, false).retry).toBe(false);
      expect(retryVerdict("POST", { kind: "status", status }, true)).toMatchObject({ retry: true });
    }
    expect(retryVerdict("POST", { kind: "network", code: "ECONNRESET", phase: "exchange" }, false).retry).toBe(false);
    expect(retryVerdict("POST", { kind: "network", code: "ECONNRESET", phase: "exchange" }, true).retry).toBe(true);
    expect(retryVerdict("GET", { kind: "network", code: "TIMEOUT", phase: "exchange" }, false).retry).toBe(true);
  });

  it("retries a connection that never reached the server for any method, but not a name that does not resolve", () => {
    expect(retryVerdict("POST", { kind: "network", code: "ECONNREFUSED", phase: "connect" }, false).retry).toBe(true);
    expect(retryVerdict("GET", { kind: "network", code: "ENOTFOUND", phase: "connect" }, false).retry).toBe(false);
  });

  it("never retries answers another try will not change", () => {
    for (const status of [200, 201, 204, 301, 400, 401, 403, 404, 409, 422, 501, 505]) expect({ status, retry: retryVerdict("GET", { kind: "status", status }, true).retry }).toEqual({ status, retry: false });
  });
});

describe("metadata addresses", () => {
  it("reads IPv4 in every inet_aton form", () => {
    for (const form of ["169.254.169.254", "0xa9fea9fe", "0xA9.0xFE.0xA9.0xFE", "2852039166", "0251.0376.0251.0376", "169.254.43518", "169.16689662"]) expect({ form, bytes: parseIPv4(form) }).toEqual({ form, bytes: [169, 254, 169, 254] });
    for (const bad of ["169.254.169.256", "1.2.3.4.5", "0x", "abc", "1..2", "4294967296", "08.1.1.1"]) expect({ bad, bytes: parseIPv4(bad) }).toEqual({ bad, bytes: bad === "0x" ? [0, 0, 0, 0] : undefined });
  });

  it("reads IPv6 with compression, zones, brackets and dotted tails", () => {
    expect(parseIPv6("fd00:ec2::254")).toEqual([0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54]);
    expect(parseIPv6("[::ffff:169.254.169.254]")?.slice(10)).toEqual([0xff, 0xff, 169, 254, 169, 254]);
    expect(parseIPv6("fe80::1%eth0")?.slice(0, 2)).toEqual([0xfe, 0x80]);
    expect(parseIPv6("1:2:3:4:5:6:7:8")).toHaveLength(16);
    for (const bad of ["1:2:3", "1::2::3", "::g", "1:2:3:4:5:6:7:8:9", "::1.2.3", "12345::"]) expect({ bad, v6: parseIPv6(bad) }).toEqual({ bad, v6: undefined });
  });

  it("refuses the metadata addresses of every cloud, in every spelling", () => {
    for (const host of [
      "169.254.169.254",
      "169.254.170.2",
      "0xa9fea9fe",
      "2852039166",
      "0251.0376.0251.0376",
      "[fd00:ec2::254]",
      "fd00:ec2::254",
      "[::ffff:169.254.169.254]",
      "::ffff:a9fe:a9fe",
      "::169.254.169.254",
      "64:ff9b::a9fe:a9fe",
      "2002:a9fe:a9fe::1",
      "fe80::1",
      "100.100.100.200",
      "192.0.0.192",
      "metadata.google.internal",
      "METADATA.GOOGLE.INTERNAL.",
      "metadata",
      "metadata.goog",
      "instance-data.ec2.internal",
    ]) {
      expect({ host, refused: metadataHostReason(host) !== undefined }).toEqual({ host, refused: true });
    }
  });

  it("lets ordinary hosts and addresses through", () => {
    for (const host of ["127.0.0.1", "10.0.0.5", "192.168.1.10", "8.8.8.8", "::1", "[2001:db8::1]", "api.example.com", "metadata.example.com", "google.internal", "169.255.0.1", "localhost"]) {
      expect({ host, reason: metadataHostReason(host) }).toEqual({ host, reason: undefined });
    }
    expect(metadataAddressReason("93.184.216.34")).toBeUndefined();
  });
});

describe("HTTP configuration", () => {
  it("has defaults", () => {
    expect(loadHttpConfig({})).toEqual({ timeoutMs: 30_000, maxRequestBytes: 2 * 1024 * 1024, maxResponseBytes: 5 * 1024 * 1024, hostLimits: [], allowLists: [] });
  });

  it("reads per-host limits and allow-lists, and matches them", () => {
    const config = loadHttpConfig({
      BIFROST_HTTP_HOST_LIMITS: JSON.stringify({ "halo.example.com": { concurrency: 4, rps: 10 }, "*.example.com": { rps: 2 } }),
      BIFROST_HTTP_ALLOWED_HOSTS: JSON.stringify({ "*": ["*.example.com", "127.0.0.1"], "workflow:sync": ["halo.example.com"], "org:acme": ["halo.example.com:443", "*"] }),
    });
    expect(hostLimitsFor(config.hostLimits, new URL("https://halo.example.com/x"))).toMatchObject({ concurrency: 4, rps: 10 });
    expect(hostLimitsFor(config.hostLimits, new URL("https://graph.example.com/x"))).toMatchObject({ rps: 2 });
    expect(hostLimitsFor(config.hostLimits, new URL("https://example.com/x"))).toBeUndefined();
    const any = { workflow: "other", org: null };
    expect(allowListProblem(config.allowLists, any, new URL("https://api.example.com/"))).toBeUndefined();
    expect(allowListProblem(config.allowLists, any, new URL("http://127.0.0.1:8080/"))).toBeUndefined();
    expect(allowListProblem(config.allowLists, any, new URL("https://evil.test/"))).toContain('allow-list "*"');
    // Every list that applies restricts: the workflow's list narrows the global one.
    expect(allowListProblem(config.allowLists, { workflow: "sync", org: null }, new URL("https://graph.example.com/"))).toContain('"workflow:sync"');
    expect(allowListProblem(config.allowLists, { workflow: "sync", org: "acme" }, new URL("https://halo.example.com/"))).toBeUndefined();
  });

  it("is part of the engine configuration", () => {
    const env = { BIFROST_HTTP_TIMEOUT_MS: "5000", BIFROST_HTTP_HOST_LIMITS: '{"halo.example.com":{"rps":10}}' };
    expect(loadConfig(env).http).toEqual(loadHttpConfig(env));
    expect(loadConfig(env).http.timeoutMs).toBe(5000);
    expect(() => loadConfig({ BIFROST_HTTP_TIMEOUT_MS: "soon" })).toThrow(expect.objectContaining({ code: "CONFIG_INVALID", message: expect.stringContaining("BIFROST_HTTP_TIMEOUT_MS") }));
  });

  it("refuses invalid settings with the variable's name", () => {
    for (const [name, value] of [
      ["BIFROST_HTTP_TIMEOUT_MS", "0"],
      ["BIFROST_HTTP_MAX_RESPONSE_BYTES", "lots"],
      ["BIFROST_HTTP_MAX_REQUEST_BYTES", String(64 * 1024 * 1024)],
      ["BIFROST_HTTP_HOST_LIMITS", "[1]"],
      ["BIFROST_HTTP_HOST_LIMITS", '{"a.com":{"rps":0}}'],
      ["BIFROST_HTTP_HOST_LIMITS", '{"a.com":{"burst":1}}'],
      ["BIFROST_HTTP_HOST_LIMITS", '{"bad host!":{"rps":1}}'],
      ["BIFROST_HTTP_ALLOWED_HOSTS", '{"team:x":["a.com"]}'],
      ["BIFROST_HTTP_ALLOWED_HOSTS", '{"*":"a.com"}'],
      ["BIFROST_HTTP_ALLOWED_HOSTS", "not json"],
    ] as const) {
      expect(() => loadHttpConfig({ [name]: value })).toThrow(expect.objectContaining({ code: "CONFIG_INVALID", message: expect.stringContaining(name) }));
    }
  });
});

describe("the guest's ctx.http arguments", () => {
  const limits = { maxRequestBytes: 1024 };
  const read = (method: unknown, url: unknown, options?: unknown) => readRequestArgs({ method, url, options }, limits);

  it("reads a full call", () => {
    const spec = read("post", "https://api.example.com/items#frag", {
      headers: { "X-Trace": "a", Accept: "application/json" },
      query: { page: 2, tag: ["a", "b"], skip: null },
      json: { name: "Ada" },
      timeout: "5s",
      retry: { attempts: 3, maxWait: "1m" },
      throwOnError: false,
      idempotencyKey: "order-17",
    });
    expect(spec.method).toBe("POST");
    expect(spec.url.href).toBe("https://api.example.com/items?page=2&tag=a&tag=b");
    expect(spec.headers).toEqual({ "x-trace": "a", accept: "application/json", "content-type": "application/json", "idempotency-key": "order-17" });
    expect(spec.body?.toString()).toBe('{"name":"Ada"}');
    expect([spec.timeoutMs, spec.retry, spec.throwOnError, spec.idempotencyKey]).toEqual([5_000, { attempts: 3, maxWaitMs: 60_000 }, false, "order-17"]);
    expect(read("GET", "http://x.test/", { retry: false }).retry.attempts).toBe(1);
    expect(read("GET", "http://x.test/").retry).toEqual({ attempts: 5, maxWaitMs: 300_000 });
  });

  it("refuses what it cannot send safely, naming the option", () => {
    const cases: Array<[unknown, unknown, unknown, RegExp]> = [
      ["BREW", "https://a.test/", undefined, /method "BREW"/],
      [1, "https://a.test/", undefined, /method must be a string/],
      ["GET", "/relative", undefined, /not an absolute URL/],
      ["GET", "ftp://a.test/", undefined, /only http/],
      ["GET", "https://user:pw@a.test/", undefined, /credentials in the URL/],
      ["GET", `https://a.test/${"x".repeat(9000)}`, undefined, /limit is 8192/],
      ["GET", "https://a.test/", { header: {} }, /unknown option "header"/],
      ["GET", "https://a.test/", { headers: { "bad name": "x" } }, /not a valid HTTP header name/],
      ["GET", "https://a.test/", { headers: { "x-a": "1\r\nx-b: 2" } }, /line break/],
      ["GET", "https://a.test/", { headers: { host: "b.test" } }, /set by the engine/],
      ["GET", "https://a.test/", { headers: { "x-a": { o: 1 } } }, /must be a string/],
      ["GET", "https://a.test/", { query: { a: { b: 1 } } }, /query.a must be/],
      ["GET", "https://a.test/", { json: {} }, /GET request cannot carry a body/],
      ["POST", "https://a.test/", { json: {}, body: "x" }, /either json or body/],
      ["POST", "https://a.test/", { body: 5 }, /body must be a string/],
      ["GET", "https://a.test/", { timeout: "forever" }, /timeout must be/],
      ["GET", "https://a.test/", { timeout: "11m" }, /timeout must be/],
      ["GET", "https://a.test/", { retry: { attempts: 0 } }, /retry.attempts/],
      ["GET", "https://a.test/", { retry: { attempts: 11 } }, /retry.attempts/],
      ["GET", "https://a.test/", { retry: { maxWait: "2h" } }, /retry.maxWait/],
      ["GET", "https://a.test/", { retry: { tries: 2 } }, /retry has no option "tries"/],
      ["GET", "https://a.test/", { idempotencyKey: "has space" }, /idempotencyKey/],
      ["GET", "https://a.test/", { connection: "../etc" }, /connection must be/],
      ["GET", "https://a.test/", { connection: "HaloPSA", headers: { authorization: "Bearer x" } }, /either connection or an Authorization/],
      ["GET", "https://a.test/", { throwOnError: "no" }, /throwOnError/],
    ];
    for (const [method, url, options, message] of cases) {
      expect(() => read(method, url, options)).toThrow(expect.objectContaining({ code: "HTTP_REQUEST_INVALID", message: expect.stringMatching(message) }));
    }
  });

  it("refuses bodies over the limit with HTTP_BODY_TOO_LARGE, in bytes", () => {
    expect(() => read("POST", "https://a.test/", { body: "x".repeat(1025) })).toThrow(expect.objectContaining({ code: "HTTP_BODY_TOO_LARGE" }));
    // 400 three-byte characters are 1200 bytes.
    expect(() => read("POST", "https://a.test/", { body: "€".repeat(400) })).toThrow(expect.objectContaining({ code: "HTTP_BODY_TOO_LARGE", details: expect.objectContaining({ bytes: 1200 }) }));
    expect(() => read("POST", "https://a.test/", { json: { a: "x".repeat(2000) } })).toThrow(expect.objectContaining({ code: "HTTP_BODY_TOO_LARGE" }));
    expect(read("POST", "https://a.test/", { body: "x".repeat(1024) }).body).toHaveLength(1024);
  });

  it("treats an Idempotency-Key header as the key", () => {
    expect(read("POST", "https://a.test/", { headers: { "Idempotency-Key": "k1" } }).idempotencyKey).toBe("k1");
    expect(() => read("POST", "https://a.test/", { headers: { "Idempotency-Key": "k1" }, idempotencyKey: "k2" })).toThrow(/differ/);
  });
});

describe("what logs and the workflow see", () => {
  it("redacts secret-looking query values", () => {
    expect(describeUrl(new URL("https://a.test/p?api_key=s3cr3t&page=2&access_token=t&sig=x"))).toBe("https://a.test/p?api_key=[REDACTED]&page=2&access_token=[REDACTED]&sig=[REDACTED]");
  });

  it("parses JSON answers and leaves the rest text", () => {
    expect(isJsonType("application/json; charset=utf-8")).toBe(true);
    expect(isJsonType("application/problem+json")).toBe(true);
    expect(isJsonType("text/html")).toBe(false);
    expect(guestResponse(200, { "content-type": "application/json" }, Buffer.from('{"a":[1]}')).body).toEqual({ a: [1] });
    expect(guestResponse(200, { "content-type": "application/json" }, Buffer.from("{broken")).body).toBe("{broken");
    expect(guestResponse(200, { "content-type": "application/json" }, Buffer.from("[".repeat(100) + "]".repeat(100))).body).toBe("[".repeat(100) + "]".repeat(100));
    expect(guestResponse(204, {}, Buffer.alloc(0))).toEqual({ status: 204, ok: true, headers: {}, body: "" });
    expect(guestResponse(404, { "content-type": "text/plain" }, Buffer.from("nope")).ok).toBe(false);
  });
});
