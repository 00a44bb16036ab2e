// Readings of a process from /proc for the benches: memory, CPU time per thread, page faults.
import * as fs from 'node:fs';

export function memKb(pid: number): { rss: number; pss: number } {
  const r = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return { rss: Number(/^Rss:\s+(\d+)/m.exec(r)?.[1]), pss: Number(/^Pss:\s+(\d+)/m.exec(r)?.[1]) };
}

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

/** Minor page faults of pid so far (/proc/<pid>/stat field 10). */
export function minorFaults(pid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[7]);
}

export function threadDelta(a: Map<string, number>, b: Map<string, number>): string {
  return [...b].map(([t, ns]) => `${t}:${((ns - (a.get(t) ?? 0)) / 1e3).toFixed(0)}us`).join(' ');
}
