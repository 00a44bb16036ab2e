// Handing a sandbox's tap fds to vmwrapper (one holder at a time), and taking them back.
import { timingSafeEqual } from 'node:crypto';
import { closeFd } from '../../native';
import { bindingOf } from '../bindings';
import { TapError, badInput } from '../errors';
import { linkMark } from '../link-mark';
import type { FdsResult } from '../protocol';
import type { NicRecord } from '../record';
import { checkNotHeld, openTaps, revokeTaps, type TapHold } from '../tap-holders';
import { checkSandboxId } from '../validate';
import { goneMessage, pinRecord, type ManagerContext } from './context';

/** The NICs that have a tun/tap (a slirp NIC has none: no fd; a macvtap's fds are its own device's). */
function tapNics(nics: readonly NicRecord[]): NicRecord[] {
  return nics.filter((n) => !bindingOf(n).tapless && !bindingOf(n).openFds);
}

/** Every NIC's fds in NIC order: taps as tap-holders opens them, others by their binding; all closed on a failure. */
async function openNics(id: string, nsPath: string, nics: readonly NicRecord[], mark: string): Promise<number[]> {
  if (nics.every((n) => !bindingOf(n).tapless && !bindingOf(n).openFds)) return openTaps(id, nsPath, nics);
  const fds: number[] = [];
  try {
    for (const n of nics) {
      const b = bindingOf(n);
      if (b.tapless) continue;
      fds.push(...(b.openFds ? await b.openFds(n, nsPath, mark) : openTaps(id, nsPath, [n])));
    }
  } catch (e) {
    fds.forEach((fd) => closeFd(fd));
    throw e;
  }
  return fds;
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
    let fds: number[];
    try {
      await checkNotHeld(id, ns.path, tapNics(rec.nics));
      fds = await openNics(id, ns.path, rec.nics, linkMark(ctx.scope, id));
    } finally {
      ns.close();
    }
    return {
      fds,
      result: {
        sandboxId: rec.sandboxId,
        nics: rec.nics.map((n) => ({
          // a request without `nics` gets today's reply (no name, and bridge by default)
          ...(n.name !== undefined ? { name: n.name } : {}),
          ...(n.binding !== undefined ? { binding: n.binding } : {}),
          mac: n.guestMac,
          model: n.model,
          queues: n.queues,
          vnetHdr: true,
          tap: n.tap,
          vhost: false,
          ...(n.slirp
            ? {
                hostfwd: {
                  ip: n.slirp.podIp,
                  ports: (n.ports ?? []).map((p) => ({
                    protocol: p.protocol,
                    port: p.port,
                    ...(p.endPort !== undefined ? { endPort: p.endPort } : {}),
                  })),
                },
              }
            : {}),
        })),
      },
    };
  });
}

/** Detaches whoever holds the sandbox's taps (tap-holders.ts), so that `fds` works again. */
export async function revokeFds(ctx: ManagerContext, id: unknown): Promise<{ sandboxId: string; revoked: TapHold[] }> {
  const sandboxId = checkSandboxId(id);
  return ctx.registry.serialize(sandboxId, async () => {
    const rec = ctx.registry.records.get(sandboxId);
    if (!rec) throw new TapError('ENOENT', `no sandbox ${JSON.stringify(sandboxId)}`, 'sandboxId');
    if (rec.state !== 'ready') throw new TapError('EAGAIN', `sandbox ${JSON.stringify(sandboxId)} is ${rec.state}`);
    const ns = pinRecord(ctx, rec);
    if (!ns) throw new TapError('ENOENT', goneMessage(rec), 'sandboxId');
    let revoked: TapHold[];
    try {
      revoked = await revokeTaps(ns.path, tapNics(rec.nics), linkMark(ctx.scope, sandboxId));
    } finally {
      ns.close();
    }
    ctx.o.log.info('tap holders revoked', { sandboxId, revoked });
    return { sandboxId, revoked };
  });
}
