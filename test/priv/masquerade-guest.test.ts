// The masquerade binding with a real QEMU (TCG) guest: tapmanager (SandboxManager
// in-process) sets up a masquerade NIC on a pod shaped as CNI leaves one; vmwrapper's
// netArgs writes the tap netdev for the fd of the fds reply; tapwire's guest (virtio-net,
// which marks partial checksums in the vnet header as a real VM does) leases 10.0.2.2
// from the bridge with the pod's DNS, pings the peer pod through the NAT, and serves two
// ports: the listed one is reached from the peer at podIP:port, the other is refused.
import * as fs from 'node:fs';
import { expect, it } from 'vitest';
import { guestCmdline, QEMU, qemuArgs, startGuest } from '../../src/guest';
import { checkNic, netArgs } from '../../src/vmwrapper/args';
import { settledDump } from '../helpers/ip-dump';
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
});
