// The Debian package (scripts/package.sh), built from this checkout and inspected
// (dpkg-deb -I/-c, lintian), then installed for real with `apt-get install ./deb`: not on this machine
// but in a private mount namespace whose / is an overlay of the machine's (writes go to a
// tmpfs that goes with the namespace), so dpkg, its database and the maintainer scripts
// are the real ones while nothing of the host changes. No systemd runs there (none runs as
// PID 1 on these machines): each start is the installed unit's ExecStart with the
// installed /etc/tapwire/tapwire.env, as systemd would run it. The maintainer scripts'
// systemd paths run all the same: the root has /run/systemd/system (what they test for)
// and a stand-in systemctl (FAKE_SYSTEMCTL) that records every call
// (deb-systemd-invoke, the real one, execs it too) and stops the daemon of a unit the test
// marked running where systemd would stop it (stop, restart, try-restart); the start half
// of a restart is the test's. Proven: install enables, starts or unmasks nothing (a
// daemon-reload only); the installed daemon serves a sandbox; an upgrade over the running
// daemon try-restarts it (the old one is stopped by the postinst, the new one recovers the
// sandbox: no drift, the pod as it was); remove stops it and leaves the records and the
// config; purge removes them.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { killAndWait } from '../helpers/kill';
import { removeAllNetns } from '../helpers/netns';
import { NotifySocket } from '../helpers/notify-socket';
import { settledDump } from '../helpers/ip-dump';
import { makePod, podState } from '../helpers/pod';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';
import { execArgv, parseEnvFile, parseUnit } from '../helpers/unit-file';

const ROOT = path.resolve(__dirname, '../..');

/** systemctl for the private root: records its calls; stops the process of a unit marked running. */
const FAKE_SYSTEMCTL = `#!/bin/sh
echo "$*" >> /run/twt-systemctl.log
verb=
units=
for a in "$@"; do
  case "$a" in
    -*) ;;
    *) if [ -z "$verb" ]; then verb=$a; else units="$units $a"; fi ;;
  esac
done
case "$verb" in
  stop|restart|try-restart)
    for u in $units; do
      f=/run/twt-units/$u.pid
      if [ -f "$f" ]; then kill -TERM "$(cat "$f")" && rm "$f"; fi
    done ;;
  is-active)
    for u in $units; do [ -f "/run/twt-units/$u.pid" ] || exit 3; done ;;
  is-enabled) echo disabled; exit 1 ;;
esac
exit 0
`;

