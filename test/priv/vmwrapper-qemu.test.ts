// A real QEMU (TCG) started through vmwrapper: the e2e guest boots on tap fds handed
// over by a fake fd server (the taps sit on a bridge in a test netns with dnsmasq), gets
// its fixed lease and pings the gateway, judged by boot-guest.py --judge-log. While it
// runs, the pid vmwrapper was spawned as is QEMU (execve, no child).
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { FakeFdServer, startFakeFdServer } from '../fixtures/vmwrapper/fake-fd-server';
import { GuestNet, guestBootArgs, judgeLog, killJudges, makeGuestNet } from '../fixtures/vmwrapper/guest-net';
import { requireBuilt, SHIM } from '../fixtures/vmwrapper/run-wrapper';
import { removeAllNetns } from '../helpers/netns';
import { describePrivileged, requireTools } from '../helpers/privileged';

const QEMU = '/usr/bin/qemu-system-x86_64';

describePrivileged('vmwrapper boots a real guest', () => {
  let tmp: string;
  let server: FakeFdServer | undefined;
  let net: GuestNet | undefined;
  let qemu: ChildProcess | undefined;
  beforeAll(() => {
    requireBuilt();
    const missing = requireTools('dnsmasq', 'python3', QEMU);
    if (missing) throw new Error(missing);
    guestBootArgs(); // fails early if the e2e guest is not built
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-vmwq-'));
  });
  afterEach(async () => {
    killJudges();
    if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
      qemu.kill('SIGKILL');
      await new Promise((r) => qemu!.once('close', r));
    }
    qemu = undefined;
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
      const args = [
        '-name',
        `tapwire-${label.replace(/ /g, '-')}`,
        '-machine',
        'pc',
        '-accel',
        'tcg',
        '-m',
        '256',
        '-smp',
        '1',
        '-nodefaults',
        '-no-user-config',
        '-display',
        'none',
        '-no-reboot',
        '-monitor',
        'none',
        '-serial',
        `file:${log}`,
        ...guestBootArgs(),
      ];
      let stderr = '';
      qemu = spawn(SHIM, args, {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: {
          PATH: '/usr/bin:/bin',
          TAPWIRE_NODE: process.execPath,
          TAPWIRE_NET_KEY: 'sb-q:tok',
          TAPWIRE_EMULATOR: QEMU,
          TAPWIRE_FD_SOCKET: server.socketPath,
        },
      });
      qemu.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((r) => qemu!.once('close', (c) => r(c)));

      const judged = judgeLog(log, [`ip=${net.guestIp}`, `router=${net.gw}`]);
      // once QEMU has taken the fds, the spawned pid is QEMU itself
      for (let i = 0; i < 100 && !fs.existsSync(log); i++) await new Promise((r) => setTimeout(r, 100));
      expect(fs.readlinkSync(`/proc/${qemu.pid}/exe`)).toBe(QEMU);
      const cmdline = fs.readFileSync(`/proc/${qemu.pid}/cmdline`, 'utf8').split('\0');
      const netdev = cmdline.find((a) => a.startsWith('tap,id=tapwire0,'));
      expect(netdev).toMatch(queues === 1 ? /^tap,id=tapwire0,fd=\d+$/ : /^tap,id=tapwire0,fds=\d+:\d+$/);
      for (const fd of netdev!.replace(/^.*=/, '').split(':')) {
        expect(fs.readlinkSync(`/proc/${qemu.pid}/fd/${fd}`)).toBe('/dev/net/tun');
      }

      const verdict = await judged;
      expect(verdict.out, `${verdict.out}\nqemu stderr: ${stderr}`).toMatch(/E2E-RESULT status=ok/);
      expect(verdict.code).toBe(0);
      expect(await exited).toBe(0); // the guest powered off; -no-reboot ends QEMU
    },
    240_000,
  );
});
