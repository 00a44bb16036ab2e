// The DHCP server against dhcpcd 9 in a client netns. dhcpcd keeps its lease, DUID and
// control socket at compiled-in paths (/var/lib/dhcpcd, /run/dhcpcd), so each run gets a
// private mount namespace with an empty tmpfs over /run (dhcpcd makes /run/dhcpcd in it:
// that directory exists on the host only after dhcpcd has run there once) and over
// /var/lib/dhcpcd (shipped by dhcpcd-base): nothing leaks onto the host and no stale
// lease turns the first exchange into an INIT-REBOOT. dhcpcd applies the lease itself
// (address, 121 routes; the MTU goes onto the routes); the hook only records.
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
  type DhcpNet,
} from '../fixtures/dhcp-net';
import { killAll } from '../fixtures/dhcp-procs';
import { startDhcpcd } from '../helpers/dhcpcd';
import { removeAllNetns } from '../helpers/netns';
import { describePrivileged } from '../helpers/privileged';

const CONF = `option domain_name_servers, domain_name, domain_search, host_name, classless_static_routes, interface_mtu
noarp
noipv4ll
`;

describePrivileged('dhcp server with dhcpcd', () => {
  let dir: string;
  let net: DhcpNet;
  let server: DhcpServer | undefined;

  beforeEach(() => {
    if (!which('dhcpcd')) throw new Error('dhcpcd is not installed (apt-get install dhcpcd-base)');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-dhcpcd-'));
  });
  afterEach(async () => {
    await killAll();
    await server?.close();
    server = undefined;
    removeAllNetns(); // also kills dhcpcd's privilege-separated helpers left in the client netns
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(lease = makeLease()): Promise<DhcpServer> {
    net = makeDhcpNet(lease);
    server = await DhcpServer.start({ ifname: 'br0', netns: net.server.path, serverId: SERVER_ID, leases: [lease] });
    return server;
  }

  function dhcpcd(...flags: string[]) {
    return startDhcpcd(net.client, dir, CONF, [...flags, '-4'], 'eth0');
  }

  it('applies the whole lease (dhcpcd -B -1 -4): address, mask, 121 routes incl. default, MTU, DNS, search, hostname', async () => {
    const s = await start();
    const p = dhcpcd('-B', '-1');
    const bound = await waitFor(
      'dhcpcd BOUND',
      () => readEvents(dir).find((e) => e.name === 'BOUND'),
      20_000,
      p.output,
    );
    expect(bound.env).toMatchObject({
      new_ip_address: '10.77.0.5',
      new_subnet_cidr: '24',
      new_subnet_mask: '255.255.255.0',
      new_routers: '10.77.0.1',
      new_classless_static_routes:
        '169.254.254.2/32 0.0.0.0 10.77.0.1/32 0.0.0.0 10.96.0.0/12 10.77.0.1 0.0.0.0/0 10.77.0.1',
      new_domain_name_servers: '10.96.0.10 10.96.0.11',
      new_domain_search: 'default.svc.cluster.local svc.cluster.local cluster.local',
      new_domain_name: 'cluster.local',
      new_host_name: 'pod-a',
      new_interface_mtu: '1450',
      new_dhcp_server_identifier: SERVER_ID,
      new_dhcp_lease_time: '3600',
      new_dhcp_renewal_time: '1800',
      new_dhcp_rebinding_time: '3150',
    });
    await p.exited;
    const st = clientState(net.client);
    expect(st.addrs).toEqual(['10.77.0.5/24']);
    expect(st.routes).toEqual(
      expect.arrayContaining([
        'default via 10.77.0.1 dev eth0 src 10.77.0.5 mtu 1450',
        '10.77.0.1 dev eth0 scope link src 10.77.0.5 mtu 1450',
        '10.96.0.0/12 via 10.77.0.1 dev eth0 src 10.77.0.5 mtu 1450',
        '169.254.254.2 dev eth0 scope link src 10.77.0.5 mtu 1450',
      ]),
    );
    expect(s.stats()).toMatchObject({ requestSelecting: 1, ack: 1, nak: 0 });
  });

  it('renews by unicast at T1, then rebinds by broadcast at T2 while unicast to the server is dropped', async () => {
    const s = await start(makeLease({ leaseTime: 30, renewalTime: 3, rebindingTime: 12 }));
    const p = dhcpcd('-B');
    await waitFor('BOUND', () => readEvents(dir).find((e) => e.name === 'BOUND'), 20_000, p.output);
    net.server.sh(
      'nft add table inet twt; nft add chain inet twt in "{ type filter hook input priority 0; }"; ' +
        'nft add rule inet twt in ip saddr 10.77.0.5 ip daddr 169.254.254.2 udp dport 67 counter',
    );
    const renew = await waitFor('RENEW at T1', () => readEvents(dir).find((e) => e.name === 'RENEW'), 20_000);
    expect(renew.env.new_ip_address).toBe('10.77.0.5');
    expect(net.server.sh('nft list chain inet twt in')).toMatch(/counter packets [1-9]/);

    net.client.sh(
      'nft add table inet twt; nft add chain inet twt out "{ type filter hook output priority 0; }"; ' +
        'nft add rule inet twt out ip daddr 169.254.254.2 udp dport 67 counter drop',
    );
    const rebind = await waitFor('REBIND at T2', () => readEvents(dir).find((e) => e.name === 'REBIND'), 30_000).catch(
      (e: unknown) => {
        throw new Error(`${String(e)}\n${p.output()}`);
      },
    );
    expect(rebind.env.new_ip_address).toBe('10.77.0.5');
    expect(s.stats()).toMatchObject({ nak: 0 });
    expect(s.stats().requestRenewOrRebind).toBeGreaterThanOrEqual(2);
  });
});
