// Hostile setup requests over the real control socket of a real daemon (dist), against a
// real pod netns: each gets EINVAL naming the field (a frame nested absurdly deep gets
// EPROTO), nothing in the pod changes, and the daemon stays up and keeps answering.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { TapmanagerError } from '../../src/tapmanager/client';
import { FrameDecoder, MAX_FRAME, MAX_FRAME_DEPTH } from '../../src/tapmanager/protocol';
import { nestsDeeperThan } from '../../src/util/json-depth';
import { deep, mutate, prng } from '../fixtures/setup-fuzz';
import { dadDone } from '../helpers/ip-dump';
import { killDaemons, startDaemon, type Daemon } from '../helpers/daemon';
import { createNetns, removeAllNetns } from '../helpers/netns';
import { makePod, podState, type Pod } from '../helpers/pod';
import { describePrivileged } from '../helpers/privileged';

describePrivileged('tapmanager refuses malformed setup requests over the control socket', () => {
  let dir: string;
  let d: Daemon;
  let p: Pod;
  let before: string;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-valid-'));
    d = await startDaemon(dir);
    p = makePod();
    await dadDone(p.pod, ['eth0']); // the kernel's own changes are over before the snapshot
    before = podState(p.pod);
  });
  afterEach(async () => {
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The error reply to a setup request sent as it is. */
  async function refusal(req: Record<string, unknown>): Promise<TapmanagerError> {
    try {
      const res = (await d.client.call({ op: 'setup', ...req })) as { sandboxId: string };
      await d.client.teardown(res.sandboxId);
    } catch (e) {
      expect(e).toBeInstanceOf(TapmanagerError);
      return e as TapmanagerError;
    }
    throw new Error(`setup succeeded: ${JSON.stringify(req).slice(0, 300)}`);
  }

  /** One frame sent on a connection of its own; resolves with the first reply frame. */
  function rawExchange(socketPath: string, body: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const conn = net.createConnection(socketPath);
      const decoder = new FrameDecoder();
      const head = Buffer.alloc(4);
      head.writeUInt32BE(Buffer.byteLength(body));
      conn.write(Buffer.concat([head, Buffer.from(body)]));
      conn.on('data', (chunk) => {
        const [reply] = decoder.push(chunk);
        if (reply === undefined) return;
        conn.destroy();
        resolve(reply);
      });
      conn.on('error', reject);
      conn.on('close', () => reject(new Error('closed without a reply')));
    });
  }

  async function stillServing(): Promise<void> {
    expect(d.child.exitCode).toBeNull();
    expect(d.child.signalCode).toBeNull();
    expect(await d.client.list()).toEqual([]);
    expect(podState(p.pod)).toBe(before);
    expect(d.logs().filter((l) => l.level === 'error')).toEqual([]);
  }

  it('names the field of each case the review found, touches nothing, and keeps serving', async () => {
    const base = { sandboxId: 'sb-v', netnsPath: p.pod.path, cniResult: p.cniResult, hostname: 'vm' };
    const cni = (patch: Record<string, unknown>) => ({ ...base, cniResult: { ...p.cniResult, ...patch } });
    const other = createNetns('other');
    const cases: [Record<string, unknown>, string, RegExp?][] = [
      [{ ...base, dns: { servers: [5] } }, 'dns.servers[0]', /^invalid dns\.servers\[0\] 5: must be a string$/],
      [{ ...base, dns: { servers: 'abc' } }, 'dns.servers', /"abc"/],
      [{ ...base, dns: { servers: ['10.0.0.1', 'ns1'] } }, 'dns.servers[1]', /"ns1": must be an IP address/],
      [cni({ dns: { nameservers: deep(MAX_FRAME_DEPTH - 5) } }), 'cniResult.dns.nameservers[0]'],
      [cni({ routes: deep(MAX_FRAME_DEPTH - 5, null, 'object') }), 'cniResult.routes', /must be a list/],
      [cni({ ips: Array.from({ length: 65 }, () => p.cniResult.ips![0]) }), 'cniResult.ips', /at most 64/],
      [{ ...base, frob: 1 }, 'frob', /is not a known field/],
      [{ ...base, sandboxId: 'x'.repeat(500_000) }, 'sandboxId', /\.\.\. \(500000 characters\)/],
      [{ ...base, hostname: undefined, podName: 'Bad Pod!' }, 'podName', /cannot be the guest hostname/],
      // kept as it is up to 63 (the kubelet's rule, as tapwire-cri's), so not trimmed into a hostname
      [{ ...base, hostname: undefined, podName: 'vm-' }, 'podName', /cannot be the guest hostname/],
      [{ ...base, hostname: `${'h'.repeat(64)}` }, 'hostname', /must be a DNS name/],
      [
        cni({ interfaces: [{ name: 'eth0', sandbox: other.path }], ips: [{ address: `${p.ip}/24`, interface: 0 }] }),
        'cniResult.interfaces[0].sandbox',
        /is not this setup's network namespace/,
      ],
      [
        cni({ interfaces: [{ name: 'eth0', sandbox: '/run/netns/none' }], ips: [{ address: `${p.ip}/24` }] }),
        'cniResult.interfaces[0].sandbox',
        /does not exist/,
      ],
      [cni({ ips: [{ address: `${p.ip}/24`, interface: 2 }] }), 'cniResult.ips[0].interface', /there are 2 interfaces/],
    ];
    for (const [req, field, message] of cases) {
      const e = await refusal(req);
      expect({ code: e.code, field: e.field }, e.message).toEqual({ code: 'EINVAL', field });
      expect(e.message.length).toBeLessThan(400);
      if (message) expect(e.message).toMatch(message);
    }
    // nested past what any request needs: the frame is refused before it is parsed (the
    // client cannot even encode it: JSON.stringify overflows its stack, so it goes raw)
    const text = JSON.stringify({ v: 1, id: 9, op: 'setup', ...base });
    const nested = `${text.slice(0, -1)},"dns":{"servers":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
    expect(await rawExchange(d.controlSocket, nested)).toMatchObject({
      ok: false,
      error: { code: 'EPROTO', message: expect.stringContaining('nests deeper than 64') },
    });
    expect(d.logs().some((l) => /setup failed/.test(l.msg))).toBe(false); // nothing got as far as the build
    await stillServing();
  });

  it('accepts an interface whose sandbox names the same netns by another path, and a long pod name', async () => {
    const alias = path.join(dir, 'pod-netns-link');
    fs.symlinkSync(p.pod.path, alias);
    const interfaces = p.cniResult.interfaces!.map((i) => (i.sandbox ? { ...i, sandbox: alias } : i));
    const podName = `${'a'.repeat(62)}-${'b'.repeat(100)}`; // a valid Kubernetes pod name, 163 characters
    const res = await d.client.setup({
      sandboxId: 'sb-alias',
      netnsPath: p.pod.path,
      cniResult: { ...p.cniResult, interfaces },
      podName,
    });
    expect(res.nics.map((n) => n.veth)).toEqual(['eth0']);
    expect(await d.client.teardown('sb-alias')).toEqual({ errors: [] });
    await stillServing();
  });

  it('answers seeded random mutations of a valid request with EINVAL naming a field, or builds and tears down', async () => {
    const seed = Number(process.env.SETUP_FUZZ_SEED ?? 20260915);
    const rand = prng(seed);
    const base = {
      sandboxId: 'sb-fuzz',
      netnsPath: p.pod.path,
      cniResult: p.cniResult,
      dns: { servers: ['10.96.0.10'], searches: ['svc.cluster.local'] },
      hostname: 'vm',
      podName: 'vm',
      podNamespace: 'default',
      queues: 2,
    };
    const tally = { refused: 0, built: 0, tooDeep: 0 };
    for (let i = 0; i < 300; i++) {
      const req = mutate(base, rand) as Record<string, unknown>;
      const text = JSON.stringify({ v: 1, id: 1, op: 'setup', ...req });
      if (text.length > MAX_FRAME - 64) continue; // the client refuses to send it
      const what = `case ${i} (seed ${seed}): ${text.slice(0, 300)}`;
      try {
        const res = (await d.client.call({ op: 'setup', ...req })) as { sandboxId: string };
        expect(await d.client.teardown(res.sandboxId), what).toEqual({ errors: [] });
        tally.built++;
      } catch (e) {
        const err = e as TapmanagerError;
        if (nestsDeeperThan(Buffer.from(text), MAX_FRAME_DEPTH)) {
          // refused with EPROTO (id 0) and the connection closed: the client sees EPIPE
          expect(['EPROTO', 'EPIPE'], what).toContain(err.code);
          tally.tooDeep++;
        } else {
          expect({ code: err.code, field: typeof err.field }, `${what}\n${err.message}`).toEqual({
            code: 'EINVAL',
            field: 'string',
          });
          expect(err.message.length, what).toBeLessThan(600);
          tally.refused++;
        }
      }
    }
    expect(tally.built).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(100);
    expect(tally.tooDeep).toBeGreaterThan(5);
    await stillServing();
  });
});
