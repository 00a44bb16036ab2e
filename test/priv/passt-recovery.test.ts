// The passt binding across daemon restarts and passt deaths, with the real daemon (dist)
// and the emulator's end of the pair held by the test as QEMU would hold it; each check
// speaks to passt through that end (an ARP request for the pod's gateway, framed as
// QEMU's stream netdev frames it: a 4-byte length, then the Ethernet frame).
// - kill -9 of the daemon before any fetch: passt loses its peer with the daemon and
//   exits; the restarted daemon starts a new one (drift says so) and a fetch talks to it.
// - kill -9 after a fetch: passt keeps serving the held end; the restarted daemon adopts
//   it (same pid, no drift) and the held end still gets answers.
// - the adopted passt killed: noticed, logged, a new one on a fresh pair for the next
//   fetch (the held end is closed: an adopted passt's end is not the daemon's to keep).
// - a second fetch gets a fresh pair; the first one's passt ends.
// - teardown: no passt, no record; the pod as it was.
// - kill -9 at setup.built: the setting-up record names passt already; the restart
//   rolls back and nothing runs in the pod.
// - the netns path unmounted before teardown, or gone at the next start: passt (which
//   alone keeps the namespace alive) is stopped by its recorded pid and start time.
// - a passt that cannot start again after a restart (its port taken): retried with
//   backoff until it can (a fetch meanwhile fails, and the retries go on after it),
//   then fetched and torn down as usual.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { SandboxStatus } from '../../src/tapmanager/sandboxes';
import type { SetupResult } from '../../src/tapmanager/protocol';
import { fetchFds } from '../../src/vmwrapper/fetch';
import { killDaemon, killDaemons, startDaemon, stopDaemon, type Daemon } from '../helpers/daemon';
import { settledDump } from '../helpers/ip-dump';
import { removeAllNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { until } from '../helpers/until';
import { describePrivileged } from '../helpers/privileged';

const ARP = `
import socket, struct, sys
s = socket.socket(fileno=3); s.settimeout(5)
mac = bytes.fromhex(sys.argv[1].replace(':', ''))
f = b'\\xff' * 6 + mac + b'\\x08\\x06' + struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) + mac \\
    + socket.inet_aton(sys.argv[2]) + b'\\0' * 6 + socket.inet_aton(sys.argv[3])
try:
    s.sendall(struct.pack('!I', len(f)) + f)
    while True:
        h = s.recv(4, socket.MSG_WAITALL)
        if len(h) < 4: print('EOF'); break
        d = s.recv(struct.unpack('!I', h)[0], socket.MSG_WAITALL)
        if d[12:14] == b'\\x08\\x06' and d[20:22] == b'\\x00\\x02':
            print('ARP-REPLY', socket.inet_ntoa(d[28:32])); break
except socket.timeout: print('TIMEOUT')
except OSError as e: print('ERROR', e)
`;

/** What passt answers on the emulator's end `fd` to "who has gw? tell ip". */
function arp(fd: number, ip: string, gw: string): string {
  const r = spawnSync('python3', ['-c', ARP, '02:00:00:aa:bb:cc', ip, gw], {
    stdio: ['ignore', 'pipe', 'pipe', fd],
    encoding: 'utf8',
    timeout: 15_000,
  });
  return `${r.stdout}${r.stderr}`.trim();
}

/** Holds TCP port 8080 on every address (v4 and v6) until killed; says so on stdout. */
const BIND_8080 = `
import socket, sys, time
s = socket.socket(socket.AF_INET6); s.bind(('::', 8080)); s.listen()
print('bound', flush=True); time.sleep(120)
`;

/** The other end is gone: end of stream, or the send already fails. */
const CLOSED = /^(EOF|ERROR \[Errno (32|104)\] .*)$/;

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return fs.readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]![0] !== 'Z';
  } catch {
    return false;
  }
}

