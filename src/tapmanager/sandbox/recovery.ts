// After a restart: finish interrupted teardowns, roll back interrupted setups, collect
// records whose netns is gone, check the topology of the rest (repairing marks and the
// fence: drift repair), and restart their DHCP servers. Each error it meets is logged and
// told to ManagerOptions.onRecoveryError with the step it failed in (RecoveryStep).
import { NetlinkHandle } from '../../net/netlink';
import type { Logger } from '../../util/log';
import { TapError } from '../errors';
import { applyFence, fenceExists } from '../fence';
import { linkMark } from '../link-mark';
import { unpinned, type PinnedNetns } from '../netns-pin';
import { collectOrphanLinks } from '../orphans';
import type { SandboxRecord } from '../record';
import { bindingOf } from '../bindings';
import { FENCE_TABLE, pinRecord, supervision, type ManagerContext } from './context';
import { fenceNics } from './setup';
import { unbuild, undoWithoutNetns } from './unbuild';

/** Where recovery failed: a bounded label set (metrics). */
export const RECOVERY_STEPS = [
  'load_record',
  'remove_orphan_record',
  'claim_netns',
  'rollback_setup',
  'finish_teardown',
  'check_topology',
  'repair_fence',
  'restart_dhcp',
  'remove_orphan_links',
] as const;

export type RecoveryStep = (typeof RECOVERY_STEPS)[number];

export async function recoverAll(ctx: ManagerContext): Promise<void> {
  const log = ctx.o.log.child('recover');
  const report = (s: RecoveryStep) => (e: unknown) => ctx.o.onRecoveryError?.(s, e);
  // a record that does not parse or validate has no errno of its own: its content is invalid
  const badRecord = (e: unknown): void =>
    report('load_record')(typeof (e as { code?: unknown }).code === 'string' ? e : new TapError('EINVAL', String(e)));
  for (const rec of await ctx.o.store.loadAll(log, badRecord)) {
    ctx.registry.records.set(rec.sandboxId, rec);
    const ns = pinRecord(ctx, rec, log);
    if (!ns) {
      log.warn('orphan record: netns is gone; removing it', {
        sandboxId: rec.sandboxId,
        netnsPath: rec.netnsPath,
        state: rec.state,
      });
      ctx.registry.records.delete(rec.sandboxId);
      // a NIC's own process (passt) outlives the path: stopped first, the record kept
      // (for the next start) when it could not be
      const errors = await undoWithoutNetns(rec);
      if (errors.length) {
        log.error('cannot stop what the orphan record ran; record kept', {
          sandboxId: rec.sandboxId,
          errors: errors.map((e) => e.message),
        });
        errors.forEach(report('remove_orphan_record'));
        continue;
      }
      await ctx.o.store.remove(rec.sandboxId).catch((e: unknown) => {
        log.error('cannot remove the orphan record (tried again at the next start)', {
          sandboxId: rec.sandboxId,
          error: (e as Error).message,
        });
        report('remove_orphan_record')(e);
      });
      continue;
    }
    try {
      await recoverIn(ctx, rec, ns, log);
    } finally {
      ns.close();
    }
  }
  await collectOrphanLinks({
    netnsDirs: ctx.o.netnsDirs ?? [],
    records: [...ctx.registry.records.values()],
    fenceTable: FENCE_TABLE,
    scope: ctx.scope,
    log,
    onError: report('remove_orphan_links'),
  });
}

/** Recovery of one record whose namespace is there (pinned as ns). */
async function recoverIn(ctx: ManagerContext, rec: SandboxRecord, ns: PinnedNetns, log: Logger): Promise<void> {
  try {
    ctx.registry.claims.claim(rec.sandboxId, rec.netnsPath, ns.path);
  } catch (e) {
    log.warn('two records share a netns', { sandboxId: rec.sandboxId, error: (e as Error).message });
    ctx.o.onRecoveryError?.('claim_netns', e);
  }
  if (rec.state !== 'ready') {
    log.warn(`interrupted ${rec.state === 'setting-up' ? 'setup: rolling back' : 'teardown: finishing'}`, {
      sandboxId: rec.sandboxId,
    });
    const errors = await unbuild(ctx, rec);
    if (errors.length === 0) await ctx.registry.forget(rec.sandboxId);
    else {
      log.error('recovery left errors; record kept', {
        sandboxId: rec.sandboxId,
        errors: errors.map((e) => e.message),
      });
      const step = rec.state === 'setting-up' ? 'rollback_setup' : 'finish_teardown';
      for (const e of errors) ctx.o.onRecoveryError?.(step, e);
    }
    return;
  }
  const at: { step: RecoveryStep } = { step: 'check_topology' };
  try {
    const drift = await checkTopology(ctx, rec, ns.path, at);
    ctx.drift.set(rec.sandboxId, drift);
    if (drift.length) log.warn('topology drift', { sandboxId: rec.sandboxId, drift });
    at.step = 'restart_dhcp';
    await ctx.dhcp.start(rec, ns.path);
    log.info('sandbox recovered', { sandboxId: rec.sandboxId });
  } catch (e) {
    const error = unpinned((e as Error).message, ns, rec.netnsPath);
    log.error('cannot recover sandbox', { sandboxId: rec.sandboxId, step: at.step, error });
    ctx.drift.set(rec.sandboxId, [`recovery failed: ${error}`]);
    ctx.o.onRecoveryError?.(at.step, e);
  }
}

/** The drift of a ready record's links and fence from what setup made, in its namespace (at path). */
async function checkTopology(
  ctx: ManagerContext,
  rec: SandboxRecord,
  path: string,
  at: { step: RecoveryStep },
): Promise<string[]> {
  const drift: string[] = [];
  const nl = NetlinkHandle.open(path);
  try {
    const links = await nl.links();
    const mark = linkMark(ctx.scope, rec.sandboxId);
    const supervise = supervision(ctx, rec);
    for (const nic of rec.nics)
      drift.push(...(await bindingOf(nic).check({ nl, links, mark, nsPath: path, supervise }, nic)));
  } finally {
    nl.close();
  }
  if (!(await fenceExists(path, rec.fenceTable))) {
    drift.push('fence table missing: re-applied');
    at.step = 'repair_fence';
    await applyFence(path, rec.fenceTable, fenceNics(rec));
  }
  return drift;
}
