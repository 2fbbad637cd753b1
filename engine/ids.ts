import { randomBytes } from "node:crypto";

/**
 * UUIDv7 run ids: time-ordered, so "newest first" and cursors are a plain ORDER BY id.
 * A 12-bit counter keeps ids from one process strictly increasing within a millisecond.
 */
let lastMs = 0;
let counter = 0;

export function uuidv7(now: number = Date.now()): string {
  let ms = Math.max(now, lastMs);
  if (ms === lastMs) {
    counter += 1;
    if (counter > 0xfff) {
      ms += 1;
      counter = 0;
    }
  } else {
    counter = randomBytes(1)[0]! & 0x7f;
  }
  lastMs = ms;
  const bytes = randomBytes(16);
  const hexMs = ms.toString(16).padStart(12, "0");
  for (let i = 0; i < 6; i++) bytes[i] = parseInt(hexMs.slice(i * 2, i * 2 + 2), 16);
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
