// `tapctl describe`'s picture of a masquerade NIC: the pod interface keeps its
// addresses, the guest sits on its own bridge behind the NAT tables (ip, ip6). Pure.
import type { GuestNic } from '../../protocol';

export function renderMasquerade(n: GuestNic, link: (name: string) => string, lease: string): string[] {
  const m = n.masquerade!;
  const v6 = m.ipv6;
  const v4 = n.ip !== undefined;
  const tables = [...(v4 ? ['ip'] : []), ...(v6 ? ['ip6'] : [])].join(' + ');
  const bridgeAddrs = [
    ...(v4 ? [`${n.gateway}/${n.prefixLen} (${m.guestCidr}), route_localnet, DHCP server`] : []),
    ...(v6 ? [`${v6.bridgeIp} (${v6.guestCidr}), ${v6.router}: DHCPv6 server, router advertisements`] : []),
  ];
  const guest = [
    ...(v4 ? [`${n.ip}/${n.prefixLen}  gw ${n.gateway}`] : []),
    ...(v6 ? [`${v6.guestIp}  gw ${v6.router}`] : []),
  ].join('  ');
  return [
    `  pod network ══ ${n.veth.padEnd(6)} ${link(n.veth)}   pod interface, untouched: ${m.podIps.join(', ')}`,
    `                    │   NAT table ${tables} ${m.table} (forwarding on)`,
    `                 ${n.bridge.padEnd(6)} ${link(n.bridge)}   ${bridgeAddrs[0] ?? ''}`,
    ...bridgeAddrs.slice(1).map((a) => `                 ${''.padEnd(6)} ${''.padEnd(link(n.bridge).length)}   ${a}`),
    `                    │`,
    `                 ${n.tap.padEnd(6)} ${link(n.tap)}   vnet_hdr, queues ${n.queues}`,
    `                    ║ fd → vmwrapper → QEMU ${n.model}`,
    `                 guest  ${n.mac}  ${guest}  mtu ${n.mtu}`,
    `  lease: ${lease}`,
    `  NAT (${m.rules.length} rules):`,
    ...m.rules.map((r) => `    ${r}`),
  ];
}
