// The fence as data (pure): its chains, rules and each rule's matches. Two renderers
// read it: ruleset.ts writes it as an nft script (the readable form, and what the nft
// CLI gets), batch.ts encodes it as the nf_tables netlink batch that setup sends. The
// policy itself is described in ruleset.ts.
import type { FenceNic } from './types';

/** The named set of the 802.1Q and 802.1ad tag ethertypes, looked up at every tag offset. */
export const VLAN_SET = { name: 'vlan_types', elements: [0x8100, 0x88a8], bits: 16 } as const;

/** A value a field is compared with: a number, an inclusive range, or the VLAN set. */
export type Value = number | { lo: number; hi: number } | 'vlan_types';

/** One match of a rule, in the order nft evaluates them. */
export type Match =
  | { kind: 'ifname'; dir: 'iif' | 'oif'; name: string }
  | { kind: 'ether_saddr'; neq: boolean; mac: string }
  /** the kernel's own UDP parse (meta l4proto udp, then the transport header) */
  | { kind: 'udp'; field: 'sport' | 'dport'; value: Value }
  /** the kernel's own ICMPv6 parse (meta l4proto ipv6-icmp, then the type byte) */
  | { kind: 'icmp6'; value: Value }
  /** `len` bits at bit offset `bit` of the link-layer header, as on the wire */
  | { kind: 'raw'; bit: number; len: number; neq: boolean; value: Value; hex?: boolean };

export interface Rule {
  chain: string;
  matches: readonly Match[];
  /** counted by this named counter, then dropped; absent for a jump */
  counter?: string;
  /** the chain this rule jumps to (instead of counting and dropping) */
  jump?: string;
}

export interface Chain {
  name: string;
  hook?: 'prerouting' | 'postrouting';
}

export interface FenceModel {
  chains: Chain[];
  /** every counter, in rule order */
  counters: string[];
  rules: Rule[];
}

const raw = (bit: number, len: number, value: Value, o: { neq?: boolean; hex?: boolean } = {}): Match => ({
  kind: 'raw',
  bit,
  len,
  neq: o.neq ?? false,
  value,
  ...(o.hex ? { hex: true } : {}),
});

/** The ethertype chain leading to IPv4 (or IPv6), and where the IP header starts (bytes). */
interface Encap {
  name: 'raw' | 'vlan' | 'qinq';
  matches: Match[];
  ip: number;
}

/** ethertype IPv4 at bit offset `bit` */
const ipv4At = (bit: number): Match => raw(bit, 16, 0x0800, { hex: true });
const ENCAPS: Encap[] = [
  { name: 'raw', matches: [ipv4At(96)], ip: 14 },
  { name: 'vlan', matches: [raw(96, 16, 'vlan_types'), ipv4At(128)], ip: 18 },
  {
    name: 'qinq',
    matches: [raw(96, 16, 'vlan_types'), raw(128, 16, 'vlan_types'), ipv4At(160)],
    ip: 22,
  },
];

const DHCP_DPORTS: Value = { lo: 67, hi: 68 };

/** "IPv4, UDP, first fragment" at IP header offset `ip` (bytes from the link header). */
function udpFirstFragment(ip: number): Match[] {
  const bit = ip * 8;
  // protocol is byte 9; the 13-bit fragment offset is bits 51..63 of the header
  return [raw(bit + 72, 8, 17), raw(bit + 51, 13, 0)];
}

/** The DHCP matches for one direction, keyed by their counter suffix (the same every time: made once). */
export function dhcpMatches(): readonly (readonly [string, readonly Match[]])[] {
  return DHCP_MATCHES;
}

function makeDhcpMatches(): [string, Match[]][] {
  const out: [string, Match[]][] = [
    ['udp_dport', [{ kind: 'udp', field: 'dport', value: DHCP_DPORTS }]],
    ['udp_sport', [{ kind: 'udp', field: 'sport', value: 67 }]],
  ];
  for (const e of ENCAPS) {
    const bit = e.ip * 8;
    // version 4, IHL 5
    const head = [...e.matches, raw(bit, 8, 0x45, { hex: true }), ...udpFirstFragment(e.ip)];
    out.push([`${e.name}_dport`, [...head, raw(bit + 176, 16, DHCP_DPORTS)]]); // UDP at ip+20, dport at +2
    out.push([`${e.name}_sport`, [...head, raw(bit + 160, 16, 67)]]);
  }
  for (const e of ENCAPS.filter((x) => x.name !== 'raw')) {
    const bit = e.ip * 8;
    out.push([
      `${e.name}_ipopt`,
      [...e.matches, raw(bit, 4, 4), raw(bit + 4, 4, 5, { neq: true }), ...udpFirstFragment(e.ip)],
    ]);
  }
  out.push(['vlan3', [raw(96, 16, 'vlan_types'), raw(128, 16, 'vlan_types'), raw(160, 16, 'vlan_types')]]);
  return out;
}

const DHCP6_DPORTS: Value = { lo: 546, hi: 547 };
/** ICMPv6 types: Router Solicitation and Advertisement (RFC 4861 4.1-4.2), and Redirect (4.5). */
const ND_ROUTER: Value = { lo: 133, hi: 134 };
const ND_REDIRECT = 137;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ICMPV6 = 58;

