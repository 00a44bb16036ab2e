// A pod network whose node side reflects frames back to the pod (hairpin mode on the
// node's bridge port, as the CNI bridge plugin's hairpinMode or kubelet's hairpin-veth
// set it). The guest's own broadcast comes back through the veth carrying the guest's
// MAC; unless the fence drops it, br0 learns the guest behind the veth and every unicast
// frame to the guest (the gateway's ARP reply first) is lost.
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { applyFence, readFenceCounters } from '../../src/tapmanager/fence';
import { removeAllNetns } from '../helpers/netns';
import { describePrivileged, requireTools } from '../helpers/privileged';
import { buildSandbox, GUEST_IP, NIC, NODE_IP, Sandbox, stopAll, TABLE } from '../fixtures/fence/topology';

const missing = requireTools('nft', 'nsenter', 'busybox'); // busybox ping: iputils-ping is not always installed

describePrivileged('fence with a hairpinning pod network', () => {
  let sb: Sandbox;
  beforeEach(async () => {
    if (missing) throw new Error(missing);
    sb = await buildSandbox();
    sb.node.ip('link', 'set', 'n0', 'type', 'bridge_slave', 'hairpin', 'on');
    sb.guest.ip('addr', 'add', `${GUEST_IP}/24`, 'dev', 'g0');
  });
  afterEach(async () => {
    await stopAll();
    removeAllNetns();
  });

  const ping = (): boolean => {
    try {
      const args = ['-c', '2', '-W', '1', '-i', '0.2', NODE_IP];
      execFileSync('ip', ['netns', 'exec', sb.guest.name, 'busybox', 'ping', ...args], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  const guestPort = (): string =>
    sb.pod
      .exec('bridge', ['fdb', 'show', 'br', 'br0'])
      .split('\n')
      .find((l) => l.startsWith(NIC.guestMac)) ?? '';

  it('the guest reaches the gateway; br0 keeps the guest behind the tap; the reflections are counted', async () => {
    await applyFence(sb.pod.path, TABLE, [NIC]);
    expect(ping()).toBe(true);
    expect(guestPort()).toContain('dev tap0');
    const c = (await readFenceCounters(sb.pod.path, TABLE)).find((x) => x.name === 'nic0_in_guestmac');
    expect(c?.packets).toBeGreaterThan(0);
  });

  it('without the fence the reflection moves the guest behind the veth and the ping fails (so the test can fail)', () => {
    expect(ping()).toBe(false);
    expect(guestPort()).toContain('dev eth0');
  });
});
