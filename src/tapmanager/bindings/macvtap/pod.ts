// The macvtap binding, pod side: L2 straight onto an interface of the pod (a NAD's or an
// l2/resource network's): a macvtap on it, in bridge mode (the default: the guest and the
// pod interface's other users talk through it) or passthru (the guest owns the
// interface), with the guest's MAC. No bridge, no address, no DHCP server, no fence: the
// guest talks to whatever the segment offers. vmwrapper gets its /dev/tap<ifindex>,
// opened once per queue (each open is one queue of the macvtap). Undo deletes the
// macvtap (only the one this sandbox made: its recorded ifindex and mark). Revoking the fd
// hand-out deletes and remakes it the same (revokeMacvtaps), which detaches its holders.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync } from 'node:fs';
import { randomMac } from '../../../net/mac';
import { LINK_GROUP } from '../../link-mark';
import { NetlinkHandle } from '../../../net/netlink';
import { TapError, badInput } from '../../errors';
import { readVethSnapshot } from '../../plan/read-veth';
import type { GuestNic } from '../../protocol';
import type { NicRecord } from '../../record';
import { ownLink } from '../../topology';
import { noDhcpNoFence, routelessStatus, tapNicFields } from '../common';
import { UndoError } from '../errors';
import { fdsEntry } from '../tap-hand-out';
import type { MadeLink, PodBinding } from '../types';
import type { TapHold } from '../../tap-holders';

export type MacvtapMode = 'bridge' | 'passthru';

function made(nic: NicRecord, mark: string): MadeLink {
  return { name: nic.tap, index: nic.tapIndex, kind: 'macvtap', mark };
}

/** The macvtap's character device: named for its ifindex (the kernel's tap%d). */
export function macvtapDevice(nic: NicRecord): string {
  return `/dev/tap${nic.tapIndex}`;
}

export const macvtapPod: PodBinding = {
  name: 'macvtap',

  async plan(ctx, spec) {
    const link = ctx.podLinks.find((l) => l.name === spec.podInterface);
    if (link?.name === 'lo') throw badInput(spec.field, spec.podInterface, 'is the loopback device');
    if (link && link.kind !== undefined && link.kind !== 'veth' && link.kind !== 'macvlan' && link.kind !== 'dummy')
      throw badInput(spec.field, spec.podInterface, `is a ${link.kind} device; macvtap takes an Ethernet interface`);
    if (link?.master !== undefined) throw badInput(spec.field, spec.podInterface, 'is a port of another device');
    const snap = await readVethSnapshot(ctx.nsPath, spec.podInterface).catch((e: unknown) => {
      throw badInput(spec.field, spec.podInterface, `not found in netns ${ctx.netnsPath} (${(e as Error).message})`);
    });
    const mode = spec.macvtapMode ?? 'bridge';
    // passthru: the macvtap is the interface's own MAC (the kernel gives it the lower
    // device's, and changing it would change the pod interface's)
    if (mode === 'passthru' && spec.mac !== undefined && spec.mac !== snap.mac)
      throw badInput(
        spec.field.replace(/podInterface$/, 'macAddress'),
        spec.mac,
        `cannot be the guest's in passthru mode: the guest takes ${spec.podInterface}'s MAC ${snap.mac}`,
      );
    return {
      name: spec.name!,
      binding: 'macvtap',
      cniIndex: spec.cniIndex,
      veth: snap,
      vethNewMac: snap.mac,
      bridge: '',
      bridgeMac: '',
      // the macvtap, named and indexed as a tap would be
      tap: `mv${ctx.links.tap}`,
      tapIndex: ctx.links.tapIndex,
      guestMac: spec.mac ?? (mode === 'passthru' ? snap.mac : randomMac(() => randomBytes(6))),
      mtu: snap.mtu,
      model: spec.model,
      queues: spec.queues,
      macvtap: { mode },
    };
  },

  async apply(ctx, nic) {
    await ctx.nl.createMacvtap(nic.tap, nic.veth.ifindex, {
      mode: nic.macvtap!.mode,
      mtu: nic.mtu,
      ...(nic.macvtap!.mode === 'bridge' ? { mac: nic.guestMac } : {}),
      group: LINK_GROUP,
      up: true,
      ...(nic.tapIndex ? { index: nic.tapIndex } : {}),
    });
    const l = (await ctx.nl.links()).find((x) => x.name === nic.tap);
    if (!l || l.index !== nic.tapIndex) {
      // made just now under this name, yet not where recorded: unmarked, undo would leave it
      if (l) await ctx.nl.deleteLink(l.index, l.name).catch(() => undefined);
      throw new Error(`macvtap "${nic.tap}" in netns ${ctx.nsPath} is not at ifindex ${nic.tapIndex}`);
    }
    await ctx.nl.setLink(l.index, nic.tap, { alias: ctx.mark });
  },

  async undo(ctx, nic) {
    const links = await ctx.nl.links().catch(() => undefined);
    if (!links) return [new UndoError('list links', ctx.nsPath, 'EIO', 'list links: cannot read links')];
    const want = made(nic, ctx.mark);
    const l = links.find((x) => x.index === want.index && ownLink(x, want)) ?? links.find((x) => x.name === want.name);
    if (!l) return [];
    if (!ownLink(l, want)) {
      ctx.leftAlone(`macvtap "${want.name}" in ${ctx.nsPath} is not the link this sandbox made: left alone`);
      return [];
    }
    try {
      await ctx.nl.deleteLink(l.index, l.name);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENODEV') return [UndoError.of('delete macvtap', `"${l.name}"`, e)];
    }
    return [];
  },

  async check(ctx, nic) {
    const drift: string[] = [];
    const want = made(nic, ctx.mark);
    const l = ctx.links.find((x) => x.name === nic.tap);
    if (!l || !ownLink(l, want))
      drift.push(`macvtap ${nic.tap} ${l ? 'is not the link this sandbox made' : 'missing'}`);
    else if (l.alias !== ctx.mark) {
      await ctx.nl.setLink(l.index, l.name, { alias: ctx.mark });
      drift.push(`${l.name} was not marked ${ctx.mark}: marked`);
    }
    if (!ctx.links.some((x) => x.index === nic.veth.ifindex)) drift.push(`pod interface ${nic.veth.ifname} missing`);
    return drift;
  },

  describe(n): GuestNic {
    return {
      name: n.name!,
      binding: 'macvtap',
      ...tapNicFields(n, ''),
      l2Only: true,
      macvtap: { mode: n.macvtap!.mode, device: macvtapDevice(n) },
    };
  },

  status(n) {
    return routelessStatus(this.describe(n), []);
  },

  ...noDhcpNoFence,

  madeLinks(nic, mark) {
    return [made(nic, mark)];
  },

  // /dev/tap<ifindex> of the macvtap, one fd per queue; revoke remakes the macvtap
  handOut: {
    checkNotHeld: async () => undefined,
    async open(_sandboxId, nsPath, nics, mark) {
      const fds: number[] = [];
      try {
        for (const nic of nics) fds.push(...(await openMacvtap(nic, nsPath, mark)));
      } catch (e) {
        fds.forEach((fd) => closeSync(fd));
        throw e;
      }
      return fds;
    },
    revoke: revokeMacvtaps,
    entry: fdsEntry,
  },
};

