import { describe, expect, it } from 'vitest';
import {
  effectiveNics,
  isSpecError,
  NETWORK_SPEC_ANNOTATION,
  parseNetworkSpec,
  problemText,
  SPEC_API_VERSION,
  specFromAnnotations,
  validateSpec,
} from '../../src/spec';

const V = SPEC_API_VERSION;

/** A valid spec with one pod NIC, merged with `over`. */
function spec(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: V,
    interfaces: [{ name: 'default', bridge: {} }],
    networks: [{ name: 'default', pod: {} }],
    ...over,
  };
}

/** Every problem's text, or [] when the spec is valid. */
function problems(raw: unknown): string[] {
  try {
    validateSpec(raw);
    return [];
  } catch (e) {
    if (!isSpecError(e)) throw e;
    return e.problems.map(problemText);
  }
}

function textProblems(text: string): string[] {
  try {
    parseNetworkSpec(text);
    return [];
  } catch (e) {
    if (!isSpecError(e)) throw e;
    return e.problems.map(problemText);
  }
}

const one = (iface: Record<string, unknown>, net: Record<string, unknown> = { pod: {} }) =>
  spec({ interfaces: [{ name: 'a', bridge: {}, ...iface }], networks: [{ name: 'a', ...net }] });

describe('network spec: a valid spec', () => {
  it('fills the defaults and canonicalizes the MAC', () => {
    const s = validateSpec(one({ macAddress: 'DE-AD-00-00-BE-AF' }));
    expect(s).toEqual({
      apiVersion: V,
      interfaces: [{ name: 'a', model: 'virtio', macAddress: 'de:ad:00:00:be:af', ports: [], binding: 'bridge' }],
      networks: [{ name: 'a', kind: 'pod' }],
      autoattachPodInterface: true,
    });
  });

  it('orders networks as the interfaces are ordered and reads every kind', () => {
    const s = validateSpec(
      spec({
        interfaces: [
          { name: 'l2net', bridge: {} },
          { name: 'pod', bridge: {}, model: 'e1000' },
          { name: 'blue', bridge: {}, queues: 4, ports: [{ port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }] },
          { name: 'red', bridge: {} },
          { name: 'vf', bridge: {} },
        ],
        networks: [
          { name: 'pod', pod: {} },
          { name: 'red', multus: { networkName: 'red-net' } },
          { name: 'blue', multus: { networkName: 'other/blue-net' } },
          { name: 'vf', resource: { resourceName: 'intel.com/sriov', interfaceName: 'vf0' } },
          { name: 'l2net', l2: { interfaceName: 'seg0' } },
        ],
      }),
    );
    expect(s.networks).toEqual([
      { name: 'l2net', kind: 'l2', interfaceName: 'seg0' },
      { name: 'pod', kind: 'pod' },
      { name: 'blue', kind: 'multus', networkName: { namespace: 'other', name: 'blue-net' } },
      { name: 'red', kind: 'multus', networkName: { name: 'red-net' } },
      { name: 'vf', kind: 'resource', resourceName: 'intel.com/sriov', interfaceName: 'vf0' },
    ]);
    expect(s.interfaces[2]!.ports).toEqual([
      { port: 80, protocol: 'TCP' },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ]);
    expect(s.interfaces[2]!.queues).toBe(4);
    expect(s.interfaces[1]!.model).toBe('e1000');
  });

  it('keeps the DHCP options', () => {
    const dhcpOptions = {
      bootFileName: 'pxelinux.0',
      tftpServerName: 'tftp.example',
      ntpServers: ['10.0.0.1', '192.0.2.5'],
      privateOptions: [
        { option: 224, value: 'x' },
        { option: 254, value: 'y'.repeat(255) },
      ],
    };
    expect(validateSpec(one({ dhcpOptions })).interfaces[0]!.dhcpOptions).toEqual(dhcpOptions);
  });

  it('takes every NIC model', () => {
    for (const model of ['virtio', 'e1000', 'e1000e', 'ne2k_pci', 'pcnet', 'rtl8139'])
      expect(problems(one({ model })), model).toEqual([]);
  });

  it('takes an empty spec: KubeVirt autoattaches one bridge NIC on the pod network', () => {
    const s = validateSpec({ apiVersion: V });
    expect(s.interfaces).toEqual([]);
    expect(effectiveNics(s)).toEqual({
      interfaces: [{ name: 'default', model: 'virtio', ports: [], binding: 'bridge' }],
      networks: [{ name: 'default', kind: 'pod' }],
    });
  });

  it('autoattachPodInterface: false with no interfaces is refused (no NIC at all); with interfaces it changes nothing', () => {
    const none = [
      'autoattachPodInterface: false with no interfaces leaves the guest no NIC: a VM network has at least one (list an interface, or run the pod without tapwire)',
    ];
    expect(problems({ apiVersion: V, autoattachPodInterface: false })).toEqual(none);
    expect(problems({ apiVersion: V, autoattachPodInterface: false, interfaces: [] })).toEqual(none);
    const s = validateSpec(spec({ autoattachPodInterface: false }));
    expect(effectiveNics(s).interfaces.map((i) => i.name)).toEqual(['default']);
  });
});

