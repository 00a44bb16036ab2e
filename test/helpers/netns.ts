// Throwaway network namespaces for tests, named with the test prefix and removed
// with everything in them, pass or fail.
import { execFileSync } from 'node:child_process';
import { uniqueName } from './names';

export class TestNetns {
  readonly path: string;
  constructor(readonly name: string) {
    this.path = `/run/netns/${name}`;
  }

  /** Runs a command inside the namespace; returns its stdout. */
  exec(cmd: string, args: string[] = [], input?: string): string {
    return execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], {
      encoding: 'utf8',
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  /**
   * `ip -n NAME ...`. A dump the kernel flags as interrupted (the table changed meanwhile,
   * e.g. IPv6 DAD finishing) makes iproute2 fail with "Dump was interrupted": it is asked
   * again, as the kernel's flag means (iproute2 gives no other sign of it than that text).
   */
  ip(...args: string[]): string {
    for (let attempt = 1; ; attempt++) {
      try {
        return execFileSync('ip', ['-n', this.name, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) {
        const stderr = String((e as { stderr?: unknown }).stderr ?? '');
        if (attempt >= 5 || !stderr.includes('Dump was interrupted')) {
          if (e instanceof Error && stderr) e.message += `\n${stderr.trim()}`;
          throw e;
        }
      }
    }
  }

  sh(script: string): string {
    return this.exec('sh', ['-c', script]);
  }
}

const live = new Set<string>();

export function createNetns(label: string): TestNetns {
  const name = uniqueName(label);
  execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' });
  live.add(name);
  const ns = new TestNetns(name);
  ns.ip('link', 'set', 'lo', 'up');
  return ns;
}

/** Kills every process left in the namespace, then deletes it (links go with it). */
export function removeNetns(ns: TestNetns | string): void {
  const name = typeof ns === 'string' ? ns : ns.name;
  try {
    const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split(/\s+/)
      .filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  } catch {
    /* namespace already gone */
  }
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    /* already gone */
  }
  live.delete(name);
}

export function removeAllNetns(): void {
  for (const name of [...live]) removeNetns(name);
}

/** A veth pair between two namespaces: a in nsA, b in nsB. */
export function vethBetween(nsA: TestNetns, a: string, nsB: TestNetns, b: string): void {
  nsA.ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b, 'netns', nsB.name);
}
