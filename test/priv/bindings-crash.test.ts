// kill -9 of the daemon (dist) in the middle of a setup of one sandbox with a NIC of each
// new binding (masquerade on eth0, slirp on net1 (each pod interface has one NIC), macvtap
// on the L2 interface net2): at setup.built the restart rolls everything back (NAT table
// gone, forwarding as found, macvtap deleted); at setup.ready it keeps the sandbox without
// drift and serves the masquerade NIC's DHCP; teardown leaves the pod as it was, and a
// retried setup works.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { NicRequest } from '../../src/tapmanager/protocol';
import type { SandboxStatus } from '../../src/tapmanager/sandboxes';
import { killDaemons, startDaemon, stopDaemon } from '../helpers/daemon';
import { settledDump } from '../helpers/ip-dump';
import { createNetns, removeAllNetns, vethBetween } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('the new bindings across a daemon crash', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-bcrash-'));
  });
  afterEach(async () => {
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const point of ['setup.built', 'setup.ready']) {
    it(`killed -9 at ${point}: the restart ${point === 'setup.ready' ? 'keeps and serves it' : 'rolls every NIC back'}; teardown exact`, async () => {
      const p = makePod();
      const second = makePod({ pod: p.pod, ifname: 'net1', net: p.ip.split('.')[1] === '201' ? 202 : 201 });
      const seg = createNetns('seg');
      vethBetween(seg, 'l2peer', p.pod, 'net2');
      p.pod.ip('link', 'set', 'net2', 'up');
      const before = await settledDump(p.pod);
      const state = () => ({
        nft: p.pod.exec('nft', ['list', 'ruleset']),
        fwd: p.pod.exec('sysctl', ['-n', 'net.ipv4.ip_forward']).trim(),
      });
      const was = state();
      const nics: NicRequest[] = [
        { name: 'default', binding: 'masquerade', podInterface: 'eth0', cniResult: p.cniResult, ports: [{ port: 80 }] },
        { name: 'user', binding: 'slirp', podInterface: 'net1', cniResult: second.cniResult, ports: [{ port: 22 }] },
        { name: 'seg', binding: 'macvtap', podInterface: 'net2' },
      ];
      const req = { sandboxId: 'sb-bcrash', netnsPath: p.pod.path, nics };
      const d = await startDaemon(dir, { env: { TAPWIRE_TEST_CRASH_AFTER: point } });
      await expect(d.client.setup(req)).rejects.toMatchObject({ code: expect.stringMatching(/^(EPIPE|ECONNRESET)$/) });
      expect(await d.exited).toBe('SIGKILL');
      expect(state().nft).toContain('tapwire_masq_');
      const r = await startDaemon(dir);
      if (point === 'setup.ready') {
        const s = (await r.client.status('sb-bcrash')) as SandboxStatus;
        expect(s).toMatchObject({ state: 'ready', drift: [] });
        expect(s.nics.map((n) => [n.name, n.binding])).toEqual([
          ['default', 'masquerade'],
          ['user', 'slirp'],
          ['seg', 'macvtap'],
        ]);
        expect(p.pod.exec('ss', ['-H', '-lun', 'sport = :67'])).toContain(`%${s.nics[0]!.bridge}:67`);
        expect(await r.client.teardown('sb-bcrash')).toEqual({ errors: [] });
      } else {
        expect(await r.client.list()).toEqual([]);
      }
      expect(await settledDump(p.pod)).toBe(before);
      expect(state()).toEqual(was);
      // and a retried setup works on the restarted daemon
      expect((await r.client.setup(req)).nics.map((n) => n.name)).toEqual(['default', 'user', 'seg']);
      expect(await r.client.teardown('sb-bcrash')).toEqual({ errors: [] });
      expect(await settledDump(p.pod)).toBe(before);
      expect(state()).toEqual(was);
      await stopDaemon(r);
    }, 60_000);
  }
});
