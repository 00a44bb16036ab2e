// The binding contract's pure parts for the bridge binding: what a recorded NIC asks of
// the sandbox (lease with the spec's DHCP options, fence entries, links), how it is
// described, its QEMU arguments and libvirt <interface> element (validated against
// libvirt's own schema when virt-xml-validate is installed), and the refusal of the
// bindings tapwire knows but does not build yet.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BindingNotImplementedError, bindingOf, podBinding, UndoError } from '../../src/tapmanager/bindings';
import { bridgeDomain } from '../../src/tapmanager/bindings/bridge/domain';
import { domainBinding } from '../../src/tapmanager/bindings/domain';
import { BINDING_NAMES } from '../../src/tapmanager/bindings/names';
import { libvirtModel, qemuDevice } from '../../src/tapmanager/bindings/models';
import type { NicRecord } from '../../src/tapmanager/record';
import { renderDescribe, renderInterfaces } from '../../src/tapmanager/tapctl';
import { newCounters } from '../../src/dhcp/counters';
import { newCounters6 } from '../../src/dhcp6/counters';
import { inCI } from '../helpers/privileged';

const veth = { ifname: 'net1', ifindex: 7, mac: '02:00:00:00:00:07', mtu: 1500, up: true, addrs: [], routes: [] };
const plan = {
  ip: '10.1.0.2',
  prefixLen: 24,
  routers: ['10.1.0.1'],
  classlessRoutes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
  dns: ['10.1.0.1'],
  search: [],
  mtu: 1500,
  unexpressible: [],
  warnings: [],
};
const base: NicRecord = {
  name: 'blue',
  binding: 'bridge',
  cniIndex: 1,
  veth,
  vethNewMac: '02:00:00:00:01:07',
  bridge: 'br1',
  bridgeIndex: 0x40000001,
  bridgeMac: '02:00:00:00:02:07',
  tap: 'tap1',
  tapIndex: 0x40000002,
  guestMac: 'de:ad:00:00:be:af',
  mtu: 1500,
  model: 'e1000',
  queues: 1,
  plan,
};
const l2: NicRecord = { ...base, name: 'raw', plan: undefined };
delete (l2 as { plan?: unknown }).plan;

const plan6 = {
  addresses: ['fd00:7::5'],
  onLink: [{ prefix: 'fd00:7::', prefixLen: 64 }],
  router: 'fe80::1',
  dns: ['fd00:96::a'],
  search: [],
  mtu: 1450,
  warnings: [],
};
const v6only: NicRecord = { ...l2, name: 'six', plan6 };
/** a status's `ipv6` entry of the NIC on bridge br1, as GuestIpv6.stats() gives it */
const ipv6Stats = (bound: boolean) => [
  {
    dhcp6: {
      ...newCounters6(),
      ifname: 'br1',
      serverDuid: '00030001020000000207',
      addresses: ['fd00:7::5'],
      bindings: bound ? [{ client: '0001', iaid: 1, state: 'bound', boundAt: 'T0', expiresAt: 'T1' }] : [],
      received: 3,
      solicit: 1,
      request: 1,
      renew: 1,
      advertise: 1,
      reply: 2,
      relay: 1,
    },
    ra: {
      solicitations: 2,
      invalid: 1,
      answered: 2,
      rateLimited: 0,
      sent: 4,
      sendErrors: 0,
      router: 'fe80::1',
      mtu: 1450,
      onLink: ['fd00:7::/64'],
    },
  },
  // another NIC's, on another bridge: not this one's
  {
    dhcp6: { ...newCounters6(), ifname: 'br9', serverDuid: 'x', addresses: ['fd00:9::9'], bindings: [] },
    ra: { router: 'fe80::9' },
  },
];

