// tapwire's own guest (src/guest), end to end: the image builds on an empty cache, two
// builders at once (another process and this one) make it once, a changed init makes a
// new one, and without apt the cached image of the same init serves; and the guest boots under QEMU on two taps in a test netns with dnsmasq. It
// reports both NICs and a lease on each, the addresses and routes it applied, pings the
// gateway, connects to a TCP server in the netns (and reads its line) and serves a port
// that the netns connects to.
import { ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  cacheRoot,
  ensureGuest,
  GuestImage,
  GuestLine,
  GuestRun,
  guestCmdline,
  QEMU,
  QEMU_NIC_MODELS,
  qemuArgs,
  startGuest,
} from '../../src/guest';
import { GuestNet, makeGuestNet } from '../fixtures/vmwrapper/guest-net';
import { removeAllNetns } from '../helpers/netns';
import { describePrivileged, requireTools } from '../helpers/privileged';

const ROOT = path.resolve(__dirname, '../..');
const BUILD_CLI = path.join(ROOT, 'dist/src/guest/build.js');

/** Runs node with `script` inside the netns; resolves once it printed "ready". */
function nodeInNetns(ns: string, script: string): Promise<{ proc: ChildProcess; out: () => string }> {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve({ proc, out: () => out });
    });
    proc.once('close', (code) => reject(new Error(`node in ${ns} exited ${code}: ${out}`)));
  });
}

