// A bench process's own GC pauses as perf_hooks reports them, with their start in
// CLOCK_MONOTONIC ms: the clock of the DHCP bench's exchange times and of ftrace's "mono"
// (bench/sched-trace.sh), so that a pause can be laid beside a slow exchange.
import { PerformanceObserver, performance } from 'node:perf_hooks';

/** performance.now() + this = CLOCK_MONOTONIC ms (process.hrtime) */
export const MONO_OFFSET = Number(process.hrtime.bigint()) / 1e6 - performance.now();

export interface GcPause {
  /** CLOCK_MONOTONIC ms */
  start: number;
  ms: number;
  /** perf_hooks' kind (1 scavenge, 4 mark-compact, 8 incremental marking ...) */
  kind: number;
  /** V8's GC callback flags (4 = forced, e.g. by gc()) */
  flags: number;
}

/** Calls fn for each GC pause of this process from now on. */
export function observeGc(fn: (p: GcPause) => void): void {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const d = (e as unknown as { detail: { kind: number; flags: number } }).detail;
      fn({ start: e.startTime + MONO_OFFSET, ms: e.duration, kind: d.kind, flags: d.flags });
    }
  }).observe({ entryTypes: ['gc'] });
}
