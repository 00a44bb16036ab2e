// The IPv6 plan of a guest NIC: addresses, on-link prefixes, and which router the RAs name.
import { expect, it } from 'vitest';
import type { RtnlAddress, RtnlNeighbour, RtnlRoute } from '../../src/net/netlink';
import { eui64LinkLocal, planGuestIpv6 } from '../../src/tapmanager/plan/guest-ipv6';
import type { VethSnapshot } from '../../src/tapmanager/snapshot';

const addr = (address: string, prefixLen: number, scope = 0): RtnlAddress => ({
  family: 6,
  address,
  prefixLen,
  scope,
  flags: 0x80,
});
const route = (dst: string, gateway?: string): RtnlRoute => ({
  family: 6,
  dst,
  ...(gateway ? { gateway } : {}),
  scope: 'universe',
  protocol: 'boot',
  type: 'unicast',
  table: 254,
});

function veth(addrs: RtnlAddress[], routes: RtnlRoute[]): VethSnapshot {
  return { ifname: 'eth0', ifindex: 3, mac: '02:42:0a:00:00:05', mtu: 1450, up: true, addrs, routes };
}

const input = (v: VethSnapshot, neighbours: RtnlNeighbour[] = []) => ({
  veth: v,
  neighbours,
  dns: ['10.96.0.10', 'fd00:96::a'],
  search: ['cluster.local'],
});

it('no global IPv6 address: no plan (a link-local alone is not handed out)', () => {
  expect(planGuestIpv6(input(veth([addr('fe80::42:aff:fe00:5', 64, 253)], [])))).toBeUndefined();
});

it('Calico shape: a /128, default via a link-local gateway, taken as the router; no on-link prefix', () => {
  const p = planGuestIpv6(
    input(veth([addr('fd00:81:0:0::5', 128), addr('fe80::1234', 64, 253)], [route('::/0', 'FE80::1')])),
  );
  expect(p).toEqual({
    addresses: ['fd00:81::5'],
    onLink: [],
    router: 'fe80::1',
    dns: ['fd00:96::a'],
    search: ['cluster.local'],
    mtu: 1450,
    warnings: [],
  });
});

it('bridge plugin shape: a /64 on-link, a global gateway whose link-local is its neighbour entry with the same MAC', () => {
  const v = veth([addr('fd00:10::5', 64)], [route('::/0', 'fd00:10::1'), route('fd00:10::/64')]);
  const n: RtnlNeighbour[] = [
    { family: 6, address: 'fd00:10::1', mac: '0a:58:0a:00:00:01', state: 2 },
    { family: 6, address: 'fe80::858:aff:fe00:1', mac: '0a:58:0a:00:00:01', state: 4 },
  ];
  const p = planGuestIpv6(input(v, n))!;
  expect(p.onLink).toEqual([{ prefix: 'fd00:10::', prefixLen: 64 }]);
  expect(p.router).toBe('fe80::858:aff:fe00:1');
  // without that entry: the EUI-64 address of the gateway's MAC
  expect(planGuestIpv6(input(v, [n[0]!]))!.router).toBe(eui64LinkLocal('0a:58:0a:00:00:01'));
  expect(eui64LinkLocal('0a:58:0a:00:00:01')).toBe('fe80::858:aff:fe00:1');
});

it('no default route, or a global gateway never resolved: no router, and a warning', () => {
  const none = planGuestIpv6(input(veth([addr('fd00:10::5', 64)], [])))!;
  expect(none.router).toBeUndefined();
  expect(none.warnings[0]).toMatch(/no IPv6 default route/);
  const unresolved = planGuestIpv6(input(veth([addr('fd00:10::5', 64)], [route('::/0', 'fd00:10::1')])))!;
  expect(unresolved.router).toBeUndefined();
  expect(unresolved.warnings[0]).toMatch(/fd00:10::1 .* no neighbour entry/);
});

it('ptp shape: a /64 address whose subnet route the plugin deleted is not on-link; the gateway /128 is not advertised', () => {
  const v = veth([addr('fd00:20::5', 64)], [route('fd00:20::1/128'), route('::/0', 'fd00:20::1')]);
  const p = planGuestIpv6(input(v, [{ family: 6, address: 'fd00:20::1', mac: '0a:58:0a:00:00:01', state: 2 }]))!;
  expect(p.onLink).toEqual([]);
  expect(p.router).toBe('fe80::858:aff:fe00:1');
});
