// tapwire's own guest (QEMU, TCG) on pods made by the real CNI bridge and ptp plugins with
// host-local IPv4 and IPv6 ranges, and on an IPv6-only pod, through tapmanager
// (SandboxManager in-process) and vmwrapper's netArgs: the guest takes its IPv4 address
// from tapwire's DHCPv4 server (udhcpc), its IPv6 address from tapwire's DHCPv6 server
// (dhcpcd, IA_NA) and its default route from tapwire's RAs (the kernel's accept_ra),
// which name the pod's real gateway; it pings a peer pod over both families, the node
// beyond the gateway over IPv6, and its gateways. tapctl describe and the metrics show the
// DHCPv6 exchange and the RAs. Teardown restores the pod byte for byte.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { CniRunner, parseConfList, type Attachment } from '../../src/cni';
import type { CniResult } from '../../src/cni/result';
import { buildNics } from '../../src/cri/vm-network';
import { guestCmdline, QEMU, qemuArgs, startGuest } from '../../src/guest';
import { validateSpec } from '../../src/spec';
import { TapwireMetrics } from '../../src/tapmanager/metrics';
import { renderDescribe } from '../../src/tapmanager/tapctl';
import { checkNic, netArgs } from '../../src/vmwrapper/args';
import { guestRig } from '../helpers/guest-rig';
import { dadDone, ipDump } from '../helpers/ip-dump';
import { createNetns, type TestNetns } from '../helpers/netns';
import { describePrivileged } from '../helpers/privileged';

const BIN = '/usr/lib/cni';
const NODE6 = 'fd00:fd::1';
const DNS = { nameservers: ['fd00:96::10', '10.96.0.10'], search: ['default.svc.cluster.local'] };

interface Pod {
  ns: TestNetns;
  res: CniResult;
  v4?: string;
  v6: string;
}

const CASES = [
  { name: 'dual-stack bridge', plugin: 'bridge', v4: true },
  { name: 'dual-stack ptp', plugin: 'ptp', v4: true },
  { name: 'IPv6-only bridge', plugin: 'bridge', v4: false },
] as const;

