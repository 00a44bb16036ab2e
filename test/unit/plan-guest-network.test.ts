// planGuestNetwork on kernel route dumps: the real bridge, ptp, Calico and mixed
// fixtures (test/fixtures/routes), plus hand-made snapshots for what a kernel will not
// hold (an unreachable gateway, an IPv4 source route) and for bad input.
import { describe, expect, it } from 'vitest';
import { planGuestNetwork, PlanError, type GuestNetworkPlan } from '../../src/tapmanager/plan/guest-network';
import { contains, networkOf, parsePrefix4, prefixText } from '../../src/net/ipv4';
import type { CniResult } from '../../src/cni/result';
import type { RouteSnapshot, VethSnapshot } from '../../src/tapmanager/snapshot';
import { loadFixture } from '../fixtures/routes/load';

const SID = '169.254.254.2';
const ON = '0.0.0.0';

function plan(name: string, over: Partial<Parameters<typeof planGuestNetwork>[0]> = {}): GuestNetworkPlan {
  const f = loadFixture(name);
  return planGuestNetwork({
    veth: f.snapshot,
    cni: f.cniResult,
    ...(f.cniInterfaceIndex !== undefined ? { cniInterfaceIndex: f.cniInterfaceIndex } : {}),
    serverId: SID,
    ...over,
  });
}

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

function veth(addr: string, routes: RouteSnapshot[], mtu = 1500): VethSnapshot {
  const [address, len] = addr.split('/') as [string, string];
  return {
    ifname: 'eth0',
    ifindex: 2,
    mac: '0a:00:00:00:00:01',
    mtu,
    up: true,
    addrs: [{ family: 4, address, prefixLen: Number(len), scope: 0, flags: 0x80 }],
    routes,
  };
}

const cni = (address: string, gateway?: string, extra: Partial<CniResult> = {}): CniResult => ({
  cniVersion: '1.0.0',
  ips: [{ address, ...(gateway ? { gateway } : {}) }],
  ...extra,
});

function thrown(fn: () => unknown): PlanError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PlanError);
    return e as PlanError;
  }
  throw new Error('expected a PlanError');
}

/**
 * Applies option 121 the way a client adds routes one at a time (RFC 3442 order): the
 * address' subnet is on-link from the mask until a route replaces it; a route via a
 * gateway is accepted only if an on-link route already covers the gateway.
 */
function applyOneByOne(p: GuestNetworkPlan): void {
  const table = new Map<string, boolean>(); // prefix -> on-link
  if (p.prefixLen < 32) table.set(prefixText(networkOf(p.ip, p.prefixLen)), true);
  for (const r of p.classlessRoutes) {
    const dst = parsePrefix4(r.dst);
    expect(dst, r.dst).toBeDefined();
    if (r.gw !== ON) {
      const reachable = [...table].some(([k, on]) => on && contains(parsePrefix4(k)!, r.gw));
      expect(reachable, `${r.dst} via ${r.gw} added before ${r.gw} is on-link`).toBe(true);
    }
    table.set(prefixText(dst!), r.gw === ON);
  }
}

