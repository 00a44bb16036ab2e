// A full garbage collection on demand, without starting node with --expose-gc: the flag is
// set at run time and a fresh context picks up the gc function it installs (the way
// jest-leak-detector reaches it). The daemon uses it once (dhcp/warmup-server.ts
// finishDhcpWarmUp), after its recovery has built every sandbox's servers: starting 1000 of
// them leaves ~10 MB of garbage and an incremental mark-compact under way, which V8
// otherwise finished a few ms later, beside the first guests' DHCP exchanges (bench/dhcp-serve.ts with --trace-gc: a 3-4 ms mark-compact and a
// 3 ms scavenge inside the first 100 exchanges after ready, the first two 2-10 ms).
import { setTimeout as sleep } from 'node:timers/promises';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

type GcFunction = (o?: { type: 'minor' }) => void;
let gc: GcFunction | undefined;

/**
 * Runs a blocking collection now: 'major' (mark-compact, the whole heap) or 'minor' (a
 * scavenge of the young generation); false when V8 offers no gc function (then nothing ran).
 */
export function collectGarbageNow(type: 'major' | 'minor' = 'major'): boolean {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    const fn: unknown = vm.runInNewContext('typeof gc === "function" ? gc : undefined');
    if (typeof fn !== 'function') return false;
    gc = fn as GcFunction;
  }
  // V8 11's gc(): no argument is a full mark-compact; any options object is a scavenge unless
  // its type names another kind, so 'major' is asked for by passing nothing
  if (type === 'major') gc();
  else gc({ type: 'minor' });
  return true;
}

/**
 * collectGarbageNow, then `ms` with the event loop free (it keeps serving) while V8's helper
 * threads finish the collection's sweeping: without the wait the first exchange after it was
 * still 1.8-2.9 ms (0.5-1 ms with it; the Node floor's first exchange 0.7-2 ms).
 */
export async function collectGarbageAndSettle(ms = 50): Promise<boolean> {
  const ran = collectGarbageNow();
  if (ran) await sleep(ms);
  return ran;
}
