// The one static lease a bridge's DHCPv6 server hands out: the guest's IPv6 addresses (all
// in one IA_NA), DNS servers and search list. Validation names the field and value; the
// resolved form holds the option values encoded once, so a reply only copies bytes.
import { isIPv6 } from 'node:net';
import { ipFromBuffer, ipToBuffer } from '../net/addr-text';
import { isDnsName } from '../net/dns-name';
import { Dhcp6ConfigError } from './errors';
import { DomainListOption, IaAddrOption, Ip6ListOption } from './options';

export interface Dhcp6Lease {
  /** the guest's global (or ULA) addresses, e.g. from the CNI result */
  addresses: string[];
  dns: string[];
  search: string[];
  /** preferred = valid lifetime, seconds; default 3600 */
  leaseTime?: number;
}

export const DEFAULT_LEASE_TIME6 = 3600;

export interface ResolvedLease6 {
  readonly lease: Dhcp6Lease;
  /** canonical text (RFC 5952) */
  readonly addresses: readonly string[];
  /** the same, as 16 bytes each */
  readonly addressBytes: readonly Buffer[];
  /** option 5 (IAADDR) of each address at the lease time, encoded once for every reply */
  readonly iaAddrs: readonly Buffer[];
  readonly leaseTime: number;
  readonly t1: number;
  readonly t2: number;
  /** option 23, absent when there are no DNS servers */
  readonly dns?: Buffer;
  /** option 24, absent when there is no search list */
  readonly search?: Buffer;
}

/** RFC 5952 text of an IPv6 address. */
export function canonical6(ip: string): string {
  return ipFromBuffer(ipToBuffer(ip));
}

function unicast6(field: string, v: unknown): string {
  if (typeof v !== 'string' || !isIPv6(v) || v.includes('%'))
    throw new Dhcp6ConfigError(field, v, 'not an IPv6 address');
  const b = ipToBuffer(v);
  if (b[0] === 0xff) throw new Dhcp6ConfigError(field, v, 'is multicast');
  if (b.every((x) => x === 0)) throw new Dhcp6ConfigError(field, v, 'is the unspecified address');
  return ipFromBuffer(b);
}

export function resolveLease6(lease: Dhcp6Lease): ResolvedLease6 {
  if (typeof lease !== 'object' || lease === null) throw new Dhcp6ConfigError('lease', lease, 'not an object');
  if (!Array.isArray(lease.addresses) || lease.addresses.length === 0 || lease.addresses.length > 16) {
    throw new Dhcp6ConfigError('lease.addresses', lease.addresses, 'must list 1-16 addresses');
  }
  const addresses = lease.addresses.map((a, i) => {
    const c = unicast6(`lease.addresses[${i}]`, a);
    if (ipToBuffer(c)[0] === 0xfe && (ipToBuffer(c)[1]! & 0xc0) === 0x80) {
      throw new Dhcp6ConfigError(`lease.addresses[${i}]`, a, 'is link-local; the guest makes its own');
    }
    return c;
  });
  if (!Array.isArray(lease.dns) || lease.dns.length > 16)
    throw new Dhcp6ConfigError('lease.dns', lease.dns, 'must list 0-16 addresses');
  const dns = lease.dns.map((a, i) => unicast6(`lease.dns[${i}]`, a));
  if (!Array.isArray(lease.search) || lease.search.length > 32) {
    throw new Dhcp6ConfigError('lease.search', lease.search, 'must list 0-32 names');
  }
  lease.search.forEach((n, i) => {
    if (!isDnsName(n, { underscore: true, rootDot: true }))
      throw new Dhcp6ConfigError(`lease.search[${i}]`, n, 'not a DNS name');
  });
  const leaseTime = lease.leaseTime ?? DEFAULT_LEASE_TIME6;
  if (!Number.isInteger(leaseTime) || leaseTime < 10 || leaseTime > 0xfffffffe) {
    throw new Dhcp6ConfigError('lease.leaseTime', lease.leaseTime, 'must be 10..4294967294 seconds');
  }
  const addressBytes = addresses.map((a) => ipToBuffer(a));
  return {
    lease,
    addresses,
    addressBytes,
    iaAddrs: addressBytes.map((b) => new IaAddrOption(b, leaseTime, leaseTime).encode()),
    leaseTime,
    // RFC 8415 21.4: recommended T1 0.5 and T2 0.8 of the shortest preferred lifetime
    t1: Math.floor(leaseTime * 0.5),
    t2: Math.floor(leaseTime * 0.8),
    ...(dns.length ? { dns: new Ip6ListOption(dns).encode() } : {}),
    ...(lease.search.length ? { search: new DomainListOption(lease.search).encode() } : {}),
  };
}