/** The pod's eth0 as a passt NIC. */
const passtNic = (p: Pick<ReturnType<typeof makePod>, 'cniResult'>) => ({
  name: 'default',
  binding: 'passt',
  podInterface: 'eth0',
  cniResult: p.cniResult,
});

describePrivileged('passt binding: supervision and daemon restarts', () => {
  let dir: string;
  const held: number[] = [];
  /** passts a failing test could leave in a namespace whose path is gone */
  const strays: number[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-passtr-'));
  });
  afterEach(async () => {
    held.splice(0).forEach((fd) => fs.closeSync(fd));
    for (const pid of strays.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('kill -9 before and after a fetch, a killed adopted passt, a second fetch, and teardown', async () => {
    const a = makePod();
    const before = await settledDump(a.pod);
    const nic = { ...passtNic(a), ports: [{ port: 8080 }] };
    const status = async (d: Daemon) => ((await d.client.status('sb-passtr')) as SandboxStatus).nics[0]!.passt!;
    let d = await startDaemon(dir);
    const res = (await d.client.setup({ sandboxId: 'sb-passtr', netnsPath: a.pod.path, nics: [nic] })) as SetupResult;
    const pid1 = res.nics[0]!.passt!.pid!;
    expect(alive(pid1)).toBe(true);
    // this pod leaves ping_group_range at the kernel's default: status says what the guest misses
    expect(((await d.client.status('sb-passtr')) as SandboxStatus).nics[0]!.warnings).toEqual([
      expect.stringMatching(
        /^the guest's pings get no answer: the pod's net.ipv4.ping_group_range \(1\s+0\) leaves out passt's group 65534/,
      ),
    ]);

    // 1. kill -9 before any fetch: the daemon held the emulator's end, passt goes with it
    await killDaemon(d);
    await until('passt to go with the daemon', async () => (alive(pid1) ? undefined : true));
    d = await startDaemon(dir);
    const s1 = (await d.client.status('sb-passtr')) as SandboxStatus;
    const pid2 = s1.nics[0]!.passt!.pid!;
    expect(pid2).not.toBe(pid1);
    expect(alive(pid2)).toBe(true);
    expect(s1.drift).toEqual([
      expect.stringMatching(new RegExp(`^passt \\(pid ${pid1}\\) was gone: started again \\(pid ${pid2}\\)`)),
    ]);
    const f1 = fetchFds(d.fdSocket, res.netKey);
    expect(f1.fds).toHaveLength(1);
    held.push(...f1.fds);
    expect(arp(f1.fds[0]!, a.ip, a.gw)).toBe(`ARP-REPLY ${a.gw}`);

    // 2. kill -9 after the fetch: passt keeps serving the held end, and is adopted
    await killDaemon(d);
    expect(alive(pid2)).toBe(true);
    expect(arp(f1.fds[0]!, a.ip, a.gw)).toBe(`ARP-REPLY ${a.gw}`);
    d = await startDaemon(dir);
    const s2 = (await d.client.status('sb-passtr')) as SandboxStatus;
    expect(s2.drift).toEqual([]);
    expect(s2.nics[0]!.passt).toMatchObject({ pid: pid2, running: true, adopted: true });
    expect(d.logs().some((l) => l.msg === 'passt adopted' && l.pid === pid2)).toBe(true);
    expect(arp(f1.fds[0]!, a.ip, a.gw)).toBe(`ARP-REPLY ${a.gw}`);

    // 3. the adopted passt killed: noticed, logged, a new one waits for the next fetch
    process.kill(pid2, 'SIGKILL');
    const pid3 = await until('a new passt', async () => {
      const p = await status(d);
      // the new pid can show before the restart is counted: wait for both
      return p.pid !== pid2 && p.running && p.restarts === 1 ? p.pid : undefined;
    });
    expect(d.logs().find((l) => l.msg === 'passt exited; restarting it')).toMatchObject({
      level: 'warn',
      pid: pid2,
      connection: expect.stringMatching(/^fresh pair/),
    });
    expect(await status(d)).toMatchObject({ emulatorEnd: 'pending', restarts: 1 });
    expect(arp(f1.fds[0]!, a.ip, a.gw)).toMatch(CLOSED);
    const f2 = fetchFds(d.fdSocket, res.netKey);
    held.push(...f2.fds);
    expect(arp(f2.fds[0]!, a.ip, a.gw)).toBe(`ARP-REPLY ${a.gw}`);
    expect((await status(d)).pid).toBe(pid3);

    // 4. a second fetch (the emulator restarted): a fresh pair, the earlier passt ends
    const f3 = fetchFds(d.fdSocket, res.netKey);
    held.push(...f3.fds);
    const pid4 = (await status(d)).pid!;
    expect(pid4).not.toBe(pid3);
    expect(alive(pid3)).toBe(false);
    expect(arp(f2.fds[0]!, a.ip, a.gw)).toMatch(CLOSED);
    expect(arp(f3.fds[0]!, a.ip, a.gw)).toBe(`ARP-REPLY ${a.gw}`);

    // 5. teardown: no passt, no record, the pod as CNI made it
    expect(await d.client.teardown('sb-passtr')).toEqual({ errors: [] });
    expect(alive(pid4)).toBe(false);
    expect(arp(f3.fds[0]!, a.ip, a.gw)).toMatch(CLOSED);
    expect(fs.readdirSync(path.join(d.stateDir, 'sandboxes')).filter((f) => f.includes('sb-passtr'))).toEqual([]);
    expect(await settledDump(a.pod)).toBe(before);
  }, 180_000);

  it('kill -9 at setup.built: passt goes with the daemon (it held both ends), the restart rolls back, nothing runs in the pod', async () => {
    const a = makePod();
    const before = await settledDump(a.pod);
    const nic = passtNic(a);
    const d = await startDaemon(dir, { env: { TAPWIRE_TEST_CRASH_AFTER: 'setup.built' } });
    await expect(d.client.setup({ sandboxId: 'sb-passtc', netnsPath: a.pod.path, nics: [nic] })).rejects.toMatchObject({
      code: expect.stringMatching(/^(EPIPE|ECONNRESET)$/),
    });
    expect(await d.exited).toBe('SIGKILL');
    // the setting-up record names the passt already (its rollback stops it by pid and start time)
    const rec = JSON.parse(fs.readFileSync(path.join(d.stateDir, 'sandboxes', 'sb-passtc.json'), 'utf8')) as {
      state: string;
      nics: { passt: { pid?: number; startTime?: string } }[];
    };
    expect(rec.state).toBe('setting-up');
    expect(rec.nics[0]!.passt).toMatchObject({ pid: expect.any(Number), startTime: expect.stringMatching(/^\d+$/) });
    // from the host's side (a command run in the pod would list itself)
    const pids = () => execFileSync('ip', ['netns', 'pids', a.pod.name], { encoding: 'utf8' }).trim();
    await until('passt to go with the daemon', async () => (pids() === '' ? true : undefined));
    const r = await startDaemon(dir);
    expect(await r.client.list()).toEqual([]);
    expect(pids()).toBe('');
    expect(await settledDump(a.pod)).toBe(before);
    // and a retried setup works
    await r.client.setup({ sandboxId: 'sb-passtc', netnsPath: a.pod.path, nics: [nic] });
    expect(pids()).not.toBe('');
    expect(await r.client.teardown('sb-passtc')).toEqual({ errors: [] });
    expect(pids()).toBe('');
  }, 120_000);

  it('hostile or wrong requests are refused naming the field, before any passt runs', async () => {
    const a = makePod();
    const before = await settledDump(a.pod);
    const d = await startDaemon(dir);
    const nic = passtNic(a);
    const cases: [Record<string, unknown>, string][] = [
      [{ queues: 2 }, 'nics[0].queues'],
      [{ cniResult: undefined }, 'nics[0].podInterface'],
      [{ podInterface: 'nope0', cniResult: undefined }, 'nics[0].podInterface'],
      [{ dhcpOptions: { bootFileName: 'x' } }, 'nics[0].dhcpOptions'],
      [{ ports: [{ port: 0 }] }, 'nics[0].ports[0].port'],
      [{ ports: [{ port: 70000 }] }, 'nics[0].ports[0].port'],
      [{ ports: [{ port: 8080, endPort: 80 }] }, 'nics[0].ports[0].endPort'],
      [{ ports: [{ port: 8080, protocol: 'SCTP' }] }, 'nics[0].ports[0].protocol'],
      [{ ports: [{ port: '80,81 --runas 0' }] }, 'nics[0].ports[0].port'],
      [{ macAddress: '01:00:00:00:00:01' }, 'nics[0].macAddress'],
      [{ model: 'virtio,netdev=x' }, 'nics[0].model'],
    ];
    for (const [change, field] of cases) {
      const err = await d.client
        .setup({ sandboxId: 'sb-passth', netnsPath: a.pod.path, nics: [{ ...nic, ...change }] })
        .catch((e: unknown) => e);
      expect(err, JSON.stringify(change)).toMatchObject({ code: 'EINVAL', field });
      expect((err as Error).message).toContain(field);
    }
    expect(execFileSync('ip', ['netns', 'pids', a.pod.name], { encoding: 'utf8' }).trim()).toBe('');
    expect(await d.client.list()).toEqual([]);
    expect(await settledDump(a.pod)).toBe(before);
  }, 120_000);

  it('a daemon stopped with SIGTERM leaves a fetched passt serving; the next daemon adopts it', async () => {
    const a = makePod();
    const nic = passtNic(a);
    let d = await startDaemon(dir);
    const res = (await d.client.setup({ sandboxId: 'sb-passts', netnsPath: a.pod.path, nics: [nic] })) as SetupResult;
    const pid = res.nics[0]!.passt!.pid!;
    const f = fetchFds(d.fdSocket, res.netKey);
    held.push(...f.fds);
    await stopDaemon(d);
    expect(alive(pid)).toBe(true);
    expect(arp(f.fds[0]!, a.ip, a.gw)).toBe(`ARP-REPLY ${a.gw}`);
    d = await startDaemon(dir);
    const s = (await d.client.status('sb-passts')) as SandboxStatus;
    expect(s.drift).toEqual([]);
    expect(s.nics[0]!.passt).toMatchObject({ pid, running: true, adopted: true });
    expect(await d.client.teardown('sb-passts')).toEqual({ errors: [] });
    expect(alive(pid)).toBe(false);
    expect(arp(f.fds[0]!, a.ip, a.gw)).toMatch(CLOSED);
  }, 120_000);

  it('a teardown right after passt was killed (its restart under way) stops the new passt too; nothing is left', async () => {
    const a = makePod();
    const nic = passtNic(a);
    const d = await startDaemon(dir);
    const pids = () => execFileSync('ip', ['netns', 'pids', a.pod.name], { encoding: 'utf8' }).trim();
    for (let i = 0; i < 3; i++) {
      const res = (await d.client.setup({ sandboxId: 'sb-passtk', netnsPath: a.pod.path, nics: [nic] })) as SetupResult;
      const f = fetchFds(d.fdSocket, res.netKey);
      held.push(...f.fds);
      process.kill(res.nics[0]!.passt!.pid!, 'SIGKILL');
      expect(await d.client.teardown('sb-passtk')).toEqual({ errors: [] });
      await until('no process in the pod', async () => (pids() === '' ? true : undefined), 5000);
      expect(arp(f.fds[0]!, a.ip, a.gw)).toMatch(CLOSED);
    }
    expect(await d.client.list()).toEqual([]);
  }, 120_000);

  it('the netns path gone before teardown, or before the next start: passt is stopped all the same', async () => {
    const a = makePod();
    const b = makePod();
    let d = await startDaemon(dir);
    const ra = (await d.client.setup({
      sandboxId: 'sb-passtg1',
      netnsPath: a.pod.path,
      nics: [passtNic(a)],
    })) as SetupResult;
    const rb = (await d.client.setup({
      sandboxId: 'sb-passtg2',
      netnsPath: b.pod.path,
      nics: [passtNic(b)],
    })) as SetupResult;
    const pa = ra.nics[0]!.passt!.pid!;
    const pb = rb.nics[0]!.passt!.pid!;
    strays.push(pa, pb);
    // b's emulator holds its end: its passt outlives the daemon
    held.push(...fetchFds(d.fdSocket, rb.netKey).fds);
    // the runtime unmounts a's path before the teardown: passt alone keeps the namespace
    execFileSync('ip', ['netns', 'del', a.pod.name]);
    expect(alive(pa)).toBe(true);
    expect(await d.client.teardown('sb-passtg1')).toEqual({ errors: [] });
    expect(alive(pa)).toBe(false);
    // b's path is gone at the daemon's next start
    await killDaemon(d);
    expect(alive(pb)).toBe(true);
    execFileSync('ip', ['netns', 'del', b.pod.name]);
    d = await startDaemon(dir);
    expect(await d.client.list()).toEqual([]);
    expect(alive(pb)).toBe(false);
    expect(fs.readdirSync(path.join(d.stateDir, 'sandboxes')).filter((f) => f.includes('sb-passtg'))).toEqual([]);
  }, 120_000);

  it('a passt that cannot start again after a daemon restart (its port taken) is retried, not dropped', async () => {
    const a = makePod();
    const nic = { ...passtNic(a), ports: [{ port: 8080 }] };
    let d = await startDaemon(dir);
    const res = (await d.client.setup({ sandboxId: 'sb-passtb', netnsPath: a.pod.path, nics: [nic] })) as SetupResult;
    const pid1 = res.nics[0]!.passt!.pid!;
    await killDaemon(d);
    await until('passt to go with the daemon', async () => (alive(pid1) ? undefined : true));
    // something else in the pod takes the listed port: passt exits at start
    const blocker = spawn('ip', ['netns', 'exec', a.pod.name, 'python3', '-c', BIND_8080], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    strays.push(blocker.pid!);
    await new Promise((r) => blocker.stdout!.once('data', r));
    d = await startDaemon(dir);
    const s1 = (await d.client.status('sb-passtb')) as SandboxStatus;
    expect(s1.drift).toEqual([
      expect.stringMatching(
        new RegExp(`^passt \\(pid ${pid1}\\) was gone and could not be started again \\(.*\\): retrying$`),
      ),
    ]);
    expect(s1.nics[0]!.passt).toMatchObject({ running: false });
    // a fetch meanwhile fails (its start too), and the retries go on after it
    let fetchError: unknown;
    try {
      held.push(...fetchFds(d.fdSocket, res.netKey).fds);
    } catch (e) {
      fetchError = e;
    }
    expect(fetchError).toMatchObject({ code: 'EIO', message: expect.stringMatching(/cannot start passt/) });
    blocker.kill('SIGKILL');
    const pid2 = await until('the retried passt', async () => {
      const p = ((await d.client.status('sb-passtb')) as SandboxStatus).nics[0]!.passt!;
      return p.running ? p.pid : undefined;
    });
    expect(pid2).not.toBe(pid1);
    const f = fetchFds(d.fdSocket, res.netKey);
    held.push(...f.fds);
    expect(arp(f.fds[0]!, a.ip, a.gw)).toBe(`ARP-REPLY ${a.gw}`);
    expect(await d.client.teardown('sb-passtb')).toEqual({ errors: [] });
    expect(alive(pid2)).toBe(false);
  }, 120_000);
});
