// What the parts of a sandbox manager share: its options, the registry of sandboxes,
// the DHCP servers, the drift found at recovery, its link-mark scope, and the named
// steps of a setup/teardown.
import type { Logger } from '../../util/log';
import { stepCounting, type StepHook } from '../crash-points';
import type { NetlinkHandle } from '../../net/netlink';
import { pinRecorded, type PinnedNetns } from '../netns-pin';
import type { SandboxRecord } from '../record';
import type { NicSupervision } from '../bindings/types';
import type { RecordStore } from '../store';
import type { RecoveryStep } from './recovery';
import type { DhcpServers } from './dhcp-servers';
import type { SandboxRegistry } from './registry';

export interface ManagerOptions {
  store: RecordStore;
  log: Logger;
  /** default guest NIC model */
  nicModel?: string;
  leaseTime?: number;
  /** dirs of pinned netns files searched for orphan links at recovery (none by default) */
  netnsDirs?: string[];
  /**
   * the failure-injection seam (crash-points.ts): awaited at each named point of a
   * setup/teardown/rollback and after each of its netlink changes; tests only
   */
  onStep?: StepHook;
  /**
   * told each named point a setup/teardown/rollback reaches (metrics: how far a failed one
   * got); not the netlink changes between them, so the netlink handle is not wrapped for it
   */
  onProgress?: (point: string, sandboxId: string) => void;
  /** told each error recovery meets, with the step it failed in (metrics) */
  onRecoveryError?: (step: RecoveryStep, error: unknown) => void;
}

export const FENCE_TABLE = 'tapwire';

export interface ManagerContext {
  readonly o: ManagerOptions;
  readonly registry: SandboxRegistry;
  readonly dhcp: DhcpServers;
  /** per sandbox: the drift recovery found (and repaired where it could) */
  readonly drift: Map<string, string[]>;
  /** marks this manager's links apart from those of managers on other state dirs (link-mark.ts) */
  readonly scope: string;
}

/** A named point of a setup/teardown/rollback: the onStep hook's (crash-points.ts). */
export async function step(ctx: ManagerContext, name: string, sandboxId: string): Promise<void> {
  ctx.o.onProgress?.(name, sandboxId);
  await ctx.o.onStep?.(name, sandboxId);
}

/** nl, whose every change is a point `${op}.nl<N>` when there is a hook. */
export function stepping(ctx: ManagerContext, nl: NetlinkHandle, op: string, sandboxId: string): NetlinkHandle {
  const hook = ctx.o.onStep;
  return stepCounting(nl, op, hook ? async (point) => hook(point, sandboxId) : undefined);
}

/**
 * The namespace of a record, pinned; undefined, with a warning, when its path leads to
 * none now or to another one (a namespace made later under the same name is not this
 * sandbox's: nothing in it is touched).
 */
export function pinRecord(ctx: ManagerContext, rec: SandboxRecord, log: Logger = ctx.o.log): PinnedNetns | undefined {
  const ns = pinRecorded(rec.netnsPath, rec.netnsCookie);
  if (ns === 'replaced') {
    log.warn('the netns path leads to another namespace than the sandbox had: left alone', {
      sandboxId: rec.sandboxId,
      netnsPath: rec.netnsPath,
    });
  }
  return typeof ns === 'string' ? undefined : ns;
}

/** Why a record's namespace cannot be used: gone, or another namespace at its path. */
export function goneMessage(rec: SandboxRecord): string {
  return `sandbox ${JSON.stringify(rec.sandboxId)}: its network namespace is gone (${rec.netnsPath} leads to none, or to another namespace)`;
}

/**
 * How a binding that runs a process beside its NIC (passt) reaches the sandbox: the
 * netns pinned anew, and the record saved whenever the NIC's part of it changes, in
 * whatever state the sandbox is (setting up, ready, tearing down) until it is forgotten.
 * The store writes one record's saves and removal in the order asked (store.ts), so a
 * save never waits for the sandbox's lock: a setup, a fetch or recovery awaits it inside
 * its operation, and a restart on its own lands before a teardown's removal asked later.
 */
export function supervision(ctx: ManagerContext, rec: SandboxRecord): NicSupervision {
  return {
    sandboxId: rec.sandboxId,
    pin: () => pinRecord(ctx, rec),
    recordChanged: async () => {
      if (ctx.registry.records.get(rec.sandboxId) === rec) await ctx.o.store.save(rec);
    },
    log: ctx.o.log.child('passt'),
  };
}
