// Bench suite 'bindings' (issue 18): setup/teardown p50 of a one-NIC sandbox per binding
// (passt's setup: until passt serves on its connected socket pair)
// through the daemon, interleaved round by round on one daemon and one pod (target:
// masquerade <= 1.3x bridge), a dual-stack masquerade (a second pod with an IPv6
// address too: ip + ip6 tables in the batch, IPv6 forwarding, DHCPv6 server and RA
// advertiser) next to them, and the masquerade NAT table's own apply time (one nf_tables
// netlink batch from a pool thread in the netns; IPv4 and dual-stack), next to the
// fence's, in the same run.
import { applyFence, removeFence } from '../src/tapmanager/fence';
import { applyNat, removeNat } from '../src/tapmanager/bindings/masquerade/nat';
import { makePod, type Pod } from '../test/helpers/pod';
import { benchNetns, breathe, dropNetns } from './resources';
import { startDaemon, stopDaemon, timeSetupTeardown } from './setup';
import { atMost, fmt, ratio, summarize, type SuiteResult } from './table';

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

function pod(ipv6 = false, net = 180 + Math.floor(Math.random() * 60)): Pod {
  const node = benchNetns('node');
  const p = benchNetns('pod');
  node.ip('link', 'add', 'cni0', 'mtu', '1450', 'type', 'bridge');
  node.ip('addr', 'add', `10.${net}.0.1/24`, 'dev', 'cni0');
  node.ip('link', 'set', 'cni0', 'up');
  return makePod({ net, node, pod: p, ipv6 });
}