describePrivileged("tapwire's guest", () => {
  let tmp: string;
  const procs: ChildProcess[] = [];
  beforeAll(() => {
    const missing = requireTools('apt-get', 'dpkg-deb', 'flock', 'dnsmasq', QEMU);
    if (missing) throw new Error(missing);
    if (!fs.existsSync(BUILD_CLI)) throw new Error(`${BUILD_CLI} is not built (npm run build)`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-guest-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe('image', () => {
    it('builds once on an empty cache with two builders at once; a changed init builds anew; no apt: the cache serves', async () => {
      const cache = path.join(tmp, 'cache');
      // the packages as apt would download them, when the main cache has them already
      const debs = path.join(cacheRoot(), 'debs');
      if (fs.existsSync(debs)) {
        fs.mkdirSync(path.join(cache, 'guest', 'debs'), { recursive: true });
        for (const f of fs.readdirSync(debs).filter((n) => n.endsWith('.deb'))) {
          fs.copyFileSync(path.join(debs, f), path.join(cache, 'guest', 'debs', f));
        }
      }
      const other = new Promise<{ code: number | null; out: string }>((resolve) => {
        execFile(
          process.execPath,
          [BUILD_CLI, '--json'],
          { env: { ...process.env, TAPWIRE_CACHE: cache }, timeout: 900_000 },
          (err, stdout, stderr) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, out: stdout + stderr }),
        );
      });
      const logs: string[] = [];
      const mine = await ensureGuest({ cacheDir: path.join(cache, 'guest'), log: (l) => logs.push(l) });
      const theirs = await other;
      expect(theirs.code, theirs.out).toBe(0);
      const their = JSON.parse(theirs.out.slice(0, theirs.out.lastIndexOf('}') + 1)) as GuestImage;
      expect(their.dir).toBe(mine.dir);
      // exactly one of the two built it
      const built =
        Number(logs.some((l) => l.startsWith('building'))) + Number(theirs.out.includes('building the guest'));
      expect(built).toBe(1);
      const entries = fs.readdirSync(path.join(cache, 'guest'));
      expect(entries.filter((e) => e.startsWith('.build-') || e.startsWith('.dl-'))).toEqual([]);
      expect(entries.filter((e) => /^[0-9a-f]{16}$/.test(e))).toEqual([mine.manifest.key]);
      expect(path.basename(mine.dir)).toBe(mine.manifest.key);
      expect(fs.statSync(mine.kernel).size).toBe(mine.manifest.kernelBytes);
      expect(fs.statSync(mine.initrd).size).toBe(mine.manifest.initrdBytes);
      expect(fs.statSync(mine.initrd).mode & 0o777).toBe(0o644); // an unprivileged emulator reads it
      expect(mine.manifest.modules.some((m) => m.endsWith('/virtio_net.ko'))).toBe(true);
      expect(mine.manifest.packages.map((p) => p.name)).toEqual([
        expect.stringMatching(/^linux-image-[0-9.]+-[0-9]+-amd64$/),
        'busybox-static',
        'dhcpcd-base',
        'libc6',
      ]);
      // dhcpcd and the libraries it loads, from the packages: no host file in the image
      const cpio = gunzipSync(fs.readFileSync(mine.initrd));
      for (const name of ['usr/sbin/dhcpcd', 'lib/x86_64-linux-gnu/libc.so.6', 'lib64/ld-linux-x86-64.so.2'])
        expect(cpio.includes(`${name}\0`), name).toBe(true);
      console.log(
        `[guest] image ${mine.manifest.key}: kernel ${mine.manifest.kernelVersion} ${mine.manifest.kernelBytes} B, ` +
          `initrd ${mine.manifest.initrdBytes} B`,
      );

      // again: from the cache, nothing built
      logs.length = 0;
      expect((await ensureGuest({ cacheDir: path.join(cache, 'guest'), log: (l) => logs.push(l) })).dir).toBe(mine.dir);
      expect(logs).toEqual([]);

      // a changed input (the init script) is a new image; the previous one stays
      const rootfs = path.join(tmp, 'rootfs');
      fs.cpSync(path.join(ROOT, 'src/guest/rootfs'), rootfs, { recursive: true });
      fs.appendFileSync(path.join(rootfs, 'init'), '# changed\n');
      const changed = await ensureGuest({ cacheDir: path.join(cache, 'guest'), rootfsDir: rootfs });
      expect(changed.manifest.key).not.toBe(mine.manifest.key);
      expect(fs.existsSync(mine.initrd)).toBe(true);

      // apt unusable (no network, no lists): the newest image of the same rootfs serves
      const bin = path.join(tmp, 'bin');
      fs.mkdirSync(bin);
      for (const tool of ['apt-cache', 'apt-get']) {
        fs.writeFileSync(path.join(bin, tool), '#!/bin/sh\necho "E: no network" >&2\nexit 100\n', { mode: 0o755 });
      }
      const offline = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        execFile(
          process.execPath,
          [BUILD_CLI],
          { env: { ...process.env, TAPWIRE_CACHE: cache, PATH: `${bin}:${process.env.PATH}` } },
          (err, stdout, stderr) => resolve({ code: err ? -1 : 0, out: stdout, err: stderr }),
        );
      });
      expect(offline.code, offline.err).toBe(0);
      expect(offline.out).toContain(`initrd ${mine.initrd}`);
      expect(offline.err).toMatch(/E: no network.*; using the cached image [0-9a-f]{16} \(same rootfs/);
    }, 900_000);
  });

  describe('boot', () => {
    let image: GuestImage;
    let net: GuestNet | undefined;
    let run: GuestRun | undefined;
    beforeAll(async () => {
      image = await ensureGuest(); // cached by setup.sh; built here on a fresh cache
    }, 900_000);
    afterEach(async () => {
      await run?.kill();
      run = undefined;
      for (const p of procs.splice(0)) p.kill('SIGKILL');
      net?.closeAll();
      net = undefined;
      removeAllNetns();
    });

    it('reports two NICs and their leases, pings, connects out and serves a port', async () => {
      net = makeGuestNet(tmp, 2);
      const fds = [...net.tap('twg0'), ...net.tap('twg1')];
      const port = 20000 + Math.floor(Math.random() * 20000);
      const server = await nodeInNetns(
        net.ns.name,
        `require('net').createServer((c) => c.end('hello from the netns\\n'))` +
          `.listen(${port}, '${net.gw}', () => console.log('ready'))`,
      );
      procs.push(server.proc);

      const events: GuestLine[] = [];
      const append = guestCmdline({
        dhcpTries: 20,
        tcp: [{ host: net.gw, port }],
        listen: [8080],
        stay: true, // stays up after done: the netns connects to its port then
      });
      run = startGuest({
        command: QEMU,
        args: qemuArgs({
          kernel: image.kernel,
          initrd: image.initrd,
          append,
          console: 'stdio',
          nics: [
            { netdev: 'tap,fd=3', mac: net.macs[0]! },
            { netdev: 'tap,fd=4', mac: net.macs[1]! },
          ],
        }),
        console: 'stdio',
        fds,
        timeoutMs: 200_000,
        until: 'done',
        expect: { leases: 2, pings: 1 },
        onLine: (l) => events.push(l),
      });
      const res = await run.result;
      const why = [...res.verdict.problems, ...res.tail, `qemu stderr: ${res.stderr}`].join('\n');
      expect(res.verdict.ok, why).toBe(true);
      const r = res.report;
      expect(r.start?.kernel).toBe(image.manifest.kernelVersion);
      expect(r.nics.map((n) => [n.mac, n.driver]).sort()).toEqual(net.macs.map((m) => [m, 'virtio_net']).sort());
      const byMac = new Map(r.nics.map((n) => [n.mac, n.name]));
      for (const [i, mac] of net.macs.entries()) {
        const lease = r.leases.find((l) => l.nic === byMac.get(mac));
        expect(lease, `lease of ${mac}`).toMatchObject({ ip: net.guestIps[i], mask: '24', router: [net.gw] });
        expect(r.addrs).toContainEqual({ nic: byMac.get(mac), family: '4', addr: `${net.guestIps[i]}/24` });
      }
      expect(r.routes).toContainEqual(expect.objectContaining({ family: '4', dst: 'default', via: net.gw }));
      expect(r.resolv).toBeDefined();
      expect(r.pings).toEqual([{ target: net.gw, sent: 2, recv: 2, ok: true }]);
      expect(r.tcp).toEqual([{ target: `${net.gw}:${port}`, ok: true, rc: '0', got: 'hello?from?the?netns' }]);
      expect(r.listens).toEqual([{ port: 8080, ok: true }]);

      // the port the guest serves, from the netns
      const client = await nodeInNetns(
        net.ns.name,
        `const c = require('net').connect(8080, '${net.guestIps[0]}');` +
          `let got = ''; c.on('data', (d) => (got += d)); c.on('end', () => console.log('ready ' + got.trim()));`,
      );
      procs.push(client.proc);
      expect(client.out()).toMatch(/^ready tapwire-guest hello port=8080 host=tapwire-guest$/m);
      for (let i = 0; i < 300 && !events.some((e) => e.event === 'accept'); i++) {
        await new Promise((res) => setTimeout(res, 100));
      }
      expect(events.filter((e) => e.event === 'accept').map((e) => e.fields.port)).toEqual(['8080']);
      console.log(`[guest] boot to done: ${r.done?.up} s of guest uptime under TCG`);
    }, 300_000);

    it('DHCPv6 and router advertisements from dnsmasq: the IPv6 address, default route and DNS beside the IPv4 lease', async () => {
      net = makeGuestNet(tmp, 1, { v6: true });
      const fds = net.tap('twg6');
      run = startGuest({
        command: QEMU,
        args: qemuArgs({
          kernel: image.kernel,
          initrd: image.initrd,
          append: guestCmdline({ dhcpTries: 20, dhcp6: true, ping: ['gw', net.gw6!] }),
          console: 'stdio',
          nics: [{ netdev: 'tap,fd=3', mac: net.mac }],
        }),
        console: 'stdio',
        fds,
        timeoutMs: 200_000,
        until: 'done',
        expect: { leases: 1, leases6: 1, pings: 3 },
      });
      const res = await run.result;
      const why = [...res.verdict.problems, ...res.tail, `qemu stderr: ${res.stderr}`].join('\n');
      expect(res.verdict.ok, why).toBe(true);
      const r = res.report;
      const nic = r.nics[0]!.name;
      const lease6 = r.leases.find((l) => l.family === 6)!;
      const [lo, hi] = net.range6!.map((a) => parseInt(a.split(':').at(-1)!, 16));
      const got = parseInt(lease6.ip.split(':').at(-1)!, 16);
      expect(lease6.ip.startsWith(net.gw6!.slice(0, -1)), why).toBe(true);
      expect(got >= lo! && got <= hi!, `${lease6.ip} in ${net.range6!.join('-')}`).toBe(true);
      expect(lease6).toMatchObject({ nic, mask: '128', dns: [net.gw6] });
      expect(r.addrs).toContainEqual({ nic, family: '6', addr: `${lease6.ip}/128` });
      expect(r.addrs).toContainEqual({ nic, family: '4', addr: `${net.guestIp}/24` }); // udhcpc's, untouched
      const br0LL = /inet6 (fe80::\S+)\/64/.exec(net.ns.ip('-6', 'addr', 'show', 'dev', 'br0'))![1]!;
      expect(r.routers6).toEqual([{ nic, router: br0LL, mtu: 1500 }]);
      expect(r.routes).toContainEqual(expect.objectContaining({ family: '6', dst: 'default', via: br0LL, dev: nic }));
      expect(r.routes).toContainEqual(expect.objectContaining({ family: '6', dst: `${net.gw6!.slice(0, -1)}/64` }));
      expect(r.resolv?.nameservers).toContain(net.gw6);
      expect(r.pings).toEqual([
        { target: net.gw, sent: 2, recv: 2, ok: true },
        { target: `${br0LL}%${nic}`, sent: 2, recv: 2, ok: true },
        { target: net.gw6, sent: 2, recv: 2, ok: true },
      ]);
    }, 300_000);

    it('drives a NIC of each spec model: reports their MACs in device order and leases on each', async () => {
      const drivers: Record<string, string> = {
        'virtio-net-pci': 'virtio_net',
        e1000: 'e1000',
        e1000e: 'e1000e',
        ne2k_pci: 'ne2k-pci',
        pcnet: 'pcnet32',
        rtl8139: '8139cp',
      };
      // the drivers load in another order than the devices sit: the guest sorts by PCI address
      const models = ['rtl8139', 'virtio-net-pci', 'pcnet', 'e1000', 'ne2k_pci', 'e1000e'] as const;
      expect([...models].sort()).toEqual([...QEMU_NIC_MODELS].sort());
      net = makeGuestNet(tmp, models.length);
      const fds = models.flatMap((_, i) => net!.tap(`twm${i}`));
      run = startGuest({
        command: QEMU,
        args: qemuArgs({
          kernel: image.kernel,
          initrd: image.initrd,
          append: guestCmdline({ dhcpTries: 30, ping: [] }),
          console: 'stdio',
          nics: models.map((model, i) => ({ netdev: `tap,fd=${3 + i}`, mac: net!.macs[i]!, model })),
        }),
        console: 'stdio',
        fds,
        timeoutMs: 250_000,
        until: 'done',
        expect: { leases: models.length, pings: 0 },
      });
      const res = await run.result;
      const why = [...res.verdict.problems, ...res.tail, `qemu stderr: ${res.stderr}`].join('\n');
      expect(res.verdict.ok, why).toBe(true);
      const r = res.report;
      expect(r.nics.map((x) => [x.mac, x.driver])).toEqual(models.map((m, i) => [net!.macs[i], drivers[m]]));
      for (const [i, nic] of r.nics.entries()) {
        expect(
          r.leases.find((l) => l.nic === nic.name),
          `lease of ${models[i]}`,
        ).toMatchObject({
          ip: net.guestIps[i],
          router: [net.gw],
        });
      }
      console.log(`[guest] ${models.length} NIC models, boot to done: ${r.done?.up} s of guest uptime under TCG`);
    }, 300_000);
  });
});
