// VM pods behind the proxy (src/cri/proxy/vm-pods.ts) without root: a fake runtime answering
// as containerd 1.6 does (verbose status info with pid, netns path and go-cni result), a fake
// tapmanager, netns pins and kernel prefixes stood in for. The order of the steps, what each
// side gets, rollback on a failed setup, ordinary pods untouched, and the key kept across a
// restart of the proxy.
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadCriServices } from '../../src/cri/proto';
import { ProxyServer } from '../../src/cri/proxy/server';
import { DEFAULT_VM_SELECTOR } from '../../src/cri/proxy/vm-requests';
import { VmPodStore } from '../../src/cri/proxy/vm-store';
import type { VmPodsOptions } from '../../src/cri/proxy/vm-pods';
import { CniRunner } from '../../src/cni/network';
import type { NicRequest } from '../../src/cri/vm-network';
import { TapmanagerError } from '../../src/tapmanager/client';
import { criClient, CriClient, FakeTapmanager } from '../fixtures/cni/cri-harness';

type Handler = (call: any, cb: any) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

const steps: string[] = [];
const backendRequests: Record<string, any[]> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
let nextId = 1;
const NETNS = '/var/run/netns/cni-test';

function fakeContainerd(): grpc.Server {
  const { runtime } = loadCriServices();
  const seen = (name: string, req: unknown): void => {
    steps.push(`backend ${name}`);
    (backendRequests[name] ??= []).push(req);
  };
  const impl: Record<string, Handler> = {
    RunPodSandbox: (call, cb) => {
      seen('RunPodSandbox', call.request);
      cb(null, { pod_sandbox_id: `sb${nextId++}` });
    },
    PodSandboxStatus: (call, cb) => {
      seen('PodSandboxStatus', call.request);
      const info = {
        pid: 4242,
        runtimeSpec: { linux: { namespaces: [{ type: 'network', path: NETNS }] } },
        cniResult: {
          Interfaces: {
            eth0: { IPConfigs: [{ IP: '10.88.0.7', Gateway: '10.88.0.1' }], Mac: '0a:58:0a:58:00:07', Sandbox: NETNS },
            lo: { IPConfigs: [{ IP: '127.0.0.1' }], Sandbox: NETNS },
          },
          Routes: [{ dst: '0.0.0.0/0' }],
        },
      };
      cb(null, {
        status: { id: call.request.pod_sandbox_id, state: 'SANDBOX_READY' },
        info: call.request.verbose ? { info: JSON.stringify(info) } : {},
      });
    },
    StopPodSandbox: (call, cb) => (seen('StopPodSandbox', call.request), cb(null, {})),
    RemovePodSandbox: (call, cb) => (seen('RemovePodSandbox', call.request), cb(null, {})),
    CreateContainer: (call, cb) => (seen('CreateContainer', call.request), cb(null, { container_id: 'c1' })),
  };
  const server = new grpc.Server();
  server.addService(runtime, impl);
  return server;
}

class Tap extends FakeTapmanager {
  override async setup(req: Parameters<FakeTapmanager['setup']>[0]) {
    steps.push('tapmanager setup');
    return super.setup(req);
  }
  failTeardown: Error | undefined;
  override async teardown(id: string) {
    steps.push('tapmanager teardown');
    if (this.failTeardown) throw this.failTeardown;
    return super.teardown(id);
  }
}

let tmp: string;
let backend: grpc.Server;
let backendSock: string;
let tap: Tap;
let proxy: ProxyServer | undefined;
let client: CriClient | undefined;
const pinned = new Map<string, number>();

async function startProxy(
  extra: Partial<
    Pick<VmPodsOptions, 'stopTeardownAttempts' | 'stopTeardownGraceMs' | 'cni' | 'networkAttachmentsDir'>
  > = {},
): Promise<void> {
  proxy = new ProxyServer({
    backend: backendSock,
    vm: {
      ...extra,
      tapmanager: tap,
      selector: { ...DEFAULT_VM_SELECTOR, backendHandler: 'runc' },
      fdSocket: path.join(tmp, 'fd', 'fd.sock'),
      pins: {
        pin: async (id, pid) => {
          steps.push('pin');
          pinned.set(id, pid);
          return path.join(tmp, 'netns', id);
        },
        unpin: async (id) => {
          steps.push('unpin');
          pinned.delete(id);
        },
      },
      store: new VmPodStore(path.join(tmp, 'state')),
      prefixes: async (netnsPath, ifname) => {
        steps.push(`prefixes ${ifname} in ${path.basename(netnsPath)}`);
        return new Map([['10.88.0.7', 24]]);
      },
    },
  });
  const sock = path.join(tmp, 'cri.sock');
  await proxy.listen(sock);
  client = criClient(sock);
}

