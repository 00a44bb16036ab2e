// The one failure-injection seam: a setup, teardown or rollback calls the manager's
// step hook (ManagerOptions.onStep) at every named point it reaches, and, while a hook
// is set, after every netlink change it makes. A test hook may pause there (races),
// throw there (a failure at that point: the setup rolls back), or kill the process.
// The daemon sets the killing hook when it runs with TAPWIRE_TEST_CRASH_AFTER=<point>
// (crashHookFromEnv, main.ts): it SIGKILLs itself right after reaching <point>, so tests
// can show that kill -9 at each step loses nothing. Unset (as in production) there is
// no hook and every point costs nothing. Points, in the order a setup/teardown reaches them:
//   setup.planned       veths snapshotted and planned, nothing on disk or changed yet
//   setup.recorded      write-ahead record saved (state setting-up), nothing changed yet
//   setup.nl<N>         after the N-th netlink change of the build (strip, MAC, bridge, tap, enslave, up, neigh;
//                       a batch of changes, as the strip and a route restore, counts as one)
//   setup.built         every NIC built
//   setup.fenced        fence applied
//   setup.dhcp          DHCP servers listening, record still setting-up
//   setup.ready         record saved as ready, reply not sent yet
//   teardown.recorded   record saved as tearing-down, nothing undone yet
//   teardown.unfenced   DHCP stopped and fence removed
//   teardown.links-deleted  taps and bridges deleted in one batch
//   teardown.nl<N>      after the N-th netlink change of the unbuild
// (A failed setup's rollback reaches rollback.unfenced and rollback.nl<N> likewise.)
import type { NetlinkHandle } from '../net/netlink';

export const CRASH_ENV = 'TAPWIRE_TEST_CRASH_AFTER';

/** Called at each point with the sandbox it is about; may pause, throw, or not return. */
export type StepHook = (point: string, sandboxId: string) => Promise<void> | void;

/** The hook that SIGKILLs the process (no cleanup of any kind) at `point`. */
export function crashAt(point: string): StepHook {
  return (at) => {
    if (at !== point) return;
    process.kill(process.pid, 'SIGKILL');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // never returns: SIGKILL is on its way
  };
}

/** The daemon's hook: crashAt the point TAPWIRE_TEST_CRASH_AFTER names; none when it is unset. */
export function crashHookFromEnv(env: NodeJS.ProcessEnv = process.env): StepHook | undefined {
  const point = env[CRASH_ENV];
  return point ? crashAt(point) : undefined;
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
 * With a hook, a view of nl whose every completed change calls the hook at
 * `${prefix}.nl<N>`; without one, nl itself.
 */
export function stepCounting(
  nl: NetlinkHandle,
  prefix: string,
  hook: ((point: string) => Promise<void>) | undefined,
): NetlinkHandle {
  if (!hook) return nl;
  let n = 0;
  return new Proxy(nl, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      const fn = v as (...a: unknown[]) => unknown;
      if (!MUTATING.has(String(prop))) return fn.bind(target);
      return async (...args: unknown[]) => {
        const r = await fn.apply(target, args);
        await hook(`${prefix}.nl${++n}`);
        return r;
      };
    },
  });
}