export async function runBindingsSuite(opts: { rounds?: number } = {}): Promise<SuiteResult> {
  const rounds = opts.rounds ?? 40;
  const d = await startDaemon();
  const p = pod();
  const p6 = pod(true, p.ip.split('.')[1] === '250' ? 251 : 250); // dual-stack: fd00:250::2/64 beside 10.250.0.2
  // an L2 interface for macvtap: net2, a veth to a segment netns
  const seg = benchNetns('seg');
  seg.ip('link', 'add', 'l2peer', 'type', 'veth', 'peer', 'name', 'net2', 'netns', p.pod.name);
  p.pod.ip('link', 'set', 'net2', 'up');
  const nic = (binding: string, ports?: { port: number; protocol: 'TCP' }[], on: Pod = p) => ({
    netnsPath: on.pod.path,
    nics: [{ name: 'default', binding, podInterface: 'eth0', cniResult: on.cniResult, ...(ports ? { ports } : {}) }],
  });
  const l2 = { netnsPath: p.pod.path, nics: [{ name: 'seg', binding: 'macvtap', podInterface: 'net2' }] };
  const shapes = [
    { what: 'bridge', req: nic('bridge') },
    { what: 'masquerade (all ports)', req: nic('masquerade') },
    {
      what: 'masquerade (8 listed ports)',
      req: nic(
        'masquerade',
        Array.from({ length: 8 }, (_x, i) => ({ port: 8000 + i, protocol: 'TCP' as const })),
      ),
    },
    { what: 'slirp (nothing built in the pod)', req: nic('slirp', [{ port: 22, protocol: 'TCP' }]) },
    { what: 'macvtap (bridge mode, on net2)', req: l2 },
    { what: 'masquerade dual-stack (all ports; IPv4 + IPv6)', req: nic('masquerade', undefined, p6) },
    { what: 'bridge dual-stack (IPv4 + IPv6)', req: nic('bridge', undefined, p6) },
    // setup answers once passt serves on its connected pair: the time to a connected socket
    { what: 'passt (to a serving passt on a connected pair)', req: nic('passt', [{ port: 8080, protocol: 'TCP' }]) },
  ];
  const samples = shapes.map(() => ({ setup: [] as number[], teardown: [] as number[] }));
  const nat: number[] = [];
  const nat6: number[] = [];
  const fence: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      await timeSetupTeardown(d, shapes, samples, 'b');
      // the NAT batch alone and the fence batch alone, in the same (idle) pod netns
      const n = { podInterface: 'eth0', bridge: 'br0', guestIp: '10.0.2.2', gatewayIp: '10.0.2.1', ports: [] };
      let t = process.hrtime.bigint();
      await applyNat(p.pod.path, 'twbench_nat', n);
      nat.push(ms(t));
      const n6 = { ...n, family: 6 as const, guestIp: 'fd10:0:2::2', gatewayIp: 'fd10:0:2::1' };
      t = process.hrtime.bigint();
      await applyNat(p6.pod.path, 'twbench_nat', [n, n6]);
      nat6.push(ms(t));
      await removeNat(p6.pod.path, 'twbench_nat');
      t = process.hrtime.bigint();
      await applyFence(p.pod.path, 'twbench', [{ bridge: 'br0', veth: 'eth0', tap: 'tap0', guestMac: p.mac }]);
      fence.push(ms(t));
      await removeNat(p.pod.path, 'twbench_nat');
      await removeFence(p.pod.path, 'twbench');
      await breathe();
    }
  } finally {
    await stopDaemon(d);
    dropNetns(p.pod, p.node, seg, p6.pod, p6.node);
  }
  const sums = samples.map((x) => ({ setup: summarize(x.setup), teardown: summarize(x.teardown) }));
  const natS = summarize(nat);
  const nat6S = summarize(nat6);
  const fenceS = summarize(fence);
  const rows = [
    ...shapes.map((s, k) => [
      s.what,
      fmt(sums[k]!.setup.p50),
      fmt(sums[k]!.setup.p99),
      fmt(sums[k]!.teardown.p50),
      fmt(sums[k]!.teardown.p99),
    ]),
    ['masquerade NAT table alone (one batch)', fmt(natS.p50), fmt(natS.p99), '', ''],
    ['masquerade NAT tables alone, ip + ip6 (one batch)', fmt(nat6S.p50), fmt(nat6S.p99), '', ''],
    ['bridge fence alone (one batch), same netns', fmt(fenceS.p50), fmt(fenceS.p99), '', ''],
  ];
  const masq = sums[1]!.setup.p50 / sums[0]!.setup.p50;
  return {
    tables: [
      {
        title: `Setup/teardown of one NIC per binding (ms; tapmanager daemon over its control socket; ${rounds} interleaved rounds)`,
        columns: ['what', 'setup p50', 'setup p99', 'teardown p50', 'teardown p99'],
        rows,
        notes: [
          `masquerade vs bridge (setup p50): ${ratio(sums[1]!.setup.p50, sums[0]!.setup.p50)}; ` +
            `with 8 listed ports: ${ratio(sums[2]!.setup.p50, sums[0]!.setup.p50)}; ` +
            `slirp: ${ratio(sums[3]!.setup.p50, sums[0]!.setup.p50)}; macvtap: ${ratio(sums[4]!.setup.p50, sums[0]!.setup.p50)}; ` +
            `dual-stack masquerade: ${ratio(sums[5]!.setup.p50, sums[6]!.setup.p50)} of dual-stack bridge, ` +
            `${ratio(sums[5]!.setup.p50, sums[1]!.setup.p50)} of IPv4 masquerade; ` +
            `passt: ${ratio(sums[7]!.setup.p50, sums[0]!.setup.p50)}.`,
          'dual-stack masquerade adds to IPv4 masquerade: the ip6 table in the same batch, two bridge addresses ' +
            '(no DAD), five IPv6 sysctls (tap, bridge, forwarding) and its reads of forwarding, and the DHCPv6 ' +
            'server and RA advertiser (as dual-stack bridge does).',
          'passt: a socket pair and passt forked in the pod netns (setpriv to nobody, then passt reads the pod ' +
            'interface, binds the listed ports and drops every capability); setup answers once it serves. ' +
            'Teardown: SIGTERM and the wait for its exit.',
          'masquerade: a bridge and a tap (no veth change), two sysctls, the NAT table as one nf_tables batch; ' +
            'bridge: the veth stripped and bridged, the fence batch. Both start a DHCP server.',
          'Data path (not measurable here: no KVM, no vhost-net): bridge and masquerade hand QEMU the same ' +
            'multiqueue-capable vnet_hdr tap (masquerade adds routing and conntrack/NAT in the pod netns per packet); ' +
            'macvtap hands /dev/tapN fds (vnet_hdr, one per queue, vhost-capable) with no bridge on the path; ' +
            "slirp copies every packet through QEMU's user-mode stack (no offloads, no vhost, no multiqueue); " +
            'passt copies every packet through its own process over a Unix stream socket, translating L2 frames to ' +
            'L4 sockets (one queue, no vnet header, no vhost; the host kernel does the TCP).',
        ],
      },
    ],
    targets: [atMost('bindings', 'setup p50: masquerade vs bridge', masq, 1.3)],
    data: {
      rounds,
      nat: natS,
      nat6: nat6S,
      fence: fenceS,
      ...Object.fromEntries(shapes.map((s, k) => [s.what, sums[k]])),
    },
  };
}
