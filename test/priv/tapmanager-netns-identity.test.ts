// A netnsPath is a name, and what it names can change: a pod's pinned netns deleted and
// made again under the same name for another pod, a symlink swapped while a setup runs.
// A sandbox belongs to the namespace that was at its path when it was set up (its
// SO_NETNS_COOKIE is in the record), and a setup works in the namespace it opened first.
// Found by the review of issue 14: the first sandbox's key fetched the second pod's tap,
// and its teardown released the second pod's veth from its bridge, gave it the first pod's
// MAC, address and routes, and deleted its fence; a symlink swapped mid-setup to the
// daemon's own netns got that netns's uplink stripped and bridged.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { closeFd, tapInfo } from '../../src/native';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { createLogger } from '../../src/util/log';
import { fetchFds } from '../../src/vmwrapper/fetch';
import { killDaemon, killDaemons, startDaemon, stopDaemon } from '../helpers/daemon';
import { ipDump, settledDump } from '../helpers/ip-dump';
import { createNetns, removeAllNetns, removeNetns, TestNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('a sandbox keeps to the network namespace it was set up in', () => {
  let dir: string;
  const remade: string[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-nsid-'));
  });
  afterEach(async () => {
    await killDaemons();
    for (const name of remade.splice(0)) removeNetns(name);
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const records = (): string[] => fs.readdirSync(path.join(dir, 'state', 'sandboxes'));
  const tables = (ns: TestNetns): string => ns.exec('nft', ['list', 'tables']);
  /** links, addresses, routes and nft tables, the bridges' running timers masked */
  const state = (ns: TestNetns): string => `${ipDump(ns).replace(/(\w+_timer)\s+[\d.]+/g, '$1 T')}\n${tables(ns)}`;

  it('a netns made again under the same name for another pod: the first sandbox reaches nothing of it', async () => {
    const a = makePod();
    let d = await startDaemon(dir);
    const resA = await d.client.setup({ sandboxId: 'sb-old', netnsPath: a.pod.path, cniResult: a.cniResult });
    // the pod goes (its runtime deletes the netns), and a new pod gets the same name
    const name = a.pod.name;
    removeNetns(a.pod);
    execFileSync('ip', ['netns', 'add', name]);
    remade.push(name);
    const again = new TestNetns(name);
    again.ip('link', 'set', 'lo', 'up');
    const b = makePod({ pod: again, net: (Number(a.ip.split('.')[1]) % 200) + 1 });
    const resB = await d.client.setup({ sandboxId: 'sb-new', netnsPath: again.path, cniResult: b.cniResult });
    expect(resB.nics[0]!.tap).toBe('tap0');
    // the new pod's own key works (first: an attach gives the tap a carrier and IPv6 its address)
    const f = fetchFds(d.fdSocket, resB.netKey);
    expect(tapInfo(f.fds[0]!).name).toBe('tap0');
    f.fds.forEach((fd) => closeFd(fd));
    await settledDump(again);
    const before = state(again);
    expect(before).toContain('table bridge tapwire');

    expect(() => fetchFds(d.fdSocket, resA.netKey)).toThrow(
      expect.objectContaining({ code: 'ENOENT', message: expect.stringMatching(/its network namespace is gone/) }),
    );
    await expect(d.client.revoke('sb-old')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(JSON.stringify(await d.client.status('sb-old'))).toContain('its network namespace is gone');
    expect(await d.client.teardown('sb-old')).toEqual({ errors: [] });
    expect(state(again)).toBe(before);

    // a restart keeps the new pod's sandbox and drops the old record
    await killDaemon(d);
    d = await startDaemon(dir);
    expect((await d.client.list()).map((s) => s.sandboxId)).toEqual(['sb-new']);
    expect(state(again)).toBe(before);
    expect(await d.client.teardown('sb-new')).toEqual({ errors: [] });
    expect(records()).toEqual([]);
    expect(tables(again)).not.toContain('tapwire');
    await stopDaemon(d);
  });

  it('a record whose netns was made again while the daemon was down is dropped at start, the new one untouched', async () => {
    const a = makePod();
    let d = await startDaemon(dir);
    await d.client.setup({ sandboxId: 'sb-down', netnsPath: a.pod.path, cniResult: a.cniResult });
    await killDaemon(d);
    const name = a.pod.name;
    removeNetns(a.pod);
    execFileSync('ip', ['netns', 'add', name]);
    remade.push(name);
    const again = new TestNetns(name);
    again.ip('link', 'set', 'lo', 'up');
    makePod({ pod: again, net: (Number(a.ip.split('.')[1]) % 200) + 1 });
    const before = await settledDump(again);
    d = await startDaemon(dir);
    expect(await d.client.list()).toEqual([]);
    expect(records()).toEqual([]);
    expect(ipDump(again)).toBe(before);
    expect(tables(again)).not.toContain('tapwire');
    await stopDaemon(d);
  });

  it('a netnsPath swapped to another namespace while the setup runs: all of it happens in the first, the other is untouched', async () => {
    const p = makePod();
    // stands in for the host's netns: an uplink called eth0 with an address and a default route
    const host = createNetns('host');
    host.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
    host.ip('addr', 'add', `${p.ip}/24`, 'dev', 'eth0');
    host.ip('link', 'set', 'eth0', 'up');
    host.ip('route', 'add', 'default', 'via', p.gw);
    const hostBefore = await settledDump(host);
    const podBefore = await settledDump(p.pod);
    const link = path.join(dir, 'netns-link');
    fs.symlinkSync(p.pod.path, link);
    const swap = (to: string): void => {
      fs.symlinkSync(to, `${link}.new`);
      fs.renameSync(`${link}.new`, link);
    };
    const store = new RecordStore(path.join(dir, 'state'));
    await store.init();
    const mgr = new SandboxManager({
      store,
      log: createLogger('tapmanager', () => undefined),
      onStep: (step) => {
        if (step === 'setup.planned') swap(host.path);
      },
    });
    try {
      const cniResult = {
        ...p.cniResult,
        interfaces: [p.cniResult.interfaces![0]!, { ...p.cniResult.interfaces![1]!, sandbox: link }],
      };
      const res = await mgr.setup({ sandboxId: 'sb-swap', netnsPath: link, cniResult });
      expect(res.nics[0]!.tap).toBe('tap0');
      expect(p.pod.ip('-o', 'link', 'show', 'tap0')).toContain('master br0');
      expect(tables(p.pod)).toContain('tapwire');
      expect(ipDump(host)).toBe(hostBefore);
      expect(tables(host)).not.toContain('tapwire');
      // the path back where it was: the teardown restores the pod exactly
      swap(p.pod.path);
      expect(await mgr.teardown('sb-swap')).toEqual({ errors: [] });
      expect(ipDump(p.pod)).toBe(podBefore);
      expect(ipDump(host)).toBe(hostBefore);
      expect(records()).toEqual([]);
    } finally {
      await mgr.close();
    }
  });
});
