// The passt command line for one NIC, from its record. Pure.
// passt (Debian's, 2023-03) reads the pod interface's addresses and routes itself and
// hands them to the guest by its own ARP/DHCP/NDP/DHCPv6; tapwire gives it the interface
// (-i), the MTU, the DNS the pod has (-D/-S) and the listed ports (-t/-u), and the
// connected socket it serves the emulator on (--fd 3: fd 3 of the child).
import type { NicPort } from '../types';

/** The record of a passt NIC (NicRecord.passt). */
export interface PasstRecord {
  /** the uid and gid passt runs as: never root */
  uid: number;
  gid: number;
  /** the pod interface's addresses passt copies to the guest (what describe shows) */
  podIps: string[];
  dns: string[];
  search: string[];
  /** the running passt, when there is one: its pid and /proc/<pid>/stat start time */
  pid?: number;
  startTime?: string;
  /** the inode of passt's end of the socket pair (describe's `socket:[N]`) */
  socket?: number;
  /** what the guest will miss, found at plan (the pod's ping_group_range leaving passt's group out) */
  warnings?: string[];
}

/** The fd passt's end of the pair is in the child. */
export const PASST_FD = 3;

/** A passt port spec: "8080,9000-9010" for one protocol's listed ports; "none" without any. */
export function portSpec(ports: readonly NicPort[] | undefined, protocol: 'TCP' | 'UDP'): string {
  const mine = (ports ?? []).filter((p) => p.protocol === protocol);
  if (mine.length === 0) return 'none';
  return mine
    .map((p) => (p.endPort !== undefined && p.endPort !== p.port ? `${p.port}-${p.endPort}` : `${p.port}`))
    .join(',');
}

/** passt's argv (argv[0] is "passt"), for the NIC's pod interface, MTU and ports. */
export function passtArgv(nic: {
  veth: { ifname: string };
  mtu: number;
  ports?: NicPort[];
  passt?: PasstRecord;
}): string[] {
  const p = nic.passt!;
  const argv = ['passt', '--foreground', '--quiet', '--fd', String(PASST_FD), '--interface', nic.veth.ifname];
  argv.push('--mtu', String(nic.mtu));
  argv.push('--tcp-ports', portSpec(nic.ports, 'TCP'), '--udp-ports', portSpec(nic.ports, 'UDP'));
  if (p.dns.length) for (const d of p.dns) argv.push('--dns', d);
  else argv.push('--no-dhcp-dns');
  if (p.search.length) argv.push('--search', p.search.join(' '));
  else argv.push('--no-dhcp-search');
  return argv;
}

/**
 * What the child runs: setpriv drops to the NIC's uid/gid with no groups and only
 * CAP_NET_BIND_SERVICE (ambient, so passt can bind a listed port below 1024; passt drops
 * it once its ports are bound), then execs passt. The child is forked in the pod netns.
 */
export function childArgv(nic: Parameters<typeof passtArgv>[0]): { file: string; args: string[] } {
  const p = nic.passt!;
  return {
    file: 'setpriv',
    args: [
      `--reuid=${p.uid}`,
      `--regid=${p.gid}`,
      '--clear-groups',
      '--inh-caps=-all,+net_bind_service',
      '--ambient-caps=+net_bind_service',
      ...passtArgv(nic),
    ],
  };
}
