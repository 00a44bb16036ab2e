// The passt binding with a real QEMU (TCG) guest: tapmanager (SandboxManager in-process,
// its log captured) starts Debian's passt in a pod shaped as CNI leaves one, as nobody,
// in the pod netns, on one end of a socket pair; the fds reply hands the other end over;
// vmwrapper's netArgs writes `-netdev stream,addr.type=fd`; tapwire's guest (udhcpc)
// leases the POD's own IP from passt, pings the peer pod, and serves two ports: the
// listed one is reached from the peer at podIP:port, the other is refused. passt killed
// with SIGKILL is noticed, logged and restarted on the same connection: the listed port
// reaches the guest again through the new passt, with the same QEMU. Teardown stops
// passt, closes the daemon's ends, and leaves the pod byte for byte as it was.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ensureGuest, guestCmdline, QEMU, qemuArgs, startGuest, type GuestImage, type GuestRun } from '../../src/guest';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { renderDescribe } from '../../src/tapmanager/tapctl';
import { createLogger } from '../../src/util/log';
import { checkNic, netArgs } from '../../src/vmwrapper/args';
import { settledDump } from '../helpers/ip-dump';
import { removeAllNetns, type TestNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { until } from '../helpers/until';
import { describePrivileged, requireTools } from '../helpers/privileged';

/** The process's uid (real) and its netns inode. */
function proc(pid: number): { uid: number; netns: number; argv0: string } {
  const uid = Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  return {
    uid,
    netns: fs.statSync(`/proc/${pid}/ns/net`).ino,
    argv0: fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')[0]!,
  };
}

/** Running (a zombie not yet reaped counts as gone). */
function alive(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]![0] !== 'Z';
  } catch {
    return false;
  }
}

/** The fds of this process that are the given socket inodes. */
function fdsOf(inodes: number[]): string[] {
  return fs.readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const l = fs.readlinkSync(`/proc/self/fd/${fd}`);
      return inodes.some((i) => l === `socket:[${i}]`) ? [l] : [];
    } catch {
      return [];
    }
  });
}

/**
 * What `ns` reads from ip:port after sending a line first. Debian 12's passt
 * (2023-03-09) completes an inbound connection's handshake with the guest only once the
 * client has sent something (a server-speaks-first client waits for ever; seen with
 * strace: the guest's SYN-ACK is retransmitted, passt sends no ACK), so the client speaks
 * first, as an HTTP client does.
 */
function requestFrom(ns: TestNetns, ip: string, port: number): string {
  const py = [
    'import socket, sys',
    'try:',
    '    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); c.settimeout(20)',
    '    c.sendall(b"hello guest\\n"); got = b""',
    '    while True:',
    '        d = c.recv(200)',
    '        if not d: break',
    '        got += d',
    '    print(got.decode().strip())',
    'except ConnectionRefusedError: print("REFUSED")',
    'except OSError as e: print("ERROR", e)',
  ].join('\n');
  return ns.exec('python3', ['-c', py, ip, String(port)]).trim();
}

