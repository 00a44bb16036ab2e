// A masquerade NIC's guest network (pure): its addresses, its table's name, and whether
// it collides with another network. validate.ts checks requests with it; pod.ts plans.
import {
  formatIpv4,
  isNetworkAddress,
  maskFromPrefix,
  parseCidr4,
  parsePrefix4,
  type Prefix4,
} from '../../../net/ipv4';
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
