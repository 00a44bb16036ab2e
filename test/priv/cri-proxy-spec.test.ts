// A VM pod with a network spec through tapwire-cri --backend, with real parts: containerd
// 1.6 in the test's rig (its own node netns, CNI for the pod network), the real tapmanager,
// the proxy binary with --network-attachments-dir. The proxy checks the spec before
// containerd is called, adds the NAD network to the netns containerd made (net1, plugins
// run in the rig's node netns), has tapmanager build one NIC per interface in spec order,
// reports every network in Multus's network-status shape, and removes the NAD network
// before containerd's own teardown: its lease is released and nothing of it is left. Across a
// restart of the proxy: a spec pod tapmanager lost is repaired with its NICs and its NAD
// network kept, and one containerd removed behind its back has its NAD network deleted.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NETWORK_SPEC_ANNOTATION } from '../../src/spec';
import { criClient, type CriClient } from '../fixtures/cni/cri-harness';
import { CRI_BIN, startProxy, type ProxyProc } from '../fixtures/containerd/proxy-proc';
import { CNI_BIN_DIR, startContainerd, type Containerd } from '../../src/demo/containerd/rig';
import { writeNad } from '../helpers/cni-conf';
import { killDaemons, startDaemon, type Daemon } from '../helpers/daemon';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';
import { unmountPins } from '../helpers/pins';

const missing =
  requireTools('containerd', 'containerd-shim-runc-v2', 'runc', 'ctr', 'unshare', 'nsenter') ??
  (fs.existsSync(CRI_BIN) ? undefined : `${CRI_BIN} is not built (npm run build)`);

