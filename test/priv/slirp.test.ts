// The slirp binding end to end on a real QEMU (TCG): tapmanager (SandboxManager
// in-process) records a slirp NIC on a pod made the way CNI leaves one; its fds reply
// carries no fd and the NIC's forwards; vmwrapper's netArgs turns them into
// `-netdev user` with a hostfwd per listed port bound to the pod IP; QEMU runs in the pod
// netns (as vmwrapper does) with tapwire's guest, which leases slirp's own address and
// listens on two ports. From a peer pod, podIP:listed reaches the guest; an unlisted port
// is refused. Nothing in the pod changes, so teardown leaves it byte for byte as it was.
import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureGuest, guestCmdline, QEMU, qemuArgs, startGuest, type GuestImage, type GuestRun } from '../../src/guest';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { renderDescribe } from '../../src/tapmanager/tapctl';
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

describePrivileged('slirp binding with a real QEMU guest', () => {
  let tmp: string;
  let image: GuestImage;
  let mgr: SandboxManager;
  let run: GuestRun | undefined;
  const procs: ChildProcess[] = [];
  beforeAll(async () => {
    const missing = requireTools(QEMU, 'python3');
    if (missing) throw new Error(missing);
    image = await ensureGuest(); // cached by setup.sh; built here on a fresh cache
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-slirp-'));
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

  it('the guest leases slirp’s address; a listed port on the pod IP reaches it, an unlisted one is refused; the pod is untouched', async () => {
    const a = makePod();
    const net = Number(a.ip.split('.')[1]);
    const peer = makePod({ node: a.node, net, host: 3 });
    const before = await settledDump(a.pod);

    const res = await mgr.setup({
      sandboxId: 'sb-slirp',
      netnsPath: a.pod.path,
      nics: [
        {
          name: 'default',
          binding: 'slirp',
          podInterface: 'eth0',
          cniResult: a.cniResult,
          macAddress: '02:00:00:51:49:50',
          ports: [{ port: 8080, protocol: 'TCP' }],
        },
      ],
    });
    expect(res.nics[0]).toMatchObject({ binding: 'slirp', ip: '10.0.2.15', gateway: '10.0.2.2' });
    expect(renderDescribe(await mgr.status('sb-slirp'))).toContain(`forwards: tcp ${a.ip}:8080 -> guest`);
    expect(await settledDump(a.pod)).toBe(before);

    // what vmwrapper does with the fds reply: no fd, the forwards as -netdev user hostfwd
    const { result, fds } = await mgr.fds(res.netKey);
    expect(fds).toEqual([]);
    const nics = result.nics.map((n, i) => checkNic(n, i));
    const net0 = netArgs([], nics, fds);
    expect(net0.slice(0, 2)).toEqual(['-netdev', `user,id=tapwire0,hostfwd=tcp:${a.ip}:8080-:8080`]);

    const args = qemuArgs({
      kernel: image.kernel,
      initrd: image.initrd,
      append: guestCmdline({ dhcpTries: 20, ping: [], listen: [8080, 8081], stay: true }),
      console: 'stdio',
    });
    // QEMU in the pod netns, as vmwrapper runs it there
    run = startGuest({
      command: 'ip',
      args: ['netns', 'exec', a.pod.name, QEMU, ...args, ...net0],
      console: 'stdio',
      timeoutMs: 240_000,
      until: 'done',
      expect: { leases: 1, lease: { ip: '10.0.2.15', router: '10.0.2.2' } },
    });
    const r = await run.result;
    const why = [...r.verdict.problems, ...r.tail, `qemu stderr: ${r.stderr}`].join('\n');
    expect(r.verdict.ok, why).toBe(true);
    expect(r.report.listens).toEqual([
      { port: 8080, ok: true },
      { port: 8081, ok: true },
    ]);
    expect(r.report.nics.map((n) => n.mac)).toEqual(['02:00:00:51:49:50']);

    // from the peer pod: the listed port reaches the guest through slirp's hostfwd on the pod IP
    expect(connect(peer.pod, a.ip, 8080)).toMatch(/^tapwire-guest hello port=8080/);
    // the guest listens on 8081 too, but it is not listed: nothing on the pod IP answers for it
    expect(connect(peer.pod, a.ip, 8081)).toBe('REFUSED');

    await run.kill();
    run = undefined;
    expect(await mgr.teardown('sb-slirp')).toEqual({ errors: [] });
    expect(await settledDump(a.pod)).toBe(before);
  }, 300_000);
});
