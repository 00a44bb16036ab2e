// readVethSnapshot against real namespaces: it reads the pod's interface (not a
// same-named one elsewhere), only that interface's routes from every table, and fails
// with a code and a message naming the interface and the netns.
import { afterEach, expect, it } from 'vitest';
import { readVethSnapshot, ReadVethError } from '../../src/tapmanager/plan/read-veth';
import { createNetns, removeAllNetns } from '../helpers/netns';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('readVethSnapshot', () => {
  afterEach(() => removeAllNetns());

  it('reads link, addresses and every table, for this interface only', async () => {
    const ns = createNetns('rv');
    ns.ip(
      'link',
      'add',
      'eth0',
      'mtu',
      '1234',
      'address',
      '02:11:22:33:44:55',
      'type',
      'veth',
      'peer',
      'name',
      'other',
    );
    ns.ip('link', 'set', 'eth0', 'up');
    ns.ip('link', 'set', 'other', 'up');
    ns.ip('addr', 'add', '10.5.0.2/24', 'dev', 'eth0');
    ns.ip('addr', 'add', '10.6.0.2/24', 'dev', 'other');
    ns.ip('route', 'add', '10.7.0.0/16', 'via', '10.5.0.1', 'dev', 'eth0', 'table', '2000');
    ns.ip('route', 'add', '10.8.0.0/16', 'via', '10.6.0.1', 'dev', 'other');
    const s = await readVethSnapshot(ns.path, 'eth0');
    expect(s).toMatchObject({ ifname: 'eth0', mtu: 1234, mac: '02:11:22:33:44:55', up: true });
    expect(s.ifindex).toBe(Number(ns.ip('-o', 'link', 'show', 'eth0').split(':')[0]));
    expect(s.addrs.filter((a) => a.family === 4)).toEqual([
      expect.objectContaining({ address: '10.5.0.2', prefixLen: 24, label: 'eth0', scope: 0 }),
    ]);
    const dsts = s.routes.filter((r) => r.family === 4).map((r) => `${r.table} ${r.dst}`);
    expect(dsts).toEqual(expect.arrayContaining(['2000 10.7.0.0/16', '254 10.5.0.0/24', '255 10.5.0.2/32']));
    expect(dsts.some((d) => d.includes('10.8.0.0') || d.includes('10.6.0'))).toBe(false);
  });

  it('an interface that is not there: ENODEV naming it and the netns', async () => {
    const ns = createNetns('rv');
    const e = await readVethSnapshot(ns.path, 'eth9').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ReadVethError);
    expect(e).toMatchObject({
      code: 'ENODEV',
      message: `failed to read veth "eth9" in netns ${ns.path}: no such interface`,
    });
  });

  it('a netns path that does not exist: ENOENT', async () => {
    const e = await readVethSnapshot('/run/netns/twt-no-such-netns', 'eth0').catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ENOENT' });
    expect(String((e as Error).message)).toContain('failed to read veth "eth0" in netns /run/netns/twt-no-such-netns');
  });
});
