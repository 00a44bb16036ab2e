// The fence against real DHCP software: busybox udhcpc in the guest, dnsmasq on br0 as
// the sandbox's server, and a rogue dnsmasq on the pod network behind the veth.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { applyFence, readFenceCounters } from '../../src/tapmanager/fence';
import { removeAllNetns } from '../helpers/netns';
import { describePrivileged, requireTools } from '../helpers/privileged';
import {
  BRIDGE_IP,
  buildSandbox,
  GUEST_IP,
  GUEST_MAC,
  NIC,
  NODE_IP,
  Sandbox,
  scanPcap,
  startCapture,
  startDnsmasq,
  stopAll,
  stopCapture,
  TABLE,
  udhcpc,
} from '../fixtures/fence/topology';

const missing = requireTools('nft', 'nsenter', 'tcpdump', 'python3', 'dnsmasq', 'busybox');

describePrivileged('fence (real DHCP traffic)', () => {
  let sb: Sandbox;
  let dir: string;
  beforeEach(async () => {
    if (missing) throw new Error(missing);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-fence-dhcp-'));
    sb = await buildSandbox();
  });
  afterEach(async () => {
    await stopAll();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const localServer = (): ReturnType<typeof startDnsmasq> =>
    startDnsmasq(sb.pod, 'br0', dir, 'local', [
      '--shared-network=br0,10.77.0.0',
      '--dhcp-range=10.77.0.0,static,255.255.255.0,1h',
      `--dhcp-host=${GUEST_MAC},${GUEST_IP},guest,1h`,
      `--dhcp-option=option:router,${NODE_IP}`,
    ]);
  const rogueServer = (): ReturnType<typeof startDnsmasq> =>
    startDnsmasq(sb.node, 'nbr', dir, 'rogue', ['--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h']);
  const outCounters = async (): Promise<number> =>
    (await readFenceCounters(sb.pod.path, TABLE))
      .filter((c) => c.name.startsWith('nic0_out_'))
      .reduce((a, c) => a + c.packets, 0);
  const inCounters = async (): Promise<number> =>
    (await readFenceCounters(sb.pod.path, TABLE))
      .filter((c) => c.name.startsWith('nic0_in_'))
      .reduce((a, c) => a + c.packets, 0);

  it('the guest gets its lease from the local server, and no DHCP frame reaches the node veth', async () => {
    await applyFence(sb.pod.path, TABLE, [NIC]);
    const node = await startCapture(sb.node, 'n0', path.join(dir, 'n0.pcap'));
    await rogueServer();
    await localServer();

    const lease = await udhcpc(sb.guest, 'g0');
    expect(lease).toBe(`LEASE ip=${GUEST_IP} serverid=${BRIDGE_IP}`);
    // a second client run (discover/offer/request/ack again), for good measure
    expect(await udhcpc(sb.guest, 'g0')).toBe(`LEASE ip=${GUEST_IP} serverid=${BRIDGE_IP}`);

    await new Promise((r) => setTimeout(r, 200));
    await stopCapture(node);
    const scan = scanPcap(path.join(dir, 'n0.pcap'));
    expect(scan.dhcp).toEqual([]);
    // the guest's broadcasts and the local server's broadcast replies were there to drop
    expect(await outCounters()).toBeGreaterThan(0);
    // the rogue never heard the guest
    expect(fs.readFileSync(path.join(dir, 'rogue.log'), 'utf8')).not.toContain(GUEST_MAC);
  });

  it('a rogue server on the pod network does not reach the guest (while a client beside it is served)', async () => {
    await applyFence(sb.pod.path, TABLE, [NIC]);
    const guest = await startCapture(sb.guest, 'g0', path.join(dir, 'g0.pcap'));
    const bridge = await startCapture(sb.pod, 'br0', path.join(dir, 'br0.pcap'));
    await rogueServer();

    // a client on the pod network, asking for broadcast replies: the rogue's offers and
    // acks are flooded to every port of the node bridge, the pod veth included
    const lanLease = await udhcpc(sb.lan, 'l0', ['-B']);
    expect(lanLease).toMatch(
      new RegExp(`^LEASE ip=10\\.77\\.0\\.1[0-9][0-9] serverid=${NODE_IP.replace(/\./g, '\\.')}$`),
    );
    const rogueReached = await inCounters();
    expect(rogueReached).toBeGreaterThan(0);

    // the guest asks too (no local server running): nothing answers it
    expect(await udhcpc(sb.guest, 'g0')).toBeUndefined();

    await new Promise((r) => setTimeout(r, 200));
    await stopCapture(guest);
    await stopCapture(bridge);
    // the guest received no DHCP at all; br0 saw only the guest's own discovers
    expect(scanPcap(path.join(dir, 'g0.pcap')).dhcp).toEqual([]);
    const atBridge = scanPcap(path.join(dir, 'br0.pcap')).dhcp;
    expect(atBridge.length).toBeGreaterThan(0);
    expect(atBridge.filter((d) => d.src !== GUEST_MAC)).toEqual([]);
    expect(fs.readFileSync(path.join(dir, 'rogue.log'), 'utf8')).not.toContain(GUEST_MAC);
  });

  it('without the fence the rogue does reach the guest (so the test above can fail)', async () => {
    await rogueServer();
    expect(await udhcpc(sb.guest, 'g0')).toMatch(/^LEASE ip=10\.77\.0\.1[0-9][0-9] serverid=10\.77\.0\.1$/);
  });
});
