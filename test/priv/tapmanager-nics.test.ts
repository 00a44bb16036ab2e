// The `nics` setup request on real namespaces: its validation (every error names the
// field and the value, and nothing is touched), two NICs on two pod interfaces with
// their own models/MACs/DHCP servers, an L2-only NIC (bridged with no IP handed over and
// no DHCP server, restored exactly), a rollback of the whole sandbox when the second NIC
// fails, and recovery of a nics sandbox by a new manager on the same state dir.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { NicRequest } from '../../src/tapmanager/protocol';
import { SandboxManager, type SandboxStatus } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { silentLogger } from '../../src/util/log';
import { ipDump, settledDump } from '../helpers/ip-dump';
import { createNetns, removeAllNetns, vethBetween, type TestNetns } from '../helpers/netns';
import { makePod, type Pod } from '../helpers/pod';
import { describePrivileged } from '../helpers/privileged';
import { killDaemons, startDaemon, stopDaemon } from '../helpers/daemon';

describePrivileged('tapmanager setup with nics', () => {
  let dir: string;
  let mgr: SandboxManager;
  const newManager = async (onStep?: (point: string) => void): Promise<SandboxManager> => {
    const store = new RecordStore(dir);
    await store.init();
    return new SandboxManager({ store, log: silentLogger, ...(onStep ? { onStep } : {}) });
  };
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-nics-'));
    mgr = await newManager();
  });
  afterEach(async () => {
    await mgr.close();
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const dhcpListeners = (ns: TestNetns): string => ns.exec('ss', ['-H', '-lun', 'sport = :67']);

  /** A pod with eth0 (pod network), net1 (a second CNI network) and net2 (an L2-only interface, no IP). */
  function threeInterfaces(): { p: Pod; second: Pod; seg: TestNetns } {
    const p = makePod({ ipv6: true });
    const second = makePod({ pod: p.pod, ifname: 'net1', net: p.ip.split('.')[1] === '201' ? 202 : 201 });
    const seg = createNetns('seg');
    vethBetween(seg, 'l2peer', p.pod, 'net2');
    p.pod.ip('link', 'set', 'net2', 'address', '02:00:00:00:02:02', 'up');
    return { p, second, seg };
  }

  it('refuses bad nics naming the field and the value, and touches nothing', async () => {
    const { p, second } = threeInterfaces();
    p.pod.ip('link', 'add', 'xbr0', 'type', 'bridge');
    const before = await settledDump(p.pod);
    const nic0 = { name: 'default', binding: 'bridge', podInterface: 'eth0', cniResult: p.cniResult };
    const nic1 = { name: 'blue', binding: 'bridge', podInterface: 'net1', cniResult: second.cniResult };
    const req = (nics: unknown[], extra: Record<string, unknown> = {}) => ({
      sandboxId: 'sb-bad',
      netnsPath: p.pod.path,
      nics,
      ...extra,
    });
    const cases: [unknown, Record<string, unknown>][] = [
      [
        req([{ ...nic0, binding: 'passt', dhcpOptions: { bootFileName: 'x' } }]),
        { code: 'EINVAL', field: 'nics[0].dhcpOptions', message: expect.stringContaining('passt runs its own DHCP') },
      ],
      [req([{ ...nic0, binding: 'vhostuser' }]), { code: 'EINVAL', field: 'nics[0].binding' }],
      [
        req([nic0, { ...nic1, macAddress: 'zz:00' }]),
        {
          field: 'nics[1].macAddress',
          message: expect.stringMatching(/^invalid nics\[1\]\.macAddress "zz:00": is not a MAC/),
        },
      ],
      [req([nic0, { ...nic1, macAddress: '03:00:00:00:00:01' }]), { field: 'nics[1].macAddress' }],
      [
        req([nic0, { ...nic1, macAddress: p.mac.toUpperCase() }]),
        { field: 'nics[1].macAddress', message: expect.stringContaining('which nics[0] has too') },
      ],
      [
        req([nic0, { ...nic1, name: 'default' }]),
        { field: 'nics[1].name', message: expect.stringContaining('nics[0]') },
      ],
      [req([nic0, { ...nic1, podInterface: 'eth0' }]), { field: 'nics[1].podInterface' }],
      [
        req([nic0, { ...nic1, podInterface: 'nope0', cniResult: undefined }]),
        { field: 'nics[1].podInterface', message: expect.stringContaining('"nope0"') },
      ],
      [req([{ ...nic0, model: 'virtio-net' }]), { field: 'nics[0].model' }],
      [
        req([nic0, { name: 'lo', binding: 'bridge', podInterface: 'lo' }]),
        { field: 'nics[1].podInterface', message: 'invalid nics[1].podInterface "lo": is the loopback device' },
      ],
      [
        req([nic0, { name: 'xbr', binding: 'bridge', podInterface: 'xbr0' }]),
        { field: 'nics[1].podInterface', message: expect.stringContaining('is a bridge device') },
      ],
      [req([{ ...nic0, model: 'e1000', queues: 2 }]), { field: 'nics[0].queues' }],
      [req([{ ...nic0, queues: 17 }]), { field: 'nics[0].queues' }],
      [
        req(
          Array.from({ length: 16 }, (_, i) => ({
            name: `n${i}`,
            binding: 'bridge',
            podInterface: `x${i}`,
            queues: 16,
          })),
        ),
        { field: 'nics[15].queues', message: expect.stringContaining('253') },
      ],
      [
        req([{ name: 'l2', binding: 'bridge', podInterface: 'net2', dhcpOptions: { bootFileName: 'x' } }]),
        { field: 'nics[0].dhcpOptions' },
      ],
      [
        req([{ ...nic0, dhcpOptions: { privateOptions: [{ option: 223, value: 'x' }] } }]),
        { field: 'nics[0].dhcpOptions.privateOptions[0].option' },
      ],
      [
        req([{ ...nic0, dhcpOptions: { bootFileName: 'bööt' } }]),
        { field: 'nics[0].dhcpOptions.bootFileName', message: expect.stringContaining('ASCII') },
      ],
      [
        req([
          {
            ...nic0,
            dhcpOptions: {
              privateOptions: [
                { option: 240, value: 'a' },
                { option: 240, value: 'b' },
              ],
            },
          },
        ]),
        { field: 'nics[0].dhcpOptions.privateOptions[1].option' },
      ],
      [
        req([{ ...nic0, dhcpOptions: { privateOptions: [{ option: 240, value: 'é'.repeat(200) }] } }]),
        { field: 'nics[0].dhcpOptions.privateOptions[0].value' },
      ],
      [
        req([{ ...nic0, dhcpOptions: { ntpServers: ['ntp.example'] } }]),
        { field: 'nics[0].dhcpOptions.ntpServers[0]' },
      ],
      [req([{ ...nic0, ports: [{ port: 0 }] }]), { field: 'nics[0].ports[0].port' }],
      [
        req([{ ...nic0, podInterface: 'net1' }]),
        { field: 'nics[0].podInterface', message: expect.stringContaining('eth0') },
      ],
      [req([nic0], { cniResult: p.cniResult }), { field: 'cniResult' }],
      [req([nic0], { queues: 2 }), { field: 'queues' }],
      [req([]), { field: 'nics' }],
      [{ sandboxId: 'sb-bad', netnsPath: p.pod.path }, { field: 'cniResult' }],
      [req([{ ...nic0, extra: 1 }]), { field: 'nics[0].extra' }],
    ];
    for (const [r, want] of cases) {
      await expect(mgr.setup(r), JSON.stringify(want)).rejects.toMatchObject(want);
    }
    expect(ipDump(p.pod)).toBe(before);
    expect(dhcpListeners(p.pod)).toBe('');
    expect(mgr.list()).toEqual([]);
  });

  it('two NICs on two pod interfaces, then an L2-only one: in order, with their models and MACs; teardown restores every interface exactly', async () => {
    const { p, second } = threeInterfaces();
    const before = await settledDump(p.pod);
    const res = await mgr.setup({
      sandboxId: 'sb-multi',
      netnsPath: p.pod.path,
      nics: [
        {
          name: 'default',
          binding: 'bridge',
          podInterface: 'eth0',
          cniResult: p.cniResult,
          macAddress: 'DE-AD-00-00-BE-AF',
        },
        { name: 'blue', binding: 'bridge', podInterface: 'net1', cniResult: second.cniResult, model: 'e1000' },
        { name: 'raw', binding: 'bridge', podInterface: 'net2', model: 'rtl8139' },
      ],
    });
    expect(res.nics).toEqual([
      expect.objectContaining({
        name: 'default',
        binding: 'bridge',
        veth: 'eth0',
        mac: 'de:ad:00:00:be:af',
        model: 'virtio-net-pci',
        ip: p.ip,
        gateway: p.gw,
      }),
      expect.objectContaining({ name: 'blue', veth: 'net1', mac: second.mac, model: 'e1000', ip: second.ip }),
      expect.objectContaining({ name: 'raw', veth: 'net2', mac: '02:00:00:00:02:02', model: 'rtl8139', l2Only: true }),
    ]);
    expect(res.nics[2]).not.toHaveProperty('ip');
    const [a, b, c] = res.nics.map((n) => n.bridge);
    expect(new Set([a, b, c]).size).toBe(3);
    for (const n of res.nics) expect(p.pod.ip('-o', 'link', 'show', n.veth)).toContain(`master ${n.bridge}`);
    // a DHCP server on each IP NIC's bridge, none on the L2-only one; the bridge of the
    // L2-only NIC has no address and its pod interface keeps what it had
    const listeners = dhcpListeners(p.pod);
    expect(listeners).toContain(`%${a}:67`);
    expect(listeners).toContain(`%${b}:67`);
    expect(listeners).not.toContain(`%${c}:67`);
    expect(p.pod.ip('-4', '-o', 'addr', 'show', c!)).toBe('');
    expect(p.pod.ip('-4', '-o', 'addr', 'show', 'net1')).toBe('');
    expect(p.pod.ip('neigh', 'show', 'dev', a!)).toContain('lladdr de:ad:00:00:be:af PERMANENT');
    // the fence has rules for the IP NICs only
    const fence = p.pod.exec('nft', ['list', 'table', 'bridge', 'tapwire']);
    expect(fence).toContain('eth0');
    expect(fence).toContain('net1');
    expect(fence).not.toContain('net2');

    const s = await mgr.status('sb-multi');
    expect(s.nics.map((n) => [n.name, n.mac, n.model, n.queues])).toEqual([
      ['default', 'de:ad:00:00:be:af', 'virtio-net-pci', 1],
      ['blue', second.mac, 'e1000', 1],
      ['raw', '02:00:00:00:02:02', 'rtl8139', 1],
    ]);
    expect(s.dhcp).toHaveLength(2);
    expect(mgr.list()[0]!.ips).toEqual([`${p.ip}/24`, `${second.ip}/24`]);

    // the fd reply: the NICs in order, with name and binding, one fd each
    const { result, fds } = await mgr.fds(res.netKey);
    try {
      expect(result.nics.map((n) => [n.name, n.binding, n.mac, n.model, n.queues, n.tap])).toEqual([
        ['default', 'bridge', 'de:ad:00:00:be:af', 'virtio-net-pci', 1, res.nics[0]!.tap],
        ['blue', 'bridge', second.mac, 'e1000', 1, res.nics[1]!.tap],
        ['raw', 'bridge', '02:00:00:00:02:02', 'rtl8139', 1, res.nics[2]!.tap],
      ]);
      expect(fds).toHaveLength(3);
    } finally {
      for (const fd of fds) fs.closeSync(fd);
    }

    expect(await mgr.teardown('sb-multi')).toEqual({ errors: [] });
    expect(ipDump(p.pod)).toBe(before);
    expect(dhcpListeners(p.pod)).toBe('');
  });

  it('an L2-only NIC carries the segment both ways: a frame from a peer on it reaches the tap, one written to the tap reaches the peer', async () => {
    const { p, seg } = threeInterfaces();
    seg.ip('addr', 'add', '192.168.77.1/24', 'dev', 'l2peer');
    seg.ip('link', 'set', 'l2peer', 'up');
    const peerMac = Buffer.from(
      seg
        .ip('-o', 'link', 'show', 'l2peer')
        .match(/link\/ether (\S+)/)![1]!
        .split(':')
        .map((h) => parseInt(h, 16)),
    );
    const res = await mgr.setup({
      sandboxId: 'sb-l2path',
      netnsPath: p.pod.path,
      nics: [{ name: 'raw', binding: 'bridge', podInterface: 'net2' }],
    });
    const { fds } = await mgr.fds(res.netKey);
    const pinger = spawn('ip', ['netns', 'exec', seg.name, 'ping', '-b', '-i', '0.2', '-w', '20', '192.168.77.255'], {
      stdio: 'ignore',
    });
    try {
      // the segment -> the guest: a frame from the peer's MAC arrives on the tap (after its vnet header)
      const buf = Buffer.alloc(4096);
      const deadline = Date.now() + 15_000;
      let seen = false;
      while (!seen && Date.now() < deadline) {
        const n = await new Promise<number>((ok, fail) =>
          fs.read(fds[0]!, buf, 0, buf.length, null, (e, got) => (e ? fail(e) : ok(got))),
        );
        seen = buf.subarray(0, n).indexOf(peerMac) >= 0;
      }
      expect(seen).toBe(true);
      // the guest -> the segment: a broadcast frame written to the tap is received by the peer
      const rx = (): number => Number(/RX:.*\n\s*\d+\s+(\d+)/.exec(seg.ip('-s', 'link', 'show', 'l2peer'))![1]);
      const before = rx();
      const frame = Buffer.concat([
        Buffer.alloc(10), // virtio_net_hdr: nothing to offload
        Buffer.from('ffffffffffff', 'hex'),
        Buffer.from(res.nics[0]!.mac.replaceAll(':', ''), 'hex'),
        Buffer.from('88b5', 'hex'), // IEEE local experimental ethertype
        Buffer.alloc(46, 0x5a),
      ]);
      for (let i = 0; i < 5; i++) fs.writeSync(fds[0]!, frame);
      await new Promise((r) => setTimeout(r, 300));
      expect(rx() - before).toBeGreaterThanOrEqual(5);
    } finally {
      pinger.kill();
      for (const fd of fds) fs.closeSync(fd);
    }
    expect(await mgr.teardown('sb-l2path')).toEqual({ errors: [] });
  });

  it('an L2-only NIC alone: no DHCP server, no address handed over, the interface restored byte for byte', async () => {
    const { p } = threeInterfaces();
    const before = await settledDump(p.pod);
    const res = await mgr.setup({
      sandboxId: 'sb-l2',
      netnsPath: p.pod.path,
      nics: [{ name: 'raw', binding: 'bridge', podInterface: 'net2' }],
    });
    expect(res.nics).toEqual([expect.objectContaining({ name: 'raw', l2Only: true, mac: '02:00:00:00:02:02' })]);
    expect(p.pod.ip('-o', 'link', 'show', 'net2')).toContain(`master ${res.nics[0]!.bridge}`);
    expect(dhcpListeners(p.pod)).toBe('');
    expect(mgr.list()[0]!.ips).toEqual([]);
    expect(await mgr.teardown('sb-l2')).toEqual({ errors: [] });
    expect(ipDump(p.pod)).toBe(before);
  });

  it('the second NIC fails to build: the whole sandbox is rolled back, the first NIC too', async () => {
    const { p, second } = threeInterfaces();
    const before = await settledDump(p.pod);
    await mgr.close();
    // after the plan is recorded, someone takes the name of the second NIC's tap
    mgr = await newManager((point) => {
      if (point === 'setup.recorded') p.pod.ip('tuntap', 'add', 'dev', 'tap1', 'mode', 'tap');
    });
    await expect(
      mgr.setup({
        sandboxId: 'sb-half',
        netnsPath: p.pod.path,
        nics: [
          { name: 'default', binding: 'bridge', podInterface: 'eth0', cniResult: p.cniResult },
          { name: 'blue', binding: 'bridge', podInterface: 'net1', cniResult: second.cniResult },
        ],
      }),
    ).rejects.toThrow(/tap1/);
    expect(mgr.list()).toEqual([]);
    expect(fs.readdirSync(path.join(dir, 'sandboxes'))).toEqual([]);
    p.pod.ip('link', 'del', 'tap1'); // the stranger's, left alone by the rollback
    expect(ipDump(p.pod)).toBe(before);
    expect(dhcpListeners(p.pod)).toBe('');
  });

  it('a restarted manager recovers a nics sandbox: no drift, DHCP for the IP NICs only, teardown exact', async () => {
    const { p, second } = threeInterfaces();
    const before = await settledDump(p.pod);
    const res = await mgr.setup({
      sandboxId: 'sb-rec',
      netnsPath: p.pod.path,
      nics: [
        { name: 'default', binding: 'bridge', podInterface: 'eth0', cniResult: p.cniResult, queues: 2 },
        { name: 'blue', binding: 'bridge', podInterface: 'net1', cniResult: second.cniResult, model: 'e1000e' },
        { name: 'raw', binding: 'bridge', podInterface: 'net2' },
      ],
    });
    await mgr.close();
    expect(dhcpListeners(p.pod)).toBe('');
    mgr = await newManager();
    await mgr.recover();
    const s = await mgr.status('sb-rec');
    expect(s).toMatchObject({ state: 'ready', drift: [] });
    expect(s.nics.map((n) => [n.name, n.model, n.queues, n.l2Only ?? false])).toEqual([
      ['default', 'virtio-net-pci', 2, false],
      ['blue', 'e1000e', 1, false],
      ['raw', 'virtio-net-pci', 1, true],
    ]);
    const listeners = dhcpListeners(p.pod);
    expect(listeners).toContain(`%${res.nics[0]!.bridge}:67`);
    expect(listeners).toContain(`%${res.nics[1]!.bridge}:67`);
    expect(listeners).not.toContain(`%${res.nics[2]!.bridge}:67`);
    // a repeated identical request answers from the record
    expect((await mgr.status('sb-rec')).nics).toHaveLength(3);
    expect(await mgr.teardown('sb-rec')).toEqual({ errors: [] });
    expect(ipDump(p.pod)).toBe(before);
  });

  for (const point of ['setup.built', 'setup.ready']) {
    it(`the daemon killed -9 at ${point} of a nics setup: the restart ${point === 'setup.ready' ? 'keeps and serves it' : 'rolls all NICs back'}; teardown exact`, async () => {
      const { p, second } = threeInterfaces();
      const before = await settledDump(p.pod);
      const nics: NicRequest[] = [
        { name: 'default', binding: 'bridge', podInterface: 'eth0', cniResult: p.cniResult },
        { name: 'blue', binding: 'bridge', podInterface: 'net1', cniResult: second.cniResult, model: 'e1000' },
        { name: 'raw', binding: 'bridge', podInterface: 'net2' },
      ];
      const req = { sandboxId: 'sb-kill', netnsPath: p.pod.path, nics };
      const d = await startDaemon(dir, { env: { TAPWIRE_TEST_CRASH_AFTER: point } });
      await expect(d.client.setup(req)).rejects.toMatchObject({ code: expect.stringMatching(/^(EPIPE|ECONNRESET)$/) });
      expect(await d.exited).toBe('SIGKILL');
      const r = await startDaemon(dir);
      if (point === 'setup.ready') {
        const s = (await r.client.status('sb-kill')) as SandboxStatus;
        expect(s).toMatchObject({ state: 'ready', drift: [] });
        expect(s.nics.map((n) => n.name)).toEqual(['default', 'blue', 'raw']);
        const listeners = dhcpListeners(p.pod);
        expect(listeners).toContain(`%${s.nics[0]!.bridge}:67`);
        expect(listeners).toContain(`%${s.nics[1]!.bridge}:67`);
        expect(listeners).not.toContain(`%${s.nics[2]!.bridge}:67`);
        expect(await r.client.teardown('sb-kill')).toEqual({ errors: [] });
      } else {
        expect(await r.client.list()).toEqual([]);
      }
      expect(ipDump(p.pod)).toBe(before);
      expect(dhcpListeners(p.pod)).toBe('');
      // and a retried setup works on the restarted daemon
      expect((await r.client.setup(req)).nics.map((n) => n.name)).toEqual(['default', 'blue', 'raw']);
      expect(await r.client.teardown('sb-kill')).toEqual({ errors: [] });
      expect(ipDump(p.pod)).toBe(before);
      await stopDaemon(r);
    });
  }
});