describe('network spec: text', () => {
  it('reads YAML with MACs as strings (YAML 1.2 core, not 1.1 base-60 numbers)', () => {
    const s = parseNetworkSpec(
      [
        `apiVersion: ${V}`,
        'interfaces:',
        '  - name: default',
        '    macAddress: 02:00:00:00:00:59',
        '    bridge: {}',
        'networks:',
        '  - {name: default, pod: {}}',
      ].join('\n'),
    );
    expect(s.interfaces[0]!.macAddress).toBe('02:00:00:00:00:59');
  });

  it('reads JSON', () => {
    expect(parseNetworkSpec(JSON.stringify(spec())).interfaces[0]!.name).toBe('default');
  });

  it('refuses text that is neither, as one problem', () => {
    expect(textProblems('{"apiVersion": ')).toEqual([expect.stringMatching(/^spec: is neither JSON nor YAML: /)]);
    expect(textProblems('a: [1')).toHaveLength(1);
  });

  it('refuses duplicate YAML keys', () => {
    expect(textProblems(`apiVersion: ${V}\napiVersion: ${V}\n`)).toEqual([
      expect.stringMatching(/^spec: is neither JSON nor YAML: .*unique/i),
    ]);
  });

  it('keeps the core schema whatever the %YAML directive says, and takes only string keys', () => {
    const yaml11 = [
      '%YAML 1.1',
      '---',
      `apiVersion: ${V}`,
      'interfaces: [{name: x, macAddress: 12:30:00:00:00:01, bridge: {}}]',
      'networks: [{name: x, pod: {}}]',
    ].join('\n');
    expect(parseNetworkSpec(yaml11).interfaces[0]!.macAddress).toBe('12:30:00:00:00:01');
    expect(textProblems(`apiVersion: ${V}\n? [a]\n: 1\n`)).toEqual([
      expect.stringMatching(/^spec: is neither JSON nor YAML: .*keys must be strings/),
    ]);
    expect(textProblems('a: 1\n---\nb: 2')).toEqual([expect.stringMatching(/^spec: is neither JSON nor YAML: /)]);
  });

  it('refuses an alias bomb without expanding it', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 10; i++)
      lines.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    expect(textProblems(lines.join('\n'))).toEqual([expect.stringMatching(/^spec: is neither JSON nor YAML: /)]);
  });

  it('refuses text over 256 KiB and deep nesting without ending the process', () => {
    expect(textProblems(`# ${'x'.repeat(256 << 10)}`)).toEqual(['spec: is longer than 262144 bytes']);
    const deep = `${'['.repeat(50_000)}${']'.repeat(50_000)}`;
    expect(textProblems(deep).length).toBeGreaterThan(0);
    expect(textProblems(`a: ${deep.replaceAll('[', '{a: ').replaceAll(']', '}')}`).length).toBeGreaterThan(0);
  });

  it('refuses a document that is not an object', () => {
    expect(textProblems('- 1')).toEqual([
      'spec: [1] is not an object (a network spec: apiVersion, interfaces, networks, autoattachPodInterface)',
    ]);
    expect(textProblems('"x"')).toHaveLength(1);
    expect(textProblems('null')).toHaveLength(1);
  });

  it('reads the annotation; no annotation means no spec', () => {
    expect(specFromAnnotations({})).toBeUndefined();
    expect(specFromAnnotations(undefined)).toBeUndefined();
    expect(specFromAnnotations({ [NETWORK_SPEC_ANNOTATION]: JSON.stringify(spec()) })?.interfaces).toHaveLength(1);
    expect(() => specFromAnnotations({ [NETWORK_SPEC_ANNOTATION]: '' })).toThrow(/apiVersion|spec/);
  });
});

