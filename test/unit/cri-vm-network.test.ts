import { status } from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CniResult } from '../../src/cni/result';
import { buildNics, networkStatus, planVmNetwork, readSpec, type VmNetworkState } from '../../src/cri/vm-network';
import { NETWORK_SPEC_ANNOTATION, validateSpec } from '../../src/spec';

const result = (ifName: string, ip?: string, mac = '0a:00:00:00:00:01'): CniResult => ({
  cniVersion: '1.0.0',
  interfaces: [
    { name: 'veth1', mac: '0e:00:00:00:00:09' },
    { name: ifName, mac, sandbox: '/run/netns/x' },
  ],
  ips: ip ? [{ address: ip, gateway: ip.replace(/\d+\/\d+$/, '1'), interface: 1 }] : [],
  dns: { nameservers: ['10.96.0.10'] },
});

const spec = validateSpec({
  apiVersion: 'tapwire.io/v1alpha1',
  interfaces: [
    { name: 'seg', bridge: {} },
    { name: 'default', bridge: {}, macAddress: '02:00:00:00:00:aa', queues: 4, ports: [{ port: 80 }] },
    { name: 'blue', model: 'rtl8139', bridge: {} },
    { name: 'vf', bridge: {} },
  ],
  networks: [
    { name: 'default', pod: {} },
    { name: 'blue', multus: { networkName: 'blue' } },
    { name: 'seg', l2: { interfaceName: 'seg0' } },
    { name: 'vf', resource: { resourceName: 'intel.com/vf', interfaceName: 'vf3' } },
  ],
});

describe('the VM network spec to tapmanager nics', () => {
  const pod = result('eth0', '10.88.0.7/24');
  const state = (r?: CniResult): VmNetworkState => ({
    spec,
    extras: [{ name: 'blue', nad: 'ns/blue', network: 'bluenet', ifName: 'net1', ...(r ? { result: r } : {}) }],
  });

  it('masquerade on the pod network carries vmNetworkCIDR as guestCidr; macvtap on an L2 network gets its binding', () => {
    const s = validateSpec({
      apiVersion: 'tapwire.io/v1alpha1',
      interfaces: [
        { name: 'default', masquerade: {}, ports: [{ port: 22 }] },
        { name: 'seg', macvtap: {} },
      ],
      networks: [
        { name: 'default', pod: { vmNetworkCIDR: '10.11.0.0/24', vmIPv6NetworkCIDR: 'fd10:0:9::/120' } },
        { name: 'seg', l2: { interfaceName: 'seg0' } },
      ],
    });
    const nics = buildNics({ spec: s, extras: [] }, 'eth0', pod);
    expect(nics.map((n) => [n.name, n.binding, n.podInterface, n.guestCidr])).toEqual([
      ['default', 'masquerade', 'eth0', '10.11.0.0/24'],
      ['seg', 'macvtap', 'seg0', undefined],
    ]);
    expect(nics[0]!.ports).toEqual([{ port: 22, protocol: 'TCP' }]);
    expect(nics[0]!.guestCidr6).toBe('fd10:0:9::/120');
  });

  it('one NIC per interface, in spec order, each with its pod interface and CNI result', () => {
    const nics = buildNics(state(result('net1', '10.1.0.5/24')), 'eth0', pod);
    expect(nics).toEqual([
      { name: 'seg', binding: 'bridge', podInterface: 'seg0', model: 'virtio' },
      {
        name: 'default',
        binding: 'bridge',
        podInterface: 'eth0',
        cniResult: pod,
        macAddress: '02:00:00:00:00:aa',
        model: 'virtio',
        queues: 4,
        ports: [{ port: 80, protocol: 'TCP' }],
      },
      {
        name: 'blue',
        binding: 'bridge',
        podInterface: 'net1',
        cniResult: result('net1', '10.1.0.5/24'),
        model: 'rtl8139',
      },
      { name: 'vf', binding: 'bridge', podInterface: 'vf3', model: 'virtio' },
    ]);
  });

  it('a multus network whose CNI gave no address is L2 only', () => {
    const nics = buildNics(state(result('net1')), 'eth0', pod);
    expect(nics[2]).toEqual({ name: 'blue', binding: 'bridge', podInterface: 'net1', model: 'rtl8139' });
  });

  it('a multus network whose CNI gave only IPv6 is a bridge NIC with its IPv6 result (DHCPv6 + RA)', () => {
    const v6 = result('net1', 'fd00::5/64');
    expect(buildNics(state(v6), 'eth0', pod)[2]).toEqual({
      name: 'blue',
      binding: 'bridge',
      podInterface: 'net1',
      cniResult: v6,
      model: 'rtl8139',
    });
  });

  it('dhcpOptions on a network with no IPv4 address fail, naming the interface', () => {
    const s = validateSpec({
      apiVersion: 'tapwire.io/v1alpha1',
      interfaces: [{ name: 'blue', bridge: {}, dhcpOptions: { bootFileName: 'x' } }],
      networks: [{ name: 'blue', multus: { networkName: 'blue' } }],
    });
    const st: VmNetworkState = {
      spec: s,
      extras: [{ name: 'blue', nad: 'ns/blue', network: 'b', ifName: 'net1', result: result('net1') }],
    };
    expect(() => buildNics(st, 'eth0', pod)).toThrow(
      'interfaces[0].dhcpOptions: network "blue" got no IPv4 address from CNI, so no DHCP server serves it',
    );
    // an IPv6-only network has no DHCPv4 server either
    st.extras[0]!.result = result('net1', 'fd00::5/64');
    expect(() => buildNics(st, 'eth0', pod)).toThrow(
      'interfaces[0].dhcpOptions: network "blue" got no IPv4 address from CNI, so no DHCP server serves it',
    );
    st.extras[0]!.result = result('net1', '10.1.0.5/24');
    expect(buildNics(st, 'eth0', pod)[0]!.dhcpOptions).toEqual({ bootFileName: 'x' });
  });

  it('an empty spec autoattaches one NIC on the pod network', () => {
    const empty = validateSpec({ apiVersion: 'tapwire.io/v1alpha1' });
    expect(buildNics({ spec: empty, extras: [] }, 'eth0', pod)).toEqual([
      { name: 'default', binding: 'bridge', podInterface: 'eth0', cniResult: pod, model: 'virtio' },
    ]);
  });

  it("network-status in Multus's shape: pod network first, then every other network in spec order", () => {
    expect(networkStatus('twnet', 'eth0', pod, state(result('net1', '10.1.0.5/24', '0a:00:00:00:00:02')))).toEqual([
      {
        name: 'twnet',
        interface: 'eth0',
        ips: ['10.88.0.7'],
        mac: '0a:00:00:00:00:01',
        default: true,
        dns: { nameservers: ['10.96.0.10'] },
        gateway: ['10.88.0.1'],
      },
      { name: 'seg', interface: 'seg0', ips: [], default: false, dns: {} },
      {
        name: 'ns/blue',
        interface: 'net1',
        ips: ['10.1.0.5'],
        mac: '0a:00:00:00:00:02',
        default: false,
        dns: { nameservers: ['10.96.0.10'] },
        gateway: ['10.1.0.1'],
      },
      { name: 'vf', interface: 'vf3', ips: [], default: false, dns: {} },
    ]);
    expect(networkStatus('twnet', 'eth0', pod, undefined)).toHaveLength(1);
  });
});

