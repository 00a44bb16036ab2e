// planRouteRestore: the operations that put a veth's route table back after its
// address was re-added, on the real fixtures and on hand-made tables.
import { describe, expect, it } from 'vitest';
import { planRouteRestore, RouteOp } from '../../src/tapmanager/plan/restore-routes';
import type { RouteSnapshot, VethSnapshot } from '../../src/tapmanager/snapshot';
import { loadFixture } from '../fixtures/routes/load';

function route(dst: string, extra: Partial<RouteSnapshot> = {}): RouteSnapshot {
  return {
    family: 4,
    dst,
    scope: extra.gateway ? 'universe' : 'link',
    protocol: 'boot',
    type: 'unicast',
    table: 254,
    ...extra,
  };
}

/** What the kernel holds right after `ip addr add IP/LEN`: the subnet route (none for a /32) and local-table entries. */
function afterAddressAdd(ip: string, _len: number, subnet?: string, brd?: string): RouteSnapshot[] {
  return [
    ...(subnet ? [route(subnet, { protocol: 'kernel', prefsrc: ip })] : []),
    route(`${ip}/32`, { table: 255, type: 'local', scope: 'host', protocol: 'kernel', prefsrc: ip }),
    ...(brd ? [route(`${brd}/32`, { table: 255, type: 'broadcast', protocol: 'kernel', prefsrc: ip })] : []),
  ];
}

const show = (ops: RouteOp[]) =>
  ops.map((o) => `${o.op} ${o.route.dst}${o.route.gateway ? ` via ${o.route.gateway}` : ''}`);

/**
 * Applies ops to a table model keyed like the kernel (table, dst, tos, metric), list order
 * kept: add on a taken key fails, replace swaps the first route of the key, append goes
 * after the last, delete takes the route with that gateway (the first of the key without one).
 */
function apply(table: RouteSnapshot[], ops: RouteOp[]): RouteSnapshot[] {
  const key = (r: RouteSnapshot) => `${r.table}|${r.dst}|${r.tos ?? 0}|${r.metric ?? 0}`;
  let t = [...table];
  for (const o of ops) {
    const i = t.findIndex((r) => key(r) === key(o.route));
    if (o.op === 'add' || o.op === 'append') {
      if (i >= 0 && o.op === 'add') throw new Error(`File exists: ${o.route.dst}`);
      if (o.route.gateway && !o.route.onlink) {
        // the kernel falls back to a full lookup when the route's own table does not resolve the gateway
        const on = t.some((r) => !r.gateway && covers(r.dst, o.route.gateway!));
        if (!on) throw new Error(`Nexthop has invalid gateway: ${o.route.gateway}`);
      }
      t.push(o.route);
    } else if (o.op === 'replace') t[i] = o.route;
    else {
      const exact = t.findIndex((r) => key(r) === key(o.route) && (r.gateway ?? '') === (o.route.gateway ?? ''));
      if (exact < 0) throw new Error(`No such process: ${o.route.dst}`);
      t = t.filter((_, j) => j !== exact);
    }
  }
  return t;
}

function covers(prefix: string, ip: string): boolean {
  const [net, len] = prefix.split('/') as [string, string];
  const n = (s: string) => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const mask = Number(len) === 0 ? 0 : (0xffffffff << (32 - Number(len))) >>> 0;
  return (n(ip) & mask) >>> 0 === (n(net) & mask) >>> 0;
}

const v4main = (rs: RouteSnapshot[]) =>
  rs
    .filter((r) => r.family === 4 && r.table !== 255)
    .sort((a, b) => (a.dst + a.gateway).localeCompare(b.dst + b.gateway));

