// The pure parts of the masquerade and slirp bindings: the NAT table's rules (ports,
// ranges, all ports), the guest CIDR's addresses and refusals, slirp's QEMU arguments
// (hostfwd per listed port, bound to the pod IP) and libvirt element, and vmwrapper's
// check of a slirp NIC's forwards, and tapctl describe's picture of each.
import { describe, expect, it } from 'vitest';
import { natBatch, natRules, natRuleText } from '../../src/tapmanager/bindings/masquerade/nat';
import {
  guestAddresses,
  guestAddresses6,
  network6,
  prefixesOverlap6,
} from '../../src/tapmanager/bindings/masquerade/cidr';
import {
  forwarding6Comment,
  forwarding6FromComment,
  ipForwardComment,
  ipForwardFromComment,
} from '../../src/tapmanager/bindings/masquerade/forwarding';
import { slirpDomain } from '../../src/tapmanager/bindings/slirp/domain';
import { bindingOf } from '../../src/tapmanager/bindings';
import type { NicRecord } from '../../src/tapmanager/record';
import { renderDescribe } from '../../src/tapmanager/tapctl';
import { checkNic, netArgs } from '../../src/vmwrapper/args';

const NAT = { podInterface: 'eth0', bridge: 'br0', guestIp: '10.0.2.2', gatewayIp: '10.0.2.1' };

