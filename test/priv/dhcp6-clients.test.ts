// The DHCPv6 server and the router advertiser on a bridge against real clients in a guest
// netns: the Linux kernel's own RA handling, ISC dhclient -6 and dhcpcd. The pod's gateway
// is a router netns on the bridge at fe80::1 (Calico's shape); the guest reaching a peer
// behind it proves the router the advertisements name really forwards. (Debian's busybox
// is built without udhcpc6, so that client is not available here.)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Dhcp6Server, type Dhcp6Lease } from '../../src/dhcp6/server';
import { DEFAULT_ROUTER_LIFETIME, RouterAdvertiser } from '../../src/ndp/advertiser';
import type { RouterAdvert } from '../../src/ndp/messages';
import { readEvents, waitFor, which } from '../fixtures/dhcp-net';
import { BRIDGE_MAC, GATEWAY_LL, guest6State, makeDhcp6Net, PEER, type Dhcp6Net } from '../fixtures/dhcp6-net';
import { killAll, spawnIn } from '../fixtures/dhcp-procs';
import { startDhcpcd } from '../helpers/dhcpcd';
import { removeAllNetns } from '../helpers/netns';
import { describePrivileged } from '../helpers/privileged';

const ADDR = 'fd00:77::5';

function lease(over: Partial<Dhcp6Lease> = {}): Dhcp6Lease {
  return { addresses: [ADDR], dns: ['fd00:96::a'], search: ['svc.cluster.local', 'cluster.local'], ...over };
}

function advert(over: Partial<RouterAdvert> = {}): RouterAdvert {
  return {
    routerLifetime: DEFAULT_ROUTER_LIFETIME,
    managed: true,
    other: true,
    mtu: 1450,
    onLink: [],
    optionLifetime: DEFAULT_ROUTER_LIFETIME,
    dns: ['fd00:96::a'],
    search: ['svc.cluster.local', 'cluster.local'],
    ...over,
  };
}

const DHCLIENT_CONF = `request dhcp6.name-servers, dhcp6.domain-search;\n`;

function hook(dir: string): string {
  const script = path.join(dir, 'hook6.sh');
  fs.writeFileSync(
    script,
    `#!/bin/sh
mkdir -p "${dir}/events"
ev="\${reason:-unknown}"
env | sort > "${dir}/events/.tmp-$$"
case "$reason" in
  BOUND6|RENEW6|REBIND6|REBOOT6)
    [ -n "$new_ip6_address" ] && ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface" ;;
esac
n=$(ls "${dir}/events" 2>/dev/null | wc -l)
mv "${dir}/events/.tmp-$$" "${dir}/events/$(printf %03d "$n")-$ev"
exit 0
`,
    { mode: 0o755 },
  );
  return script;
}