describe('bridge binding, pod side', () => {
  const b = bindingOf(base);

  it('is the binding of records that name none (written before bindings were named)', () => {
    const old: Omit<NicRecord, 'binding'> = { ...base };
    delete (old as { binding?: string }).binding;
    expect(bindingOf(old as { binding?: string }).name).toBe('bridge');
  });

  it('leases the plan with the spec DHCP options; an L2-only NIC has no lease and no fence entry', () => {
    const dhcpOptions = {
      bootFileName: 'pxelinux.0',
      tftpServerName: 'tftp.example',
      ntpServers: ['10.1.0.5'],
      privateOptions: [{ option: 240, value: 'extra' }],
    };
    expect(b.lease({ ...base, dhcpOptions }, { hostname: 'vm', leaseTime: 600 })).toEqual({
      mac: 'de:ad:00:00:be:af',
      ip: '10.1.0.2',
      prefixLen: 24,
      routers: ['10.1.0.1'],
      classlessRoutes: plan.classlessRoutes,
      dns: ['10.1.0.1'],
      search: [],
      hostname: 'vm',
      mtu: 1500,
      leaseTime: 600,
      ...dhcpOptions,
    });
    expect(b.fence(base)).toEqual({ bridge: 'br1', veth: 'net1', tap: 'tap1', guestMac: 'de:ad:00:00:be:af' });
    expect(b.servesDhcp(base)).toBe(true);
    expect(b.servesDhcp(l2)).toBe(false);
    expect(b.lease(l2, {})).toBeUndefined();
    expect(b.fence(l2)).toBeUndefined();
    expect(b.dhcpInterface(base)).toBe('br1');
  });

  it('describes a NIC with its name and binding, and an L2-only one without an address', () => {
    expect(b.describe(base)).toMatchObject({ name: 'blue', binding: 'bridge', ip: '10.1.0.2', gateway: '10.1.0.1' });
    const d = b.describe(l2);
    expect(d).toMatchObject({ name: 'raw', l2Only: true, mac: 'de:ad:00:00:be:af' });
    expect(d).not.toHaveProperty('ip');
    expect(b.status(l2)).toMatchObject({ routes: [], unexpressible: [], warnings: [] });
    const { name: _n, binding: _b, ...legacy } = base;
    expect(b.describe(legacy)).not.toHaveProperty('name');
  });

  it('names the links it made for the batch delete', () => {
    expect(b.madeLinks(base, 'm')).toEqual([
      { name: 'tap1', index: 0x40000002, kind: 'tun', mark: 'm' },
      { name: 'br1', index: 0x40000001, kind: 'bridge', mark: 'm' },
    ]);
  });

  it('every binding KubeVirt names has both sides; any other name is refused, naming the field (typed, ENOTSUP)', () => {
    for (const name of BINDING_NAMES) {
      expect(podBinding(name).name).toBe(name);
      expect(domainBinding(name)?.name).toBe(name);
    }
    let err: unknown;
    try {
      podBinding('vhostuser', 'nics[2].binding');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BindingNotImplementedError);
    expect(err).toMatchObject({ code: 'ENOTSUP', field: 'nics[2].binding', binding: 'vhostuser' });
    expect(domainBinding('vhostuser')).toBeUndefined();
  });

  it('UndoError carries the step, the target and the cause code', () => {
    const e = UndoError.of(
      'delete tap',
      '"tap1"',
      Object.assign(new Error('Device or resource busy'), { code: 'EBUSY' }),
    );
    expect(e).toMatchObject({ step: 'delete tap', target: '"tap1"', code: 'EBUSY' });
    expect(e.message).toBe('delete tap "tap1": Device or resource busy');
    expect(UndoError.of('remove fence', undefined, 'boom').code).toBe('EIO');
  });
});

