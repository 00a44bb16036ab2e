// The masquerade binding on dual-stack and IPv6-only pods made by the real CNI bridge
// plugin with host-local IPv4 and IPv6 ranges, through tapmanager (SandboxManager
// in-process). The guest (a netns behind tap-relay.py) leases 10.0.2.2 with udhcpc,
// takes its IPv6 default route from the bridge's router advertisements (the kernel's RA
// handling) and leases fd10:0:2::2 with ISC dhclient -6; it reaches the peer pod over
// both families and the node beyond the gateway over IPv6. A peer pod's TCP connection
// to [podIPv6]:port reaches a listener in the guest for a listed port and is refused for
// an unlisted one; with no ports listed every port is forwarded; the pod's own [::1]
// reaches the guest too. eth0 keeps its addresses throughout; teardown leaves the pod as
// CNI made it (addresses, routes, nft ruleset, forwarding sysctls of both families).
// An IPv6-only pod gets IPv6 masquerade only (no ip table, no DHCPv4 server).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { CniRunner, parseConfList, type Attachment } from '../../src/cni';
import type { CniResult } from '../../src/cni/result';
import { renderDescribe } from '../../src/tapmanager/tapctl';
import { readEvents, waitFor, writeRecorder } from '../fixtures/dhcp-net';
import { killAll, spawnIn } from '../fixtures/dhcp-procs';
import { dadDone, settledDump } from '../helpers/ip-dump';
import { createNetns, type TestNetns } from '../helpers/netns';
import { relayRig, startRelay, stopRelay } from '../helpers/relay-rig';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const BIN = '/usr/lib/cni';
const NODE6 = 'fd00:ff::1';
const LISTEN6 = `
import socket, sys, threading
def serve(port):
    s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port)); s.listen(8)
    while True:
        c, a = s.accept(); c.sendall(("guest:%d from %s\\n" % (port, a[0])).encode()); c.close()
for p in sys.argv[1:]: threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("LISTENING", flush=True)
threading.Event().wait()
`;
const CONNECT = `
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3); print(c.recv(100).decode().strip())
except ConnectionRefusedError: print("REFUSED")
except OSError as e: print("ERROR", e)
`;
const TX_CSUM_OFF = `
import ctypes, fcntl, socket, struct, sys
val = ctypes.create_string_buffer(struct.pack("II", 0x17, 0))
ifr = struct.pack("16sP", sys.argv[1].encode(), ctypes.addressof(val)) + bytes(16)
fcntl.ioctl(socket.socket(), 0x8946, ifr)
`;
const SYSCTLS = [
  'net.ipv4.ip_forward',
  'net.ipv6.conf.all.forwarding',
  'net.ipv6.conf.default.forwarding',
  'net.ipv6.conf.eth0.forwarding',
  'net.ipv6.conf.lo.forwarding',
  'net.ipv6.conf.eth0.accept_ra',
];