describePrivileged('Debian package', () => {
  const noTools = requireTools('dpkg-deb', 'dpkg', 'unshare', 'nsenter', 'python3');
  let dir: string;
  let deb: string;
  const procs = new Set<ChildProcess>();
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-pkg-'));
  });
  afterAll(async () => {
    await killAndWait(procs);
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const skip = (ctx: { skip: (why: string) => void }): boolean => {
    if (!noTools) return false;
    if (inCI) throw new Error(noTools);
    ctx.skip(noTools);
    return true;
  };

  /** The package of this checkout, built once per run of this file. */
  const buildDeb = (): string => {
    if (deb) return deb;
    const out = execFileSync('bash', [path.join(ROOT, 'scripts/package.sh'), path.join(dir, 'out')], {
      encoding: 'utf8',
      env: { ...process.env, TAPWIRE_DEB_VERSION: '0.1.0~test1' },
    });
    deb = out.trim().split('\n').pop()!;
    return deb;
  };

  it('builds tapwire_<version>_<arch>.deb: its control data, files and lintian', (ctx) => {
    if (skip(ctx)) return;
    buildDeb();
    const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
    expect(path.basename(deb)).toBe(`tapwire_0.1.0~test1_${arch}.deb`);
    const field = (f: string) => execFileSync('dpkg-deb', ['-f', deb, f], { encoding: 'utf8' }).trim();
    expect(field('Package')).toBe('tapwire');
    expect(field('Depends')).toMatch(/^nodejs \(>= 20\), nftables, iproute2,/);
    expect(field('Recommends')).toContain('qemu-system-x86');
    const info = execFileSync('dpkg-deb', ['-I', deb], { encoding: 'utf8' });
    for (const s of ['conffiles', 'postinst', 'prerm', 'postrm']) expect(info).toContain(` ${s}`);
    const files = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(/\s+/).slice(5).join(' ').replace(/^\./, ''));
    for (const f of [
      '/usr/bin/tapmanager',
      '/usr/bin/tapwire-cri',
      '/usr/bin/tapctl',
      '/usr/bin/vmwrapper',
      '/lib/systemd/system/tapmanager.service',
      '/lib/systemd/system/tapwire-cri.service',
      '/etc/tapwire/tapwire.env',
      '/usr/share/doc/tapwire/examples/cni/10-tapwire.conflist',
      '/usr/lib/tapwire/build/Release/tapwire.node',
      '/usr/lib/tapwire/dist/src/tapmanager/main.js',
      '/usr/lib/tapwire/node_modules/prom-client/package.json',
      '/usr/lib/tapwire/vendor/cri-api/api.proto',
      '/usr/lib/tapwire/deploy/libvirt/vmwrapper',
      '/usr/share/man/man8/tapmanager.8.gz',
    ])
      expect(files).toContain(f);
    // production dependencies only
    expect(files.filter((f) => /node_modules\/(vitest|eslint|typescript|kubernetes-models)\//.test(f))).toEqual([]);
    if (requireTools('lintian') === undefined || inCI) {
      const l = spawnSync('lintian', ['--tag-display-limit', '0', deb], { encoding: 'utf8' });
      const errors = l.stdout.split('\n').filter((x) => x.startsWith('E:'));
      expect(errors).toEqual([]);
    }
  }, 300_000);

  it('installs in a private root; an upgrade over the running daemon keeps the sandbox; remove keeps records, purge removes them', async (ctx) => {
    if (skip(ctx)) return;
    buildDeb();
    // the upgrade: the same files as a newer version
    const tree = path.join(dir, 'v2');
    execFileSync('dpkg-deb', ['-R', deb, tree]);
    const control = path.join(tree, 'DEBIAN/control');
    fs.writeFileSync(control, fs.readFileSync(control, 'utf8').replace(/^Version: .*$/m, 'Version: 0.1.0~test2'));
    const deb2 = path.join(dir, 'out', 'tapwire_0.1.0~test2.deb');
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '-b', tree, deb2], { stdio: 'ignore' });

    // the pod, before the namespace copies /run/netns's mounts
    const p = makePod();
    const cni = path.join(dir, 'cni-result.json');
    fs.writeFileSync(cni, JSON.stringify(p.cniResult));
    // the private root: an overlay of / (upper layer on a tmpfs of the namespace)
    const ovl = path.join(dir, 'ovl');
    fs.mkdirSync(ovl);
    const m = path.join(ovl, 'm');
    const holder = spawn(
      'unshare',
      [
        '--mount',
        '--propagation',
        'slave',
        'sh',
        '-c',
        `set -e
mount -t tmpfs tmpfs ${ovl}
mkdir ${ovl}/u ${ovl}/w ${m}
mount -t overlay overlay -o lowerdir=/,upperdir=${ovl}/u,workdir=${ovl}/w ${m}
for d in proc sys dev; do mount --rbind /$d ${m}/$d; done
mount -t tmpfs tmpfs ${m}/run
mkdir -p ${m}/run/netns
mount --rbind /run/netns ${m}/run/netns
echo ready
exec sleep 100000`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    procs.add(holder);
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      holder.on('exit', (code) => reject(new Error(`namespace holder ended (${code})`)));
    });
    const inRoot = ['nsenter', `--target=${holder.pid}`, '--mount', '--', 'chroot', m];
    /** Runs a command in the private root; returns stdout+stderr and the status. */
    const run = (...cmd: string[]) => {
      const r = spawnSync(inRoot[0]!, [...inRoot.slice(1), ...cmd], { encoding: 'utf8' });
      return { status: r.status, out: `${r.stdout}${r.stderr}` };
    };
    const exists = (p: string) => run('test', '-e', p).status === 0;
    // the maintainer scripts see a systemd, and call the stand-in systemctl (in the root's
    // /usr/bin: apt runs dpkg with a PATH of its own, DPkg::Path; the host's stays as it is),
    // and no policy-rc.d of a container build machine says no to them (a node has none)
    const fake = path.join(dir, 'systemctl');
    fs.writeFileSync(fake, FAKE_SYSTEMCTL, { mode: 0o755 });
    const prep = run(
      'sh',
      '-c',
      `mkdir -p /run/systemd/system /run/twt-units && install -m 755 ${fake} /usr/bin/systemctl && rm -f /usr/sbin/policy-rc.d`,
    );
    expect(prep.status, prep.out).toBe(0);
    /** The systemctl calls since the last look. */
    let seen = 0;
    const systemctlCalls = (): string[] => {
      const all = run('cat', '/run/twt-systemctl.log').out.split('\n').filter(Boolean);
      const fresh = all.slice(seen);
      seen = all.length;
      return fresh;
    };
    const markRunning = (unit: string, pid: number) =>
      expect(run('sh', '-c', `echo ${pid} > /run/twt-units/${unit}.pid`).status).toBe(0);
    const apt = (...args: string[]) => run('env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args);
    // host paths under /tmp are seen in the root too (its lower layer): the packages
    const aptInstall = (file: string) => apt('install', '-y', '--no-install-recommends', file);
    const install = aptInstall(deb);
    expect(install.status, install.out).toBe(0);
    expect(install.out).toContain('nothing is enabled');
    // a fresh install reloads the units, and enables, starts or unmasks nothing
    expect(systemctlCalls()).toEqual(['--system daemon-reload']);
    expect(exists('/etc/systemd/system/multi-user.target.wants/tapmanager.service')).toBe(false);
    expect(exists('/usr/bin/tapmanager')).toBe(true);
    expect(fs.existsSync('/usr/bin/tapmanager') && !fs.existsSync('/usr/lib/tapwire')).toBe(false); // host untouched
    expect(spawnSync('dpkg', ['-s', 'tapwire']).status).not.toBe(0);
    // the commands run from the installed files: vmwrapper (the libvirt shim) execs the emulator
    expect(run('env', 'TAPWIRE_EMULATOR=/bin/echo', 'vmwrapper', 'emulator-ran').out).toBe('emulator-ran\n');
    expect(run('tapwire-cri', '--help').out).toContain('usage: tapwire-cri');

    /** The installed unit's ExecStart, as systemd would start it. */
    const startDaemon = async () => {
      const unit = parseUnit(run('cat', '/lib/systemd/system/tapmanager.service').out).Service!;
      const env = parseEnvFile(run('cat', '/etc/tapwire/tapwire.env').out);
      const argv = execArgv(unit.ExecStart![0]!, env);
      const notify = await NotifySocket.open(`@twt-${process.pid}-pkg-${Date.now()}`);
      const child = spawn(inRoot[0]!, [...inRoot.slice(1), 'env', '-i', ...envList(env, notify.address), ...argv], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      procs.add(child);
      let log = '';
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => (procs.delete(child), r(code))));
      markRunning('tapmanager.service', child.pid!);
      await notify.waitFor('READY', '1').catch((e: Error) => {
        throw new Error(`${e.message}\n${log}`);
      });
      return {
        log: () => log,
        exited: exited.then((code) => (notify.close(), code)),
        stop: async () => {
          child.kill('SIGTERM');
          const code = await exited;
          notify.close();
          return code;
        },
      };
    };
    const envList = (env: Record<string, string>, notify: string) => [
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      `NOTIFY_SOCKET=${notify}`,
    ];
    const tapctl = (...args: string[]) => run('tapctl', ...args);
    // the operator's edit of the config: metrics on a port the kernel picks (9464 may be
    // taken on a test machine); an upgrade keeps it (a conffile)
    expect(
      run('sed', '-i', 's/--metrics-address 127.0.0.1:9464/--metrics-address 127.0.0.1:0/', '/etc/tapwire/tapwire.env')
        .status,
    ).toBe(0);

    const d1 = await startDaemon();
    const setup = tapctl('setup', 'sb-pkg', '--netns', p.pod.path, '--cni-result', cni);
    expect(setup.status, setup.out).toBe(0);
    await settledDump(p.pod); // (DAD done)
    const topology = podState(p.pod); // links, masters, addresses, routes (not the bridge's running timers)

    // the upgrade, with the daemon running: it serves on through the unpack, and the
    // postinst try-restarts the running units (the stand-in stops the old daemon)
    const upgrade = aptInstall(deb2);
    expect(upgrade.status, upgrade.out).toBe(0);
    expect(run('dpkg-query', '-W', '-f=${Version}', 'tapwire').out).toBe('0.1.0~test2');
    expect(run('cat', '/etc/tapwire/tapwire.env').out).toContain('--metrics-address 127.0.0.1:0');
    expect(systemctlCalls()).toEqual(['--system daemon-reload', 'try-restart tapmanager.service tapwire-cri.service']);
    expect(await d1.exited).toBe(0); // stopped cleanly, by the postinst
    // the start half of the restart: the new files
    const d2 = await startDaemon();
    expect(tapctl('list').out).toContain('sb-pkg  ready');
    expect(d2.log()).toContain('"msg":"sandbox recovered","sandboxId":"sb-pkg"');
    const status = JSON.parse(tapctl('status', 'sb-pkg', '--json').out) as { state: string; drift: string[] };
    expect(status).toMatchObject({ state: 'ready', drift: [] });
    expect(podState(p.pod)).toBe(topology);

    // remove: the prerm stops the daemon; the program goes, the records and the config stay
    const records = run('ls', '/var/lib/tapwire/sandboxes').out.split('\n').filter(Boolean);
    expect(records.length).toBeGreaterThan(0);
    const remove = apt('remove', '-y', 'tapwire');
    expect(remove.status, remove.out).toBe(0);
    expect(await d2.exited).toBe(0);
    expect(systemctlCalls()).toEqual(['stop tapwire-cri.service tapmanager.service', '--system daemon-reload']);
    expect(exists('/usr/bin/tapmanager')).toBe(false);
    expect(exists('/usr/lib/tapwire')).toBe(false);
    expect(run('ls', '/var/lib/tapwire/sandboxes').out.split('\n').filter(Boolean)).toEqual(records);
    expect(exists('/etc/tapwire/tapwire.env')).toBe(true);
    // purge: both go
    const purge = apt('purge', '-y', 'tapwire');
    expect(purge.status, purge.out).toBe(0);
    expect(systemctlCalls()).toEqual(['--system daemon-reload']);
    expect(exists('/var/lib/tapwire')).toBe(false);
    expect(exists('/etc/tapwire')).toBe(false);
  }, 240_000);
});
