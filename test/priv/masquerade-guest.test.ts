// The masquerade binding with a real QEMU (TCG) guest: tapmanager (SandboxManager
// in-process) sets up a masquerade NIC on a pod shaped as CNI leaves one; vmwrapper's
// netArgs writes the tap netdev for the fd of the fds reply; tapwire's guest (virtio-net,
// which marks partial checksums in the vnet header as a real VM does) leases 10.0.2.2
// from the bridge with the pod's DNS, pings the peer pod through the NAT, and serves two
// ports: the listed one is reached from the peer at podIP:port, the other is refused.
// Dual-stack (the proof): a pod made by the real CNI bridge plugin with host-local
// IPv4 and IPv6 ranges; the guest leases 10.0.2.2 (udhcpc) and fd10:0:2::2 (dhcpcd, DHCPv6
// IA_NA), takes its IPv6 default route from the bridge's RAs, pings the peer pod over both
// families and the node over IPv6; the listed port is reached at [podIPv6]:port and at
// podIP:port, an unlisted one is refused; eth0 keeps its addresses; teardown exact.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { CniRunner, parseConfList } from '../../src/cni';
import type { CniResult } from '../../src/cni/result';
import { guestCmdline, QEMU, qemuArgs, startGuest } from '../../src/guest';
import { checkNic, netArgs } from '../../src/vmwrapper/args';
import { dadDone, settledDump } from '../helpers/ip-dump';
import { createNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { connectFrom, guestRig } from '../helpers/guest-rig';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('masquerade binding with a real QEMU guest', () => {
  const rig = guestRig('twt-masqg-');

  it('the guest leases 10.0.2.2, pings the peer pod; the listed port reaches it, an unlisted one is refused', async () => {
    const a = makePod();
    const net = Number(a.ip.split('.')[1]);
    const peer = makePod({ node: a.node, net, host: 3 });
    const before = await settledDump(a.pod);
    const cniResult = { ...a.cniResult, dns: { nameservers: ['10.96.0.10'], search: ['ns.svc.cluster.local'] } };
    const res = await rig.mgr.setup({
      sandboxId: 'sb-masq-guest',
      netnsPath: a.pod.path,
      nics: [
        {
          name: 'default',
          binding: 'masquerade',
          podInterface: 'eth0',
          cniResult,
          ports: [{ port: 8080, protocol: 'TCP' }],
        },
      ],
    });
    const { result, fds } = await rig.mgr.fds(res.netKey);
    expect(fds).toHaveLength(1);
    const nics = result.nics.map((n, i) => checkNic(n, i));
    // the fds are QEMU's 3, 4, ...: what vmwrapper does after it has moved them there
    const net0 = netArgs([], nics, [3]);
    const args = qemuArgs({
      kernel: rig.image.kernel,
      initrd: rig.image.initrd,
      append: guestCmdline({ dhcpTries: 20, ping: [peer.ip], listen: [8080, 8081], stay: true }),
      console: 'stdio',
    });
    rig.run = startGuest({
      command: QEMU,
      args: [...args, ...net0],
      console: 'stdio',
      fds,
      timeoutMs: 240_000,
      until: 'done',
      expect: { leases: 1, lease: { ip: '10.0.2.2', router: '10.0.2.1', mask: '24' } },
    });
    fds.forEach((fd) => fs.closeSync(fd));
    const r = await rig.run.result;
    const why = [...r.verdict.problems, ...r.tail, `qemu stderr: ${r.stderr}`].join('\n');
    expect(r.verdict.ok, why).toBe(true);
    expect(r.report.pings).toEqual([{ target: peer.ip, sent: 2, recv: 2, ok: true }]);
    expect(r.report.resolv).toEqual({ nameservers: ['10.96.0.10'], search: ['ns.svc.cluster.local'] });
    expect(connectFrom(peer.pod, a.ip, 8080)).toMatch(/^tapwire-guest hello port=8080/);
    expect(connectFrom(peer.pod, a.ip, 8081)).toBe('REFUSED');

    await rig.run.kill();
    rig.run = undefined;
    expect(await rig.mgr.teardown('sb-masq-guest')).toEqual({ errors: [] });
    expect(await settledDump(a.pod)).toBe(before);
  }, 300_000);

  it('dual-stack pod (host-local v4 + v6): the guest leases 10.0.2.2 and fd10:0:2::2, routes IPv6 by the RA, reaches the peer over both and the node over IPv6; listed port over both families', async () => {
    const BIN = '/usr/lib/cni';
    const NODE6 = 'fd00:ff::1';
    const n = 100 + Math.floor(Math.random() * 100);
    const node = createNetns('m6gnode');
    node.sh('sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1');
    node.ip('addr', 'add', `${NODE6}/128`, 'dev', 'lo');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-masq6g-'));
    try {
      const runner = new CniRunner({ binDirs: [BIN], hostNetns: node.path, cacheDir: path.join(dir, 'cache') });
      const list = parseConfList(
        JSON.stringify({
          cniVersion: '1.0.0',
          name: 'twmasq6g',
          plugins: [
            {
              type: 'bridge',
              bridge: 'cni0',
              isGateway: true,
              ipam: {
                type: 'host-local',
                dataDir: path.join(dir, 'ipam'),
                ranges: [[{ subnet: `10.${n}.0.0/24` }], [{ subnet: `fd00:${n}::/64` }]],
                routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
              },
            },
          ],
        }),
      );
      const pods = [];
      for (const id of ['a', 'b']) {
        const ns = createNetns(`m6g${id}`);
        const res = await runner.add(list, {
          containerId: `m6g${id}`,
          netns: ns.path,
          ifName: 'eth0',
          pod: { podNamespace: 'default', podName: `pod-${id}`, infraContainerId: `m6g${id}` },
        });
        const ip = (v6: boolean): string =>
          res.ips!.map((i) => i.address.split('/')[0]!).find((x) => x.includes(':') === v6)!;
        const cni: CniResult = {
          ...res,
          dns: { nameservers: ['10.96.0.10', 'fd00:96::10'], search: ['ns.svc.cluster.local'] },
          interfaces: res.interfaces!.filter((i) => i.sandbox),
          ips: res.ips!.map((i) => ({ ...i, interface: 0 })),
        };
        pods.push({ ns, cni, ip });
        await dadDone(ns, ['eth0']);
      }
      await dadDone(node, ['cni0']);
      const [a, b] = pods as [(typeof pods)[0], (typeof pods)[0]];
      const before = await settledDump(a.ns);
      const eth0 = () => a.ns.ip('-o', 'addr', 'show', 'dev', 'eth0').replace(/valid_lft \S+ preferred_lft \S+/g, '');
      const eth0Before = eth0();
      const res = await rig.mgr.setup({
        sandboxId: 'sb-masq6-guest',
        netnsPath: a.ns.path,
        nics: [
          {
            name: 'default',
            binding: 'masquerade',
            podInterface: 'eth0',
            cniResult: a.cni,
            ports: [{ port: 8080, protocol: 'TCP' }],
          },
        ],
      });
      const router = res.nics[0]!.masquerade!.ipv6!.router;
      const { result, fds } = await rig.mgr.fds(res.netKey);
      const nics = result.nics.map((x, i) => checkNic(x, i));
      const args = qemuArgs({
        kernel: rig.image.kernel,
        initrd: rig.image.initrd,
        append: guestCmdline({
          dhcpTries: 20,
          dhcp6: true,
          ping: [b.ip(false), b.ip(true), NODE6],
          listen: [8080, 8081],
          stay: true,
        }),
        console: 'stdio',
      });
      rig.run = startGuest({
        command: QEMU,
        args: [...args, ...netArgs([], nics, [3])],
        console: 'stdio',
        fds,
        timeoutMs: 280_000,
        until: 'done',
        expect: { leases: 1, leases6: 1, pings: 3, lease: { ip: '10.0.2.2', router: '10.0.2.1', mask: '24' } },
      });
      fds.forEach((fd) => fs.closeSync(fd));
      const r = await rig.run.result;
      const why = [...r.verdict.problems, ...r.tail, `qemu stderr: ${r.stderr}`].join('\n');
      expect(r.verdict.ok, why).toBe(true);
      const nic = r.report.nics[0]!.name;
      const lease6 = r.report.leases.find((l) => l.family === 6);
      expect(lease6, why).toMatchObject({ nic, ip: 'fd10:0:2::2', dns: ['fd00:96::10'] });
      expect(r.report.routers6).toEqual([{ nic, router, mtu: a.cni.interfaces?.[0]?.mtu ?? expect.any(Number) }]);
      expect(r.report.routes).toContainEqual(
        expect.objectContaining({ family: '6', dst: 'default', via: router, dev: nic }),
      );
      expect(r.report.routes).toContainEqual(expect.objectContaining({ family: '6', dst: 'fd10:0:2::/120' }));
      expect(r.report.pings).toEqual([
        { target: b.ip(false), sent: 2, recv: 2, ok: true },
        { target: b.ip(true), sent: 2, recv: 2, ok: true },
        { target: NODE6, sent: 2, recv: 2, ok: true },
      ]);
      expect(connectFrom(b.ns, a.ip(true), 8080)).toMatch(/^tapwire-guest hello port=8080/);
      expect(connectFrom(b.ns, a.ip(true), 8081)).toBe('REFUSED');
      expect(connectFrom(b.ns, a.ip(false), 8080)).toMatch(/^tapwire-guest hello port=8080/);
      expect(eth0()).toBe(eth0Before);

      await rig.run.kill();
      rig.run = undefined;
      expect(await rig.mgr.teardown('sb-masq6-guest')).toEqual({ errors: [] });
      expect(await settledDump(a.ns)).toBe(before);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
