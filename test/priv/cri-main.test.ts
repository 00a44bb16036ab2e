// The tapwire-cri binary (dist/src/cri/main.js, or $TAPWIRE_CRI_BIN) as a process: flags,
// a full sandbox lifecycle over its socket with the real CNI plugins in a node netns
// (--cni-host-netns) and a stand-in tapmanager speaking the real control-socket protocol,
// the tapmanager being unreachable (UNAVAILABLE, rolled back), and SIGTERM removing the socket.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, PROTOCOL_VERSION } from '../../src/tapmanager/protocol';
import { criClient, CriClient, podConfig } from '../fixtures/cni/cri-harness';
import { createNetns, removeAllNetns, TestNetns } from '../helpers/netns';
import { describePrivileged, inCI, requireTools } from '../helpers/privileged';
import { unmountPins } from '../helpers/pins';

const BIN = process.env.TAPWIRE_CRI_BIN ?? path.resolve(__dirname, '../../dist/src/cri/main.js');
const missing =
  requireTools('nsenter', 'unshare', 'umount', 'iptables') ??
  (fs.existsSync(BIN) ? undefined : `${BIN} is not built (npm run build)`);

/** A control socket answering setup/teardown like tapmanager (no real topology). */
function fakeTapmanager(ops: string[]): net.Server {
  return net.createServer((conn) => {
    const dec = new FrameDecoder();
    conn.on('data', (chunk: Buffer) => {
      for (const f of dec.push(chunk) as { id: number; op: string; sandboxId: string }[]) {
        ops.push(f.op);
        const result = f.op === 'setup' ? { sandboxId: f.sandboxId, netKey: 'k'.repeat(32), nics: [] } : { errors: [] };
        conn.write(encodeFrame({ v: PROTOCOL_VERSION, id: f.id, ok: true, result }));
      }
    });
  });
}

/** Outside CI a missing tool skips with the reason; in CI it fails. */
function skipOrFail(ctx: { skip: (note: string) => void }, why: string): void {
  if (inCI) throw new Error(why);
  ctx.skip(why);
}

describePrivileged('tapwire-cri binary', () => {
  let tmp: string;
  let node: TestNetns;
  let proc: ChildProcess | undefined;
  let client: CriClient | undefined;
  let tapServer: net.Server | undefined;
  let stderr = '';

  async function start(sock: string, args: string[]): Promise<void> {
    proc = spawn(process.execPath, [BIN, '--listen', sock, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    while (!fs.existsSync(sock)) {
      if (proc.exitCode !== null) throw new Error(`tapwire-cri exited ${proc.exitCode}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    client = criClient(sock);
  }

  beforeEach((ctx) => {
    if (missing) return skipOrFail(ctx, missing);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-crimain-'));
    node = createNetns('node');
    fs.mkdirSync(path.join(tmp, 'net.d'));
    const conf = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../deploy/cni/10-tapwire.conflist'), 'utf8'));
    conf.plugins[0].ipam.dataDir = path.join(tmp, 'ipam');
    fs.writeFileSync(path.join(tmp, 'net.d', '10-tapwire.conflist'), JSON.stringify(conf));
  });

  afterEach(async () => {
    client?.close();
    client = undefined;
    if (proc && proc.exitCode === null) {
      proc.kill('SIGKILL');
      await new Promise((r) => proc!.once('exit', r));
    }
    proc = undefined;
    tapServer?.close();
    tapServer = undefined;
    // netns pinned in tmp/netns, and the shared bind mount of the dir itself
    unmountPins(path.join(tmp, 'netns'));
    removeAllNetns();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    stderr = '';
  });

  const flags = (tapSock: string): string[] => [
    '--state-dir', path.join(tmp, 'state'),
    '--netns-dir', path.join(tmp, 'netns'),
    '--cni-conf-dir', path.join(tmp, 'net.d'),
    '--cni-bin-dir', '/opt/cni/bin,/usr/lib/cni',
    '--cni-host-netns', node.path,
    '--tapmanager-socket', tapSock,
  ]; // prettier-ignore

  it('runs, reports, stops and removes a sandbox; SIGTERM removes the socket', async () => {
    const ops: string[] = [];
    const tapSock = path.join(tmp, 'control.sock');
    tapServer = fakeTapmanager(ops);
    await new Promise<void>((r) => tapServer!.listen(tapSock, r));
    const sock = path.join(tmp, 'cri.sock');
    await start(sock, flags(tapSock));
    const rt = client!.runtime;
    const { podSandboxId: id } = await rt.RunPodSandbox!({ config: podConfig('bin1') });
    const st = await rt.PodSandboxStatus!({ podSandboxId: id, verbose: true });
    expect(st.status.network.ip).toBe('10.250.0.2');
    expect(st.info.netKey).toBe('k'.repeat(32));
    expect(node.ip('-o', 'addr', 'show', 'dev', 'tw-cni0')).toContain('10.250.0.1/24');
    await rt.StopPodSandbox!({ podSandboxId: id });
    await rt.RemovePodSandbox!({ podSandboxId: id });
    expect(ops).toEqual(['setup', 'status', 'teardown']); // status: the verbose topology
    expect(fs.readdirSync(path.join(tmp, 'netns'))).toEqual([]);
    expect(fs.readdirSync(path.join(tmp, 'ipam', 'tapwire')).filter((f) => f.startsWith('10.'))).toEqual([]);
    client!.close();
    client = undefined;
    proc!.kill('SIGTERM');
    const code = await new Promise((r) => proc!.once('exit', r));
    expect(code).toBe(0);
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('answers UNAVAILABLE when tapmanager is not running, leaving nothing behind', async () => {
    const sock = path.join(tmp, 'cri.sock');
    await start(sock, flags(path.join(tmp, 'no-tapmanager.sock')));
    await expect(client!.runtime.RunPodSandbox!({ config: podConfig('bin2') })).rejects.toMatchObject({
      code: status.UNAVAILABLE,
      details: expect.stringContaining('tapmanager: tapmanager control socket'),
    });
    expect((await client!.runtime.ListPodSandbox!({})).items).toEqual([]);
    expect(fs.readdirSync(path.join(tmp, 'netns'))).toEqual([]);
    expect(fs.readdirSync(path.join(tmp, 'ipam', 'tapwire')).filter((f) => f.startsWith('10.'))).toEqual([]);
    expect(stderr).toContain('RunPodSandbox failed, rolling back');
  });
});