/** ethertype IPv6 at bit offset `bit`; the IPv6 encapsulations, as ENCAPS for IPv4 */
const ipv6At = (bit: number): Match => raw(bit, 16, 0x86dd, { hex: true });
const ENCAPS6: Encap[] = [
  { name: 'raw', matches: [ipv6At(96)], ip: 14 },
  { name: 'vlan', matches: [raw(96, 16, 'vlan_types'), ipv6At(128)], ip: 18 },
  { name: 'qinq', matches: [raw(96, 16, 'vlan_types'), raw(128, 16, 'vlan_types'), ipv6At(160)], ip: 22 },
];

function makeDhcp6Matches(): [string, Match[]][] {
  const out: [string, Match[]][] = [
    ['udp6_dport', [{ kind: 'udp', field: 'dport', value: DHCP6_DPORTS }]],
    ['udp6_sport', [{ kind: 'udp', field: 'sport', value: 547 }]],
    ['icmp6_router', [{ kind: 'icmp6', value: ND_ROUTER }]],
    ['icmp6_redirect', [{ kind: 'icmp6', value: ND_REDIRECT }]],
  ];
  for (const e of ENCAPS6) {
    const bit = e.ip * 8;
    const next = (proto: number): Match => raw(bit + 48, 8, proto); // next header, byte 6
    const l4 = bit + 320; // the header right after the fixed 40 bytes
    out.push([`${e.name}6_dport`, [...e.matches, next(IPPROTO_UDP), raw(l4 + 16, 16, DHCP6_DPORTS)]]);
    out.push([`${e.name}6_sport`, [...e.matches, next(IPPROTO_UDP), raw(l4, 16, 547)]]);
    out.push([`${e.name}6_router`, [...e.matches, next(IPPROTO_ICMPV6), raw(l4, 8, ND_ROUTER)]]);
    out.push([`${e.name}6_redirect`, [...e.matches, next(IPPROTO_ICMPV6), raw(l4, 8, ND_REDIRECT)]]);
  }
  for (const e of ENCAPS6.filter((x) => x.name !== 'raw')) {
    // tagged IPv6 whose first header is an extension header (or anything but TCP, UDP,
    // ICMPv6) cannot be read at a fixed offset: dropped, as tagged IPv4 with options is
    const bit = e.ip * 8 + 48;
    out.push([
      `${e.name}6_ext`,
      [
        ...e.matches,
        raw(bit, 8, IPPROTO_TCP, { neq: true }),
        raw(bit, 8, IPPROTO_UDP, { neq: true }),
        raw(bit, 8, IPPROTO_ICMPV6, { neq: true }),
      ],
    ]);
  }
  return out;
}

const DHCP_MATCHES = [...makeDhcpMatches(), ...makeDhcp6Matches()];

/**
 * The fence over already-validated NICs: per NIC, the spoof rule and a jump in
 * prerouting, a jump in postrouting, and the DHCP drops in nic<i>_in and nic<i>_out.
 */
export function fenceModel(nics: FenceNic[]): FenceModel {
  const rules: Rule[] = [];
  const pre: Rule[] = [];
  const post: Rule[] = [];
  nics.forEach((n, i) => {
    pre.push({
      chain: 'prerouting',
      matches: [
        { kind: 'ifname', dir: 'iif', name: n.tap },
        { kind: 'ether_saddr', neq: true, mac: n.guestMac },
      ],
      counter: `nic${i}_spoof`,
    });
    // the guest is no router: its RAs and redirects reach neither the pod network (nic_out
    // drops them too) nor the pod netns on the bridge
    pre.push({
      chain: 'prerouting',
      matches: [
        { kind: 'ifname', dir: 'iif', name: n.tap },
        { kind: 'icmp6', value: 134 },
      ],
      counter: `nic${i}_guest_ra`,
    });
    pre.push({
      chain: 'prerouting',
      matches: [
        { kind: 'ifname', dir: 'iif', name: n.tap },
        { kind: 'icmp6', value: ND_REDIRECT },
      ],
      counter: `nic${i}_guest_redirect`,
    });
    pre.push({ chain: 'prerouting', matches: [{ kind: 'ifname', dir: 'iif', name: n.veth }], jump: `nic${i}_in` });
    post.push({ chain: 'postrouting', matches: [{ kind: 'ifname', dir: 'oif', name: n.veth }], jump: `nic${i}_out` });
  });
  rules.push(...pre, ...post);
  nics.forEach((n, i) => {
    const inChain = `nic${i}_in`;
    const outChain = `nic${i}_out`;
    rules.push({
      chain: inChain,
      matches: [{ kind: 'ether_saddr', neq: false, mac: n.guestMac }],
      counter: `${inChain}_guestmac`,
    });
    for (const [suffix, matches] of dhcpMatches())
      rules.push({ chain: inChain, matches, counter: `${inChain}_${suffix}` });
    for (const [suffix, matches] of dhcpMatches())
      rules.push({ chain: outChain, matches, counter: `${outChain}_${suffix}` });
  });
  const chains: Chain[] = [
    { name: 'prerouting', hook: 'prerouting' },
    { name: 'postrouting', hook: 'postrouting' },
    ...nics.flatMap((_n, i) => [{ name: `nic${i}_in` }, { name: `nic${i}_out` }]),
  ];
  // counters in rule order as the rules were written before: per NIC spoof, in, out
  const counters = nics.flatMap((_n, i) =>
    rules.filter((r) => r.counter?.startsWith(`nic${i}_`)).map((r) => r.counter!),
  );
  return { chains, counters, rules };
}
