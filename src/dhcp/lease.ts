// Static leases: the shape tapmanager hands in, its validation (errors name the field and
// value), and the resolved form the server answers from, with every option value the
// lease can produce encoded once up front so that a reply is only copying bytes.
import { dnsNameRule, isDnsName, type DnsNameRule } from '../net/dns-name';
import { macNumber, macToBuffer, parseMac } from '../net/mac';
import { Opt } from './constants';
import { DhcpConfigError } from './errors';
import { formatIpv4, isNetworkAddress, maskFromPrefix, parseCidr4 } from '../net/ipv4';
import { parseIpv4 } from './ipv4';
import { resolveSpecOptions, type DhcpLeaseOptions, type HeaderFields } from './spec-options';
import {
  ClasslessRoutesOption,
  DomainSearchOption,
  DurationOption,
  IpListOption,
  IpOption,
  TextOption,
  Uint16Option,
} from './options';

/** A lease; the options of a VM network spec's interface (`dhcpOptions`, issue 17) are its DhcpLeaseOptions fields. */
export interface StaticLease extends DhcpLeaseOptions {
  /** guest MAC, lower-case aa:bb:cc:dd:ee:ff */
  mac: string;
  /** yiaddr and option 1 (mask) */
  ip: string;
  prefixLen: number;
  /** option 3 (may be empty) */
  routers: string[];
  /** option 121, sent in the given order; gw '0.0.0.0' = on-link. Without a 0.0.0.0/0 entry,
   * one via routers[0] is appended (RFC 3442: a client taking 121 ignores option 3). */
  classlessRoutes: { dst: string; gw: string }[];
  dns: string[];
  search: string[];
  domain?: string;
  hostname?: string;
  mtu?: number;
  /** seconds; default 3600 */
  leaseTime?: number;
  /** seconds; default 50% of the lease */
  renewalTime?: number;
  /** seconds; default 87.5% of the lease */
  rebindingTime?: number;
  /** option 67 (KubeVirt dhcpOptions.bootFileName) */
  bootFileName?: string;
  /** option 66 (dhcpOptions.tftpServerName) */
  tftpServerName?: string;
  /** option 42 (dhcpOptions.ntpServers) */
  ntpServers?: string[];
  /** options 224-254 (dhcpOptions.privateOptions), string values */
  privateOptions?: { option: number; value: string }[];
}

export const DEFAULT_LEASE_TIME = 3600;
const INFINITE = 0xffffffff;

export interface ResolvedLease {
  readonly lease: StaticLease;
  readonly mac: string;
  readonly ip: string;
  /** ip as a 32-bit number (the handler compares options 50 and 54 as numbers, not text) */
  readonly ipNumber: number;
  readonly leaseTime: number;
  /** Encoded values by option code: everything the lease can answer. */
  readonly values: ReadonlyMap<number, Buffer>;
  /** the header fields (`file`, `sname`) its replies carry */
  readonly header: HeaderFields;
}

/** What options 12, 15 and 119 carry: a DNS name, '_' allowed, an optional root dot. */
export const DHCP_NAME_RULE: DnsNameRule = { underscore: true, rootDot: true };

export function isDhcpName(v: unknown): v is string {
  return isDnsName(v, DHCP_NAME_RULE);
}

function checkName(field: string, v: unknown): string {
  if (!isDhcpName(v)) {
    throw new DhcpConfigError(field, v, `not a DNS name (${dnsNameRule(DHCP_NAME_RULE)})`);
  }
  return v;
}

function checkSeconds(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > INFINITE) {
    throw new DhcpConfigError(field, v, `must be an integer number of seconds 1..${INFINITE}`);
  }
  return v;
}

function checkIps(field: string, v: unknown): string[] {
  if (!Array.isArray(v)) throw new DhcpConfigError(field, v, 'must be an array of IPv4 addresses');
  v.forEach((a, i) => parseIpv4(a, `${field}[${i}]`));
  return v as string[];
}

