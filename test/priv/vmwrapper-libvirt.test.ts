// vmwrapper under real libvirtd (TCG domain type 'qemu') on a sandbox built by the real
// tapmanager daemon: <emulator> is the shell shim deploy/libvirt/vmwrapper, the network
// key from tapmanager's setup reaches it through <qemu:commandline><qemu:env>, the tap fd
// comes from the daemon's fd socket, which admits the libvirt-qemu uid (--fd-allow-uid)
// that the emulator runs as inside libvirt's private /dev. The domain starts (after
// libvirt probed the shim with no key), the guest gets the pod's CNI lease from
// tapmanager's DHCP server and pings the pod gateway (console to a file), and `virsh
// destroy` + `undefine` leave no process, runtime file or cgroup behind; tapmanager's
// teardown then restores the pod exactly. libvirt's own balloon stays in: the NIC must
// not take its slot.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ensureGuest, followConsole, GuestImage, guestCmdline } from '../../src/guest';
import { ensureLibvirt, Libvirt } from '../fixtures/vmwrapper/libvirt';
import { requireBuilt, SHIM } from '../fixtures/vmwrapper/run-wrapper';
import { Daemon, killDaemons, startDaemon } from '../helpers/daemon';
import { removeAllNetns } from '../helpers/netns';
import { makePod, podState } from '../helpers/pod';
import { describePrivileged, requireTools } from '../helpers/privileged';

const xmlEscape = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;');

function domainXml(o: {
  name: string;
  kernel: string;
  initrd: string;
  append: string;
  log: string;
  env: Record<string, string>;
}): string {
  const env = Object.entries(o.env)
    .map(([k, v]) => `    <qemu:env name='${k}' value='${xmlEscape(v)}'/>`)
    .join('\n');
  return `<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${o.name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${xmlEscape(o.kernel)}</kernel>
    <initrd>${xmlEscape(o.initrd)}</initrd>
    <cmdline>${xmlEscape(o.append)}</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>${xmlEscape(SHIM)}</emulator>
    <serial type='file'>
      <source path='${xmlEscape(o.log)}'/>
      <target port='0'/>
    </serial>
    <memballoon model='virtio'/>
  </devices>
  <qemu:commandline>
${env}
  </qemu:commandline>
</domain>
`;
}