/** The NIC's macvtap device fds, once the device is checked to be the one this sandbox (`mark`) made. */
async function openMacvtap(nic: NicRecord, nsPath: string, mark: string): Promise<number[]> {
  // /dev is the host's (devtmpfs): the device is named tap<ifindex> for the macvtap's
  // ifindex, which this sandbox picked free and recorded. Device names are global, so
  // while this sandbox's macvtap has that ifindex no other macvtap's device has the name:
  // check it is there (and ours) first. One open per queue (libuv opens with O_CLOEXEC).
  const nl = NetlinkHandle.open(nsPath);
  try {
    const l = (await nl.links()).find((x) => x.index === nic.tapIndex);
    if (!l || !ownLink(l, made(nic, mark)))
      throw new TapError('EIO', `macvtap "${nic.tap}" (ifindex ${nic.tapIndex}) is not this sandbox's or is gone`);
  } finally {
    nl.close();
  }
  const fds: number[] = [];
  try {
    for (let q = 0; q < nic.queues; q++) fds.push(openSync(macvtapDevice(nic), constants.O_RDWR));
  } catch (e) {
    fds.forEach((fd) => closeSync(fd));
    throw e;
  }
  return fds;
}

/**
 * Detaches whoever holds the NICs' macvtaps: each is deleted (the kernel detaches every
 * queue file from it: the old holder's reads and writes carry nothing from then on) and
 * made again as setup made it (name, ifindex and so /dev/tap<ifindex>, mode, MAC, MTU,
 * mark), so that the next fetch opens fresh queues. Only a macvtap this sandbox made is
 * touched. Its holders cannot be counted (see TapHold.uncounted): it is remade every time.
 */
async function revokeMacvtaps(nsPath: string, nics: readonly NicRecord[], mark: string): Promise<TapHold[]> {
  const nl = NetlinkHandle.open(nsPath);
  try {
    const revoked: TapHold[] = [];
    for (const nic of nics) {
      const l = (await nl.links()).find((x) => x.index === nic.tapIndex);
      if (!l || !ownLink(l, made(nic, mark)) || l.alias !== mark)
        throw new TapError('EIO', `macvtap "${nic.tap}" (ifindex ${nic.tapIndex}) is not this sandbox's or is gone`);
      await nl.deleteLink(l.index, l.name);
      await macvtapPod.apply({ nl, nsPath, mark }, nic);
      revoked.push({ tap: nic.tap, attached: 0, disabled: 0, uncounted: true });
    }
    return revoked;
  } finally {
    nl.close();
  }
}