describe('planRouteRestore on the real fixtures', () => {
  it('ptp: the re-created kernel subnet route is replaced by SUBNET via GW, after GW/32', () => {
    const snap = loadFixture('ptp').snapshot;
    const current = afterAddressAdd('10.77.0.2', 24, '10.77.0.0/24', '10.77.0.255');
    const plan = planRouteRestore(snap, current);
    expect(show(plan.ops)).toEqual([
      'add 10.77.0.1/32',
      'add 0.0.0.0/0 via 10.77.0.1',
      'replace 10.77.0.0/24 via 10.77.0.1',
      'add 10.78.0.0/16 via 10.77.0.1',
    ]);
    expect(plan.ops[2]!.reason).toContain('the kernel has "10.77.0.0/24" (kernel) in its place');
    expect(plan.unrestorable).toEqual([]);
    expect(v4main(apply(current, plan.ops))).toEqual(v4main(snap.routes));
  });

  it("bridge: the kernel subnet route is the snapshot's own; only the gateway routes go back", () => {
    const snap = loadFixture('bridge').snapshot;
    const current = afterAddressAdd('10.77.0.2', 24, '10.77.0.0/24', '10.77.0.255');
    const plan = planRouteRestore(snap, current);
    expect(show(plan.ops)).toEqual(['add 0.0.0.0/0 via 10.77.0.1', 'add 10.78.0.0/16 via 10.77.0.1']);
    expect(v4main(apply(current, plan.ops))).toEqual(v4main(snap.routes));
  });

  it('Calico: a /32 gets no subnet route; host route first, then default', () => {
    const snap = loadFixture('calico').snapshot;
    const current = afterAddressAdd('10.80.0.5', 32);
    const plan = planRouteRestore(snap, current);
    expect(show(plan.ops)).toEqual(['add 169.254.1.1/32', 'add 0.0.0.0/0 via 169.254.1.1']);
    expect(v4main(apply(current, plan.ops))).toEqual(v4main(snap.routes));
  });

  it('mixed: what the snapshot cannot rebuild is reported, the rest goes back', () => {
    const snap = loadFixture('mixed').snapshot;
    const current = afterAddressAdd('10.81.0.2', 24, '10.81.0.0/24', '10.81.0.255');
    const plan = planRouteRestore(snap, current);
    expect(plan.unrestorable.map((u) => [u.route.dst, u.reason.split(':')[0]])).toEqual([
      ['10.84.0.0/16', 'its gateway fe80'],
      ['10.87.0.0/16', 'multipath'],
    ]);
    // the metric tie (10.83.0.0/16 metric 5 via .1, appended via .3) goes back in its order
    expect(plan.ops.filter((o) => o.route.dst === '10.83.0.0/16').map((o) => `${o.op} ${o.route.gateway}`)).toEqual([
      'add 10.81.0.1',
      'append 10.81.0.3',
    ]);
    expect(plan.ops.every((o) => o.op === 'add' || o.op === 'append')).toBe(true);
    const restored = apply(current, plan.ops);
    const lost = new Set(plan.unrestorable.map((u) => u.route));
    expect(v4main(restored)).toEqual(v4main(snap.routes.filter((r) => !lost.has(r))));
    const tie = (rs: RouteSnapshot[]) => rs.filter((r) => r.dst === '10.83.0.0/16').map((r) => r.gateway);
    expect(tie(restored)).toEqual(['10.81.0.1', '10.81.0.3']);
  });

  it('a second restore on the restored table does nothing', () => {
    for (const name of ['bridge', 'ptp', 'calico', 'mixed']) {
      const snap = loadFixture(name).snapshot;
      expect(planRouteRestore(snap, snap.routes).ops, name).toEqual([]);
    }
  });
});