/** Pids whose command line mentions the domain name. */
function pidsOf(name: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`guest=${name}`)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Cgroup directories whose name mentions the domain (libvirt escapes '-' as \x2d). */
function cgroupsOf(name: string): string[] {
  const needles = [name, name.replace(/-/g, '\\x2d')];
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (depth > 4) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (needles.some((n) => e.name.includes(n))) found.push(p);
      else walk(p, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return found;
}

describePrivileged('vmwrapper under real libvirtd', () => {
  let tmp: string;
  let image: GuestImage;
  let lv: Libvirt | undefined;
  let daemon: Daemon | undefined;
  let domain: string | undefined;
  let following: AbortController | undefined;
  beforeAll(async () => {
    requireBuilt();
    const missing = requireTools('libvirtd', 'virsh', 'virtlogd', 'nft');
    if (missing) throw new Error(missing);
    image = await ensureGuest(); // cached by setup.sh; built here on a fresh cache
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-vmwl-'));
    lv = await ensureLibvirt(tmp);
  }, 900_000);
  afterEach(async () => {
    following?.abort();
    following = undefined;
    if (domain) {
      await lv!.virsh('destroy', domain);
      await lv!.virsh('undefine', domain);
      domain = undefined;
    }
    daemon?.client.close();
    daemon = undefined;
    await killDaemons();
    removeAllNetns();
  });
  afterAll(async () => {
    await lv?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it('starts a domain whose emulator is vmwrapper; the guest gets its lease; destroy leaves nothing', async () => {
    const name = `twt-vmw-${process.pid.toString(36)}-${randomBytes(3).toString('hex')}`;
    // a directory the libvirt-qemu user can use; copies of the guest, since libvirt
    // relabels (chowns) kernel and initrd for the emulator's uid while it runs
    const dir = path.join(tmp, 'guest');
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.chmodSync(tmp, 0o755);
    const kernel = path.join(dir, 'vmlinuz');
    const initrd = path.join(dir, 'initrd.img');
    fs.copyFileSync(image.kernel, kernel);
    fs.copyFileSync(image.initrd, initrd);
    fs.chownSync(dir, lv!.qemuUid, lv!.qemuGid);
    const log = path.join(dir, 'console.log');

    const pod = makePod({ mtu: 1500 });
    // the snapshot to compare with once IPv6 DAD on the fresh veth has settled
    for (let i = 0; i < 100 && podState(pod.pod).includes('tentative'); i++)
      await new Promise((r) => setTimeout(r, 50));
    const before = podState(pod.pod);
    daemon = await startDaemon(path.join(tmp, 'tapmanager'), { args: ['--fd-allow-uid', String(lv!.qemuUid)] });
    fs.chmodSync(path.join(tmp, 'tapmanager'), 0o755); // libvirt-qemu must reach fd.sock (0666)
    const sandboxId = `twt-vmwl-${randomBytes(4).toString('hex')}`;
    const setup = await daemon.client.setup({
      sandboxId,
      netnsPath: pod.pod.path,
      cniResult: pod.cniResult,
      hostname: 'libvirt-guest',
    });
    const mac = setup.nics[0]!.mac;
    expect(mac).toBe(pod.mac); // the guest takes the veth's MAC

    const xmlPath = path.join(tmp, 'domain.xml');
    fs.writeFileSync(
      xmlPath,
      domainXml({
        name,
        kernel,
        initrd,
        // stay: the guest stays up after its done line, so destroy meets a running domain
        append: guestCmdline({ dhcpTries: 20, stay: true }),
        log,
        env: { TAPWIRE_NET_KEY: setup.netKey, TAPWIRE_FD_SOCKET: daemon.fdSocket },
      }),
    );
    const def = await lv!.virsh('define', xmlPath);
    expect(def.code, def.out).toBe(0);
    domain = name;
    following = new AbortController();
    const judged = followConsole(log, {
      signal: following.signal,
      timeoutMs: 200_000,
      expect: { leases: 1, pings: 1, lease: { ip: pod.ip, router: pod.gw, hostname: 'libvirt-guest' } },
    });
    const start = await lv!.virsh('start', name);
    expect(start.code, start.out).toBe(0);
    // the daemon handed the fds to the libvirt-qemu uid (SO_PEERCRED), not to root
    const handed = daemon.logs().filter((l) => l.msg === 'fds handed out');
    expect(handed.map((l) => l.uid)).toEqual([lv!.qemuUid]);

    const [pid] = pidsOf(name);
    expect(pid).toBeDefined();
    expect(fs.readlinkSync(`/proc/${pid}/exe`)).toBe('/usr/bin/qemu-system-x86_64');
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const netdev = args.find((a) => a.startsWith('tap,id=tapwire'));
    expect(netdev, args.join(' ')).toMatch(/^tap,id=tapwire\d+,fd=\d+$/);
    expect(fs.readlinkSync(`/proc/${pid}/fd/${netdev!.replace(/^.*fd=/, '')}`)).toBe('/dev/net/tun');
    expect(fs.readFileSync(`/proc/${pid}/environ`, 'utf8')).not.toContain('TAPWIRE_NET_KEY');

    const res = await judged;
    expect(res.verdict.ok, [...res.verdict.problems, ...res.tail].join('\n')).toBe(true);
    console.log(`[vmwrapper-libvirt] emulator pid ${pid} uid ${uid}; ${res.report.lines.at(-1)}`);

    const destroyed = await lv!.virsh('destroy', name);
    expect(destroyed.code, destroyed.out).toBe(0);
    const undef = await lv!.virsh('undefine', name);
    expect(undef.code, undef.out).toBe(0);
    domain = undefined;
    expect((await lv!.virsh('list', '--all', '--name')).out.split('\n')).not.toContain(name);
    expect(pidsOf(name)).toEqual([]);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    expect(fs.readdirSync('/run/libvirt/qemu').filter((f) => f.includes(name))).toEqual([]);
    expect(fs.readdirSync('/var/lib/libvirt/qemu').filter((f) => f.includes(name))).toEqual([]);
    expect(cgroupsOf(name)).toEqual([]);
    // the sandbox outlives the VM; tapmanager's teardown restores the pod exactly
    expect(pod.pod.ip('link', 'show', setup.nics[0]!.tap)).toContain('master br0');
    const td = await daemon.client.teardown(sandboxId);
    expect(td.errors ?? []).toEqual([]);
    expect(podState(pod.pod)).toBe(before);
  }, 300_000);
});
