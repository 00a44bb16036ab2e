// src/net/netlink.ts against a real namespace: every verb, and errors that name what failed.
import { afterEach, expect, it } from 'vitest';
import { netnsInode, withNetns } from '../../src/native';
import {
  addressDelete,
  deleteLinkGroup,
  isNetError,
  NetlinkHandle,
  NetlinkReader,
  routeChange,
} from '../../src/net/netlink';
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

  it('batch: thousands of route and address changes in order, in bounded chunks, each with its own outcome', async () => {
    const ns = createNetns('nlb');
    ns.ip('link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
    ns.ip('link', 'set', 'd0', 'up');
    ns.ip('addr', 'add', '10.1.0.2/24', 'dev', 'd0');
    const nl = NetlinkHandle.open(ns.path);
    try {
      const oif = (await nl.link('d0'))!.index;
      const dst = (i: number) => `10.${100 + (i >> 8)}.${i & 255}.0/24`;
      const n = 3000;
      const adds = Array.from({ length: n }, (_, i) => routeChange('add', { dst: dst(i), gateway: '10.1.0.1', oif }));
      expect(await nl.batch(adds)).toEqual(Array(n).fill(undefined));
      expect(ns.ip('-4', 'route', 'show', 'proto', 'static').trim().split('\n')).toHaveLength(n);
      // an add of a route that is there: EEXIST (it never replaces another's route, and says
      // so); append keeps both; a delete of one not there: ESRCH
      const again = await nl.batch([
        routeChange('add', { dst: dst(0), gateway: '10.1.0.1', oif, metric: 0 }),
        routeChange('append', { dst: dst(1), gateway: '10.1.0.3', oif }),
        routeChange('delete', { dst: '10.99.0.0/16', oif }),
        routeChange('add', { dst: '10.98.0.0/16', gateway: '10.7.7.7', oif }),
      ]);
      expect(again.map((e) => e?.code)).toEqual(['EEXIST', undefined, 'ESRCH', 'ENETUNREACH']);
      expect(String(again[2])).toContain(`failed to delete route 10.99.0.0/16 in netns ${ns.path}: ESRCH`);
      expect(ns.ip('-4', 'route', 'show', dst(1))).toContain('10.1.0.3');
      const dels = Array.from({ length: n }, (_, i) =>
        routeChange('delete', { dst: dst(i), gateway: '10.1.0.1', oif }),
      );
      expect(await nl.batch(dels)).toEqual(Array(n).fill(undefined));
      expect(ns.ip('-4', 'route', 'show', 'proto', 'static').trim().split('\n')).toEqual([
        expect.stringMatching(new RegExp(`^${dst(1)} via 10\\.1\\.0\\.3 dev d0 `)),
      ]);
      expect(await nl.batch([addressDelete(oif, 'd0', '10.1.0.2', 24)])).toEqual([undefined]);
      expect(ns.ip('-4', 'addr', 'show', 'd0')).toBe('');
    } finally {
      nl.close();
    }
  });

  it('thousands of requests at once on a handle: its socket never overflows (that aborted the process), all answered', async () => {
    const ns = createNetns('nlo');
    ns.ip('link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
    const nl = NetlinkHandle.open(ns.path);
    try {
      expect(nl.maxInFlight).toBeGreaterThanOrEqual(1);
      const oif = (await nl.link('d0'))!.index;
      // each refused delete's error echoes the request: unbounded, 5000 overflowed the
      // receive buffer, and the netlink package's poll callback threw on the POLLERR
      const settled = await Promise.allSettled(
        Array.from({ length: 5000 }, (_, i) => nl.delRoute({ dst: `10.${i >> 8}.${i & 255}.0/24`, oif })),
      );
      expect(
        new Set(settled.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'ok'))),
      ).toEqual(new Set(['ESRCH']));
      expect((await nl.links()).map((l) => l.name)).toContain('d0');
    } finally {
      nl.close();
    }
  });

  it('dumps and changes at once on one handle: every dump is whole, every change answered', async () => {
    // a dump's parts are made as the socket is read, so acks of changes sent meanwhile
    // land between them: the netlink package took one as the dump's unterminated end (EIO)
    const ns = createNetns('nld');
    for (let i = 0; i < 40; i++) ns.ip('link', 'add', `a${i}`, 'type', 'veth', 'peer', 'name', `b${i}`);
    const nl = NetlinkHandle.open(ns.path);
    try {
      const links = await nl.links();
      const veths = links.filter((l) => /^[ab]\d+$/.test(l.name));
      for (let round = 0; round < 5; round++) {
        const work: Promise<unknown>[] = [];
        for (const l of veths) {
          work.push(nl.setLink(l.index, l.name, { mtu: 1400 + round }));
          if (l.index % 8 === 0) work.push(nl.links(), nl.routesThrough(l.index), nl.addressesOf(l.index));
        }
        const settled = await Promise.allSettled(work);
        expect(
          settled.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)),
        ).toEqual([]);
        for (const r of settled) {
          const v = (r as PromiseFulfilledResult<unknown>).value;
          if (Array.isArray(v) && v.length > 0 && 'kind' in (v[0] as object)) expect(v.length).toBe(links.length);
        }
      }
      expect(
        new Set((await nl.links()).filter((l) => veths.some((v) => v.index === l.index)).map((l) => l.mtu)),
      ).toEqual(new Set([1404]));
    } finally {
      nl.close();
    }
  });

  it('NetlinkReader reads links, addresses and routes synchronously, as the handle does; a dump too large goes to a handle', async () => {
    const ns = createNetns('nlr');
    ns.ip('link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
    ns.ip('link', 'add', 'br7', 'type', 'bridge');
    ns.ip('link', 'set', 'br7', 'alias', 'tapwire:x', 'group', '7');
    ns.ip('tuntap', 'add', 'dev', 'tap7', 'mode', 'tap');
    ns.ip('link', 'set', 'd0', 'master', 'br7', 'mtu', '1400', 'up');
    ns.ip('addr', 'add', '10.1.0.2/24', 'dev', 'd0');
    ns.ip('addr', 'add', 'fd00::2/64', 'dev', 'd0', 'nodad');
    const routes = (from: number, n: number) =>
      ns.exec(
        'ip',
        ['-batch', '-'],
        Array.from({ length: n }, (_, k) => {
          const i = from + k;
          return `route add 10.${100 + (i >> 8)}.${i & 255}.0/24 via 10.1.0.1 dev d0`;
        }).join('\n'),
      );
    routes(0, 1000);
    const nl = NetlinkHandle.open(ns.path);
    const reader = withNetns(ns.path, () => NetlinkReader.inWindow(ns.path));
    try {
      const links = reader.links();
      if (!Array.isArray(links)) throw new Error('links: not read synchronously');
      expect(links).toEqual(await nl.links());
      expect(links.find((l) => l.name === 'br7')).toMatchObject({ kind: 'bridge', alias: 'tapwire:x', group: 7 });
      expect(links.find((l) => l.name === 'd0')).toMatchObject({ kind: 'veth', mtu: 1400, up: true });
      const d0 = links.find((l) => l.name === 'd0')!.index;
      const addrs = reader.addressesOf(d0);
      expect(Array.isArray(addrs)).toBe(true);
      expect(addrs).toEqual(await nl.addressesOf(d0));
      const some = reader.routesThrough(d0);
      expect(Array.isArray(some)).toBe(true);
      expect(some).toEqual(await nl.routesThrough(d0));
      // past READER_MAX_BYTES: not read in one piece on the event loop, but by a handle, and whole
      routes(1000, 9000);
      const many = reader.routesThrough(d0);
      expect(many).toBeInstanceOf(Promise);
      expect((await many).filter((r) => r.gateway === '10.1.0.1')).toHaveLength(10000);
      expect(await reader.links()).toEqual(links); // and so is what comes after it
    } finally {
      reader.close();
      nl.close();
    }
  });
});