describe('planRouteRestore on hand-made tables', () => {
  const ip = '10.0.0.2';
  const veth = (routes: RouteSnapshot[]): VethSnapshot => ({
    ifname: 'eth0',
    ifindex: 2,
    mac: '0a:00:00:00:00:01',
    mtu: 1500,
    up: true,
    addrs: [{ family: 4, address: ip, prefixLen: 24, scope: 0, flags: 0x80 }],
    routes,
  });

  it('a subnet route the snapshot lacked is deleted, last', () => {
    const snap = veth([route('10.0.0.1/32'), route('0.0.0.0/0', { gateway: '10.0.0.1' })]);
    const current = afterAddressAdd(ip, 24, '10.0.0.0/24');
    const plan = planRouteRestore(snap, current);
    expect(show(plan.ops)).toEqual(['add 10.0.0.1/32', 'add 0.0.0.0/0 via 10.0.0.1', 'delete 10.0.0.0/24']);
    expect(plan.ops[2]!.reason).toBe('not in the snapshot (made by the kernel on address add)');
    expect(v4main(apply(current, plan.ops))).toEqual(v4main(snap.routes));
  });

  it('a subnet route with another metric is added beside the kernel one, which then goes', () => {
    const snap = veth([route('10.0.0.0/24', { protocol: 'kernel', prefsrc: ip, metric: 100 })]);
    const plan = planRouteRestore(snap, afterAddressAdd(ip, 24, '10.0.0.0/24'));
    expect(plan.ops.map((o) => `${o.op} ${o.route.dst} ${o.route.metric ?? 0}`)).toEqual([
      'add 10.0.0.0/24 100',
      'delete 10.0.0.0/24 0',
    ]);
  });

  it('a route that differs only in content (gateway, scope) is replaced', () => {
    const snap = veth([
      route('10.0.0.0/24', { protocol: 'kernel', prefsrc: ip }),
      route('10.5.0.0/16', { gateway: '10.0.0.1' }),
    ]);
    const current = [...afterAddressAdd(ip, 24, '10.0.0.0/24'), route('10.5.0.0/16', { gateway: '10.0.0.9' })];
    expect(show(planRouteRestore(snap, current).ops)).toEqual(['replace 10.5.0.0/16 via 10.0.0.1']);
  });

  it('IPv6 routes are never touched; other tables are restored too', () => {
    const v6 = { ...route('fd00::/64'), family: 6 as const };
    const t100 = route('10.6.0.0/16', { gateway: '10.0.0.1', table: 100 });
    const snap = veth([route('10.0.0.0/24', { protocol: 'kernel' }), t100, v6]);
    const plan = planRouteRestore(snap, [
      ...afterAddressAdd(ip, 24),
      route('10.0.0.0/24', { protocol: 'kernel' }),
      { ...v6, dst: 'fd01::/64' },
    ]);
    expect(show(plan.ops)).toEqual(['add 10.6.0.0/16 via 10.0.0.1']);
  });

  it('onlink gateway routes need nothing on-link and go with the on-link routes', () => {
    const snap = veth([
      route('10.0.0.0/24', { protocol: 'kernel', prefsrc: ip }),
      route('10.7.0.0/16', { gateway: '192.168.1.1', onlink: true }),
    ]);
    const plan = planRouteRestore(snap, afterAddressAdd(ip, 24, '10.0.0.0/24'));
    expect(show(plan.ops)).toEqual(['add 10.7.0.0/16 via 192.168.1.1']);
  });
  it('several gateways: every on-link route before any route via a gateway, whatever the dump order', () => {
    const snap = veth([
      route('10.9.0.0/16', { gateway: '10.0.0.1' }),
      route('0.0.0.0/0', { gateway: '172.16.0.1', metric: 10 }),
      route('10.10.0.0/16', { gateway: '10.0.0.3' }),
      route('172.16.0.1/32'),
      route('10.0.0.0/24', { protocol: 'kernel', prefsrc: ip }),
      route('0.0.0.0/0', { gateway: '10.0.0.1', metric: 20 }),
    ]);
    const current = afterAddressAdd(ip, 24, '10.0.0.0/24');
    const plan = planRouteRestore(snap, current);
    expect(show(plan.ops)).toEqual([
      'add 172.16.0.1/32',
      'add 10.9.0.0/16 via 10.0.0.1',
      'add 0.0.0.0/0 via 172.16.0.1',
      'add 10.10.0.0/16 via 10.0.0.3',
      'add 0.0.0.0/0 via 10.0.0.1',
    ]);
    expect(plan.unrestorable).toEqual([]);
    expect(v4main(apply(current, plan.ops))).toEqual(v4main(snap.routes));
  });

  it("a metric tie (routes appended to one key) goes back in the kernel's order: add, then append", () => {
    const first = route('0.0.0.0/0', { gateway: '10.0.0.1', metric: 5 });
    const twin = route('0.0.0.0/0', { gateway: '10.0.0.3', metric: 5 });
    const third = route('0.0.0.0/0', { gateway: '10.0.0.4', metric: 5 });
    const snap = veth([route('10.0.0.0/24', { protocol: 'kernel', prefsrc: ip }), first, twin, third]);
    const current = afterAddressAdd(ip, 24, '10.0.0.0/24');
    const plan = planRouteRestore(snap, current);
    expect(show(plan.ops)).toEqual([
      'add 0.0.0.0/0 via 10.0.0.1',
      'append 0.0.0.0/0 via 10.0.0.3',
      'append 0.0.0.0/0 via 10.0.0.4',
    ]);
    expect(plan.ops[1]!.reason).toBe(
      '3 routes share the key of "0.0.0.0/0 via 10.0.0.1 metric 5"; its list is rebuilt in the snapshot\'s order',
    );
    expect(plan.unrestorable).toEqual([]);
    expect(apply(current, plan.ops).filter((r) => r.dst === '0.0.0.0/0')).toEqual([first, twin, third]);
  });

  it('a tied key whose list is out of order or incomplete is rebuilt: delete what is there, add, append', () => {
    const first = route('0.0.0.0/0', { gateway: '10.0.0.1', metric: 5 });
    const twin = route('0.0.0.0/0', { gateway: '10.0.0.3', metric: 5 });
    const snap = veth([route('10.0.0.0/24', { protocol: 'kernel', prefsrc: ip }), first, twin]);
    const current = [...afterAddressAdd(ip, 24, '10.0.0.0/24'), twin, first];
    const plan = planRouteRestore(snap, current);
    expect(show(plan.ops)).toEqual([
      'delete 0.0.0.0/0 via 10.0.0.3',
      'delete 0.0.0.0/0 via 10.0.0.1',
      'add 0.0.0.0/0 via 10.0.0.1',
      'append 0.0.0.0/0 via 10.0.0.3',
    ]);
    expect(apply(current, plan.ops).filter((r) => r.dst === '0.0.0.0/0')).toEqual([first, twin]);
    // only the first of the two there: the same
    const half = [...afterAddressAdd(ip, 24, '10.0.0.0/24'), first];
    expect(apply(half, planRouteRestore(snap, half).ops).filter((r) => r.dst === '0.0.0.0/0')).toEqual([first, twin]);
    // in order already: nothing to do
    expect(planRouteRestore(snap, [...afterAddressAdd(ip, 24, '10.0.0.0/24'), first, twin]).ops).toEqual([]);
  });

  it('a different metric is no tie: both routes go back', () => {
    const snap = veth([
      route('10.0.0.0/24', { protocol: 'kernel', prefsrc: ip }),
      route('0.0.0.0/0', { gateway: '10.0.0.1', metric: 5 }),
      route('0.0.0.0/0', { gateway: '10.0.0.3', metric: 6 }),
    ]);
    const current = afterAddressAdd(ip, 24, '10.0.0.0/24');
    const plan = planRouteRestore(snap, current);
    expect(show(plan.ops)).toEqual(['add 0.0.0.0/0 via 10.0.0.1', 'add 0.0.0.0/0 via 10.0.0.3']);
    expect(v4main(apply(current, plan.ops))).toEqual(v4main(snap.routes));
  });

  it('an unreachable gateway is reported with the route named, not left to fail at apply time', () => {
    // the kernel keeps a route whose on-link route was deleted after it went in; it refuses to add it back
    const lost = route('10.11.0.0/16', { gateway: '192.168.7.1' });
    const snap = veth([route('10.0.0.0/24', { protocol: 'kernel', prefsrc: ip }), lost]);
    const current = afterAddressAdd(ip, 24, '10.0.0.0/24');
    const plan = planRouteRestore(snap, current);
    expect(plan.ops).toEqual([]);
    expect(plan.unrestorable).toEqual([
      {
        route: lost,
        reason:
          'its gateway 192.168.7.1 is not reachable on-link (no route without a gateway on "eth0" covers it), so the kernel refuses it (Nexthop has invalid gateway)',
      },
    ]);
    expect(() => apply(current, [{ op: 'add', route: lost, reason: '' }])).toThrow('invalid gateway');
  });

  it('a route via a gateway does not make another gateway on-link', () => {
    // a gateway route (scope universe) covering the gateway does not make it on-link
    const snap = veth([
      route('10.0.0.0/24', { protocol: 'kernel', prefsrc: ip }),
      route('192.168.0.0/16', { gateway: '10.0.0.1' }),
      route('10.12.0.0/16', { gateway: '192.168.7.1' }),
    ]);
    const plan = planRouteRestore(snap, afterAddressAdd(ip, 24, '10.0.0.0/24'));
    expect(show(plan.ops)).toEqual(['add 192.168.0.0/16 via 10.0.0.1']);
    expect(plan.unrestorable.map((u) => u.route.dst)).toEqual(['10.12.0.0/16']);
  });

  it("a gateway on-link only through the kernel's re-created subnet route: added, then that route goes", () => {
    const snap = veth([route('10.0.0.0/25', { protocol: 'boot' }), route('0.0.0.0/0', { gateway: '10.0.0.1' })]);
    const current = afterAddressAdd(ip, 24, '10.0.0.0/24');
    const plan = planRouteRestore(snap, current);
    expect(show(plan.ops)).toEqual(['add 10.0.0.0/25', 'add 0.0.0.0/0 via 10.0.0.1', 'delete 10.0.0.0/24']);
    expect(v4main(apply(current, plan.ops))).toEqual(v4main(snap.routes));
  });

  it('a policy-table route is reachable through the main table, as the kernel looks it up', () => {
    const t100 = route('10.13.0.0/16', { gateway: '10.0.0.1', table: 100 });
    const snap = veth([route('10.0.0.0/24', { protocol: 'kernel', prefsrc: ip }), t100]);
    expect(show(planRouteRestore(snap, afterAddressAdd(ip, 24, '10.0.0.0/24')).ops)).toEqual([
      'add 10.13.0.0/16 via 10.0.0.1',
    ]);
  });
});

