// Recovery errors in the metrics, by the recovery step and the errno: a daemon (dist) with
// --metrics-address serves a sandbox and is killed (kill -9). Before it starts again, a
// process in the pod's netns holds UDP port 67 on every device (no SO_REUSEADDR), so the
// sandbox's DHCP server cannot bind again, and a record file that is not JSON lies beside
// the sandbox's. The restarted daemon's endpoint must count one restart_dhcp EADDRINUSE
// and one load_record EINVAL; the sandbox stays, its drift says recovery failed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { waitFor } from '../fixtures/dhcp-net';
import { killAll, spawnIn } from '../fixtures/dhcp-procs';
import { killDaemon, killDaemons, startDaemon, stopDaemon } from '../helpers/daemon';
import { removeAllNetns } from '../helpers/netns';
import { makePod } from '../helpers/pod';
import { describePrivileged, requireTools } from '../helpers/privileged';

const HOLD_PORT_67 = [
  'import socket, sys, time',
  's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
  "s.bind(('0.0.0.0', 67))",
  "print('HOLDING', flush=True)",
  'time.sleep(600)',
].join('\n');

const value = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describePrivileged('recovery errors in the metrics', () => {
  const missing = requireTools('python3');
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-mrec-'));
  });
  afterEach(async () => {
    await killAll();
    await killDaemons();
    removeAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts a DHCP server that cannot restart and an unreadable record, by step and errno', async () => {
    if (missing) throw new Error(missing);
    const args = ['--metrics-address', '127.0.0.1:0'];
    const first = await startDaemon(dir, { args });
    const pod = makePod();
    const id = 'sb-mrec-a';
    await first.client.setup({ sandboxId: id, netnsPath: pod.pod.path, cniResult: pod.cniResult });
    await killDaemon(first);

    const holder = spawnIn(pod.pod, 'python3', ['-c', HOLD_PORT_67]);
    await waitFor('port 67 held', () => holder.output().includes('HOLDING') || holder.child.exitCode !== null);
    expect(holder.output()).toContain('HOLDING');
    fs.writeFileSync(path.join(first.stateDir, 'sandboxes', 'sb-mrec-bad.json'), '{ not json');

    const d = await startDaemon(dir, { args });
    const target = String(d.logs().find((l) => l.msg === 'ready')!.metrics);
    const text = await (await fetch(`http://${target}/metrics`)).text();
    expect(value(text, 'tapwire_recovery_errors_total{step="restart_dhcp",errno="EADDRINUSE"}')).toBe(1);
    expect(value(text, 'tapwire_recovery_errors_total{step="load_record",errno="EINVAL"}')).toBe(1);
    expect(text.match(/^tapwire_recovery_errors_total\{/gm)).toHaveLength(2);
    expect(d.logs().find((l) => l.msg === 'cannot recover sandbox')).toMatchObject({
      sandboxId: id,
      step: 'restart_dhcp',
    });
    const st = (await d.client.status(id)) as { drift: string[] };
    expect(st.drift.join('\n')).toMatch(/recovery failed: .*EADDRINUSE/);

    holder.child.kill('SIGKILL');
    expect((await d.client.teardown(id)).errors).toEqual([]);
    await stopDaemon(d);
  });
});
