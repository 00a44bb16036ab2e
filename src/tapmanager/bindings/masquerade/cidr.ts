// A masquerade NIC's guest network (pure): its addresses, its table's name, and whether
// it collides with another network, for IPv4 and IPv6. validate.ts checks requests with
// it; pod.ts plans.
import {
  formatIpv4,
  isNetworkAddress,
  maskFromPrefix,
  parseCidr4,
  parsePrefix4,
  type Prefix4,
} from '../../../net/ipv4';
import { ipFromBuffer, parseCidr } from '../../../net/addr-text';
import { guestNetwork6Problem, network6, type Prefix6 } from '../../../net/prefix6';

export { network6, prefixesOverlap6, type Prefix6 } from '../../../net/prefix6';
import { badInput } from '../../errors';

/** KubeVirt's default guest network. */
export const DEFAULT_GUEST_CIDR = '10.0.2.0/24';

/** The NAT table of the masquerade NIC whose bridge is `bridge`. */
export function masqTable(bridge: string): string {
  return `tapwire_masq_${bridge}`;
}

/** Whether two IPv4 networks share an address. */
export function prefixesOverlap(a: Prefix4, b: Prefix4): boolean {
  const m = maskFromPrefix(Math.min(a.len, b.len));
  return (a.net & m) >>> 0 === (b.net & m) >>> 0;
}

/** The guest CIDR's bridge and guest addresses (its first two); refuses a CIDR too small for them. */
export function guestAddresses(cidr: string, field: string): { prefix: Prefix4; bridgeIp: string; guestIp: string } {
  const c = parseCidr4(cidr);
  const prefix = c && isNetworkAddress(c.ip, c.len) ? parsePrefix4(cidr) : undefined;
  if (!prefix) throw badInput(field, cidr, 'is not an IPv4 network in CIDR form, host bits clear (e.g. 10.0.2.0/24)');
  if (prefix.len > 30) throw badInput(field, cidr, 'leaves no room for a bridge and a guest address (at most /30)');
  return { prefix, bridgeIp: formatIpv4(prefix.net + 1), guestIp: formatIpv4(prefix.net + 2) };
}

/** KubeVirt's default IPv6 guest network. */
export const DEFAULT_GUEST_CIDR6 = 'fd10:0:2::/120';

/**
 * The IPv6 guest CIDR's bridge and guest addresses (its first two, "::1" and "::2" of
 * fd10:0:2::/120); refuses a CIDR that is not a network, a link-local or multicast one, or
 * one too small for them.
 */
export function guestAddresses6(cidr: string, field: string): { prefix: Prefix6; bridgeIp: string; guestIp: string } {
  const why = guestNetwork6Problem(cidr);
  if (why) throw badInput(field, cidr, why);
  const c = parseCidr(cidr)!;
  const prefix = network6(c.ip, c.len);
  const at = (n: number): string => {
    const b = Buffer.from(prefix.net);
    b[15] = b[15]! + n; // host bits are clear and at least 2 of them: no carry
    return ipFromBuffer(b);
  };
  return { prefix, bridgeIp: at(1), guestIp: at(2) };
}