describe('masquerade NAT table', () => {
  it('with no ports listed forwards everything, masquerades the guest out of the pod interface, drops forged sources', () => {
    expect(natRules({ ...NAT, ports: [] }).map(natRuleText)).toEqual([
      'prerouting: iifname "eth0" dnat to 10.0.2.2',
      'output: ip daddr 127.0.0.1 dnat to 10.0.2.2',
      'postrouting: ip saddr 10.0.2.2 oifname "eth0" masquerade',
      'postrouting: oifname "br0" ip saddr 127.0.0.1 snat to 10.0.2.1',
      'forward: iifname "br0" ip saddr != 10.0.2.2 drop',
    ]);
  });

  it('with ports forwards only those (a range as start-end), from outside and from the loopback', () => {
    const rules = natRules({
      ...NAT,
      ports: [
        { protocol: 'TCP', port: 80 },
        { protocol: 'UDP', port: 5000, endPort: 5010 },
      ],
    }).map(natRuleText);
    expect(rules).toEqual([
      'prerouting: iifname "eth0" tcp dport 80 dnat to 10.0.2.2',
      'prerouting: iifname "eth0" udp dport 5000-5010 dnat to 10.0.2.2',
      'output: ip daddr 127.0.0.1 tcp dport 80 dnat to 10.0.2.2',
      'output: ip daddr 127.0.0.1 udp dport 5000-5010 dnat to 10.0.2.2',
      'postrouting: ip saddr 10.0.2.2 oifname "eth0" masquerade',
      'postrouting: oifname "br0" ip saddr 127.0.0.1 tcp dport 80 snat to 10.0.2.1',
      'postrouting: oifname "br0" ip saddr 127.0.0.1 udp dport 5000-5010 snat to 10.0.2.1',
      'forward: iifname "br0" ip saddr != 10.0.2.2 drop',
    ]);
  });

  it('is one batch: table, flush, four chains, the rules, each message named', () => {
    const b = natBatch('tapwire_masq_br0', { ...NAT, ports: [{ protocol: 'TCP', port: 22 }] });
    expect(b.seqs.map((s) => s.what)).toEqual([
      'add table ip tapwire_masq_br0',
      'flush table ip tapwire_masq_br0',
      'add chain ip prerouting',
      'add chain ip output',
      'add chain ip postrouting',
      'add chain ip forward',
      'add rule ip prerouting: iifname "eth0" tcp dport 22 dnat to 10.0.2.2',
      'add rule ip output: ip daddr 127.0.0.1 tcp dport 22 dnat to 10.0.2.2',
      'add rule ip postrouting: ip saddr 10.0.2.2 oifname "eth0" masquerade',
      'add rule ip postrouting: oifname "br0" ip saddr 127.0.0.1 tcp dport 22 snat to 10.0.2.1',
      'add rule ip forward: iifname "br0" ip saddr != 10.0.2.2 drop',
    ]);
    expect(() => natBatch('bad name', { ...NAT, ports: [] })).toThrow(/invalid NAT table name/);
  });

  it('dual-stack: the ip6 table follows the ip one in the same batch, without loopback rules', () => {
    const six = { ...NAT, family: 6 as const, guestIp: 'fd10:0:2::2', gatewayIp: 'fd10:0:2::1', ports: [] };
    const b = natBatch('tapwire_masq_br0', [{ ...NAT, ports: [] }, six]);
    const what = b.seqs.map((s) => s.what);
    expect(what.slice(what.indexOf('add table ip6 tapwire_masq_br0'))).toEqual([
      'add table ip6 tapwire_masq_br0',
      'flush table ip6 tapwire_masq_br0',
      'add chain ip6 prerouting',
      'add chain ip6 output',
      'add chain ip6 postrouting',
      'add chain ip6 forward',
      'add rule ip6 prerouting: iifname "eth0" dnat to fd10:0:2::2',
      'add rule ip6 postrouting: ip6 saddr fd10:0:2::2 oifname "eth0" masquerade',
      'add rule ip6 forward: iifname "br0" ip6 saddr != fd10:0:2::2 drop',
    ]);
    expect(() => natBatch('t', { ...six, guestIp: '10.0.2.2' })).toThrow(/invalid NAT address/);
    expect(() => natBatch('t', { ...six, comment: 'x'.repeat(128) })).toThrow(/comment/);
  });

  it('the IPv6 guest CIDR: ::1 and ::2; refusals name the field', () => {
    expect(guestAddresses6('fd10:0:2::/120', 'f')).toMatchObject({ bridgeIp: 'fd10:0:2::1', guestIp: 'fd10:0:2::2' });
    expect(guestAddresses6('fd00:1::4/126', 'f')).toMatchObject({ bridgeIp: 'fd00:1::5', guestIp: 'fd00:1::6' });
    for (const bad of ['fd10:0:2::/127', 'fd10:0:2::1/120', 'fe80::/64', 'ff02::/16', '10.0.2.0/24', 'x', '::/0'])
      expect(() => guestAddresses6(bad, 'nics[0].guestCidr6')).toThrow(
        expect.objectContaining({ code: 'EINVAL', field: 'nics[0].guestCidr6' }),
      );
    expect(prefixesOverlap6(network6('fd10:0:2::5', 120), network6('fd10::', 16))).toBe(true);
    expect(prefixesOverlap6(network6('fd10:0:2::', 120), network6('fd10:0:2::100', 120))).toBe(false);
  });

  it('forwarding comments round-trip; anything else is not read as one', () => {
    expect(ipForwardFromComment(ipForwardComment('0'))).toBe('0');
    expect(ipForwardFromComment(ipForwardComment('1'))).toBe('1');
    expect(forwarding6FromComment(forwarding6Comment({ all: '1', default: '0', eth0: '1' }))).toEqual({
      all: '1',
      default: '0',
    });
    for (const c of [undefined, '', 'tapwire ip_forward=2', 'someone else', 'tapwire forwarding all=1'])
      expect([ipForwardFromComment(c), forwarding6FromComment(c)]).toEqual([undefined, undefined]);
  });

  it('the guest CIDR gives the bridge its first address and the guest its second; refusals name the field', () => {
    expect(guestAddresses('10.0.2.0/24', 'f')).toMatchObject({ bridgeIp: '10.0.2.1', guestIp: '10.0.2.2' });
    expect(guestAddresses('192.168.7.4/30', 'f')).toMatchObject({ bridgeIp: '192.168.7.5', guestIp: '192.168.7.6' });
    for (const bad of ['10.0.2.0/31', '10.0.2.1/24', 'x', '10.0.2.0'])
      expect(() => guestAddresses(bad, 'nics[0].guestCidr')).toThrow(
        expect.objectContaining({ code: 'EINVAL', field: 'nics[0].guestCidr' }),
      );
  });
});

