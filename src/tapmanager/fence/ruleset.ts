// The fence as an nft script (pure): the readable form of the policy in model.ts, what
// `nft list table bridge tapwire` shows in a pod and what TAPWIRE_NFT=lib|cli applies
// (setup sends the same table as a netlink batch, batch.ts). One bridge-family table in
// the pod netns:
//
//   prerouting  (every frame entering a bridge port, before forward/local delivery)
//     iifname <tap>  ether saddr != <guest MAC>      drop  nic<i>_spoof
//     iifname <tap>  ICMPv6 type 134 / 137           drop  nic<i>_guest_ra / _guest_redirect
//     iifname <veth> jump nic<i>_in
//   nic<i>_in
//     ether saddr == <guest MAC>                     drop  nic<i>_in_guestmac
//     <DHCP, DHCPv6, RS/RA, redirect, any encap>     drop  nic<i>_in_<match>
//   postrouting (every frame leaving a bridge port, forwarded from the tap or sent by br0)
//     oifname <veth> jump nic<i>_out
//   nic<i>_out
//     <DHCP, DHCPv6, RS/RA, redirect, any encap>     drop  nic<i>_out_<match>
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
//
// IPv6 the same way (the guest gets its IPv6 from the bridge: DHCPv6 and RAs, src/dhcp6 and
// src/ndp): DHCPv6 is UDP to port 546 or 547, or from 547 (udp6_*, and raw6/vlan6/qinq6_*
// at fixed offsets past the 40-byte header); router discovery is ICMPv6 133-134 (RS, RA) and
// 137 (redirect) (icmp6_*, *6_router, *6_redirect). The kernel's parse walks extension
// headers and takes a first fragment's ports; at fixed offsets, a tagged IPv6 frame whose
// first header is not TCP, UDP or ICMPv6 (an extension header) is dropped whatever it
// carries (*6_ext), as tagged IPv4 with options is. Neighbour solicitations and
// advertisements (135, 136) pass: the guest resolves the pod's real gateway through them.
// So the bridge's RAs and DHCPv6 never leave through the veth, a rogue RA, redirect or
// DHCPv6 server behind the veth reaches neither the guest nor br0, and the guest's own RAs
// and redirects are dropped as they enter (guest_ra, guest_redirect), before the pod netns
// on br0 could take a route from them.
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
import { dhcpMatches, fenceModel, type Match, type Rule, type Value, VLAN_SET } from './model';
import type { FenceNic } from './types';
import { checkNics, checkTable } from './validate';

function valueText(v: Value, hex: boolean | undefined, bits: number): string {
  if (v === 'vlan_types') return `@${VLAN_SET.name}`;
  if (typeof v === 'object') return `${v.lo}-${v.hi}`;
  return hex ? `0x${v.toString(16).padStart(bits / 4, '0')}` : String(v);
}

/** One match in nft syntax. */
export function matchText(m: Match): string {
  switch (m.kind) {
    case 'ifname':
      return `${m.dir}name "${m.name}"`;
    case 'ether_saddr':
      return `ether saddr ${m.neq ? '!= ' : ''}${m.mac}`;
    case 'udp':
      return `udp ${m.field} ${valueText(m.value, false, 16)}`;
    case 'icmp6':
      // not `icmpv6 type`: in a bridge table nft would add `ether type ip6`, which a tag
      // (offloaded or not) hides; the l4proto dependency alone is what the kernel's parse gives
      return `meta l4proto ipv6-icmp @th,0,8 ${valueText(m.value, false, 8)}`;
    case 'raw':
      return `@ll,${m.bit},${m.len} ${m.neq ? '!= ' : ''}${valueText(m.value, m.hex, m.len)}`;
  }
}

function ruleText(r: Rule): string {
  const verdict = r.jump ? `jump ${r.jump}` : `counter name "${r.counter!}" drop`;
  return `    ${r.matches.map(matchText).join(' ')} ${verdict}`;
}

/** The counter names of a fence over `nics`, in rule order. */
export function fenceCounterNames(nics: FenceNic[]): string[] {
  return fenceModel(checkNics(nics)).counters;
}

/** The DHCP matches of one direction as nft text, keyed by counter suffix (for tests and docs). */
export function dhcpMatchTexts(): [string, string][] {
  return dhcpMatches().map(([k, ms]) => [k, ms.map(matchText).join(' ')]);
}

/**
 * The nft script that (re)defines the fence in one transaction: the table is added if
 * missing and flushed, then every chain and rule is defined again. Named counters that
 * already exist keep their values across a re-apply.
 */
export function fenceRuleset(table: string, nics: FenceNic[]): string {
  const t = checkTable(table);
  const checked = checkNics(nics);
  const model = fenceModel(checked);
  const hex = VLAN_SET.elements.map((e) => `0x${e.toString(16)}`).join(', ');
  const lines = [
    `add table bridge ${t}`,
    `flush table bridge ${t}`,
    `table bridge ${t} {`,
    `  set ${VLAN_SET.name} { typeof @ll,96,${VLAN_SET.bits}; elements = { ${hex} } }`,
  ];
  for (const c of model.counters) lines.push(`  counter ${c} { }`);
  for (const c of model.chains) {
    lines.push(`  chain ${c.name} {`);
    if (c.hook) lines.push(`    type filter hook ${c.hook} priority filter; policy accept;`);
    for (const r of model.rules.filter((x) => x.chain === c.name)) {
      const nic = /^nic(\d+)_spoof$/.exec(r.counter ?? '');
      if (nic) {
        const n = checked[Number(nic[1])]!;
        lines.push(`    # nic${nic[1]}: tap ${n.tap} (guest ${n.guestMac}), veth ${n.veth}, bridge ${n.bridge}`);
      }
      lines.push(ruleText(r));
    }
    lines.push('  }');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}