describe('planGuestNetwork on real kernel state', () => {
  it('bridge plugin: kernel subnet route left to the mask, default route inside 121', () => {
    const p = plan('bridge');
    expect(p).toEqual({
      ip: '10.77.0.2',
      prefixLen: 24,
      routers: ['10.77.0.1'],
      classlessRoutes: [
        { dst: `${SID}/32`, gw: ON },
        { dst: '10.78.0.0/16', gw: '10.77.0.1' },
        { dst: '0.0.0.0/0', gw: '10.77.0.1' },
      ],
      dns: ['10.77.0.1'],
      search: ['plan.svc.local'],
      mtu: 1450,
      unexpressible: [],
      warnings: [],
    });
    applyOneByOne(p);
  });

  it('bridge plugin with only the default route: [sid/32, default]', () => {
    const f = loadFixture('bridge');
    const snap = { ...f.snapshot, routes: f.snapshot.routes.filter((r) => r.dst !== '10.78.0.0/16') };
    const p = planGuestNetwork({ veth: snap, cni: { ...f.cniResult, routes: [{ dst: '0.0.0.0/0' }] }, serverId: SID });
    expect(p.classlessRoutes).toEqual([
      { dst: `${SID}/32`, gw: ON },
      { dst: '0.0.0.0/0', gw: '10.77.0.1' },
    ]);
    expect(p.warnings).toEqual([]);
  });

  it('ptp plugin: GW/32 on-link, then SUBNET via GW, default last; prefix stays /24', () => {
    const p = plan('ptp');
    expect(p).toMatchObject({ ip: '10.77.0.2', prefixLen: 24, routers: ['10.77.0.1'], mtu: 1450 });
    expect(p.classlessRoutes).toEqual([
      { dst: `${SID}/32`, gw: ON },
      { dst: '10.77.0.1/32', gw: ON },
      { dst: '10.77.0.0/24', gw: '10.77.0.1' },
      { dst: '10.78.0.0/16', gw: '10.77.0.1' },
      { dst: '0.0.0.0/0', gw: '10.77.0.1' },
    ]);
    expect(p.unexpressible).toEqual([]);
    expect(p.warnings).toEqual([]);
    applyOneByOne(p);
  });

  it('Calico: /32, host route to 169.254.1.1, default via it; option 3 is 169.254.1.1', () => {
    const p = plan('calico');
    expect(p).toMatchObject({ ip: '10.80.0.5', prefixLen: 32, routers: ['169.254.1.1'], mtu: 1440 });
    expect(p.classlessRoutes).toEqual([
      { dst: `${SID}/32`, gw: ON },
      { dst: '169.254.1.1/32', gw: ON },
      { dst: '0.0.0.0/0', gw: '169.254.1.1' },
    ]);
    expect(p.dns).toEqual(['10.96.0.10']);
    expect(p.search).toEqual(['default.svc.cluster.local', 'svc.cluster.local']);
    applyOneByOne(p);
  });

  it('the order does not depend on the order of the kernel dump', () => {
    for (const name of ['bridge', 'ptp', 'calico']) {
      const f = loadFixture(name);
      const want = plan(name).classlessRoutes;
      const reversed = { ...f.snapshot, routes: [...f.snapshot.routes].reverse() };
      expect(plan(name, { veth: reversed }).classlessRoutes).toEqual(want);
    }
  });

  describe('mixed: several gateways and what 121 cannot carry', () => {
    const p = plan('mixed');
    const reason = (dst: string) => p.unexpressible.filter((u) => u.route.dst === dst).map((u) => u.reason);

    it('hands every expressible route, gateways on-link first, default last', () => {
      expect(p.routers).toEqual(['10.81.0.1']);
      expect(p.classlessRoutes).toEqual([
        { dst: `${SID}/32`, gw: ON },
        { dst: '10.86.0.5/32', gw: ON },
        { dst: '192.168.9.1/32', gw: ON },
        { dst: '192.168.50.0/24', gw: '192.168.9.1' },
        { dst: '10.82.0.0/16', gw: '10.81.0.3' },
        { dst: '10.83.0.0/16', gw: '10.81.0.1' },
        { dst: '0.0.0.0/0', gw: '10.81.0.1' },
      ]);
      applyOneByOne(p);
    });

    it('a backup default route (higher metric) is reported, not handed', () => {
      expect(reason('0.0.0.0/0')).toEqual([expect.stringContaining('the kernel prefers "0.0.0.0/0 via 10.81.0.1')]);
      expect(p.unexpressible.find((u) => u.route.dst === '0.0.0.0/0')!.route).toMatchObject({
        gateway: '10.81.0.3',
        metric: 100,
      });
    });

    it('a metric tie hands the route the kernel lists first and warns', () => {
      expect(reason('10.83.0.0/16')).toEqual([expect.stringContaining('tied with "10.83.0.0/16 via 10.81.0.1')]);
      expect(p.warnings).toContainEqual(
        expect.stringMatching(
          /^metric tie for 10\.83\.0\.0\/16 on "eth0": handing .*via 10\.81\.0\.1.*not .*via 10\.81\.0\.3/,
        ),
      );
    });

    it('an onlink gateway gets a host route, with a warning', () => {
      expect(p.warnings).toContainEqual(expect.stringContaining('the guest gets the host route 192.168.9.1/32'));
    });

    it('via IPv6, another table, multipath and TOS are unexpressible with their reasons', () => {
      expect(reason('10.84.0.0/16')).toEqual([expect.stringContaining('gateway fe80::1 is IPv6')]);
      expect(reason('10.85.0.0/16')).toEqual([expect.stringContaining('policy routing: it is in table 100')]);
      expect(reason('10.87.0.0/16')).toEqual([expect.stringContaining('multipath')]);
      expect(reason('10.89.0.0/16')).toEqual([expect.stringContaining('TOS 16')]);
    });

    it('IPv6 routes and local-table entries are neither planned nor reported', () => {
      expect(p.unexpressible.every((u) => u.route.family === 4 && u.route.table !== 255)).toBe(true);
    });
  });
});

