// The macvtap binding with a real QEMU (TCG) guest: a pod interface net2 on an L2
// segment (a netns with a bridge and dnsmasq serving a fixed lease, test/fixtures/
// vmwrapper/guest-net.ts); tapmanager (SandboxManager in-process) puts a 2-queue macvtap
// on net2 with the lease's MAC and hands out its /dev/tapN fds; vmwrapper's netArgs
// writes the multiqueue tap netdev; tapwire's guest leases its address from the segment's
// own DHCP server (tapwire runs none) and pings the segment's gateway.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ensureGuest, guestCmdline, QEMU, qemuArgs, startGuest, type GuestImage, type GuestRun } from '../../src/guest';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { silentLogger } from '../../src/util/log';
import { checkNic, netArgs } from '../../src/vmwrapper/args';
import { makeGuestNet, type GuestNet } from '../fixtures/vmwrapper/guest-net';
import { settledDump } from '../helpers/ip-dump';
import { createNetns, removeAllNetns } from '../helpers/netns';
import { describePrivileged, requireTools } from '../helpers/privileged';

describePrivileged('macvtap binding with a real QEMU guest', () => {
  let tmp: string;
  let image: GuestImage;
  let mgr: SandboxManager;
  let run: GuestRun | undefined;
  let net: GuestNet | undefined;
  beforeAll(async () => {
    const missing = requireTools(QEMU, 'dnsmasq');
    if (missing) throw new Error(missing);
    image = await ensureGuest(); // cached by setup.sh; built here on a fresh cache
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-mvg-'));
    const store = new RecordStore(path.join(tmp, 'state'));
    await store.init();
    mgr = new SandboxManager({ store, log: silentLogger });
  }, 900_000);
  afterEach(async () => {
    await run?.kill();
    run = undefined;
    net?.closeAll();
    net = undefined;
    removeAllNetns();
  });
  afterAll(async () => {
    await mgr?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('the guest on a 2-queue macvtap leases from the segment’s DHCP server and pings its gateway', async () => {
    net = makeGuestNet(tmp);
    const pod = createNetns('mvgpod');
    net.ns.ip('link', 'add', 'segp', 'type', 'veth', 'peer', 'name', 'net2', 'netns', pod.name);
    net.ns.ip('link', 'set', 'segp', 'master', 'br0', 'up');
    pod.ip('link', 'set', 'net2', 'up');
    const before = await settledDump(pod);

    const res = await mgr.setup({
      sandboxId: 'sb-mvg',
      netnsPath: pod.path,
      nics: [{ name: 'seg', binding: 'macvtap', podInterface: 'net2', macAddress: net.mac, queues: 2 }],
    });
    const { result, fds } = await mgr.fds(res.netKey);
    expect(fds).toHaveLength(2);
    const nics = result.nics.map((n, i) => checkNic(n, i));
    const net0 = netArgs([], nics, [3, 4]);
    expect(net0[1]).toBe('tap,id=tapwire0,fds=3:4');
    const args = qemuArgs({
      kernel: image.kernel,
      initrd: image.initrd,
      append: guestCmdline({ dhcpTries: 20 }),
      console: 'stdio',
    });
    run = startGuest({
      command: QEMU,
      args: [...args, ...net0],
      console: 'stdio',
      fds,
      timeoutMs: 240_000,
      until: 'exit',
      expect: { leases: 1, lease: { ip: net.guestIp, router: net.gw } },
    });
    fds.forEach((fd) => fs.closeSync(fd));
    const r = await run.result;
    const why = [...r.verdict.problems, ...r.tail, `qemu stderr: ${r.stderr}`].join('\n');
    expect(r.verdict.ok, why).toBe(true);
    expect(r.report.nics.map((n) => [n.mac, n.driver])).toEqual([[net.mac, 'virtio_net']]);
    expect(r.report.pings).toEqual([{ target: net.gw, sent: 2, recv: 2, ok: true }]);
    run = undefined;

    expect(await mgr.teardown('sb-mvg')).toEqual({ errors: [] });
    expect(await settledDump(pod)).toBe(before);
  }, 300_000);
});
