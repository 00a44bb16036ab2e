// Multiqueue taps through the real daemon (dist): a setup with queues=N builds
// IFF_MULTI_QUEUE taps, and vmwrapper's fetch over the fd socket receives N fds per NIC
// (in NIC order), before and after a kill -9 + restart; bad values name the field.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { closeFd, tapInfo } from '../../src/native';
import { fetchFds, type Fetched } from '../../src/vmwrapper/fetch';
import { killDaemon, killDaemons, startDaemon, stopDaemon } from '../helpers/daemon';
import { ipDump, settledDump } from '../helpers/ip-dump';
import { removeAllNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('tapmanager multiqueue taps', () => {
  let dir: string;
  const held: number[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-mq-'));
  });
  afterEach(async () => {
    held.splice(0).forEach((fd) => closeFd(fd));
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const fetch = (fdSocket: string, key: string): Fetched => {
    const f = fetchFds(fdSocket, key);
    held.push(...f.fds);
    return f;
  };
  const release = (f: Fetched): void => {
    for (const fd of f.fds) {
      closeFd(fd);
      held.splice(held.indexOf(fd), 1);
    }
  };

  it('queues=4: a multi_queue tap, 4 fds on the fd socket, again after kill -9 + restart', async () => {
    const p = makePod();
    const before = await settledDump(p.pod);
    const d = await startDaemon(dir);
    const res = await d.client.setup({ sandboxId: 'sb-mq', netnsPath: p.pod.path, cniResult: p.cniResult, queues: 4 });
    expect(res.nics[0]).toMatchObject({ tap: 'tap0', queues: 4, vnetHdr: true });
    expect(p.pod.ip('-d', 'link', 'show', 'tap0')).toMatch(/tun type tap .*vnet_hdr on multi_queue/);

    let f = fetch(d.fdSocket, res.netKey);
    expect(f.nics).toEqual([{ mac: p.mac, model: 'virtio-net-pci', queues: 4, vhost: false }]);
    expect(f.fds).toHaveLength(4);
    expect(new Set(f.fds).size).toBe(4);
    for (const fd of f.fds)
      expect(tapInfo(fd)).toEqual({ name: 'tap0', vnetHdr: true, multiQueue: true, persist: true });
    expect(p.pod.ip('-d', 'link', 'show', 'tap0')).toMatch(/numqueues 4\b/);
    release(f);

    await killDaemon(d);
    const r = await startDaemon(dir);
    f = fetch(r.fdSocket, res.netKey);
    expect(f.fds).toHaveLength(4);
    expect(tapInfo(f.fds[3]!)).toMatchObject({ name: 'tap0', multiQueue: true });
    release(f);

    expect(await r.client.teardown('sb-mq')).toEqual({ errors: [] });
    expect(ipDump(p.pod)).toBe(before);
    await stopDaemon(r);
  });

  it('two NICs with queues=2: four fds, the first two on tap0 and the next two on tap1', async () => {
    const p = makePod();
    const q = makePod({ pod: p.pod, node: p.node, ifname: 'net1', net: (Number(p.ip.split('.')[1]) % 200) + 1 });
    const cniResult = {
      ...p.cniResult,
      interfaces: [...p.cniResult.interfaces!, ...q.cniResult.interfaces!],
      ips: [...p.cniResult.ips!, { ...q.cniResult.ips![0]!, interface: 3 }],
    };
    const d = await startDaemon(dir);
    const res = await d.client.setup({ sandboxId: 'sb-mq2', netnsPath: p.pod.path, cniResult, queues: 2 });
    const f = fetch(d.fdSocket, res.netKey);
    expect(f.nics.map((n) => [n.mac, n.queues])).toEqual([
      [p.mac, 2],
      [q.mac, 2],
    ]);
    expect(f.fds.map((fd) => tapInfo(fd).name)).toEqual(['tap0', 'tap0', 'tap1', 'tap1']);
    release(f);
    expect(await d.client.teardown('sb-mq2')).toEqual({ errors: [] });
    await stopDaemon(d);
  });

  it('queues=1 (the default) stays a single-queue tap; bad values are refused naming the field', async () => {
    const p = makePod();
    const d = await startDaemon(dir);
    const base = { sandboxId: 'sb-q', netnsPath: p.pod.path, cniResult: p.cniResult };
    for (const queues of [0, 17, 1.5, '2', -1]) {
      await expect(d.client.setup({ ...base, queues: queues as number })).rejects.toMatchObject({
        code: 'EINVAL',
        field: 'queues',
      });
    }
    expect(await d.client.list()).toEqual([]);
    const res = await d.client.setup({ ...base, queues: 1 });
    expect(res.nics[0]!.queues).toBe(1);
    expect(p.pod.ip('-d', 'link', 'show', 'tap0')).not.toContain('multi_queue');
    const f = fetch(d.fdSocket, res.netKey);
    expect(f.fds).toHaveLength(1);
    expect(tapInfo(f.fds[0]!)).toMatchObject({ multiQueue: false });
    release(f);
    expect(await d.client.teardown('sb-q')).toEqual({ errors: [] });
    await stopDaemon(d);
  });
});