const records = (): string[] => (fs.existsSync(path.join(tmp, 'state')) ? fs.readdirSync(path.join(tmp, 'state')) : []);

async function stopProxy(): Promise<void> {
  client?.close();
  client = undefined;
  await proxy?.close(1000);
  proxy = undefined;
}

const vmConfig = (name: string, extra: Record<string, unknown> = {}) => ({
  metadata: { name, uid: `u-${name}`, namespace: 'default', attempt: 0 },
  dnsConfig: { servers: ['10.96.0.10'], searches: ['default.svc'], options: ['ndots:5'] },
  ...extra,
});

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-vmpods-'));
  fs.mkdirSync(path.join(tmp, 'fd'));
  fs.writeFileSync(path.join(tmp, 'fd', 'fd.sock'), ''); // stands in for the socket
  backend = fakeContainerd();
  backendSock = path.join(tmp, 'containerd.sock');
  await new Promise<void>((resolve, reject) =>
    backend.bindAsync(`unix://${backendSock}`, grpc.ServerCredentials.createInsecure(), (e) =>
      e ? reject(e) : resolve(),
    ),
  );
});

afterEach(async () => {
  await stopProxy();
  fs.rmSync(path.join(tmp, 'state'), { recursive: true, force: true });
  steps.length = 0;
  for (const k of Object.keys(backendRequests)) delete backendRequests[k];
});