describe('bridge binding, domain side', () => {
  const nic = {
    name: 'blue',
    binding: 'bridge',
    mac: 'de:ad:00:00:be:af',
    model: 'e1000',
    queues: 1,
    vhost: false,
    tap: 'tap1',
  };

  it('maps spec models to QEMU devices and back to libvirt model types', () => {
    expect(qemuDevice('virtio')).toBe('virtio-net-pci');
    expect(qemuDevice('ne2k_pci')).toBe('ne2k_pci');
    expect(libvirtModel('virtio-net-pci')).toBe('virtio');
    expect(libvirtModel('e1000e')).toBe('e1000e');
  });

  it('writes one -netdev/-device pair for its fds', () => {
    expect(bridgeDomain.fdCount({ ...nic, queues: 3 })).toBe(3);
    expect(bridgeDomain.qemuArgs(nic, { netdev: 'n0', device: 'd0' }, [9], false)).toEqual([
      '-netdev',
      'tap,id=n0,fd=9',
      '-device',
      'e1000,netdev=n0,mac=de:ad:00:00:be:af,id=d0',
    ]);
    const mq = { ...nic, model: 'virtio-net-pci', queues: 2 };
    expect(bridgeDomain.qemuArgs(mq, { netdev: 'n0', device: 'd0' }, [9, 10], true)).toEqual([
      '-netdev',
      'tap,id=n0,fds=9:10',
      '-device',
      JSON.stringify({
        driver: 'virtio-net-pci',
        netdev: 'n0',
        mac: 'de:ad:00:00:be:af',
        id: 'd0',
        mq: true,
        vectors: 6,
      }),
    ]);
  });

  it("tapctl interfaces: libvirt <interface> elements in NIC order, valid against libvirt's schema", () => {
    const xml = renderInterfaces({
      nics: [
        { ...bindingOf(base).status({ ...base, name: 'default', model: 'virtio-net-pci', queues: 4, tap: 'tap0' }) },
        { ...bindingOf(base).status(base) },
      ],
    });
    expect(xml).toBe(
      [
        `<interface type='ethernet'>`,
        `  <mac address='de:ad:00:00:be:af'/>`,
        `  <target dev='tap0' managed='no'/>`,
        `  <model type='virtio'/>`,
        `  <driver name='qemu' queues='4'/>`,
        `  <alias name='ua-default'/>`,
        `</interface>`,
        `<interface type='ethernet'>`,
        `  <mac address='de:ad:00:00:be:af'/>`,
        `  <target dev='tap1' managed='no'/>`,
        `  <model type='e1000'/>`,
        `  <alias name='ua-blue'/>`,
        `</interface>`,
      ].join('\n'),
    );
    // libvirt-clients' virt-xml-validate runs xmllint (libxml2-utils); both come with scripts/setup.sh
    let validator = '';
    try {
      validator = execFileSync('sh', ['-c', 'command -v xmllint >/dev/null && command -v virt-xml-validate'], {
        encoding: 'utf8',
      }).trim();
    } catch {
      const why = 'virt-xml-validate or xmllint is not installed (scripts/setup.sh installs both)';
      if (inCI) throw new Error(why);
      console.log(`${why}: the schema check is left out`);
    }
    if (!validator) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-ifxml-'));
    try {
      const file = path.join(dir, 'domain.xml');
      fs.writeFileSync(
        file,
        `<domain type='qemu'><name>x</name><memory>65536</memory><os><type>hvm</type></os><devices>\n${xml}\n</devices></domain>\n`,
      );
      execFileSync(validator, [file, 'domain'], { stdio: 'pipe' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tapctl describe of an IPv6-only NIC: no DHCPv4 server line; the DHCPv6 address and exchange and the RA picture', () => {
    const text = renderDescribe({
      sandboxId: 'sb',
      state: 'ready',
      netnsPath: '/run/netns/x',
      createdAt: 'now',
      nics: [bindingOf(v6only).status(v6only)],
      dhcp: [],
      ipv6: ipv6Stats(true),
      drift: [],
    });
    expect(text).not.toContain('169.254.254.2');
    expect(text).not.toContain('lease:');
    expect(text).not.toContain('option 121');
    expect(text).not.toMatch(/DHCP:/);
    expect(text).toContain('fence: no DHCPv6, RS/RA crosses net1');
    expect(text).toMatch(/br1 .*DHCPv6 server, router adverts$/m);
    expect(text).toContain('guest  de:ad:00:00:be:af  fd00:7::5/128  gw fe80::1  mtu 1500');
    expect(text).toContain(
      'DHCPv6: fd00:7::5 (IA_NA), server DUID 00030001020000000207; binding: bound since T0, expires T1',
    );
    expect(text).toContain('DHCPv6: received 3 (1 solicit, 1 request, 1 renew), sent 1 advertise 2 reply, ignored 1');
    expect(text).toContain('RA: router fe80::1, managed (M+O), mtu 1450, on-link fd00:7::/64');
    expect(text).toContain('RA: sent 4; router solicitations 3: 2 answered, 0 rate-limited, 1 invalid');
    expect(text).not.toContain('fd00:9::9');
  });

  it('tapctl describe of a dual-stack NIC: the DHCPv4 lines and the IPv6 ones', () => {
    const dual: NicRecord = { ...base, plan6 };
    const text = renderDescribe({
      sandboxId: 'sb',
      state: 'ready',
      netnsPath: '/run/netns/x',
      createdAt: 'now',
      nics: [bindingOf(dual).status(dual)],
      dhcp: [{ ...newCounters(), ifname: 'br1', received: 2, offer: 1, ack: 1, leases: [] }],
      ipv6: ipv6Stats(false),
      drift: [],
    });
    expect(text).toContain('fence: no DHCP, DHCPv6, RS/RA crosses net1');
    expect(text).toMatch(/br1 .*169\.254\.254\.2\/24, DHCP server; DHCPv6 server, router adverts$/m);
    expect(text).toContain('guest  de:ad:00:00:be:af  10.1.0.2/24 fd00:7::5/128  gw 10.1.0.1 fe80::1  mtu 1500');
    expect(text).toContain('lease: none yet');
    expect(text).toContain('DHCP: received 2, sent 1 offer 1 ack 0 nak, ignored 0');
    expect(text).toContain('binding: none yet');
    expect(text).toContain('option 121: 0.0.0.0/0 via 10.1.0.1');
  });

  it('tapctl describe shows an L2-only NIC without address, fence or lease', () => {
    const text = renderDescribe({
      sandboxId: 'sb',
      state: 'ready',
      netnsPath: '/run/netns/x',
      createdAt: 'now',
      nics: [bindingOf(l2).status(l2)],
      dhcp: [],
      drift: [],
    });
    expect(text).toContain('nic raw  binding bridge  L2 only');
    expect(text).toContain('no address, no DHCP server');
    expect(text).not.toContain('lease:');
    expect(text).not.toContain('169.254.254.2');
  });
});
