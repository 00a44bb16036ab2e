// The real tapmanager daemon (dist/src/tapmanager/main.js) as a child process on a temp
// state dir, temp sockets and a temp --netns-dir (dir/netns: link the test's own netns
// there for the orphan GC to see them), for restart and kill -9 tests.
// Every daemon started here is SIGKILLed by killDaemons(), pass or fail.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TapmanagerClient } from '../../src/tapmanager/client';
import { killAndWait } from './kill';

/** TWT_DAEMON_BIN runs another build (e.g. of the commit before a fix, to see a regression test fail). */
export const DAEMON_BIN = process.env.TWT_DAEMON_BIN ?? path.resolve(__dirname, '../../dist/src/tapmanager/main.js');

export interface LogLine {
  level: string;
  component: string;
  msg: string;
  [k: string]: unknown;
}

export interface Daemon {
  child: ChildProcess;
  client: TapmanagerClient;
  controlSocket: string;
  fdSocket: string;
  stateDir: string;
  /** every JSON log line so far */
  logs: () => LogLine[];
  /** resolves with the signal (e.g. 'SIGKILL') or exit code once the process is gone */
  exited: Promise<string | number | null>;
}

const live = new Set<ChildProcess>();

/** Starts the daemon on dir/state, dir/control.sock, dir/fd.sock; resolves once it logged "ready". */
export async function startDaemon(
  dir: string,
  opts: {
    env?: Record<string, string>;
    args?: string[];
    /** the name of a netns to run it in (`ip netns exec`) */
    netns?: string;
    /** a command that runs the rest of its arguments (node and the daemon's), e.g. `ip netns exec NAME` */
    wrap?: string[];
  } = {},
): Promise<Daemon> {
  if (!fs.existsSync(DAEMON_BIN)) throw new Error(`${DAEMON_BIN} is missing: run "npm run build" first`);
  const stateDir = path.join(dir, 'state');
  const controlSocket = path.join(dir, 'control.sock');
  const fdSocket = path.join(dir, 'fd.sock');
  // orphan GC looks only here (never at /run/netns, where other tests' tapwire links live)
  const netnsDir = path.join(dir, 'netns');
  fs.mkdirSync(netnsDir, { recursive: true });
  // `ip netns exec` execs node in its own process: child.pid is the daemon's
  const wrap = opts.wrap ?? (opts.netns ? ['ip', 'netns', 'exec', opts.netns] : []);
  const [bin, pre] = wrap.length ? [wrap[0]!, [...wrap.slice(1), process.execPath]] : [process.execPath, []];
  const child = spawn(
    bin,
    [
      ...pre,
      DAEMON_BIN,
      '--state-dir',
      stateDir,
      '--control-socket',
      controlSocket,
      '--fd-socket',
      fdSocket,
      '--netns-dir',
      netnsDir,
      ...(opts.args ?? []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: '', ...opts.env } },
  );
  live.add(child);
  let text = '';
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<string | number | null>((resolve) =>
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve(signal ?? code);
    }),
  );
  const logs = (): LogLine[] =>
    text
      .slice(0, text.lastIndexOf('\n') + 1) // whole lines only: a long one comes in several chunks
      .split('\n')
      .slice(0, -1) // whole lines only: a long one may be half read
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon not ready in 15 s:\n${text}`)), 15_000);
    const check = (): void => {
      if (logs().some((l) => l.msg === 'ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited (${String(how)}) before ready:\n${text}`));
    });
  });
  await ready;
  return {
    child,
    client: new TapmanagerClient(controlSocket, 30_000),
    controlSocket,
    fdSocket,
    stateDir,
    logs,
    exited,
  };
}

/** kill -9 and wait for the process to be gone. */
export async function killDaemon(d: Daemon): Promise<void> {
  d.client.close();
  if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
  await d.exited;
}

export async function killDaemons(): Promise<void> {
  await killAndWait(live);
}

/** SIGTERM with the client still connected (as tapwire-cri stays connected); fails if the daemon does not exit in 5 s. */
export async function stopDaemon(d: Daemon): Promise<void> {
  d.child.kill('SIGTERM');
  const how = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('still running'), 5000))]);
  d.client.close();
  if (how !== 0) throw new Error(`daemon did not exit cleanly on SIGTERM in 5 s: ${String(how)}`);
}
