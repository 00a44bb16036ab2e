// Pod-shaped namespaces built by hand, the way CNI plugins leave them, plus the CNI
// result describing them. A "node" netns holds the node side; the pod gets eth0.
import { randomBytes } from 'node:crypto';
import type { CniResult } from '../../src/cni/result';
import { createNetns, TestNetns } from './netns';

export interface Pod {
  node: TestNetns;
  pod: TestNetns;
  ip: string;
  gw: string;
  prefixLen: number;
  mac: string;
  cniResult: CniResult;
  /** node-side veth name */
  hostVeth: string;
}

export interface PodOptions {
  /** second octet of 10.X.0.0/24 (random if not given) */
  net?: number;
  mtu?: number;
  ifname?: string;
  ipv6?: boolean;
  /** 'bridge': subnet on-link via a node bridge; 'ptp': GW/32 scope link + SUBNET via GW */
  shape?: 'bridge' | 'ptp';
  /** reuse a node netns (and its cni0 bridge) for a second pod */
  node?: TestNetns;
  host?: number;
  /** add the interface to an existing pod netns (multi-NIC) */
  pod?: TestNetns;
}

function mac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function makePod(o: PodOptions = {}): Pod {
  const net = o.net ?? 100 + (randomBytes(1)[0]! % 100);
  const shape = o.shape ?? 'bridge';
  const ifname = o.ifname ?? 'eth0';
  const mtu = o.mtu ?? 1450;
  const host = o.host ?? 2;
  const node = o.node ?? createNetns('node');
  const pod = o.pod ?? createNetns('pod');
  const gw = `10.${net}.0.1`;
  const ip = `10.${net}.0.${host}`;
  const hostVeth = `vh${net}x${host}${ifname.slice(-1)}`.slice(0, 15);
  const podMac = mac();
  node.ip('link', 'add', hostVeth, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', ifname, 'netns', pod.name);
  pod.ip('link', 'set', ifname, 'address', podMac, 'mtu', String(mtu), 'up');
  if (shape === 'bridge') {
    if (!o.node) {
      node.ip('link', 'add', 'cni0', 'mtu', String(mtu), 'type', 'bridge');
      node.ip('addr', 'add', `${gw}/24`, 'dev', 'cni0');
      node.ip('link', 'set', 'cni0', 'up');
    }
    node.ip('link', 'set', hostVeth, 'master', 'cni0', 'up');
    pod.ip('addr', 'add', `${ip}/24`, 'dev', ifname);
    if (ifname === 'eth0') pod.ip('route', 'add', 'default', 'via', gw, 'dev', ifname);
  } else {
    node.ip('addr', 'add', `${gw}/32`, 'dev', hostVeth);
    node.ip('link', 'set', hostVeth, 'up');
    node.ip('route', 'add', `${ip}/32`, 'dev', hostVeth, 'scope', 'link');
    pod.ip('addr', 'add', `${ip}/24`, 'dev', ifname, 'noprefixroute');
    pod.ip('route', 'add', `${gw}/32`, 'dev', ifname, 'scope', 'link');
    pod.ip('route', 'add', `10.${net}.0.0/24`, 'via', gw, 'dev', ifname);
    if (ifname === 'eth0') pod.ip('route', 'add', 'default', 'via', gw, 'dev', ifname);
  }
  if (o.ipv6) pod.ip('addr', 'add', `fd00:${net}::${host}/64`, 'dev', ifname, 'nodad');
  const cniResult: CniResult = {
    cniVersion: '1.0.0',
    interfaces: [
      { name: hostVeth, mac: mac() },
      { name: ifname, mac: podMac, sandbox: pod.path },
    ],
    ips: [{ address: `${ip}/24`, gateway: gw, interface: 1 }],
    routes: ifname === 'eth0' ? [{ dst: '0.0.0.0/0' }] : [],
    dns: { nameservers: [gw], search: ['pod.test.local'] },
  };
  return { node, pod, ip, gw, prefixLen: 24, mac: podMac, cniResult, hostVeth };
}

/** Everything about the pod's interfaces and routes that a teardown must restore. */
export function podState(pod: TestNetns): string {
  const links = pod
    .ip('-o', 'link', 'show')
    .split('\n')
    .map((l) =>
      l
        .replace(/^\d+: /, '')
        .replace(/ qdisc \S+/, '')
        .replace(/ state \S+/, '')
        .replace(/ group \S+/, '')
        .replace(/ qlen \d+/, ''),
    )
    .join('\n');
  const addrs = pod
    .ip('-o', 'addr', 'show')
    .split('\n')
    .map((l) => l.replace(/valid_lft \S+ preferred_lft \S+/, ''))
    .join('\n');
  const routes = pod.ip('route', 'show', 'table', 'all');
  return `${links}\n${addrs}\n${routes}`;
}