/**
 * RFC 3442: a client that gets option 121 MUST ignore option 3, so the default router goes
 * into 121 too. Added last (its router is on the client's subnet, RFC 2132 3.5) unless the
 * routes already have a default route; without routers nothing is invented.
 */
function withDefaultRoute(routes: StaticLease['classlessRoutes'], routers: string[]): StaticLease['classlessRoutes'] {
  if (routers.length === 0 || routes.some((r) => parseCidr4(r.dst)?.len === 0)) return routes;
  return [...routes, { dst: '0.0.0.0/0', gw: routers[0]! }];
}

/** Validates one lease; `field` prefixes error names (e.g. "leases[2]"). */
export function resolveLease(l: StaticLease, field = 'lease'): ResolvedLease {
  if (typeof l !== 'object' || l === null) throw new DhcpConfigError(field, l, 'must be an object');
  const mac = parseMac(l.mac);
  if (mac === undefined) throw new DhcpConfigError(`${field}.mac`, l.mac, 'not a MAC address aa:bb:cc:dd:ee:ff');
  const ip = parseIpv4(l.ip, `${field}.ip`);
  if (!Number.isInteger(l.prefixLen) || l.prefixLen < 1 || l.prefixLen > 32) {
    throw new DhcpConfigError(`${field}.prefixLen`, l.prefixLen, 'must be an integer 1..32');
  }
  const mask = maskFromPrefix(l.prefixLen);
  const routers = checkIps(`${field}.routers`, l.routers);
  if (!Array.isArray(l.classlessRoutes)) {
    throw new DhcpConfigError(`${field}.classlessRoutes`, l.classlessRoutes, 'must be an array');
  }
  l.classlessRoutes.forEach((r, i) => {
    const f = `${field}.classlessRoutes[${i}]`;
    const dst = parseCidr4(r?.dst);
    if (!dst) throw new DhcpConfigError(`${f}.dst`, r?.dst, 'not a.b.c.d/len');
    if (!isNetworkAddress(dst.ip, dst.len)) {
      throw new DhcpConfigError(`${f}.dst`, r.dst, 'has host bits set');
    }
    parseIpv4(r.gw, `${f}.gw`);
  });
  const dns = checkIps(`${field}.dns`, l.dns);
  if (!Array.isArray(l.search)) throw new DhcpConfigError(`${field}.search`, l.search, 'must be an array');
  l.search.forEach((s, i) => checkName(`${field}.search[${i}]`, s));
  if (l.domain !== undefined) checkName(`${field}.domain`, l.domain);
  if (l.hostname !== undefined) checkName(`${field}.hostname`, l.hostname);
  if (l.mtu !== undefined && (!Number.isInteger(l.mtu) || l.mtu < 68 || l.mtu > 65535)) {
    throw new DhcpConfigError(`${field}.mtu`, l.mtu, 'must be an integer 68..65535 (RFC 2132 5.1)');
  }
  const leaseTime = l.leaseTime === undefined ? DEFAULT_LEASE_TIME : checkSeconds(`${field}.leaseTime`, l.leaseTime);
  const t1 =
    l.renewalTime === undefined ? Math.floor(leaseTime * 0.5) : checkSeconds(`${field}.renewalTime`, l.renewalTime);
  const t2 =
    l.rebindingTime === undefined
      ? Math.floor(leaseTime * 0.875)
      : checkSeconds(`${field}.rebindingTime`, l.rebindingTime);
  if (leaseTime !== INFINITE && !(t1 < t2 && t2 < leaseTime)) {
    throw new DhcpConfigError(field, { leaseTime, renewalTime: t1, rebindingTime: t2 }, 'needs T1 < T2 < lease time');
  }

  const values = new Map<number, Buffer>();
  values.set(Opt.SUBNET_MASK, new IpOption(formatIpv4(mask)).encode());
  if (routers.length) values.set(Opt.ROUTER, new IpListOption(routers).encode());
  if (l.classlessRoutes.length) {
    values.set(Opt.CLASSLESS_ROUTES, new ClasslessRoutesOption(withDefaultRoute(l.classlessRoutes, routers)).encode());
  }
  if (dns.length) values.set(Opt.DNS, new IpListOption(dns).encode());
  if (l.hostname) values.set(Opt.HOSTNAME, new TextOption(l.hostname).encode());
  if (l.domain) values.set(Opt.DOMAIN_NAME, new TextOption(l.domain).encode());
  if (l.mtu !== undefined) values.set(Opt.INTERFACE_MTU, new Uint16Option(l.mtu).encode());
  if (l.prefixLen < 31) values.set(Opt.BROADCAST_ADDRESS, new IpOption(formatIpv4((ip | ~mask) >>> 0)).encode());
  if (l.search.length) values.set(Opt.DOMAIN_SEARCH, new DomainSearchOption(l.search).encode());
  const header = resolveSpecOptions(l, field, values);
  values.set(Opt.LEASE_TIME, new DurationOption(leaseTime).encode());
  if (leaseTime !== INFINITE) {
    values.set(Opt.RENEWAL_TIME, new DurationOption(t1).encode());
    values.set(Opt.REBINDING_TIME, new DurationOption(t2).encode());
  }
  return { lease: l, mac, ip: formatIpv4(ip), ipNumber: ip, leaseTime, values: ownBlock(values), header };
}