describe('slirp domain side', () => {
  const nic = {
    name: 'default',
    binding: 'slirp',
    mac: '02:00:00:00:00:05',
    model: 'virtio-net-pci',
    queues: 1,
    vhost: false,
    hostfwd: {
      ip: '10.79.0.2',
      ports: [
        { protocol: 'TCP' as const, port: 8080 },
        { protocol: 'UDP' as const, port: 53, endPort: 54 },
      ],
    },
  };

  it('-netdev user with a hostfwd per listed port bound to the pod IP; no fds', () => {
    expect(slirpDomain.fdCount(nic)).toBe(0);
    expect(slirpDomain.qemuArgs(nic, { netdev: 'n0', device: 'd0' }, [], false)).toEqual([
      '-netdev',
      'user,id=n0,hostfwd=tcp:10.79.0.2:8080-:8080,hostfwd=udp:10.79.0.2:53-:53,hostfwd=udp:10.79.0.2:54-:54',
      '-device',
      'virtio-net-pci,netdev=n0,mac=02:00:00:00:00:05,id=d0',
    ]);
    expect(slirpDomain.qemuArgs({ ...nic, hostfwd: undefined }, { netdev: 'n0', device: 'd0' }, [], true)).toEqual([
      '-netdev',
      'user,id=n0',
      '-device',
      JSON.stringify({ driver: 'virtio-net-pci', netdev: 'n0', mac: '02:00:00:00:00:05', id: 'd0' }),
    ]);
    expect(slirpDomain.libvirtInterface(nic)).toContain(`<interface type='user'>`);
  });

  it('vmwrapper takes a slirp NIC with no fd next to a tap NIC, and checks its forwards', () => {
    const slirp = checkNic(nic, 0);
    const bridge = checkNic({ binding: 'bridge', mac: '02:00:00:00:00:06', model: 'e1000', queues: 1 }, 1);
    expect(netArgs([], [slirp, bridge], [7])).toEqual([
      '-netdev',
      'user,id=tapwire0,hostfwd=tcp:10.79.0.2:8080-:8080,hostfwd=udp:10.79.0.2:53-:53,hostfwd=udp:10.79.0.2:54-:54',
      '-device',
      'virtio-net-pci,netdev=tapwire0,mac=02:00:00:00:00:05,id=tapwire-nic0',
      '-netdev',
      'tap,id=tapwire1,fd=7',
      '-device',
      'e1000,netdev=tapwire1,mac=02:00:00:00:00:06,id=tapwire-nic1',
    ]);
    for (const hostfwd of [
      { ip: 'x', ports: [] },
      { ip: '10.0.0.1', ports: [{ protocol: 'SCTP', port: 1 }] },
      { ip: '10.0.0.1', ports: [{ protocol: 'TCP', port: 10, endPort: 9 }] },
      { ip: '10.0.0.1', ports: [{ protocol: 'TCP', port: 1, endPort: 1000 }] },
      { ip: '10.0.0.1,hostfwd=tcp::1-:1', ports: [] },
    ])
      expect(() => checkNic({ ...nic, hostfwd }, 2)).toThrow(expect.objectContaining({ field: 'nics[2].hostfwd' }));
  });
});

describe('masquerade request checks', () => {
  it('refuses two masquerade NICs whose guest networks overlap, naming the second', async () => {
    const { validateSetup } = await import('../../src/tapmanager/validate');
    const req = (second: Record<string, unknown>) => ({
      sandboxId: 'sb',
      netnsPath: '/proc/self/ns/net',
      nics: [
        { name: 'a', binding: 'masquerade', podInterface: 'eth0' },
        { name: 'b', binding: 'masquerade', podInterface: 'net1', ...second },
      ],
    });
    expect(() => validateSetup(req({}))).toThrow(
      expect.objectContaining({
        field: 'nics[1].guestCidr',
        message: expect.stringContaining("overlaps nics[0]'s guest network 10.0.2.0/24"),
      }),
    );
    expect(() => validateSetup(req({ guestCidr: '10.0.2.128/25' }))).toThrow(
      expect.objectContaining({ field: 'nics[1].guestCidr' }),
    );
    expect(validateSetup(req({ guestCidr: '10.0.3.0/24' })).nics[1]).toMatchObject({ guestCidr: '10.0.3.0/24' });
    expect(() => validateSetup(req({ binding: 'bridge', guestCidr: '10.0.3.0/24' }))).toThrow(
      expect.objectContaining({ field: 'nics[1].guestCidr' }),
    );
  });
});

