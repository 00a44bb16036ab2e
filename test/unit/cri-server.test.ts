// tapwire-cri over gRPC without root: a client from the official proto talks to the server
// on a temp Unix socket. Version, Status (NetworkReady false with a reason), UNIMPLEMENTED
// naming the method, argument errors (host networking refused), NOT_FOUND, idempotent remove.
import { status } from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CniError } from '../../src/cni/errors';
import { CriError, toGrpcStatus } from '../../src/cri/errors';
import { SandboxService } from '../../src/cri/sandboxes';
import { CriServer } from '../../src/cri/server';
import { TapmanagerError } from '../../src/tapmanager/client';
import { criClient, CriClient, FakeTapmanager, podConfig, streamError } from '../fixtures/cni/cri-harness';

let tmp: string;
let server: CriServer;
let client: CriClient;
let sock: string;
let confDir: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-cri-'));
  confDir = path.join(tmp, 'net.d');
  fs.mkdirSync(confDir);
  fs.writeFileSync(path.join(confDir, '10-bad.conflist'), '{ "name": "x",');
  const sandboxes = new SandboxService({
    cniConfDir: confDir,
    cniBinDirs: [path.join(tmp, 'bin')],
    stateDir: path.join(tmp, 'state'),
    netnsDir: path.join(tmp, 'netns'),
    tapmanager: new FakeTapmanager(),
  });
  await sandboxes.start();
  server = new CriServer({ sandboxes });
  sock = path.join(tmp, 'cri.sock');
  await server.listen(sock);
  client = criClient(sock);
});

afterAll(async () => {
  client?.close();
  await server?.close(1000);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('tapwire-cri gRPC surface', () => {
  it('serves on a 0600 Unix socket and answers Version', async () => {
    expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
    expect(await client.runtime.Version!({ version: 'v1' })).toEqual({
      version: '0.1.0',
      runtimeName: 'tapwire',
      runtimeVersion: expect.stringMatching(/^\d+\.\d+\.\d+/),
      runtimeApiVersion: 'v1',
    });
  });

  it('Status: RuntimeReady, NetworkReady false with a reason naming the bad file', async () => {
    const res = await client.runtime.Status!({});
    const conds = res.status.conditions as { type: string; status: boolean; reason: string; message: string }[];
    expect(conds[0]).toMatchObject({ type: 'RuntimeReady', status: true });
    expect(conds[1]).toMatchObject({ type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady' });
    expect(conds[1]!.message).toContain(`no valid CNI network config in ${confDir}`);
    expect(conds[1]!.message).toContain('10-bad.conflist');
  });

  it('RunPodSandbox without a loadable network is FAILED_PRECONDITION', async () => {
    await expect(client.runtime.RunPodSandbox!({ config: podConfig('p0') })).rejects.toMatchObject({
      code: status.FAILED_PRECONDITION,
      details: expect.stringMatching(/^network not ready: .*10-bad.conflist/),
    });
  });

  it('refuses host networking and missing metadata with INVALID_ARGUMENT naming the field', async () => {
    const host = podConfig('h', { linux: { securityContext: { namespaceOptions: { network: 'NODE' } } } });
    await expect(client.runtime.RunPodSandbox!({ config: host })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringMatching(/namespace_options.network is NODE \(host networking\)/),
    });
    await expect(
      client.runtime.RunPodSandbox!({ config: { metadata: { name: 'x', namespace: 'd' } } }),
    ).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: 'config.metadata.uid must not be empty',
    });
    await expect(client.runtime.RunPodSandbox!({})).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    const bad = podConfig('b', { portMappings: [{ protocol: 'TCP', containerPort: 0, hostPort: 80 }] });
    await expect(client.runtime.RunPodSandbox!({ config: bad })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringContaining('config.port_mappings[0] 80->0'),
    });
  });

  it('unknown sandboxes: status and stop NOT_FOUND, remove succeeds, list empty', async () => {
    const id = 'a'.repeat(64);
    await expect(client.runtime.PodSandboxStatus!({ podSandboxId: id })).rejects.toMatchObject({
      code: status.NOT_FOUND,
    });
    await expect(client.runtime.StopPodSandbox!({ podSandboxId: id })).rejects.toMatchObject({
      code: status.NOT_FOUND,
    });
    await expect(client.runtime.RemovePodSandbox!({ podSandboxId: id })).resolves.toEqual({});
    await expect(client.runtime.RemovePodSandbox!({ podSandboxId: 'not-hex' })).resolves.toEqual({});
    expect(await client.runtime.ListPodSandbox!({})).toEqual({ items: [] });
  });

  it('every other method answers UNIMPLEMENTED naming itself (unary and streaming)', async () => {
    await expect(client.runtime.CreateContainer!({})).rejects.toMatchObject({
      code: status.UNIMPLEMENTED,
      details: 'runtime.v1.RuntimeService/CreateContainer is not implemented by tapwire-cri',
    });
    await expect(client.image.ListImages!({})).rejects.toMatchObject({
      code: status.UNIMPLEMENTED,
      details: 'runtime.v1.ImageService/ListImages is not implemented by tapwire-cri',
    });
    const e = await streamError(sock, 'getContainerEvents');
    expect(e).toMatchObject({ code: status.UNIMPLEMENTED, details: expect.stringContaining('GetContainerEvents') });
  });
});

describe('toGrpcStatus', () => {
  it('maps each error kind in one place', () => {
    expect(toGrpcStatus(new CriError(status.NOT_FOUND, 'x'))).toEqual({ code: status.NOT_FOUND, details: 'x' });
    const cni = new CniError({ code: 11, msg: 'busy', plugin: 'bridge', command: 'ADD' });
    expect(toGrpcStatus(cni)).toEqual({
      code: status.UNAVAILABLE,
      details: 'CNI ADD plugin "bridge" failed (code 11): busy',
    });
    expect(toGrpcStatus(new CniError({ code: 7, msg: 'm', plugin: 'p', command: 'ADD' })).code).toBe(status.UNKNOWN);
    expect(toGrpcStatus(new TapmanagerError({ code: 'EINVAL', message: 'bad netnsPath' }))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'tapmanager: bad netnsPath',
    });
    expect(
      toGrpcStatus(new TapmanagerError({ code: 'ECONNREFUSED', message: 'control socket /x: refused' }, true)).code,
    ).toBe(status.UNAVAILABLE);
    expect(toGrpcStatus('weird')).toEqual({ code: status.UNKNOWN, details: 'weird' });
  });
});
