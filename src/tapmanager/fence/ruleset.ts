// The fence as an nft script (pure). One bridge-family table in the pod netns:
//
//   prerouting  (every frame entering a bridge port, before forward/local delivery)
//     iifname <tap>  ether saddr != <guest MAC>      drop  nic<i>_spoof
//     iifname <veth> jump nic<i>_in
//   nic<i>_in
//     ether saddr == <guest MAC>                     drop  nic<i>_in_guestmac
//     <DHCP in any encapsulation>                    drop  nic<i>_in_<match>
//   postrouting (every frame leaving a bridge port, forwarded from the tap or sent by br0)
//     oifname <veth> jump nic<i>_out
//   nic<i>_out
//     <DHCP in any encapsulation>                    drop  nic<i>_out_<match>
//
// A frame of another port costs one comparison per NIC and hook, and the kernel gets
// the interface match once per NIC instead of once per rule (a transaction's cost grows
// with its expressions). For the same reason the two VLAN ethertypes are one named set,
// vlan_types, looked up at every tag offset, and the DHCP ports a range (67-68), not
// anonymous sets: nothing in the transaction is built per rule that could be shared.
//
// So no DHCP frame crosses the veth either way: the guest's and the local server's
// messages never reach the pod network, and a rogue server (or client) behind the veth
// reaches neither the guest nor the server on the bridge.
//
// "DHCP" is UDP with destination port 67 (to a server) or 68 (to a client), or source
// port 67 (from a server). It is matched twice, so neither match depends on the other:
//   * udp_*: the kernel's own parse (nft_do_chain_bridge sets the transport offset from
//     the IHL). It covers IP options, and one 802.1Q/802.1ad tag, because a port's
//     receive path moves the outer tag into skb metadata (skb_vlan_untag), leaving the
//     inner ethertype in the Ethernet header.
//   * raw/vlan/qinq_*: fixed offsets from the link-layer header (@ll), read as on the wire:
//     nft_payload rebuilds a tag kept in skb metadata, so the offsets hold whether or not
//     a tag was offloaded. Untagged, one tag and two tags (0x8100 or 0x88a8 each), with an
//     option-less IPv4 header (IHL 5). Tagged IPv4 UDP with options (IHL != 5) cannot be
//     read at a fixed offset, so it is dropped whatever its ports (*_ipopt); so is any
//     frame with three or more tags (*_vlan3). Neither is seen on a pod network.
// Fragments: only a first fragment (fragment offset 0; with MF set or not) carries the
// UDP header, so only it is matched and dropped; later fragments carry no ports, and
// without their first fragment they can never be reassembled into a DHCP message.
// Not covered: DHCPv6 (UDP 546/547) is not fenced; the guest gets no IPv6 from tapwire.
//
// The guest's MAC never legitimately arrives from the pod network. It does when the node
// side reflects the guest's own frames (the CNI bridge plugin's hairpinMode, kubelet's
// hairpin-veth): without the guestmac rule br0 would learn the guest behind the veth and
// drop every unicast frame to it, and the guest would see its own broadcasts (IPv6 DAD
// fails). Prerouting runs before the bridge learns a source address, so the drop keeps
// the forwarding table right.
//
// Every rule has its own named counter, nic<i>_<dir>_<match>, i being the NIC's index
// in the list; readFenceCounters returns them in this order.
import type { FenceNic } from './types';
import { checkNics, checkTable } from './validate';

/** The 802.1Q and 802.1ad tag ethertypes: a named set, declared once (see VLAN_SET_DECL). */
const VLAN_TYPES = '@vlan_types';
const VLAN_SET_DECL = 'set vlan_types { typeof @ll,96,16; elements = { 0x8100, 0x88a8 } }';
const DHCP_DPORTS = '67-68';

/** The ethertype chain leading to IPv4, and where the IP header starts (bytes). */
interface Encap {
  name: 'raw' | 'vlan' | 'qinq';
  match: string;
  ip: number;
}

const ENCAPS: Encap[] = [
  { name: 'raw', match: '@ll,96,16 0x0800', ip: 14 },
  { name: 'vlan', match: `@ll,96,16 ${VLAN_TYPES} @ll,128,16 0x0800`, ip: 18 },
  { name: 'qinq', match: `@ll,96,16 ${VLAN_TYPES} @ll,128,16 ${VLAN_TYPES} @ll,160,16 0x0800`, ip: 22 },
];

