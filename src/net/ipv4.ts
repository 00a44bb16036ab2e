// IPv4 addresses and prefixes, the one module: dotted-quad text <-> 32-bit numbers and
// buffers, prefix lengths and masks, "a.b.c.d/len" parsing, networks and containment.
// Text is exactly four decimal octets, each at most 255 and without a leading zero ("0"
// itself is fine); a prefix length is at most 32 (addr-text.ts parseCidr reads the text).
import { parseCidr } from './addr-text';

export interface Prefix4 {
  /** the network address as an unsigned 32-bit number */
  net: number;
  len: number;
}

/**
 * The address as a 32-bit number, or -1 when it is not IPv4 text. A scan by character
 * code: the DHCP server runs it for every reply it encodes, so it allocates nothing.
 */
function scanIpv4(s: string): number {
  const n = s.length;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let i = 0;
  for (let octet = 0; octet < 4; octet++) {
    if (octet > 0) {
      if (s.charCodeAt(i) !== 46 /* . */) return -1;
      i++;
    }
    const start = i;
    let v = 0;
    while (i < n) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      v = v * 10 + c;
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 3 || v > 255 || (len > 1 && s.charCodeAt(start) === 48)) return -1;
    value = value * 256 + v;
  }
  return i === n ? value : -1;
}

export function isIpv4(s: unknown): s is string {
  return typeof s === 'string' && scanIpv4(s) >= 0;
}

/** "a.b.c.d" -> unsigned 32-bit number, or undefined when it is not IPv4 text. */
export function ip4ToNum(s: unknown): number | undefined {
  const v = typeof s === 'string' ? scanIpv4(s) : -1;
  return v < 0 ? undefined : v;
}

export function formatIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function ipv4FromBuffer(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

export function maskFromPrefix(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** The prefix length of a contiguous mask, or -1. */
export function prefixFromMask(mask: number): number {
  for (let l = 0; l <= 32; l++) if (maskFromPrefix(l) === mask >>> 0) return l;
  return -1;
}

/** "a.b.c.d/len" with the host part kept: { ip, len }, or undefined when malformed or not IPv4. */
export function parseCidr4(text: unknown): { ip: string; len: number } | undefined {
  const c = parseCidr(text);
  return c?.family === 4 && isIpv4(c.ip) ? { ip: c.ip, len: c.len } : undefined;
}

/** "a.b.c.d/len" -> its network (host bits cleared), or undefined when malformed. */
export function parsePrefix4(text: unknown): Prefix4 | undefined {
  const c = parseCidr4(text);
  return c && networkOf(c.ip, c.len);
}

export function prefixText(p: Prefix4): string {
  return `${formatIpv4(p.net)}/${p.len}`;
}

/** The network a host address with this prefix length lies in; `ip` must be IPv4 text. */
export function networkOf(ip: string, len: number): Prefix4 {
  return { net: (scanIpv4(ip) & maskFromPrefix(len)) >>> 0, len };
}

/** Whether the prefix has no host bits set ("10.0.0.0/8", not "10.0.0.1/8"). */
export function isNetworkAddress(ip: string, len: number): boolean {
  return (scanIpv4(ip) & ~maskFromPrefix(len)) === 0;
}

export function contains(p: Prefix4, ip: string): boolean {
  const n = ip4ToNum(ip);
  return n !== undefined && (n & maskFromPrefix(p.len)) >>> 0 === p.net;
}

export function samePrefix(a: Prefix4, b: Prefix4): boolean {
  return a.net === b.net && a.len === b.len;
}
