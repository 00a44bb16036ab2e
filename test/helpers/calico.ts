// Pods wired the way Calico's CNI plugin wires them, on a node netns: a veth per pod
// whose node end answers ARP for everything (proxy ARP) and holds the pod's /32 route,
// the pod's address as a /32 with the link-local gateway 169.254.1.1 (and, dual-stack,
// a /128 with the default route via fe80::1 on the node end).
import type { CniResult } from '../../src/cni/result';
import { createNetns, type TestNetns } from './netns';

export const CALICO_GW = '169.254.1.1';
export const CALICO_GW6 = 'fe80::1';
export const CALICO_MTU = 1440;

export interface CalicoPod {
  pod: TestNetns;
  ip: string;
  /** dual-stack pods only */
  ip6: string;
  hostVeth: string;
  cniResult: CniResult;
}

/**
 * The node: forwarding on, and an uplink with a default route (proxy ARP answers only for
 * targets the node routes out of another interface).
 */
export function calicoNode(name: string, ipv6 = false): TestNetns {
  const node = createNetns(name);
  node.sh(`sysctl -qw net.ipv4.ip_forward=1${ipv6 ? ' net.ipv6.conf.all.forwarding=1' : ''}`);
  node.ip('link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1');
  node.ip('link', 'set', 'up0', 'up');
  node.ip('link', 'set', 'up1', 'up');
  node.ip('addr', 'add', '192.0.2.1/24', 'dev', 'up0');
  node.ip('route', 'add', 'default', 'via', '192.0.2.254', 'dev', 'up0');
  return node;
}

/**
 * Pod n on the node: netns and host veth named `<prefix><n>`, `<prefix><n>x`, address
 * 10.<net>.0.<n+4> (and fd00:<net>::<n+4> when dual-stack).
 */
export function calicoPod(
  node: TestNetns,
  n: number,
  o: { prefix: string; net: number; dualStack?: boolean },
): CalicoPod {
  const pod = createNetns(`${o.prefix}${n}`);
  const ip = `10.${o.net}.0.${n + 4}`;
  const ip6 = o.dualStack ? `fd00:${o.net}::${n + 4}` : '';
  const hostVeth = `${o.prefix}${n}x`;
  const mtu = String(CALICO_MTU);
  node.ip('link', 'add', hostVeth, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name);
  node.sh(`sysctl -qw net.ipv4.conf.${hostVeth}.proxy_arp=1 net.ipv4.neigh.${hostVeth}.proxy_delay=0`);
  node.ip('link', 'set', hostVeth, 'up');
  if (ip6) node.ip('addr', 'add', `${CALICO_GW6}/64`, 'dev', hostVeth, 'nodad');
  node.ip('route', 'add', `${ip}/32`, 'dev', hostVeth, 'scope', 'link');
  if (ip6) node.ip('-6', 'route', 'add', `${ip6}/128`, 'dev', hostVeth);
  pod.ip('link', 'set', 'eth0', 'mtu', mtu, 'up');
  pod.ip('addr', 'add', `${ip}/32`, 'dev', 'eth0');
  if (ip6) pod.ip('addr', 'add', `${ip6}/128`, 'dev', 'eth0', 'nodad');
  pod.ip('route', 'add', CALICO_GW, 'dev', 'eth0', 'scope', 'link');
  pod.ip('route', 'add', 'default', 'via', CALICO_GW, 'dev', 'eth0');
  if (ip6) pod.ip('-6', 'route', 'add', 'default', 'via', CALICO_GW6, 'dev', 'eth0');
  const mac = /link\/ether (\S+)/.exec(pod.ip('link', 'show', 'eth0'))![1]!;
  return {
    pod,
    ip,
    ip6,
    hostVeth,
    cniResult: {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', mac, sandbox: pod.path }],
      ips: [{ address: `${ip}/32`, interface: 0 }, ...(ip6 ? [{ address: `${ip6}/128`, interface: 0 }] : [])],
      dns: {
        nameservers: ['10.96.0.10', ...(ip6 ? ['fd00:96::a'] : [])],
        search: ['default.svc.cluster.local'],
      },
    },
  };
}
