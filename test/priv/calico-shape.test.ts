// The Calico pod shape end to end on real namespaces, built by hand (no Calico package
// exists here): the node side of each pod's veth has proxy_arp and no address, the pod
// has IP/32, `169.254.1.1 dev eth0 scope link` and `default via 169.254.1.1`, the node
// routes each pod's /32 to its veth. tapmanager (SandboxManager in-process) sets up pod
// 1; a "guest" netns stands in for the VM: test/fixtures/tap-relay.py relays between
// the tap fd (from the manager's fds()) and a veth whose peer is the guest NIC, where
// busybox udhcpc gets the lease. The guest must route as the pod did and reach pod 2
// through the node's proxy ARP. Teardown restores both pods byte for byte.
import { expect, it } from 'vitest';
import { renderDescribe } from '../../src/tapmanager/tapctl';
import { waitFor } from '../fixtures/dhcp-net';
import { killAll } from '../fixtures/dhcp-procs';
import { CALICO_GW, CALICO_MTU, calicoNode, calicoPod } from '../helpers/calico';
import { dadDone, ipDump } from '../helpers/ip-dump';
import { relayedGuest, relayRig } from '../helpers/relay-rig';
import { startUdhcpc } from '../helpers/udhcpc';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const GW = CALICO_GW;
const MTU = CALICO_MTU;

const POD = { prefix: 'cali', net: 80 };

describePrivileged('Calico pod shape through tapmanager with a DHCP guest', () => {
  const noTools = requireTools('busybox', 'python3');

  const rig = relayRig({ prefix: 'twt-calico-' });

  it('the guest gets IP/32 with the link-local gateway, reaches the second pod, and teardown restores both pods', async (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const node = calicoNode('calinode');
    const p1 = calicoPod(node, 1, POD);
    const p2 = calicoPod(node, 2, POD);
    // the shape works before tapwire touches it: pod 1 reaches pod 2 through the node
    p1.pod.exec('busybox', ['ping', '-c', '1', '-W', '2', p2.ip]);
    // the state compared after teardown, once IPv6 DAD is over (the address' flags and local route change meanwhile)
    await dadDone(p1.pod, ['eth0']);
    await dadDone(p2.pod, ['eth0']);
    await dadDone(node, ['up0', 'up1', p1.hostVeth, p2.hostVeth]);
    const before = { p1: ipDump(p1.pod), p2: ipDump(p2.pod), node: node.ip('-d', 'route', 'show', 'table', 'all') };

    const res = await rig.mgr.setup({ sandboxId: 'sb-calico', netnsPath: p1.pod.path, cniResult: p1.cniResult });
    const nic = res.nics[0]!;
    expect(nic).toMatchObject({ ip: p1.ip, prefixLen: 32, gateway: GW, mtu: MTU });
    const st = await rig.mgr.status('sb-calico');
    expect(st.nics[0]!.routes).toEqual([
      { dst: '169.254.254.2/32', gw: '0.0.0.0' },
      { dst: `${GW}/32`, gw: '0.0.0.0' },
      { dst: '0.0.0.0/0', gw: GW },
    ]);
    expect(st.nics[0]!.unexpressible).toEqual([]);
    expect(renderDescribe(st)).toContain(`option 121: 169.254.254.2/32 on-link, ${GW}/32 on-link, 0.0.0.0/0 via ${GW}`);

    // the "VM": guest NIC g0 with the pod's MAC, its peer r0 relayed to the tap
    const { guest, relayOut } = await relayedGuest(rig, 'caliguest', res.netKey, { mac: nic.mac, mtu: MTU });
    const bound = await startUdhcpc(guest, rig.dir, 'g0', ['staticroutes', 'mtu']).bound(() => `relay: ${relayOut()}`);
    expect(bound.env).toMatchObject({
      ip: p1.ip,
      mask: '32',
      router: GW,
      mtu: String(MTU),
      staticroutes: `169.254.254.2/32 0.0.0.0 ${GW}/32 0.0.0.0 0.0.0.0/0 ${GW}`,
    });
    // the guest routes as the pod did (the hook records the event before it applies the lease)
    const routes = await waitFor('lease applied', () => {
      const r = guest.ip('-4', 'route', 'show');
      return r.includes('default') ? r : undefined;
    });
    expect(guest.ip('-4', '-o', 'addr', 'show', 'dev', 'g0')).toContain(`inet ${p1.ip}/32`);
    expect(routes).toContain(`default via ${GW} dev g0`);
    expect(routes).toContain(`${GW} dev g0 scope link`);

    // through the node's proxy ARP to the second pod, and back
    const ping = guest.exec('busybox', ['ping', '-c', '3', '-W', '3', p2.ip]);
    expect(ping).toMatch(/3 packets transmitted, 3 packets received/);
    expect(guest.ip('neigh', 'show', GW)).toMatch(/lladdr/);
    expect(p2.pod.exec('busybox', ['ping', '-c', '1', '-W', '3', p1.ip])).toMatch(/1 packets received/);

    // teardown: both pods and the node's routes as they were, byte for byte
    await killAll();
    rig.relay!.kill('SIGKILL');
    expect(await rig.mgr.teardown('sb-calico')).toEqual({ errors: [] });
    expect(ipDump(p1.pod)).toBe(before.p1);
    expect(ipDump(p2.pod)).toBe(before.p2);
    expect(node.ip('-d', 'route', 'show', 'table', 'all')).toBe(before.node);
    // and pod 1 still reaches pod 2 as before
    p1.pod.exec('busybox', ['ping', '-c', '1', '-W', '2', p2.ip]);
  }, 60_000);
});
