// Syscalls per sandbox setup in the tapmanager daemon, counted by `strace -c -f` attached
// to every thread of the daemon for N sequential setups only (pods made beforehand,
// teardowns after it detached). A count does not depend on the machine's load the way a
// timing does, so it shows what a change to the setup path costs or saves.
// `node dist/bench/setup-syscalls.js [N]` (as root, strace installed; default N = 20).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cleanupAll, dropNetns, track } from './resources';
import { benchPod, startDaemon, stopDaemon } from './setup';

/** strace's summary table as { syscall: calls }, and its total. */
function parseSummary(text: string): { calls: Map<string, number>; total: number } {
  const calls = new Map<string, number>();
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\S+)\s*$/.exec(line);
    if (!m) continue;
    if (m[2] === 'total') total = Number(m[1]);
    else calls.set(m[2]!, Number(m[1]));
  }
  return { calls, total };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 20);
  const d = await startDaemon();
  const pods = Array.from({ length: n }, () => benchPod());
  const ids = pods.map(() => `sc-${randomBytes(6).toString('hex')}`);
  // one setup first: lazy loading and JIT are not a setup's cost
  const warm = benchPod();
  await d.client.setup({ sandboxId: 'sc-warm', netnsPath: warm.pod.path, cniResult: warm.cniResult });
  const strace = track(
    spawn('strace', ['-c', '-f', '-p', String(d.proc.pid)], { stdio: ['ignore', 'ignore', 'pipe'] }),
  );
  let out = '';
  strace.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  await new Promise((r) => setTimeout(r, 500)); // attached to every thread
  for (const [i, p] of pods.entries()) {
    await d.client.setup({ sandboxId: ids[i]!, netnsPath: p.pod.path, cniResult: p.cniResult });
  }
  strace.kill('SIGINT');
  await new Promise((r) => strace.once('exit', r));
  for (const id of [...ids, 'sc-warm']) await d.client.teardown(id);
  await stopDaemon(d);
  for (const p of [...pods, warm]) dropNetns(p.pod, p.node);
  const { calls, total } = parseSummary(out);
  console.log(`syscalls per setup (${n} setups, strace -c -f on the daemon): ${(total / n).toFixed(1)}`);
  for (const [name, c] of [...calls].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${name.padEnd(20)} ${(c / n).toFixed(2)}`);
  }
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(cleanupAll);