describe('planRouteRestore beside another interface holding the same keys', () => {
  // eth0 (ifindex 2) and net1 (ifindex 3) each with a default route; net1 restored already
  const dflt = route('0.0.0.0/0', { gateway: '10.0.0.1' });
  const snap = (order: number[]): VethSnapshot => ({
    ifname: 'eth0',
    ifindex: 2,
    mac: '0a:00:00:00:00:01',
    mtu: 1500,
    up: true,
    addrs: [],
    routes: [route('10.0.0.0/24', { protocol: 'kernel', prefsrc: '10.0.0.2' }), dflt],
    sharedKeys: { '254|0.0.0.0/0|0|0': order },
  });
  const current = afterAddressAdd('10.0.0.2', 24, '10.0.0.0/24');
  const now = { '254|0.0.0.0/0|0|0': [3] };

  it("never replaces the other interface's route: goes before it when it was before it", () => {
    const plan = planRouteRestore(snap([2, 3]), current, now);
    expect(plan.ops.map((o) => o.op)).toEqual(['add']);
    expect(plan.ops[0]!.reason).toContain('it goes before them');
  });

  it('appends after it when it was after it, or when the snapshot did not know it', () => {
    for (const order of [[3, 2], [2]]) {
      const plan = planRouteRestore(snap(order), current, now);
      expect(show(plan.ops), JSON.stringify(order)).toEqual(['append 0.0.0.0/0 via 10.0.0.1']);
    }
  });

  it("several routes of its own at the key: its current ones deleted, its own put back in the snapshot's order", () => {
    const second = route('0.0.0.0/0', { gateway: '10.0.0.3' });
    const s = { ...snap([2, 2, 3]), routes: [...snap([]).routes, second] };
    const cur = [...current, second];
    expect(show(planRouteRestore(s, cur, now).ops)).toEqual([
      'delete 0.0.0.0/0 via 10.0.0.3',
      'add 0.0.0.0/0 via 10.0.0.3',
      'add 0.0.0.0/0 via 10.0.0.1',
    ]);
  });
});