describePrivileged('passt binding with a real QEMU guest', () => {
  let image: GuestImage;
  let mgr: SandboxManager;
  let run: GuestRun | undefined;
  let tmp: string;
  const logs: string[] = [];
  beforeAll(async () => {
    const missing = requireTools(QEMU, 'python3', 'passt', 'setpriv');
    if (missing) throw new Error(missing);
    image = await ensureGuest();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-passtg-'));
    const store = new RecordStore(path.join(tmp, 'state'));
    await store.init();
    mgr = new SandboxManager({ store, log: createLogger('tapmanager', (l) => logs.push(l)) });
  }, 900_000);
  afterEach(async () => {
    await run?.kill();
    run = undefined;
    await mgr.teardown('sb-passt-guest').catch(() => undefined);
    removeAllNetns();
  });
  afterAll(async () => {
    await mgr?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('the guest leases the pod IP from passt and reaches the peer; a listed port reaches it, an unlisted one is refused; a killed passt is restarted on the same connection; teardown leaves nothing', async () => {
    const a = makePod();
    const net = Number(a.ip.split('.')[1]);
    const peer = makePod({ node: a.node, net, host: 3 });
    // passt answers the guest's pings through ICMP echo sockets, which the pod's
    // ping_group_range must allow for passt's group (a "safe" sysctl the pod spec sets, as
    // KubeVirt's passt pods do)
    a.pod.exec('sysctl', ['-qw', 'net.ipv4.ping_group_range=65534 65534']);
    const before = await settledDump(a.pod);
    const cniResult = { ...a.cniResult, dns: { nameservers: ['10.96.0.10'], search: ['ns.svc.cluster.local'] } };
    const res = await mgr.setup({
      sandboxId: 'sb-passt-guest',
      netnsPath: a.pod.path,
      nics: [
        {
          name: 'default',
          binding: 'passt',
          podInterface: 'eth0',
          cniResult,
          macAddress: '02:00:00:50:41:53',
          ports: [{ port: 8080, protocol: 'TCP' }],
        },
      ],
    });
    expect(res.nics[0]).toMatchObject({ binding: 'passt', ip: a.ip, gateway: a.gw });
    const pid1 = res.nics[0]!.passt!.pid!;
    // passt runs as nobody, in the pod's netns, never as root
    expect(proc(pid1)).toEqual({ uid: 65534, netns: fs.statSync(a.pod.path).ino, argv0: 'passt' });
    const text = renderDescribe(await mgr.status('sb-passt-guest'));
    expect(text).toContain(`passt  pid ${pid1}  uid 65534  running`);
    expect(text).not.toContain('warning:'); // ping_group_range covers passt's group here
    expect(text).toContain('forwards: tcp *:8080 -> guest');
    // nothing in the pod changed: no link, no address, no route, no NAT table (only the
    // sandbox's empty fence table, as every binding has)
    expect(await settledDump(a.pod)).toBe(before);
    expect(a.pod.exec('nft', ['list', 'ruleset'])).not.toMatch(/type nat|masquerade|dnat/);

    const { result, fds } = await mgr.fds(res.netKey);
    expect(fds).toHaveLength(1);
    const nics = result.nics.map((n, i) => checkNic(n, i));
    // the fds are QEMU's 3, 4, ...: what vmwrapper does after it has moved them there
    const net0 = netArgs([], nics, [3]);
    expect(net0.slice(0, 2)).toEqual(['-netdev', 'stream,id=tapwire0,addr.type=fd,addr.str=3']);
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
      expect: { leases: 1, lease: { ip: a.ip, router: a.gw, mask: '24' } },
    });
    fds.forEach((fd) => fs.closeSync(fd));
    const r = await run.result;
    const why = [...r.verdict.problems, ...r.tail, `qemu stderr: ${r.stderr}`].join('\n');
    expect(r.verdict.ok, why).toBe(true);
    expect(r.report.pings).toEqual([{ target: peer.ip, sent: 2, recv: 2, ok: true }]);
    expect(r.report.resolv).toEqual({ nameservers: ['10.96.0.10'], search: ['ns.svc.cluster.local'] });
    expect(r.report.nics.map((n) => n.mac)).toEqual(['02:00:00:50:41:53']);
    expect(requestFrom(peer.pod, a.ip, 8080)).toMatch(/^tapwire-guest hello port=8080/);
    expect(requestFrom(peer.pod, a.ip, 8081)).toBe('REFUSED');

    // passt killed: noticed, logged, restarted on the same connection (same QEMU)
    process.kill(pid1, 'SIGKILL');
    const pid2 = await until('a new passt', async () => {
      const n = (await mgr.status('sb-passt-guest')).nics[0]!;
      // the new pid can show before the restart is counted: wait for both
      return n.passt?.pid !== pid1 && n.passt?.running && n.passt.restarts === 1 ? n.passt.pid : undefined;
    });
    expect(alive(pid1)).toBe(false);
    const exited = logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'passt exited; restarting it');
    expect(exited).toMatchObject({
      level: 'warn',
      pid: pid1,
      how: 'signal SIGKILL',
      connection: expect.stringMatching(/^kept/),
    });
    expect(renderDescribe(await mgr.status('sb-passt-guest'))).toContain(
      `passt  pid ${pid2}  uid 65534  running  (restarted 1x; last exit: signal SIGKILL`,
    );
    expect(
      await until('the guest through the new passt', () => {
        const got = requestFrom(peer.pod, a.ip, 8080);
        return /^tapwire-guest hello port=8080/.test(got) ? got : undefined;
      }),
    ).toMatch(/^tapwire-guest hello/);

    const socket = (await mgr.status('sb-passt-guest')).nics[0]!.passt!.socket!;
    const inode = Number(/\d+/.exec(socket)![0]);
    expect(fdsOf([inode])).toHaveLength(1); // the daemon's copy of passt's end

    await run.kill();
    run = undefined;
    expect(await mgr.teardown('sb-passt-guest')).toEqual({ errors: [] });
    expect(alive(pid2)).toBe(false);
    expect(fdsOf([inode])).toEqual([]);
    expect(await settledDump(a.pod)).toBe(before);
  }, 300_000);
});
