// Text <-> wire forms of IP addresses (MACs: mac.ts), and the one parser of prefix text
// ("address/length", either family).
import { isIPv4, isIPv6 } from 'node:net';

export function ipToBuffer(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (isIPv6(ip)) {
    const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
    const parse = (s: string | undefined): number[] => (s ? s.split(':').flatMap(group) : []);
    const group = (g: string): number[] => {
      if (g.includes('.')) return [...ipToBuffer(g)];
      const v = parseInt(g, 16);
      return [v >> 8, v & 0xff];
    };
    const h = parse(head);
    const t = parse(tail);
    const fill = tail === undefined ? [] : new Array<number>(16 - h.length - t.length).fill(0);
    return Buffer.from([...h, ...fill, ...t]);
  }
  throw new TypeError(`invalid IP address ${JSON.stringify(ip)}`);
}

export function ipFromBuffer(b: Uint8Array): string {
  if (b.length === 4) return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  // RFC 5952: compress the longest run of zero groups
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** An address with a prefix length, "10.1.2.3/24" or "fd00::1/64" (the host part kept). */
export interface Cidr {
  family: 4 | 6;
  ip: string;
  len: number;
}

const CIDR_RE = /^([^/]+)\/(0|[1-9]\d{0,2})$/;

/**
 * "address/length" -> { family, ip, len }, or undefined unless it is an IPv4 or IPv6
 * address, one "/" and a decimal length (no leading zero) of at most 32 or 128.
 */
export function parseCidr(text: unknown): Cidr | undefined {
  const m = typeof text === 'string' ? CIDR_RE.exec(text) : null;
  if (!m) return undefined;
  const ip = m[1]!;
  const len = Number(m[2]);
  const family = isIPv4(ip) ? 4 : isIPv6(ip) ? 6 : undefined;
  if (!family || len > (family === 4 ? 32 : 128)) return undefined;
  return { family, ip, len };
}
