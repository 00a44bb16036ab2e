// Boots tapwire's guest and judges it: runs QEMU (or a program that becomes QEMU, such as
// vmwrapper's shim), reads the serial console into a report as it comes, and ends when
// the guest powers off, says done (with `until: 'done'`), or the time is up (the
// process is then killed). The verdict says whether the guest got its lease(s), its
// checks passed and it finished.
import { ChildProcess, spawn } from 'node:child_process';
import { ConsoleReader, followFile } from './console';
import { Expect, GuestLine, GuestReport, verdict, Verdict } from './report';

export interface BootOptions {
  /** the program: QEMU (qemu.ts QEMU) or one that execs it with these args */
  command: string;
  /** its arguments (qemuArgs()) */
  args: string[];
  /** where qemuArgs() put the console */
  console: 'stdio' | { file: string };
  env?: NodeJS.ProcessEnv;
  /** descriptors the program inherits as fds 3, 4, ... (tap fds for "tap,fd=3") */
  fds?: number[];
  cwd?: string;
  uid?: number;
  gid?: number;
  timeoutMs: number;
  /** 'exit' (default): wait for the process to end; 'done': return at the done line, process still up */
  until?: 'exit' | 'done';
  expect?: Expect;
  onLine?: (l: GuestLine, raw: string) => void;
}

export interface BootResult {
  report: GuestReport;
  verdict: Verdict;
  /** the process's exit code, or null (killed, or still up with until 'done') */
  exitCode: number | null;
  timedOut: boolean;
  stderr: string;
  /** the last console lines */
  tail: string[];
}

export interface GuestRun {
  proc: ChildProcess;
  /** the pid (-1 when the program could not be spawned: result then says why) */
  pid: number;
  result: Promise<BootResult>;
  /** SIGKILLs the process if it is still there and waits for it */
  kill(): Promise<void>;
}

/** Starts the guest; `result` settles as described above (never rejects). */
export function startGuest(o: BootOptions): GuestRun {
  const reader = new ConsoleReader(o.onLine);
  const proc = spawn(o.command, o.args, {
    stdio: ['ignore', o.console === 'stdio' ? 'pipe' : 'ignore', 'pipe', ...(o.fds ?? [])],
    env: o.env ?? process.env,
    ...(o.cwd ? { cwd: o.cwd } : {}),
    ...(o.uid !== undefined ? { uid: o.uid } : {}),
    ...(o.gid !== undefined ? { gid: o.gid } : {}),
  });
  let stderr = '';
  let spawnFailed = false;
  // 'error' (a program that cannot be spawned) is handled before anything can throw
  const closed = new Promise<number | null>((resolve) => {
    proc.once('error', (e) => {
      stderr += `${e.message}\n`;
      spawnFailed = true;
      resolve(null);
    });
    proc.once('close', (code) => resolve(code));
  });
  proc.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8192)));
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => reader.feed(d));
  const follower = o.console === 'stdio' ? undefined : followFile(o.console.file, reader);

  const result = (async (): Promise<BootResult> => {
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), o.timeoutMs)));
    const done =
      o.until === 'done'
        ? new Promise<'done'>((resolve) => {
            const tick = setInterval(() => reader.report.done && (clearInterval(tick), resolve('done')), 100);
            void closed.then(() => clearInterval(tick));
          })
        : new Promise<never>(() => {});
    const how = await Promise.race([closed.then(() => 'exit' as const), timeout, done]);
    clearTimeout(timer);
    if (how === 'timeout') {
      timedOut = true;
      proc.kill('SIGKILL');
      await closed;
    }
    follower?.stop();
    if (o.console === 'stdio') reader.end();
    const report = reader.report;
    const v = verdict(report, o.expect);
    const exitCode = how === 'done' || spawnFailed ? null : proc.exitCode;
    if (timedOut) v.problems.unshift(`no done line within ${o.timeoutMs / 1000} s (killed)`);
    else if (how === 'exit' && exitCode !== 0) {
      const end = spawnFailed ? 'without starting' : (exitCode ?? proc.signalCode);
      v.problems.unshift(`"${o.command}" exited ${end}: ${stderr.trim().split('\n').pop() || 'no stderr'}`);
    }
    v.ok = v.problems.length === 0;
    return { report, verdict: v, exitCode, timedOut, stderr, tail: [...reader.tail] };
  })();

  return {
    proc,
    pid: proc.pid ?? -1,
    result,
    async kill(): Promise<void> {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await closed;
    },
  };
}

/** startGuest and wait for its result. */
export async function bootGuest(o: BootOptions): Promise<BootResult> {
  return startGuest(o).result;
}

/**
 * Follows a console file another process writes (libvirt's serial file) until the
 * guest's done line, the timeout or `signal`, and judges it.
 */
export async function followConsole(
  file: string,
  o: { timeoutMs: number; expect?: Expect; signal?: AbortSignal },
): Promise<{ report: GuestReport; verdict: Verdict; timedOut: boolean; tail: string[] }> {
  const reader = new ConsoleReader();
  const follower = followFile(file, reader);
  const deadline = Date.now() + o.timeoutMs;
  while (!reader.report.done && Date.now() < deadline && !o.signal?.aborted) {
    await new Promise((r) => setTimeout(r, 100));
  }
  follower.stop();
  const timedOut = !reader.report.done;
  const v = verdict(reader.report, o.expect);
  if (o.signal?.aborted) v.problems.unshift(`stopped following ${file}`);
  else if (timedOut) v.problems.unshift(`no done line in ${file} within ${o.timeoutMs / 1000} s`);
  v.ok = v.problems.length === 0;
  return { report: reader.report, verdict: v, timedOut, tail: [...reader.tail] };
}
