// `tapctl describe`'s picture of a macvtap NIC: the guest straight on the pod interface. Pure.
import type { GuestNic } from '../../protocol';

export function renderMacvtap(n: GuestNic, link: (name: string) => string): string[] {
  const m = n.macvtap!;
  return [
    `  L2 segment ══ ${n.veth.padEnd(6)} ${link(n.veth)}   pod interface (lower device)`,
    `                    │   macvtap, ${m.mode} mode: no bridge, no address, no DHCP server, no fence`,
    `                 ${n.tap.padEnd(6)} ${link(n.tap)}   ${m.device}, vnet_hdr, queues ${n.queues}`,
    `                    ║ fds → vmwrapper → QEMU ${n.model}`,
    `                 guest  ${n.mac}  whatever the segment offers  mtu ${n.mtu}`,
  ];
}
