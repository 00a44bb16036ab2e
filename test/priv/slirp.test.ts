// The slirp binding end to end on a real QEMU (TCG): tapmanager (SandboxManager
// in-process) records a slirp NIC on a pod made the way CNI leaves one; its fds reply
// carries no fd and the NIC's forwards; vmwrapper's netArgs turns them into
// `-netdev user` with a hostfwd per listed port bound to the pod IP; QEMU runs in the pod
// netns (as vmwrapper does) with tapwire's guest, which leases slirp's own address and
// listens on two ports. From a peer pod, podIP:listed reaches the guest; an unlisted port
// is refused. Nothing in the pod changes, so teardown leaves it byte for byte as it was.
import { expect, it } from 'vitest';
import { guestCmdline, QEMU, qemuArgs, startGuest } from '../../src/guest';
import { renderDescribe } from '../../src/tapmanager/tapctl';
import { checkNic, netArgs } from '../../src/vmwrapper/args';
import { settledDump } from '../helpers/ip-dump';
import { makePod } from '../helpers/pod';
import { connectFrom, guestRig } from '../helpers/guest-rig';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('slirp binding with a real QEMU guest', () => {
  const rig = guestRig('twt-slirp-');

  it('the guest leases slirp’s address; a listed port on the pod IP reaches it, an unlisted one is refused; the pod is untouched', async () => {
    const a = makePod();
    const net = Number(a.ip.split('.')[1]);
    const peer = makePod({ node: a.node, net, host: 3 });
    const before = await settledDump(a.pod);

    const res = await rig.mgr.setup({
      sandboxId: 'sb-slirp',
      netnsPath: a.pod.path,
      nics: [
        {
          name: 'default',
          binding: 'slirp',
          podInterface: 'eth0',
          cniResult: a.cniResult,
          macAddress: '02:00:00:51:49:50',
          ports: [{ port: 8080, protocol: 'TCP' }],
        },
      ],
    });
    expect(res.nics[0]).toMatchObject({ binding: 'slirp', ip: '10.0.2.15', gateway: '10.0.2.2' });
    expect(renderDescribe(await rig.mgr.status('sb-slirp'))).toContain(`forwards: tcp ${a.ip}:8080 -> guest`);
    expect(await settledDump(a.pod)).toBe(before);

    // what vmwrapper does with the fds reply: no fd, the forwards as -netdev user hostfwd
    const { result, fds } = await rig.mgr.fds(res.netKey);
    expect(fds).toEqual([]);
    const nics = result.nics.map((n, i) => checkNic(n, i));
    const net0 = netArgs([], nics, fds);
    expect(net0.slice(0, 2)).toEqual(['-netdev', `user,id=tapwire0,hostfwd=tcp:${a.ip}:8080-:8080`]);

    const args = qemuArgs({
      kernel: rig.image.kernel,
      initrd: rig.image.initrd,
      append: guestCmdline({ dhcpTries: 20, ping: [], listen: [8080, 8081], stay: true }),
      console: 'stdio',
    });
    // QEMU in the pod netns, as vmwrapper runs it there
    rig.run = startGuest({
      command: 'ip',
      args: ['netns', 'exec', a.pod.name, QEMU, ...args, ...net0],
      console: 'stdio',
      timeoutMs: 240_000,
      until: 'done',
      expect: { leases: 1, lease: { ip: '10.0.2.15', router: '10.0.2.2' } },
    });
    const r = await rig.run.result;
    const why = [...r.verdict.problems, ...r.tail, `qemu stderr: ${r.stderr}`].join('\n');
    expect(r.verdict.ok, why).toBe(true);
    expect(r.report.listens).toEqual([
      { port: 8080, ok: true },
      { port: 8081, ok: true },
    ]);
    expect(r.report.nics.map((n) => n.mac)).toEqual(['02:00:00:51:49:50']);

    // from the peer pod: the listed port reaches the guest through slirp's hostfwd on the pod IP
    expect(connectFrom(peer.pod, a.ip, 8080)).toMatch(/^tapwire-guest hello port=8080/);
    // the guest listens on 8081 too, but it is not listed: nothing on the pod IP answers for it
    expect(connectFrom(peer.pod, a.ip, 8081)).toBe('REFUSED');

    await rig.run.kill();
    rig.run = undefined;
    expect(await rig.mgr.teardown('sb-slirp')).toEqual({ errors: [] });
    expect(await settledDump(a.pod)).toBe(before);
  }, 300_000);
});
