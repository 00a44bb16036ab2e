// deploy/systemd's units, proven without a systemd as PID 1: `systemd-analyze verify` on
// them in a root laid out as the package lays it, and each unit's ExecStart run as systemd
// would run it: argv from ExecStart= with $VARs from the EnvironmentFile (the packaged
// default, its paths moved under a temp dir), systemd's environment (PATH, NOTIFY_SOCKET on a
// datagram socket this test reads, WATCHDOG_USEC from WatchdogSec=), and tapmanager under
// its unit's CapabilityBoundingSet and NoNewPrivileges (setpriv) and its file-system sandbox
// (ProtectSystem=strict, PrivateTmp=, ProtectHome= as mounts in a namespace of its own),
// doing a setup and teardown.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { TapmanagerClient } from '../../src/tapmanager/client';
import { SdNotifier } from '../../src/util/sd-notify';
import { killAndWait } from '../helpers/kill';
import { removeAllNetns } from '../helpers/netns';
import { NotifySocket } from '../helpers/notify-socket';
import { settledDump } from '../helpers/ip-dump';
import { makePod } from '../helpers/pod';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';
import { execArgv, parseEnvFile, readUnit } from '../helpers/unit-file';

const ROOT = path.resolve(__dirname, '../..');
const UNITS = path.join(ROOT, 'deploy/systemd');
const ENV_FILE = path.join(ROOT, 'deploy/config/tapwire.env');
/** A checkout under /tmp or /var/tmp (PrivateTmp= would hide it; the package's is in /usr/lib). */
const CHECKOUT_IN_TMP = /^\/(var\/)?tmp\//.test(ROOT);

/** Capability numbers (linux/capability.h) of the names the units use. */
const CAP_BITS: Record<string, number> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_KILL: 5,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_SYS_ADMIN: 21,
};

/** A root as the package lays it out: /usr/bin wrappers, /usr/lib/tapwire (this checkout), the units. */
function packageRoot(dir: string): string {
  const root = path.join(dir, 'root');
  fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
  fs.mkdirSync(path.join(root, 'usr/lib/systemd'), { recursive: true });
  fs.mkdirSync(path.join(root, 'etc/systemd/system'), { recursive: true });
  for (const f of fs.readdirSync(path.join(ROOT, 'deploy/bin')))
    fs.copyFileSync(path.join(ROOT, 'deploy/bin', f), path.join(root, 'usr/bin', f));
  fs.symlinkSync(ROOT, path.join(root, 'usr/lib/tapwire'));
  // the system's own units (sysinit.target and the rest) that verify resolves dependencies against
  fs.cpSync('/usr/lib/systemd/system', path.join(root, 'usr/lib/systemd/system'), {
    recursive: true,
    verbatimSymlinks: true,
  });
  for (const f of fs.readdirSync(UNITS).filter((u) => u.endsWith('.service')))
    fs.copyFileSync(path.join(UNITS, f), path.join(root, 'etc/systemd/system', f));
  return root;
}

/** The default config file with its node paths moved under dir (state, runtime, netns). */
function relocatedEnv(dir: string): Record<string, string> {
  const text = fs
    .readFileSync(ENV_FILE, 'utf8')
    .replaceAll('/var/lib/tapwire', path.join(dir, 'var-lib-tapwire'))
    .replaceAll('/run/tapwire', path.join(dir, 'run-tapwire'))
    .replaceAll('/run/netns', path.join(dir, 'run-netns'))
    .replace(/--metrics-address \S+/, '--metrics-address 127.0.0.1:0'); // not the node's port
  return parseEnvFile(text);
}

const caps = (svc: Record<string, string[]>) => svc.CapabilityBoundingSet![0]!.split(/\s+/);