describePrivileged("tapwire's guest on IPv6 CNI pods (DHCPv4 + DHCPv6 + RA)", () => {
  const rig = guestRig('twt-v6guest-');

  for (const c of CASES)
    it(`${c.name}: the guest gets ${c.v4 ? 'both addresses' : 'its IPv6 address'} and the RA's router, and pings a peer pod over ${c.v4 ? 'both families' : 'IPv6'}`, async (ctx) => {
      if (!fs.existsSync(`${BIN}/${c.plugin}`)) return ctx.skip(`no ${BIN}/${c.plugin}`);
      const n = 100 + Math.floor(Math.random() * 100);
      const node = createNetns('v6gnode');
      node.sh('sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1');
      node.ip('addr', 'add', `${NODE6}/128`, 'dev', 'lo');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-v6g-')); // removed below
      const bridge = `cv6g${n}`;
      try {
        const runner = new CniRunner({ binDirs: [BIN], hostNetns: node.path, cacheDir: path.join(dir, 'cache') });
        const list = parseConfList(
          JSON.stringify({
            cniVersion: '1.0.0',
            name: `twv6g${n}`,
            plugins: [
              {
                type: c.plugin,
                ...(c.plugin === 'bridge' ? { bridge, isGateway: true } : {}),
                ipam: {
                  type: 'host-local',
                  dataDir: path.join(dir, 'ipam'),
                  ranges: [...(c.v4 ? [[{ subnet: `10.${n}.0.0/24` }]] : []), [{ subnet: `fd00:${n}::/64` }]],
                  routes: [...(c.v4 ? [{ dst: '0.0.0.0/0' }] : []), { dst: '::/0' }],
                },
              },
            ],
          }),
        );
        const pods: Pod[] = [];
        for (const id of ['a', 'b']) {
          const ns = createNetns(`v6g${id}`);
          const att: Attachment = {
            containerId: `v6g${id}${n}`,
            netns: ns.path,
            ifName: 'eth0',
            pod: { podNamespace: 'default', podName: `pod-${id}`, infraContainerId: `v6g${id}${n}` },
          };
          const res = await runner.add(list, att);
          const ips = res.ips!.map((i) => i.address.split('/')[0]!);
          pods.push({ ns, res, v4: ips.find((x) => !x.includes(':')), v6: ips.find((x) => x.includes(':'))! });
        }
        const [a, b] = pods as [Pod, Pod];
        await dadDone(a.ns, ['eth0']);
        await dadDone(b.ns, ['eth0']);
        // the gateway's link: the bridge for the bridge plugin, the pod's host-side veth for ptp
        const gwLink = c.plugin === 'bridge' ? bridge : a.res.interfaces!.find((i) => !i.sandbox)!.name;
        await dadDone(node, [gwLink]);
        const gwLL = /inet6 (fe80::\S+)\/64/.exec(node.ip('-6', 'addr', 'show', 'dev', gwLink))![1]!;
        const gw4 = a.res.ips!.find((i) => !i.address.includes(':'))?.gateway;
        const before = ipDump(a.ns);

        const cniResult: CniResult = {
          ...a.res,
          interfaces: a.res.interfaces!.filter((i) => i.sandbox),
          ips: a.res.ips!.map((i) => ({ ...i, interface: 0 })),
          dns: DNS,
        };
        const id = `sb-v6guest-${n}`;
        const res = await rig.mgr.setup({
          sandboxId: id,
          netnsPath: a.ns.path,
          nics: [{ name: 'default', binding: 'bridge', podInterface: 'eth0', cniResult }],
        });
        const { result, fds } = await rig.mgr.fds(res.netKey);
        const nics = result.nics.map((x, i) => checkNic(x, i));
        rig.run = startGuest({
          command: QEMU,
          args: [
            ...qemuArgs({
              kernel: rig.image.kernel,
              initrd: rig.image.initrd,
              append: guestCmdline({
                dhcp: c.v4,
                dhcp6: true,
                dhcpTries: 20,
                ping: ['gw', ...(b.v4 ? [b.v4] : []), b.v6, NODE6],
              }),
              console: 'stdio',
            }),
            ...netArgs([], nics, [3]),
          ],
          console: 'stdio',
          fds,
          timeoutMs: 240_000,
          until: 'done',
          expect: { leases: c.v4 ? 1 : 0, leases6: 1, pings: c.v4 ? 5 : 3 },
        });
        fds.forEach((fd) => fs.closeSync(fd));
        const r = await rig.run.result;
        const why = [...r.verdict.problems, ...r.tail, `qemu stderr: ${r.stderr}`].join('\n');
        expect(r.verdict.ok, why).toBe(true);
        const report = r.report;
        const eth = report.nics[0]!.name;
        const leases = Object.fromEntries(report.leases.map((l) => [l.family, l]));
        if (c.v4) expect(leases[4], why).toMatchObject({ nic: eth, ip: a.v4, router: [gw4] });
        else expect(leases[4]).toBeUndefined();
        expect(leases[6], why).toMatchObject({
          nic: eth,
          ip: a.v6,
          addrs: [a.v6],
          mask: '128',
          dns: ['fd00:96::10'],
          search: ['default.svc.cluster.local'],
        });
        expect(report.addrs).toContainEqual({ nic: eth, family: '6', addr: `${a.v6}/128` });
        expect(report.addrs.filter((x) => x.family === '4')).toEqual(
          c.v4 ? [expect.objectContaining({ nic: eth, addr: expect.stringMatching(`^${a.v4}/`) })] : [],
        );
        // the router the RAs name is the pod's real gateway: the bridge's (ptp: the host veth's) link-local
        expect(report.routers6).toEqual([{ nic: eth, router: gwLL, mtu: 1500 }]);
        expect(report.routes).toContainEqual(expect.objectContaining({ family: '6', dst: 'default', via: gwLL }));
        // bridge: the /64 is on-link (RA prefix with L); ptp: nothing is, all goes via the gateway
        const onLink = report.routes.some((x) => x.family === '6' && x.dst === `fd00:${n}::/64`);
        expect(onLink).toBe(c.plugin === 'bridge');
        expect(report.pings.map((p) => [p.target, p.ok])).toEqual([
          ...(c.v4 ? [[gw4, true]] : []),
          [`${gwLL}%${eth}`, true],
          ...(c.v4 ? [[b.v4, true]] : []),
          [b.v6, true],
          [NODE6, true],
        ]);

        // what the operator sees: tapctl describe's IPv6 picture, the metrics' DHCPv6 and RA counts
        const described = renderDescribe(await rig.mgr.status(id));
        expect(described).toContain(`DHCPv6: ${a.v6} (IA_NA), server DUID `);
        expect(described).toMatch(/binding: bound since /);
        expect(described).toMatch(
          /DHCPv6: received \d+ \(\d+ solicit, \d+ request\), sent [1-9]\d* advertise [1-9]\d* reply, ignored 0/,
        );
        expect(described).toContain(`RA: router ${gwLL}, managed (M+O), mtu 1500, `);
        expect(described).toMatch(/RA: sent \d+(?: \(\d+ failed\))?; router solicitations \d+: [1-9]\d* answered/);
        expect(described.includes('169.254.254.2/24, DHCP server')).toBe(c.v4);
        const metrics = new TapwireMetrics();
        metrics.attach(rig.mgr);
        const text = await metrics.text();
        const value = (series: string): number => Number(text.match(new RegExp(`^${series} (\\S+)$`, 'm'))?.[1]);
        // at least: under load a client may send again before the answer is in
        expect(value('tapwire_dhcp6_received_total\\{type="solicit"\\}')).toBeGreaterThanOrEqual(1);
        expect(value('tapwire_dhcp6_replies_total\\{type="reply"\\}')).toBeGreaterThanOrEqual(1);
        expect(value('tapwire_router_solicitations_total\\{outcome="answered"\\}')).toBeGreaterThan(0);
        expect(value('tapwire_router_advertisements_total\\{outcome="sent"\\}')).toBeGreaterThan(0);
        expect(value(`tapwire_sandbox_dhcp6_messages_total\\{sandbox="${id}",type="reply"\\}`)).toBeGreaterThanOrEqual(
          1,
        );
        // this sandbox's own series: the node-wide ones hold whatever else the rig's manager served
        expect(value(`tapwire_sandbox_dhcp_messages_total\\{sandbox="${id}",type="ack"\\}`) > 0).toBe(c.v4);

        await rig.run.kill();
        rig.run = undefined;
        expect(await rig.mgr.teardown(id)).toEqual({ errors: [] });
        expect(ipDump(a.ns)).toBe(before);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }, 300_000);
  it('a dual-stack pod network and an IPv6-only multus network (as tapwire-cri asks for them): both NICs get their IPv6 address and router', async () => {
    const n = 100 + Math.floor(Math.random() * 100);
    const node = createNetns('v6mnode');
    node.sh('sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-v6m-'));
    try {
      const runner = new CniRunner({ binDirs: [BIN], hostNetns: node.path, cacheDir: path.join(dir, 'cache') });
      const conf = (name: string, bridge: string, ranges: unknown[], routes: unknown[]) =>
        parseConfList(
          JSON.stringify({
            cniVersion: '1.0.0',
            name,
            plugins: [
              {
                type: 'bridge',
                bridge,
                isGateway: true,
                ipam: { type: 'host-local', dataDir: path.join(dir, 'ipam'), ranges, routes },
              },
            ],
          }),
        );
      const pod = conf(
        `twv6m${n}`,
        `cv6m${n}`,
        [[{ subnet: `10.${n}.0.0/24` }], [{ subnet: `fd00:${n}::/64` }]],
        [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
      );
      const green = conf(`twv6g${n}`, `cv6n${n}`, [[{ subnet: `fd00:${n}:1::/64` }]], []);
      const made: { ns: TestNetns; eth0: CniResult; net1: CniResult }[] = [];
      for (const id of ['a', 'b']) {
        const ns = createNetns(`v6m${id}`);
        const att = {
          containerId: `v6m${id}${n}`,
          netns: ns.path,
          pod: { podNamespace: 'default', podName: `pod-${id}`, infraContainerId: `v6m${id}${n}` },
        };
        const eth0 = await runner.add(pod, { ...att, ifName: 'eth0' });
        const net1 = await runner.add(green, { ...att, ifName: 'net1' });
        made.push({ ns, eth0, net1 });
      }
      const [a, b] = made as [(typeof made)[0], (typeof made)[0]];
      const ip = (r: CniResult, v6: boolean) =>
        r.ips!.map((i) => i.address.split('/')[0]!).find((x) => x.includes(':') === v6)!;
      await dadDone(a.ns, ['eth0', 'net1']);
      await dadDone(b.ns, ['eth0', 'net1']);
      await dadDone(node, [`cv6m${n}`, `cv6n${n}`]);
      const before = ipDump(a.ns);

      // what tapwire-cri sends for this spec (src/cri/vm-network.ts buildNics)
      const spec = validateSpec({
        apiVersion: 'tapwire.io/v1alpha1',
        interfaces: [
          { name: 'default', bridge: {} },
          { name: 'green', bridge: {} },
        ],
        networks: [
          { name: 'default', pod: {} },
          { name: 'green', multus: { networkName: 'green' } },
        ],
      });
      const nicsReq = buildNics(
        {
          spec,
          extras: [{ name: 'green', nad: 'default/green', network: `twv6g${n}`, ifName: 'net1', result: a.net1 }],
        },
        'eth0',
        { ...a.eth0, dns: DNS },
      );
      expect(nicsReq[1]!.cniResult?.ips?.map((i) => i.address)).toEqual([`${ip(a.net1, true)}/64`]);
      const id = `sb-v6multus-${n}`;
      const res = await rig.mgr.setup({ sandboxId: id, netnsPath: a.ns.path, nics: nicsReq });
      expect(res.nics.map((x) => [x.name, x.ip !== undefined, x.ipv6, x.l2Only])).toEqual([
        ['default', true, undefined, undefined],
        ['green', false, [ip(a.net1, true)], undefined],
      ]);
      const { result, fds } = await rig.mgr.fds(res.netKey);
      rig.run = startGuest({
        command: QEMU,
        args: [
          ...qemuArgs({
            kernel: rig.image.kernel,
            initrd: rig.image.initrd,
            // DHCPv4 only where there is a DHCPv4 server: the pod network's NIC
            append: guestCmdline({
              dhcp: [res.nics[0]!.mac],
              dhcp6: true,
              dhcpTries: 20,
              ping: [ip(b.eth0, false), ip(b.eth0, true), ip(b.net1, true)],
            }),
            console: 'stdio',
          }),
          ...netArgs(
            [],
            result.nics.map((x, i) => checkNic(x, i)),
            fds.map((_, i) => 3 + i),
          ),
        ],
        console: 'stdio',
        fds,
        timeoutMs: 240_000,
        until: 'done',
        expect: { leases: 1, leases6: 2, pings: 3 },
      });
      fds.forEach((fd) => fs.closeSync(fd));
      const r = await rig.run.result;
      const why = [...r.verdict.problems, ...r.tail, `qemu stderr: ${r.stderr}`].join('\n');
      expect(r.verdict.ok, why).toBe(true);
      const [eth0, eth1] = r.report.nics.map((x) => x.name) as [string, string];
      expect(r.report.leases.map((l) => [l.nic, l.family, l.ip])).toEqual(
        expect.arrayContaining([
          [eth0, 4, ip(a.eth0, false)],
          [eth0, 6, ip(a.eth0, true)],
          [eth1, 6, ip(a.net1, true)],
        ]),
      );
      expect(r.report.leases.filter((l) => l.family === 4).map((l) => l.nic)).toEqual([eth0]);
      const ll = (br: string) => /inet6 (fe80::\S+)\/64/.exec(node.ip('-6', 'addr', 'show', 'dev', br))![1]!;
      // each NIC's RAs name its own network's gateway; the IPv6-only network has no default route, so no router
      expect(r.report.routers6).toEqual([
        { nic: eth0, router: ll(`cv6m${n}`), mtu: 1500 },
        { nic: eth1, router: '', mtu: 1500 },
      ]);
      expect(r.report.routes).toContainEqual(
        expect.objectContaining({ family: '6', dst: `fd00:${n}:1::/64`, dev: eth1 }),
      );

      await rig.run.kill();
      rig.run = undefined;
      expect(await rig.mgr.teardown(id)).toEqual({ errors: [] });
      expect(ipDump(a.ns)).toBe(before);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
