// src/net/netlink.ts against a real namespace: every verb, and errors that name what failed.
import { afterEach, expect, it } from 'vitest';
import { netnsInode } from '../../src/native';
import { deleteLinkGroup, isNetError, NetlinkHandle } from '../../src/net/netlink';
import { createNetns, removeAllNetns } from '../helpers/netns';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('netlink handle', () => {
  afterEach(() => removeAllNetns());

  it('creates a bridge, enslaves, addresses, routes and neighbours inside the namespace', async () => {
    const ns = createNetns('nl');
    ns.ip('link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
    const nl = NetlinkHandle.open(ns.path);
    try {
      await nl.createBridge('br0', { mtu: 1400, mac: '02:00:00:00:00:01' });
      const br = (await nl.link('br0'))!;
      expect(br).toMatchObject({ name: 'br0', mtu: 1400, mac: '02:00:00:00:00:01', up: false, kind: 'bridge' });
      const d0 = (await nl.link('d0'))!;
      await nl.setLink(d0.index, 'd0', { master: br.index, mtu: 1400, mac: '02:00:00:00:00:02', up: true });
      await nl.setLink(br.index, 'br0', { up: true });
      expect(await nl.link('d0')).toMatchObject({ master: br.index, mtu: 1400, mac: '02:00:00:00:00:02', up: true });
      await nl.addAddress(br.index, 'br0', '169.254.254.2', 24);
      expect(ns.ip('-4', '-o', 'addr', 'show', 'br0')).toContain('169.254.254.2/24');
      await nl.addRoute({ dst: '10.1.0.1/32', oif: br.index, scope: 253 });
      await nl.addRoute({ dst: '10.2.0.0/16', gateway: '10.1.0.1', oif: br.index, metric: 7 });
      await nl.addRoute({ dst: '0.0.0.0/0', gateway: '10.1.0.1', oif: br.index });
      const routes = ns.ip('-4', 'route', 'show');
      expect(routes).toContain('10.1.0.1 dev br0 proto static scope link');
      expect(routes).toContain('10.2.0.0/16 via 10.1.0.1 dev br0 proto static metric 7');
      expect(routes).toContain('default via 10.1.0.1 dev br0 proto static');
      await expect(nl.addRoute({ dst: '10.1.0.1/32', oif: br.index, scope: 253 })).rejects.toSatisfy((e) =>
        isNetError(e, 'EEXIST'),
      );
      await nl.addRoute({ dst: '10.1.0.1/32', oif: br.index, scope: 253, metric: 0 }, { replace: true });
      await nl.delRoute({ dst: '10.2.0.0/16', gateway: '10.1.0.1', oif: br.index, metric: 7 });
      expect(ns.ip('-4', 'route', 'show')).not.toContain('10.2.0.0/16');
      await nl.setNeighbor(br.index, 'br0', '10.9.0.5', '02:aa:bb:cc:dd:ee');
      expect(ns.ip('neigh', 'show', 'dev', 'br0')).toContain('10.9.0.5 lladdr 02:aa:bb:cc:dd:ee PERMANENT');
      await nl.delAddress(br.index, 'br0', '169.254.254.2', 24);
      await nl.setLink(d0.index, 'd0', { master: 0 });
      expect((await nl.link('d0'))!.master).toBeUndefined();
      await nl.deleteLink(br.index, 'br0');
      expect(await nl.link('br0')).toBeUndefined();
      const err = await nl.deleteLink(br.index, 'br0').catch((e: unknown) => e);
      expect(isNetError(err, 'ENODEV')).toBe(true);
      expect(String(err)).toContain(`failed to delete link "br0" in netns ${ns.path}: ENODEV`);
    } finally {
      nl.close();
    }
  });

  it('deleteLinkGroup deletes exactly the links of one group, in one batch, off the JS thread', async () => {
    const ns = createNetns('grp');
    const host = netnsInode();
    for (const [name, group] of [
      ['br7a', '7007'],
      ['br7b', '7007'],
      ['br8', '8008'],
    ]) {
      ns.ip('link', 'add', name, 'type', 'bridge');
      ns.ip('link', 'set', name, 'group', group);
    }
    await deleteLinkGroup(ns.path, 7007);
    expect(ns.ip('-o', 'link', 'show').match(/ br\w+:/g)).toEqual([' br8:']);
    await expect(deleteLinkGroup(ns.path, 7007)).rejects.toMatchObject({
      code: 'ENODEV',
      syscall: 'RTM_DELLINK',
      netns: ns.path,
    });
    expect(() => deleteLinkGroup(ns.path, 0)).toThrow(/group must be an integer/);
    await expect(deleteLinkGroup('/etc/hostname', 1)).rejects.toMatchObject({
      code: 'EINVAL',
      notNetns: true,
    });
    expect(netnsInode()).toBe(host);
  });
});
