// tapwire-cri in proxy mode (--backend) without root: a fake CRI runtime (a grpc-js server
// with the official proto) behind the proxy, clients from the official proto in front.
// Requests and responses arrive byte for byte (unknown fields too), metadata both ways,
// headers and trailers, error code, details and status details, deadline and cancellation,
// server streaming with its status, messages past grpc's 4 MB default, an unreachable
// backend (UNAVAILABLE), a bad --backend refused naming the value, and the binary's exit.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOADER_OPTIONS, protoPath } from '../../src/cri/proto';
import { backendTarget } from '../../src/cri/proxy/backend';
import { ProxyServer } from '../../src/cri/proxy/server';
import { criClient, CriClient } from '../fixtures/cni/cri-harness';
import { CRI_BIN, startProxy } from '../fixtures/containerd/proxy-proc';

type Handler = (call: any, cb?: any) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Seen {
  metadata?: grpc.Metadata;
  deadline?: grpc.Deadline;
  cancelled?: boolean;
  rawRequest?: Buffer;
}

let tmp: string;
let backend: grpc.Server;
let proxy: ProxyServer;
let client: CriClient;
let rawClient: grpc.Client;
let proxySock: string;
const seen: Record<string, Seen> = {};
let releaseSlow: (() => void) | undefined;

// PodSandboxStatusRequest{pod_sandbox_id: "abc", verbose: true} plus field 99 (varint 7),
// which no CRI proto has: a proxy that decoded and re-encoded would drop it.
const RAW_REQUEST = Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63, 0x10, 0x01, 0x98, 0x06, 0x07]);
// a PodSandboxStatusResponse with only an unknown field 77 (length-delimited "zz")
const RAW_RESPONSE = Buffer.from([0xea, 0x04, 0x02, 0x7a, 0x7a]);

function fakeRuntime(): grpc.Server {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath(), LOADER_OPTIONS)) as unknown as {
    runtime: { v1: Record<string, { service: grpc.ServiceDefinition }> };
  };
  const rt = pkg.runtime.v1.RuntimeService!.service;
  const im = pkg.runtime.v1.ImageService!.service;
  const server = new grpc.Server({ 'grpc.max_send_message_length': -1 });
  const runtime: Record<string, Handler> = {
    Version: (call, cb) => {
      seen.Version = { metadata: call.metadata, deadline: call.getDeadline() };
      const head = new grpc.Metadata();
      head.set('x-head', 'h1');
      call.sendMetadata(head);
      const trail = new grpc.Metadata();
      trail.set('x-trail', 't1');
      trail.set('x-trail-bin', Buffer.from([0, 1, 2]));
      cb(
        null,
        { version: call.request.version, runtime_name: 'fake', runtime_version: '1', runtime_api_version: 'v1' },
        trail,
      );
    },
    Status: (_call, cb) => {
      const md = new grpc.Metadata();
      md.set('x-err', 'e1');
      md.set('grpc-status-details-bin', Buffer.from('status-details-proto'));
      cb({ code: grpc.status.FAILED_PRECONDITION, details: 'runtime says no: ünïcode', metadata: md });
    },
    ListContainers: (call, cb) => {
      seen.ListContainers = { deadline: call.getDeadline(), cancelled: false };
      call.on('cancelled', () => (seen.ListContainers!.cancelled = true));
      releaseSlow = () => cb(null, { containers: [] });
    },
    GetContainerEvents: (call) => {
      // GetEventsRequest has no fields: the metadata says how to end
      for (let i = 0; i < 3; i++)
        call.write({ container_id: `c${i}`, container_event_type: 'CONTAINER_STARTED_EVENT' });
      if (call.metadata.get('x-fail')[0] === 'yes') {
        call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'too many events' });
        return;
      }
      const trail = new grpc.Metadata();
      trail.set('x-stream-trail', 's1');
      call.end(trail);
    },
  };
  const image: Record<string, Handler> = {
    ListImages: (_call, cb) =>
      cb(null, { images: [{ id: 'big', repo_tags: ['x'.repeat(5 * 1024 * 1024)], repo_digests: [], size: 1 }] }),
  };
  const { PodSandboxStatus: ps, ...rest } = rt;
  server.addService(rest, runtime);
  server.addService(im, image);
  // PodSandboxStatus as raw bytes both ways, to see exactly what the proxy sends
  const raw = (b: Buffer): Buffer => b;
  server.addService(
    {
      PodSandboxStatus: { ...ps, requestDeserialize: raw, responseSerialize: raw },
    } as grpc.ServiceDefinition,
    {
      PodSandboxStatus: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        seen.PodSandboxStatus = { rawRequest: call.request };
        cb(null, RAW_RESPONSE);
      },
    },
  );
  return server;
}