afterAll(() => {
  backend?.forceShutdown();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('VM pods behind the proxy', () => {
  it('runs a VM pod: backend first with its own handler and the mark, then pin, prefixes, tapmanager', async () => {
    tap = new Tap();
    await startProxy();
    const rt = client!.runtime;
    const { podSandboxId: id } = await rt.RunPodSandbox!({ config: vmConfig('vm1'), runtimeHandler: 'tapwire' });
    expect(steps).toEqual([
      'backend RunPodSandbox',
      'backend PodSandboxStatus',
      'pin',
      'prefixes eth0 in ' + id,
      'tapmanager setup',
    ]);
    const sent = backendRequests.RunPodSandbox![0];
    expect(sent.runtime_handler).toBe('runc');
    expect(sent.config.annotations).toEqual({ 'tapwire.io/vm-pod': 'true' });
    expect(pinned.get(id)).toBe(4242);
    const setup = tap.calls[0]!.req!;
    expect(setup).toMatchObject({
      sandboxId: id,
      netnsPath: path.join(tmp, 'netns', id),
      hostname: 'vm1',
      podName: 'vm1',
      podNamespace: 'default',
      dns: { servers: ['10.96.0.10'], searches: ['default.svc'], options: ['ndots:5'] },
      cniResult: {
        cniVersion: '1.0.0',
        interfaces: [{ name: 'eth0', mac: '0a:58:0a:58:00:07', sandbox: path.join(tmp, 'netns', id) }],
        ips: [{ version: '4', address: '10.88.0.7/24', gateway: '10.88.0.1', interface: 0 }],
        routes: [{ dst: '0.0.0.0/0' }],
      },
    });
    const netKey = tap.live.get(id)!.netKey;

    steps.length = 0;
    await rt.CreateContainer!({
      podSandboxId: id,
      config: { metadata: { name: 'vm' }, envs: [{ key: 'A', value: Buffer.from('b') }] },
    });
    const created = backendRequests.CreateContainer![0].config;
    expect(
      created.envs.map((e: { key: string; value: Buffer }) => `${e.key}=${Buffer.from(e.value).toString()}`),
    ).toEqual(['A=b', `TAPWIRE_NET_KEY=${netKey}`, `TAPWIRE_FD_SOCKET=${path.join(tmp, 'fd', 'fd.sock')}`]);
    expect(created.mounts).toMatchObject([{ container_path: path.join(tmp, 'fd'), readonly: true }]);

    const st = await rt.PodSandboxStatus!({ podSandboxId: id, verbose: true });
    expect(JSON.parse(st.info.tapwire)).toMatchObject({ netKey, netnsPath: path.join(tmp, 'netns', id) });
    expect(JSON.parse(st.info.info).pid).toBe(4242); // the backend's own info is still there

    steps.length = 0;
    await rt.StopPodSandbox!({ podSandboxId: id });
    expect(steps).toEqual(['tapmanager teardown', 'unpin', 'backend StopPodSandbox']);
    steps.length = 0;
    await rt.RemovePodSandbox!({ podSandboxId: id });
    expect(steps).toEqual(['backend RemovePodSandbox', 'tapmanager teardown', 'unpin']);
    expect(records()).toEqual([]);
  });

  it('an annotation makes a VM pod too; ordinary pods and their containers are forwarded untouched', async () => {
    tap = new Tap();
    await startProxy();
    const rt = client!.runtime;
    await rt.RunPodSandbox!({ config: vmConfig('vm2', { annotations: { 'tapwire.io/vm': 'true' } }) });
    expect(tap.ops()).toEqual(['setup']);
    steps.length = 0;
    const { podSandboxId: plain } = await rt.RunPodSandbox!({ config: vmConfig('plain'), runtimeHandler: 'runc' });
    await rt.CreateContainer!({ podSandboxId: plain, config: { metadata: { name: 'c' } } });
    await rt.StopPodSandbox!({ podSandboxId: plain });
    expect(steps).toEqual(['backend RunPodSandbox', 'backend CreateContainer', 'backend StopPodSandbox']);
    expect(backendRequests.RunPodSandbox![1].config.annotations).toEqual({});
    expect(backendRequests.RunPodSandbox![1].runtime_handler).toBe('runc');
    expect(backendRequests.CreateContainer![0].config.envs).toEqual([]);
  });

  it("refuses a request carrying the proxy's own vm-pod mark, ordinary pod or VM pod", async () => {
    tap = new Tap();
    await startProxy();
    const rt = client!.runtime;
    const marked = { annotations: { 'tapwire.io/vm-pod': 'true' } };
    for (const req of [
      { config: vmConfig('forged', marked) },
      { config: vmConfig('forged2', marked), runtimeHandler: 'tapwire' },
    ]) {
      await expect(rt.RunPodSandbox!(req)).rejects.toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        details: expect.stringContaining('config.annotations["tapwire.io/vm-pod"] = "true"'),
      });
    }
    expect(steps).toEqual([]); // neither the backend nor tapmanager saw it
    expect(tap.ops()).toEqual([]);
  });

  it('a failed tapmanager setup rolls the backend sandbox back and answers its error', async () => {
    tap = new Tap();
    tap.failSetup = new TapmanagerError({ code: 'EINVAL', message: 'cniResult.ips: no IPv4 address' });
    await startProxy();
    await expect(
      client!.runtime.RunPodSandbox!({ config: vmConfig('vm3'), runtimeHandler: 'tapwire' }),
    ).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining('no IPv4 address'),
    });
    expect(steps.slice(-5)).toEqual([
      'tapmanager setup',
      'tapmanager teardown',
      'unpin',
      'backend StopPodSandbox',
      'backend RemovePodSandbox',
    ]);
    expect(records()).toEqual([]);
  });

  it('a stop whose teardown keeps failing fails until the attempts are spent, then goes ahead; the record stays', async () => {
    tap = new Tap();
    await startProxy({ stopTeardownAttempts: 3, stopTeardownGraceMs: 0 });
    const rt = client!.runtime;
    const { podSandboxId: id } = await rt.RunPodSandbox!({ config: vmConfig('vm6'), runtimeHandler: 'tapwire' });
    tap.failTeardown = new TapmanagerError(
      { code: 'ENOENT', message: 'tapmanager control socket /run/tapwire/control.sock: connect ENOENT' },
      true, // no daemon: a transport failure
    );
    steps.length = 0;
    for (let i = 0; i < 2; i++) {
      await expect(rt.StopPodSandbox!({ podSandboxId: id })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    }
    expect(steps).toEqual(['tapmanager teardown', 'tapmanager teardown']); // the backend not asked
    await rt.StopPodSandbox!({ podSandboxId: id });
    expect(steps.slice(2)).toEqual(['tapmanager teardown', 'backend StopPodSandbox']); // no unpin
    expect(pinned.has(id)).toBe(true);
    expect(records()).toEqual([`${id}.json`]); // left for reconciliation
    steps.length = 0;
    await rt.RemovePodSandbox!({ podSandboxId: id }); // succeeds: the backend removed it
    expect(steps).toEqual(['backend RemovePodSandbox', 'tapmanager teardown']);
    expect(records()).toEqual([`${id}.json`]);
    tap.failTeardown = undefined;
    pinned.delete(id);
  });

  it('a VM pod whose RunPodSandbox the proxy did not finish is still known: no containers, torn down at stop', async () => {
    tap = new Tap();
    tap.hangSetup = true; // tapwire-cri goes away while tapmanager sets the pod up
    await startProxy();
    void client!.runtime.RunPodSandbox!({ config: vmConfig('vm7'), runtimeHandler: 'tapwire' }).catch(() => {});
    while (!tap.ops().includes('setup')) await new Promise((r) => setTimeout(r, 10));
    const id = tap.calls[0]!.sandboxId;
    expect(records()).toEqual([`${id}.json`]);
    await stopProxy();
    tap.hangSetup = false;
    await startProxy();
    await expect(
      client!.runtime.CreateContainer!({ podSandboxId: id, config: { metadata: { name: 'vm' } } }),
    ).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringContaining(id) });
    steps.length = 0;
    await client!.runtime.StopPodSandbox!({ podSandboxId: id });
    expect(steps).toEqual(['tapmanager teardown', 'unpin', 'backend StopPodSandbox']);
    await client!.runtime.RemovePodSandbox!({ podSandboxId: id });
    expect(records()).toEqual([]);
  });

  it("keeps a VM pod's key across a restart of the proxy", async () => {
    tap = new Tap();
    await startProxy();
    const { podSandboxId: id } = await client!.runtime.RunPodSandbox!({
      config: vmConfig('vm4'),
      runtimeHandler: 'tapwire',
    });
    const netKey = tap.live.get(id)!.netKey;
    await stopProxy();
    await startProxy();
    await client!.runtime.CreateContainer!({ podSandboxId: id, config: { metadata: { name: 'vm' } } });
    expect(backendRequests.CreateContainer![0].config.envs[0].key).toBe('TAPWIRE_NET_KEY');
    expect(Buffer.from(backendRequests.CreateContainer![0].config.envs[0].value).toString()).toBe(netKey);
    await client!.runtime.StopPodSandbox!({ podSandboxId: id });
    await client!.runtime.RemovePodSandbox!({ podSandboxId: id });
  });

  it("refuses a VM container when the fd socket's directory holds anything else", async () => {
    tap = new Tap();
    await startProxy();
    const { podSandboxId: id } = await client!.runtime.RunPodSandbox!({
      config: vmConfig('vm5'),
      runtimeHandler: 'tapwire',
    });
    fs.writeFileSync(path.join(tmp, 'fd', 'control.sock'), '');
    try {
      await expect(
        client!.runtime.CreateContainer!({ podSandboxId: id, config: { metadata: { name: 'vm' } } }),
      ).rejects.toMatchObject({
        code: grpc.status.FAILED_PRECONDITION,
        details: expect.stringContaining('also holds "control.sock"'),
      });
    } finally {
      fs.rmSync(path.join(tmp, 'fd', 'control.sock'));
    }
    await client!.runtime.StopPodSandbox!({ podSandboxId: id });
    await client!.runtime.RemovePodSandbox!({ podSandboxId: id });
  });
});

