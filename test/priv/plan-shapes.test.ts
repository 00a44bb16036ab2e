// The route planner on pod shapes built by hand in real namespaces (no Calico package
// exists here): the Calico shape (IP/32, 169.254.1.1 scope link, default via it, node
// side answering by proxy ARP) and a "mixed" pod with several gateways, a backup
// default route, a metric tie, an onlink gateway, an IPv4-via-IPv6 route, a policy
// table route, a multipath route and a TOS route. Each run checks the committed
// fixture (TAPWIRE_UPDATE_FIXTURES=1 rewrites it) and restores the routes after the
// address is stripped and re-added.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { NetlinkHandle } from '../../src/net/netlink';
import { planGuestNetwork } from '../../src/tapmanager/plan/guest-network';
import { readVethSnapshot } from '../../src/tapmanager/plan/read-veth';
import { planRouteRestore } from '../../src/tapmanager/plan/restore-routes';
import { restoreRoutes } from '../../src/tapmanager/topology';
import type { CniResult } from '../../src/cni/result';
import type { VethSnapshot } from '../../src/tapmanager/snapshot';
import { FIXTURE_DIR, RouteFixture } from '../fixtures/routes/load';
import { createNetns, removeAllNetns, TestNetns } from '../helpers/netns';
import { describePrivileged } from '../helpers/privileged';

const SID = '169.254.254.2';
const UPDATE = process.env.TAPWIRE_UPDATE_FIXTURES === '1';

function stable(snap: VethSnapshot): unknown {
  return {
    ifname: snap.ifname,
    mtu: snap.mtu,
    up: snap.up,
    addrs: snap.addrs.filter((a) => a.family === 4).map(({ validLft: _v, preferredLft: _p, ...a }) => a),
    routes: snap.routes.filter((r) => r.family === 4),
  };
}

function checkFixture(name: string, fixture: RouteFixture): void {
  const file = path.join(FIXTURE_DIR, `${name}.json`);
  if (UPDATE) {
    fs.writeFileSync(file, `${JSON.stringify(fixture, null, 2)}\n`);
    return;
  }
  const committed = JSON.parse(fs.readFileSync(file, 'utf8')) as RouteFixture;
  expect(stable(fixture.snapshot)).toEqual(stable(committed.snapshot));
}

async function stripAndRestore(ns: TestNetns, snap: VethSnapshot): Promise<ReturnType<typeof planRouteRestore>> {
  const a = snap.addrs.find((x) => x.family === 4)!;
  ns.ip('addr', 'del', `${a.address}/${a.prefixLen}`, 'dev', 'eth0');
  ns.ip('addr', 'add', `${a.address}/${a.prefixLen}`, ...(a.broadcast ? ['brd', a.broadcast] : []), 'dev', 'eth0');
  const current = (await readVethSnapshot(ns.path, 'eth0')).routes;
  const plan = planRouteRestore(snap, current);
  const nl = NetlinkHandle.open(ns.path);
  try {
    // tapmanager's own applier (the one a teardown runs)
    expect(await restoreRoutes(nl, snap.ifindex, snap, current)).toEqual({
      errors: [],
      warnings: plan.unrestorable.map((u) => expect.stringContaining(u.reason)),
    });
  } finally {
    nl.close();
  }
  return plan;
}

