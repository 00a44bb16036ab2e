// A real QEMU (TCG) started through vmwrapper: tapwire's guest boots on tap fds handed
// over by a fake fd server (the taps sit on a bridge in a test netns with dnsmasq), gets
// its fixed lease and pings the gateway, judged from its console file. While it runs,
// the pid vmwrapper was spawned as is QEMU (execve, no child).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ensureGuest, GuestImage, GuestRun, guestCmdline, QEMU, qemuArgs, startGuest } from '../../src/guest';
import { FakeFdServer, startFakeFdServer } from '../fixtures/vmwrapper/fake-fd-server';
import { GuestNet, makeGuestNet } from '../fixtures/vmwrapper/guest-net';
import { requireBuilt, SHIM } from '../fixtures/vmwrapper/run-wrapper';
import { removeAllNetns } from '../helpers/netns';
import { describePrivileged, requireTools } from '../helpers/privileged';

describePrivileged('vmwrapper boots a real guest', () => {
  let tmp: string;
  let image: GuestImage;
  let server: FakeFdServer | undefined;
  let net: GuestNet | undefined;
  let run: GuestRun | undefined;
  beforeAll(async () => {
    requireBuilt();
    const missing = requireTools('dnsmasq', QEMU);
    if (missing) throw new Error(missing);
    image = await ensureGuest(); // cached by setup.sh; built here on a fresh cache
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-vmwq-'));
  }, 900_000);
  afterEach(async () => {
    await run?.kill();
    run = undefined;
    await server?.close();
    server = undefined;
    net?.closeAll();
    net = undefined;
    removeAllNetns();
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it.each([
    { label: 'one queue', queues: 1 },
    { label: 'virtio multiqueue', queues: 2 },
  ])(
    '$label: the guest gets its lease and pings the gateway',
    async ({ queues, label }) => {
      net = makeGuestNet(tmp);
      const taps = net.tap(`vmwq${queues}`, queues);
      const mac = net.mac;
      server = await startFakeFdServer(() => ({
        reply: {
          ok: true,
          result: {
            sandboxId: 'sb-q',
            nics: [{ mac, model: 'virtio-net-pci', queues, vnetHdr: true, tap: `vmwq${queues}`, vhost: false }],
          },
        },
        fds: taps,
      }));
      const log = path.join(tmp, `console-${queues}.log`);
      // udhcpc's default tries are short when CI runs several TCG guests on two cores
      const append = guestCmdline({ dhcpTries: 20 });
      const seen: { exe?: string; cmdline?: string[]; fdLinks?: string[] } = {};
      run = startGuest({
        command: SHIM,
        args: qemuArgs({
          kernel: image.kernel,
          initrd: image.initrd,
          append,
          name: `tapwire-${label.replace(/ /g, '-')}`,
          console: { file: log },
        }),
        console: { file: log },
        env: {
          PATH: '/usr/bin:/bin',
          TAPWIRE_NODE: process.execPath,
          TAPWIRE_NET_KEY: 'sb-q:tok',
          TAPWIRE_EMULATOR: QEMU,
          TAPWIRE_FD_SOCKET: server.socketPath,
        },
        timeoutMs: 200_000,
        expect: { leases: 1, pings: 1, lease: { ip: net.guestIp, router: net.gw } },
        onLine: (l) => {
          if (l.event !== 'start') return;
          // the guest is talking, so QEMU runs: the pid vmwrapper was spawned as is QEMU
          const pid = run!.pid;
          seen.exe = fs.readlinkSync(`/proc/${pid}/exe`);
          seen.cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
          const netdev = seen.cmdline.find((a) => a.startsWith('tap,id=tapwire0,')) ?? '';
          seen.fdLinks = netdev
            .replace(/^.*=/, '')
            .split(':')
            .map((fd) => fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        },
      });
      const res = await run.result;
      const why = [...res.verdict.problems, ...res.tail, `qemu stderr: ${res.stderr}`].join('\n');
      expect(res.verdict.ok, why).toBe(true);
      expect(res.exitCode).toBe(0); // the guest powered off; -no-reboot ends QEMU
      expect(seen.exe).toBe(QEMU);
      const netdev = seen.cmdline!.find((a) => a.startsWith('tap,id=tapwire0,'));
      expect(netdev).toMatch(queues === 1 ? /^tap,id=tapwire0,fd=\d+$/ : /^tap,id=tapwire0,fds=\d+:\d+$/);
      expect(seen.fdLinks).toEqual(Array(queues).fill('/dev/net/tun'));
      expect(res.report.nics.map((n) => n.mac)).toEqual([mac]);
    },
    240_000,
  );
});
