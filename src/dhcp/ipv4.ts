// IPv4 text for the DHCP server's configuration: the parse that throws DhcpConfigError
// naming the field, and writing an address into a packet. The arithmetic is src/net/ipv4.
import { ip4ToNum } from '../net/ipv4';
import { DhcpConfigError } from './errors';

/** Parses a dotted quad; throws DhcpConfigError naming field. */
export function parseIpv4(s: unknown, field: string): number {
  const v = ip4ToNum(s);
  if (v === undefined) throw new DhcpConfigError(field, s, 'not an IPv4 address');
  return v;
}

export function ipv4ToBuffer(s: string): Buffer {
  return writeIpv4(Buffer.allocUnsafe(4), 0, s);
}

/** Writes the address at buf[off, off + 4) (throws DhcpConfigError if it is not one); returns buf. */
export function writeIpv4(buf: Buffer, off: number, s: string): Buffer {
  buf.writeUInt32BE(parseIpv4(s, 'address'), off);
  return buf;
}
