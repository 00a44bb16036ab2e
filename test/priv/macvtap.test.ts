// The macvtap binding on real namespaces: a pod with an L2 interface (net2, a veth whose
// peer sits in a "segment" netns with a static address), tapmanager (SandboxManager
// in-process) puts a macvtap on it and hands its /dev/tapN fds (one per queue); a
// "guest" netns stands in for the VM (test/fixtures/tap-relay.py relays between a fd
// and a veth whose peer is the guest NIC). The guest, with a static address on the
// segment, reaches the peer; in passthru mode too; with 2 queues there are 2 fds.
// Revoke detaches the holder (the macvtap is remade: same name, ifindex, mode, MAC, mark)
// and a new fetch works. Teardown leaves the pod byte for byte as it was.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { renderDescribe } from '../../src/tapmanager/tapctl';
import { silentLogger } from '../../src/util/log';
import { waitFor } from '../fixtures/dhcp-net';
import { settledDump } from '../helpers/ip-dump';
import { createNetns, removeAllNetns, vethBetween, type TestNetns } from '../helpers/netns';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const RELAY = path.join(__dirname, '..', 'fixtures', 'tap-relay.py');
const GUEST_MAC = '02:00:00:4d:56:54';

describePrivileged('macvtap binding on an L2 pod interface', () => {
  const noTools = requireTools('busybox', 'python3');
  let dir: string;
  let mgr: SandboxManager;
  let relay: ChildProcess | undefined;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-mvtap-'));
    const store = new RecordStore(dir);
    await store.init();
    mgr = new SandboxManager({ store, log: silentLogger });
  });
  afterEach(async () => {
    await stopVm();
    await mgr.close();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function stopVm(): Promise<void> {
    if (!relay || relay.exitCode !== null || relay.signalCode !== null) return;
    const gone = new Promise((r) => relay!.once('exit', r));
    relay.kill('SIGKILL');
    await gone;
    relay = undefined;
  }

  async function startVm(guest: TestNetns, fd: number): Promise<void> {
    let out = '';
    relay = spawn('python3', [RELAY, '--fd', '3', guest.path, 'r0'], { stdio: ['ignore', 'pipe', 'pipe', fd] });
    relay.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    relay.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(`relay ready (${out})`, () => out.includes('RELAY-READY'), 10_000);
  }

  for (const mode of ['bridge', 'passthru'] as const) {
    it(`${mode} mode: the guest on the macvtap reaches a peer on the segment; 2 queues give 2 fds; teardown exact`, async (ctx) => {
      if (noTools) {
        if (inCI) throw new Error(noTools);
        return ctx.skip(noTools);
      }
      const pod = createNetns('mvpod');
      const seg = createNetns('mvseg');
      vethBetween(seg, 'peer0', pod, 'net2');
      pod.ip('link', 'set', 'net2', 'up');
      seg.ip('link', 'set', 'peer0', 'up');
      seg.ip('addr', 'add', '192.168.61.1/24', 'dev', 'peer0');
      const before = await settledDump(pod);

      const res = await mgr.setup({
        sandboxId: `sb-mv-${mode}`,
        netnsPath: pod.path,
        nics: [
          {
            name: 'seg',
            binding: 'macvtap',
            podInterface: 'net2',
            macvtapMode: mode,
            // passthru: the guest takes net2's own MAC
            ...(mode === 'bridge' ? { macAddress: GUEST_MAC } : {}),
            queues: 2,
          },
        ],
      });
      const nic = res.nics[0]!;
      const mac = mode === 'bridge' ? GUEST_MAC : /link\/ether (\S+)/.exec(pod.ip('link', 'show', 'net2'))![1]!;
      expect(nic).toMatchObject({ binding: 'macvtap', mac, queues: 2, l2Only: true });
      const link = pod.ip('-d', 'link', 'show', nic.tap);
      expect(link).toContain(`macvtap mode ${mode}`);
      expect(link).toContain(`link/ether ${mac}`);
      expect(renderDescribe(await mgr.status(`sb-mv-${mode}`))).toContain(`macvtap, ${mode} mode`);

      const { fds, result } = await mgr.fds(res.netKey);
      expect(fds).toHaveLength(2);
      expect(result.nics[0]).toMatchObject({ binding: 'macvtap', queues: 2, vnetHdr: true });
      const guest = createNetns('mvguest');
      guest.ip('link', 'add', 'g0', 'type', 'veth', 'peer', 'name', 'r0');
      guest.ip('link', 'set', 'g0', 'address', mac, 'up');
      guest.ip('link', 'set', 'r0', 'up');
      guest.ip('addr', 'add', '192.168.61.2/24', 'dev', 'g0');
      try {
        await startVm(guest, fds[0]!);
      } finally {
        fds.forEach((fd) => fs.closeSync(fd));
      }
      expect(guest.exec('busybox', ['ping', '-c', '2', '-W', '3', '192.168.61.1'])).toMatch(/2 packets received/);
      expect(seg.ip('neigh', 'show', '192.168.61.2')).toContain(mac);

      await stopVm();
      expect(await mgr.teardown(`sb-mv-${mode}`)).toEqual({ errors: [] });
      expect(await settledDump(pod)).toBe(before);
    }, 60_000);
  }

  it('revoke detaches the holder of the /dev/tapN fds (the macvtap remade as it was); the next fetch carries traffic; teardown exact', async (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const pod = createNetns('mvpod');
    const seg = createNetns('mvseg');
    vethBetween(seg, 'peer0', pod, 'net2');
    pod.ip('link', 'set', 'net2', 'up');
    seg.ip('link', 'set', 'peer0', 'up');
    seg.ip('addr', 'add', '192.168.62.1/24', 'dev', 'peer0');
    const before = await settledDump(pod);
    const res = await mgr.setup({
      sandboxId: 'sb-mv-rev',
      netnsPath: pod.path,
      nics: [{ name: 'seg', binding: 'macvtap', podInterface: 'net2', macAddress: GUEST_MAC }],
    });
    const tap = res.nics[0]!.tap;
    const link = () =>
      pod
        .ip('-d', 'link', 'show', tap)
        .replace(/ state \S+/, '')
        .replace(/ qdisc \S+/, '');
    const guest = createNetns('mvguest');
    guest.ip('link', 'add', 'g0', 'type', 'veth', 'peer', 'name', 'r0');
    guest.ip('link', 'set', 'g0', 'address', GUEST_MAC, 'up');
    guest.ip('link', 'set', 'r0', 'up');
    guest.ip('addr', 'add', '192.168.62.2/24', 'dev', 'g0');
    const fetchAndRelay = async () => {
      const { fds } = await mgr.fds(res.netKey);
      try {
        await startVm(guest, fds[0]!);
      } finally {
        fds.forEach((fd) => fs.closeSync(fd));
      }
    };
    const ping = (): string => {
      guest.ip('neigh', 'flush', 'dev', 'g0');
      try {
        return guest.exec('busybox', ['ping', '-c', '2', '-W', '2', '192.168.62.1']);
      } catch (e) {
        return String((e as { stdout?: unknown }).stdout ?? '');
      }
    };
    await fetchAndRelay();
    expect(ping()).toMatch(/2 packets received/);
    const linkBefore = link();

    const { revoked } = await mgr.revoke('sb-mv-rev');
    expect(revoked).toEqual([{ tap, attached: 0, disabled: 0, uncounted: true }]);
    expect(link()).toBe(linkBefore); // same name, ifindex, mode, MAC, mark
    // the old holder (the relay still runs with its fd) carries nothing any more
    expect(relay?.exitCode ?? null).toBeNull();
    expect(ping()).toMatch(/0 packets received/);
    await stopVm();
    // a new fetch (vmwrapper after QEMU restarts) opens the remade device and carries traffic
    await fetchAndRelay();
    expect(ping()).toMatch(/2 packets received/);
    await stopVm();
    expect(await mgr.teardown('sb-mv-rev')).toEqual({ errors: [] });
    expect(await settledDump(pod)).toBe(before);
  }, 60_000);

  it("hands out no fd once its macvtap is gone (a /dev/tapN of that name could be another netns's later)", async () => {
    const pod = createNetns('mvpod');
    const seg = createNetns('mvseg');
    vethBetween(seg, 'peer0', pod, 'net2');
    pod.ip('link', 'set', 'net2', 'up');
    const before = await settledDump(pod);
    const res = await mgr.setup({
      sandboxId: 'sb-mv-gone',
      netnsPath: pod.path,
      nics: [{ name: 'seg', binding: 'macvtap', podInterface: 'net2' }],
    });
    pod.ip('link', 'del', res.nics[0]!.tap);
    await expect(mgr.fds(res.netKey)).rejects.toMatchObject({ code: 'EIO', message: expect.stringContaining('gone') });
    await expect(mgr.revoke('sb-mv-gone')).rejects.toMatchObject({
      code: 'EIO',
      message: expect.stringContaining('gone'),
    });
    expect(await mgr.teardown('sb-mv-gone')).toEqual({ errors: [] });
    expect(await settledDump(pod)).toBe(before);
  });

  it('refuses a macvtap on the loopback, a mode on another binding, DHCP options; nothing touched', async () => {
    const pod = createNetns('mvpod');
    const seg = createNetns('mvseg');
    vethBetween(seg, 'peer0', pod, 'net2');
    const before = await settledDump(pod);
    const req = (nic: Record<string, unknown>) => ({
      sandboxId: 'sb-mv-bad',
      netnsPath: pod.path,
      nics: [{ name: 'seg', binding: 'macvtap', podInterface: 'net2', ...nic }],
    });
    for (const [nic, field] of [
      [{ podInterface: 'lo' }, 'nics[0].podInterface'],
      [{ podInterface: 'nope0' }, 'nics[0].podInterface'],
      [{ macvtapMode: 'vepa' }, 'nics[0].macvtapMode'],
      [{ binding: 'bridge', macvtapMode: 'bridge' }, 'nics[0].macvtapMode'],
      [{ dhcpOptions: { bootFileName: 'x' } }, 'nics[0].dhcpOptions'],
      [{ macvtapMode: 'passthru', macAddress: '02:00:00:00:00:09' }, 'nics[0].macAddress'],
    ] as const)
      await expect(mgr.setup(req(nic))).rejects.toMatchObject({ code: 'EINVAL', field });
    expect(await settledDump(pod)).toBe(before);
  });
});
