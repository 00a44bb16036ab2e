// The route planner on REAL kernel state: the CNI `bridge` and `ptp` plugins (with
// host-local IPAM) run in a node netns we make, then readVethSnapshot reads the pod's
// eth0 and planGuestNetwork plans it. The same runs also prove that the committed
// fixtures in test/fixtures/routes are what the kernel really holds (regenerate them
// with TAPWIRE_UPDATE_FIXTURES=1), and that planRouteRestore, applied after the address
// is re-added, restores the route table byte for byte.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { NetlinkHandle } from '../../src/net/netlink';
import { planGuestNetwork } from '../../src/tapmanager/plan/guest-network';
import { readVethSnapshot } from '../../src/tapmanager/plan/read-veth';
import { planRouteRestore } from '../../src/tapmanager/plan/restore-routes';
import { restoreRoutes } from '../../src/tapmanager/topology';
import type { CniResult } from '../../src/cni/result';
import type { VethSnapshot } from '../../src/tapmanager/snapshot';
import { createNetns, removeAllNetns, TestNetns } from '../helpers/netns';
import { describePrivileged, requireTools } from '../helpers/privileged';
import { FIXTURE_DIR, RouteFixture } from '../fixtures/routes/load';

const CNI_PATH = '/usr/lib/cni';
const SID = '169.254.254.2';
const UPDATE = process.env.TAPWIRE_UPDATE_FIXTURES === '1';

interface CniRun {
  plugin: 'bridge' | 'ptp';
  node: TestNetns;
  pod: TestNetns;
  dir: string;
  conf: string;
}

const runs: CniRun[] = [];

function cni(run: CniRun, command: 'ADD' | 'DEL'): string {
  return execFileSync('ip', ['netns', 'exec', run.node.name, `${CNI_PATH}/${run.plugin}`], {
    input: run.conf,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {
      ...process.env,
      CNI_COMMAND: command,
      CNI_CONTAINERID: `plan-${run.plugin}-${process.pid}`,
      CNI_NETNS: run.pod.path,
      CNI_IFNAME: 'eth0',
      CNI_PATH,
    },
  });
}

/** CNI ADD of `plugin` into a fresh pod netns, host-local IPAM on 10.77.0.0/24. */
function cniAdd(plugin: 'bridge' | 'ptp'): { run: CniRun; result: CniResult } {
  const node = createNetns('cninode');
  const pod = createNetns('cnipod');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-plan-'));
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'twt-plan',
    type: plugin,
    ...(plugin === 'bridge' ? { bridge: 'twcni0', isGateway: true } : {}),
    ipMasq: false,
    mtu: 1450,
    ipam: {
      type: 'host-local',
      dataDir: path.join(dir, 'ipam'),
      ranges: [[{ subnet: '10.77.0.0/24', gateway: '10.77.0.1' }]],
      routes: [{ dst: '0.0.0.0/0' }, { dst: '10.78.0.0/16' }],
    },
    dns: { nameservers: ['10.77.0.1'], search: ['plan.svc.local'] },
  });
  const run: CniRun = { plugin, node, pod, dir, conf };
  runs.push(run);
  return { run, result: JSON.parse(cni(run, 'ADD')) as CniResult };
}

function eth0Index(result: CniResult): number {
  return (result.interfaces ?? []).findIndex((i) => i.name === 'eth0' && !!i.sandbox);
}

/** What does not repeat from run to run (MACs, names, lifetimes) is left out of the comparison. */
function stable(snap: VethSnapshot): unknown {
  return {
    ifname: snap.ifname,
    mtu: snap.mtu,
    up: snap.up,
    addrs: snap.addrs.filter((a) => a.family === 4).map(({ validLft: _v, preferredLft: _p, ...a }) => a),
    routes: snap.routes.filter((r) => r.family === 4),
  };
}

/** The committed fixture must be what the kernel holds now; with TAPWIRE_UPDATE_FIXTURES=1 it is rewritten. */
function checkFixture(name: string, fixture: RouteFixture): void {
  const file = path.join(FIXTURE_DIR, `${name}.json`);
  if (UPDATE) {
    fs.writeFileSync(file, `${JSON.stringify(fixture, null, 2)}\n`);
    return;
  }
  const committed = JSON.parse(fs.readFileSync(file, 'utf8')) as RouteFixture;
  expect(stable(fixture.snapshot)).toEqual(stable(committed.snapshot));
  const { interfaces: _a, ...live } = fixture.cniResult;
  const { interfaces: _b, ...kept } = committed.cniResult;
  expect(live).toEqual(kept);
}

/** Strips eth0's IPv4 address (the kernel flushes its routes), re-adds it, restores with planRouteRestore. */
async function stripAndRestore(ns: TestNetns, snap: VethSnapshot): Promise<string[]> {
  const a = snap.addrs.find((x) => x.family === 4)!;
  ns.ip('addr', 'del', `${a.address}/${a.prefixLen}`, 'dev', 'eth0');
  expect(ns.ip('-4', 'route', 'show', 'dev', 'eth0')).toBe('');
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
  return plan.ops.map((o) => `${o.op} ${o.route.dst}${o.route.gateway ? ` via ${o.route.gateway}` : ''}`);
}