/** setpriv as the unit's CapabilityBoundingSet= and NoNewPrivileges= (root: the bounding set is what it gets). */
function setpriv(svc: Record<string, string[]>, drop?: string): string[] {
  const list = caps(svc)
    .filter((c) => c !== drop)
    .map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`);
  return [
    'setpriv',
    `--bounding-set=-all,${list.join(',')}`,
    '--inh-caps=-all',
    '--ambient-caps=-all',
    ...(svc.NoNewPrivileges?.[0] === 'yes' ? ['--no-new-privs'] : []),
    '--',
  ];
}

/**
 * The unit's file-system sandbox as systemd makes it, in a mount namespace of the daemon's
 * own (unshare, then exec: the same pid): ProtectSystem=strict makes every mount read-only
 * but the API file systems, StateDirectory= and RuntimeDirectory= are bound writable again
 * (here: their relocated dirs, rw), PrivateTmp= gives empty /tmp and /var/tmp, and
 * ProtectHome= empty read-only /home and /root. The checkout (`/usr/lib/tapwire` of the
 * test's root) stays in sight where it is, even under /tmp (a clone there, as a CI may
 * make): staged at `stage` (a writable dir) and bound back over the new /tmp.
 */
function fileSystemSandbox(svc: Record<string, string[]>, writable: string[], stage: string): string[] {
  const lines = ['set -e'];
  const hidden = CHECKOUT_IN_TMP;
  if (hidden) lines.push(`mkdir -p '${stage}'`, `mount --bind '${ROOT}' '${stage}'`);
  if (svc.ProtectSystem?.[0] === 'strict') {
    for (const d of writable) lines.push(`mkdir -p '${d}'`, `mount --bind '${d}' '${d}'`);
    lines.push(`findmnt -rno TARGET | grep -Ev '^/(proc|sys|dev)(/|$)' | while read -r m; do
  mount -o remount,bind,ro "$m" 2>/dev/null || true
done`);
    for (const d of writable) lines.push(`mount -o remount,bind,rw '${d}'`);
  }
  if (svc.PrivateTmp?.[0] === 'yes')
    lines.push('mount -t tmpfs -o mode=1777 tmpfs /tmp', 'mount -t tmpfs -o mode=1777 tmpfs /var/tmp');
  if (svc.ProtectHome?.[0] === 'yes')
    lines.push('mount -t tmpfs -o ro,mode=0755 tmpfs /home', 'mount -t tmpfs -o ro,mode=0700 tmpfs /root');
  if (hidden) lines.push(`mkdir -p '${ROOT}'`, `mount --bind '${stage}' '${ROOT}'`);
  lines.push('exec "$@"');
  return ['unshare', '--mount', '--propagation', 'slave', 'sh', '-c', lines.join('\n'), 'sandbox'];
}

describePrivileged('systemd units', () => {
  const noTools = requireTools('systemd-analyze', 'setpriv', 'python3');
  let dir: string;
  const children = new Set<ChildProcess>();
  const sockets: NotifySocket[] = [];
  beforeEach(() => {
    // not under /tmp: the sandbox of tapmanager.service hides /tmp (PrivateTmp=)
    dir = fs.mkdtempSync(`/run/twt-${process.pid.toString(36)}-units-`);
  });
  afterEach(async () => {
    await killAndWait(children);
    for (const s of sockets.splice(0)) s.close();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Starts one unit's ExecStart as systemd would; `wrap` goes before it (setpriv). */
  async function startUnit(unit: string, notifyAddress: string, wrap: (svc: Record<string, string[]>) => string[]) {
    const root = packageRoot(dir);
    const svc = readUnit(path.join(UNITS, unit)).Service!;
    expect(svc.EnvironmentFile).toEqual(['-/etc/tapwire/tapwire.env']);
    const env = relocatedEnv(dir);
    const argv = execArgv(svc.ExecStart![0]!, env);
    expect(argv[0]).toMatch(/^\/usr\/bin\//);
    argv[0] = path.join(root, argv[0]!);
    const notify = await NotifySocket.open(notifyAddress);
    sockets.push(notify);
    const watchdogSec = svc.WatchdogSec?.[0];
    const stderr: string[] = [];
    const [bin, ...args] = [...wrap(svc), ...argv];
    // setpriv and the /usr/bin wrapper exec: child.pid is the daemon's, the unit's main pid
    const child = spawn(bin!, args, {
      // systemd's environment for a system service: its PATH, the EnvironmentFile's
      // variables, and the notify/watchdog ones (WATCHDOG_PID is set by systemd too)
      env: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        LANG: 'C.UTF-8',
        INVOCATION_ID: 'f'.repeat(32),
        ...env,
        NOTIFY_SOCKET: notify.address,
        ...(watchdogSec ? { WATCHDOG_USEC: String(Number(watchdogSec) * 1e6) } : {}),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.add(child);
    child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
    child.on('exit', () => children.delete(child));
    return { child, notify, env, stderr, svc };
  }

  it('systemd-analyze verify: both units clean in a root laid out as the package lays it', (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const root = packageRoot(dir);
    const units = fs.readdirSync(UNITS).filter((u) => u.endsWith('.service'));
    const verify = (...names: string[]) =>
      spawnSync('systemd-analyze', ['verify', `--root=${root}`, ...names], { encoding: 'utf8' });
    const clean = verify(...units);
    expect({ status: clean.status, out: clean.stdout + clean.stderr }).toEqual({ status: 0, out: '' });
    // and the check sees a mistake: a misspelled key is reported
    const bad = path.join(root, 'etc/systemd/system', units[0]!);
    fs.writeFileSync(bad, fs.readFileSync(bad, 'utf8').replace('NotifyAccess=', 'NotifyAcess='));
    expect(verify(units[0]!).stderr).toContain("Unknown key 'NotifyAcess'");
  });

  it('tapmanager.service: ExecStart under its capability bounding set notifies READY, STATUS, WATCHDOG, STOPPING and sets up a pod', async (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const d = await startUnit('tapmanager.service', `@twt-${process.pid}-${path.basename(dir)}`, (svc) => [
      ...fileSystemSandbox(
        svc,
        [path.join(dir, 'var-lib-tapwire'), path.join(dir, 'run-tapwire')],
        path.join(dir, 'checkout'),
      ),
      ...setpriv(svc),
    ]);
    const ready = await d.notify.waitFor('READY', '1').catch((e: Error) => {
      throw new Error(`${e.message}\n${d.stderr.join('')}`);
    });
    // NotifyAccess=main: the datagram comes from the unit's main pid (setpriv and the /usr/bin
    // wrapper exec), and says so
    expect(ready.pid).toBe(d.child.pid);
    expect(ready.fields.MAINPID).toBe(String(d.child.pid));
    expect(ready.fields.STATUS).toBe('serving 0 sandboxes');
    expect(d.notify.messages.some((m) => m.fields.STATUS?.startsWith('starting: recovery'))).toBe(true);
    await d.notify.waitFor('WATCHDOG', '1'); // WatchdogSec= is set: pings from ready on
    // the file-system sandbox is in effect for the daemon: / read-only, /tmp its own
    const mounts = fs.readFileSync(`/proc/${d.child.pid}/mountinfo`, 'utf8').split('\n');
    expect(mounts.find((l) => l.split(' ')[4] === '/')?.split(' ')[5]).toMatch(/^ro\b/);
    expect(mounts.some((l) => l.split(' ')[4] === '/tmp' && l.includes(' - tmpfs '))).toBe(true);
    // (empty but for the checkout the test keeps in sight when it is under /tmp)
    const tmpTop = CHECKOUT_IN_TMP && ROOT.startsWith('/tmp/') ? [ROOT.split('/')[2]] : [];
    expect(fs.readdirSync(`/proc/${d.child.pid}/root/tmp`)).toEqual(tmpTop);
    // the capability set the daemon runs with is exactly the unit's
    const status = fs.readFileSync(`/proc/${d.child.pid}/status`, 'utf8');
    const mask = caps(d.svc).reduce((m, c) => m | (1n << BigInt(CAP_BITS[c]!)), 0n);
    const capOf = (k: string) => BigInt(`0x${new RegExp(`^${k}:\\s*([0-9a-f]+)$`, 'm').exec(status)![1]!}`);
    expect(capOf('CapBnd')).toBe(mask);
    expect(capOf('CapEff')).toBe(mask);
    expect(capOf('CapAmb')).toBe(0n);
    expect(/^NoNewPrivs:\s*1$/m.test(status)).toBe(true);

    // a setup and a teardown through the unit's control socket, under those limits
    const p = makePod();
    const before = await settledDump(p.pod);
    const flags = d.env.TAPMANAGER_FLAGS!.split(/\s+/);
    const client = new TapmanagerClient(flags[flags.indexOf('--control-socket') + 1]!, 30_000);
    try {
      const r = await client.setup({ sandboxId: 'sb-unit', netnsPath: p.pod.path, cniResult: p.cniResult });
      expect(r.nics[0]!.ip).toBe(p.ip);
      await d.notify.waitFor('STATUS', 'serving 1 sandboxes', 15_000);
      expect((await client.teardown('sb-unit')).errors).toEqual([]);
      expect(await settledDump(p.pod)).toBe(before);
      // a passt NIC too: passt started as nobody under the same limits (no_new_privs included)
      const q = (await client.setup({
        sandboxId: 'sb-unit-passt',
        netnsPath: p.pod.path,
        nics: [{ name: 'default', binding: 'passt', podInterface: 'eth0', cniResult: p.cniResult }],
      })) as { nics: { passt?: { pid?: number } }[] };
      const pid = q.nics[0]!.passt!.pid!;
      expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+65534\s/m);
      expect((await client.teardown('sb-unit-passt')).errors).toEqual([]);
      // gone (the daemon reaps it: a zombie for a moment at most)
      for (let i = 0; i < 100 && fs.existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 20));
      expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
      expect(await settledDump(p.pod)).toBe(before);
    } finally {
      client.close();
    }
    const exited = new Promise((r) => d.child.on('exit', (code) => r(code)));
    d.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const stopping = await d.notify.waitFor('STOPPING', '1');
    expect(stopping.pid).toBe(d.child.pid);
  });

  it('tapmanager.service needs CAP_KILL: without it a passt NIC cannot be stopped (teardown says so, the record stays)', async (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const d = await startUnit('tapmanager.service', path.join(dir, 'notify.sock'), (svc) => setpriv(svc, 'CAP_KILL'));
    await d.notify.waitFor('READY', '1');
    const p = makePod();
    const flags = d.env.TAPMANAGER_FLAGS!.split(/\s+/);
    const client = new TapmanagerClient(flags[flags.indexOf('--control-socket') + 1]!, 30_000);
    let pid: number | undefined;
    try {
      const r = (await client.setup({
        sandboxId: 'sb-nokill',
        netnsPath: p.pod.path,
        nics: [{ name: 'default', binding: 'passt', podInterface: 'eth0', cniResult: p.cniResult }],
      })) as { nics: { passt?: { pid?: number } }[] };
      pid = r.nics[0]!.passt!.pid!;
      const { errors } = await client.teardown('sb-nokill');
      expect(errors).toEqual([expect.stringMatching(/^stop passt pid \d+: kill EPERM/)]);
      expect(((await client.list()) as { state: string }[]).map((s) => s.state)).toEqual(['tearing-down']);
    } finally {
      client.close();
      // the test has every capability; passt may be gone already (its ends were closed)
      if (pid !== undefined && fs.existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
    }
  });

  it('WATCHDOG=1 repeats at half of WATCHDOG_USEC once ready, and stops with STOPPING=1', async (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const notify = await NotifySocket.open(`@twt-${process.pid}-${path.basename(dir)}-wd`);
    sockets.push(notify);
    const sd = new SdNotifier({ NOTIFY_SOCKET: notify.address, WATCHDOG_USEC: '100000' });
    sd.ready('serving');
    const count = () => notify.messages.filter((m) => m.fields.WATCHDOG === '1').length;
    for (const end = Date.now() + 10_000; count() < 4 && Date.now() < end;) await new Promise((r) => setTimeout(r, 20)); // pings every 50 ms
    sd.stopping();
    await notify.waitFor('STOPPING', '1');
    const pings = count();
    expect(pings).toBeGreaterThanOrEqual(4);
    await new Promise((r) => setTimeout(r, 200));
    expect(count()).toBe(pings); // none after STOPPING
    expect(notify.messages[0]!.fields).toMatchObject({ READY: '1', MAINPID: String(process.pid), STATUS: 'serving' });
  });

  it('tapwire-cri.service: ExecStart with the default flags notifies READY and STOPPING (abstract NOTIFY_SOCKET)', async (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const d = await startUnit('tapwire-cri.service', `@twt-${process.pid}-${path.basename(dir)}-notify`, () => []);
    const ready = await d.notify.waitFor('READY', '1').catch((e: Error) => {
      throw new Error(`${e.message}\n${d.stderr.join('')}`);
    });
    expect(ready.pid).toBe(d.child.pid);
    expect(ready.fields.STATUS).toContain('serving the CRI on');
    const flags = d.env.TAPWIRE_CRI_FLAGS!.split(/\s+/);
    expect(fs.existsSync(flags[flags.indexOf('--listen') + 1]!)).toBe(true);
    const exited = new Promise((r) => d.child.on('exit', (code) => r(code)));
    d.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await d.notify.waitFor('STOPPING', '1');
  });

  it.for(caps(readUnit(path.join(UNITS, 'tapmanager.service')).Service!).filter((c) => c !== 'CAP_KILL'))(
    'tapmanager.service needs %s: without it a setup fails',
    async (cap, ctx) => {
      if (noTools) {
        if (inCI) throw new Error(noTools);
        return ctx.skip(noTools);
      }
      const d = await startUnit('tapmanager.service', path.join(dir, 'notify.sock'), (svc) => setpriv(svc, cap));
      await d.notify.waitFor('READY', '1');
      const p = makePod();
      const before = await settledDump(p.pod);
      const flags = d.env.TAPMANAGER_FLAGS!.split(/\s+/);
      const client = new TapmanagerClient(flags[flags.indexOf('--control-socket') + 1]!, 30_000);
      try {
        // CAP_SETUID/CAP_SETGID are for passt NICs (passt is started as nobody): a bridge NIC needs neither
        const passt = cap === 'CAP_SETUID' || cap === 'CAP_SETGID';
        const req = passt
          ? {
              sandboxId: 'sb-nocap',
              netnsPath: p.pod.path,
              nics: [{ name: 'default', binding: 'passt', podInterface: 'eth0', cniResult: p.cniResult }],
            }
          : { sandboxId: 'sb-nocap', netnsPath: p.pod.path, cniResult: p.cniResult };
        const err = await client.setup(req).then(
          () => undefined,
          (e: { code?: string }) => e,
        );
        // passt that cannot drop to nobody fails to start (EIO, with setpriv's exit code)
        expect(err?.code).toMatch(passt ? /^EIO$/ : /^(EPERM|EACCES|EINVAL)$/);
        // rolled back; without CAP_NET_ADMIN the rollback cannot undo either, and the record stays for a teardown
        const left = (await client.list()) as { state: string }[];
        if (left.length === 0) expect(await settledDump(p.pod)).toBe(before);
        else expect(left.map((s) => s.state)).toEqual(['setting-up']);
      } finally {
        client.close();
      }
    },
  );
});