function call<T>(fn: (cb: (e: grpc.ServiceError | null, r: T) => void) => unknown): Promise<T> {
  return new Promise((resolve, reject) => fn((e, r) => (e ? reject(e) : resolve(r))));
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-proxy-'));
  backend = fakeRuntime();
  const backendSock = path.join(tmp, 'runtime.sock');
  await new Promise<void>((resolve, reject) =>
    backend.bindAsync(`unix://${backendSock}`, grpc.ServerCredentials.createInsecure(), (e) =>
      e ? reject(e) : resolve(),
    ),
  );
  proxy = new ProxyServer({ backend: `unix://${backendSock}` });
  proxySock = path.join(tmp, 'cri.sock');
  await proxy.listen(proxySock);
  client = criClient(proxySock);
  rawClient = new grpc.Client(`unix://${proxySock}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
  });
});

afterAll(async () => {
  releaseSlow?.();
  client?.close();
  rawClient?.close();
  await proxy?.close(1000);
  backend?.forceShutdown();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('tapwire-cri proxy', () => {
  it('forwards a call with its metadata, and brings back headers, message and trailers', async () => {
    const md = new grpc.Metadata();
    md.add('x-test', 'one');
    md.add('x-test', 'two');
    md.set('x-bin-bin', Buffer.from([0xff, 0x00]));
    let head: grpc.Metadata | undefined;
    let trail: grpc.Metadata | undefined;
    const res = await new Promise<Buffer>((resolve, reject) => {
      const c = rawClient.makeUnaryRequest(
        '/runtime.v1.RuntimeService/Version',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0x0a, 0x02, 0x76, 0x31]), // VersionRequest{version: "v1"}
        md,
        (e, r) => (e ? reject(e) : resolve(r!)),
      );
      c.on('metadata', (m) => (head = m));
      c.on('status', (s) => (trail = s.metadata));
    });
    expect(res.toString()).toContain('fake');
    // HTTP/2 lets a hop join repeated headers (Node's does): the values, in order
    expect(seen.Version!.metadata!.get('x-test').join(', ')).toBe('one, two');
    expect(seen.Version!.metadata!.get('x-bin-bin')).toEqual([Buffer.from([0xff, 0x00])]);
    expect(seen.Version!.deadline).toBe(Infinity);
    expect(head!.get('x-head')).toEqual(['h1']);
    expect(trail!.get('x-trail')).toEqual(['t1']);
    expect(trail!.get('x-trail-bin')).toEqual([Buffer.from([0, 1, 2])]);
  });

  it('carries requests and responses byte for byte, fields it does not know included', async () => {
    const res = await call<Buffer>((cb) =>
      rawClient.makeUnaryRequest(
        '/runtime.v1.RuntimeService/PodSandboxStatus',
        (b: Buffer) => b,
        (b: Buffer) => b,
        RAW_REQUEST,
        cb as grpc.requestCallback<Buffer>,
      ),
    );
    expect(seen.PodSandboxStatus!.rawRequest).toEqual(RAW_REQUEST);
    expect(res).toEqual(RAW_RESPONSE);
  });

  it('passes an error back exactly: code, details, metadata, status details', async () => {
    const err = await client.runtime.Status!({}).catch((e: grpc.ServiceError) => e);
    expect(err).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: 'runtime says no: ünïcode' });
    const md = (err as grpc.ServiceError).metadata;
    expect(md.get('x-err')).toEqual(['e1']);
    expect(md.get('grpc-status-details-bin')).toEqual([Buffer.from('status-details-proto')]);
  });

  it('gives the backend call the client deadline and cancels it when the client gives up', async () => {
    const deadline = Date.now() + 300;
    const err = await client.runtime.ListContainers!({}, { deadline }).catch((e: grpc.ServiceError) => e);
    expect(err).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    const s = seen.ListContainers!;
    expect(s.deadline).not.toBe(Infinity);
    // grpc-timeout travels in whole milliseconds: the client's deadline, give or take rounding
    expect(Math.abs(new Date(s.deadline!).getTime() - deadline)).toBeLessThan(1000);
    for (let i = 0; i < 200 && !s.cancelled; i++) await new Promise((r) => setTimeout(r, 10));
    expect(s.cancelled).toBe(true);
  });

  it('forwards a server stream: every message, then the status and trailers', async () => {
    const collect = (md: grpc.Metadata): Promise<{ msgs: Buffer[]; status: grpc.StatusObject }> =>
      new Promise((resolve) => {
        const msgs: Buffer[] = [];
        const s = rawClient.makeServerStreamRequest(
          '/runtime.v1.RuntimeService/GetContainerEvents',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          md,
        );
        s.on('data', (b: Buffer) => msgs.push(b));
        s.on('error', () => {});
        s.on('status', (status) => resolve({ msgs, status }));
      });
    const ok = await collect(new grpc.Metadata());
    expect(ok.msgs.map((b) => b.toString())).toEqual([
      expect.stringContaining('c0'),
      expect.stringContaining('c1'),
      expect.stringContaining('c2'),
    ]);
    expect(ok.status.code).toBe(grpc.status.OK);
    expect(ok.status.metadata.get('x-stream-trail')).toEqual(['s1']);
    const md = new grpc.Metadata();
    md.set('x-fail', 'yes');
    const failed = await collect(md);
    expect(failed.msgs).toHaveLength(3);
    expect(failed.status).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'too many events' });
  });

  it('carries a response past grpc-js default 4 MB limit', async () => {
    const res = await call<Buffer>((cb) =>
      rawClient.makeUnaryRequest(
        '/runtime.v1.ImageService/ListImages',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        cb as grpc.requestCallback<Buffer>,
      ),
    );
    expect(res.length).toBeGreaterThan(5 * 1024 * 1024);
  });

  it('answers UNIMPLEMENTED as the backend does for methods it lacks', async () => {
    await expect(client.runtime.CheckpointContainer!({ containerId: 'x' })).rejects.toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
    });
  });

  it('answers UNAVAILABLE while the backend is unreachable', async () => {
    const p = new ProxyServer({ backend: path.join(tmp, 'nothing.sock') });
    const sock = path.join(tmp, 'cri2.sock');
    await p.listen(sock);
    const c = criClient(sock);
    try {
      await expect(c.runtime.Version!({})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    } finally {
      c.close();
      await p.close(1000);
    }
  });

  it('the binary: a bad --backend or count flag exits 2 naming it; SIGTERM exits 0 and removes the socket', async () => {
    expect(fs.existsSync(CRI_BIN)).toBe(true); // npm run build
    const bad = spawnSync(process.execPath, [CRI_BIN, '--backend', 'tcp://1.2.3.4:5'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('"tcp://1.2.3.4:5"');
    for (const [flag, value] of [
      ['--reconcile-interval', '1.5'],
      ['--stop-teardown-attempts', '-1'],
      ['--stop-teardown-grace', '999999'],
    ]) {
      const r = spawnSync(process.execPath, [CRI_BIN, '--backend', path.join(tmp, 'runtime.sock'), flag!, value!], {
        encoding: 'utf8',
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`${flag}: "${value}"`);
    }
    const p = await startProxy(path.join(tmp, 'bin.sock'), path.join(tmp, 'runtime.sock'));
    const c = criClient(p.socket);
    try {
      expect((await c.runtime.Version!({})).runtimeName).toBe('fake');
    } finally {
      c.close();
    }
    expect(await p.stop()).toBe(0);
    expect(fs.existsSync(p.socket)).toBe(false);
  });

  it('finds a restarted backend again without a restart of its own', async () => {
    const sock = path.join(tmp, 'restart.sock');
    const bind = async (): Promise<grpc.Server> => {
      const b = fakeRuntime();
      await new Promise<void>((resolve, reject) =>
        b.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
      );
      return b;
    };
    let b = await bind();
    const p = new ProxyServer({ backend: sock });
    await p.listen(path.join(tmp, 'cri3.sock'));
    const c = criClient(path.join(tmp, 'cri3.sock'));
    try {
      expect((await c.runtime.Version!({})).runtimeName).toBe('fake');
      b.forceShutdown();
      fs.rmSync(sock, { force: true });
      await expect(c.runtime.Version!({})).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      b = await bind();
      let answered: string | undefined;
      for (let i = 0; i < 100 && !answered; i++) {
        answered = await c.runtime.Version!({}).then(
          (r) => r.runtimeName as string,
          () => new Promise<undefined>((r) => setTimeout(() => r(undefined), 100)),
        );
      }
      expect(answered).toBe('fake');
    } finally {
      c.close();
      await p.close(1000);
      b.forceShutdown();
    }
  });

  it('refuses a --backend that is not a Unix socket path, naming it', () => {
    expect(backendTarget('/run/containerd/containerd.sock')).toBe('unix:///run/containerd/containerd.sock');
    expect(backendTarget('unix:///x.sock')).toBe('unix:///x.sock');
    expect(() => backendTarget('tcp://1.2.3.4:5')).toThrow('--backend: want unix:///absolute/path.sock');
    expect(() => backendTarget('relative.sock')).toThrow('"relative.sock"');
  });
});