describePrivileged('route planner on hand-built pod shapes', () => {
  afterEach(() => removeAllNetns());

  it('Calico: /32 address, link-local gateway by proxy ARP', async () => {
    const node = createNetns('calinode');
    const pod = createNetns('calipod');
    node.ip('link', 'add', 'cali0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name);
    node.sh('sysctl -qw net.ipv4.conf.cali0.proxy_arp=1 net.ipv4.ip_forward=1');
    node.ip('link', 'set', 'cali0', 'up');
    node.ip('route', 'add', '10.80.0.5/32', 'dev', 'cali0');
    // proxy ARP answers only for targets the node routes elsewhere: give it an uplink with a default route
    node.ip('link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1');
    node.ip('link', 'set', 'up0', 'up');
    node.ip('addr', 'add', '192.0.2.1/24', 'dev', 'up0');
    node.ip('route', 'add', 'default', 'via', '192.0.2.254', 'dev', 'up0');
    pod.ip('addr', 'add', '10.80.0.5/32', 'dev', 'eth0');
    pod.ip('link', 'set', 'eth0', 'mtu', '1440', 'up');
    pod.ip('route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link');
    pod.ip('route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0');
    // the node side answers for 169.254.1.1 by proxy ARP
    pod.sh('busybox ping -c 1 -W 1 169.254.1.1 >/dev/null 2>&1 || true');
    expect(pod.ip('neigh', 'show', '169.254.1.1')).toMatch(/lladdr/);

    const snap = await readVethSnapshot(pod.path, 'eth0');
    const cni: CniResult = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', mac: snap.mac, sandbox: pod.path }],
      ips: [{ address: '10.80.0.5/32', interface: 0 }],
      dns: { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local', 'svc.cluster.local'] },
    };
    const plan = planGuestNetwork({ veth: snap, cni, cniInterfaceIndex: 0, serverId: SID });
    expect(plan).toMatchObject({ ip: '10.80.0.5', prefixLen: 32, routers: ['169.254.1.1'], mtu: 1440 });
    expect(plan.classlessRoutes).toEqual([
      { dst: `${SID}/32`, gw: '0.0.0.0' },
      { dst: '169.254.1.1/32', gw: '0.0.0.0' },
      { dst: '0.0.0.0/0', gw: '169.254.1.1' },
    ]);
    expect(plan).toMatchObject({ unexpressible: [], warnings: [] });
    checkFixture('calico', {
      description: 'Calico shape built by hand: pod 10.80.0.5/32, 169.254.1.1 dev eth0 scope link, default via it',
      capturedBy: 'test/priv/plan-shapes.test.ts',
      cniInterfaceIndex: 0,
      cniResult: cni,
      snapshot: snap,
    });
    const before = pod.ip('-4', 'route', 'show', 'table', 'all');
    const restore = await stripAndRestore(pod, snap);
    expect(restore.ops.map((o) => o.op)).toEqual(['add', 'add']);
    expect(pod.ip('-4', 'route', 'show', 'table', 'all')).toBe(before);
  });

  it('mixed: several gateways, backup default, tie, onlink, via IPv6, policy table, multipath, TOS', async () => {
    const node = createNetns('mixnode');
    const pod = createNetns('mixpod');
    node.ip('link', 'add', 'h0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name);
    node.ip('addr', 'add', '10.81.0.1/24', 'dev', 'h0');
    node.ip('link', 'set', 'h0', 'up');
    pod.ip('addr', 'add', '10.81.0.2/24', 'dev', 'eth0');
    pod.ip('link', 'set', 'eth0', 'up');
    for (const r of [
      'add default via 10.81.0.1 dev eth0',
      'add default via 10.81.0.3 dev eth0 metric 100',
      'add 10.82.0.0/16 via 10.81.0.3 dev eth0',
      'add 10.83.0.0/16 via 10.81.0.1 dev eth0 metric 5',
      'append 10.83.0.0/16 via 10.81.0.3 dev eth0 metric 5',
      'add 10.84.0.0/16 via inet6 fe80::1 dev eth0',
      'add 10.85.0.0/16 via 10.81.0.1 dev eth0 table 100',
      'add 10.86.0.5 dev eth0 scope link',
      'add 192.168.50.0/24 via 192.168.9.1 dev eth0 onlink',
      'add 10.87.0.0/16 nexthop via 10.81.0.1 dev eth0 nexthop via 10.81.0.3 dev eth0',
      'add 10.89.0.0/16 tos 0x10 via 10.81.0.1 dev eth0',
    ]) {
      pod.ip('route', ...r.split(' '));
    }
    const snap = await readVethSnapshot(pod.path, 'eth0');
    const v4 = snap.routes.filter((r) => r.family === 4);
    expect(v4).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ dst: '10.84.0.0/16', via: { family: 6, address: 'fe80::1' } }),
        expect.objectContaining({ dst: '10.85.0.0/16', table: 100, gateway: '10.81.0.1' }),
        expect.objectContaining({ dst: '10.87.0.0/16', multipath: true }),
        expect.objectContaining({ dst: '10.89.0.0/16', tos: 16 }),
        expect.objectContaining({ dst: '192.168.50.0/24', gateway: '192.168.9.1', onlink: true }),
      ]),
    );
    const cni: CniResult = { cniVersion: '1.0.0', ips: [{ address: '10.81.0.2/24', gateway: '10.81.0.1' }] };
    const plan = planGuestNetwork({ veth: snap, cni, serverId: SID });
    expect(plan.routers).toEqual(['10.81.0.1']);
    expect(plan.classlessRoutes).toEqual([
      { dst: `${SID}/32`, gw: '0.0.0.0' },
      { dst: '10.86.0.5/32', gw: '0.0.0.0' },
      { dst: '192.168.9.1/32', gw: '0.0.0.0' },
      { dst: '192.168.50.0/24', gw: '192.168.9.1' },
      { dst: '10.82.0.0/16', gw: '10.81.0.3' },
      { dst: '10.83.0.0/16', gw: '10.81.0.1' },
      { dst: '0.0.0.0/0', gw: '10.81.0.1' },
    ]);
    expect(plan.unexpressible.map((u) => u.route.dst).sort()).toEqual([
      '0.0.0.0/0',
      '10.83.0.0/16',
      '10.84.0.0/16',
      '10.85.0.0/16',
      '10.87.0.0/16',
      '10.89.0.0/16',
    ]);
    checkFixture('mixed', {
      description: 'hand-built pod 10.81.0.2/24 with the routes added in test/priv/plan-shapes.test.ts "mixed"',
      capturedBy: 'test/priv/plan-shapes.test.ts',
      cniResult: cni,
      snapshot: snap,
    });
    // restore: everything but what the snapshot cannot rebuild (multipath, via IPv6); the metric tie in its order
    const lost = ['10.84.0.0/16', '10.87.0.0/16', 'nexthop'];
    const keep = (s: string) =>
      s
        .split('\n')
        .filter((l) => !lost.some((x) => l.includes(x)))
        .join('\n');
    const before = keep(pod.ip('-4', 'route', 'show', 'table', 'all'));
    const restore = await stripAndRestore(pod, snap);
    expect(restore.unrestorable.map((u) => u.route.dst).sort()).toEqual(['10.84.0.0/16', '10.87.0.0/16']);
    expect(restore.ops.filter((o) => o.route.dst === '10.83.0.0/16').map((o) => o.op)).toEqual(['add', 'append']);
    expect(keep(pod.ip('-4', 'route', 'show', 'table', 'all'))).toBe(before);
  });
});
