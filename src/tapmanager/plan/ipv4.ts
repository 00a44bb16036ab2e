// IPv4 prefix arithmetic for the route planner: parse "a.b.c.d" and "a.b.c.d/len",
// compute a prefix's network, and test whether an address falls inside a prefix.
import { isIPv4 } from 'node:net';

export interface Prefix4 {
  /** the network address as an unsigned 32-bit number */
  net: number;
  len: number;
}

/** "a.b.c.d" -> unsigned 32-bit number, or undefined when it is not IPv4 text. */
export function ip4ToNum(ip: string): number | undefined {
  if (!isIPv4(ip)) return undefined;
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function numToIp4(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

export function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** "a.b.c.d/len" -> its network (host bits cleared), or undefined when malformed. */
export function parsePrefix4(text: string): Prefix4 | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  if (!m) return undefined;
  const ip = ip4ToNum(m[1]!);
  const len = Number(m[2]);
  if (ip === undefined || len > 32) return undefined;
  return { net: (ip & maskOf(len)) >>> 0, len };
}

/** "a.b.c.d/len" with the host part kept: { ip, len }, or undefined when malformed. */
export function parseCidr4(text: string): { ip: string; len: number } | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  if (!m || !isIPv4(m[1]!) || Number(m[2]) > 32) return undefined;
  return { ip: m[1]!, len: Number(m[2]) };
}

export function prefixText(p: Prefix4): string {
  return `${numToIp4(p.net)}/${p.len}`;
}

/** The network a host address with this prefix length lies in. */
export function networkOf(ip: string, len: number): Prefix4 {
  return { net: (ip4ToNum(ip)! & maskOf(len)) >>> 0, len };
}

export function contains(p: Prefix4, ip: string): boolean {
  const n = ip4ToNum(ip);
  return n !== undefined && (n & maskOf(p.len)) >>> 0 === p.net;
}

export function samePrefix(a: Prefix4, b: Prefix4): boolean {
  return a.net === b.net && a.len === b.len;
}
