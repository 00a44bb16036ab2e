// The masquerade binding with a real QEMU (TCG) guest: tapmanager (SandboxManager
// in-process) sets up a masquerade NIC on a pod shaped as CNI leaves one; vmwrapper's
// netArgs writes the tap netdev for the fd of the fds reply; tapwire's guest (virtio-net,
// which marks partial checksums in the vnet header as a real VM does) leases 10.0.2.2
// from the bridge with the pod's DNS, pings the peer pod through the NAT, and serves two
// ports: the listed one is reached from the peer at podIP:port, the other is refused.
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ensureGuest, guestCmdline, QEMU, qemuArgs, startGuest, type GuestImage, type GuestRun } from '../../src/guest';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { silentLogger } from '../../src/util/log';
import { checkNic, netArgs } from '../../src/vmwrapper/args';
import { settledDump } from '../helpers/ip-dump';
import { removeAllNetns, type TestNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { describePrivileged, requireTools } from '../helpers/privileged';

const CONNECT = `
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); c.settimeout(20)
    got = b""
    while True:
        d = c.recv(200)
        if not d: break
        got += d
    print(got.decode().strip())
except ConnectionRefusedError: print("REFUSED")
except OSError as e: print("ERROR", e)
`;

describePrivileged('masquerade binding with a real QEMU guest', () => {
  let tmp: string;
  let image: GuestImage;
  let mgr: SandboxManager;
  let run: GuestRun | undefined;
  const procs: ChildProcess[] = [];
  beforeAll(async () => {
    const missing = requireTools(QEMU, 'python3');
    if (missing) throw new Error(missing);
    image = await ensureGuest(); // cached by setup.sh; built here on a fresh cache
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-masqg-'));
    const store = new RecordStore(path.join(tmp, 'state'));
    await store.init();
    mgr = new SandboxManager({ store, log: silentLogger });
  }, 900_000);
  afterEach(async () => {
    await run?.kill();
    run = undefined;
    for (const p of procs.splice(0)) p.kill('SIGKILL');
    removeAllNetns();
  });
  afterAll(async () => {
    await mgr?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const connect = (ns: TestNetns, ip: string, port: number): string =>
    ns.exec('python3', ['-c', CONNECT, ip, String(port)]).trim();

  it('the guest leases 10.0.2.2, pings the peer pod; the listed port reaches it, an unlisted one is refused', async () => {
    const a = makePod();
    const net = Number(a.ip.split('.')[1]);
    const peer = makePod({ node: a.node, net, host: 3 });
    const before = await settledDump(a.pod);
    const cniResult = { ...a.cniResult, dns: { nameservers: ['10.96.0.10'], search: ['ns.svc.cluster.local'] } };
    const res = await mgr.setup({
      sandboxId: 'sb-masq-guest',
      netnsPath: a.pod.path,
      nics: [
        {
          name: 'default',
          binding: 'masquerade',
          podInterface: 'eth0',
          cniResult,
          ports: [{ port: 8080, protocol: 'TCP' }],
        },
      ],
    });
    const { result, fds } = await mgr.fds(res.netKey);
    expect(fds).toHaveLength(1);
    const nics = result.nics.map((n, i) => checkNic(n, i));
    // the fds are QEMU's 3, 4, ...: what vmwrapper does after it has moved them there
    const net0 = netArgs([], nics, [3]);
    const args = qemuArgs({
      kernel: image.kernel,
      initrd: image.initrd,
      append: guestCmdline({ dhcpTries: 20, ping: [peer.ip], listen: [8080, 8081], stay: true }),
      console: 'stdio',
    });
    run = startGuest({
      command: QEMU,
      args: [...args, ...net0],
      console: 'stdio',
      fds,
      timeoutMs: 240_000,
      until: 'done',
      expect: { leases: 1, lease: { ip: '10.0.2.2', router: '10.0.2.1', mask: '24' } },
    });
    fds.forEach((fd) => fs.closeSync(fd));
    const r = await run.result;
    const why = [...r.verdict.problems, ...r.tail, `qemu stderr: ${r.stderr}`].join('\n');
    expect(r.verdict.ok, why).toBe(true);
    expect(r.report.pings).toEqual([{ target: peer.ip, sent: 2, recv: 2, ok: true }]);
    expect(r.report.resolv).toEqual({ nameservers: ['10.96.0.10'], search: ['ns.svc.cluster.local'] });
    expect(connect(peer.pod, a.ip, 8080)).toMatch(/^tapwire-guest hello port=8080/);
    expect(connect(peer.pod, a.ip, 8081)).toBe('REFUSED');

    await run.kill();
    run = undefined;
    expect(await mgr.teardown('sb-masq-guest')).toEqual({ errors: [] });
    expect(await settledDump(a.pod)).toBe(before);
  }, 300_000);
});
