// The undo of everything a setup may have done, each step independent: DHCP stopped,
// fence removed, taps and bridges deleted (one batch when it can), every veth restored.
import { NetlinkHandle } from '../../net/netlink';
import { crashCounting, crashPoint } from '../crash-points';
import { removeFence } from '../fence';
import { linkMark } from '../link-mark';
import { unpinned } from '../netns-pin';
import { readVethSnapshot } from '../plan/read-veth';
import type { SandboxRecord } from '../record';
import { deleteNicLinks, unbuildNic } from '../topology';
import { pinRecord, type ManagerContext } from './context';

/**
 * Undo of everything a setup may have done, each step independent. In the namespace
 * `within` (a setup's own, pinned), else in the record's, pinned here: none when it is
 * gone or another one is at its path.
 */
export async function unbuild(
  ctx: ManagerContext,
  rec: SandboxRecord,
  within?: { nl: NetlinkHandle; path: string },
  op = 'rollback',
): Promise<string[]> {
  await ctx.dhcp.stop(rec.sandboxId);
  const ns = within ? undefined : pinRecord(ctx, rec);
  const path = within?.path ?? ns?.path;
  if (path === undefined) return []; // the namespace and all in it are gone: nothing to restore
  try {
    const errors = await unbuildIn(ctx, rec, path, within?.nl, op);
    return errors.map((m) => unpinned(m, { path }, rec.netnsPath));
  } finally {
    ns?.close();
  }
}

async function unbuildIn(
  ctx: ManagerContext,
  rec: SandboxRecord,
  path: string,
  nlIn: NetlinkHandle | undefined,
  op: string,
): Promise<string[]> {
  const errors: string[] = [];
  const warnings: string[] = [];
  const leftAlone: string[] = [];
  let nl = nlIn;
  try {
    nl ??= crashCounting(NetlinkHandle.open(path), op);
  } catch (e) {
    return [`open netns ${rec.netnsPath}: ${(e as Error).message}`];
  }
  try {
    await removeFence(path, rec.fenceTable).catch((e: unknown) => errors.push(`remove fence: ${(e as Error).message}`));
    crashPoint(`${op}.unfenced`);
    // one batch for all taps and bridges; whatever it leaves, unbuildNic deletes singly
    const mark = linkMark(ctx.scope, rec.sandboxId);
    const batched = await deleteNicLinks(nl, rec.nics, mark).catch((e: unknown) => {
      ctx.o.log.warn('batch link delete failed; deleting one by one', { error: (e as Error).message });
      return false;
    });
    if (batched) crashPoint(`${op}.links-deleted`);
    for (const nic of [...rec.nics].reverse()) {
      const current = async (ifname: string) => (await readVethSnapshot(path, ifname)).routes;
      errors.push(
        ...(await unbuildNic(
          nl,
          nic,
          mark,
          current,
          (w) => warnings.push(w),
          (w) => leftAlone.push(w),
        )),
      );
    }
  } finally {
    if (!nlIn) nl.close();
  }
  // no retry brings these back, so they are not errors (the record would never go)
  const shown = (list: string[]) => list.map((m) => unpinned(m, { path }, rec.netnsPath));
  if (warnings.length) ctx.o.log.warn('routes not restored', { sandboxId: rec.sandboxId, routes: shown(warnings) });
  if (leftAlone.length)
    ctx.o.log.warn('links not made by this sandbox left alone', {
      sandboxId: rec.sandboxId,
      links: shown(leftAlone),
    });
  return errors;
}
