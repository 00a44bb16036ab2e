// The guest's kernel command line: a fixed quiet base plus the checks the caller wants
// (the tapwire.* words src/guest/rootfs/init reads). Every value is checked here, so a
// bad one fails on the host with the field named, not as a guest that ignores it.
import { isIP } from 'node:net';
import { invalid } from './errors';

export interface GuestChecks {
  /** ping targets: addresses, 'gw' (each lease's router) or [] for none; default ['gw'] */
  ping?: string[];
  /** pings per target (default 2) */
  count?: number;
  /** TCP-connect targets */
  tcp?: { host: string; port: number }[];
  /** TCP ports the guest serves (one hello line per connection) */
  listen?: number[];
  /** seconds the guest stays up after the checks, before its done line */
  hold?: number;
  /** DHCPv4 on every NIC (default true) */
  dhcp?: boolean;
  /** DHCPv6 (dhcpcd, IA_NA) on every NIC, the kernel taking the RAs (default false) */
  dhcp6?: boolean;
  /** DHCPDISCOVERs before the guest gives up on a NIC (default 15, 2 s apart) */
  dhcpTries?: number;
  /** after the done line, stay up instead of powering off */
  stay?: boolean;
  /**
   * static addresses: the NIC with `mac` gets `address` (IP/prefix, IPv4 or IPv6) and, with
   * `gateway`, a default route via it; no DHCP on that NIC (an L2-only segment without a server)
   */
  static?: { mac: string; address: string; gateway?: string }[];
}

/** Serial console, no kernel chatter, reboot (which -no-reboot turns into an exit) on panic. */
export const BASE_CMDLINE = ['console=ttyS0', 'quiet', 'panic=-1'];

function int(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(field, v, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

function ip(field: string, v: unknown): string {
  if (typeof v !== 'string' || !isIP(v)) throw invalid(field, v, 'must be an IPv4 or IPv6 address');
  return v;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** One static address as `MAC@IP/LEN[@GW]` (the NIC's MAC in lower case). */
function staticWord(i: number, s: { mac: string; address: string; gateway?: string }): string {
  const f = `static[${i}]`;
  const mac: unknown = s?.mac;
  if (typeof mac !== 'string' || !MAC.test(mac.toLowerCase()))
    throw invalid(`${f}.mac`, mac, 'must be a MAC address (aa:bb:cc:dd:ee:ff)');
  const address: unknown = s.address;
  const [addr, len, extra] = typeof address === 'string' ? address.split('/') : [];
  const family = isIP(addr ?? '');
  const max = family === 6 ? 128 : 32;
  if (!family || extra !== undefined || !/^\d{1,3}$/.test(len ?? '') || Number(len) > max)
    throw invalid(`${f}.address`, address, 'must be an IPv4 or IPv6 address with a prefix length (IP/LEN)');
  let gw = '';
  if (s.gateway !== undefined) {
    if (isIP(ip(`${f}.gateway`, s.gateway)) !== family)
      throw invalid(`${f}.gateway`, s.gateway, `must be an IPv${family} address, as the address is`);
    gw = `@${s.gateway}`;
  }
  return `${mac.toLowerCase()}@${addr}/${len}${gw}`;
}

/** The kernel command line for `checks` (base words first). */
export function guestCmdline(checks: GuestChecks = {}): string {
  const words = [...BASE_CMDLINE];
  const c = checks;
  if (c.ping !== undefined) {
    if (!Array.isArray(c.ping)) throw invalid('ping', c.ping, 'must be a list of addresses or "gw"');
    const targets = c.ping.map((t, i) => (t === 'gw' ? t : ip(`ping[${i}]`, t)));
    words.push(`tapwire.ping=${targets.length ? targets.join(',') : 'none'}`);
  }
  if (c.count !== undefined) words.push(`tapwire.count=${int('count', c.count, 1, 100)}`);
  if (c.tcp?.length) {
    const targets = c.tcp.map((t, i) => {
      const host: unknown = t?.host;
      if (typeof host !== 'string' || isIP(host) !== 4)
        throw invalid(`tcp[${i}].host`, host, 'must be an IPv4 address');
      return `${host}:${int(`tcp[${i}].port`, t.port, 1, 65535)}`;
    });
    words.push(`tapwire.tcp=${targets.join(',')}`);
  }
  if (c.listen?.length)
    words.push(`tapwire.listen=${c.listen.map((p, i) => int(`listen[${i}]`, p, 1, 65535)).join(',')}`);
  if (c.hold !== undefined) words.push(`tapwire.hold=${int('hold', c.hold, 0, 86_400)}`);
  if (c.dhcp !== undefined) words.push(`tapwire.dhcp=${c.dhcp ? 'on' : 'off'}`);
  if (c.dhcp6 !== undefined) words.push(`tapwire.dhcp6=${c.dhcp6 ? 'on' : 'off'}`);
  if (c.dhcpTries !== undefined) words.push(`tapwire.dhcp_tries=${int('dhcpTries', c.dhcpTries, 1, 1000)}`);
  if (c.stay) words.push('tapwire.stay=1');
  if (c.static?.length) {
    const macs = c.static.map((s, i) => staticWord(i, s));
    const twice = macs.findIndex((m, i) => macs.findIndex((o) => o.split('@')[0] === m.split('@')[0]) !== i);
    if (twice >= 0) throw invalid(`static[${twice}].mac`, c.static[twice]!.mac, 'has a static address already');
    words.push(`tapwire.static=${macs.join(',')}`);
  }
  return words.join(' ');
}
