// `tapctl describe`'s picture of a slirp NIC: nothing in the pod netns but the pod
// interface; QEMU's user network and its port forwards. Pure.
import type { GuestNic } from '../../protocol';

export function renderSlirp(n: GuestNic, link: (name: string) => string): string[] {
  const s = n.slirp!;
  return [
    `  pod network ══ ${n.veth.padEnd(6)} ${link(n.veth)}   pod interface, untouched: ${s.podIp}`,
    `                    ║ QEMU -netdev user (slirp, in the emulator's process; no tap, no fd, no DHCP server here)`,
    `                 guest  ${n.mac}  ${n.ip}/${n.prefixLen}  gw ${n.gateway} (slirp's own DHCP)`,
    `  forwards: ${s.forwards.length ? s.forwards.join(', ') : 'none'}`,
  ];
}