/** "IPv4, UDP, first fragment" at IP header offset `ip` (bytes from the link header). */
function udpFirstFragment(ip: number): string {
  const bit = ip * 8;
  // protocol is byte 9; the 13-bit fragment offset is bits 51..63 of the header
  return `@ll,${bit + 72},8 17 @ll,${bit + 51},13 0`;
}

/** The DHCP matches for one direction, keyed by their counter suffix. */
function dhcpMatches(): [string, string][] {
  const out: [string, string][] = [
    ['udp_dport', `udp dport ${DHCP_DPORTS}`],
    ['udp_sport', 'udp sport 67'],
  ];
  for (const e of ENCAPS) {
    const bit = e.ip * 8;
    const head = `${e.match} @ll,${bit},8 0x45 ${udpFirstFragment(e.ip)}`; // version 4, IHL 5
    out.push([`${e.name}_dport`, `${head} @ll,${bit + 176},16 ${DHCP_DPORTS}`]); // UDP at ip+20, dport at +2
    out.push([`${e.name}_sport`, `${head} @ll,${bit + 160},16 67`]);
  }
  for (const e of ENCAPS.filter((x) => x.name !== 'raw')) {
    const bit = e.ip * 8;
    out.push([`${e.name}_ipopt`, `${e.match} @ll,${bit},4 4 @ll,${bit + 4},4 != 5 ${udpFirstFragment(e.ip)}`]);
  }
  out.push(['vlan3', `@ll,96,16 ${VLAN_TYPES} @ll,128,16 ${VLAN_TYPES} @ll,160,16 ${VLAN_TYPES}`]);
  return out;
}

interface Rule {
  /** a hooked chain, or a NIC's own chain (nic<i>_in, nic<i>_out) */
  chain: string;
  counter: string;
  text: string;
}

function rulesFor(nics: FenceNic[]): Rule[] {
  const rules: Rule[] = [];
  nics.forEach((n, i) => {
    rules.push({
      chain: 'prerouting',
      counter: `nic${i}_spoof`,
      text: `iifname "${n.tap}" ether saddr != ${n.guestMac}`,
    });
    rules.push({ chain: `nic${i}_in`, counter: `nic${i}_in_guestmac`, text: `ether saddr ${n.guestMac}` });
    for (const [suffix, match] of dhcpMatches()) {
      rules.push({ chain: `nic${i}_in`, counter: `nic${i}_in_${suffix}`, text: match });
    }
    for (const [suffix, match] of dhcpMatches()) {
      rules.push({ chain: `nic${i}_out`, counter: `nic${i}_out_${suffix}`, text: match });
    }
  });
  return rules;
}

/** The counter names of a fence over `nics`, in rule order. */
export function fenceCounterNames(nics: FenceNic[]): string[] {
  return rulesFor(checkNics(nics)).map((r) => r.counter);
}

/**
 * The nft script that (re)defines the fence in one transaction: the table is added if
 * missing and flushed, then every chain and rule is defined again. Named counters that
 * already exist keep their values across a re-apply.
 */
export function fenceRuleset(table: string, nics: FenceNic[]): string {
  const t = checkTable(table);
  const checked = checkNics(nics);
  const rules = rulesFor(checked);
  const lines = [`add table bridge ${t}`, `flush table bridge ${t}`, `table bridge ${t} {`, `  ${VLAN_SET_DECL}`];
  for (const r of rules) lines.push(`  counter ${r.counter} { }`);
  const drop = (r: Rule): string => `    ${r.text} counter name "${r.counter}" drop`;
  const chain = (name: string, body: string[]): void => {
    lines.push(`  chain ${name} {`, ...body, '  }');
  };
  chain('prerouting', [
    '    type filter hook prerouting priority filter; policy accept;',
    ...checked.flatMap((n, i) => [
      `    # nic${i}: tap ${n.tap} (guest ${n.guestMac}), veth ${n.veth}, bridge ${n.bridge}`,
      ...rules.filter((r) => r.chain === 'prerouting' && r.counter.startsWith(`nic${i}_`)).map(drop),
      `    iifname "${n.veth}" jump nic${i}_in`,
    ]),
  ]);
  chain('postrouting', [
    '    type filter hook postrouting priority filter; policy accept;',
    ...checked.map((n, i) => `    oifname "${n.veth}" jump nic${i}_out`),
  ]);
  checked.forEach((_n, i) => {
    for (const name of [`nic${i}_in`, `nic${i}_out`]) chain(name, rules.filter((r) => r.chain === name).map(drop));
  });
  lines.push('}');
  return lines.join('\n') + '\n';
}
