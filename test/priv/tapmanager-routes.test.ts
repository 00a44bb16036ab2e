// tapmanager on real namespaces, about routes: the routes it cannot hand to the guest
// (a policy-table route picked by `ip rule from`, an IPv4 route via an IPv6 gateway, a
// multipath route, the loser of a metric tie) are in the sandbox's status and `tapctl describe` and logged once;
// the ones a teardown cannot rebuild are reported, not errors; point-to-point pods
// (GW/32 scope link + SUBNET via GW, with and without noprefixroute) are restored byte
// for byte (`ip -d` link, addr, route of every table). And the real daemon with route
// tables of thousands of entries on the veth: it strips and restores them all, never
// aborting (300 routes once sent the netlink package's socket into ENOBUFS, whose error
// thrown inside its native callback was SIGABRT).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { renderDescribe } from '../../src/tapmanager/tapctl';
import { createLogger } from '../../src/util/log';
import { killDaemons, startDaemon, stopDaemon } from '../helpers/daemon';
import { removeAllNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { dadDone, ipDump, settledDump } from '../helpers/ip-dump';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('tapmanager and the routes of the pod', () => {
  let dir: string;
  let mgr: SandboxManager;
  let logs: { level: string; msg: string; [k: string]: unknown }[];
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-tmr-'));
    const store = new RecordStore(dir);
    await store.init();
    logs = [];
    const log = createLogger('tapmanager', (line) => logs.push(JSON.parse(line) as (typeof logs)[number]));
    mgr = new SandboxManager({ store, log });
  });
  afterEach(async () => {
    await mgr.close();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('routes it cannot hand to the guest are in status and describe, logged once; teardown reports what it cannot rebuild', async () => {
    const p = makePod({ ipv6: true });
    const [, net] = p.ip.split('.');
    // a second gateway on the pod subnet for the multipath route and the metric tie
    const gw2 = `10.${net}.0.3`;
    for (const r of [
      `add 10.83.0.0/16 via ${p.gw} dev eth0 metric 5`,
      `append 10.83.0.0/16 via ${gw2} dev eth0 metric 5`,
      `add 10.85.0.0/16 via ${p.gw} dev eth0 table 100`,
      `add 10.84.0.0/16 via inet6 fe80::1 dev eth0`,
      `add 10.87.0.0/16 nexthop via ${p.gw} dev eth0 nexthop via ${gw2} dev eth0`,
    ]) {
      p.pod.ip('route', ...r.split(' '));
    }
    p.pod.ip('rule', 'add', 'from', p.ip, 'lookup', '100'); // the source-routed part: rules are not the veth's
    await dadDone(p.pod, ['eth0']);
    const before = ipDump(p.pod);

    await mgr.setup({ sandboxId: 'sb-routes', netnsPath: p.pod.path, cniResult: p.cniResult });
    const st = await mgr.status('sb-routes');
    const nic = st.nics[0]!;
    const reasons = Object.fromEntries(nic.unexpressible.map((u) => [u.route.dst, u.reason]));
    expect(reasons).toEqual({
      '10.83.0.0/16': expect.stringContaining(`tied with "10.83.0.0/16 via ${p.gw}`),
      '10.85.0.0/16': expect.stringContaining('policy routing: it is in table 100'),
      '10.84.0.0/16': expect.stringContaining('its gateway fe80::1 is IPv6'),
      '10.87.0.0/16': expect.stringContaining('multipath'),
    });
    expect(nic.routes).toEqual([
      { dst: '169.254.254.2/32', gw: '0.0.0.0' },
      { dst: '10.83.0.0/16', gw: p.gw },
      { dst: '0.0.0.0/0', gw: p.gw },
    ]);
    expect(nic.warnings).toContainEqual(expect.stringMatching(/^metric tie for 10\.83\.0\.0\/16 on "eth0"/));
    expect(nic.unrestorable.map((u) => [u.route.dst, u.reason.split(':')[0]])).toEqual([
      ['10.84.0.0/16', 'its gateway fe80'],
      ['10.87.0.0/16', 'multipath'],
    ]);
    const text = renderDescribe(st);
    expect(text).toContain('NOT handed to the guest (4):');
    expect(text).toContain(`10.83.0.0/16 via ${gw2} dev eth0 proto boot scope universe metric 5: option 121 carries`);
    expect(text).toContain(`10.85.0.0/16 via ${p.gw} dev eth0 table 100 proto boot scope universe: policy routing`);
    expect(text).toContain('10.84.0.0/16 via inet6 fe80::1 dev eth0 proto boot scope universe: its gateway fe80::1');
    expect(text).toContain('10.87.0.0/16 dev eth0 proto boot scope universe multipath: multipath');
    expect(text).toContain('NOT restorable at teardown (2):');

    // logged once: at setup, one line per route; not again for status, describe or a repeated setup
    const handedLogs = () => logs.filter((l) => l.msg === 'route cannot be handed to the guest');
    const logged = handedLogs().map((l) => [l.level, (l.route as { dst: string }).dst, l.reason]);
    expect(logged.sort()).toEqual([
      ['warn', '10.83.0.0/16', reasons['10.83.0.0/16']],
      ['warn', '10.84.0.0/16', reasons['10.84.0.0/16']],
      ['warn', '10.85.0.0/16', reasons['10.85.0.0/16']],
      ['warn', '10.87.0.0/16', reasons['10.87.0.0/16']],
    ]);
    await mgr.status('sb-routes');
    await mgr.setup({ sandboxId: 'sb-routes', netnsPath: p.pod.path, cniResult: p.cniResult });
    expect(handedLogs()).toHaveLength(4);

    // teardown: no errors (no retry would rebuild them), one warning naming both lost routes
    expect(await mgr.teardown('sb-routes')).toEqual({ errors: [] });
    const lost = logs.filter((l) => l.msg === 'routes not restored');
    expect(lost).toHaveLength(1);
    expect(lost[0]!.routes).toEqual([
      expect.stringMatching(
        /^route "10\.84\.0\.0\/16 via inet6 fe80::1 dev eth0 .*" not restored: its gateway fe80::1/,
      ),
      expect.stringMatching(/^route "10\.87\.0\.0\/16 dev eth0 .*multipath" not restored: multipath/),
    ]);
    // everything else is back byte for byte, the metric tie in its order
    expect(p.pod.ip('route', 'show', '10.83.0.0/16')).toBe(
      `10.83.0.0/16 via ${p.gw} dev eth0 metric 5 \n10.83.0.0/16 via ${gw2} dev eth0 metric 5 \n`,
    );
    const keep = (s: string) =>
      s
        .split('\n')
        .filter((l) => !/10\.84\.0\.0|10\.87\.0\.0|^\s+nexthop /.test(l))
        .join('\n');
    expect(keep(ipDump(p.pod))).toBe(keep(before));
    expect(p.pod.ip('rule', 'show')).toContain(`from ${p.ip} lookup 100`);
  });

  it('ptp shape with noprefixroute: teardown restores links, addresses and every table byte for byte', async () => {
    const p = makePod({ shape: 'ptp', ipv6: true });
    expect(p.pod.ip('-o', 'addr', 'show', 'eth0')).toContain('noprefixroute');
    await dadDone(p.pod, ['eth0']);
    const before = ipDump(p.pod);
    await mgr.setup({ sandboxId: 'sb-ptp', netnsPath: p.pod.path, cniResult: p.cniResult });
    expect((await mgr.status('sb-ptp')).nics[0]!.routes).toEqual([
      { dst: '169.254.254.2/32', gw: '0.0.0.0' },
      { dst: `${p.gw}/32`, gw: '0.0.0.0' },
      { dst: `${p.gw.replace(/\.1$/, '.0')}/24`, gw: p.gw },
      { dst: '0.0.0.0/0', gw: p.gw },
    ]);
    expect(await mgr.teardown('sb-ptp')).toEqual({ errors: [] });
    expect(ipDump(p.pod)).toBe(before);
    // the pod's IPv6 address goes to the guest, but it has no IPv6 default route to advertise: said once
    expect(logs.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([
      expect.objectContaining({ msg: '"eth0" has no IPv6 default route: the guest gets no IPv6 default router' }),
    ]);
  });

  it('ptp shape as the CNI ptp plugin leaves it (kernel subnet route deleted): the re-created one goes again', async () => {
    const p = makePod({ shape: 'ptp' });
    // the plugin adds the address plainly, then deletes the route the kernel made for it
    const subnet = `${p.gw.replace(/\.1$/, '.0')}/24`;
    p.pod.ip('-4', 'addr', 'flush', 'dev', 'eth0');
    p.pod.ip('addr', 'add', `${p.ip}/24`, 'dev', 'eth0');
    p.pod.ip('route', 'del', subnet, 'dev', 'eth0', 'proto', 'kernel');
    p.pod.ip('route', 'add', `${p.gw}/32`, 'dev', 'eth0', 'scope', 'link');
    p.pod.ip('route', 'add', subnet, 'via', p.gw, 'dev', 'eth0');
    p.pod.ip('route', 'add', 'default', 'via', p.gw, 'dev', 'eth0');
    // route attributes a restore must carry too: RTAX_MTU/ADVMSS, a preferred source
    p.pod.ip('route', 'add', '10.86.0.0/16', 'via', p.gw, 'dev', 'eth0', 'mtu', '1400', 'advmss', '1360');
    p.pod.ip('route', 'add', '10.88.0.0/16', 'via', p.gw, 'dev', 'eth0', 'src', p.ip, 'proto', 'static');
    await dadDone(p.pod, ['eth0']);
    const before = ipDump(p.pod);
    expect(before).toContain(`unicast ${subnet} via ${p.gw} dev eth0 table main proto boot scope global`);
    expect(before).not.toContain(`${subnet} dev eth0 table main proto kernel`);
    expect(before).toContain('mtu 1400 advmss 1360');
    await mgr.setup({ sandboxId: 'sb-ptp2', netnsPath: p.pod.path, cniResult: p.cniResult });
    expect(await mgr.teardown('sb-ptp2')).toEqual({ errors: [] });
    expect(ipDump(p.pod)).toBe(before);
  });

  describe('thousands of routes on the veth, on the real daemon', () => {
    afterEach(async () => {
      await killDaemons();
    });

    for (const n of [300, 1000, 5000]) {
      it(`${n} routes via the gateway, plus ${n / 10} in a policy table and ${n / 10} on-link: stripped, then restored exactly`, async () => {
        const p = makePod({ ipv6: true });
        const [, net] = p.ip.split('.');
        const dst = (i: number, base: number) => `${base + (i >> 8)}.${i & 255}.${net}.0/24`;
        const lines = [
          ...Array.from({ length: n }, (_, i) => `route add ${dst(i, 20)} via ${p.gw} dev eth0`),
          ...Array.from({ length: n / 10 }, (_, i) => `route add ${dst(i, 60)} via ${p.gw} dev eth0 table 100`),
          ...Array.from({ length: n / 10 }, (_, i) => `route add ${dst(i, 70)} dev eth0 scope link metric 9`),
        ];
        p.pod.exec('ip', ['-batch', '-'], lines.join('\n') + '\n');
        const before = await settledDump(p.pod);
        expect(p.pod.ip('-4', 'route', 'show', 'table', 'all', 'dev', 'eth0').split('\n').length).toBeGreaterThan(
          1.2 * n,
        );

        const d = await startDaemon(path.join(dir, `d${n}`));
        await d.client.setup({ sandboxId: 'sb-many', netnsPath: p.pod.path, cniResult: p.cniResult });
        expect(p.pod.ip('-4', 'route', 'show', 'table', 'all', 'dev', 'eth0')).toBe('');
        expect(p.pod.ip('-4', 'addr', 'show', 'dev', 'eth0')).toBe('');
        expect(await d.client.teardown('sb-many')).toEqual({ errors: [] });
        expect(ipDump(p.pod)).toBe(before);
        expect(d.child.exitCode).toBeNull(); // alive
        await stopDaemon(d);
      }, 120_000);
    }
  });
});
