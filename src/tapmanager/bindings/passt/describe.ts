// `tapctl describe`'s picture of a passt NIC: the pod interface untouched, passt in the
// pod netns (its pid, user, socket and whether it runs), the emulator on the other end
// of the pair, and the forwards. Pure.
import type { GuestNic } from '../../protocol';

export function renderPasst(n: GuestNic & { warnings?: string[] }, link: (name: string) => string): string[] {
  const p = n.passt!;
  const state = p.running === undefined ? 'not supervised' : p.running ? 'running' : 'NOT RUNNING';
  const extra = [
    p.adopted ? 'adopted after a daemon restart' : '',
    p.restarts ? `restarted ${p.restarts}x` : '',
    p.lastExit ? `last exit: ${p.lastExit}` : '',
  ].filter(Boolean);
  return [
    `  pod network ══ ${n.veth.padEnd(6)} ${link(n.veth)}   pod interface, untouched: ${p.podIps.join(', ')}`,
    `                    │   no bridge, no NAT table, no DHCP server of tapwire's`,
    `                 passt  pid ${p.pid ?? '-'}  uid ${p.uid}  ${state}${extra.length ? `  (${extra.join('; ')})` : ''}`,
    `                    ║ ${p.socket ?? 'socket:[?]'} unix stream pair, emulator end ${p.emulatorEnd ?? 'unknown'} → vmwrapper → QEMU ${n.model} (-netdev stream)`,
    `                 guest  ${n.mac}  ${n.ip !== undefined ? `${n.ip}/${n.prefixLen}` : (n.ipv6 ?? []).join(',')}${n.gateway ? `  gw ${n.gateway}` : ''}  mtu ${n.mtu} (passt's own DHCP/NDP/DHCPv6)`,
    `  forwards: ${p.forwards.length ? p.forwards.join(', ') : 'none'}`,
    ...(n.warnings ?? []).map((w) => `  warning: ${w}`),
  ];
}
