// The booter without QEMU: a shell stands in for the emulator and prints guest lines on
// stdout, into a file or from an inherited fd. The result ends at the process's exit, at
// the done line (until 'done'), or at the timeout (the process is killed); a program that
// cannot start or fails is a problem in the verdict, never a rejection.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { followConsole, startGuest } from '../../src/guest/boot';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-guest-boot-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const LEASE = 'tapwire-guest lease nic=eth0 family=4 ip=10.0.0.2 mask=24 router=10.0.0.1 up=2';
const DONE = 'tapwire-guest done status=ok failed=- up=3';
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('startGuest', () => {
  it('reads the console from stdout, kernel noise and CRLF included, until the process exits', async () => {
    const lines: string[] = [];
    const run = startGuest({
      command: 'sh',
      args: ['-c', `printf '[ 0.1] noise\\r\\n${LEASE}\\r\\n'; sleep 0.2; printf '${DONE}'`],
      console: 'stdio',
      timeoutMs: 30_000,
      expect: { lease: { ip: '10.0.0.2' } },
      onLine: (l) => lines.push(l.event),
    });
    const res = await run.result;
    expect(res.verdict).toEqual({ ok: true, problems: [] });
    expect(res.exitCode).toBe(0);
    expect(res.timedOut).toBe(false);
    expect(lines).toEqual(['lease', 'done']);
    expect(res.tail).toEqual(['[ 0.1] noise', LEASE, DONE]);
  });

  it('follows a console file as it grows', async () => {
    const file = path.join(tmp, 'console.log');
    const res = await startGuest({
      command: 'sh',
      args: ['-c', `echo '${LEASE}' >> ${file}; sleep 0.3; echo '${DONE}' >> ${file}`],
      console: { file },
      timeoutMs: 30_000,
    }).result;
    expect(res.verdict.ok, res.verdict.problems.join('\n')).toBe(true);
    expect(res.report.lines).toEqual([LEASE, DONE]);
  });

  it('gives the program the fds as 3, 4, ...', async () => {
    const file = path.join(tmp, 'fd3');
    fs.writeFileSync(file, `${LEASE}\n${DONE}\n`);
    const fd = fs.openSync(file, 'r');
    try {
      const res = await startGuest({
        command: 'sh',
        args: ['-c', 'cat <&3'],
        console: 'stdio',
        fds: [fd],
        timeoutMs: 30_000,
      }).result;
      expect(res.verdict.ok).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('kills a guest that does not finish in time', async () => {
    const run = startGuest({
      command: 'sh',
      args: ['-c', `echo '${LEASE}'; exec sleep 60`],
      console: 'stdio',
      timeoutMs: 500,
    });
    const res = await run.result;
    expect(res.timedOut).toBe(true);
    expect(res.verdict.ok).toBe(false);
    expect(res.verdict.problems).toEqual(['no done line within 0.5 s (killed)', 'the guest never said done']);
    expect(res.report.leases).toHaveLength(1);
    expect(alive(run.pid)).toBe(false);
  });

  it("returns at the done line with until 'done', the process still up for kill()", async () => {
    const run = startGuest({
      command: 'sh',
      args: ['-c', `echo '${LEASE}'; echo '${DONE}'; exec sleep 60`],
      console: 'stdio',
      until: 'done',
      timeoutMs: 30_000,
    });
    const res = await run.result;
    expect(res.verdict.ok).toBe(true);
    expect(res.exitCode).toBeNull();
    expect(alive(run.pid)).toBe(true);
    await run.kill();
    expect(alive(run.pid)).toBe(false);
  });

  it('names a program that fails or cannot start', async () => {
    const failed = await startGuest({
      command: 'sh',
      args: ['-c', 'echo "qemu: could not open tap" >&2; exit 3'],
      console: 'stdio',
      timeoutMs: 30_000,
    }).result;
    expect(failed.verdict.problems[0]).toBe('"sh" exited 3: qemu: could not open tap');
    expect(failed.exitCode).toBe(3);

    const run = startGuest({ command: '/nonexistent/qemu', args: [], console: 'stdio', timeoutMs: 30_000 });
    const missing = await run.result;
    expect(missing.verdict.problems[0]).toBe(
      '"/nonexistent/qemu" exited without starting: spawn /nonexistent/qemu ENOENT',
    );
    await run.kill();
  });
});

describe('followConsole', () => {
  it('waits for a file that appears later and judges it at the done line', async () => {
    const file = path.join(tmp, 'later.log');
    setTimeout(() => fs.writeFileSync(file, `${LEASE}\n`), 200);
    setTimeout(() => fs.appendFileSync(file, `${DONE}\n`), 400);
    const res = await followConsole(file, { timeoutMs: 30_000, expect: { lease: { router: '10.0.0.1' } } });
    expect(res.verdict).toEqual({ ok: true, problems: [] });
    expect(res.timedOut).toBe(false);
  });

  it('stops at the timeout or when aborted', async () => {
    const file = path.join(tmp, 'never.log');
    const timed = await followConsole(file, { timeoutMs: 300 });
    expect(timed.timedOut).toBe(true);
    expect(timed.verdict.problems[0]).toBe(`no done line in ${file} within 0.3 s`);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const aborted = await followConsole(file, { timeoutMs: 60_000, signal: ac.signal });
    expect(aborted.verdict.problems[0]).toBe(`stopped following ${file}`);
  });
});