describePrivileged('masquerade binding, dual-stack and IPv6-only (DHCPv6 + RA from the bridge)', () => {
  const noTools =
    requireTools('busybox', 'python3', 'dhclient', 'nft') ??
    (fs.existsSync(`${BIN}/bridge`) && fs.existsSync(`${BIN}/host-local`) ? undefined : `no ${BIN}/bridge`);
  const rig = relayRig({ prefix: 'twt-masq6-', storeIn: 'state' });

  async function pods(v4: boolean): Promise<{ node: TestNetns; a: Pod; b: Pod }> {
    const n = 100 + Math.floor(Math.random() * 100);
    const node = createNetns('m6node');
    node.sh('sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1');
    node.ip('addr', 'add', `${NODE6}/128`, 'dev', 'lo');
    const runner = new CniRunner({ binDirs: [BIN], hostNetns: node.path, cacheDir: path.join(rig.dir, 'cache') });
    const list = parseConfList(
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'twmasq6',
        plugins: [
          {
            type: 'bridge',
            bridge: 'cni0',
            isGateway: true,
            ipam: {
              type: 'host-local',
              dataDir: path.join(rig.dir, 'ipam'),
              ranges: [...(v4 ? [[{ subnet: `10.${n}.0.0/24` }]] : []), [{ subnet: `fd00:${n}::/64` }]],
              routes: [...(v4 ? [{ dst: '0.0.0.0/0' }] : []), { dst: '::/0' }],
            },
          },
        ],
      }),
    );
    const out: Pod[] = [];
    for (const id of ['a', 'b']) {
      const ns = createNetns(`m6${id}`);
      const att: Attachment = {
        containerId: `m6${id}`,
        netns: ns.path,
        ifName: 'eth0',
        pod: { podNamespace: 'default', podName: `pod-${id}`, infraContainerId: `m6${id}` },
      };
      const res = await runner.add(list, att);
      const dns = { nameservers: [...(v4 ? ['10.96.0.10'] : []), 'fd00:96::10'], search: ['masq6.svc.local'] };
      const cni: CniResult = {
        ...res,
        dns,
        interfaces: res.interfaces!.filter((i) => i.sandbox),
        ips: res.ips!.map((i) => ({ ...i, interface: 0 })),
      };
      const ip = (v6: boolean): string =>
        res.ips!.map((i) => i.address.split('/')[0]!).find((x) => x.includes(':') === v6)!;
      out.push({ ns, cni, ip });
    }
    await dadDone(out[0]!.ns, ['eth0']);
    await dadDone(out[1]!.ns, ['eth0']);
    await dadDone(node, ['cni0']);
    return { node, a: out[0]!, b: out[1]! };
  }
  type Pod = { ns: TestNetns; cni: CniResult; ip: (v6: boolean) => string };

  const snapshot = async (p: Pod) => ({
    dump: await settledDump(p.ns),
    nft: p.ns.exec('nft', ['list', 'ruleset']),
    sysctls: p.ns.exec('sysctl', SYSCTLS),
  });

  async function guestUp(netKey: string, mac: string): Promise<TestNetns> {
    const guest = createNetns('m6guest');
    guest.ip('link', 'add', 'g0', 'type', 'veth', 'peer', 'name', 'r0');
    guest.ip('link', 'set', 'g0', 'address', mac);
    guest.ip('link', 'set', 'r0', 'up');
    guest.exec('python3', ['-c', TX_CSUM_OFF, 'g0']);
    await startRelay(rig, guest, netKey);
    guest.ip('link', 'set', 'g0', 'up');
    await dadDone(guest, ['g0']);
    return guest;
  }

  async function dhclient6(guest: TestNetns): Promise<Record<string, string>> {
    const hook = path.join(rig.dir, 'hook6.sh');
    fs.writeFileSync(
      hook,
      '#!/bin/sh\ncase "$reason" in BOUND6|RENEW6|REBIND6) ip -6 addr replace "$new_ip6_address/128" dev "$interface";; esac\n' +
        `env | sort > "${rig.dir}/dhclient6-$reason.tmp" && mv "${rig.dir}/dhclient6-$reason.tmp" "${rig.dir}/dhclient6-$reason"\n`,
      { mode: 0o755 },
    );
    const p = spawnIn(guest, 'dhclient', [
      '-d',
      '-6',
      '-v',
      '-sf',
      hook,
      '-lf',
      path.join(rig.dir, 'l6'),
      '-pf',
      path.join(rig.dir, 'p6'),
      'g0',
    ]);
    const file = path.join(rig.dir, 'dhclient6-BOUND6');
    await waitFor('dhclient -6 bound', () => fs.existsSync(file) || undefined, 20_000, p.output);
    return Object.fromEntries(
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  }

  async function raRoute(guest: TestNetns, router: string): Promise<void> {
    await waitFor(
      'IPv6 default route via the bridge from the RA',
      () => guest.ip('-6', 'route', 'show', 'default').includes(`via ${router} dev g0 proto ra`) || undefined,
      20_000,
      () => `want via ${router}; guest routes:\n${guest.ip('-6', 'route', 'show')}`,
    );
  }

  const connect = (ns: TestNetns, ip: string, port: number): string =>
    ns.exec('python3', ['-c', CONNECT, ip, String(port)]).trim();

  it('dual-stack: the guest leases 10.0.2.2 and fd10:0:2::2, routes by the RA, reaches the peer and the node; listed ports over IPv6, then all; teardown exact', async (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const { a, b } = await pods(true);
    const before = await snapshot(a);
    const eth0 = () => a.ns.ip('-o', 'addr', 'show', 'dev', 'eth0').replace(/valid_lft \S+ preferred_lft \S+/g, '');
    const eth0Before = eth0();
    const req = (ports?: unknown[]) => ({
      sandboxId: 'sb-masq6',
      netnsPath: a.ns.path,
      nics: [
        { name: 'default', binding: 'masquerade', podInterface: 'eth0', cniResult: a.cni, ...(ports ? { ports } : {}) },
      ],
    });

    const res = await rig.mgr.setup(req([{ port: 8080, protocol: 'TCP' }]));
    const nic = res.nics[0]!;
    expect(nic).toMatchObject({ ip: '10.0.2.2', gateway: '10.0.2.1' });
    const router = nic.masquerade!.ipv6!.router;
    expect(nic.masquerade!.ipv6).toMatchObject({
      guestCidr: 'fd10:0:2::/120',
      guestIp: 'fd10:0:2::2',
      bridgeIp: 'fd10:0:2::1',
    });
    expect(router).toMatch(/^fe80::/);
    expect(eth0()).toBe(eth0Before);
    expect(a.ns.exec('sysctl', ['-n', 'net.ipv6.conf.all.forwarding']).trim()).toBe('1');
    const nft = a.ns.exec('nft', ['list', 'ruleset']);
    expect(nft).toContain('table ip tapwire_masq_');
    expect(nft).toContain('table ip6 tapwire_masq_');
    expect(nft).toMatch(/iifname "eth0" tcp dport 8080 dnat (ip6 )?to fd10:0:2::2/);
    const text = renderDescribe(await rig.mgr.status('sb-masq6'));
    expect(text).toContain('fd10:0:2::/120');
    expect(text).toContain('router advertisements');

    const guest = await guestUp(res.netKey, nic.mac);
    spawnIn(guest, 'busybox', [
      'udhcpc',
      '-f',
      '-i',
      'g0',
      '-s',
      writeRecorder(rig.dir, 'udhcpc'),
      '-t',
      '10',
      '-T',
      '1',
    ]);
    const bound = await waitFor('udhcpc bound', () => readEvents(rig.dir).find((e) => e.name === 'bound'));
    expect(bound.env).toMatchObject({ ip: '10.0.2.2', router: '10.0.2.1' });
    await raRoute(guest, router);
    const lease = await dhclient6(guest);
    expect(lease).toMatchObject({
      new_ip6_address: 'fd10:0:2::2',
      new_dhcp6_name_servers: 'fd00:96::10',
      new_dhcp6_domain_search: 'masq6.svc.local.',
    });
    await waitFor(
      'the IPv6 address applied',
      () => guest.ip('-6', '-o', 'addr', 'show', 'dev', 'g0').includes('fd10:0:2::2') || undefined,
    );
    await dadDone(guest, ['g0']);
    expect(guest.ip('-6', 'route', 'show')).toContain('fd10:0:2::/120 dev g0'); // the RA's on-link prefix

    // out over both families (masqueraded as the pod's addresses) and beyond the gateway
    expect(guest.exec('busybox', ['ping', '-c', '2', '-W', '3', b.ip(false)])).toMatch(/2 packets received/);
    expect(guest.exec('busybox', ['ping', '-6', '-c', '2', '-W', '3', b.ip(true)])).toMatch(/2 packets received/);
    expect(guest.exec('busybox', ['ping', '-6', '-c', '2', '-W', '3', NODE6])).toMatch(/2 packets received/);
    // a forged IPv6 source never leaves the pod
    guest.ip('addr', 'add', 'fd10:0:2::9/120', 'dev', 'g0', 'nodad');
    b.ns.ip('-6', 'route', 'add', 'fd10:0:2::9/128', 'via', a.ip(true));
    let forged = '';
    try {
      forged = guest.exec('busybox', ['ping', '-6', '-c', '2', '-W', '2', '-I', 'fd10:0:2::9', b.ip(true)]);
    } catch (e) {
      forged = String((e as { stdout?: unknown }).stdout ?? '');
    }
    expect(forged).toMatch(/0 packets received/);
    guest.ip('addr', 'del', 'fd10:0:2::9/120', 'dev', 'g0');
    b.ns.ip('-6', 'route', 'del', 'fd10:0:2::9/128', 'via', a.ip(true));

    // in: a listed port reaches the guest from the peer's own address, an unlisted one is refused
    const listener = spawnIn(guest, 'python3', ['-u', '-c', LISTEN6, '8080', '8081']);
    await waitFor('guest listening', () => listener.output().includes('LISTENING') || undefined);
    expect(connect(b.ns, a.ip(true), 8080)).toBe(`guest:8080 from ${b.ip(true)}`);
    expect(connect(b.ns, a.ip(true), 8081)).toBe('REFUSED');
    expect(connect(b.ns, a.ip(false), 8080)).toBe(`guest:8080 from ::ffff:${b.ip(false)}`);
    // the pod's own 127.0.0.1 reaches the guest from the bridge's address (a port-forward:
    // containerd dials tcp4 localhost); [::1] stays the pod's own (nat.ts says why)
    expect(connect(a.ns, '127.0.0.1', 8080)).toBe('guest:8080 from ::ffff:10.0.2.1');
    expect(connect(a.ns, '::1', 8080)).toBe('REFUSED');
    expect(eth0()).toBe(eth0Before);

    await stopRelay(rig);
    expect(await rig.mgr.teardown('sb-masq6')).toEqual({ errors: [] });
    expect(await snapshot(a)).toEqual(before);

    // no ports listed: every port, over IPv6 too
    const res2 = await rig.mgr.setup(req());
    await startRelay(rig, guest, res2.netKey);
    guest.ip('neigh', 'flush', 'dev', 'g0'); // the new bridge has a new MAC
    guest.ip('-6', 'route', 'flush', 'proto', 'ra'); // and a new link-local: the next RA names it
    await raRoute(guest, res2.nics[0]!.masquerade!.ipv6!.router);
    expect(connect(b.ns, a.ip(true), 8081)).toBe(`guest:8081 from ${b.ip(true)}`);
    expect(connect(b.ns, a.ip(true), 8080)).toBe(`guest:8080 from ${b.ip(true)}`);
    expect(guest.exec('busybox', ['ping', '-6', '-c', '1', '-W', '3', b.ip(true)])).toMatch(/1 packets received/);
    await killAll();
    await stopRelay(rig);
    expect(await rig.mgr.teardown('sb-masq6')).toEqual({ errors: [] });
    expect(await snapshot(a)).toEqual(before);
  }, 120_000);

  it('IPv6-only: IPv6 masquerade only (no ip table, no DHCPv4); overlaps refused; restart finds no drift, repairs a lost ip6 table and forwarding', async (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const { a, b } = await pods(false);
    // as if eth0 had learnt a route from an RA (accept_ra=1 takes them only while forwarding is off)
    a.ns.exec('sysctl', ['-qw', 'net.ipv6.conf.eth0.accept_ra=1']);
    a.ns.ip('-6', 'route', 'add', 'fd00:abcd::/64', 'via', 'fe80::1', 'dev', 'eth0', 'proto', 'ra');
    const before = await snapshot(a);
    const req = (extra: Record<string, unknown> = {}) => ({
      sandboxId: 'sb-masq6o',
      netnsPath: a.ns.path,
      nics: [{ name: 'default', binding: 'masquerade', podInterface: 'eth0', cniResult: a.cni, ...extra }],
    });
    const net = a.ip(true).replace(/::[0-9a-f]+$/, '::');
    for (const [cidr, why] of [
      [`${net}/56`, 'overlaps the pod'],
      ['fd10:0:2::/127', 'at most /126'],
      ['fd10:0:2::1/120', 'CIDR form'],
      ['fe80::/120', 'link-local'],
    ] as const) {
      await expect(rig.mgr.setup(req({ guestCidr6: cidr }))).rejects.toMatchObject({
        code: 'EINVAL',
        field: 'nics[0].guestCidr6',
        message: expect.stringContaining(why),
      });
    }
    expect(await snapshot(a)).toEqual(before);

    const res = await rig.mgr.setup(req({ guestCidr6: 'fd10:0:9::/120', ports: [{ port: 8080, protocol: 'TCP' }] }));
    const nic = res.nics[0]!;
    expect(nic.ip).toBeUndefined();
    expect(nic.ipv6).toEqual(['fd10:0:9::2']);
    const nft = a.ns.exec('nft', ['list', 'ruleset']);
    expect(nft).not.toContain('table ip tapwire_masq_');
    expect(nft).toContain('table ip6 tapwire_masq_');
    expect(a.ns.exec('sysctl', ['net.ipv4.ip_forward']).trim()).toBe(before.sysctls.split('\n')[0]); // untouched
    expect(a.ns.exec('ss', ['-lun'])).not.toMatch(/:67\b/); // no DHCPv4 server
    expect(a.ns.exec('sysctl', ['-n', 'net.ipv6.conf.eth0.accept_ra']).trim()).toBe('2'); // RAs still taken

    const guest = await guestUp(res.netKey, nic.mac);
    await raRoute(guest, nic.masquerade!.ipv6!.router);
    expect(await dhclient6(guest)).toMatchObject({
      new_ip6_address: 'fd10:0:9::2',
      new_dhcp6_name_servers: 'fd00:96::10',
    });
    await waitFor(
      'the IPv6 address applied',
      () => guest.ip('-6', '-o', 'addr', 'show', 'dev', 'g0').includes('fd10:0:9::2') || undefined,
    );
    await dadDone(guest, ['g0']);
    expect(guest.exec('busybox', ['ping', '-6', '-c', '2', '-W', '3', b.ip(true)])).toMatch(/2 packets received/);
    const listener = spawnIn(guest, 'python3', ['-u', '-c', LISTEN6, '8080', '8081']);
    await waitFor('guest listening', () => listener.output().includes('LISTENING') || undefined);
    expect(connect(b.ns, a.ip(true), 8080)).toBe(`guest:8080 from ${b.ip(true)}`);
    expect(connect(b.ns, a.ip(true), 8081)).toBe('REFUSED');

    // a restart: no drift; then the ip6 table and forwarding lost behind its back are put back
    const { SandboxManager } = await import('../../src/tapmanager/sandboxes');
    const { silentLogger } = await import('../../src/util/log');
    await rig.mgr.close();
    rig.mgr = new SandboxManager({ store: rig.store, log: silentLogger });
    await rig.mgr.recover();
    expect(await rig.mgr.status('sb-masq6o')).toMatchObject({ state: 'ready', drift: [] });
    a.ns.exec('nft', ['delete', 'table', 'ip6', 'tapwire_masq_br0']);
    a.ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=0']);
    await rig.mgr.close();
    rig.mgr = new SandboxManager({ store: rig.store, log: silentLogger });
    await rig.mgr.recover();
    expect((await rig.mgr.status('sb-masq6o')).drift).toEqual([
      'IPv6 forwarding was off: turned on',
      'NAT table ip6 tapwire_masq_br0 missing: re-applied',
    ]);
    expect(connect(b.ns, a.ip(true), 8080)).toBe(`guest:8080 from ${b.ip(true)}`);

    await killAll();
    await stopRelay(rig);
    expect(await rig.mgr.teardown('sb-masq6o')).toEqual({ errors: [] });
    expect(await snapshot(a)).toEqual(before);

    // two masquerade NICs on one IPv6 guest network (both the default) are refused before anything is built
    const other = createNetns('m6other');
    other.ip('link', 'add', 'o0', 'type', 'veth', 'peer', 'name', 'net1', 'netns', a.ns.name);
    a.ns.ip('addr', 'add', 'fd00:77::2/64', 'dev', 'net1', 'nodad');
    a.ns.ip('link', 'set', 'net1', 'up');
    const withNet1 = await snapshot(a);
    const net1Cni: CniResult = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'net1', sandbox: a.ns.path }],
      ips: [{ address: 'fd00:77::2/64', interface: 0 }],
    };
    await expect(
      rig.mgr.setup({
        sandboxId: 'sb-masq6two',
        netnsPath: a.ns.path,
        nics: [
          { name: 'default', binding: 'masquerade', podInterface: 'eth0', cniResult: a.cni },
          { name: 'second', binding: 'masquerade', podInterface: 'net1', cniResult: net1Cni, guestCidr: '10.0.3.0/24' },
        ],
      }),
    ).rejects.toMatchObject({
      code: 'EINVAL',
      field: 'nics[1].guestCidr6',
      message: expect.stringContaining("overlaps nics[0]'s IPv6 guest network fd10:0:2::/120"),
    });
    expect(await snapshot(a)).toEqual(withNet1);
  }, 120_000);
});
