// A real QEMU (TCG) started through vmwrapper on a sandbox the real daemon (dist) set up
// from a `nics` request on three pod interfaces: QEMU gets one -netdev/-device pair per
// NIC in spec order with the spec's model, MAC and queues, and tapwire's guest reports
// its NICs in that order (the e1000 in the middle driven by its own driver) and a lease on
// each from tapmanager's DHCP servers. Teardown restores the pod exactly.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { ensureGuest, GuestImage, GuestRun, guestCmdline, QEMU, qemuArgs, startGuest } from '../../src/guest';
import { requireBuilt, SHIM } from '../fixtures/vmwrapper/run-wrapper';
import { killDaemons, startDaemon, stopDaemon } from '../helpers/daemon';
import { ipDump, settledDump } from '../helpers/ip-dump';
import { removeAllNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { describePrivileged, requireTools } from '../helpers/privileged';

describePrivileged('vmwrapper boots a guest on a nics sandbox', () => {
  let tmp: string;
  let image: GuestImage;
  let run: GuestRun | undefined;
  beforeAll(async () => {
    requireBuilt();
    const missing = requireTools(QEMU);
    if (missing) throw new Error(missing);
    image = await ensureGuest();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-vmwn-'));
  }, 900_000);
  afterEach(async () => {
    await run?.kill();
    run = undefined;
    await killDaemons();
    removeAllNetns();
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('three NICs in spec order: virtio with a custom MAC, e1000, virtio multiqueue; a lease on each', async () => {
    const net = 100 + Math.floor(Math.random() * 90);
    const p = makePod({ net });
    const blue = makePod({ pod: p.pod, ifname: 'net1', net: net + 1 });
    const green = makePod({ pod: p.pod, ifname: 'net2', net: net + 2 });
    const before = await settledDump(p.pod);
    const d = await startDaemon(tmp);
    const res = await d.client.setup({
      sandboxId: 'sb-vmnics',
      netnsPath: p.pod.path,
      hostname: 'vmnics',
      nics: [
        {
          name: 'default',
          binding: 'bridge',
          podInterface: 'eth0',
          cniResult: p.cniResult,
          macAddress: 'DE-AD-00-00-BE-AF',
        },
        { name: 'blue', binding: 'bridge', podInterface: 'net1', cniResult: blue.cniResult, model: 'e1000' },
        { name: 'green', binding: 'bridge', podInterface: 'net2', cniResult: green.cniResult, queues: 2 },
      ],
    });
    expect(res.nics.map((n) => n.name)).toEqual(['default', 'blue', 'green']);

    const log = path.join(tmp, 'console.log');
    const seen: { cmdline?: string[] } = {};
    run = startGuest({
      command: SHIM,
      args: qemuArgs({
        kernel: image.kernel,
        initrd: image.initrd,
        append: guestCmdline({ dhcpTries: 20 }),
        name: 'tapwire-nics',
        console: { file: log },
      }),
      console: { file: log },
      env: {
        PATH: '/usr/bin:/bin',
        TAPWIRE_NODE: process.execPath,
        TAPWIRE_NET_KEY: res.netKey,
        TAPWIRE_EMULATOR: QEMU,
        TAPWIRE_FD_SOCKET: d.fdSocket,
      },
      timeoutMs: 200_000,
      expect: { leases: 3, pings: 1 },
      onLine: (l) => {
        if (l.event === 'start') seen.cmdline = fs.readFileSync(`/proc/${run!.pid}/cmdline`, 'utf8').split('\0');
      },
    });
    const r = await run.result;
    const why = [...r.verdict.problems, ...r.tail, `qemu stderr: ${r.stderr}`].join('\n');
    expect(r.verdict.ok, why).toBe(true);

    // QEMU's NIC arguments, in spec order
    const argv = seen.cmdline!;
    const devices = argv.flatMap((a, i) => (argv[i - 1] === '-device' && a.includes('netdev=tapwire') ? [a] : []));
    expect(devices).toEqual([
      expect.stringMatching(/^virtio-net-pci,netdev=tapwire0,mac=de:ad:00:00:be:af,id=tapwire-nic0$/),
      `e1000,netdev=tapwire1,mac=${blue.mac},id=tapwire-nic1`,
      `virtio-net-pci,netdev=tapwire2,mac=${green.mac},id=tapwire-nic2,mq=on,vectors=6`,
    ]);
    const netdevs = argv.filter((a) => a.startsWith('tap,id=tapwire'));
    expect(netdevs).toEqual([
      expect.stringMatching(/^tap,id=tapwire0,fd=\d+$/),
      expect.stringMatching(/^tap,id=tapwire1,fd=\d+$/),
      expect.stringMatching(/^tap,id=tapwire2,fds=\d+:\d+$/),
    ]);

    // the guest sees its NICs in that order, each with its lease
    const nics = r.report.nics;
    expect(nics.map((n) => [n.mac, n.driver])).toEqual([
      ['de:ad:00:00:be:af', 'virtio_net'],
      [blue.mac, 'e1000'],
      [green.mac, 'virtio_net'],
    ]);
    expect(r.report.leases.find((l) => l.nic === nics[0]!.name)).toMatchObject({
      ip: p.ip,
      router: [p.gw],
      hostname: 'vmnics',
    });
    expect(r.report.leases.find((l) => l.nic === nics[1]!.name)).toMatchObject({ ip: blue.ip });
    expect(r.report.leases.find((l) => l.nic === nics[2]!.name)).toMatchObject({ ip: green.ip });

    expect(await d.client.teardown('sb-vmnics')).toEqual({ errors: [] });
    expect(ipDump(p.pod)).toBe(before);
    await stopDaemon(d);
  }, 300_000);
});