describe('a table of tens of thousands of routes', () => {
  // status() plans against the snapshot on every call, on the event loop: a plan
  // quadratic in the routes took 6 s for 6,000 of them (and was never done for 50,000)
  it('50,000 routes via the gateway and 10,000 on-link: nothing to do against itself, all back after a strip', () => {
    const dst = (i: number, base: number) => `${base + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`;
    const routes = [
      route('10.5.0.0/24', { protocol: 'kernel', prefsrc: '10.5.0.2' }),
      ...Array.from({ length: 50_000 }, (_, i) => route(dst(i, 20), { gateway: '10.5.0.1' })),
      ...Array.from({ length: 10_000 }, (_, i) => route(dst(i, 60), { metric: 9 })),
    ];
    const snap: VethSnapshot = { ifname: 'eth0', ifindex: 2, mac: '', mtu: 1500, up: true, addrs: [], routes };
    expect(planRouteRestore(snap, routes)).toEqual({ ops: [], unrestorable: [] });
    const plan = planRouteRestore(snap, afterAddressAdd('10.5.0.2', 24, '10.5.0.0/24', '10.5.0.255'));
    expect(plan.unrestorable).toEqual([]);
    expect(plan.ops.map((o) => o.op)).toEqual(Array(60_000).fill('add'));
    // on-link routes first: every gateway is reachable when its route goes in
    expect(plan.ops.findIndex((o) => o.route.gateway)).toBe(10_000);
  });
});
