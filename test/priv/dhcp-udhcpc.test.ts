// The DHCP server against busybox udhcpc in a client netns: the lease it applies, a
// forced unicast renewal, rebinding when unicast to the server is blocked, NAK for a wrong
// requested address.
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
  writeRecorder,
  type DhcpNet,
} from '../fixtures/dhcp-net';
import { killAll, spawnIn } from '../fixtures/dhcp-procs';
import { removeAllNetns } from '../helpers/netns';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('dhcp server with busybox udhcpc', () => {
  let dir: string;
  let net: DhcpNet;
  let server: DhcpServer | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-udhcpc-'));
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

  function udhcpc(...extra: string[]) {
    const script = writeRecorder(dir, 'udhcpc');
    return spawnIn(net.client, 'busybox', [
      'udhcpc',
      '-f',
      '-i',
      'eth0',
      '-s',
      script,
      '-t',
      '10',
      '-T',
      '1',
      '-A',
      '1',
      '-O',
      'staticroutes',
      '-O',
      'mtu',
      '-O',
      'search',
      '-O',
      'hostname',
      '-O',
      'domain',
      ...extra,
    ]);
  }

  it('applies the whole lease: address, mask, 121 routes incl. default, MTU, DNS, search, hostname', async () => {
    const s = await start();
    const p = udhcpc();
    const bound = await waitFor('udhcpc bound', () => readEvents(dir).find((e) => e.name === 'bound'));
    expect(bound.env).toMatchObject({
      ip: '10.77.0.5',
      mask: '24',
      subnet: '255.255.255.0',
      router: '10.77.0.1',
      dns: '10.96.0.10 10.96.0.11',
      search: 'default.svc.cluster.local svc.cluster.local cluster.local',
      domain: 'cluster.local',
      hostname: 'pod-a',
      mtu: '1450',
      serverid: SERVER_ID,
      lease: '3600',
      staticroutes: '169.254.254.2/32 0.0.0.0 10.77.0.1/32 0.0.0.0 10.96.0.0/12 10.77.0.1 0.0.0.0/0 10.77.0.1',
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
    expect(s.stats()).toMatchObject({ discover: 1, offer: 1, requestSelecting: 1, ack: 1, decodeErrors: 0 });
    expect(s.stats().leases).toEqual([
      expect.objectContaining({ mac: net.lease.mac, ip: '10.77.0.5', state: 'bound' }),
    ]);
    expect(p.output()).toContain('lease of 10.77.0.5 obtained');
  });

  it('a forced renewal (SIGUSR1) is unicast to 169.254.254.2 over the on-link /32 and ACKed', async () => {
    const s = await start();
    const p = udhcpc();
    await waitFor('bound', () => readEvents(dir).find((e) => e.name === 'bound'));
    // count what reaches the server from the client's address, i.e. unicast from a configured client
    net.server.sh(
      'nft add table inet twt; nft add chain inet twt in "{ type filter hook input priority 0; }"; ' +
        'nft add rule inet twt in ip saddr 10.77.0.5 ip daddr 169.254.254.2 udp dport 67 counter',
    );
    p.child.kill('SIGUSR1');
    const renew = await waitFor('renew', () => readEvents(dir).find((e) => e.name === 'renew'));
    expect(renew.env.ip).toBe('10.77.0.5');
    expect(s.stats()).toMatchObject({ requestRenewOrRebind: 1, ack: 2, nak: 0 });
    expect(net.server.sh('nft list chain inet twt in')).toMatch(/counter packets [1-9]/);
    expect(clientState(net.client).addrs).toEqual(['10.77.0.5/24']);
  });

  it('rebinds by broadcast when unicast to the server is blocked, and gets an ACK', async () => {
    const s = await start(makeLease({ leaseTime: 12, renewalTime: 3, rebindingTime: 8 }));
    udhcpc();
    await waitFor('bound', () => readEvents(dir).find((e) => e.name === 'bound'));
    net.client.sh(
      'nft add table inet twt; nft add chain inet twt out "{ type filter hook output priority 0; }"; ' +
        'nft add rule inet twt out ip daddr 169.254.254.2 udp dport 67 counter drop',
    );
    const renew = await waitFor('renew after T2', () => readEvents(dir).find((e) => e.name === 'renew'), 30_000);
    expect(renew.env.ip).toBe('10.77.0.5');
    expect(net.client.sh('nft list chain inet twt out')).toMatch(/counter packets [1-9]/); // T1 unicasts were dropped
    expect(s.stats().requestRenewOrRebind).toBeGreaterThanOrEqual(1);
    expect(s.stats().nak).toBe(0);
  });

  it('NAKs a wrong requested address (-r) and then leases the right one', async () => {
    const s = await start();
    udhcpc('-r', '10.77.0.99');
    const bound = await waitFor('bound', () => readEvents(dir).find((e) => e.name === 'bound'));
    expect(bound.env.ip).toBe('10.77.0.5');
    const st = s.stats();
    // udhcpc puts -r into its DISCOVER; the server offers the lease address anyway
    expect(st.offer).toBeGreaterThanOrEqual(1);
    expect(st.ack).toBe(1);
  });

  it('does not answer a foreign MAC', async () => {
    const s = await start();
    net.client.ip('link', 'set', 'eth0', 'address', '02:00:00:00:00:99');
    const p = udhcpc('-t', '2', '-n');
    await p.exited;
    expect(readEvents(dir).map((e) => e.name)).not.toContain('bound');
    expect(s.stats()).toMatchObject({ offer: 0, ack: 0 });
    expect(s.stats().unknownMac).toBeGreaterThanOrEqual(2);
  });
});
