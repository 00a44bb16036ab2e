// tapwire-cri (standalone) with a VM network spec: the annotation is read in RunPodSandbox,
// a bad spec or a missing NAD fails the call before anything is built, the spec's multus
// networks (NAD files, real bridge + host-local plugins) are attached to the pod netns as
// net1, net2 in spec order, tapmanager gets one NIC per interface in spec order, the verbose
// status shows every network in Multus's network-status shape, and Stop (or a failed run)
// deletes the extra networks in reverse with the pod network. tapmanager is the fake one.
import { status } from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { removePersistentNetns } from '../../src/cri/netns';
import { SandboxService } from '../../src/cri/sandboxes';
import { CriServer } from '../../src/cri/server';
import type { NicRequest } from '../../src/cri/vm-network';
import { NETWORK_SPEC_ANNOTATION } from '../../src/spec';
import { TapmanagerError } from '../../src/tapmanager/client';
import { criClient, CriClient, FakeTapmanager, podConfig } from '../fixtures/cni/cri-harness';
import { bridgeConflist, pinnedNetnsNames, writeNad as writeNadFile } from '../helpers/cni-conf';
import { createNetns, removeAllNetns, TestNetns } from '../helpers/netns';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';

const PLUGINS = '/usr/lib/cni';
const missing =
  requireTools('nsenter', 'unshare', 'umount') ?? (fs.existsSync(`${PLUGINS}/bridge`) ? undefined : `no ${PLUGINS}`);

function skipOrFail(ctx: { skip: (note: string) => void }, why: string): void {
  if (inCI) throw new Error(why);
  ctx.skip(why);
}

const SPEC = {
  apiVersion: 'tapwire.io/v1alpha1',
  interfaces: [
    { name: 'default', macAddress: 'DE-AD-00-00-BE-AF', bridge: {}, dhcpOptions: { ntpServers: ['10.0.0.5'] } },
    { name: 'blue', model: 'e1000', bridge: {} },
    { name: 'seg', bridge: {} },
    { name: 'red', bridge: {}, queues: 2 },
  ],
  networks: [
    { name: 'red', multus: { networkName: 'other/red' } },
    { name: 'seg', l2: { interfaceName: 'seg0' } },
    { name: 'default', pod: {} },
    { name: 'blue', multus: { networkName: 'blue' } },
  ],
};

