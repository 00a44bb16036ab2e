// Router Advertisement encoding and Router Solicitation validation (RFC 4861 4.1-4.2, 4.6,
// 6.1.1), with RDNSS and DNSSL (RFC 8106 5). Pure: no sockets. The checksum is left zero:
// on a raw ICMPv6 socket the kernel computes it (RFC 3542 3.1).
import { ipToBuffer } from '../net/addr-text';
import { macToBuffer } from '../net/mac';
import { network6 } from '../net/prefix6';
import { writeNames } from '../dhcp6/options';

export const ICMP6_ROUTER_SOLICIT = 133;
export const ICMP6_ROUTER_ADVERT = 134;

const OPT_SOURCE_LLADDR = 1;
const OPT_PREFIX_INFO = 3;
const OPT_MTU = 5;
const OPT_RDNSS = 25;
const OPT_DNSSL = 31;

export interface RouterAdvert {
  /** seconds; 0 = "not a default router" (RFC 4861 4.2) */
  routerLifetime: number;
  /** M: addresses from DHCPv6 */
  managed: boolean;
  /** O: other configuration from DHCPv6 */
  other: boolean;
  mtu?: number;
  /** on-link prefixes (L=1, A=0: the address itself comes from DHCPv6) */
  onLink: { prefix: string; prefixLen: number }[];
  /** seconds the on-link prefixes, DNS servers and search list stay valid */
  optionLifetime: number;
  dns: string[];
  search: string[];
  /** the source link-layer address option; absent, the guest resolves the router by NDP */
  sourceMac?: string;
}

function option(type: number, body: Buffer): Buffer {
  const total = 2 + body.length;
  const padded = Math.ceil(total / 8) * 8;
  const b = Buffer.alloc(padded);
  b[0] = type;
  b[1] = padded / 8;
  body.copy(b, 2);
  return b;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
}

/** The first prefixLen bits of an IPv6 address, the rest zero. */
export function maskPrefix6(addr: string, prefixLen: number): Buffer {
  return network6(addr, prefixLen).net;
}

export function encodeRouterAdvert(ra: RouterAdvert): Buffer {
  const head = Buffer.alloc(16);
  head[0] = ICMP6_ROUTER_ADVERT;
  head[4] = 64; // Cur Hop Limit: what the guest puts in its packets' hop limit
  head[5] = (ra.managed ? 0x80 : 0) | (ra.other ? 0x40 : 0);
  head.writeUInt16BE(ra.routerLifetime, 6);
  // reachable time and retrans timer 0: unspecified, the guest keeps its own
  const opts: Buffer[] = [];
  if (ra.sourceMac) opts.push(option(OPT_SOURCE_LLADDR, macToBuffer(ra.sourceMac)));
  if (ra.mtu !== undefined) opts.push(option(OPT_MTU, Buffer.concat([Buffer.alloc(2), u32(ra.mtu)])));
  for (const p of ra.onLink) {
    const body = Buffer.alloc(30);
    body[0] = p.prefixLen;
    body[1] = 0x80; // L; A clear
    body.writeUInt32BE(ra.optionLifetime, 2); // valid
    body.writeUInt32BE(ra.optionLifetime, 6); // preferred
    maskPrefix6(p.prefix, p.prefixLen).copy(body, 14);
    opts.push(option(OPT_PREFIX_INFO, body));
  }
  if (ra.dns.length) {
    opts.push(option(OPT_RDNSS, Buffer.concat([Buffer.alloc(2), u32(ra.optionLifetime), ...ra.dns.map(ipToBuffer)])));
  }
  if (ra.search.length) {
    opts.push(option(OPT_DNSSL, Buffer.concat([Buffer.alloc(2), u32(ra.optionLifetime), writeNames(ra.search)])));
  }
  return Buffer.concat([head, ...opts]);
}

/**
 * Whether a received message is a valid Router Solicitation (RFC 4861 6.1.1): hop limit
 * 255, code 0, at least 8 bytes, every option of non-zero length within the message, and
 * no source link-layer option when the source is the unspecified address.
 */
export function isValidRouterSolicit(data: Buffer, from: string, hopLimit: number): boolean {
  if (hopLimit !== 255 || data.length < 8 || data[0] !== ICMP6_ROUTER_SOLICIT || data[1] !== 0) return false;
  const unspecified = ipToBuffer(from).every((x) => x === 0);
  for (let pos = 8; pos < data.length;) {
    if (pos + 2 > data.length) return false;
    const len = data[pos + 1]! * 8;
    if (len === 0 || pos + len > data.length) return false;
    if (unspecified && data[pos] === OPT_SOURCE_LLADDR) return false;
    pos += len;
  }
  return true;
}
