// vmwrapper end to end without root: a fake fd server and a stub emulator. Each failure
// exits 1 with exactly one stderr line naming the key (token hidden) and the socket, and
// never runs the emulator; the happy path survives a reply split over several reads.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeAnswer, FakeFdServer, startFakeFdServer } from '../fixtures/vmwrapper/fake-fd-server';
import { parseStub, requireBuilt, runWrapper, SHIM, STUB } from '../fixtures/vmwrapper/run-wrapper';

const KEY = 'sb-err:tok3n';
const NIC = { mac: '02:00:00:00:00:01', model: 'virtio-net-pci', queues: 1, vnetHdr: true, tap: 'tap0', vhost: false };

describe('vmwrapper errors and framing', () => {
  let tmp: string;
  let server: FakeFdServer | undefined;
  let nullFds: number[] = [];
  beforeAll(() => {
    requireBuilt();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-vmw-'));
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    for (const fd of nullFds) fs.closeSync(fd);
    nullFds = [];
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const devNulls = (n: number): number[] => {
    const fds = Array.from({ length: n }, () => fs.openSync('/dev/null', 'r'));
    nullFds.push(...fds);
    return fds;
  };

  async function expectFailure(socketPath: string, env: Record<string, string>, pattern: RegExp): Promise<void> {
    const out = path.join(tmp, `stub-${Math.random().toString(36).slice(2)}`);
    const r = await runWrapper(['-name', 'g'], {
      TAPWIRE_NET_KEY: KEY,
      TAPWIRE_EMULATOR: STUB,
      TAPWIRE_FD_SOCKET: socketPath,
      STUB_OUT: out,
      ...env,
    });
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^vmwrapper: failed to /);
    expect(lines[0]).toContain('key "sb-err:<token>"');
    expect(lines[0]).toContain(`fd socket "${socketPath}"`);
    expect(lines[0]).not.toContain('tok3n');
    expect(lines[0]).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(out)).toBe(false); // the emulator never ran
  }

  const serve = async (a: FakeAnswer | ((req: Record<string, unknown>) => FakeAnswer)): Promise<string> => {
    server = await startFakeFdServer(typeof a === 'function' ? a : () => a);
    return server.socketPath;
  };

  it('daemon down: no socket file', async () => {
    await expectFailure(path.join(tmp, 'absent.sock'), {}, /cannot connect: ENOENT$/);
  });

  it('daemon down: socket file with nobody listening', async () => {
    // a stale socket inode, as a dead daemon leaves behind: bound, never listening
    const stale = path.join(tmp, 'stale.sock');
    execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', stale]);
    await expectFailure(stale, {}, /cannot connect: ECONNREFUSED$/);
  });

  it('bad key: the daemon says EINVAL', async () => {
    const p = await serve({
      reply: { ok: false, error: { code: 'EINVAL', message: 'invalid key "x": bad', field: 'key' } },
    });
    await expectFailure(p, {}, /daemon refused \(EINVAL\): invalid key "x": bad$/);
    expect(server!.requests).toEqual([{ v: 1, id: 1, op: 'fds', key: KEY }]);
  });

  it('token refused: the daemon says EACCES', async () => {
    const p = await serve({ reply: { ok: false, error: { code: 'EACCES', message: 'network key refused' } } });
    await expectFailure(p, {}, /daemon refused \(EACCES\): network key refused$/);
  });

  it('fd count mismatch: two queues announced, one fd sent', async () => {
    const p = await serve(() => ({
      reply: { ok: true, result: { sandboxId: 'sb-err', nics: [{ ...NIC, queues: 2 }] } },
      fds: devNulls(1),
    }));
    await expectFailure(p, {}, /fd count mismatch: got 1 fds for 1 NICs, want 2$/);
  });

  it('fd count mismatch: fds announced, none sent', async () => {
    const p = await serve({ reply: { ok: true, result: { sandboxId: 'sb-err', nics: [NIC] } } });
    await expectFailure(p, {}, /fd count mismatch: got 0 fds for 1 NICs, want 1$/);
  });

  it('a NIC the reply describes badly', async () => {
    const p = await serve(() => ({
      reply: { ok: true, result: { sandboxId: 'sb-err', nics: [{ ...NIC, model: 'e1000,x=1' }] } },
      fds: devNulls(1),
    }));
    await expectFailure(p, {}, /bad reply: invalid nics\[0\]\.model "e1000,x=1"/);
  });

  it('daemon closes without a reply', async () => {
    const p = await serve({});
    await expectFailure(p, {}, /daemon closed the connection before a whole reply arrived$/);
  });

  it('daemon sends garbage', async () => {
    const p = await serve({ raw: Buffer.from('\x00\x00\x00\x05notjs') });
    await expectFailure(p, {}, /bad reply \(EPROTO\): frame is not JSON/);
  });

  it('a daemon that accepts and never answers: gives up after TAPWIRE_FD_TIMEOUT_MS', async () => {
    const hung = path.join(tmp, 'hung.sock');
    const conns: net.Socket[] = [];
    const srv = net.createServer((c) => conns.push(c));
    await new Promise<void>((r) => srv.listen(hung, r));
    try {
      const t = Date.now();
      await expectFailure(hung, { TAPWIRE_FD_TIMEOUT_MS: '300' }, /no reply from the daemon within 300 ms$/);
      expect(Date.now() - t).toBeLessThan(10_000); // not the 10 s default, and never forever
    } finally {
      for (const c of conns) c.destroy();
      await new Promise((r) => srv.close(r));
    }
  });

  it('a bad TAPWIRE_FD_TIMEOUT_MS is named with its value', async () => {
    const r = await runWrapper([], { TAPWIRE_NET_KEY: KEY, TAPWIRE_EMULATOR: STUB, TAPWIRE_FD_TIMEOUT_MS: '5s' });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('vmwrapper: invalid TAPWIRE_FD_TIMEOUT_MS "5s": want milliseconds > 0');
  });

  it('TAPWIRE_EMULATOR pointing back at vmwrapper fails once instead of exec-looping', async () => {
    const r = await runWrapper(['-help'], { TAPWIRE_EMULATOR: SHIM });
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^vmwrapper: emulator ".*vmwrapper" is vmwrapper itself .*set TAPWIRE_EMULATOR to the real QEMU$/,
    );
  });

  it('emulator missing', async () => {
    const p = await serve({ reply: { ok: true, result: { sandboxId: 'sb-err', nics: [NIC] } } });
    await expectFailure(
      p,
      { TAPWIRE_EMULATOR: path.join(tmp, 'no-qemu') },
      /failed to exec emulator ".*no-qemu".*: ENOENT$/,
    );
    expect(server!.requests).toHaveLength(0); // checked before asking the daemon
  });

  it('no key: execs the emulator with argv untouched, no daemon contacted', async () => {
    const out = path.join(tmp, 'plain');
    const r = await runWrapper(['-S', '-no-user-config', '-machine', 'none,accel=tcg', '-daemonize'], {
      TAPWIRE_EMULATOR: STUB,
      TAPWIRE_FD_SOCKET: path.join(tmp, 'absent.sock'),
      STUB_OUT: out,
    });
    expect(r.code).toBe(0);
    const rep = parseStub(fs.readFileSync(out, 'utf8'));
    expect(rep.args).toEqual(['-S', '-no-user-config', '-machine', 'none,accel=tcg', '-daemonize']);
    expect(rep.pid).toBe(r.pid);
  });

  it('a reply split over several reads with the fds on the last piece', async () => {
    const p = await serve(() => ({
      reply: {
        ok: true,
        result: { sandboxId: 'sb-err', nics: [NIC, { ...NIC, mac: '02:00:00:00:00:02', model: 'e1000' }] },
      },
      fds: devNulls(2),
      chunks: 5,
    }));
    const out = path.join(tmp, 'split');
    const r = await runWrapper(['-name', 'g'], {
      TAPWIRE_NET_KEY: KEY,
      TAPWIRE_EMULATOR: STUB,
      TAPWIRE_FD_SOCKET: p,
      STUB_OUT: out,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rep = parseStub(fs.readFileSync(out, 'utf8'));
    expect(rep.key).toBe('none'); // the key is not passed on to the emulator
    const fdArgs = rep.args.filter((a) => a.startsWith('tap,')).map((a) => Number(/fd=(\d+)/.exec(a)![1]));
    expect(fdArgs).toHaveLength(2);
    for (const fd of fdArgs) expect(rep.fds.get(fd)).toBe('/dev/null');
    expect(rep.args.slice(0, 2)).toEqual(['-name', 'g']);
  });
});