describe('network spec: one problem per problem, with path and value', () => {
  it('the issue example', () => {
    const s = spec({
      interfaces: [
        { name: 'default', bridge: {} },
        { name: 'b', bridge: {}, macAddress: 'zz:00' },
      ],
      networks: [
        { name: 'default', pod: {} },
        { name: 'b', multus: { networkName: 'b' } },
      ],
    });
    expect(problems(s)).toEqual([
      'interfaces[1].macAddress: "zz:00" is not a MAC address (like de:ad:00:00:be:af or DE-AD-00-00-BE-AF)',
    ]);
  });

  it('reports every problem at once, and the error message holds them all', () => {
    const s = {
      apiVersion: 'tapwire.io/v1',
      interfaces: [
        { name: 'A_', bridge: {}, model: 'virtio-net', macAddress: '01:00:00:00:00:01', queues: 0 },
        { name: 'b', passt: {} },
      ],
      networks: [{ name: 'b', multus: { networkName: 'x/y/z' } }],
      extra: true,
    };
    const p = problems(s);
    expect(p).toEqual([
      'apiVersion: "tapwire.io/v1" is not a supported apiVersion (tapwire.io/v1alpha1)',
      'interfaces[0].name: "A_" is not a name: 1-15 letters, digits and inner "-" (it must fit a Linux interface name)',
      'interfaces[0].model: "virtio-net" is not a NIC model (virtio, e1000, e1000e, ne2k_pci, pcnet, rtl8139)',
      'interfaces[0].macAddress: "01:00:00:00:00:01" is not a unicast MAC address (the group bit is set or it is all zeros)',
      'interfaces[0].queues: 0 is not an integer 1-16 (queues)',
      'networks[0].multus.networkName: "x/y/z" is not a NetworkAttachmentDefinition name: "name" or "namespace/name", lower case',
      'extra: true is not a known field',
      'interfaces[0].name: "A_" has no network of the same name in networks',
      "interfaces[1].passt: needs the pod network: networks[0] is not one (passt copies the pod's own address to the guest)",
    ]);
    try {
      validateSpec(s);
    } catch (e) {
      expect((e as Error).message).toMatch(
        /^invalid network spec \(9 problems\): apiVersion: .*; interfaces\[0\]\.name/,
      );
    }
  });

  it('apiVersion is required and must be known', () => {
    expect(problems({ interfaces: [] })).toEqual(['apiVersion: is required']);
    expect(problems({ apiVersion: 5 })).toEqual(['apiVersion: 5 is not a supported apiVersion (tapwire.io/v1alpha1)']);
  });

  it('top-level types', () => {
    expect(problems({ apiVersion: V, interfaces: {}, networks: 'x', autoattachPodInterface: 'no' })).toEqual([
      'interfaces: {} is not a list (interfaces)',
      'networks: "x" is not a list (networks)',
      'autoattachPodInterface: "no" is not true or false',
    ]);
    expect(problems({ apiVersion: V, interfaces: [null, 3] })).toEqual([
      expect.stringMatching(/^interfaces\[0\]: null is not an object \(an interface/),
      expect.stringMatching(/^interfaces\[1\]: 3 is not an object \(an interface/),
    ]);
  });

  it('at most 16 interfaces and networks', () => {
    const n = 17;
    const names = Array.from({ length: n }, (_, i) => `n${i}`);
    const p = problems(
      spec({
        interfaces: names.map((name) => ({ name, bridge: {} })),
        networks: names.map((name) => ({ name, l2: { interfaceName: `x${name}` } })),
      }),
    );
    expect(p).toEqual(['interfaces: has 17 entries, more than 16', 'networks: has 17 entries, more than 16']);
  });

  describe('interfaces[]', () => {
    it('name: required, a DNS label of at most 15 characters', () => {
      expect(problems(spec({ interfaces: [{ bridge: {} }], networks: [] }))).toEqual([
        'interfaces[0].name: is required',
      ]);
      for (const bad of ['', '-a', 'a-', 'a.b', 'a_b', 'a'.repeat(16), 'a b']) {
        const p = problems(one({ name: bad }, { pod: {} }));
        expect(p[0], bad).toBe(
          `interfaces[0].name: ${JSON.stringify(bad)} is not a name: 1-15 letters, digits and inner "-" (it must fit a Linux interface name)`,
        );
      }
      expect(problems(one({ name: 7 }))[0]).toBe('interfaces[0].name: 7 is not a string (a name)');
      expect(
        problems(
          spec({ interfaces: [{ name: 'a'.repeat(15), bridge: {} }], networks: [{ name: 'a'.repeat(15), pod: {} }] }),
        ),
      ).toEqual([]);
    });

    it('names are unique', () => {
      expect(
        problems(
          spec({
            interfaces: [
              { name: 'a', bridge: {} },
              { name: 'a', bridge: {} },
            ],
            networks: [{ name: 'a', pod: {} }],
          }),
        ),
      ).toEqual(['interfaces[1].name: "a" is also interfaces[0]\'s']);
    });

    it('macAddress: colons or dashes, unicast, not zero, unique', () => {
      expect(problems(one({ macAddress: 'de:ad:00:00:be:af' }))).toEqual([]);
      expect(problems(one({ macAddress: 'DE-AD-00-00-BE-AF' }))).toEqual([]);
      expect(problems(one({ macAddress: '00:00:00:00:00:00' }))).toEqual([
        'interfaces[0].macAddress: "00:00:00:00:00:00" is not a unicast MAC address (the group bit is set or it is all zeros)',
      ]);
      expect(problems(one({ macAddress: 'ff:ff:ff:ff:ff:ff' }))).toHaveLength(1);
      expect(problems(one({ macAddress: 'de:ad-00:00:be:af' }))).toEqual([
        'interfaces[0].macAddress: "de:ad-00:00:be:af" is not a MAC address (like de:ad:00:00:be:af or DE-AD-00-00-BE-AF)',
      ]);
      expect(problems(one({ macAddress: 52 }))).toEqual(['interfaces[0].macAddress: 52 is not a MAC address']);
      expect(
        problems(
          spec({
            interfaces: [
              { name: 'a', bridge: {}, macAddress: '02:00:00:00:00:01' },
              { name: 'b', bridge: {}, macAddress: '02-00-00-00-00-01' },
            ],
            networks: [
              { name: 'a', pod: {} },
              { name: 'b', l2: { interfaceName: 'x' } },
            ],
          }),
        ),
      ).toEqual(['interfaces[1].macAddress: "02-00-00-00-00-01" is also interfaces[0]\'s']);
    });

    it('model: one of the six', () => {
      expect(problems(one({ model: 'virtio-net-pci' }))).toEqual([
        'interfaces[0].model: "virtio-net-pci" is not a NIC model (virtio, e1000, e1000e, ne2k_pci, pcnet, rtl8139)',
      ]);
    });

    it('queues: 1-16, above 1 only with virtio', () => {
      for (const q of [1, 16]) expect(problems(one({ queues: q }))).toEqual([]);
      for (const q of [0, 17, 1.5, '2'])
        expect(problems(one({ queues: q }))).toEqual([
          `interfaces[0].queues: ${JSON.stringify(q)} is not an integer 1-16 (queues)`,
        ]);
      expect(problems(one({ queues: 1, model: 'e1000' }))).toEqual([]);
      expect(problems(one({ queues: 2, model: 'e1000' }))).toEqual([
        'interfaces[0].queues: 2 needs model virtio: e1000 has one queue',
      ]);
    });

    it('ports: port 1-65535, TCP or UDP, IANA names, no repeats', () => {
      expect(problems(one({ ports: [{ port: 1 }, { port: 65535, protocol: 'UDP', name: 'h-2' }] }))).toEqual([]);
      expect(problems(one({ ports: [{ port: 0 }] }))).toEqual([
        'interfaces[0].ports[0].port: 0 is not an integer 1-65535 (a port)',
      ]);
      expect(problems(one({ ports: [{ port: 65536 }] }))).toHaveLength(1);
      expect(problems(one({ ports: [{}] }))).toEqual(['interfaces[0].ports[0].port: is required']);
      expect(problems(one({ ports: [{ port: 80, protocol: 'tcp' }] }))).toEqual([
        'interfaces[0].ports[0].protocol: "tcp" is not TCP or UDP',
      ]);
      expect(problems(one({ ports: [{ port: 80, protocol: 'SCTP' }] }))).toHaveLength(1);
      for (const bad of ['HTTP', '80', 'a--b', '-a', 'a'.repeat(16)])
        expect(problems(one({ ports: [{ port: 80, name: bad }] }))[0], bad).toBe(
          `interfaces[0].ports[0].name: ${JSON.stringify(bad)} is not a port name: 1-15 of a-z, 0-9 and inner "-", with a letter, no "--"`,
        );
      expect(
        problems(one({ ports: [{ port: 80 }, { port: 80, protocol: 'TCP' }, { port: 80, protocol: 'UDP' }] })),
      ).toEqual(['interfaces[0].ports[1]: "80/TCP" is given twice']);
      expect(
        problems(
          one({
            ports: [
              { port: 80, name: 'web' },
              { port: 81, name: 'web' },
            ],
          }),
        ),
      ).toEqual(['interfaces[0].ports[1].name: "web" is given twice']);
      expect(problems(one({ ports: [{ port: 80, hostPort: 8080 }] }))).toEqual([
        'interfaces[0].ports[0].hostPort: 8080 is not a known field',
      ]);
      expect(problems(one({ ports: Array.from({ length: 257 }, (_, i) => ({ port: i + 1 })) }))).toHaveLength(1);
    });

    it('masquerade: on the pod network, with its vmNetworkCIDR; refused elsewhere, the CIDR refused on bridge', () => {
      const s = validateSpec(
        one({ bridge: undefined, masquerade: {}, ports: [{ port: 80 }] }, { pod: { vmNetworkCIDR: '10.11.0.0/24' } }),
      );
      expect(s.interfaces[0]).toMatchObject({ binding: 'masquerade', ports: [{ port: 80, protocol: 'TCP' }] });
      expect(s.networks[0]).toEqual({ name: 'a', kind: 'pod', vmNetworkCIDR: '10.11.0.0/24' });
      expect(problems(one({ bridge: undefined, masquerade: {} }, { multus: { networkName: 'blue' } }))).toEqual([
        "interfaces[0].masquerade: needs the pod network: networks[0] is not one (masquerade NATs the pod's own address)",
      ]);
      expect(problems(one({}, { pod: { vmNetworkCIDR: '10.11.0.0/24' } }))).toEqual([
        'networks[0].pod.vmNetworkCIDR: "10.11.0.0/24" is for a masquerade interface; interfaces[0] is not one',
      ]);
      expect(problems(one({ bridge: undefined, masquerade: {} }, { pod: { vmNetworkCIDR: '10.11.0.0/31' } }))).toEqual([
        'networks[0].pod.vmNetworkCIDR: "10.11.0.0/31" is not an IPv4 network of at most /30 in CIDR form, host bits clear (e.g. 10.0.2.0/24)',
      ]);
      expect(problems(one({}, { pod: { cidr: 'x' } }))).toEqual(['networks[0].pod.cidr: "x" is not a known field']);
    });

    it("masquerade: vmIPv6NetworkCIDR (KubeVirt's field) for its IPv6 guest network; checked, and masquerade only", () => {
      const s = validateSpec(
        one({ bridge: undefined, masquerade: {} }, { pod: { vmIPv6NetworkCIDR: 'fd10:0:9::/120' } }),
      );
      expect(s.networks[0]).toEqual({ name: 'a', kind: 'pod', vmIPv6NetworkCIDR: 'fd10:0:9::/120' });
      expect(problems(one({}, { pod: { vmIPv6NetworkCIDR: 'fd10:0:9::/120' } }))).toEqual([
        'networks[0].pod.vmIPv6NetworkCIDR: "fd10:0:9::/120" is for a masquerade interface; interfaces[0] is not one',
      ]);
      for (const bad of ['fd10:0:9::/127', 'fd10:0:9::1/120', 'fe80::/64', '10.0.2.0/24'])
        expect(problems(one({ bridge: undefined, masquerade: {} }, { pod: { vmIPv6NetworkCIDR: bad } }))).toEqual([
          `networks[0].pod.vmIPv6NetworkCIDR: "${bad}" is not a unicast IPv6 network of at most /126 in CIDR form, host bits clear (e.g. fd10:0:2::/120)`,
        ]);
    });

    it('ports may be ranges (endPort, at or after port)', () => {
      const s = validateSpec(
        one({ bridge: undefined, masquerade: {}, ports: [{ port: 5000, endPort: 5010, protocol: 'UDP' }] }),
      );
      expect(s.interfaces[0]!.ports).toEqual([{ port: 5000, endPort: 5010, protocol: 'UDP' }]);
      expect(problems(one({ ports: [{ port: 5000, endPort: 4000 }] }))).toEqual([
        'interfaces[0].ports[0].endPort: 4000 is below its port 5000',
      ]);
    });

    it('slirp on the pod network only and without dhcpOptions; macvtap on an L2 network only', () => {
      expect(validateSpec(one({ bridge: undefined, slirp: {} })).interfaces[0]!.binding).toBe('slirp');
      expect(problems(one({ bridge: undefined, slirp: {} }, { multus: { networkName: 'blue' } }))).toEqual([
        "interfaces[0].slirp: needs the pod network: networks[0] is not one (slirp forwards ports from the pod's own address)",
      ]);
      expect(problems(one({ bridge: undefined, slirp: {}, dhcpOptions: { bootFileName: 'x' } }))).toEqual([
        'interfaces[0].dhcpOptions: cannot be served: slirp runs its own DHCP server',
      ]);
      const l2 = { l2: { interfaceName: 'seg0' } };
      expect(validateSpec(one({ bridge: undefined, macvtap: {} }, l2)).interfaces[0]!.binding).toBe('macvtap');
      expect(problems(one({ bridge: undefined, macvtap: {} }))).toEqual([
        'interfaces[0].macvtap: needs an L2 network (multus, l2 or resource): networks[0] is the pod network',
      ]);
    });

    it('exactly one binding', () => {
      expect(problems(one({ bridge: undefined }))).toEqual([
        'interfaces[0]: has no binding: give exactly one, e.g. bridge: {}',
      ]);
      expect(problems(one({ masquerade: {} }))).toEqual([
        'interfaces[0]: has 2 bindings (bridge, masquerade): give exactly one',
      ]);
      // every binding KubeVirt names is implemented; passt on the pod network is taken
      expect(problems(one({ bridge: undefined, passt: {} }))).toEqual([]);
      expect(problems(one({ bridge: undefined, passt: {}, dhcpOptions: { bootFileName: 'x' } }))).toEqual([
        'interfaces[0].dhcpOptions: cannot be served: passt runs its own DHCP server',
      ]);
      expect(problems(one({ bridge: { x: 1 } }))).toEqual(['interfaces[0].bridge.x: 1 is not a known field']);
      expect(problems(one({ bridge: [] }))).toEqual([
        'interfaces[0].bridge: [] is not an object (a binding takes no fields: {})',
      ]);
      expect(problems(one({ sriov: {} }))).toEqual(['interfaces[0].sriov: {} is not a known field']);
    });

    it('unknown fields are refused (typos, KubeVirt fields tapwire does not implement)', () => {
      expect(problems(one({ macaddress: 'x', pciAddress: '0000:81:00.1' }))).toEqual([
        'interfaces[0].macaddress: "x" is not a known field',
        'interfaces[0].pciAddress: "0000:81:00.1" is not a known field',
      ]);
    });

    it('dhcpOptions: strings up to 255 bytes, IPv4 NTP servers, private options 224-254 once each', () => {
      const d = (dhcpOptions: unknown) => problems(one({ dhcpOptions }));
      expect(d({})).toEqual([]);
      expect(d({ bootFileName: '' })).toEqual([
        'interfaces[0].dhcpOptions.bootFileName: "" is empty (a DHCP option value)',
      ]);
      expect(d({ bootFileName: 'é'.repeat(128) })).toEqual([
        expect.stringMatching(
          /^interfaces\[0\]\.dhcpOptions\.bootFileName: "é+\.\.\..* is longer than 255 bytes \(a DHCP option value\)$/,
        ),
      ]);
      for (const bad of ['pxé.0', 'a\tb', 'a\nb', 'a\u007f'])
        expect(d({ tftpServerName: bad }), bad).toEqual([
          `interfaces[0].dhcpOptions.tftpServerName: ${JSON.stringify(bad)} is not printable ASCII (NVT ASCII, RFC 2132 2)`,
        ]);
      expect(d({ bootFileName: '~ /pxelinux.0 !' })).toEqual([]);
      expect(d({ privateOptions: [{ option: 230, value: 'é ok' }] })).toEqual([]);
      expect(d({ privateOptions: [{ option: 230, value: 'a\u0000b' }] })).toEqual([
        'interfaces[0].dhcpOptions.privateOptions[0].value: "a\\u0000b" contains a NUL character',
      ]);
      expect(d({ tftpServerName: 5 })).toEqual([
        'interfaces[0].dhcpOptions.tftpServerName: 5 is not a string (a DHCP option value)',
      ]);
      expect(d({ ntpServers: ['10.0.0.1', '10.0.0.256', 'ntp.example', '::1', 3] })).toEqual([
        'interfaces[0].dhcpOptions.ntpServers[1]: "10.0.0.256" is not an IPv4 address',
        'interfaces[0].dhcpOptions.ntpServers[2]: "ntp.example" is not an IPv4 address',
        'interfaces[0].dhcpOptions.ntpServers[3]: "::1" is not an IPv4 address',
        'interfaces[0].dhcpOptions.ntpServers[4]: 3 is not an IPv4 address',
      ]);
      expect(d({ ntpServers: Array(17).fill('10.0.0.1') })).toHaveLength(1);
      expect(d({ ntpServers: '10.0.0.1' })).toEqual([
        'interfaces[0].dhcpOptions.ntpServers: "10.0.0.1" is not a list (NTP servers)',
      ]);
      expect(
        d({
          privateOptions: [
            { option: 223, value: 'a' },
            { option: 255, value: 'a' },
            { option: 240, value: '' },
            { option: 241, value: 'v'.repeat(256) },
            { option: 242 },
            { option: 243, value: 7 },
            { option: 244, value: 'ok', type: 'string' },
            { option: 250, value: 'x' },
            { option: 250, value: 'y' },
          ],
        }),
      ).toEqual([
        'interfaces[0].dhcpOptions.privateOptions[0].option: 223 is not an integer 224-254 (a private DHCP option code)',
        'interfaces[0].dhcpOptions.privateOptions[1].option: 255 is not an integer 224-254 (a private DHCP option code)',
        'interfaces[0].dhcpOptions.privateOptions[2].value: "" is empty (a DHCP option value)',
        expect.stringMatching(
          /^interfaces\[0\]\.dhcpOptions\.privateOptions\[3\]\.value: "v+\.\.\..* is longer than 255 bytes/,
        ),
        'interfaces[0].dhcpOptions.privateOptions[4].value: is required',
        'interfaces[0].dhcpOptions.privateOptions[5].value: 7 is not a string (a DHCP option value)',
        'interfaces[0].dhcpOptions.privateOptions[6].type: "string" is not a known field',
        'interfaces[0].dhcpOptions.privateOptions[8].option: 250 is given twice',
      ]);
      expect(d({ leaseTime: 5 })).toEqual(['interfaces[0].dhcpOptions.leaseTime: 5 is not a known field']);
    });

    it('dhcpOptions are refused on a network with no DHCP server', () => {
      expect(problems(one({ dhcpOptions: {} }, { l2: { interfaceName: 'seg0' } }))).toEqual([
        'interfaces[0].dhcpOptions: cannot be served: networks[0] is an l2 network, with no IP and no DHCP server',
      ]);
      expect(
        problems(one({ dhcpOptions: {} }, { resource: { resourceName: 'a.io/b', interfaceName: 'vf0' } })),
      ).toEqual([
        'interfaces[0].dhcpOptions: cannot be served: networks[0] is a resource network, with no IP and no DHCP server',
      ]);
    });
  });

  describe('networks[]', () => {
    it('every interface has a network of the same name, and every network an interface', () => {
      expect(
        problems(
          spec({
            interfaces: [{ name: 'a', bridge: {} }],
            networks: [{ name: 'b', pod: {} }],
          }),
        ),
      ).toEqual([
        'interfaces[0].name: "a" has no network of the same name in networks',
        'networks[0].name: "b" has no interface of the same name in interfaces',
      ]);
    });

    it('names are unique and valid', () => {
      expect(
        problems(
          spec({
            networks: [
              { name: 'default', pod: {} },
              { name: 'default', l2: { interfaceName: 'x' } },
            ],
          }),
        ),
      ).toEqual(['networks[1].name: "default" is also networks[0]\'s']);
      expect(problems(spec({ networks: [{ name: 'Bad_', pod: {} }] }))[0]).toBe(
        'networks[0].name: "Bad_" is not a name: 1-15 letters, digits and inner "-" (it must fit a Linux interface name)',
      );
      expect(problems(spec({ networks: [{ pod: {} }] }))[0]).toBe('networks[0].name: is required');
    });

    it('exactly one kind', () => {
      expect(problems(one({}, {}))).toEqual([
        'networks[0]: has no kind: give exactly one of pod, multus, resource, l2',
      ]);
      expect(problems(one({}, { pod: {}, multus: { networkName: 'x' } }))).toEqual([
        'networks[0]: has 2 kinds (pod, multus): give exactly one',
      ]);
      expect(problems(one({}, { pod: { x: 1 } }))).toEqual(['networks[0].pod.x: 1 is not a known field']);
      expect(problems(one({}, { bridge: {} }))).toEqual([
        'networks[0].bridge: {} is not a known field',
        'networks[0]: has no kind: give exactly one of pod, multus, resource, l2',
      ]);
    });

    it('at most one pod network', () => {
      expect(
        problems(
          spec({
            interfaces: [
              { name: 'a', bridge: {} },
              { name: 'b', bridge: {} },
            ],
            networks: [
              { name: 'a', pod: {} },
              { name: 'b', pod: {} },
            ],
          }),
        ),
      ).toEqual(['networks[1].pod: is a second pod network (networks[0] is one)']);
    });

    it('multus: networkName is name or namespace/name, lower case', () => {
      for (const ok of ['a', 'ns/a', 'ns/a.b-c', `${'a'.repeat(63)}/b`])
        expect(problems(one({}, { multus: { networkName: ok } })), ok).toEqual([]);
      for (const bad of ['', 'A', 'ns/A', 'a/b/c', '/a', 'a/', 'a b', `${'a'.repeat(64)}/b`, 'ns.x/a']) {
        expect(problems(one({}, { multus: { networkName: bad } })), bad).toEqual([
          `networks[0].multus.networkName: ${JSON.stringify(bad)} is not a NetworkAttachmentDefinition name: "name" or "namespace/name", lower case`,
        ]);
      }
      expect(problems(one({}, { multus: {} }))).toEqual(['networks[0].multus.networkName: is required']);
      expect(problems(one({}, { multus: { networkName: 'a', default: true } }))).toEqual([
        'networks[0].multus.default: true is not a known field',
      ]);
    });

    it('resource: a resource name and the interface the device plugin put into the pod', () => {
      expect(problems(one({}, { resource: { resourceName: 'intel.com/sriov_net', interfaceName: 'vf0' } }))).toEqual(
        [],
      );
      expect(problems(one({}, { resource: { resourceName: 'sriov', interfaceName: 'vf0' } }))).toEqual([
        'networks[0].resource.resourceName: "sriov" is not a resource name like vendor.com/device',
      ]);
      expect(problems(one({}, { resource: { resourceName: 'a.io/b' } }))).toEqual([
        'networks[0].resource.interfaceName: is required',
      ]);
    });

    it('l2: a kernel interface name, not one CNI attachments get, not used twice', () => {
      for (const ok of ['seg0', 'a.b', 'a_b-c', 'x'.repeat(15)])
        expect(problems(one({}, { l2: { interfaceName: ok } })), ok).toEqual([]);
      for (const bad of ['', '.', '..', 'a/b', 'a:b', 'a b', 'x'.repeat(16)])
        expect(problems(one({}, { l2: { interfaceName: bad } })), bad).toEqual([
          `networks[0].l2.interfaceName: ${JSON.stringify(bad)} is not an interface name: 1-15 characters of letters, digits, "_", "." and "-"`,
        ]);
      for (const taken of ['eth0', 'net1', 'net12'])
        expect(problems(one({}, { l2: { interfaceName: taken } }))).toEqual([
          `networks[0].l2.interfaceName: "${taken}" is a name CNI attachments get (eth0, net1, net2, ...)`,
        ]);
      expect(
        problems(
          spec({
            interfaces: [
              { name: 'a', bridge: {} },
              { name: 'b', bridge: {} },
            ],
            networks: [
              { name: 'a', l2: { interfaceName: 'seg0' } },
              { name: 'b', resource: { resourceName: 'a.io/b', interfaceName: 'seg0' } },
            ],
          }),
        ),
      ).toEqual(['networks[1].resource.interfaceName: "seg0" is also networks[0]\'s']);
    });
  });
});