describe('VM pods behind the proxy with a network spec', () => {
  const FAKE = path.resolve(__dirname, '../fixtures/cni/fake-plugin.js');
  let log: string;
  const spec = {
    apiVersion: 'tapwire.io/v1alpha1',
    interfaces: [
      { name: 'blue', model: 'e1000', bridge: {} },
      { name: 'default', macAddress: '02:00:00:00:00:aa', bridge: {} },
      { name: 'red', bridge: {} },
    ],
    networks: [
      { name: 'default', pod: {} },
      { name: 'blue', multus: { networkName: 'blue' } },
      { name: 'red', multus: { networkName: 'other/red' } },
    ],
  };
  const cniSteps = (): string[] =>
    fs.existsSync(log)
      ? fs
          .readFileSync(log, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { env: Record<string, string>; conf: { name: string } })
          .map((e) => `CNI ${e.env.CNI_COMMAND} ${e.conf.name} ${e.env.CNI_IFNAME}`)
      : [];
  const nad = (ns: string, name: string, ip: string) => {
    fs.mkdirSync(path.join(tmp, 'nads', ns), { recursive: true });
    const config = { cniVersion: '1.0.0', name, type: 'fake-net', ip, gateway: ip.replace(/\d+\/\d+$/, '1') };
    fs.writeFileSync(
      path.join(tmp, 'nads', ns, `${name}.json`),
      JSON.stringify({
        apiVersion: 'k8s.cni.cncf.io/v1',
        kind: 'NetworkAttachmentDefinition',
        spec: { config: JSON.stringify(config) },
      }),
    );
  };
  const withSpec = (text: unknown) =>
    vmConfig('vms', {
      annotations: { 'tapwire.io/network-spec': typeof text === 'string' ? text : JSON.stringify(text) },
    });

  async function start(): Promise<void> {
    log = path.join(tmp, 'cni.log');
    fs.rmSync(log, { force: true });
    process.env.FAKE_CNI_LOG = log;
    fs.mkdirSync(path.join(tmp, 'bin'), { recursive: true });
    if (!fs.existsSync(path.join(tmp, 'bin', 'fake-net'))) fs.symlinkSync(FAKE, path.join(tmp, 'bin', 'fake-net'));
    nad('default', 'blue', '10.1.0.5/24');
    nad('other', 'red', '10.2.0.5/24');
    tap = new Tap();
    await startProxy({
      cni: new CniRunner({ binDirs: [path.join(tmp, 'bin')], cacheDir: path.join(tmp, 'state', 'cni-cache') }),
      networkAttachmentsDir: path.join(tmp, 'nads'),
    });
  }

  it('adds the NADs to the netns the backend made, asks tapmanager per NIC, removes them before the backend stops', async () => {
    await start();
    const rt = client!.runtime;
    const { podSandboxId: id } = await rt.RunPodSandbox!({ config: withSpec(spec), runtimeHandler: 'tapwire' });
    expect(steps).toEqual([
      'backend RunPodSandbox',
      'backend PodSandboxStatus',
      'pin',
      `prefixes eth0 in ${id}`,
      'tapmanager setup',
    ]);
    expect(cniSteps()).toEqual(['CNI ADD blue net1', 'CNI ADD red net2']);
    const req = tap.calls[0]!.req! as unknown as { nics: NicRequest[]; cniResult?: unknown; netnsPath: string };
    expect(req.cniResult).toBeUndefined();
    expect(
      req.nics.map((x) => [x.name, x.podInterface, x.model, x.macAddress, x.cniResult?.ips?.[0]?.address]),
    ).toEqual([
      ['blue', 'net1', 'e1000', undefined, '10.1.0.5/24'],
      ['default', 'eth0', 'virtio', '02:00:00:00:00:aa', '10.88.0.7/24'],
      ['red', 'net2', 'virtio', undefined, '10.2.0.5/24'],
    ]);
    const env = (JSON.parse(fs.readFileSync(log, 'utf8').split('\n')[0]!) as { env: Record<string, string> }).env;
    expect(env.CNI_NETNS).toBe(req.netnsPath);
    expect(env.CNI_CONTAINERID).toBe(id);
    expect(env.CNI_ARGS).toContain('K8S_POD_NAME=vms');

    const st = await rt.PodSandboxStatus!({ podSandboxId: id, verbose: true });
    const info = JSON.parse(st.info.tapwire) as Record<string, unknown>;
    expect(
      (info['k8s.v1.cni.cncf.io/network-status'] as Record<string, unknown>[]).map((x) => [
        x.name,
        x.interface,
        x.ips,
        x.default,
      ]),
    ).toEqual([
      ['pod-network', 'eth0', ['10.88.0.7'], true],
      ['default/blue', 'net1', ['10.1.0.5'], false],
      ['other/red', 'net2', ['10.2.0.5'], false],
    ]);

    // across a restart of the proxy the extra networks are still known
    await stopProxy();
    await startProxy({
      cni: new CniRunner({ binDirs: [path.join(tmp, 'bin')], cacheDir: path.join(tmp, 'state', 'cni-cache') }),
      networkAttachmentsDir: path.join(tmp, 'nads'),
    });
    steps.length = 0;
    fs.rmSync(log);
    await client!.runtime.StopPodSandbox!({ podSandboxId: id });
    expect(steps).toEqual(['tapmanager teardown', 'unpin', 'backend StopPodSandbox']);
    expect(cniSteps()).toEqual(['CNI DEL red net2', 'CNI DEL blue net1']);
    steps.length = 0;
    await client!.runtime.RemovePodSandbox!({ podSandboxId: id });
    expect(steps.at(0)).toBe('tapmanager teardown'); // extras (already gone) before the backend's removal
    expect(steps).toContain('backend RemovePodSandbox');
    expect(records()).toEqual(['cni-cache']);
    expect(fs.readdirSync(path.join(tmp, 'state', 'cni-cache'))).toEqual([]);
  });

  it('a bad spec is INVALID_ARGUMENT before the backend is called; a missing NAD FAILED_PRECONDITION', async () => {
    await start();
    const rt = client!.runtime;
    const bad = {
      ...spec,
      interfaces: [{ name: 'default', macAddress: 'zz:00', passt: {}, model: 'virtio-net' }],
      networks: [{ name: 'default', pod: {} }],
    };
    const err = await rt.RunPodSandbox!({ config: withSpec(bad), runtimeHandler: 'tapwire' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    expect((err as { details: string }).details).toMatch(
      /\(2 problems\): interfaces\[0\]\.model: .*; interfaces\[0\]\.macAddress: "zz:00" is not a MAC address/,
    );
    fs.rmSync(path.join(tmp, 'nads', 'other'), { recursive: true });
    const err2 = await rt.RunPodSandbox!({ config: withSpec(spec), runtimeHandler: 'tapwire' }).catch(
      (e: unknown) => e,
    );
    expect(err2).toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
    expect((err2 as { details: string }).details).toMatch(/^network-attachment-definition other\/red .*: not found$/);
    expect(steps).toEqual([]);
    expect(cniSteps()).toEqual([]);
  });

  it('a failed tapmanager setup deletes the extra networks before the backend rolls back', async () => {
    await start();
    tap.failSetup = new TapmanagerError({ code: 'EINVAL', message: 'no', field: 'nics' });
    const err = await client!.runtime.RunPodSandbox!({ config: withSpec(spec), runtimeHandler: 'tapwire' }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    expect(cniSteps()).toEqual(['CNI ADD blue net1', 'CNI ADD red net2', 'CNI DEL red net2', 'CNI DEL blue net1']);
    expect(steps.slice(-4)).toEqual([
      'tapmanager teardown',
      'unpin',
      'backend StopPodSandbox',
      'backend RemovePodSandbox',
    ]);
    expect(fs.readdirSync(path.join(tmp, 'state', 'cni-cache'))).toEqual([]);
  });

  it('a failing NAD rolls back the ones before it and the backend sandbox', async () => {
    await start();
    const failing = { cniVersion: '1.0.0', name: 'red', type: 'fake-net', failOn: 'ADD', errMsg: 'red is broken' };
    fs.writeFileSync(path.join(tmp, 'nads', 'other', 'red.json'), JSON.stringify(failing));
    const err = await client!.runtime.RunPodSandbox!({ config: withSpec(spec), runtimeHandler: 'tapwire' }).catch(
      (e: unknown) => e,
    );
    expect((err as { details: string }).details).toMatch(/failed to attach network "red" as net2: .*red is broken/);
    expect(cniSteps().slice(0, 4)).toEqual([
      'CNI ADD blue net1',
      'CNI ADD red net2',
      'CNI DEL red net2',
      'CNI DEL blue net1',
    ]);
    expect(tap.calls.filter((c) => c.op === 'setup')).toEqual([]);
    expect(steps).toContain('backend RemovePodSandbox');
  });
});
