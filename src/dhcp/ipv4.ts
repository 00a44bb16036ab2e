// IPv4 dotted-quad text <-> 32-bit numbers and 4-byte buffers, prefix lengths and masks.
import { DhcpConfigError } from './errors';

/**
 * The address as a 32-bit number, or -1 unless s is exactly four decimal octets of 1-3
 * ASCII digits, each at most 255 and without a leading zero ("0" itself is fine). A scan
 * by character code: it runs for every reply the server encodes, so it allocates nothing.
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

/** Parses a dotted quad; throws DhcpConfigError naming field. */
export function parseIpv4(s: unknown, field: string): number {
  const v = typeof s === 'string' ? scanIpv4(s) : -1;
  if (v < 0) throw new DhcpConfigError(field, s, 'not an IPv4 address');
  return v;
}

export function formatIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function ipv4FromBuffer(b: Buffer, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

export function ipv4ToBuffer(s: string): Buffer {
  return writeIpv4(Buffer.allocUnsafe(4), 0, s);
}

/** Writes the address at buf[off, off + 4) (throws DhcpConfigError if it is not one); returns buf. */
export function writeIpv4(buf: Buffer, off: number, s: string): Buffer {
  buf.writeUInt32BE(parseIpv4(s, 'address'), off);
  return buf;
}

export function maskFromPrefix(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** The prefix length of a contiguous mask, or -1. */
export function prefixFromMask(mask: number): number {
  for (let l = 0; l <= 32; l++) if (maskFromPrefix(l) === mask >>> 0) return l;
  return -1;
}
