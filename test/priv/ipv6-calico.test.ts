// Dual-stack Calico pod shape through tapmanager: as calico-shape.test.ts, plus IPv6 the
// way Calico wires it: the pod has IP/128 and `default via fe80::1 dev eth0`, the node
// side of the veth owns fe80::1 and routes the pod's /128 to the veth (IPv6 forwarding
// on). The guest (a netns behind tap-relay.py) gets its IPv4 lease from udhcpc, its IPv6
// address from ISC dhclient -6 and its default route from the kernel's RA handling; it
// reaches the second pod over both families; teardown restores both pods byte for byte.
import { expect, it } from 'vitest';
import { waitFor } from '../fixtures/dhcp-net';
import { killAll } from '../fixtures/dhcp-procs';
import { startDhclient6 } from '../helpers/dhclient6';
import { CALICO_GW6, CALICO_MTU, calicoNode, calicoPod } from '../helpers/calico';
import { dadDone, ipDump } from '../helpers/ip-dump';
import { relayedGuest, relayRig } from '../helpers/relay-rig';
import { startUdhcpc } from '../helpers/udhcpc';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const GW6 = CALICO_GW6;
const MTU = CALICO_MTU;

const POD = { prefix: 'c6p', net: 81, dualStack: true };

describePrivileged('dual-stack Calico pod through tapmanager (DHCPv6 + RA)', () => {
  const noTools = requireTools('busybox', 'python3', 'dhclient');

  const rig = relayRig({ prefix: 'twt-calico6-' });

  it('the guest gets both addresses and default routes, reaches pod 2 over both, and teardown restores both pods', async (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const node = calicoNode('c6node', true);
    const p1 = calicoPod(node, 1, POD);
    const p2 = calicoPod(node, 2, POD);
    p1.pod.exec('busybox', ['ping', '-6', '-c', '1', '-W', '2', p2.ip6]);
    await dadDone(p1.pod, ['eth0']);
    await dadDone(p2.pod, ['eth0']);
    const before = { p1: ipDump(p1.pod), p2: ipDump(p2.pod) };

    const res = await rig.mgr.setup({ sandboxId: 'sb-calico6', netnsPath: p1.pod.path, cniResult: p1.cniResult });
    const nic = res.nics[0]!;
    // the veth speaks no IPv6 while it is a bridge port (its link-local was the guest's)
    expect(p1.pod.ip('-6', '-o', 'addr', 'show', 'dev', 'eth0')).toBe('');

    const { guest } = await relayedGuest(rig, 'c6guest', res.netKey, { mac: nic.mac, mtu: MTU });
    await dadDone(guest, ['g0']); // of its link-local (the pod's old one): must succeed
    expect(guest.ip('-6', '-o', 'addr', 'show', 'dev', 'g0')).not.toContain('dadfailed');

    // IPv4 as before
    await startUdhcpc(guest, rig.dir, 'g0', ['staticroutes']).bound();
    // IPv6: the kernel's RA handling for the route, dhclient -6 for the address
    const route6 = await waitFor(
      'IPv6 default route from the RA',
      () => guest.ip('-6', 'route', 'show', 'default').includes(`via ${GW6} dev g0`) || undefined,
    );
    expect(route6).toBe(true);
    expect(guest.sh('cat /proc/sys/net/ipv6/conf/g0/mtu').trim()).toBe(String(MTU));
    expect(await startDhclient6(guest, rig.dir, 'g0').bound()).toMatchObject({
      new_ip6_address: p1.ip6,
      new_dhcp6_name_servers: 'fd00:96::a',
      new_dhcp6_domain_search: 'default.svc.cluster.local.',
    });
    await waitFor(
      'the IPv6 address applied',
      () => guest.ip('-6', '-o', 'addr', 'show', 'dev', 'g0').includes(p1.ip6) || undefined,
    );

    await dadDone(guest, ['g0']); // the address is used as a source once DAD is over
    const st = await rig.mgr.status('sb-calico6');
    expect(st.ipv6).toEqual([
      expect.objectContaining({
        dhcp6: expect.objectContaining({ addresses: [p1.ip6], request: 1, reply: expect.any(Number) }),
        ra: expect.objectContaining({ router: GW6 }),
      }),
    ]);
    // both families to pod 2, through the node
    expect(guest.exec('busybox', ['ping', '-c', '2', '-W', '3', p2.ip])).toMatch(/2 packets received/);
    expect(guest.exec('busybox', ['ping', '-6', '-c', '2', '-W', '3', p2.ip6])).toMatch(/2 packets received/);
    expect(p2.pod.exec('busybox', ['ping', '-6', '-c', '1', '-W', '3', p1.ip6])).toMatch(/1 packets received/);

    await killAll();
    rig.relay!.kill('SIGKILL');
    expect(await rig.mgr.teardown('sb-calico6')).toEqual({ errors: [] });
    expect(ipDump(p1.pod)).toBe(before.p1);
    expect(ipDump(p2.pod)).toBe(before.p2);
    p1.pod.exec('busybox', ['ping', '-6', '-c', '1', '-W', '2', p2.ip6]);
  }, 90_000);
});
