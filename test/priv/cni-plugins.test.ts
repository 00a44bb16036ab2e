// The CNI layer with the real Debian plugins (/usr/lib/cni): bridge + host-local + portmap
// in a "node" netns the test owns (plugins run there through nsenter), loopback on its own
// list, and pod netns from createNetns(). Proves ADD/CHECK/DEL, port mappings in the node's
// iptables (nft backend), IPAM release, DEL after the pod netns is gone, and DEL after a restart.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Attachment, CniError, CniRunner, NetworkConfigList, parseConfList } from '../../src/cni';
import { createNetns, removeAllNetns, removeNetns, TestNetns } from '../helpers/netns';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const BIN = '/usr/lib/cni';
const missing =
  requireTools('nsenter', 'iptables') ?? (fs.existsSync(`${BIN}/bridge`) ? undefined : `no ${BIN}/bridge`);

function podNet(dataDir: string, net: number): NetworkConfigList {
  return parseConfList(
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'twtest',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipam: { type: 'host-local', subnet: `10.${net}.0.0/24`, dataDir, routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    }),
    'test',
  );
}

const LOOPBACK = parseConfList(
  JSON.stringify({ cniVersion: '1.0.0', name: 'cni-loopback', plugins: [{ type: 'loopback' }] }),
);

/** Outside CI a missing tool skips with the reason; in CI it fails. */
function skipOrFail(ctx: { skip: (note: string) => void }, why: string): void {
  if (inCI) throw new Error(why);
  ctx.skip(why);
}

describePrivileged('CNI with the real plugins', () => {
  let tmp: string;
  let node: TestNetns;
  let runner: CniRunner;
  let net: number;

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-cni-'));
    node = createNetns('node');
    net = 100 + Math.floor(Math.random() * 100);
    runner = new CniRunner({ binDirs: ['/opt/cni/bin', BIN], hostNetns: node.path, cacheDir: path.join(tmp, 'cache') });
  });
  afterEach(() => {
    removeAllNetns(); // node and pods: links and iptables rules go with them
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  function attachment(pod: TestNetns, id: string): Attachment {
    return {
      containerId: id,
      netns: pod.path,
      ifName: 'eth0',
      pod: { podNamespace: 'default', podName: `pod-${id}`, infraContainerId: id },
      capabilities: { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] },
    };
  }

  it('ADD, CHECK, DEL, DEL: addresses, port mapping rules and IPAM lease come and go', async (ctx) => {
    if (missing) return skipOrFail(ctx, missing);
    const pod = createNetns('pod');
    const list = podNet(path.join(tmp, 'ipam'), net);
    const a = attachment(pod, 'a1');
    await runner.add(LOOPBACK, { ...a, ifName: 'lo' });
    const r = await runner.add(list, a);
    expect(r.cniVersion).toBe('1.0.0');
    expect(r.ips).toEqual([{ address: `10.${net}.0.2/24`, gateway: `10.${net}.0.1`, interface: 2 }]);
    expect(r.interfaces![2]).toMatchObject({ name: 'eth0', sandbox: pod.path });
    expect(pod.ip('-o', 'addr', 'show', 'dev', 'eth0')).toContain(`10.${net}.0.2/24`);
    expect(pod.ip('link', 'show', 'lo')).toMatch(/UP/);
    expect(node.ip('-o', 'addr', 'show', 'dev', 'cni0')).toContain(`10.${net}.0.1/24`);
    const nat = node.exec('iptables', ['-t', 'nat', '-S']);
    expect(nat).toMatch(new RegExp(`--dport 18080 .*-j DNAT --to-destination 10\\.${net}\\.0\\.2:80`));
    expect(node.exec('nft', ['list', 'ruleset'])).toContain('dport 18080');
    expect(fs.readdirSync(path.join(tmp, 'ipam', 'twtest'))).toContain(`10.${net}.0.2`);

    // CHECK: Debian's portmap 1.1.1 fails CHECK on a v4-only pod ("could not check ipv6 dnat"),
    // so CHECK is shown on the same network without portmap, on a second pod.
    const noPortmap = { ...list, plugins: list.plugins.slice(0, 1) };
    const pod2 = createNetns('pod');
    const b = attachment(pod2, 'b1');
    await runner.add(noPortmap, b);
    await runner.check(noPortmap, b);
    await runner.del(noPortmap, b);
    await expect(runner.check(list, a)).rejects.toMatchObject({ plugin: 'portmap', command: 'CHECK' });

    await runner.del('twtest', a);
    await runner.del(LOOPBACK, { ...a, ifName: 'lo' });
    expect(pod.ip('-o', 'link', 'show')).not.toContain('eth0');
    expect(node.exec('iptables', ['-t', 'nat', '-S'])).not.toContain('18080');
    expect(fs.readdirSync(path.join(tmp, 'ipam', 'twtest'))).not.toContain(`10.${net}.0.2`);
    await runner.del('twtest', a); // no cache now: nothing to do but must not fail
    await runner.del(list, a);
  });

  it('DEL after the pod netns is gone releases the lease and the rules', async (ctx) => {
    if (missing) return skipOrFail(ctx, missing);
    const pod = createNetns('pod');
    const list = podNet(path.join(tmp, 'ipam'), net);
    const a = attachment(pod, 'gone1');
    await runner.add(list, a);
    removeNetns(pod);
    // a new runner (a restart) with only the network name
    const again = new CniRunner({ ...runner.opts });
    await again.del('twtest', a);
    expect(fs.readdirSync(path.join(tmp, 'ipam', 'twtest'))).not.toContain(`10.${net}.0.2`);
    expect(node.exec('iptables', ['-t', 'nat', '-S'])).not.toContain('18080');
    await again.del('twtest', a);
  });

  it('a failing real plugin reports its own code and message', async (ctx) => {
    if (missing) return skipOrFail(ctx, missing);
    const pod = createNetns('pod');
    const bad = parseConfList(
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'badnet',
        plugins: [{ type: 'bridge', bridge: 'cni0', ipam: { type: 'host-local', subnet: 'not-a-subnet' } }],
      }),
    );
    const err = (await runner.add(bad, attachment(pod, 'bad1')).catch((e: unknown) => e)) as CniError;
    expect(err).toBeInstanceOf(CniError);
    expect(err.plugin).toBe('bridge');
    expect(err.code).toBeGreaterThan(0);
    expect(err.msg).toMatch(/not-a-subnet|invalid CIDR/);
    // its DEL fails the same way (the config is unusable), keeping the cache entry for a retry
    await expect(runner.del(bad, attachment(pod, 'bad1'))).rejects.toMatchObject({ plugin: 'bridge', command: 'DEL' });
    expect(fs.readdirSync(path.join(tmp, 'cache'))).toEqual(['badnet-bad1-eth0']);
  });
});
