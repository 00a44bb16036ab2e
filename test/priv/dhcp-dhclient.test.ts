// The DHCP server against ISC dhclient in a client netns (own config, -sf hook that
// records and applies, lease and pid files in a temp dir): the lease it applies, renewal
// by unicast at T1 over the on-link /32 to 169.254.254.2, rebinding by broadcast at T2
// when unicast to the server is blocked.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { DhcpServer } from '../../src/dhcp/server';
import {
  clientState,
  makeDhcpNet,
  makeLease,
  readEvents,
  SERVER_ID,
  waitFor,
  which,
  writeRecorder,
  type DhcpNet,
} from '../fixtures/dhcp-net';
import { killAll, spawnIn } from '../fixtures/dhcp-procs';
import { removeAllNetns } from '../helpers/netns';
import { describePrivileged } from '../helpers/privileged';

const CONF = `option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, domain-search,
  host-name, interface-mtu, rfc3442-classless-static-routes;
`;

describePrivileged('dhcp server with ISC dhclient', () => {
  let dir: string;
  let net: DhcpNet;
  let server: DhcpServer | undefined;

  beforeEach(() => {
    if (!which('dhclient')) throw new Error('dhclient is not installed (apt-get install isc-dhcp-client)');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-dhclient-'));
  });
  afterEach(async () => {
    await killAll();
    await server?.close();
    server = undefined;
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(lease = makeLease()): Promise<DhcpServer> {
    net = makeDhcpNet(lease);
    server = await DhcpServer.start({ ifname: 'br0', netns: net.server.path, serverId: SERVER_ID, leases: [lease] });
    return server;
  }

  function dhclient(text = CONF) {
    const conf = path.join(dir, 'dhclient.conf');
    fs.writeFileSync(conf, text);
    const script = writeRecorder(dir, 'dhclient');
    const args = [
      '-d',
      '-4',
      '-v',
      '-cf',
      conf,
      '-sf',
      script,
      '-lf',
      path.join(dir, 'lease'),
      '-pf',
      path.join(dir, 'pid'),
    ];
    return spawnIn(net.client, 'dhclient', [...args, 'eth0']);
  }

  it('applies the whole lease: address, mask, 121 routes incl. default, MTU, DNS, search, hostname', async () => {
    const s = await start();
    const p = dhclient();
    const bound = await waitFor('dhclient BOUND', () => readEvents(dir).find((e) => e.name === 'BOUND'));
    expect(bound.env).toMatchObject({
      new_ip_address: '10.77.0.5',
      new_subnet_mask: '255.255.255.0',
      new_broadcast_address: '10.77.0.255',
      new_routers: '10.77.0.1',
      new_domain_name_servers: '10.96.0.10 10.96.0.11',
      new_domain_search: 'default.svc.cluster.local. svc.cluster.local. cluster.local.',
      new_domain_name: 'cluster.local',
      new_host_name: 'pod-a',
      new_interface_mtu: '1450',
      new_dhcp_server_identifier: SERVER_ID,
      new_dhcp_lease_time: '3600',
      new_rfc3442_classless_static_routes:
        '32 169 254 254 2 0 0 0 0 32 10 77 0 1 0 0 0 0 12 10 96 10 77 0 1 0 10 77 0 1',
    });
    const st = clientState(net.client);
    expect(st.addrs).toEqual(['10.77.0.5/24']);
    expect(st.mtu).toBe(1450);
    expect(st.routes).toEqual(
      expect.arrayContaining([
        'default via 10.77.0.1 dev eth0',
        '10.77.0.1 dev eth0 scope link',
        '10.96.0.0/12 via 10.77.0.1 dev eth0',
        '169.254.254.2 dev eth0 scope link',
      ]),
    );
    expect(s.stats()).toMatchObject({ requestSelecting: 1, ack: 1, nak: 0 });
    // dhclient prints "bound to" after the hook script returns, so after the BOUND event
    await waitFor('dhclient "bound to"', () => p.output().includes('bound to 10.77.0.5') || undefined);
  });

  it('renews by unicast at T1, then rebinds by broadcast at T2 while unicast to the server is dropped', async () => {
    const s = await start(makeLease({ leaseTime: 30, renewalTime: 3, rebindingTime: 12 }));
    const p = dhclient();
    await waitFor('BOUND', () => readEvents(dir).find((e) => e.name === 'BOUND'));
    net.server.sh(
      'nft add table inet twt; nft add chain inet twt in "{ type filter hook input priority 0; }"; ' +
        'nft add rule inet twt in ip saddr 10.77.0.5 ip daddr 169.254.254.2 udp dport 67 counter',
    );
    const renew = await waitFor('RENEW at T1', () => readEvents(dir).find((e) => e.name === 'RENEW'), 20_000);
    expect(renew.env.new_ip_address).toBe('10.77.0.5');
    expect(net.server.sh('nft list chain inet twt in')).toMatch(/counter packets [1-9]/);
    expect(s.stats().requestRenewOrRebind).toBeGreaterThanOrEqual(1);

    net.client.sh(
      'nft add table inet twt; nft add chain inet twt out "{ type filter hook output priority 0; }"; ' +
        'nft add rule inet twt out ip daddr 169.254.254.2 udp dport 67 counter drop',
    );
    // ISC dhclient stays in RENEWING and reports the rebinding ACK as RENEW: what proves the
    // rebinding is that the ACK answers a broadcast sent after the unicasts were refused.
    const rebound =
      /Operation not permitted[\s\S]*DHCPREQUEST for 10\.77\.0\.5 on eth0 to 255\.255\.255\.255 port 67\s+DHCPACK of 10\.77\.0\.5/;
    await waitFor('ACK to a broadcast REQUEST at T2', () => rebound.test(p.output()), 30_000);
    await waitFor('hook after rebinding', () => readEvents(dir).filter((e) => e.name === 'RENEW').length >= 2);
    expect(readEvents(dir).at(-1)!.env.new_ip_address).toBe('10.77.0.5');
    expect(net.client.sh('nft list chain inet twt out')).toMatch(/counter packets [1-9]/);
    expect(s.stats().nak).toBe(0);
    expect(clientState(net.client).addrs).toEqual(['10.77.0.5/24']);
  });

  it("prints a VM network spec's options it asks for: NTP (42), TFTP server (66), boot file (67), a private one (224)", async () => {
    const lease = makeLease({
      ntpServers: ['10.77.0.1', '192.0.2.123'],
      tftpServerName: 'tftp.example.org',
      bootFileName: 'pxelinux.0',
      privateOptions: [
        { option: 224, value: 'hello from tapwire' },
        { option: 250, value: 'not asked for' },
      ],
    });
    await start(lease);
    // both private options defined (dhclient would print either), only 224 requested
    dhclient(
      'option tapwire-foo code 224 = text;\noption tapwire-bar code 250 = text;\n' +
        CONF.replace(/;\n$/, ',\n  ntp-servers, tftp-server-name, bootfile-name, tapwire-foo;\n'),
    );
    const bound = await waitFor('dhclient BOUND', () => readEvents(dir).find((e) => e.name === 'BOUND'));
    expect(bound.env).toMatchObject({
      new_ip_address: '10.77.0.5',
      new_ntp_servers: '10.77.0.1 192.0.2.123',
      new_tftp_server_name: 'tftp.example.org',
      new_bootfile_name: 'pxelinux.0',
      new_tapwire_foo: 'hello from tapwire',
      // the header fields too, where firmware without option support reads them
      new_filename: 'pxelinux.0',
      new_server_name: 'tftp.example.org',
    });
    // what it did not ask for is not sent (RFC 2131 4.3.1), though it knows the option
    expect(bound.env.new_tapwire_bar).toBeUndefined();
    expect(clientState(net.client).addrs).toEqual(['10.77.0.5/24']);
  });
});
