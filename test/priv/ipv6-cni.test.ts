// Dual-stack pods made by the real CNI bridge and ptp plugins with host-local IPv4 and IPv6
// ranges, through tapmanager: the pod's IPv6 gateway is global (fd00:N::1 on cni0, or on
// the host side of the ptp veth), so the router the RAs name is found through the pod's
// neighbour table (the gateway resolved on demand; its link-local, or its MAC's EUI-64). The guest (a netns behind tap-relay.py) takes
// its IPv4 lease with udhcpc, its IPv6 address with dhclient -6 and its route from the RA,
// and reaches a second pod over both families and the node beyond the gateway over IPv6;
// teardown restores the pod byte for byte.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { CniRunner, parseConfList, type Attachment } from '../../src/cni';
import type { CniResult } from '../../src/cni/result';
import { waitFor } from '../fixtures/dhcp-net';
import { killAll } from '../fixtures/dhcp-procs';
import { startDhclient6 } from '../helpers/dhclient6';
import { dadDone, ipDump } from '../helpers/ip-dump';
import { createNetns, type TestNetns } from '../helpers/netns';
import { relayedGuest, relayRig } from '../helpers/relay-rig';
import { startUdhcpc } from '../helpers/udhcpc';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const BIN = '/usr/lib/cni';
const NODE6 = 'fd00:ff::1';

describePrivileged('dual-stack CNI bridge pod through tapmanager (DHCPv6 + RA)', () => {
  const noTools =
    requireTools('busybox', 'python3', 'dhclient', 'nsenter') ??
    (fs.existsSync(`${BIN}/bridge`) ? undefined : `no ${BIN}/bridge`);

  const rig = relayRig({ prefix: 'twt-cni6-', storeIn: 'state' });

  for (const plugin of ['bridge', 'ptp'] as const)
    it(`${plugin}: the guest gets both addresses, the default route via the gateway, and reaches pod 2 and the node over both`, async (ctx) => {
      if (noTools) {
        if (inCI) throw new Error(noTools);
        return ctx.skip(noTools);
      }
      const n = 100 + Math.floor(Math.random() * 100);
      const node = createNetns('c6bnode');
      node.sh('sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1');
      node.ip('addr', 'add', `${NODE6}/128`, 'dev', 'lo');
      const runner = new CniRunner({ binDirs: [BIN], hostNetns: node.path, cacheDir: path.join(rig.dir, 'cache') });
      const list = parseConfList(
        JSON.stringify({
          cniVersion: '1.0.0',
          name: 'twdual',
          plugins: [
            {
              type: plugin,
              ...(plugin === 'bridge' ? { bridge: 'cni0', isGateway: true } : {}),
              ipam: {
                type: 'host-local',
                dataDir: path.join(rig.dir, 'ipam'),
                ranges: [[{ subnet: `10.${n}.0.0/24` }], [{ subnet: `fd00:${n}::/64` }]],
                routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
              },
            },
          ],
        }),
      );
      const pods: { ns: TestNetns; res: CniResult }[] = [];
      for (const id of ['a', 'b']) {
        const ns = createNetns(`c6b${id}`);
        const att: Attachment = {
          containerId: `c6b${id}`,
          netns: ns.path,
          ifName: 'eth0',
          pod: { podNamespace: 'default', podName: `pod-${id}`, infraContainerId: `c6b${id}` },
        };
        const res = await runner.add(list, att);
        pods.push({ ns, res: { ...res, dns: { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local'] } } });
      }
      const [a, b] = pods as [(typeof pods)[0], (typeof pods)[0]];
      const ipOf = (p: (typeof pods)[0], v6: boolean): string =>
        p.res.ips!.map((i) => i.address.split('/')[0]!).find((x) => x.includes(':') === v6)!;
      await dadDone(a.ns, ['eth0']);
      await dadDone(b.ns, ['eth0']);
      if (plugin === 'bridge') await dadDone(node, ['cni0']);
      const before = ipDump(a.ns);

      const cniResult: CniResult = { ...a.res, interfaces: a.res.interfaces!.filter((i) => i.sandbox) };
      const ipIndexFix = { ...cniResult, ips: a.res.ips!.map((i) => ({ ...i, interface: 0 })) };
      const res = await rig.mgr.setup({ sandboxId: `sb-cni6-${plugin}`, netnsPath: a.ns.path, cniResult: ipIndexFix });
      const nic = res.nics[0]!;

      const { guest } = await relayedGuest(rig, 'c6bguest', res.netKey, nic);
      await dadDone(guest, ['g0']);

      await startUdhcpc(guest, rig.dir, 'g0', ['staticroutes']).bound();
      // the gateway's link: cni0 for the bridge plugin, the pod's host-side veth for ptp
      const gwLink = plugin === 'bridge' ? 'cni0' : a.res.interfaces!.find((i) => !i.sandbox)!.name;
      const cni0LL = /inet6 (fe80::\S+)\/64/.exec(node.ip('-6', 'addr', 'show', 'dev', gwLink))![1]!;
      await waitFor(
        'IPv6 default route via cni0 from the RA',
        () => guest.ip('-6', 'route', 'show', 'default').includes(`via ${cni0LL} dev g0`) || undefined,
        20_000,
        () => `cni0 ${cni0LL}; guest routes:\n${guest.ip('-6', 'route', 'show')}`,
      );
      const bound6 = await startDhclient6(guest, rig.dir, 'g0').bound();
      expect(bound6.new_ip6_address).toBe(ipOf(a, true));
      await waitFor(
        'the IPv6 address applied',
        () => guest.ip('-6', '-o', 'addr', 'show', 'dev', 'g0').includes(ipOf(a, true)) || undefined,
      );
      await dadDone(guest, ['g0']);
      // bridge: the /64 is on-link (RA prefix, L set); ptp: nothing is, all goes via the gateway
      if (plugin === 'bridge') expect(guest.ip('-6', 'route', 'show')).toContain(`fd00:${n}::/64 dev g0`);
      else expect(guest.ip('-6', 'route', 'show')).not.toContain(`fd00:${n}::/64`);

      expect(guest.exec('busybox', ['ping', '-c', '2', '-W', '3', ipOf(b, false)])).toMatch(/2 packets received/);
      expect(guest.exec('busybox', ['ping', '-6', '-c', '2', '-W', '3', ipOf(b, true)])).toMatch(/2 packets received/);
      expect(guest.exec('busybox', ['ping', '-6', '-c', '2', '-W', '3', NODE6])).toMatch(/2 packets received/); // beyond the gateway

      await killAll();
      rig.relay!.kill('SIGKILL');
      expect(await rig.mgr.teardown(`sb-cni6-${plugin}`)).toEqual({ errors: [] });
      expect(ipDump(a.ns)).toBe(before);
    }, 90_000);
});
