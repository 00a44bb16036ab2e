// tapmanager's setup and teardown on real namespaces: topology, byte-for-byte
// restore, several NICs, jumbo MTU, IPv6 untouched, bad input, rollback at each step.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { LINK_GROUP } from '../../src/tapmanager/link-mark';
import { SandboxManager } from '../../src/tapmanager/sandboxes';
import { RecordStore } from '../../src/tapmanager/store';
import { silentLogger } from '../../src/util/log';
import { removeAllNetns } from '../helpers/netns';
import { makePod, podState } from '../helpers/pod';
import { dadDone } from '../helpers/ip-dump';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('tapmanager setup/teardown', () => {
  let dir: string;
  let mgr: SandboxManager;
  /** failAt: a failure injected at that point of the setup (the onStep seam, crash-points.ts) */
  const newManager = async (failAt?: string): Promise<SandboxManager> => {
    const store = new RecordStore(dir);
    await store.init();
    const onStep = (point: string): void => {
      if (point === failAt) throw new Error(`injected failure at ${point}`);
    };
    return new SandboxManager({ store, log: silentLogger, ...(failAt !== undefined ? { onStep } : {}) });
  };
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-tm-'));
    mgr = await newManager();
  });
  afterEach(async () => {
    await mgr.close();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('builds br0 + tap0 around the veth, hands the guest its MAC and restores it exactly', async () => {
    const p = makePod({ ipv6: true });
    await dadDone(p.pod, ['eth0']); // IPv6 comes back settled: compare it settled
    const before = podState(p.pod);
    const res = await mgr.setup({ sandboxId: 'sb-one', netnsPath: p.pod.path, cniResult: p.cniResult });
    expect(res.netKey).toMatch(/^sb-one:[A-Za-z0-9_-]{32}$/);
    expect(res.nics).toEqual([
      expect.objectContaining({
        veth: 'eth0',
        bridge: 'br0',
        tap: 'tap0',
        mac: p.mac,
        ip: p.ip,
        prefixLen: 24,
        gateway: p.gw,
        mtu: 1450,
      }),
    ]);
    const links = p.pod.ip('-o', '-d', 'link', 'show');
    expect(links).toMatch(/eth0@\S+: .*mtu 1450 .*master br0/);
    expect(links).toMatch(/tap0: .*mtu 1450 .*master br0/);
    expect(links).toMatch(/br0: .*mtu 1450/);
    expect(links).toContain('tun type tap');
    expect(p.pod.ip('-o', 'link', 'show', 'eth0')).not.toContain(p.mac);
    expect(p.pod.ip('-4', '-o', 'addr', 'show', 'eth0')).toBe('');
    // a bridge port speaks no IPv6: its link-local was made from the MAC the guest now has
    expect(p.pod.ip('-6', '-o', 'addr', 'show', 'eth0')).toBe('');
    expect(p.pod.sh('cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6').trim()).toBe('1');
    expect(p.pod.ip('-4', '-o', 'addr', 'show', 'br0')).toContain('169.254.254.2/24');
    expect(p.pod.ip('neigh', 'show', 'dev', 'br0')).toContain(`${p.ip} lladdr ${p.mac} PERMANENT`);
    expect(p.pod.exec('ss', ['-H', '-lun', 'sport = :67'])).toContain('%br0:67');
    expect(fs.readdirSync(path.join(dir, 'sandboxes'))).toEqual(['sb-one.json']);
    expect(fs.statSync(path.join(dir, 'sandboxes', 'sb-one.json')).mode & 0o777).toBe(0o600);

    // a repeated identical setup answers the same; a different one is refused
    expect(await mgr.setup({ sandboxId: 'sb-one', netnsPath: p.pod.path, cniResult: p.cniResult })).toEqual(res);
    await expect(
      mgr.setup({ sandboxId: 'sb-one', netnsPath: p.pod.path, cniResult: { ...p.cniResult, dns: {} } }),
    ).rejects.toMatchObject({ code: 'EEXIST', field: 'sandboxId' });

    expect(await mgr.teardown('sb-one')).toEqual({ errors: [] });
    expect(podState(p.pod)).toBe(before);
    expect(await mgr.teardown('sb-one')).toEqual({ errors: [] }); // idempotent
    expect(fs.readdirSync(path.join(dir, 'sandboxes'))).toEqual([]);
  });

  it('handles two NICs and a 9000 MTU, and restores both', async () => {
    const p = makePod({ mtu: 9000 });
    const q = makePod({
      pod: p.pod,
      node: p.node,
      ifname: 'net1',
      net: (Number(p.ip.split('.')[1]) % 200) + 1,
      mtu: 1500,
    });
    await dadDone(p.pod, ['eth0', 'net1']); // IPv6 comes back settled: compare it settled
    const before = podState(p.pod);
    const cniResult = {
      ...p.cniResult,
      interfaces: [...p.cniResult.interfaces!, ...q.cniResult.interfaces!],
      ips: [...p.cniResult.ips!, { ...q.cniResult.ips![0]!, interface: 3 }],
    };
    const res = await mgr.setup({ sandboxId: 'sb-two', netnsPath: p.pod.path, cniResult });
    expect(res.nics.map((n) => [n.veth, n.bridge, n.tap, n.mtu, n.mac])).toEqual([
      ['eth0', 'br0', 'tap0', 9000, p.mac],
      ['net1', 'br1', 'tap1', 1500, q.mac],
    ]);
    expect(p.pod.ip('-o', 'link', 'show', 'tap0')).toContain('mtu 9000');
    expect(p.pod.ip('-o', 'link', 'show', 'tap1')).toContain('master br1');
    expect(await mgr.teardown('sb-two')).toEqual({ errors: [] });
    expect(podState(p.pod)).toBe(before);
  });

  it('refuses bad input with errors naming the field and value, touching nothing', async () => {
    const p = makePod();
    await dadDone(p.pod, ['eth0']); // IPv6 comes back settled: compare it settled
    const before = podState(p.pod);
    const base = { sandboxId: 'sb-bad', netnsPath: p.pod.path, cniResult: p.cniResult };
    await expect(
      mgr.setup({ ...base, cniResult: { ...p.cniResult, ips: [{ address: 'fd00::5/64' }] } }),
    ).rejects.toMatchObject({
      code: 'EINVAL',
      field: 'cniResult.ips',
    });
    const wrongIf = {
      ...p.cniResult,
      interfaces: [{ name: 'eth9', sandbox: p.pod.path }],
      ips: [{ address: `${p.ip}/24`, interface: 0 }],
    };
    await expect(mgr.setup({ ...base, cniResult: wrongIf })).rejects.toMatchObject({
      code: 'EINVAL',
      field: 'cniResult.interfaces[0].name',
      message: expect.stringContaining('"eth9"'),
    });
    await expect(mgr.setup({ ...base, netnsPath: '/etc/hostname' })).rejects.toMatchObject({
      code: 'EINVAL',
      field: 'netnsPath',
      message: expect.stringContaining('"/etc/hostname"'),
    });
    await expect(mgr.setup({ ...base, sandboxId: '../x' })).rejects.toMatchObject({ field: 'sandboxId' });
    const longIf = {
      ...p.cniResult,
      interfaces: [{ name: 'a-very-long-ifname', sandbox: p.pod.path }],
      ips: [{ address: `${p.ip}/24`, interface: 0 }],
    };
    await expect(mgr.setup({ ...base, cniResult: longIf })).rejects.toMatchObject({
      field: 'cniResult.interfaces[0].name',
    });
    await expect(mgr.setup({ ...base, cniResult: { cniVersion: '0.2.0', ips: [] } })).rejects.toMatchObject({
      field: 'cniResult.cniVersion',
    });
    expect(podState(p.pod)).toBe(before);
    expect(mgr.list()).toEqual([]);
  });

  for (const step of ['setup.nl1', 'setup.built', 'setup.fenced', 'setup.dhcp']) {
    it(`rolls back to the snapshot when setup fails at ${step}`, async () => {
      await mgr.close();
      mgr = await newManager(step);
      const p = makePod({ ipv6: true });
      await dadDone(p.pod, ['eth0']); // IPv6 comes back settled: compare it settled
      const before = podState(p.pod);
      await expect(
        mgr.setup({ sandboxId: `sb-fail${step}`, netnsPath: p.pod.path, cniResult: p.cniResult }),
      ).rejects.toThrow(/injected failure/);
      expect(podState(p.pod)).toBe(before);
      expect(p.pod.exec('ss', ['-H', '-lun', 'sport = :67'])).toBe('');
      expect(fs.readdirSync(path.join(dir, 'sandboxes'))).toEqual([]);
    });
  }

  it('puts its taps and bridges in the tapwire link group and deletes them in one batch; a foreign link in that group makes it delete one by one and spare the stranger', async () => {
    const p = makePod();
    await dadDone(p.pod, ['eth0']); // IPv6 comes back settled: compare it settled
    const before = podState(p.pod);
    await mgr.setup({ sandboxId: 'sb-grp', netnsPath: p.pod.path, cniResult: p.cniResult });
    const group = `group ${LINK_GROUP}`;
    for (const l of ['tap0', 'br0']) expect(p.pod.ip('-o', '-d', 'link', 'show', l)).toContain(group);
    expect(p.pod.ip('-o', '-d', 'link', 'show', 'eth0')).not.toContain(group);
    expect(await mgr.teardown('sb-grp')).toEqual({ errors: [] });
    expect(podState(p.pod)).toBe(before);

    await mgr.setup({ sandboxId: 'sb-grp', netnsPath: p.pod.path, cniResult: p.cniResult });
    p.pod.ip('link', 'add', 'stranger0', 'type', 'bridge');
    p.pod.ip('link', 'set', 'stranger0', 'group', String(LINK_GROUP));
    expect(await mgr.teardown('sb-grp')).toEqual({ errors: [] });
    expect(p.pod.ip('-o', '-d', 'link', 'show', 'stranger0')).toContain(group);
    p.pod.ip('link', 'del', 'stranger0');
    expect(podState(p.pod)).toBe(before);
  });

  it('tears down a sandbox whose netns is already gone', async () => {
    const p = makePod();
    await mgr.setup({ sandboxId: 'sb-gone', netnsPath: p.pod.path, cniResult: p.cniResult });
    removeAllNetns();
    expect(await mgr.teardown('sb-gone')).toEqual({ errors: [] });
    expect(mgr.list()).toEqual([]);
  });
});
