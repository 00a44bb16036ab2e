// An IPv6-only pod (the CNI bridge plugin with one host-local IPv6 range) through
// tapmanager: the bridge NIC has no IPv4 at all, so no DHCPv4 server runs; the guest (a
// netns behind tap-relay.py) takes its address with dhclient -6 and its default route
// from the RA, and reaches a second pod and the node beyond the gateway. A restarted
// manager recovers the sandbox (turning IPv6 off the veth again, as drift) and serves
// DHCPv6 and RAs again; teardown restores the pod byte for byte.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { CniRunner, parseConfList, type Attachment } from '../../src/cni';
import type { CniResult } from '../../src/cni/result';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { silentLogger } from '../../src/util/log';
import { waitFor } from '../fixtures/dhcp-net';
import { killAll } from '../fixtures/dhcp-procs';
import { startDhclient6 } from '../helpers/dhclient6';
import { dadDone, ipDump } from '../helpers/ip-dump';
import { createNetns, type TestNetns } from '../helpers/netns';
import { relayedGuest, relayRig } from '../helpers/relay-rig';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const BIN = '/usr/lib/cni';
const NODE6 = 'fd00:fe::1';

describePrivileged('IPv6-only CNI bridge pod through tapmanager (DHCPv6 + RA, no DHCPv4)', () => {
  const noTools =
    requireTools('busybox', 'python3', 'dhclient', 'nsenter') ??
    (fs.existsSync(`${BIN}/bridge`) ? undefined : `no ${BIN}/bridge`);

  const rig = relayRig({ prefix: 'twt-v6only-', storeIn: 'state' });

  it('the guest gets its IPv6 address and default route, reaches pod 2 and the node; a restarted manager serves it again', async (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const n = 100 + Math.floor(Math.random() * 100);
    const node = createNetns('v6onode');
    node.sh('sysctl -qw net.ipv6.conf.all.forwarding=1');
    node.ip('addr', 'add', `${NODE6}/128`, 'dev', 'lo');
    const runner = new CniRunner({ binDirs: [BIN], hostNetns: node.path, cacheDir: path.join(rig.dir, 'cache') });
    const list = parseConfList(
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'twv6only',
        plugins: [
          {
            type: 'bridge',
            bridge: 'cni6',
            isGateway: true,
            ipam: {
              type: 'host-local',
              dataDir: path.join(rig.dir, 'ipam'),
              ranges: [[{ subnet: `fd00:${n}::/64` }]],
              routes: [{ dst: '::/0' }],
            },
          },
        ],
      }),
    );
    const pods: { ns: TestNetns; res: CniResult }[] = [];
    for (const id of ['a', 'b']) {
      const ns = createNetns(`v6o${id}`);
      const att: Attachment = {
        containerId: `v6o${id}`,
        netns: ns.path,
        ifName: 'eth0',
        pod: { podNamespace: 'default', podName: `pod-${id}`, infraContainerId: `v6o${id}` },
      };
      const res = await runner.add(list, att);
      pods.push({ ns, res: { ...res, dns: { nameservers: ['fd00:96::10'], search: ['default.svc.cluster.local'] } } });
    }
    const [a, b] = pods as [(typeof pods)[0], (typeof pods)[0]];
    const ipOf = (p: (typeof pods)[0]): string => p.res.ips![0]!.address.split('/')[0]!;
    await dadDone(a.ns, ['eth0']);
    await dadDone(b.ns, ['eth0']);
    await dadDone(node, ['cni6']);
    const before = ipDump(a.ns);

    const cniResult: CniResult = {
      ...a.res,
      interfaces: a.res.interfaces!.filter((i) => i.sandbox),
      ips: a.res.ips!.map((i) => ({ ...i, interface: 0 })),
    };
    const res = await rig.mgr.setup({ sandboxId: 'sb-v6only', netnsPath: a.ns.path, cniResult });
    const nic = res.nics[0]!;
    expect(nic).toMatchObject({ ipv6: [ipOf(a)] });
    expect(nic.ip).toBeUndefined();
    expect(nic.l2Only).toBeUndefined();
    const st = await rig.mgr.status('sb-v6only');
    expect(st.dhcp).toEqual([]); // no DHCPv4 server
    expect(st.ipv6).toHaveLength(1);

    const { guest } = await relayedGuest(rig, 'v6oguest', res.netKey, nic);
    await dadDone(guest, ['g0']);

    const gwLL = /inet6 (fe80::\S+)\/64/.exec(node.ip('-6', 'addr', 'show', 'dev', 'cni6'))![1]!;
    await waitFor(
      'IPv6 default route via cni6 from the RA',
      () => guest.ip('-6', 'route', 'show', 'default').includes(`via ${gwLL} dev g0`) || undefined,
      20_000,
      () => `cni6 ${gwLL}; guest routes:\n${guest.ip('-6', 'route', 'show')}`,
    );
    expect(await startDhclient6(guest, rig.dir, 'g0', '1').bound()).toMatchObject({
      new_ip6_address: ipOf(a),
      new_dhcp6_name_servers: 'fd00:96::10',
    });
    await waitFor(
      'the IPv6 address applied',
      () => guest.ip('-6', '-o', 'addr', 'show', 'dev', 'g0').includes(ipOf(a)) || undefined,
    );
    await dadDone(guest, ['g0']);
    expect(guest.exec('busybox', ['ping', '-6', '-c', '2', '-W', '3', ipOf(b)])).toMatch(/2 packets received/);
    expect(guest.exec('busybox', ['ping', '-6', '-c', '2', '-W', '3', NODE6])).toMatch(/2 packets received/);

    // a restarted manager: DHCPv6 and RAs served again from the record
    await killAll();
    await rig.mgr.close();
    // meanwhile IPv6 came back on the veth: the recovery turns it off again, as drift
    a.ns.sh('sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0');
    rig.mgr = new SandboxManager({ store: rig.store, log: silentLogger });
    await rig.mgr.recover();
    const st2 = await rig.mgr.status('sb-v6only');
    expect(st2).toMatchObject({ state: 'ready', drift: ['veth eth0 had IPv6 on: turned off'], dhcp: [] });
    expect(a.ns.sh('sysctl -n net.ipv6.conf.eth0.disable_ipv6').trim()).toBe('1');
    expect(st2.ipv6).toHaveLength(1);
    guest.ip('-6', 'addr', 'flush', 'dev', 'g0', 'scope', 'global');
    // bound by the restarted manager
    expect((await startDhclient6(guest, rig.dir, 'g0', '2').bound()).new_ip6_address).toBe(ipOf(a));

    await killAll();
    rig.relay!.kill('SIGKILL');
    expect(await rig.mgr.teardown('sb-v6only')).toEqual({ errors: [] });
    expect(ipDump(a.ns)).toBe(before);
  }, 120_000);
});
