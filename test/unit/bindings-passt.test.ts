// The pure parts of the passt binding: passt's command line (ports and ranges per
// protocol, DNS, the pod interface and MTU; setpriv to nobody with only
// CAP_NET_BIND_SERVICE), QEMU's stream netdev on the handed-over fd (as vmwrapper writes
// it, key=value and JSON), the libvirt element, the fds reply's entry, and tapctl
// describe's picture; a recorded passt stopped by pid and start time whatever its argv.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { bindingOf } from '../../src/tapmanager/bindings';
import { childArgv, passtArgv, portSpec } from '../../src/tapmanager/bindings/passt/args';
import { passtDomain } from '../../src/tapmanager/bindings/passt/domain';
import { isRecordedPasst, isRecordedProcess, procStartTime } from '../../src/tapmanager/bindings/passt/proc';
import { stopPasst } from '../../src/tapmanager/bindings/passt/supervisor';
import type { NicRecord } from '../../src/tapmanager/record';
import { renderDescribe, renderInterfaces } from '../../src/tapmanager/tapctl';
import { checkNic, expectedFdCount, netArgs } from '../../src/vmwrapper/args';

const nic: NicRecord = {
  name: 'default',
  binding: 'passt',
  cniIndex: 0,
  veth: {
    ifname: 'eth0',
    ifindex: 2,
    mac: '0a:58:0a:01:00:05',
    mtu: 1450,
    up: true,
    addrs: [{ family: 4, address: '10.1.0.5', prefixLen: 24, scope: 0, flags: 128 }],
    routes: [
      {
        family: 4,
        dst: '0.0.0.0/0',
        gateway: '10.1.0.1',
        scope: 'universe',
        protocol: 'boot',
        type: 'unicast',
        table: 254,
      },
    ],
  },
  vethNewMac: '0a:58:0a:01:00:05',
  bridge: '',
  bridgeMac: '',
  tap: '',
  guestMac: '02:00:00:50:41:53',
  mtu: 1450,
  model: 'virtio-net-pci',
  queues: 1,
  ports: [
    { protocol: 'TCP', port: 80 },
    { protocol: 'TCP', port: 9000, endPort: 9010 },
    { protocol: 'UDP', port: 53 },
  ],
  passt: {
    uid: 65534,
    gid: 65534,
    podIps: ['10.1.0.5/24', 'fd00::5/64'],
    dns: ['10.96.0.10'],
    search: ['ns.svc.cluster.local', 'svc.cluster.local'],
    pid: 4242,
    startTime: '123',
    socket: 777,
  },
};

describe('passt command line', () => {
  it('one spec per protocol: ports and ranges, or none', () => {
    expect(portSpec(nic.ports, 'TCP')).toBe('80,9000-9010');
    expect(portSpec(nic.ports, 'UDP')).toBe('53');
    expect(portSpec(undefined, 'TCP')).toBe('none');
    expect(portSpec([{ protocol: 'TCP', port: 7, endPort: 7 }], 'TCP')).toBe('7');
  });

  it('serves fd 3 in the foreground, quietly, on the pod interface with its MTU, the pod DNS and the listed ports', () => {
    expect(passtArgv(nic)).toEqual([
      'passt',
      '--foreground',
      '--quiet',
      '--fd',
      '3',
      '--interface',
      'eth0',
      '--mtu',
      '1450',
      '--tcp-ports',
      '80,9000-9010',
      '--udp-ports',
      '53',
      '--dns',
      '10.96.0.10',
      '--search',
      'ns.svc.cluster.local svc.cluster.local',
    ]);
    const bare = passtArgv({ ...nic, ports: undefined, passt: { ...nic.passt!, dns: [], search: [] } });
    expect(bare.slice(9)).toEqual(['--tcp-ports', 'none', '--udp-ports', 'none', '--no-dhcp-dns', '--no-dhcp-search']);
  });

  it('runs under setpriv as the recorded uid/gid, no groups, only CAP_NET_BIND_SERVICE (ambient)', () => {
    const c = childArgv(nic);
    expect(c.file).toBe('setpriv');
    expect(c.args.slice(0, 5)).toEqual([
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--inh-caps=-all,+net_bind_service',
      '--ambient-caps=+net_bind_service',
    ]);
    expect(c.args.slice(5)).toEqual(passtArgv(nic));
  });
});