describePrivileged('tapwire-cri with a VM network spec (standalone)', () => {
  let tmp: string;
  let node: TestNetns;
  let n: number;
  let tap: FakeTapmanager;
  let server: CriServer | undefined;
  let client: CriClient | undefined;
  const pinned: string[] = [];

  const leases = (net: string): string[] => {
    const d = path.join(tmp, 'ipam', net);
    return fs.existsSync(d) ? fs.readdirSync(d).filter((f) => f.startsWith('10.')) : [];
  };
  const allLeases = () => ['twnet', 'blue', 'red'].flatMap(leases);
  const records = (): string[] => {
    const dir = path.join(tmp, 'state', 'sandboxes');
    return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  };
  const cache = (): string[] => {
    const dir = path.join(tmp, 'state', 'cni-cache');
    return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  };
  const bridgeConf = (name: string, br: string, subnet: string) =>
    bridgeConflist(name, br, subnet, path.join(tmp, 'ipam'));
  const writeNad = (ns: string, name: string, config: unknown) =>
    writeNadFile(path.join(tmp, 'nads'), ns, name, config);

  beforeEach(async (ctx) => {
    if (missing) return skipOrFail(ctx, missing);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-crispec-'));
    fs.mkdirSync(path.join(tmp, 'net.d'));
    node = createNetns('node');
    n = 100 + Math.floor(Math.random() * 100);
    const pod = bridgeConf('twnet', 'cni0', `10.${n}.0.0/24`);
    fs.writeFileSync(path.join(tmp, 'net.d', '10-twnet.conflist'), JSON.stringify(pod));
    writeNad('default', 'blue', bridgeConf('blue', 'br-blue', `10.${n}.1.0/24`));
    writeNad('other', 'red', bridgeConf('red', 'br-red', `10.${n}.2.0/24`));
    tap = new FakeTapmanager();
    await startService();
  });

  async function startService(): Promise<void> {
    const sandboxes = new SandboxService({
      cniConfDir: path.join(tmp, 'net.d'),
      cniBinDirs: [PLUGINS],
      stateDir: path.join(tmp, 'state'),
      netnsDir: '/run/netns',
      netnsName: pinnedNetnsNames(pinned),
      cniHostNetns: node.path,
      networkAttachmentsDir: path.join(tmp, 'nads'),
      tapmanager: tap,
    });
    await sandboxes.start();
    server = new CriServer({ sandboxes });
    const sock = path.join(tmp, 'cri.sock');
    await server.listen(sock);
    client = criClient(sock);
  }

  afterEach(async () => {
    client?.close();
    await server?.close(1000);
    server = undefined;
    client = undefined;
    for (const p of pinned.splice(0)) await removePersistentNetns(p).catch(() => {});
    removeAllNetns();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const rt = (): CriClient['runtime'] => client!.runtime;
  const withSpec = (name: string, spec: unknown) =>
    podConfig(name, {
      annotations: { [NETWORK_SPEC_ANNOTATION]: typeof spec === 'string' ? spec : JSON.stringify(spec) },
    });

  it('attaches the NADs as net1, net2 in spec order, asks tapmanager for one NIC per interface, and takes it all down', async () => {
    const { podSandboxId: id } = await rt().RunPodSandbox!({ config: withSpec('vm1', SPEC) });
    const req = tap.calls.find((c) => c.op === 'setup')!.req! as unknown as { nics: NicRequest[]; cniResult?: unknown };
    expect(req.cniResult).toBeUndefined();
    const pod = new TestNetns(path.basename(pinned[0]!));
    expect(
      req.nics.map((x) => [x.name, x.podInterface, x.model, x.macAddress, x.queues, x.cniResult?.ips?.[0]?.address]),
    ).toEqual([
      ['default', 'eth0', 'virtio', 'de:ad:00:00:be:af', undefined, `10.${n}.0.2/24`],
      ['blue', 'net1', 'e1000', undefined, undefined, `10.${n}.1.2/24`],
      ['seg', 'seg0', 'virtio', undefined, undefined, undefined],
      ['red', 'net2', 'virtio', undefined, 2, `10.${n}.2.2/24`],
    ]);
    expect(req.nics.map((x) => x.binding)).toEqual(['bridge', 'bridge', 'bridge', 'bridge']);
    expect(req.nics[0]!.dhcpOptions).toEqual({ ntpServers: ['10.0.0.5'] });
    expect(req.nics[2]!.cniResult).toBeUndefined(); // L2 only
    expect(pod.ip('-o', 'addr', 'show', 'dev', 'net1')).toContain(`10.${n}.1.2/24`);
    expect(pod.ip('-o', 'addr', 'show', 'dev', 'net2')).toContain(`10.${n}.2.2/24`);
    pod.exec('ping', ['-c1', '-W2', `10.${n}.1.1`]);
    pod.exec('ping', ['-c1', '-W2', `10.${n}.2.1`]);

    const st = await rt().PodSandboxStatus!({ podSandboxId: id, verbose: true });
    expect(st.status.network).toEqual({ ip: `10.${n}.0.2`, additionalIps: [] });
    const ns = JSON.parse(st.info['k8s.v1.cni.cncf.io/network-status'] as string) as Record<string, unknown>[];
    expect(ns.map((x) => [x.name, x.interface, x.ips, x.default])).toEqual([
      ['twnet', 'eth0', [`10.${n}.0.2`], true],
      ['default/blue', 'net1', [`10.${n}.1.2`], false],
      ['seg', 'seg0', [], false],
      ['other/red', 'net2', [`10.${n}.2.2`], false],
    ]);
    expect(ns[1]!.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(ns[1]!.gateway).toEqual([`10.${n}.1.1`]);
    expect(st.info.netKey).toBe(tap.live.get(id)!.netKey);
    expect(JSON.parse(st.info.vmNetworkSpec as string).interfaces).toHaveLength(4);
    expect(allLeases()).toHaveLength(3);

    await rt().StopPodSandbox!({ podSandboxId: id });
    expect(tap.ops(id)).toEqual(['setup', 'teardown']);
    expect(allLeases()).toEqual([]);
    expect(cache()).toEqual([]);
    expect(node.ip('-o', 'link', 'show', 'master', 'br-blue')).toBe('');
    expect(node.ip('-o', 'link', 'show', 'master', 'br-red')).toBe('');
    const stopped = await rt().PodSandboxStatus!({ podSandboxId: id, verbose: true });
    expect(JSON.parse(stopped.info['k8s.v1.cni.cncf.io/network-status'] as string)).toEqual([]);
    await rt().RemovePodSandbox!({ podSandboxId: id });
    expect(records()).toEqual([]);
  });

  it('a bad spec fails RunPodSandbox with INVALID_ARGUMENT listing every problem; nothing is built', async () => {
    const bad = {
      ...SPEC,
      interfaces: [
        { name: 'default', macAddress: 'zz:00', bridge: {} },
        { name: 'blue', passt: {} },
      ],
      networks: SPEC.networks.slice(2),
    };
    const err = await rt().RunPodSandbox!({ config: withSpec('bad1', bad) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
    const details = (err as { details: string }).details;
    expect(details).toMatch(/^annotation tapwire.io\/network-spec: invalid network spec \(2 problems\): /);
    expect(details).toContain('interfaces[0].macAddress: "zz:00" is not a MAC address');
    expect(details).toContain('interfaces[1].passt: needs the pod network');
    const yaml = await rt().RunPodSandbox!({ config: withSpec('bad2', 'apiVersion: [') }).catch((e: unknown) => e);
    expect(yaml).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(pinned).toEqual([]);
    expect(records()).toEqual([]);
    expect(tap.calls).toEqual([]);
    // the name is free: a good spec for the same pod runs
    await rt().RunPodSandbox!({ config: withSpec('bad1', { apiVersion: 'tapwire.io/v1alpha1' }) });
  });

  it('a missing NAD fails with FAILED_PRECONDITION naming it; nothing is built', async () => {
    const spec = {
      apiVersion: 'tapwire.io/v1alpha1',
      interfaces: [{ name: 'x', bridge: {} }],
      networks: [{ name: 'x', multus: { networkName: 'nope' } }],
    };
    const err = await rt().RunPodSandbox!({ config: withSpec('nad1', spec) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: status.FAILED_PRECONDITION });
    expect((err as { details: string }).details).toMatch(
      /^network-attachment-definition default\/nope \(.*\): not found$/,
    );
    expect(pinned).toEqual([]);
    expect(tap.calls).toEqual([]);
  });

  it('a failing tapmanager setup rolls back the extra networks with the pod network', async () => {
    tap.failSetup = new TapmanagerError({ code: 'EINVAL', message: 'setup broke', field: 'nics' });
    const err = await rt().RunPodSandbox!({ config: withSpec('vm2', SPEC) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT, details: 'tapmanager: setup broke' });
    expect(allLeases()).toEqual([]);
    expect(cache()).toEqual([]);
    expect(records()).toEqual([]);
    expect(node.ip('-o', 'link', 'show', 'master', 'br-blue')).toBe('');
  });

  it("autoattachPodInterface: false: no pod-network NIC; the pod network is still the pod's", async () => {
    const spec = [
      'apiVersion: tapwire.io/v1alpha1',
      'autoattachPodInterface: false',
      'interfaces: [{name: blue, bridge: {}}]',
      'networks: [{name: blue, multus: {networkName: blue}}]',
    ].join('\n');
    const { podSandboxId: id } = await rt().RunPodSandbox!({ config: withSpec('vm3', spec) });
    const req = tap.calls.find((c) => c.op === 'setup')!.req! as unknown as { nics: NicRequest[] };
    expect(req.nics.map((x) => [x.name, x.podInterface])).toEqual([['blue', 'net1']]);
    const st = await rt().PodSandboxStatus!({ podSandboxId: id });
    expect(st.status.network.ip).toBe(`10.${n}.0.2`);
    await rt().StopPodSandbox!({ podSandboxId: id });
    await rt().RemovePodSandbox!({ podSandboxId: id });
    expect(allLeases()).toEqual([]);
    // no NIC at all is refused before anything is built
    const err = await rt().RunPodSandbox!({
      config: withSpec('vm3b', 'apiVersion: tapwire.io/v1alpha1\nautoattachPodInterface: false\n'),
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect((err as { details: string }).details).toContain('autoattachPodInterface: false with no interfaces');
  });

  it('an IPv6-only NAD network is a bridge NIC with its IPv6 result (DHCPv6 + RA), not L2 only', async () => {
    const conf = bridgeConf('green', 'br-green', `fd00:${n}:3::/64`);
    writeNad('default', 'green', conf);
    const spec = {
      apiVersion: 'tapwire.io/v1alpha1',
      interfaces: [
        { name: 'default', bridge: {} },
        { name: 'green', bridge: {} },
      ],
      networks: [
        { name: 'default', pod: {} },
        { name: 'green', multus: { networkName: 'green' } },
      ],
    };
    const { podSandboxId: id } = await rt().RunPodSandbox!({ config: withSpec('vm6', spec) });
    const req = tap.calls.find((c) => c.op === 'setup')!.req! as unknown as { nics: NicRequest[] };
    expect(req.nics.map((x) => [x.name, x.binding, x.podInterface, x.cniResult?.ips?.map((i) => i.address)])).toEqual([
      ['default', 'bridge', 'eth0', [`10.${n}.0.2/24`]],
      ['green', 'bridge', 'net1', [`fd00:${n}:3::2/64`]],
    ]);
    // the NIC's result names net1 as its interface, as tapmanager takes it
    const green = req.nics[1]!.cniResult!;
    expect(green.interfaces![green.ips![0]!.interface!]).toMatchObject({ name: 'net1' });
    const st = await rt().PodSandboxStatus!({ podSandboxId: id, verbose: true });
    const ns = JSON.parse(st.info['k8s.v1.cni.cncf.io/network-status'] as string) as Record<string, unknown>[];
    expect(ns.map((x) => [x.name, x.interface, x.ips])).toEqual([
      ['twnet', 'eth0', [`10.${n}.0.2`]],
      ['default/green', 'net1', [`fd00:${n}:3::2`]],
    ]);
    await rt().StopPodSandbox!({ podSandboxId: id });
    await rt().RemovePodSandbox!({ podSandboxId: id });
    expect(node.ip('-o', 'link', 'show', 'master', 'br-green')).toBe('');
    expect(records()).toEqual([]);
  });

  it('a restart between run and stop still deletes the extra networks (the record and the CNI cache)', async () => {
    const { podSandboxId: id } = await rt().RunPodSandbox!({ config: withSpec('vm4', SPEC) });
    expect(allLeases()).toHaveLength(3);
    client?.close();
    await server?.close(1000);
    await startService();
    await rt().StopPodSandbox!({ podSandboxId: id });
    expect(allLeases()).toEqual([]);
    expect(cache()).toEqual([]);
    const st = await rt().PodSandboxStatus!({ podSandboxId: id, verbose: true });
    expect(JSON.parse(st.info.vmNetworkSpec as string).interfaces.map((i: { name: string }) => i.name)).toEqual([
      'default',
      'blue',
      'seg',
      'red',
    ]);
    await rt().RemovePodSandbox!({ podSandboxId: id });
  });

  it('a spec pod left half-built by a crash (at tapmanager setup) is cleaned by stop/remove, extra networks included', async () => {
    tap.hangSetup = true;
    const pending = rt().RunPodSandbox!({ config: withSpec('vm5', SPEC) });
    pending.catch(() => {}); // answered (cancelled) when the server goes away
    while (!tap.calls.some((c) => c.op === 'setup')) await new Promise((r) => setTimeout(r, 20));
    const id = tap.calls[0]!.sandboxId;
    tap.hangSetup = false;
    expect(allLeases()).toHaveLength(3);
    client?.close();
    await server?.close(1000); // the old instance is abandoned mid-run, as if killed
    await startService();
    const listed = await rt().ListPodSandbox!({});
    expect(listed.items).toEqual([expect.objectContaining({ id, state: 'SANDBOX_NOTREADY' })]);
    await rt().StopPodSandbox!({ podSandboxId: id });
    await rt().RemovePodSandbox!({ podSandboxId: id });
    expect(allLeases()).toEqual([]);
    expect(cache()).toEqual([]);
    expect(records()).toEqual([]);
  });
});
