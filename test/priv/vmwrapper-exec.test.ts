// vmwrapper with real tap fds from a netns: it execs a stub emulator that reports its
// fds, argv, pid and signal state. The taps survive the exec at the numbers named in
// -netdev, a descriptor vmwrapper does not own (a "pidfile" libvirt would pass) stays
// open, the pid is the one that was spawned, and no signal is ignored or blocked.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { tapInfo } from '../../src/native';
import { FakeFdServer, startFakeFdServer } from '../fixtures/vmwrapper/fake-fd-server';
import { GuestNet, makeGuestNet, randomMac } from '../fixtures/vmwrapper/guest-net';
import { parseStub, requireBuilt, runWrapper, STUB } from '../fixtures/vmwrapper/run-wrapper';
import { removeAllNetns } from '../helpers/netns';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('vmwrapper exec with real taps', () => {
  let tmp: string;
  let server: FakeFdServer | undefined;
  let net: GuestNet | undefined;
  beforeAll(() => {
    requireBuilt();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-vmwx-'));
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    net?.closeAll();
    net = undefined;
    removeAllNetns();
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it.each(['node', 'shim'] as const)(
    '%s: keeps the tap fds (one and multiqueue) and foreign fds across execve, same pid, clean signals',
    async (how) => {
      net = makeGuestNet(tmp);
      const single = net.tap('vmwt0');
      const multi = net.tap('vmwt1', 3);
      const macs = [randomMac(), randomMac()];
      server = await startFakeFdServer(() => ({
        reply: {
          ok: true,
          result: {
            sandboxId: 'sb-x',
            nics: [
              { mac: macs[0], model: 'e1000', queues: 1, vnetHdr: true, tap: 'vmwt0', vhost: false },
              { mac: macs[1], model: 'virtio-net-pci', queues: 3, vnetHdr: true, tap: 'vmwt1', vhost: false },
            ],
          },
        },
        fds: [...single, ...multi],
        chunks: 3,
      }));
      const pidfile = path.join(tmp, 'qemu.pid');
      const pidFd = fs.openSync(pidfile, 'w');
      const out = path.join(tmp, 'stub.out');
      const libvirtArgs = ['-name', 'guest=g', '-pidfile', pidfile, '-device', 'e1000,id=tapwire0,netdev=n0'];
      let r;
      try {
        r = await runWrapper(
          libvirtArgs,
          { TAPWIRE_NET_KEY: 'sb-x:tok', TAPWIRE_EMULATOR: STUB, TAPWIRE_FD_SOCKET: server.socketPath, STUB_OUT: out },
          [pidFd], // the child's fd 3, like libvirt's pidfile/QMP fds (node marks it close-on-exec)
          how,
        );
      } finally {
        fs.closeSync(pidFd);
      }
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const rep = parseStub(fs.readFileSync(out, 'utf8'));
      expect(rep.pid).toBe(r.pid); // execve, no child
      expect(rep.sigIgn).toBe('0000000000000000');
      expect(rep.sigBlk).toBe('0000000000000000');
      expect(rep.fds.get(3)).toBe(pidfile);
      expect(rep.key).toBe('none');

      expect(rep.args.slice(0, libvirtArgs.length)).toEqual(libvirtArgs);
      const added = rep.args.slice(libvirtArgs.length);
      // tapwire0 is taken by libvirt's own device: ours start at tapwire1
      expect(added[0]).toBe('-netdev');
      const fd0 = Number(/^tap,id=tapwire1,fd=(\d+)$/.exec(added[1]!)![1]);
      expect(added[3]).toBe(`e1000,netdev=tapwire1,mac=${macs[0]},id=tapwire-nic1`);
      const mq = /^tap,id=tapwire2,fds=(\d+):(\d+):(\d+)$/.exec(added[5]!)!;
      expect(added[7]).toBe(`virtio-net-pci,netdev=tapwire2,mac=${macs[1]},id=tapwire-nic2,mq=on,vectors=8`);
      const tapFds = [fd0, Number(mq[1]), Number(mq[2]), Number(mq[3])];
      for (const fd of tapFds) expect(rep.fds.get(fd)).toBe('/dev/net/tun');
      expect(new Set(tapFds).size).toBe(4);
      // nothing else of vmwrapper's leaked: only stdio, the pidfile, the taps and the stub shell's own fds
      const others = [...rep.fds.entries()].filter(([fd]) => fd > 3 && !tapFds.includes(fd)).map(([, t]) => t);
      expect(
        others.filter((t) => !t.endsWith('stub-emulator.sh') && !t.startsWith(tmp) && !/^socket:|^pipe:/.test(t)),
      ).toEqual([]);
      expect(others.filter((t) => /anon_inode/.test(t))).toEqual([]);
      // our own copies still name the taps the stub was given
      expect(tapInfo(single[0]!).name).toBe('vmwt0');
      expect(tapInfo(multi[2]!).multiQueue).toBe(true);
    },
  );

  it('a failed fetch leaves the foreign fds alone and runs nothing', async () => {
    server = await startFakeFdServer(() => ({ reply: { ok: false, error: { code: 'EACCES', message: 'refused' } } }));
    const out = path.join(tmp, 'never.out');
    const r = await runWrapper([], {
      TAPWIRE_NET_KEY: 'sb-y:tok',
      TAPWIRE_EMULATOR: STUB,
      TAPWIRE_FD_SOCKET: server.socketPath,
      STUB_OUT: out,
    });
    expect(r.code).toBe(1);
    expect(fs.existsSync(out)).toBe(false);
  });
});