describePrivileged('DHCPv6 server and router advertisements with real clients', () => {
  let dir: string;
  let net: Dhcp6Net;
  let server: Dhcp6Server | undefined;
  let ra: RouterAdvertiser | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-dhcp6-'));
  });
  afterEach(async () => {
    await killAll();
    ra?.close();
    ra = undefined;
    await server?.close();
    server = undefined;
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(l = lease(), a = advert(), mac = BRIDGE_MAC): Promise<Dhcp6Server> {
    server = await Dhcp6Server.start({ ifname: 'br0', netns: net.pod.path, serverMac: mac, lease: l });
    ra = RouterAdvertiser.start({ ifname: 'br0', netns: net.pod.path, source: GATEWAY_LL, advert: a });
    return server;
  }

  function dhclient(extraConf = '') {
    const conf = path.join(dir, 'dhclient6.conf');
    fs.writeFileSync(conf, DHCLIENT_CONF + extraConf);
    const args = [
      '-d',
      '-6',
      '-v',
      '-cf',
      conf,
      '-sf',
      hook(dir),
      '-lf',
      path.join(dir, 'lease6'),
      '-pf',
      path.join(dir, 'pid6'),
    ];
    return spawnIn(net.guest, 'dhclient', [...args, 'eth0']);
  }

  it('the kernel takes the default route via the pod gateway, the MTU and the on-link prefix from the RA', async () => {
    net = makeDhcp6Net(ADDR);
    await start(lease(), advert({ onLink: [{ prefix: ADDR, prefixLen: 64 }] }));
    net.guest.sh('sysctl -qw net.ipv6.conf.eth0.accept_ra=1');
    net.guest.ip('link', 'set', 'eth0', 'down');
    net.guest.ip('link', 'set', 'eth0', 'up'); // sends a Router Solicitation
    const st = await waitFor('a default route from the RA', () => {
      const s = guest6State(net.guest);
      return s.routes.some((r) => r.startsWith('default')) ? s : undefined;
    });
    expect(st.routes).toContain('fd00:77::/64 dev eth0');
    expect(st.routes.find((r) => r.startsWith('default'))).toMatch(/^default via fe80::1 dev eth0 mtu 1450/);
    expect(st.mtu6).toBe(1450);
    expect(st.addrs).toEqual([]); // A flag clear: the address comes from DHCPv6 only
    expect(ra!.stats().solicitations).toBeGreaterThanOrEqual(1);
  });

  it('dhclient -6: the address, DNS and search; with the RA default route the guest reaches a peer via the real gateway', async () => {
    if (!which('dhclient')) throw new Error('dhclient is not installed (apt-get install isc-dhcp-client)');
    net = makeDhcp6Net(ADDR);
    const s = await start();
    const p = dhclient();
    const bound = await waitFor('BOUND6', () => readEvents(dir).find((e) => e.name === 'BOUND6'), 20_000, p.output);
    expect(bound.env).toMatchObject({
      new_ip6_address: ADDR,
      new_dhcp6_name_servers: 'fd00:96::a',
      new_dhcp6_domain_search: 'svc.cluster.local. cluster.local.',
      new_max_life: '3600',
      new_preferred_life: '3600',
    });
    expect(s.stats()).toMatchObject({ solicit: 1, advertise: 1, request: 1, reply: 1 });
    await waitFor('a default route', () =>
      guest6State(net.guest).routes.find((r) => r.startsWith('default via fe80::1')),
    );
    expect(guest6State(net.guest)).toMatchObject({ addrs: [`${ADDR}/128`], mtu6: 1450 });
    expect(net.guest.exec('busybox', ['ping', '-6', '-c', '1', '-W', '5', PEER])).toContain('1 packets received');
  });

  it('dhclient -6 with rapid commit: one SOLICIT, one committing REPLY', async () => {
    net = makeDhcp6Net(ADDR);
    const s = await start();
    const p = dhclient('send dhcp6.rapid-commit;\n');
    await waitFor('BOUND6', () => readEvents(dir).find((e) => e.name === 'BOUND6'), 20_000, p.output);
    expect(s.stats()).toMatchObject({ solicit: 1, advertise: 0, request: 0, reply: 1 });
  });

  it('dhclient -6 renews at T1', async () => {
    net = makeDhcp6Net(ADDR);
    const s = await start(lease({ leaseTime: 10 }));
    const p = dhclient();
    await waitFor('BOUND6', () => readEvents(dir).find((e) => e.name === 'BOUND6'), 20_000, p.output);
    const renew = await waitFor('RENEW6', () => readEvents(dir).find((e) => e.name === 'RENEW6'), 20_000, p.output);
    expect(renew.env).toMatchObject({ new_ip6_address: ADDR, new_max_life: '10' });
    expect(s.stats().renew).toBeGreaterThanOrEqual(1);
  });

  it('dhclient -6 rebinds at T2 when its RENEWs are dropped', async () => {
    net = makeDhcp6Net(ADDR);
    const s = await start(lease({ leaseTime: 30 }));
    const p = dhclient();
    await waitFor('BOUND6', () => readEvents(dir).find((e) => e.name === 'BOUND6'), 20_000, p.output);
    // drop RENEW (type 5) at the server: the client must fall back to REBIND (type 6) at T2 (24 s)
    net.pod.sh(
      'nft add table ip6 twt; nft add chain ip6 twt in "{ type filter hook input priority 0; }"; ' +
        'nft add rule ip6 twt in udp dport 547 @th,64,8 5 counter drop',
    );
    const rebind = await waitFor('REBIND6', () => readEvents(dir).find((e) => e.name === 'REBIND6'), 40_000, p.output);
    expect(rebind.env.new_ip6_address).toBe(ADDR);
    expect(net.pod.sh('nft list chain ip6 twt in')).toMatch(/counter packets [1-9]/);
    expect(s.stats()).toMatchObject({ renew: 0, rebind: 1 });
  }, 60_000);

  it('a restarted server (same bridge MAC, so same DUID) answers the RENEW NoBinding, and the client re-requests', async () => {
    net = makeDhcp6Net(ADDR);
    await start(lease({ leaseTime: 10 }));
    const p = dhclient();
    await waitFor('BOUND6', () => readEvents(dir).find((e) => e.name === 'BOUND6'), 20_000, p.output);
    ra!.close();
    await server!.close();
    const s2 = await start(lease({ leaseTime: 10 }));
    await waitFor('a REQUEST after NoBinding', () => s2.stats().request >= 1 || undefined, 20_000, p.output);
    expect(s2.stats().noBinding).toBeGreaterThanOrEqual(1);
    expect(guest6State(net.guest).addrs).toEqual([`${ADDR}/128`]);
  });

  it('a server with another DUID ignores the RENEW naming the old one; the REBIND reaches it and is bound', async () => {
    net = makeDhcp6Net(ADDR);
    await start(lease({ leaseTime: 10 }));
    const p = dhclient();
    await waitFor('BOUND6', () => readEvents(dir).find((e) => e.name === 'BOUND6'), 20_000, p.output);
    ra!.close();
    await server!.close();
    const s2 = await start(lease({ leaseTime: 10 }), advert(), '02:54:77:00:00:99');
    await waitFor('REBIND answered', () => s2.stats().rebind >= 1 && s2.stats().reply >= 1, 30_000, p.output);
    expect(s2.stats().otherServer).toBeGreaterThanOrEqual(1);
    expect(s2.stats().bindings.map((b) => b.state)).toEqual(['bound']);
  });

  it('survives hostile input: malformed DHCPv6, relay messages and a solicitation flood are counted, and a real client is still served', async () => {
    net = makeDhcp6Net(ADDR);
    const s = await start();
    // from the guest's side: garbage, a truncated option, a relay message, then 2000 RSs
    const script = [
      'import socket, random',
      's = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)',
      "s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'eth0')",
      "idx = socket.if_nametoindex('eth0')",
      // garbage from a fixed seed (the same every run), led by an unknown message type so that
      // it is never a relay message by chance: exactly one relay message is sent
      'junk = [bytes([255])[:n] + random.Random(n).randbytes(max(n - 1, 0)) for n in (0, 1, 3, 5, 64, 1400)]',
      'for p in junk + [bytes([1,0,0,0,0,1,0,200,1]), bytes([12]+[0]*40)]:',
      "    s.sendto(p, ('ff02::1:2', 547, 0, idx))",
      'r = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)',
      'r.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)',
      'for i in range(2000):',
      "    r.sendto(bytes([133, 0, 0, 0, 0, 0, 0, 0]), ('ff02::2', 0, 0, idx))",
    ].join('\n');
    net.guest.exec('python3', ['-c', script]);
    await waitFor('the malformed messages counted', () =>
      s.stats().decodeErrors + s.stats().relay >= 8 ? true : undefined,
    );
    expect(s.stats()).toMatchObject({ relay: 1, internalErrors: 0, advertise: 0 });
    await waitFor(
      'the solicitations seen',
      () => (ra!.stats().solicitations >= 200 ? true : undefined),
      20_000,
      () => JSON.stringify(ra!.stats()),
    );
    // what the socket buffer held (the rest the kernel dropped), answered at most 10/s, not one per solicitation
    expect(ra!.stats().sent).toBeLessThan(60);
    // every solicitation counted once: answered (by unicast, or by the multicast advertisement due) or rate-limited
    const st = ra!.stats();
    expect(st.answered + st.rateLimited).toBe(st.solicitations);
    expect(st.answered).toBeGreaterThan(0);
    const p = dhclient();
    await waitFor('BOUND6', () => readEvents(dir).find((e) => e.name === 'BOUND6'), 20_000, p.output);
  });

  it('dhcpcd: RA (RDNSS, DNSSL, MTU, default route) and DHCPv6 address', async () => {
    if (!which('dhcpcd')) throw new Error('dhcpcd is not installed (apt-get install dhcpcd-base)');
    net = makeDhcp6Net(ADDR);
    const s = await start();
    const p = startDhcpcd(
      net.guest,
      dir,
      'ipv6only\nipv6rs\nia_na\noption dhcp6_name_servers, dhcp6_domain_search\n',
      ['-B', '-6'],
      'eth0',
    );
    const bound = await waitFor('BOUND6', () => readEvents(dir).find((e) => e.name === 'BOUND6'), 30_000, p.output);
    expect(bound.env.new_dhcp6_ia_na1_ia_addr1).toBe(ADDR);
    expect(bound.env.new_dhcp6_name_servers).toBe('fd00:96::a');
    expect(bound.env.new_dhcp6_domain_search).toBe('svc.cluster.local cluster.local');
    const raEv = await waitFor(
      'ROUTERADVERT',
      () => readEvents(dir).find((e) => e.name === 'ROUTERADVERT'),
      20_000,
      p.output,
    );
    expect(raEv.env).toMatchObject({
      nd1_from: GATEWAY_LL,
      nd1_mtu: '1450',
      nd1_rdnss1_servers: 'fd00:96::a',
      nd1_dnssl1_search: 'svc.cluster.local cluster.local',
    });
    await waitFor('the address applied', () => guest6State(net.guest).addrs.includes(`${ADDR}/128`) || undefined);
    await waitFor(
      'the default route',
      () => guest6State(net.guest).routes.find((r) => r.startsWith(`default via ${GATEWAY_LL} dev eth0`)),
      10_000,
      p.output,
    );
    expect(net.guest.exec('busybox', ['ping', '-6', '-c', '1', '-W', '5', PEER])).toContain('1 packets received');
    expect(s.stats().reply).toBeGreaterThanOrEqual(1);
  });
});