/**
 * The same values, copied into one small allocation of their own. The option encoders
 * return slices of Node's shared 8 KB buffer pool, and a lease lives as long as its
 * sandbox: one retained slice keeps its whole pool alive, which came to ~8 KB per sandbox
 * at 1000 sandboxes. Buffer.alloc never uses the pool.
 */
function ownBlock(values: Map<number, Buffer>): Map<number, Buffer> {
  let size = 0;
  for (const v of values.values()) size += v.length;
  const block = Buffer.alloc(size);
  const out = new Map<number, Buffer>();
  let at = 0;
  for (const [code, v] of values) {
    v.copy(block, at);
    out.set(code, block.subarray(at, at + v.length));
    at += v.length;
  }
  return out;
}

/**
 * Leases by MAC text, and by the MAC's bytes for the server's lookup per message: a text
 * made per message cost ~0.3 us of the ~1.6 us the server's own work takes (bench/dhcp-alloc).
 */
export class LeaseMap extends Map<string, ResolvedLease> {
  private readonly byNumber = new Map<number, ResolvedLease>();

  /** Empty: Map's constructor would call set() with entries before byNumber exists. */
  constructor() {
    super();
  }

  /** The lease of the MAC in b[off, off + 6), if any. */
  byBytes(b: Uint8Array, off = 0): ResolvedLease | undefined {
    return this.byNumber.get(macNumber(b, off));
  }

  /** `mac` canonical (lower case, colons), as resolveLease makes it: the two keys must name one lease. */
  override set(mac: string, lease: ResolvedLease): this {
    if (parseMac(mac) !== mac) throw new TypeError(`lease key ${JSON.stringify(mac)} is not a canonical MAC`);
    super.set(mac, lease);
    this.byNumber.set(macNumber(macToBuffer(mac)), lease);
    return this;
  }

  override delete(mac: string): boolean {
    if (!super.delete(mac)) return false;
    this.byNumber.delete(macNumber(macToBuffer(mac)));
    return true;
  }

  override clear(): void {
    super.clear();
    this.byNumber.clear();
  }
}

/** Validates a lease list (no two leases for one MAC) into a map by MAC. */
export function resolveLeases(leases: StaticLease[], field = 'leases'): LeaseMap {
  if (!Array.isArray(leases)) throw new DhcpConfigError(field, leases, 'must be an array');
  const out = new LeaseMap();
  leases.forEach((l, i) => {
    const r = resolveLease(l, `${field}[${i}]`);
    if (out.has(r.mac)) throw new DhcpConfigError(`${field}[${i}].mac`, r.mac, 'has two leases');
    out.set(r.mac, r);
  });
  return out;
}