describe('reading the spec and planning its networks', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-vmnet-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a bad annotation is INVALID_ARGUMENT naming the annotation; none is no spec', () => {
    expect(readSpec({})).toBeUndefined();
    expect(() => readSpec({ [NETWORK_SPEC_ANNOTATION]: '{}' })).toThrow(
      expect.objectContaining({
        code: status.INVALID_ARGUMENT,
        message: `annotation ${NETWORK_SPEC_ANNOTATION}: invalid network spec (1 problem): apiVersion: is required`,
      }),
    );
  });

  it('multus networks resolve in the pod namespace unless named, net1.. in spec order', () => {
    for (const [ns, name] of [
      ['default', 'blue'],
      ['other', 'red'],
    ] as const) {
      fs.mkdirSync(path.join(dir, ns), { recursive: true });
      fs.writeFileSync(
        path.join(dir, ns, `${name}.json`),
        JSON.stringify({ cniVersion: '1.0.0', name: `${name}net`, type: 'bridge' }),
      );
    }
    const s = validateSpec({
      apiVersion: 'tapwire.io/v1alpha1',
      interfaces: ['r', 'p', 'b'].map((name) => ({ name, bridge: {} })),
      networks: [
        { name: 'b', multus: { networkName: 'blue' } },
        { name: 'p', pod: {} },
        { name: 'r', multus: { networkName: 'other/red' } },
      ],
    });
    const plan = planVmNetwork(s, 'default', dir);
    expect(plan.state.extras).toEqual([
      { name: 'r', nad: 'other/red', network: 'rednet', ifName: 'net1' },
      { name: 'b', nad: 'default/blue', network: 'bluenet', ifName: 'net2' },
    ]);
    expect(plan.lists.map((l) => l.name)).toEqual(['rednet', 'bluenet']);
    expect(() => planVmNetwork(s, 'default', undefined)).toThrow(
      expect.objectContaining({
        code: status.FAILED_PRECONDITION,
        message: expect.stringMatching(/without --network-attachments-dir$/),
      }),
    );
    expect(() => planVmNetwork(s, 'elsewhere', dir)).toThrow(
      expect.objectContaining({
        code: status.FAILED_PRECONDITION,
        message: expect.stringMatching(/^network-attachment-definition elsewhere\/blue/),
      }),
    );
  });
});
