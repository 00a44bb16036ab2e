// Orphan GC when the real daemon (dist) starts: a record whose netns is gone is removed,
// and bridges/taps marked tapwire:<scope>:<sandboxId> (ifalias) whose sandbox has no
// record are deleted, a log line each, in record netns and in --netns-dir; unmarked
// links, links of another kind, and links marked by another state dir's scope stay. An
// orphaned masquerade sandbox (dual-stack) leaves no NAT table and forwarding of both
// families as its setup found it (the tables' comments say what that was).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { linkMark, markScope } from '../../src/tapmanager/link-mark';
import { killDaemon, killDaemons, startDaemon, stopDaemon, type LogLine } from '../helpers/daemon';
import { settledDump, ipDump } from '../helpers/ip-dump';
import { createNetns, removeAllNetns, removeNetns, type TestNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { describePrivileged } from '../helpers/privileged';

const linkNames = (ns: TestNetns): string[] =>
  ns
    .ip('-o', 'link', 'show')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(': ')[1]!.split('@')[0]!)
    .sort();

describePrivileged('tapmanager orphan GC at start', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-orphan-'));
  });
  afterEach(async () => {
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const records = (): string[] => fs.readdirSync(path.join(dir, 'state', 'sandboxes')).sort();
  /** pins ns into the daemon's --netns-dir (a symlink: the scan follows it to the nsfs file) */
  const pinned = (ns: TestNetns): string => path.join(dir, 'netns', ns.name);
  const pin = (ns: TestNetns): void => {
    fs.mkdirSync(path.join(dir, 'netns'), { recursive: true });
    fs.symlinkSync(ns.path, pinned(ns));
  };

  it('removes a record whose netns is gone, with a log line, and keeps the others', async () => {
    const gone = makePod();
    const kept = makePod();
    const d = await startDaemon(dir);
    await d.client.setup({ sandboxId: 'sb-gone', netnsPath: gone.pod.path, cniResult: gone.cniResult });
    await d.client.setup({ sandboxId: 'sb-kept', netnsPath: kept.pod.path, cniResult: kept.cniResult });
    await killDaemon(d);
    removeNetns(gone.pod);
    removeNetns(gone.node);
    const r = await startDaemon(dir);
    expect(r.logs()).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'orphan record: netns is gone; removing it',
        sandboxId: 'sb-gone',
        netnsPath: gone.pod.path,
      }),
    );
    expect(await r.client.list()).toEqual([expect.objectContaining({ sandboxId: 'sb-kept', state: 'ready' })]);
    expect(records()).toEqual(['sb-kept.json']);
    expect(await r.client.teardown('sb-kept')).toEqual({ errors: [] });
    await stopDaemon(r);
  });

  it('deletes marked bridges/taps no record owns, and nothing else', async () => {
    const keep = makePod();
    const lost = makePod();
    const stray = createNetns('stray'); // referenced by no record, found through --netns-dir
    const hidden = createNetns('hidden'); // in no record and not pinned: never scanned
    for (const ns of [keep.pod, lost.pod, stray]) pin(ns);
    const beforeKeep = await settledDump(keep.pod);
    const d = await startDaemon(dir);
    await d.client.setup({ sandboxId: 'sb-keep', netnsPath: keep.pod.path, cniResult: keep.cniResult });
    await d.client.setup({ sandboxId: 'sb-lost', netnsPath: lost.pod.path, cniResult: lost.cniResult });
    const mark = (id: string): string => linkMark(markScope(path.join(dir, 'state', 'sandboxes')), id);
    expect(keep.pod.ip('-d', 'link', 'show', 'br0')).toContain(`alias ${mark('sb-keep')}`);
    expect(keep.pod.ip('-d', 'link', 'show', 'tap0')).toContain(`alias ${mark('sb-keep')}`);
    await killDaemon(d);
    fs.rmSync(path.join(dir, 'state', 'sandboxes', 'sb-lost.json')); // the record is lost
    keep.pod.ip('link', 'set', 'tap0', 'alias', ''); // as built before links were marked: repaired at start

    // what must stay: unmarked bridge and tap, a bridge of another scope, a marked veth
    lost.pod.ip('link', 'add', 'br9', 'type', 'bridge');
    lost.pod.ip('tuntap', 'add', 'tap9', 'mode', 'tap');
    lost.pod.ip('link', 'add', 'brx', 'type', 'bridge');
    lost.pod.ip('link', 'set', 'brx', 'alias', 'tapwire:00000000:sb-lost');
    lost.pod.ip('link', 'add', 'vx', 'type', 'veth', 'peer', 'name', 'vy');
    lost.pod.ip('link', 'set', 'vx', 'alias', mark('sb-ghost'));
    // what must go: marked bridge and tap in a netns no record references
    for (const ns of [stray, hidden]) {
      ns.ip('link', 'add', 'brz', 'type', 'bridge');
      ns.ip('link', 'set', 'brz', 'alias', mark('sb-ghost'));
      ns.ip('tuntap', 'add', 'tapz', 'mode', 'tap');
      ns.ip('link', 'set', 'tapz', 'alias', mark('sb-ghost'));
    }

    const r = await startDaemon(dir);
    const gc = r
      .logs()
      .filter((l: LogLine) => l.msg === 'orphan link: no record owns it; deleted')
      .map((l) => `${String(l.netnsPath)} ${String(l.link)} ${String(l.kind)} ${String(l.sandboxId)}`)
      .sort();
    expect(gc).toEqual(
      [
        `${pinned(lost.pod)} br0 bridge sb-lost`,
        `${pinned(lost.pod)} tap0 tun sb-lost`,
        `${pinned(stray)} brz bridge sb-ghost`,
        `${pinned(stray)} tapz tun sb-ghost`,
      ].sort(),
    );
    expect(r.logs()).toContainEqual(
      expect.objectContaining({
        msg: 'orphan fence: no record references this netns; removed',
        netnsPath: pinned(lost.pod),
      }),
    );
    expect(linkNames(lost.pod)).toEqual(['br9', 'brx', 'eth0', 'lo', 'tap9', 'vx', 'vy']);
    expect(lost.pod.ip('-o', 'link', 'show', 'eth0')).not.toContain('master'); // released, left stripped
    expect(lost.pod.exec('nft', ['list', 'tables'])).not.toContain('tapwire');
    expect(linkNames(stray)).toEqual(['lo']);
    expect(linkNames(hidden)).toEqual(['brz', 'lo', 'tapz']);
    expect(linkNames(keep.pod)).toEqual(['br0', 'eth0', 'lo', 'tap0']);
    expect(await r.client.status('sb-keep')).toMatchObject({
      state: 'ready',
      drift: [`tap0 was not marked ${mark('sb-keep')}: marked`],
    });
    expect(keep.pod.ip('-d', 'link', 'show', 'tap0')).toContain(`alias ${mark('sb-keep')}`);
    expect(await r.client.teardown('sb-keep')).toEqual({ errors: [] });
    expect(ipDump(keep.pod)).toBe(beforeKeep);
    await stopDaemon(r);
  });

  it('an orphaned dual-stack masquerade sandbox: NAT tables removed, forwarding of both families put back as found', async () => {
    const lost = makePod({ ipv6: true });
    pin(lost.pod);
    const fwd = [
      'net.ipv4.ip_forward',
      'net.ipv6.conf.all.forwarding',
      'net.ipv6.conf.default.forwarding',
      'net.ipv6.conf.eth0.forwarding',
    ];
    lost.pod.exec('sysctl', ['-qw', ...fwd.map((k) => `${k}=0`)]);
    const before = lost.pod.exec('sysctl', fwd);
    const nftBefore = lost.pod.exec('nft', ['list', 'ruleset']);
    const d = await startDaemon(dir);
    const res = await d.client.setup({
      sandboxId: 'sb-lostmasq',
      netnsPath: lost.pod.path,
      nics: [{ name: 'default', binding: 'masquerade', podInterface: 'eth0', cniResult: lost.cniResult }],
    });
    expect(res.nics[0]!.masquerade!.ipv6).toMatchObject({ guestIp: 'fd10:0:2::2' });
    expect(lost.pod.exec('sysctl', ['-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'])).toBe('1\n1\n');
    await killDaemon(d);
    fs.rmSync(path.join(dir, 'state', 'sandboxes', 'sb-lostmasq.json')); // the record is lost

    const r = await startDaemon(dir);
    expect(r.logs()).toContainEqual(
      expect.objectContaining({
        msg: 'orphan NAT table: forwarding put back as its setup found it',
        table: 'tapwire_masq_br0',
        restored: ['ip_forward=0', 'IPv6 forwarding all=0 default=0'],
      }),
    );
    expect(lost.pod.exec('sysctl', fwd)).toBe(before);
    expect(lost.pod.exec('nft', ['list', 'ruleset'])).toBe(nftBefore);
    expect(linkNames(lost.pod)).toEqual(['eth0', 'lo']);
    await stopDaemon(r);
  });
});
