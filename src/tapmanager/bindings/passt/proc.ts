// A passt process as /proc shows it: its start time (which, with the pid, names one
// process for good: a pid reused later has another start time), whether a recorded pid
// is still that process, and (for adoption) whether it still looks like passt.
import { readFileSync } from 'node:fs';

/** Field 22 of /proc/<pid>/stat (clock ticks after boot), or undefined when there is no such process. */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // the command name is in parentheses and may hold spaces or ')': split after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = rest[0];
    if (state === 'Z' || state === 'X') return undefined; // exited, not yet reaped
    return rest[19];
  } catch {
    return undefined;
  }
}

/**
 * Whether pid is still the process recorded with startTime: what stopping and watching a
 * recorded passt go by (a passt can rewrite its own argv, never its start time).
 */
export function isRecordedProcess(pid: number | undefined, startTime: string | undefined): boolean {
  if (pid === undefined || startTime === undefined || !Number.isInteger(pid) || pid <= 1) return false;
  return procStartTime(pid) === startTime;
}

/**
 * Whether pid is the passt recorded with startTime (same start time, and its argv is
 * passt's with --fd): for adoption only, where a process that no longer looks like passt
 * is not given the NIC.
 */
export function isRecordedPasst(pid: number | undefined, startTime: string | undefined): boolean {
  if (!isRecordedProcess(pid, startTime)) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
    return argv[0] === 'passt' && argv.includes('--fd');
  } catch {
    return false;
  }
}

/** Sends sig to pid; false when it is gone (ESRCH). */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

/**
 * Whether pid is passt done setting up, as the given uid: passt's last steps before it
 * serves are dropping every capability and setting no_new_privs, after its ports are
 * bound and the socket is in its event loop (and the exec from setpriv is long done).
 */
export function passtServing(pid: number, uid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const field = (name: string): string | undefined => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1];
    return (
      field('Uid')?.split(/\s+/)[0] === String(uid) &&
      field('NoNewPrivs') === '1' &&
      /^0+$/.test(field('CapEff') ?? '') &&
      readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')[0] === 'passt'
    );
  } catch {
    return false;
  }
}
