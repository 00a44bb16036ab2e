// The DHCP bench's namespaces (bench/dhcp.ts). Each sandbox is a netns with br0
// (169.254.254.2/24) and a veth "tap0" on it whose peer is the guest's end. Per server
// (tapwire, dnsmasq, the Node floor) there is a set of sandboxes for the many-sandbox rows,
// their peers in one client netns of the set where the bench's own clients sit, and one
// probe sandbox whose peer is alone in a netns of its own (a broadcast reply is matched
// against every port-68 socket of its netns, and the kernel walks them all). Both ends know
// each other's MAC without ARP (permanent neighbours: 2000 sandboxes' dynamic entries would
// overflow the kernel's neighbour table, gc_thresh3 = 1024, and no exchange waits on ARP).
import { execFileSync } from 'node:child_process';
import type { StaticLease } from '../src/dhcp/server';
import { makeLease } from '../test/fixtures/dhcp-net';
import type { TestNetns } from '../test/helpers/netns';
import { benchNetns, breathe } from './resources';

export type Which = 'tapwire' | 'dnsmasq' | 'echo';
export const SERVERS: readonly Which[] = ['tapwire', 'dnsmasq', 'echo'];
export const SERVER_ID = '169.254.254.2';

export interface Sandbox {
  ns: TestNetns;
  ifname: string;
  lease: StaticLease;
}

export interface Topology {
  /** per server: the many-sandbox rows' sandboxes (the Node floor has none) and their client netns */
  sets: Record<Which, { client?: TestNetns; sandboxes: Sandbox[] }>;
  /** per server: the probe's sandbox and the netns its peer is alone in */
  probes: Record<Which, { client: TestNetns; sandbox: Sandbox }>;
}

/** Every sandbox a server is started for: its many-sandbox set and its probe's. */
export const served = (t: Topology, w: Which): Sandbox[] => [...t.sets[w].sandboxes, t.probes[w].sandbox];

/** Every netns of the topology. */
export function allNetns(t: Topology): TestNetns[] {
  return SERVERS.flatMap((w) => [
    ...(t.sets[w].client ? [t.sets[w].client] : []),
    t.probes[w].client,
    ...served(t, w).map((s) => s.ns),
  ]);
}

const hex = (n: number): string => n.toString(16).padStart(2, '0');

function leaseFor(i: number): StaticLease {
  const net = `10.${100 + Math.floor(i / 250)}.${i % 250}`;
  return makeLease({
    mac: `02:42:0a:${hex(i >> 8)}:${hex(i & 255)}:05`,
    ip: `${net}.5`,
    routers: [`${net}.1`],
    classlessRoutes: [
      { dst: `${SERVER_ID}/32`, gw: '0.0.0.0' },
      { dst: `${net}.1/32`, gw: '0.0.0.0' },
      { dst: '10.96.0.0/12', gw: `${net}.1` },
      { dst: '0.0.0.0/0', gw: `${net}.1` },
    ],
    hostname: `pod-${i}`,
  });
}

function ipBatch(ns: TestNetns, lines: string[]): void {
  execFileSync('ip', ['-n', ns.name, '-batch', '-'], {
    input: `${lines.join('\n')}\n`,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Sandbox i: its netns, and the `ip` lines that set up its peer `ifname` (moved into peerNs). */
function buildSandbox(i: number, ifname: string, peerNs: TestNetns): { sandbox: Sandbox; peerLines: string[] } {
  const ns = benchNetns('dsrv');
  const lease = leaseFor(i);
  const brMac = `02:42:a9:fe:${hex(i >> 8)}:${hex(i & 255)}`;
  ipBatch(ns, [
    `link add br0 address ${brMac} type bridge`,
    `addr add ${SERVER_ID}/24 dev br0`,
    'link set br0 up',
    `link add tap0 mtu 1450 type veth peer name ${ifname} netns ${peerNs.name}`,
    'link set tap0 master br0 up',
    // as tapmanager does: the guest's address resolves without ARP from br0
    `neigh replace ${lease.ip} lladdr ${lease.mac} dev br0 nud permanent`,
  ]);
  const peerLines = [
    `link set ${ifname} address ${lease.mac} mtu 1450 up`,
    `addr add ${lease.ip}/24 dev ${ifname} noprefixroute`,
    `neigh replace ${SERVER_ID} lladdr ${brMac} dev ${ifname} nud permanent`,
  ];
  return { sandbox: { ns, ifname, lease }, peerLines };
}

/** `many` sandboxes for tapwire's set and as many for dnsmasq's, and a probe sandbox per server. */
export async function buildTopology(many: number): Promise<Topology> {
  let next = 0;
  const set = async (label: string): Promise<{ client: TestNetns; sandboxes: Sandbox[] }> => {
    const client = benchNetns(label);
    const sandboxes: Sandbox[] = [];
    const lines: string[] = [];
    for (let i = 0; i < many; i++) {
      const { sandbox, peerLines } = buildSandbox(next++, `c${i}`, client);
      lines.push(...peerLines);
      sandboxes.push(sandbox);
      await breathe();
    }
    ipBatch(client, lines);
    return { client, sandboxes };
  };
  const probe = (): { client: TestNetns; sandbox: Sandbox } => {
    const client = benchNetns('dprb');
    const { sandbox, peerLines } = buildSandbox(next++, 'probe0', client);
    ipBatch(client, peerLines);
    return { client, sandbox };
  };
  const sets = { tapwire: await set('dclt'), dnsmasq: await set('dcld'), echo: { sandboxes: [] } };
  return { sets, probes: { tapwire: probe(), dnsmasq: probe(), echo: probe() } };
}