describePrivileged('a VM pod with a network spec through tapwire-cri --backend containerd', () => {
  let tmp: string;
  let rig: Containerd | undefined;
  let tap: Daemon | undefined;
  let proxy: ProxyProc | undefined;
  let client: CriClient | undefined;
  let direct: CriClient | undefined;
  let proxyArgs: string[];

  const blueLeases = (): string[] => {
    const d = path.join(tmp, 'ipam', 'blue');
    return fs.existsSync(d) ? fs.readdirSync(d).filter((f) => f.startsWith('10.')) : [];
  };
  const inNode = (...args: string[]): string =>
    execFileSync('nsenter', [`--net=/proc/${rig!.pid}/ns/net`, ...args], { encoding: 'utf8' });

  beforeAll(async () => {
    if (missing) {
      if (inCI) throw new Error(missing);
      return;
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-proxyspec-'));
    rig = await startContainerd({ label: 'spec' });
    const fdSocket = path.join(tmp, 'tapmanager', 'fd', 'fd.sock');
    tap = await startDaemon(path.join(tmp, 'tapmanager'), { args: ['--fd-socket', fdSocket] });
    const blue = {
      cniVersion: '1.0.0',
      name: 'blue',
      type: 'bridge',
      bridge: 'br-blue',
      isGateway: true,
      ipam: { type: 'host-local', subnet: '10.89.0.0/24', dataDir: path.join(tmp, 'ipam') },
    };
    writeNad(path.join(tmp, 'nads'), 'default', 'blue', blue);
    proxyArgs = [
      ...['--tapmanager-socket', tap.controlSocket, '--fd-socket', fdSocket],
      ...['--network-attachments-dir', path.join(tmp, 'nads'), '--cni-bin-dir', CNI_BIN_DIR],
      ...['--cni-host-netns', `/proc/${rig.pid}/ns/net`, '--cni-conf-dir', path.join(rig.dir, 'net.d')],
    ];
    proxy = await startProxy(path.join(tmp, 'cri.sock'), `unix://${rig.socket}`, proxyArgs);
    client = criClient(proxy.socket);
    direct = criClient(rig.socket);
  }, 120_000);

  afterAll(async () => {
    client?.close();
    direct?.close();
    await proxy?.stop();
    await rig?.stop();
    await killDaemons();
    if (tmp) {
      unmountPins(path.join(tmp, 'proxy-netns'));
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);

  const podConfig = (name: string, spec: unknown) => ({
    metadata: { name, uid: `uid-${name}`, namespace: 'default', attempt: 0 },
    linux: {},
    logDirectory: path.join(tmp, 'logs', name),
    annotations: { [NETWORK_SPEC_ANNOTATION]: typeof spec === 'string' ? spec : JSON.stringify(spec) },
  });

  const SPEC = {
    apiVersion: 'tapwire.io/v1alpha1',
    interfaces: [
      { name: 'default', bridge: {} },
      { name: 'blue', bridge: {} },
    ],
    networks: [
      { name: 'default', pod: {} },
      { name: 'blue', multus: { networkName: 'blue' } },
    ],
  };
  const tapIds = async (): Promise<string[]> =>
    (await tap!.client.list()).map((x) => (x as { sandboxId: string }).sandboxId);
  async function restartProxy(): Promise<() => string> {
    client?.close();
    proxy!.child.kill('SIGKILL');
    await proxy!.stop();
    fs.rmSync(path.join(tmp, 'cri.sock'), { force: true });
    proxy = await startProxy(path.join(tmp, 'cri.sock'), `unix://${rig!.socket}`, proxyArgs);
    client = criClient(proxy.socket);
    return proxy.stderr;
  }
  async function until(what: string, cond: () => boolean): Promise<void> {
    for (const end = Date.now() + 30_000; !cond();) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('a spec pod tapmanager lost is set up again with its NICs, its NAD network kept (no second ADD)', async (ctx) => {
    if (!client || !rig || !tap) return ctx.skip(missing ?? 'no rig');
    const { podSandboxId: id } = await client.runtime.RunPodSandbox!({
      config: podConfig('vms3', SPEC),
      runtimeHandler: 'tapwire',
    });
    const leases = blueLeases();
    expect(leases).toHaveLength(1);
    await tap.client.teardown(id); // tapmanager loses it (the pod's interfaces restored)
    const log = await restartProxy();
    await until('the log says it is repaired', () => log().includes('VM pod repaired'));
    expect(await tapIds()).toContain(id);
    const nics = (await tap.client.status(id)) as { nics: { name?: string }[] };
    expect(nics.nics.map((x) => x.name)).toEqual(['default', 'blue']);
    expect(blueLeases()).toEqual(leases);
    await client!.runtime.StopPodSandbox!({ podSandboxId: id });
    await client!.runtime.RemovePodSandbox!({ podSandboxId: id });
    expect(blueLeases()).toEqual([]);
    expect(await tapIds()).not.toContain(id);
  });

  it('a spec pod containerd removed behind its back: torn down, its NAD network deleted, forgotten', async (ctx) => {
    if (!client || !rig || !tap) return ctx.skip(missing ?? 'no rig');
    const { podSandboxId: id } = await client.runtime.RunPodSandbox!({
      config: podConfig('vms4', SPEC),
      runtimeHandler: 'tapwire',
    });
    expect(blueLeases()).toHaveLength(1);
    client.close();
    proxy!.child.kill('SIGKILL');
    await proxy!.stop();
    await direct!.runtime.StopPodSandbox!({ podSandboxId: id });
    await direct!.runtime.RemovePodSandbox!({ podSandboxId: id });
    fs.rmSync(path.join(tmp, 'cri.sock'), { force: true });
    proxy = await startProxy(path.join(tmp, 'cri.sock'), `unix://${rig.socket}`, proxyArgs);
    client = criClient(proxy.socket);
    const log = proxy.stderr;
    await until('the log says it is gone', () => log().includes('VM pod gone from the backend'));
    expect(blueLeases()).toEqual([]);
    expect(await tapIds()).not.toContain(id);
    expect(fs.readdirSync(path.join(tmp, 'proxy-state', 'cni-cache'))).toEqual([]);
  });

  it('adds the NAD network to the netns containerd made, one NIC per interface, removed before containerd tears down', async (ctx) => {
    if (!client || !rig || !tap) return ctx.skip(missing ?? 'no rig');
    const rt = client.runtime;
    const spec = [
      'apiVersion: tapwire.io/v1alpha1',
      'interfaces:',
      '  - {name: blue, model: e1000, bridge: {}}',
      '  - {name: default, macAddress: "02:00:00:00:be:ef", bridge: {}}',
      'networks:',
      '  - {name: default, pod: {}}',
      '  - {name: blue, multus: {networkName: blue}}',
    ].join('\n');
    const { podSandboxId: id } = await rt.RunPodSandbox!({
      config: podConfig('vms1', spec),
      runtimeHandler: 'tapwire',
    });
    const pin = path.join(tmp, 'proxy-netns', id);
    const links = execFileSync('nsenter', [`--net=${pin}`, 'ip', '-o', 'link'], { encoding: 'utf8' });
    expect(links).toMatch(/ net1@/);
    const blueIp = blueLeases();
    expect(blueIp).toEqual([expect.stringMatching(/^10\.89\.0\./)]);
    expect(inNode('ip', '-o', 'link', 'show', 'master', 'br-blue')).not.toBe('');

    const st = await rt.PodSandboxStatus!({ podSandboxId: id, verbose: true });
    const mine = JSON.parse(st.info.tapwire) as Record<string, unknown>;
    const ns = mine['k8s.v1.cni.cncf.io/network-status'] as Record<string, unknown>[];
    expect(ns.map((x) => [x.name, x.interface, x.default])).toEqual([
      ['twt-rig', 'eth0', true],
      ['default/blue', 'net1', false],
    ]);
    expect(ns[1]!.ips).toEqual(blueIp);
    expect((ns[0]!.ips as string[])[0]).toMatch(/^10\.88\.0\./);
    expect(st.status.network.ip).toMatch(/^10\.88\.0\./);
    const topo = JSON.stringify(mine.topology);
    expect(topo).toContain('02:00:00:00:be:ef');
    const nics = (await tap.client.status(id)) as { nics: { name?: string; model: string; mac: string }[] };
    expect(nics.nics.map((x) => [x.name, x.model])).toEqual([
      ['blue', expect.stringMatching(/e1000/)],
      ['default', expect.stringMatching(/virtio/)],
    ]);
    expect(nics.nics[1]!.mac).toBe('02:00:00:00:be:ef');

    await rt.StopPodSandbox!({ podSandboxId: id });
    expect(blueLeases()).toEqual([]);
    expect(inNode('ip', '-o', 'link', 'show', 'master', 'br-blue')).toBe('');
    expect(fs.readdirSync(path.join(tmp, 'proxy-state', 'cni-cache'))).toEqual([]);
    expect(await tap.client.list()).toEqual([]);
    await rt.RemovePodSandbox!({ podSandboxId: id });
    expect((await direct!.runtime.ListPodSandbox!({ filter: { id } })).items).toEqual([]);
    expect(fs.readdirSync(path.join(tmp, 'proxy-state', 'vm-pods'))).toEqual([]);
  });

  it('a bad spec is refused before containerd makes anything', async (ctx) => {
    if (!client || !rig || !tap) return ctx.skip(missing ?? 'no rig');
    const before = (await direct!.runtime.ListPodSandbox!({})).items.length;
    const spec = {
      apiVersion: 'tapwire.io/v1alpha1',
      interfaces: [{ name: 'a', passt: {}, macAddress: 'zz:00' }],
      networks: [],
    };
    const err = await client.runtime.RunPodSandbox!({
      config: podConfig('vms2', spec),
      runtimeHandler: 'tapwire',
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect((err as { details: string }).details).toContain('interfaces[0].macAddress: "zz:00" is not a MAC address');
    expect((err as { details: string }).details).toContain('interfaces[0].name: "a" has no network of the same name');
    expect((await direct!.runtime.ListPodSandbox!({})).items.length).toBe(before);
    expect(await tap.client.list()).toEqual([]);
  });
});
