// Test-only crash points. When the daemon runs with TAPWIRE_TEST_CRASH_AFTER=<point> it
// SIGKILLs itself right after reaching <point>, so tests can show that kill -9 at each
// step of a setup or teardown loses nothing. Unset (as in production) every call is a
// no-op. Points, in the order a setup/teardown reaches them:
//   setup.planned       veths snapshotted and planned, nothing on disk or changed yet
//   setup.recorded      write-ahead record saved (state setting-up), nothing changed yet
//   setup.nl<N>         after the N-th netlink change of the build (strip, MAC, bridge, tap, enslave, up, neigh;
//                       a batch of changes, as the strip and a route restore, counts as one)
//   setup.fenced        fence applied
//   setup.dhcp          DHCP servers listening, record still setting-up
//   setup.ready         record saved as ready, reply not sent yet
//   teardown.recorded   record saved as tearing-down, nothing undone yet
//   teardown.unfenced   DHCP stopped and fence removed
//   teardown.nl<N>      after the N-th netlink change of the unbuild
// (A failed setup's rollback reaches rollback.unfenced and rollback.nl<N> likewise.)
// The named setup/teardown points also call SandboxManager's onStep hook (in-process tests).
import type { NetlinkHandle } from '../net/netlink';

export const CRASH_ENV = 'TAPWIRE_TEST_CRASH_AFTER';

/** Kills the process (SIGKILL, no cleanup of any kind) if `point` is the configured one. */
export function crashPoint(point: string): void {
  if (process.env[CRASH_ENV] !== point) return;
  process.kill(process.pid, 'SIGKILL');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // never returns: SIGKILL is on its way
}

const MUTATING = new Set([
  'createBridge',
  'setLink',
  'deleteLink',
  'addAddress',
  'delAddress',
  'addRoute',
  'delRoute',
  'setNeighbor',
  'batch',
]);

/**
 * With a crash point configured, a view of nl whose every completed change calls
 * crashPoint(`${prefix}.nl<N>`); otherwise nl itself.
 */
export function crashCounting(nl: NetlinkHandle, prefix: string): NetlinkHandle {
  if (process.env[CRASH_ENV] === undefined) return nl;
  let n = 0;
  return new Proxy(nl, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      const fn = v as (...a: unknown[]) => unknown;
      if (!MUTATING.has(String(prop))) return fn.bind(target);
      return async (...args: unknown[]) => {
        const r = await fn.apply(target, args);
        crashPoint(`${prefix}.nl${++n}`);
        return r;
      };
    },
  });
}
