// MAC addresses: the one parser and formatter. Text is six hex pairs joined by ':' or by '-'
// (one separator throughout), either case: `de:ad:00:00:be:af`, `DE-AD-00-00-BE-AF`; it is
// always handed on in the canonical form, lower case with colons.

const MAC_RE = /^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i;

/** The canonical form (lower case, colons) of a MAC text, or undefined when it is none. */
export function parseMac(s: unknown): string | undefined {
  if (typeof s !== 'string' || !MAC_RE.test(s)) return undefined;
  return s.toLowerCase().replaceAll('-', ':');
}

export function isMac(s: unknown): s is string {
  return parseMac(s) !== undefined;
}

/** Not a group address (I/G bit clear) and not all zeros; `mac` canonical. */
export function isUnicastMac(mac: string): boolean {
  return (parseInt(mac.slice(0, 2), 16) & 1) === 0 && mac !== '00:00:00:00:00:00';
}

export function macToBuffer(mac: string): Buffer {
  const m = parseMac(mac);
  if (m === undefined) throw new TypeError(`invalid MAC address ${JSON.stringify(mac)}`);
  return Buffer.from(m.split(':').map((h) => parseInt(h, 16)));
}

/** A hardware address of any length (a DHCP chaddr: 1-16 bytes) as hex pairs joined by ':'. */
export function hwAddrToBuffer(s: string): Buffer {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){0,15}$/i.test(s))
    throw new TypeError(`invalid hardware address ${JSON.stringify(s)}`);
  return Buffer.from(s.split(':').map((h) => parseInt(h, 16)));
}

const HEX_PAIRS: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Bytes as lower-case hex pairs joined by ':' (any length: a DHCP chaddr may be up to 16).
 * A loop over a table, not map/join: the DHCP server formats one per message.
 */
export function macFromBuffer(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += i === 0 ? HEX_PAIRS[b[i]!]! : `:${HEX_PAIRS[b[i]!]!}`;
  return s;
}

/**
 * The six bytes at b[off] as one number (48 bits fit a double exactly): a Map key for a
 * MAC read off the wire without making its text, which the DHCP server did per message.
 */
export function macNumber(b: Uint8Array, off = 0): number {
  const high = b[off]! * 0x100 + b[off + 1]!;
  const low = ((b[off + 2]! << 24) | (b[off + 3]! << 16) | (b[off + 4]! << 8) | b[off + 5]!) >>> 0;
  return high * 0x100000000 + low;
}

/** Random locally administered unicast MAC. */
export function randomMac(rand: () => Buffer): string {
  const b = rand();
  b[0] = (b[0]! & 0xfe) | 0x02;
  return macFromBuffer(b.subarray(0, 6));
}