describe('planGuestNetwork on hand-made snapshots', () => {
  const gw = '10.0.0.1';
  const base = [route('10.0.0.0/24', { protocol: 'kernel', prefsrc: '10.0.0.2' }), route('0.0.0.0/0', { gateway: gw })];

  it('a gateway no on-link route reaches is an error naming the route', () => {
    const e = thrown(() =>
      planGuestNetwork({
        veth: veth('10.0.0.2/24', [...base, route('10.50.0.0/16', { gateway: '10.9.9.9', metric: 7 })]),
        cni: cni('10.0.0.2/24', gw),
        serverId: SID,
      }),
    );
    expect(e.code).toBe('EINVAL');
    expect(e.field).toBe('veth.routes');
    expect(e.message).toContain(
      'invalid route "10.50.0.0/16 via 10.9.9.9 dev eth0 proto boot scope universe metric 7"',
    );
    expect(e.message).toContain('gateway 10.9.9.9 is not reachable on-link');
  });

  it('a gateway reachable only through the subnet that a route sends elsewhere is unreachable', () => {
    // IP/24 but the subnet goes via GW (ptp); a second gateway inside the subnet has no on-link route
    const routes = [
      route('10.0.0.1/32'),
      route('10.0.0.0/24', { gateway: gw }),
      route('10.60.0.0/16', { gateway: '10.0.0.9' }),
    ];
    const e = thrown(() =>
      planGuestNetwork({ veth: veth('10.0.0.2/24', routes), cni: cni('10.0.0.2/24', gw), serverId: SID }),
    );
    expect(e.message).toContain('10.60.0.0/16 via 10.0.0.9');
  });

  it('a source-routed route is unexpressible', () => {
    const src = route('10.70.0.0/16', { gateway: gw, src: '10.0.0.0/24' });
    const p = planGuestNetwork({
      veth: veth('10.0.0.2/24', [...base, src]),
      cni: cni('10.0.0.2/24', gw),
      serverId: SID,
    });
    expect(p.unexpressible).toEqual([
      { route: src, reason: expect.stringContaining('source-routed (from 10.0.0.0/24)') },
    ]);
    expect(p.classlessRoutes.map((r) => r.dst)).not.toContain('10.70.0.0/16');
  });

  it('reject routes (blackhole, unreachable, prohibit, throw) are unexpressible', () => {
    const rejects = ['blackhole', 'unreachable', 'prohibit', 'throw'].map((type, i) =>
      route(`10.9${i}.0.0/16`, { type }),
    );
    const p = planGuestNetwork({
      veth: veth('10.0.0.2/24', [...base, ...rejects]),
      cni: cni('10.0.0.2/24', gw),
      serverId: SID,
    });
    expect(p.unexpressible.map((u) => u.reason)).toEqual([
      'a blackhole route has no DHCP encoding',
      'a unreachable route has no DHCP encoding',
      'a prohibit route has no DHCP encoding',
      'a throw route has no DHCP encoding',
    ]);
  });

  it('a route to the server id itself is not handed twice', () => {
    const p = planGuestNetwork({
      veth: veth('10.0.0.2/24', [...base, route(`${SID}/32`)]),
      cni: cni('10.0.0.2/24', gw),
      serverId: SID,
    });
    expect(p.classlessRoutes.filter((r) => r.dst === `${SID}/32`)).toHaveLength(1);
    expect(p.unexpressible[0]!.reason).toContain("DHCP server's own host route");
  });

  it('without a default route option 3 falls back to the CNI gateway', () => {
    const p = planGuestNetwork({ veth: veth('10.0.0.2/24', [base[0]!]), cni: cni('10.0.0.2/24', gw), serverId: SID });
    expect(p.routers).toEqual([gw]);
    expect(p.classlessRoutes).toEqual([{ dst: `${SID}/32`, gw: ON }]);
  });

  it('no gateway anywhere: no option 3', () => {
    const p = planGuestNetwork({ veth: veth('10.0.0.2/24', [base[0]!]), cni: cni('10.0.0.2/24'), serverId: SID });
    expect(p.routers).toEqual([]);
  });

  it('the kernel wins over the CNI result, and each disagreement is a warning', () => {
    const p = planGuestNetwork({
      veth: veth('10.0.0.2/24', base),
      cni: cni('10.0.0.2/16', '10.0.0.254', { routes: [{ dst: '0.0.0.0/0' }, { dst: '10.40.0.0/16' }] }),
      serverId: SID,
    });
    expect(p).toMatchObject({ prefixLen: 24, routers: [gw] });
    expect(p.warnings).toEqual([
      'cniResult.ips[0] says 10.0.0.2/16 but veth "eth0" has 10.0.0.2/24; the guest gets /24',
      'the CNI gateway 10.0.0.254 differs from the default route\'s gateway 10.0.0.1 on "eth0"; option 3 carries 10.0.0.1',
      'cniResult.routes[0] 0.0.0.0/0 via 10.0.0.254, but the kernel has "0.0.0.0/0 via 10.0.0.1 dev eth0 proto boot scope universe"; the guest gets the kernel\'s',
      'cniResult.routes[1] 10.40.0.0/16 is not among the kernel routes of "eth0"; the guest gets the kernel\'s',
    ]);
  });

  it('a subnet with no route at all is on-link in the guest: warned', () => {
    const p = planGuestNetwork({
      veth: veth('10.0.0.2/24', [route('0.0.0.0/0', { gateway: gw, onlink: true })]),
      cni: cni('10.0.0.2/24', gw),
      serverId: SID,
    });
    expect(p.warnings).toContainEqual(expect.stringContaining('has no route for its own subnet 10.0.0.0/24'));
  });

  it('picks the address of the CNI interface it is planning for', () => {
    const two: CniResult = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0' }, { name: 'net1' }],
      ips: [
        { address: '10.0.0.2/24', gateway: gw, interface: 0 },
        { address: '10.1.0.2/24', gateway: '10.1.0.1', interface: 1 },
      ],
    };
    const net1 = { ...veth('10.1.0.2/24', [route('10.1.0.0/24', { protocol: 'kernel' })]), ifname: 'net1' };
    const p = planGuestNetwork({ veth: net1, cni: two, cniInterfaceIndex: 1, serverId: SID });
    expect(p).toMatchObject({ ip: '10.1.0.2', routers: ['10.1.0.1'] });
    const e = thrown(() => planGuestNetwork({ veth: net1, cni: two, cniInterfaceIndex: 0, serverId: SID }));
    expect(e.message).toContain('none of 10.0.0.2/24 is on veth "net1" (the kernel has 10.1.0.2/24)');
  });

  describe('DNS', () => {
    const v = veth('10.0.0.2/24', base);
    const withDns = cni('10.0.0.2/24', gw, {
      dns: { nameservers: ['10.0.0.10'], search: ['a.local'], domain: 'a.local' },
    });

    it('the CRI DNSConfig wins when given', () => {
      const p = planGuestNetwork({
        veth: v,
        cni: withDns,
        dns: { servers: ['10.96.0.10'], searches: ['ns.svc.cluster.local'] },
        serverId: SID,
      });
      expect(p).toMatchObject({ dns: ['10.96.0.10'], search: ['ns.svc.cluster.local'] });
      expect(p.domain).toBeUndefined();
    });

    it("else the CNI result's dns", () => {
      expect(planGuestNetwork({ veth: v, cni: withDns, serverId: SID })).toMatchObject({
        dns: ['10.0.0.10'],
        search: ['a.local'],
        domain: 'a.local',
      });
    });

    it('never invents a resolver', () => {
      const p = planGuestNetwork({ veth: v, cni: cni('10.0.0.2/24', gw), serverId: SID });
      expect(p).toMatchObject({ dns: [], search: [] });
      expect('domain' in p).toBe(false);
    });

    it('an IPv6 server cannot go in option 6: warned; a malformed one is an error', () => {
      const p = planGuestNetwork({
        veth: v,
        cni: withDns,
        dns: { servers: ['fd00::10', '10.96.0.10'] },
        serverId: SID,
      });
      expect(p.dns).toEqual(['10.96.0.10']);
      expect(p.warnings).toContainEqual('dns.servers[0] fd00::10 is IPv6; DHCPv4 option 6 cannot carry it');
      const e = thrown(() =>
        planGuestNetwork({ veth: v, cni: withDns, dns: { servers: ['10.96.0.300'] }, serverId: SID }),
      );
      expect(e).toMatchObject({
        field: 'dns.servers[0]',
        message: 'invalid dns.servers[0] "10.96.0.300": not an IP address',
      });
      const s = thrown(() =>
        planGuestNetwork({ veth: v, cni: withDns, dns: { searches: ['bad name'] }, serverId: SID }),
      );
      expect(s.field).toBe('dns.searches[0]');
    });
  });

  describe('bad input', () => {
    it('no IPv4 address in the CNI result names cniResult.ips', () => {
      const e = thrown(() =>
        planGuestNetwork({
          veth: veth('10.0.0.2/24', base),
          cni: { cniVersion: '1.0.0', ips: [{ address: 'fd00::2/64' }] },
          serverId: SID,
        }),
      );
      expect(e).toMatchObject({
        code: 'EINVAL',
        field: 'cniResult.ips',
        message: 'invalid cniResult.ips [{"address":"fd00::2/64"}]: no IPv4 address',
      });
      expect(
        thrown(() => planGuestNetwork({ veth: veth('10.0.0.2/24', base), cni: { cniVersion: '1.0.0' }, serverId: SID }))
          .field,
      ).toBe('cniResult.ips');
    });

    it('a malformed CNI address names its field', () => {
      const e = thrown(() =>
        planGuestNetwork({ veth: veth('10.0.0.2/24', base), cni: cni('10.0.0.2'), serverId: SID }),
      );
      expect(e).toMatchObject({
        field: 'cniResult.ips[0].address',
        message: 'invalid cniResult.ips[0].address "10.0.0.2": not a.b.c.d/len',
      });
    });

    it('a veth without IPv4 (already stripped?) names the interface', () => {
      const bare = { ...veth('10.0.0.2/24', []), addrs: [] };
      const e = thrown(() =>
        planGuestNetwork({ veth: bare, cni: cni('10.0.0.2/24', gw), cniInterfaceIndex: 1, serverId: SID }),
      );
      expect(e).toMatchObject({ field: 'cniResult.interfaces[1].name' });
      expect(e.message).toContain('"eth0": the veth has no IPv4 address');
    });

    it('the CNI address is not on the veth', () => {
      const e = thrown(() =>
        planGuestNetwork({ veth: veth('10.0.0.3/24', base), cni: cni('10.0.0.2/24', gw), serverId: SID }),
      );
      expect(e.field).toBe('cniResult.ips');
      expect(e.message).toContain('none of 10.0.0.2/24 is on veth "eth0" (the kernel has 10.0.0.3/24)');
    });

    it('server id and MTU are checked', () => {
      expect(
        thrown(() => planGuestNetwork({ veth: veth('10.0.0.2/24', base), cni: cni('10.0.0.2/24'), serverId: 'x' }))
          .field,
      ).toBe('serverId');
      expect(
        thrown(() => planGuestNetwork({ veth: veth('10.0.0.2/24', base, 0), cni: cni('10.0.0.2/24'), serverId: SID }))
          .field,
      ).toBe('veth.mtu');
    });

    it('a malformed CNI route names its field', () => {
      const e = thrown(() =>
        planGuestNetwork({
          veth: veth('10.0.0.2/24', base),
          cni: cni('10.0.0.2/24', gw, { routes: [{ dst: 'default' }] }),
          serverId: SID,
        }),
      );
      expect(e.field).toBe('cniResult.routes[0].dst');
    });
  });
});
