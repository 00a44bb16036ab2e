// The addon's socket watch (native/watch.cc, udp4.cc) against hostile turns: a pending
// socket error, callbacks that throw or close their own socket mid-drain, bad arguments.
// Each scenario runs in a child process (test/fixtures/watch-child.js) on loopback.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { describePrivileged } from '../helpers/privileged';

const CHILD = path.resolve(__dirname, '../fixtures/watch-child.js');

function run(scenario: string): Record<string, unknown> {
  const out = execFileSync(process.execPath, [CHILD, scenario], { encoding: 'utf8', timeout: 10_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

describePrivileged('native socket watch', () => {
  it('a pending socket error (ICMP port unreachable) is reported and the watch still receives', () => {
    // python makes the socket: connected to a port nobody listens on, one send, the error
    // pending; then the node child inherits it as fd 3
    const py = `
import socket, subprocess, sys, time
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); probe.bind(('127.0.0.1', 0))
port = probe.getsockname()[1]; probe.close()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))
s.connect(('127.0.0.1', port)); s.send(b'x'); time.sleep(0.05)
if s.fileno() != 3:
    import os; os.dup2(s.fileno(), 3)
sys.stdout.flush()
r = subprocess.run([sys.argv[1], sys.argv[2], 'pollerr', str(port)], pass_fds=[3], capture_output=True, text=True, timeout=10)
sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); sys.exit(r.returncode)
`;
    const out = execFileSync('python3', ['-c', py, process.execPath, CHILD], { encoding: 'utf8', timeout: 15_000 });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { seen: unknown[] };
    expect(r.seen).toEqual([-111, 'after-the-error']); // -ECONNREFUSED, then the datagram
  });

  it("exceptions that escape the callback or its ticks reach 'uncaughtException'; the drain goes on", () => {
    expect(run('throws')).toEqual({
      seen: ['throw', 'tick', 'after'],
      caught: ['from the callback', 'from a tick'],
    });
  });

  it('a callback that closes its socket mid-drain and opens another: no stale datagram, the new watch works', () => {
    const r = run('close-reopen') as { first: string[]; second: string[] };
    expect(r.first).toEqual(['a']);
    expect(r.second).toEqual(['', 'new']); // an empty datagram is delivered as length 0
  });

  it('wrong arguments throw naming them, never crash', () => {
    const r = run('args') as { errors: string[] };
    expect(r.errors).toEqual([
      expect.stringMatching(/^TypeError: fd must be a non-negative integer/),
      'TypeError: buf must be a Buffer',
      'TypeError: buf must not be empty',
      'TypeError: cb must be a function',
      'TypeError: port must be an integer 0..65535, got NaN',
      'TypeError: port must be an integer 0..65535, got 70000',
      expect.stringMatching(/^TypeError: dst is not an IPv4 address/),
      'TypeError: data must be a Buffer',
      expect.stringMatching(/is already watched/),
    ]);
  });
});