describe('tapctl describe of the new bindings', () => {
  const veth = { ifname: 'eth0', ifindex: 2, mac: '02:00:00:00:00:01', mtu: 1450, up: true, addrs: [], routes: [] };
  const common = {
    cniIndex: 0,
    veth,
    vethNewMac: veth.mac,
    bridgeMac: '02:00:00:00:00:02',
    guestMac: '02:00:00:00:00:03',
    mtu: 1450,
    model: 'virtio-net-pci',
    queues: 1,
  };
  const masq: NicRecord = {
    ...common,
    name: 'default',
    binding: 'masquerade',
    bridge: 'br0',
    tap: 'tap0',
    ports: [{ protocol: 'TCP', port: 80 }],
    plan: {
      ip: '10.0.2.2',
      prefixLen: 24,
      routers: ['10.0.2.1'],
      classlessRoutes: [],
      dns: ['10.96.0.10'],
      search: [],
      mtu: 1450,
      unexpressible: [],
      warnings: [],
    },
    masq: {
      cidr: '10.0.2.0/24',
      bridgeIp: '10.0.2.1',
      guestIp: '10.0.2.2',
      prefixLen: 24,
      table: 'tapwire_masq_br0',
      ipForward: '0',
      podIps: ['10.1.0.5'],
    },
  };
  const slirp: NicRecord = {
    ...common,
    name: 'user',
    binding: 'slirp',
    bridge: '',
    tap: '',
    bridgeMac: '',
    ports: [{ protocol: 'UDP', port: 53 }],
    slirp: { podIp: '10.1.0.5' },
  };
  const mv: NicRecord = {
    ...common,
    name: 'seg',
    binding: 'macvtap',
    bridge: '',
    tap: 'mvtap1',
    tapIndex: 1234567890,
    bridgeMac: '',
    queues: 2,
    macvtap: { mode: 'passthru' },
  };

  it('draws each NIC as its binding builds it', () => {
    const nics = [masq, slirp, mv];
    const text = renderDescribe({
      sandboxId: 'sb',
      state: 'ready',
      netnsPath: '/run/netns/x',
      createdAt: 'now',
      nics: nics.map((n) => bindingOf(n).status(n)),
      dhcp: [],
      drift: [],
    });
    expect(text).toContain('nic default  binding masquerade');
    expect(text).toContain('pod interface, untouched: 10.1.0.5');
    expect(text).toContain('10.0.2.1/24 (10.0.2.0/24), route_localnet, DHCP server');
    expect(text).toContain('prerouting: iifname "eth0" tcp dport 80 dnat to 10.0.2.2');
    expect(text).toContain('nic user  binding slirp');
    expect(text).toContain('forwards: udp 10.1.0.5:53 -> guest');
    expect(text).toContain('nic seg  binding macvtap');
    expect(text).toContain('macvtap, passthru mode');
    expect(text).toContain('/dev/tap1234567890, vnet_hdr, queues 2');
    expect(bindingOf(mv).fence(mv)).toBeUndefined();
    expect(bindingOf(slirp).madeLinks(slirp, 'm')).toEqual([]);
    expect(bindingOf(mv).madeLinks(mv, 'm')).toEqual([
      { name: 'mvtap1', index: 1234567890, kind: 'macvtap', mark: 'm' },
    ]);
    expect([masq, slirp, mv].map((n) => bindingOf(n).servesDhcp(n))).toEqual([true, false, false]);
    expect(bindingOf(masq).lease(masq, {})).toMatchObject({ ip: '10.0.2.2', routers: ['10.0.2.1'], prefixLen: 24 });
    expect(bindingOf(masq).dhcpServerId?.(masq)).toBe('10.0.2.1');
  });

  const v6 = {
    cidr: 'fd10:0:2::/120',
    bridgeIp: 'fd10:0:2::1',
    guestIp: 'fd10:0:2::2',
    prefixLen: 120,
    linkLocal: 'fe80::2:ff:fe00:2',
    forwarding: { all: '0', default: '0' },
    podIps: ['fd00:1::5'],
  };
  const describeOne = (n: NicRecord): string =>
    renderDescribe({
      sandboxId: 'sb',
      state: 'ready',
      netnsPath: '/run/netns/x',
      createdAt: 'now',
      nics: [bindingOf(n).status(n)],
      dhcp: [],
      drift: [],
    });

  it('dual-stack and IPv6-only masquerade: both tables, the IPv6 side of the bridge and the guest', () => {
    const dual: NicRecord = { ...masq, masq: { ...masq.masq!, v6 } };
    const text = describeOne(dual);
    expect(text).toContain('pod interface, untouched: 10.1.0.5, fd00:1::5');
    expect(text).toContain('NAT table ip + ip6 tapwire_masq_br0');
    expect(text).toContain('fd10:0:2::1 (fd10:0:2::/120), fe80::2:ff:fe00:2: DHCPv6 server, router advertisements');
    expect(text).toContain('10.0.2.2/24  gw 10.0.2.1  fd10:0:2::2  gw fe80::2:ff:fe00:2');
    expect(text).toContain('prerouting: iifname "eth0" tcp dport 80 dnat to fd10:0:2::2');
    expect(text).not.toContain('daddr ::1');
    const { plan: _plan, ...noV4 } = masq;
    const only6: NicRecord = { ...noV4, masq: { ...masq.masq!, ipv4: false, podIps: [], v6 } };
    const text6 = describeOne(only6);
    expect(text6).toContain('NAT table ip6 tapwire_masq_br0');
    expect(text6).not.toContain('10.0.2');
    expect(bindingOf(only6).describe(only6)).toMatchObject({ ipv6: ['fd10:0:2::2'] });
    expect(bindingOf(only6).describe(only6).ip).toBeUndefined();
    expect(bindingOf(only6).lease(only6, {})).toBeUndefined();
  });
});
