// IPv4 dotted-quad text <-> 32-bit numbers and 4-byte buffers, prefix lengths and masks.
import { DhcpConfigError } from './errors';

const QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function isIpv4(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  const m = QUAD.exec(s);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255 && (o === '0' || !o.startsWith('0')));
}

/** Parses a dotted quad; throws DhcpConfigError naming field. */
export function parseIpv4(s: unknown, field: string): number {
  if (!isIpv4(s)) throw new DhcpConfigError(field, s, 'not an IPv4 address');
  const p = s.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

export function formatIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function ipv4FromBuffer(b: Buffer, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

export function ipv4ToBuffer(s: string): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(parseIpv4(s, 'address'), 0);
  return b;
}

export function maskFromPrefix(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** The prefix length of a contiguous mask, or -1. */
export function prefixFromMask(mask: number): number {
  for (let l = 0; l <= 32; l++) if (maskFromPrefix(l) === mask >>> 0) return l;
  return -1;
}
