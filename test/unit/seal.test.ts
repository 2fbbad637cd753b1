import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { keyFingerprint, open, parseKeyText, seal, SealError } from "../../engine/secrets/seal.js";

const key = randomBytes(32);

/** Flips one bit of the decoded part `index` (1 IV, 2 tag, 3 ciphertext) of a sealed value. */
function flipBit(sealed: string, index: number): string {
  const parts = sealed.split(".");
  const bytes = Buffer.from(parts[index]!, "base64url");
  bytes[0] = bytes[0]! ^ 0x01;
  parts[index] = bytes.toString("base64url");
  return parts.join(".");
}

describe("seal and open (AES-256-GCM)", () => {
  it("round-trips text and never produces the same sealed value twice", () => {
    const a = seal(key, "whsec_secret ✓", "webhook:hello");
    const b = seal(key, "whsec_secret ✓", "webhook:hello");
    expect(a).not.toBe(b);
    expect(a).not.toContain("whsec_secret");
    expect(a.split(".")).toHaveLength(4);
    expect(Buffer.from(a.split(".")[1]!, "base64url")).toHaveLength(12);
    expect(open(key, a, "webhook:hello")).toBe("whsec_secret ✓");
    expect(open(key, b, "webhook:hello")).toBe("whsec_secret ✓");
  });

  it("detects tampering with the IV, the tag or the ciphertext", () => {
    const sealed = seal(key, "the secret", "webhook:hello");
    for (const index of [1, 2, 3]) expect(() => open(key, flipBit(sealed, index), "webhook:hello")).toThrow(SealError);
    // A truncated ciphertext, or one with a byte appended, fails too.
    const parts = sealed.split(".");
    expect(() => open(key, [...parts.slice(0, 3), Buffer.from("the secre").toString("base64url")].join("."), "webhook:hello")).toThrow(SealError);
  });

  it("refuses a value moved to another context, or opened with another key", () => {
    const sealed = seal(key, "the secret", "webhook:hello");
    expect(() => open(key, sealed, "webhook:other")).toThrow(/authentication check/);
    expect(() => open(randomBytes(32), sealed, "webhook:hello")).toThrow(/authentication check/);
  });

  it("refuses garbled values with a reason instead of returning garbage", () => {
    for (const bad of ["", "v1", "v2.a.b.c", "v1.!!!.b.c", `v1.${Buffer.alloc(11).toString("base64url")}.${Buffer.alloc(16).toString("base64url")}.AA`, `v1.${Buffer.alloc(12).toString("base64url")}.${Buffer.alloc(15).toString("base64url")}.AA`]) {
      expect(() => open(key, bad, "c")).toThrow(SealError);
    }
  });

  it("reads keys as 64 hex digits or base64 of 32 bytes, and nothing else", () => {
    const hex = key.toString("hex");
    expect(parseKeyText(hex)).toEqual(key);
    expect(parseKeyText(`${key.toString("base64")}\n`)).toEqual(key);
    expect(parseKeyText(key.toString("base64url"))).toEqual(key);
    for (const bad of ["", hex.slice(2), `${hex}00`, randomBytes(31).toString("base64"), randomBytes(33).toString("base64"), "not a key at all, not a key at all, not a k"]) {
      expect(parseKeyText(bad)).toBeUndefined();
    }
  });

  it("fingerprints a key without revealing it", () => {
    const fingerprint = keyFingerprint(key);
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprint).toBe(keyFingerprint(Buffer.from(key)));
    expect(fingerprint).not.toBe(keyFingerprint(randomBytes(32)));
    expect(fingerprint).not.toContain(key.toString("hex"));
  });
});
