// IPv6 networks (pure): a prefix's network, whether two overlap, and whether one can be a
// guest network (the masquerade binding's: its first two addresses for a bridge and a guest).
import { ipToBuffer, parseCidr } from './addr-text';

/** An IPv6 network: its first address (16 bytes) and length. */
export interface Prefix6 {
  net: Buffer;
  len: number;
}

/** Whether two IPv6 networks share an address. */
export function prefixesOverlap6(a: Prefix6, b: Prefix6): boolean {
  const len = Math.min(a.len, b.len);
  for (let bit = 0; bit < len; bit += 8) {
    const mask = len - bit >= 8 ? 0xff : (0xff << (8 - (len - bit))) & 0xff;
    if ((a.net[bit / 8]! & mask) !== (b.net[bit / 8]! & mask)) return false;
  }
  return true;
}

/** The network of an IPv6 address with a prefix length (host bits cleared). */
export function network6(ip: string, len: number): Prefix6 {
  const b = ipToBuffer(ip);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    b[i] = b[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return { net: b, len };
}

/**
 * Why `cidr` cannot be a guest's IPv6 network (undefined: it can): not an IPv6 network in
 * CIDR form with the host bits clear, link-local, multicast, shorter than /8, or too small
 * for a bridge and a guest address (longer than /126).
 */
export function guestNetwork6Problem(cidr: string): string | undefined {
  const c = parseCidr(cidr);
  const bad = 'is not an IPv6 network in CIDR form, host bits clear (e.g. fd10:0:2::/120)';
  if (!c || c.family !== 6) return bad;
  const prefix = network6(c.ip, c.len);
  if (!prefix.net.equals(ipToBuffer(c.ip))) return bad;
  if (prefix.len > 126) return 'leaves no room for a bridge and a guest address (at most /126)';
  if (prefix.net[0] === 0xff || (prefix.net[0] === 0xfe && (prefix.net[1]! & 0xc0) === 0x80) || prefix.len < 8)
    return 'is not a unicast network a guest can be given (link-local, multicast or shorter than /8)';
  return undefined;
}