describe('passt domain side', () => {
  const entry = bindingOf(nic).handOut.entry(nic);

  it('the fds reply: one fd, no vnet header, checked by vmwrapper', () => {
    expect(entry).toMatchObject({ binding: 'passt', mac: nic.guestMac, queues: 1, vnetHdr: false });
    const w = checkNic(entry, 0);
    expect(expectedFdCount([w])).toBe(1);
    expect(netArgs([], [w], [3])).toEqual([
      '-netdev',
      'stream,id=tapwire0,addr.type=fd,addr.str=3',
      '-device',
      'virtio-net-pci,netdev=tapwire0,mac=02:00:00:50:41:53,id=tapwire-nic0',
    ]);
  });

  it('JSON -device when libvirt wrote JSON devices', () => {
    expect(
      passtDomain.qemuArgs({ ...checkNic(entry, 0), binding: 'passt' }, { netdev: 'n', device: 'd' }, [5], true),
    ).toEqual([
      '-netdev',
      'stream,id=n,addr.type=fd,addr.str=5',
      '-device',
      JSON.stringify({ driver: 'virtio-net-pci', netdev: 'n', mac: '02:00:00:50:41:53', id: 'd' }),
    ]);
  });

  it("libvirt's user interface with the passt backend", () => {
    expect(renderInterfaces({ nics: [bindingOf(nic).status(nic)] })).toBe(
      [
        `<interface type='user'>`,
        `  <backend type='passt'/>`,
        `  <mac address='02:00:00:50:41:53'/>`,
        `  <model type='virtio'/>`,
        `  <alias name='ua-default'/>`,
        `</interface>`,
      ].join('\n'),
    );
  });
});

describe('passt pod side, pure parts', () => {
  it('no links, no lease, no fence, no DHCP interface; describe shows passt', () => {
    const b = bindingOf(nic);
    expect(b.madeLinks(nic, 'm')).toEqual([]);
    expect(b.lease(nic, {})).toBeUndefined();
    expect(b.fence(nic)).toBeUndefined();
    expect(b.describe(nic)).toMatchObject({
      binding: 'passt',
      ip: '10.1.0.5',
      prefixLen: 24,
      gateway: '10.1.0.1',
      passt: { pid: 4242, uid: 65534, socket: 'socket:[777]', podIps: ['10.1.0.5/24', 'fd00::5/64'] },
    });
    const text = renderDescribe({
      sandboxId: 'sb',
      state: 'ready',
      netnsPath: '/run/netns/x',
      createdAt: 'now',
      nics: [b.status(nic)],
      dhcp: [],
      drift: [],
    });
    expect(text).toContain('nic default  binding passt');
    expect(text).toContain('pod interface, untouched: 10.1.0.5/24, fd00::5/64');
    expect(text).toContain('passt  pid 4242  uid 65534  not supervised');
    expect(text).toContain('socket:[777] unix stream pair');
    expect(text).toContain('forwards: tcp *:80 -> guest, tcp *:9000-9010 -> guest, udp *:53 -> guest');
  });
});

describe('passt stopped by pid and start time, never by what its argv says', () => {
  // a process that rewrote its argv (here: started with another argv[0]) as a compromised passt could
  it('a recorded process that no longer looks like passt is still stopped; a reused pid (another start time) is not', async () => {
    const child = spawn('sleep', ['60'], { argv0: 'not-passt', stdio: 'ignore' });
    await new Promise((r) => child.once('spawn', r));
    const exited = new Promise((r) => child.once('exit', (_code, sig) => r(sig)));
    try {
      const startTime = procStartTime(child.pid!)!;
      expect(isRecordedPasst(child.pid, startTime)).toBe(false);
      expect(isRecordedProcess(child.pid, startTime)).toBe(true);
      await stopPasst({ ...nic, passt: { ...nic.passt!, pid: child.pid, startTime: String(Number(startTime) + 1) } });
      expect(child.exitCode === null && child.signalCode === null).toBe(true);
      await stopPasst({ ...nic, passt: { ...nic.passt!, pid: child.pid, startTime } });
      expect(await exited).toBe('SIGTERM');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
