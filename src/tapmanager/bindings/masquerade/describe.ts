// `tapctl describe`'s picture of a masquerade NIC: the pod interface keeps its
// addresses, the guest sits on its own bridge behind the NAT table. Pure.
import type { GuestNic } from '../../protocol';

export function renderMasquerade(n: GuestNic, link: (name: string) => string, lease: string): string[] {
  const m = n.masquerade!;
  return [
    `  pod network ══ ${n.veth.padEnd(6)} ${link(n.veth)}   pod interface, untouched: ${m.podIps.join(', ')}`,
    `                    │   NAT table ip ${m.table} (forwarding on)`,
    `                 ${n.bridge.padEnd(6)} ${link(n.bridge)}   ${n.gateway}/${n.prefixLen} (${m.guestCidr}), route_localnet, DHCP server`,
    `                    │`,
    `                 ${n.tap.padEnd(6)} ${link(n.tap)}   vnet_hdr, queues ${n.queues}`,
    `                    ║ fd → vmwrapper → QEMU ${n.model}`,
    `                 guest  ${n.mac}  ${n.ip}/${n.prefixLen}  gw ${n.gateway}  mtu ${n.mtu}`,
    `  lease: ${lease}`,
    `  NAT (${m.rules.length} rules):`,
    ...m.rules.map((r) => `    ${r}`),
  ];
}
