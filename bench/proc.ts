// What the benches read of a process from /proc (CPU time, faults, memory) and its CPU
// pinning (taskset). schedstat's CPU time, unlike the wall clock, does not count waiting for
// a CPU on a busy machine.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

/** CPU time of a process's main thread so far, ns (/proc/<pid>/schedstat). */
export function cpuNs(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
}

/** CPU ns per thread of pid (tid -> ns). */
export function threadCpu(pid: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      m.set(t, Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // gone
    }
  }
  return m;
}

/** "tid:<us>us ..." of the CPU each thread used between two threadCpu readings. */
export function threadDelta(a: Map<string, number>, b: Map<string, number>): string {
  return [...b].map(([t, ns]) => `${t}:${((ns - (a.get(t) ?? 0)) / 1e3).toFixed(0)}us`).join(' ');
}

/** Minor page faults of pid so far (/proc/<pid>/stat field 10). */
export function minorFaults(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[7]);
}

export function memKb(pid: number): { rss: number; pss: number } {
  const r = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return { rss: Number(/^Rss:\s+(\d+)/m.exec(r)?.[1]), pss: Number(/^Pss:\s+(\d+)/m.exec(r)?.[1]) };
}

/** Pins every thread of pid to the CPU list (taskset -a -p); returns the previous list. */
export function pin(pid: number, cpus: string): string {
  const before = /: (\S+)$/.exec(execFileSync('taskset', ['-pc', String(pid)], { encoding: 'utf8' }).trim())?.[1] ?? '';
  execFileSync('taskset', ['-a', '-pc', cpus, String(pid)], { stdio: 'ignore' });
  return before;
}

/**
 * Pins pid's main thread to `main` and its other threads (V8's and libuv's helpers, those it
 * has now) to `helpers`.
 */
export function pinApart(pid: number, main: string, helpers: string): void {
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      execFileSync('taskset', ['-pc', t === String(pid) ? main : helpers, t], { stdio: 'ignore' });
    } catch (e) {
      if (fs.existsSync(`/proc/${pid}/task/${t}`)) throw e; // else the thread has ended
    }
  }
}
