// kill -9 of a ready daemon (dist) with a guest running behind the tap: a "guest" netns
// stands in for the VM (test/fixtures/tap-relay.py fetches the tap fd from the daemon's
// fd socket and relays to a veth whose peer is the guest NIC, where busybox udhcpc runs).
// The guest keeps its network while no daemon runs, renews with the restarted daemon's
// DHCP server, vmwrapper's fd fetch works again, and teardown restores the pod exactly.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { closeFd, tapInfo } from '../../src/native';
import { fetchFds } from '../../src/vmwrapper/fetch';
import { readEvents, waitFor, writeRecorder } from '../fixtures/dhcp-net';
import { killAll, spawnIn, type Proc } from '../fixtures/dhcp-procs';
import { killDaemon, killDaemons, startDaemon, stopDaemon } from '../helpers/daemon';
import { ipDump, settledDump } from '../helpers/ip-dump';
import { createNetns, removeAllNetns, type TestNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const RELAY = path.join(__dirname, '..', 'fixtures', 'tap-relay.py');
const SB = 'sb-restart';

interface DhcpStats {
  discover: number;
  ack: number;
  nak: number;
  requestRenewOrRebind: number;
  leases: { mac: string; ip: string; state: string }[];
}

describePrivileged('tapmanager kill -9 with a running guest', () => {
  const noTools = requireTools('busybox', 'python3');
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-restart-'));
  });
  afterEach(async () => {
    await killAll();
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function relay(guest: TestNetns, fdSocket: string, key: string): Promise<Proc> {
    const p = spawnIn(guest, 'python3', [RELAY, fdSocket, key, guest.path, 'grelay']);
    await waitFor('relay ready', () => p.output().includes('RELAY-READY') || p.child.exitCode !== null);
    if (!p.output().includes('RELAY-READY')) throw new Error(`tap-relay failed: ${p.output()}`);
    return p;
  }

  /** Events of one kind the hook script finished writing (a file being written has no env yet). */
  let evDir = '';
  const events = (name: string) => readEvents(evDir).filter((e) => e.name === name && e.env.interface);
  const ping = (ns: TestNetns, ip: string): string => ns.exec('busybox', ['ping', '-c', '1', '-W', '2', ip]);

  it('the guest keeps its network, renews with the restarted daemon, and vmwrapper fetches the tap again', async (ctx) => {
    if (noTools) {
      if (inCI) throw new Error(noTools);
      return ctx.skip(noTools);
    }
    const p = makePod({ ipv6: true });
    const before = await settledDump(p.pod);
    const d = await startDaemon(dir);
    const res = await d.client.setup({ sandboxId: SB, netnsPath: p.pod.path, cniResult: p.cniResult });

    // the VM: guest NIC geth0 (the pod's MAC) <-> grelay, relayed to the tap
    const guest = createNetns('guest');
    guest.ip('link', 'add', 'geth0', 'address', p.mac, 'type', 'veth', 'peer', 'name', 'grelay');
    guest.ip('link', 'set', 'grelay', 'up');
    guest.ip('link', 'set', 'geth0', 'up');
    const vm = await relay(guest, d.fdSocket, res.netKey);
    evDir = path.join(dir, 'udhcpc');
    fs.mkdirSync(evDir);
    const script = writeRecorder(evDir, 'udhcpc');
    const client = spawnIn(guest, 'busybox', [
      'udhcpc',
      '-f',
      '-i',
      'geth0',
      '-s',
      script,
      '-t',
      '20',
      '-T',
      '1',
      '-O',
      'staticroutes',
      '-O',
      'mtu',
    ]);
    const bound = await waitFor('udhcpc bound', () => events('bound')[0]);
    expect(bound.env).toMatchObject({ ip: p.ip, router: p.gw, serverid: '169.254.254.2' });
    ping(guest, p.gw);

    // kill -9: nothing of the daemon runs; the guest's path (tap, bridge, veth, fence) stays
    await killDaemon(d);
    expect(p.pod.exec('ss', ['-H', '-lun', 'sport = :67'])).toBe('');
    expect(ping(guest, p.gw)).toContain('1 packets received');

    const t0 = Date.now();
    const r = await startDaemon(dir);
    const readyMs = Date.now() - t0;
    expect(r.logs()).toContainEqual(expect.objectContaining({ msg: 'sandbox recovered', sandboxId: SB }));
    expect(await r.client.status(SB)).toMatchObject({ state: 'ready', drift: [] });
    const renewsBefore = events('renew').length;
    const t1 = Date.now();
    client.child.kill('SIGUSR1'); // renew now (unicast to 169.254.254.2), answered by the new server
    const renew = await waitFor('renew after restart', () => events('renew')[renewsBefore]);
    expect(renew.env.ip).toBe(p.ip);
    console.log(`[restart] restarted daemon ready in ${readyMs} ms; forced renewal answered in ${Date.now() - t1} ms`);
    // the restarted server answered the renewal, with no DISCOVER before it and no NAK.
    // Not how many REQUESTs it took: udhcpc waits -T (1 s) for the unicast renew's ACK,
    // then rebinds by broadcast, so a slow relay under load makes it 2 (seen once)
    const st = (await r.client.status(SB)) as { dhcp: DhcpStats[] };
    expect(st.dhcp[0]).toMatchObject({ discover: 0, nak: 0 });
    expect(st.dhcp[0]!.requestRenewOrRebind).toBeGreaterThanOrEqual(1);
    expect(st.dhcp[0]!.ack).toBeGreaterThanOrEqual(1);
    expect(st.dhcp[0]!.leases).toEqual([expect.objectContaining({ mac: p.mac, ip: p.ip, state: 'bound' })]);
    expect(ping(guest, p.gw)).toContain('1 packets received');

    // the VM restarts: vmwrapper's fetch from the restarted daemon gets the same persistent tap
    vm.child.kill('SIGKILL');
    await vm.exited;
    const f = fetchFds(r.fdSocket, res.netKey);
    try {
      expect(f.nics).toEqual([{ mac: p.mac, model: 'virtio-net-pci', queues: 1, vhost: false }]);
      expect(f.fds).toHaveLength(1);
      expect(tapInfo(f.fds[0]!)).toMatchObject({ name: 'tap0', vnetHdr: true, persist: true });
    } finally {
      f.fds.forEach((fd) => closeFd(fd));
    }
    expect(() => fetchFds(r.fdSocket, `${SB}:wrong-token`)).toThrow(expect.objectContaining({ code: 'EACCES' }));
    // and a relay (the VM again) gets the guest a fresh lease from it
    await relay(guest, r.fdSocket, res.netKey);
    const renewsAfter = events('renew').length; // a late ACK of the first renewal may have made two
    client.child.kill('SIGUSR1');
    await waitFor('second renew', () => events('renew')[renewsAfter]);

    await killAll();
    expect(await r.client.teardown(SB)).toEqual({ errors: [] });
    expect(ipDump(p.pod)).toBe(before);
    await stopDaemon(r);
  });
});
