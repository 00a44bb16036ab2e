// Sweeps leftovers of a killed run (namespaces with the test prefix whose creating
// process is gone, and anything running in them; containerd rigs whose test process is
// gone; world-readable runtime trees of test processes that are gone) before the tests
// start and after.
import { execFileSync } from 'node:child_process';
import { sweepRigs } from '../../src/demo/containerd/rig';
import { ownerPid, TEST_PREFIX } from './names';
import { sweepRuntimeTrees } from './runtime-tree';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function sweep(): void {
  if (process.getuid?.() !== 0) return;
  sweepRuntimeTrees(alive);
  let names: string[] = [];
  try {
    names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(TEST_PREFIX))
      .filter((n) => {
        const pid = ownerPid(n);
        return pid === undefined || !alive(pid);
      });
  } catch {
    return;
  }
  for (const name of names) {
    try {
      const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      console.warn(`[global-teardown] removed leftover netns ${name}`);
    } catch {
      /* raced with its owner */
    }
  }
}

export async function setup(): Promise<void> {
  sweep();
  if (process.getuid?.() === 0) await sweepRigs();
}

export async function teardown(): Promise<void> {
  sweep();
  if (process.getuid?.() === 0) await sweepRigs();
}
