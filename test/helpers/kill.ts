// Ending the processes a test started, whatever state they are in.
import type { ChildProcess } from 'node:child_process';

/** SIGKILLs every process of the set that is still running, empties the set, and waits for them all to be gone. */
export async function killAndWait(live: Set<ChildProcess>): Promise<void> {
  const waits = [...live].map(
    (c) =>
      new Promise<void>((resolve) => {
        if (c.exitCode !== null || c.signalCode !== null) return resolve();
        c.once('exit', () => resolve());
        c.kill('SIGKILL');
      }),
  );
  live.clear();
  await Promise.all(waits);
}
