// Two pod interfaces whose routes share a kernel key (table, dst, tos, metric): a default
// route via eth0 and one via net1 (what a NAD whose CNI result has 0.0.0.0/0 leaves), the
// same subnet via both, and IPv6 default routes via both. A teardown of a `nics` sandbox
// over both restores the pod byte for byte (`ip -d` link, addr, route of every table),
// whatever order the kernel listed the routes in and whatever order the NICs are undone in:
// one NIC's restore never replaces the other interface's route.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NicRequest } from '../../src/tapmanager/protocol';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { silentLogger } from '../../src/util/log';
import { dadDone, ipDump } from '../helpers/ip-dump';
import { removeAllNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('tapmanager: routes of two pod interfaces sharing a key', () => {
  let dir: string;
  let mgr: SandboxManager;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-shr-'));
    const store = new RecordStore(dir);
    await store.init();
    mgr = new SandboxManager({ store, log: silentLogger });
  });
  afterEach(async () => {
    await mgr.close();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe.each([
    ['net1 listed after eth0 (append)', 'append', false],
    ['net1 listed before eth0 (prepend)', 'prepend', false],
    ['net1 after eth0, NICs undone net1 last', 'append', true],
    ['net1 before eth0, NICs undone net1 last', 'prepend', true],
  ] as const)('%s', (_title, how, netFirst) => {
    it('teardown restores both default routes, the shared subnet and the IPv6 routes byte for byte', async () => {
      const p = makePod({ ipv6: true });
      const second = makePod({ pod: p.pod, ifname: 'net1', ipv6: true, net: p.ip.split('.')[1] === '201' ? 202 : 201 });
      const n2 = second.ip.split('.')[1];
      const n1 = p.ip.split('.')[1];
      await dadDone(p.pod, ['eth0', 'net1']);
      p.pod.ip('route', how, 'default', 'via', second.gw, 'dev', 'net1');
      p.pod.ip('route', 'add', '10.250.0.0/16', 'via', p.gw, 'dev', 'eth0');
      p.pod.ip('route', how, '10.250.0.0/16', 'via', second.gw, 'dev', 'net1');
      p.pod.ip('-6', 'route', 'add', 'default', 'via', `fd00:${n1}::1`, 'dev', 'eth0');
      p.pod.ip('-6', 'route', 'add', 'default', 'via', `fd00:${n2}::1`, 'dev', 'net1', 'metric', '2048');
      p.pod.ip('-6', 'route', 'add', 'fd00:250::/64', 'dev', 'eth0');
      p.pod.ip('-6', 'route', 'append', 'fd00:250::/64', 'dev', 'net1');
      const before = ipDump(p.pod);
      expect(p.pod.ip('route', 'show', 'default')).toContain('dev net1');

      const eth0: NicRequest = { name: 'default', binding: 'bridge', podInterface: 'eth0', cniResult: p.cniResult };
      const net1: NicRequest = {
        name: 'blue',
        binding: 'bridge',
        podInterface: 'net1',
        cniResult: { ...second.cniResult, routes: [{ dst: '0.0.0.0/0' }] },
      };
      await mgr.setup({ sandboxId: 'sb-shr', netnsPath: p.pod.path, nics: netFirst ? [net1, eth0] : [eth0, net1] });
      expect(p.pod.ip('-4', 'route', 'show', 'default')).toBe('');
      expect(await mgr.teardown('sb-shr')).toEqual({ errors: [] });
      expect(ipDump(p.pod)).toBe(before);
    });
  });
});
