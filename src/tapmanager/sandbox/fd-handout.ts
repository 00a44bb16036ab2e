// Handing a sandbox's NIC fds to vmwrapper (one holder at a time), and taking them back:
// each binding's hand-out (bindings/types.ts FdHandOut), over the runs of consecutive
// NICs that share a binding, so the fds come in NIC order.
import { timingSafeEqual } from 'node:crypto';
import { bindingOf, type PodBinding } from '../bindings';
import { closeFd } from '../../native';
import { TapError, badInput } from '../errors';
import { linkMark } from '../link-mark';
import type { FdsResult } from '../protocol';
import type { NicRecord, SandboxRecord } from '../record';
import type { TapHold } from '../tap-holders';
import { checkSandboxId } from '../validate';
import { goneMessage, pinRecord, type ManagerContext } from './context';

/** The record's NICs as runs of consecutive NICs with one binding, in order. */
function runs(rec: SandboxRecord): { binding: PodBinding; nics: NicRecord[] }[] {
  const out: { binding: PodBinding; nics: NicRecord[] }[] = [];
  for (const nic of rec.nics) {
    const binding = bindingOf(nic);
    const last = out.at(-1);
    if (last?.binding === binding) last.nics.push(nic);
    else out.push({ binding, nics: [nic] });
  }
  return out;
}

/**
 * fds for vmwrapper: the key is "<sandboxId>:<token>". One holder at a time: refused
 * (EBUSY) while files of an earlier fetch are still attached (tap-holders.ts).
 */
export async function handOutFds(ctx: ManagerContext, key: unknown): Promise<{ result: FdsResult; fds: number[] }> {
  if (typeof key !== 'string' || key.length > 512)
    throw badInput('key', typeof key === 'string' ? key.slice(0, 40) : key, 'must be a network key string');
  const sep = key.lastIndexOf(':');
  const id = key.slice(0, sep);
  const token = Buffer.from(key.slice(sep + 1));
  const found = sep > 0 ? ctx.registry.records.get(id) : undefined;
  const want = Buffer.from(found?.token ?? '');
  if (!found || token.length !== want.length || !timingSafeEqual(token, want)) {
    throw new TapError('EACCES', `network key for sandbox ${JSON.stringify(id)} refused`, 'key');
  }
  if (found.state !== 'ready') throw new TapError('EAGAIN', `sandbox ${JSON.stringify(id)} is ${found.state}`, 'key');
  return ctx.registry.serialize(id, async () => {
    const rec = ctx.registry.records.get(id);
    if (rec !== found || rec.state !== 'ready')
      throw new TapError('EAGAIN', `sandbox ${JSON.stringify(id)} is ${rec?.state ?? 'gone'}`, 'key');
    const ns = pinRecord(ctx, rec);
    if (!ns) throw new TapError('ENOENT', goneMessage(rec), 'key');
    const fds: number[] = [];
    try {
      const groups = runs(rec);
      for (const g of groups) await g.binding.handOut.checkNotHeld(id, ns.path, g.nics);
      const mark = linkMark(ctx.scope, id);
      for (const g of groups) fds.push(...(await g.binding.handOut.open(id, ns.path, g.nics, mark)));
    } catch (e) {
      for (const fd of fds) closeFd(fd);
      throw e;
    } finally {
      ns.close();
    }
    return {
      fds,
      result: { sandboxId: rec.sandboxId, nics: rec.nics.map((n) => bindingOf(n).handOut.entry(n)) },
    };
  });
}

/** Detaches whoever holds the sandbox's NIC files (tap-holders.ts), so that `fds` works again. */
export async function revokeFds(ctx: ManagerContext, id: unknown): Promise<{ sandboxId: string; revoked: TapHold[] }> {
  const sandboxId = checkSandboxId(id);
  return ctx.registry.serialize(sandboxId, async () => {
    const rec = ctx.registry.records.get(sandboxId);
    if (!rec) throw new TapError('ENOENT', `no sandbox ${JSON.stringify(sandboxId)}`, 'sandboxId');
    if (rec.state !== 'ready') throw new TapError('EAGAIN', `sandbox ${JSON.stringify(sandboxId)} is ${rec.state}`);
    const ns = pinRecord(ctx, rec);
    if (!ns) throw new TapError('ENOENT', goneMessage(rec), 'sandboxId');
    const revoked: TapHold[] = [];
    try {
      const mark = linkMark(ctx.scope, sandboxId);
      for (const g of runs(rec)) revoked.push(...(await g.binding.handOut.revoke(ns.path, g.nics, mark)));
    } finally {
      ns.close();
    }
    ctx.o.log.info('tap holders revoked', { sandboxId, revoked });
    return { sandboxId, revoked };
  });
}