describePrivileged('route planner on real CNI plugins', () => {
  const missing = ['bridge', 'ptp', 'host-local'].filter((p) => !fs.existsSync(`${CNI_PATH}/${p}`));
  const noTools = requireTools('ip');

  afterEach(() => {
    for (const run of runs.splice(0)) {
      try {
        cni(run, 'DEL');
      } catch {
        /* best effort: the namespaces go anyway */
      }
      fs.rmSync(run.dir, { recursive: true, force: true });
    }
    removeAllNetns();
  });

  it.skipIf(missing.length > 0 || noTools)(
    'bridge plugin: default via GW inside 121, kernel subnet route left to the mask',
    async () => {
      const { run, result } = cniAdd('bridge');
      const snap = await readVethSnapshot(run.pod.path, 'eth0');
      expect(snap.addrs.filter((a) => a.family === 4)).toMatchObject([{ address: '10.77.0.2', prefixLen: 24 }]);
      expect(snap.routes.filter((r) => r.family === 4 && r.table === 254)).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ dst: '0.0.0.0/0', gateway: '10.77.0.1' }),
          expect.objectContaining({ dst: '10.77.0.0/24', protocol: 'kernel', scope: 'link' }),
        ]),
      );
      const idx = eth0Index(result);
      const plan = planGuestNetwork({ veth: snap, cni: result, cniInterfaceIndex: idx, serverId: SID });
      expect(plan).toMatchObject({ ip: '10.77.0.2', prefixLen: 24, routers: ['10.77.0.1'], mtu: 1450 });
      expect(plan.classlessRoutes).toEqual([
        { dst: `${SID}/32`, gw: '0.0.0.0' },
        { dst: '10.78.0.0/16', gw: '10.77.0.1' },
        { dst: '0.0.0.0/0', gw: '10.77.0.1' },
      ]);
      expect(plan).toMatchObject({ dns: ['10.77.0.1'], search: ['plan.svc.local'], unexpressible: [], warnings: [] });
      checkFixture('bridge', {
        description:
          'CNI bridge plugin (isGateway, host-local 10.77.0.0/24, routes 0.0.0.0/0 and 10.78.0.0/16), pod eth0',
        capturedBy: 'test/priv/plan-cni.test.ts',
        cniInterfaceIndex: idx,
        cniResult: result,
        snapshot: snap,
      });
      const before = run.pod.ip('-4', 'route', 'show', 'table', 'all');
      const ops = await stripAndRestore(run.pod, snap);
      expect(ops.sort()).toEqual(['add 0.0.0.0/0 via 10.77.0.1', 'add 10.78.0.0/16 via 10.77.0.1']);
      expect(run.pod.ip('-4', 'route', 'show', 'table', 'all')).toBe(before);
    },
  );

  it.skipIf(missing.length > 0 || noTools)(
    'ptp plugin: GW/32 on-link, SUBNET via GW, no kernel subnet route',
    async () => {
      const { run, result } = cniAdd('ptp');
      const snap = await readVethSnapshot(run.pod.path, 'eth0');
      expect(snap.addrs.filter((a) => a.family === 4)).toMatchObject([{ address: '10.77.0.2', prefixLen: 24 }]);
      const main = snap.routes.filter((r) => r.family === 4 && r.table === 254);
      expect(main.some((r) => r.protocol === 'kernel')).toBe(false);
      expect(main).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ dst: '10.77.0.1/32', scope: 'link', prefsrc: '10.77.0.2' }),
          expect.objectContaining({ dst: '10.77.0.0/24', gateway: '10.77.0.1' }),
          expect.objectContaining({ dst: '0.0.0.0/0', gateway: '10.77.0.1' }),
        ]),
      );
      const idx = eth0Index(result);
      const plan = planGuestNetwork({ veth: snap, cni: result, cniInterfaceIndex: idx, serverId: SID });
      expect(plan).toMatchObject({ ip: '10.77.0.2', prefixLen: 24, routers: ['10.77.0.1'], mtu: 1450 });
      expect(plan.classlessRoutes).toEqual([
        { dst: `${SID}/32`, gw: '0.0.0.0' },
        { dst: '10.77.0.1/32', gw: '0.0.0.0' },
        { dst: '10.77.0.0/24', gw: '10.77.0.1' },
        { dst: '10.78.0.0/16', gw: '10.77.0.1' },
        { dst: '0.0.0.0/0', gw: '10.77.0.1' },
      ]);
      expect(plan).toMatchObject({ unexpressible: [], warnings: [] });
      checkFixture('ptp', {
        description: 'CNI ptp plugin (host-local 10.77.0.0/24, routes 0.0.0.0/0 and 10.78.0.0/16), pod eth0',
        capturedBy: 'test/priv/plan-cni.test.ts',
        cniInterfaceIndex: idx,
        cniResult: result,
        snapshot: snap,
      });
      // teardown: the kernel re-creates 10.77.0.0/24 on address add; it is replaced, not tripped over
      const before = run.pod.ip('-4', 'route', 'show', 'table', 'all');
      const ops = await stripAndRestore(run.pod, snap);
      expect(ops).toContain('replace 10.77.0.0/24 via 10.77.0.1');
      expect(run.pod.ip('-4', 'route', 'show', 'table', 'all')).toBe(before);
    },
  );
});
