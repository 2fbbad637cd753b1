/**
 * Cloud metadata services answer with instance credentials to anything on the machine that asks.
 * A workflow must never reach one: not by address, not by a name that resolves to one, not through
 * a redirect. Pure: the checks take the host name or the resolved address.
 */

/** Names that resolve to a metadata service inside a cloud (lower case, no trailing dot). */
const METADATA_NAMES = new Set(["metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal", "metadata.azure.internal", "metadata.tencentyun.com"]);

/** Longest host text we look at; a host name is at most 253 characters. */
const MAX_HOST_CHARS = 300;

/** One part of an IPv4 address as inet_aton reads it: decimal, octal (leading 0) or hex (0x). */
function ipv4Part(text: string): number | undefined {
  if (text.length === 0 || text.length > 12) return undefined;
  let radix = 10;
  let digits = text;
  if (/^0x/i.test(text)) {
    radix = 16;
    digits = text.slice(2);
    if (digits.length === 0) return 0;
  } else if (text.length > 1 && text.startsWith("0")) {
    radix = 8;
    digits = text.slice(1);
  }
  const valid = radix === 16 ? /^[0-9a-f]+$/i : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!valid.test(digits)) return undefined;
  const n = Number.parseInt(digits, radix);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * The four bytes of an IPv4 address in any form inet_aton accepts ("169.254.169.254",
 * "0xa9fea9fe", "2852039166", "0251.0376.0251.0376", "169.254.43518"), or undefined.
 */
export function parseIPv4(text: string): [number, number, number, number] | undefined {
  if (text.length > 64) return undefined;
  const parts = text.split(".");
  if (parts.length > 4) return undefined;
  if (parts.length > 1 && parts[parts.length - 1] === "") parts.pop(); // "1.2.3.4." as a name
  const values = parts.map(ipv4Part);
  if (values.some((v) => v === undefined)) return undefined;
  const n = values as number[];
  const last = n[n.length - 1]!;
  const head = n.slice(0, -1);
  if (head.some((v) => v > 255)) return undefined;
  const lastBytes = 4 - head.length;
  if (last >= 2 ** (8 * lastBytes)) return undefined;
  const bytes = [...head];
  for (let i = lastBytes - 1; i >= 0; i--) bytes.push(Math.floor(last / 2 ** (8 * i)) % 256);
  return bytes as [number, number, number, number];
}

/** The sixteen bytes of an IPv6 address ("fd00:ec2::254", "::ffff:169.254.169.254", "[fe80::1%eth0]"), or undefined. */
export function parseIPv6(input: string): number[] | undefined {
  if (input.length > 100) return undefined;
  let text = input;
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  const zone = text.indexOf("%");
  if (zone !== -1) text = text.slice(0, zone);
  if (!text.includes(":")) return undefined;
  // A dotted IPv4 tail ("::ffff:169.254.169.254") becomes the two hex groups it stands for.
  const lastColon = text.lastIndexOf(":");
  const lastPart = text.slice(lastColon + 1);
  if (lastPart.includes(".")) {
    if (!/^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(lastPart)) return undefined;
    const v4 = lastPart.split(".").map(Number);
    if (v4.some((b) => b > 255)) return undefined;
    text = `${text.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0;
  if (halves.length === 1 ? head.length !== 8 : fill < 1) return undefined;
  const bytes: number[] = [];
  for (const g of [...head, ...Array<string>(fill).fill("0"), ...rest]) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
    const v = Number.parseInt(g, 16);
    bytes.push(v >> 8, v & 0xff);
  }
  return bytes;
}

function ipv4Reason(b: readonly number[]): string | undefined {
  if (b[0] === 169 && b[1] === 254) return "a link-local address (169.254.0.0/16), where cloud metadata services answer (169.254.169.254)";
  if (b[0] === 100 && b[1] === 100 && b[2] === 100 && b[3] === 200) return "Alibaba Cloud's metadata service (100.100.100.200)";
  if (b[0] === 192 && b[1] === 0 && b[2] === 0 && b[3] === 192) return "Oracle Cloud's metadata service (192.0.0.192)";
  return undefined;
}

function ipv6Reason(b: readonly number[]): string | undefined {
  if (b[0] === 0xfd && b[1] === 0x00 && b[2] === 0x0e && b[3] === 0xc2) return "AWS's IPv6 metadata range (fd00:ec2::/32)";
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return "an IPv6 link-local address (fe80::/10)";
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d): the IPv4 address decides.
  const embedded =
    (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) || zeros(0, 12) || (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) ? b.slice(12) : undefined;
  // 6to4 (2002:AABB:CCDD::/48) carries the IPv4 address in bytes 2..5.
  const sixToFour = b[0] === 0x20 && b[1] === 0x02 ? b.slice(2, 6) : undefined;
  const v4 = embedded ?? sixToFour;
  const reason = v4 ? ipv4Reason(v4) : undefined;
  return reason ? `${reason}, written as an IPv6 address` : undefined;
}

/** Why an IP address (v4 or v6, as resolved or written) is refused, or undefined. */
export function metadataAddressReason(address: string): string | undefined {
  const v4 = parseIPv4(address);
  if (v4) return ipv4Reason(v4);
  const v6 = parseIPv6(address);
  return v6 ? ipv6Reason(v6) : undefined;
}

/** Why a URL's host (a name or an address literal) is refused before any lookup, or undefined. */
export function metadataHostReason(host: string): string | undefined {
  if (host.length > MAX_HOST_CHARS) return undefined;
  let name = host.toLowerCase();
  while (name.endsWith(".")) name = name.slice(0, -1);
  if (METADATA_NAMES.has(name)) return `a cloud metadata host name (${name})`;
  return metadataAddressReason(name);
}
