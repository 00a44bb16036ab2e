// Extra networks from NetworkAttachmentDefinition files with the real Debian plugins: two
// NADs (bridge + host-local, each its own bridge and range) attached to a pod netns as
// net1 and net2 in order, detached in reverse; a NAD whose second plugin fails rolls back
// its own first plugin and the networks attached before it. Plugins run in a "node" netns
// the test owns.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { AttachError, attachNetworks, CniRunner, detachNetworks, loadNad } from '../../src/cni';
import { bridgeConflist, writeNad as writeNadFile } from '../helpers/cni-conf';
import { createNetns, removeAllNetns, TestNetns } from '../helpers/netns';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const BIN = '/usr/lib/cni';
const missing = requireTools('nsenter') ?? (fs.existsSync(`${BIN}/bridge`) ? undefined : `no ${BIN}/bridge`);

function skipOrFail(ctx: { skip: (note: string) => void }, why: string): void {
  if (inCI) throw new Error(why);
  ctx.skip(why);
}

describePrivileged('extra networks from NAD files', () => {
  let tmp: string;
  let nads: string;
  let node: TestNetns;
  let runner: CniRunner;
  let n: number;

  const bridgeConf = (name: string, br: string, subnet: string, extra: unknown[] = []) =>
    bridgeConflist(name, br, subnet, path.join(tmp, 'ipam'), { extra });
  const writeNad = (ns: string, name: string, config: unknown) => writeNadFile(nads, ns, name, config);
  const base = (pod: TestNetns, id: string) => ({
    containerId: id,
    netns: pod.path,
    pod: { podNamespace: 'ns1', podName: `pod-${id}`, infraContainerId: id },
  });
  const leases = (net: string) => {
    try {
      return fs.readdirSync(path.join(tmp, 'ipam', net)).filter((f) => /^\d/.test(f));
    } catch {
      return [];
    }
  };

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-attach-'));
    nads = path.join(tmp, 'nads');
    node = createNetns('node');
    n = 100 + Math.floor(Math.random() * 100);
    runner = new CniRunner({ binDirs: [BIN], hostNetns: node.path, cacheDir: path.join(tmp, 'cache') });
    writeNad('ns1', 'blue', bridgeConf('blue', 'br-blue', `10.${n}.1.0/24`));
    writeNad('ns1', 'red', bridgeConf('red', 'br-red', `10.${n}.2.0/24`));
  });
  afterEach(() => {
    removeAllNetns();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('attaches net1, net2 in order with their own ranges; detaches in reverse, leases released', async (ctx) => {
    if (missing) return skipOrFail(ctx, missing);
    const pod = createNetns('pod');
    const lists = ['red', 'blue'].map((name) => loadNad(nads, { namespace: 'ns1', name }));
    const got = await attachNetworks(runner, lists, base(pod, 'a1'));
    expect(got.map((g) => [g.network, g.ifName, g.result.ips?.[0]?.address])).toEqual([
      ['red', 'net1', `10.${n}.2.2/24`],
      ['blue', 'net2', `10.${n}.1.2/24`],
    ]);
    expect(pod.ip('-o', 'addr', 'show', 'dev', 'net1')).toContain(`10.${n}.2.2/24`);
    expect(pod.ip('-o', 'addr', 'show', 'dev', 'net2')).toContain(`10.${n}.1.2/24`);
    expect(node.ip('-o', 'addr', 'show', 'dev', 'br-red')).toContain(`10.${n}.2.1/24`);
    pod.exec('ping', ['-c1', '-W2', `10.${n}.1.1`]);
    pod.exec('ping', ['-c1', '-W2', `10.${n}.2.1`]);
    expect([...leases('red'), ...leases('blue')]).toHaveLength(2);

    expect(await detachNetworks(runner, got, base(pod, 'a1'))).toEqual([]);
    expect(pod.ip('-o', 'link', 'show')).not.toMatch(/net[12]/);
    expect([...leases('red'), ...leases('blue')]).toEqual([]);
    expect(fs.readdirSync(path.join(tmp, 'cache'))).toEqual([]);
    expect(await detachNetworks(runner, got, base(pod, 'a1'))).toEqual([]); // again: nothing left, no error
  });

  it('a failing NAD rolls back its own partial ADD and the networks before it', async (ctx) => {
    if (missing) return skipOrFail(ctx, missing);
    const pod = createNetns('pod');
    // tuning fails on a sysctl that does not exist, after bridge made net2 and took a lease
    writeNad(
      'ns1',
      'bad',
      bridgeConf('bad', 'br-bad', `10.${n}.3.0/24`, [
        { type: 'tuning', sysctl: { 'net.ipv4.conf.net2.nonexistent': '1' } },
      ]),
    );
    const before = pod.ip('-o', 'link', 'show');
    const lists = ['blue', 'bad'].map((name) => loadNad(nads, { namespace: 'ns1', name }));
    const err = await attachNetworks(runner, lists, base(pod, 'b1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AttachError);
    expect(err).toMatchObject({ network: 'bad', ifName: 'net2', rollbackErrors: [] });
    expect(pod.ip('-o', 'link', 'show')).toBe(before);
    expect([...leases('blue'), ...leases('bad')]).toEqual([]);
    expect(fs.readdirSync(path.join(tmp, 'cache'))).toEqual([]);
  });
});
