// The undo of everything a setup may have done, each step independent: DHCP stopped,
// fence removed, the links the NICs made deleted (one batch when it can), then each
// NIC's binding undoes the rest (in reverse order), and finishes (undoLast, in the pod
// interfaces' order). Returns typed errors (UndoError).
import { NetlinkHandle } from '../../net/netlink';
import { bindingOf, UndoError } from '../bindings';
import type { UndoContext } from '../bindings/types';
import { removeFence } from '../fence';
import { linkMark } from '../link-mark';
import { unpinned } from '../netns-pin';
import type { SandboxRecord } from '../record';
import { deleteNicLinks } from '../topology';
import { pinRecord, step, stepping, type ManagerContext } from './context';

/** The error with the pinned path in its message put back as the record's netns path. */
function shownAs(e: UndoError, path: string, netnsPath: string): UndoError {
  return new UndoError(e.step, e.target, e.code, unpinned(e.message, { path }, netnsPath));
}

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
): Promise<UndoError[]> {
  await ctx.dhcp.stop(rec.sandboxId);
  const ns = within ? undefined : pinRecord(ctx, rec);
  const path = within?.path ?? ns?.path;
  // the namespace is gone (or another one is at its path): nothing in it to restore, but
  // a NIC's own process (passt) would keep it alive, ports bound, and stay supervised
  if (path === undefined) return undoWithoutNetns(rec);
  try {
    const errors = await unbuildIn(ctx, rec, path, within?.nl, op);
    return errors.map((e) => shownAs(e, path, rec.netnsPath));
  } finally {
    ns?.close();
  }
}

/** What each NIC made outside its namespace undone, when the namespace is gone. */
export async function undoWithoutNetns(rec: SandboxRecord): Promise<UndoError[]> {
  const errors: UndoError[] = [];
  for (const nic of rec.nics) errors.push(...((await bindingOf(nic).undoWithoutNetns?.(nic)) ?? []));
  return errors;
}

async function unbuildIn(
  ctx: ManagerContext,
  rec: SandboxRecord,
  path: string,
  nlIn: NetlinkHandle | undefined,
  op: string,
): Promise<UndoError[]> {
  const errors: UndoError[] = [];
  const warnings: string[] = [];
  const leftAlone: string[] = [];
  let nl = nlIn;
  try {
    nl ??= stepping(ctx, NetlinkHandle.open(path), op, rec.sandboxId);
  } catch (e) {
    return [UndoError.of('open netns', rec.netnsPath, e)];
  }
  try {
    await removeFence(path, rec.fenceTable).catch((e: unknown) =>
      errors.push(UndoError.of('remove fence', rec.fenceTable, e)),
    );
    await step(ctx, `${op}.unfenced`, rec.sandboxId);
    // one batch for all the links the NICs made; whatever it leaves, each binding's undo deletes singly
    const mark = linkMark(ctx.scope, rec.sandboxId);
    const made = rec.nics.flatMap((n) => bindingOf(n).madeLinks(n, mark));
    const batched = await deleteNicLinks(nl, made).catch((e: unknown) => {
      ctx.o.log.warn('batch link delete failed; deleting one by one', { error: (e as Error).message });
      return false;
    });
    if (batched) await step(ctx, `${op}.links-deleted`, rec.sandboxId);
    const undo: UndoContext = {
      nl,
      nsPath: path,
      mark,
      warn: (w: string) => warnings.push(w),
      leftAlone: (w: string) => leftAlone.push(w),
    };
    for (const nic of [...rec.nics].reverse()) errors.push(...(await bindingOf(nic).undo(undo, nic)));
    // the last steps in the order the pod interfaces were made (their indexes), not the NICs'
    const byIndex = [...rec.nics].sort((a, b) => a.veth.ifindex - b.veth.ifindex);
    for (const nic of byIndex) errors.push(...((await bindingOf(nic).undoLast?.(undo, nic)) ?? []));
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
