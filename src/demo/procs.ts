// The demo's own daemons: tapmanager and tapwire-cri started from dist/ as child
// processes logging to files, ready when their socket answers, stopped with SIGTERM
// (then SIGKILL) however the demo ends.
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';

export interface Daemon {
  name: string;
  proc: ChildProcess;
  logFile: string;
  stop(): Promise<void>;
}

function connects(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socketPath);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Starts `node script args`, resolves once `socketPath` accepts connections. */
export async function startDaemon(
  name: string,
  script: string,
  args: string[],
  socketPath: string,
  logFile: string,
  timeoutMs = 15_000,
): Promise<Daemon> {
  const out = fs.openSync(logFile, 'a');
  const proc = spawn(process.execPath, [script, ...args], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  const deadline = Date.now() + timeoutMs;
  while (!(await connects(socketPath))) {
    if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline) {
      await stop();
      const tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-10).join('\n');
      throw new Error(`${name} did not come up on ${socketPath}; its log ${logFile} ends:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { name, proc, logFile, stop };
}
