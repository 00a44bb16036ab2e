// One holder at a time for a sandbox's taps.
//
// How "held" is known, exactly: every fd tapmanager hands out is a file it opened on
// /dev/net/tun and attached to the tap (TUNSETIFF); a file stays attached until its last
// reference is gone: every fd of it closed in every process (dups, fds inherited across
// fork and exec, fds still in flight in an SCM_RIGHTS message). tapmanager keeps no file
// of its own attached (the tap is persistent; setup closes its fd), so an attached file
// means that someone still holds what an earlier `fds` handed out.
//  - multiqueue taps: the kernel counts the attached files, enabled (IFLA_TUN_NUM_QUEUES)
//    and parked by TUNSETQUEUE IFF_DETACH_QUEUE (IFLA_TUN_NUM_DISABLED_QUEUES), and would
//    let more attach (up to 256): `fds` reads both counts and hands out files only when
//    they are zero.
//  - single-queue taps: the kernel itself refuses a second file (TUNSETIFF fails EBUSY
//    while one is attached; it reports no counts for them): that EBUSY is the answer.
// The check and the attach happen under the sandbox's lock, and from the attach until
// the holder closes the files stay attached, so a second fetch can never slip in between.
//
// Revocation: the kernel cannot detach a file another process holds, but deleting the
// tap detaches all of them at once (their reads fail from then on, their writes reach
// no device). revokeTaps deletes each held tap (after checking it and its bridge carry
// this sandbox's mark) and makes it again as setup made it: same name and index, persistent,
// vnet_hdr, the multiqueue flag, MTU, link group, mark, enslaved to the bridge, up.
import { closeFd, ifIndex, isNativeError, openTap, withNetns } from '../native';
import { NetlinkHandle } from '../net/netlink';
import { TapError } from './errors';
import { LINK_GROUP } from './link-mark';
import type { NicRecord } from './record';
import { makeTap, ownLink, tapOptions } from './topology';

export interface TapHold {
  tap: string;
  attached: number;
  disabled: number;
  /**
   * A macvtap: its holders cannot be counted (any number of opens of /dev/tapN each add a
   * queue, and the kernel says how many to nobody), so revoke remakes it anyway and
   * attached/disabled are 0
   */
  uncounted?: true;
}

/**
 * Throws heldError when a multiqueue tap of `nics` has files attached (single-queue
 * ones: the kernel refuses them in openTaps).
 */
export async function checkNotHeld(sandboxId: string, netnsPath: string, nics: readonly NicRecord[]): Promise<void> {
  const multi = nics.filter((n) => n.queues > 1);
  if (multi.length === 0) return;
  const held: TapHold[] = [];
  const nl = NetlinkHandle.open(netnsPath);
  try {
    for (const nic of multi) {
      const q = await nl.tunQueues(nic.tap);
      if (!q) throw new TapError('EIO', `cannot read the queue count of tap "${nic.tap}" (needs Linux 4.15 or later)`);
      if (q.attached + q.disabled > 0) held.push({ tap: nic.tap, ...q });
    }
  } finally {
    nl.close();
  }
  if (held.length) throw heldError(sandboxId, held);
}

/**
 * Opens every NIC's tap fds (in NIC order) in the namespace; a single-queue tap the
 * kernel refuses as busy becomes heldError. On any failure the fds opened so far close.
 */
export function openTaps(sandboxId: string, netnsPath: string, nics: readonly NicRecord[]): number[] {
  const fds: number[] = [];
  try {
    withNetns(netnsPath, () => {
      for (const nic of nics) {
        try {
          fds.push(...openTap(nic.tap, tapOptions(nic.queues)));
        } catch (e) {
          if (nic.queues === 1 && isNativeError(e) && e.code === 'EBUSY')
            throw heldError(sandboxId, [{ tap: nic.tap, attached: 1, disabled: 0 }]);
          throw e;
        }
      }
    });
  } catch (e) {
    for (const fd of fds) closeFd(fd);
    throw e;
  }
  return fds;
}

/** EBUSY naming the held taps, why a fetch is refused, and the ways out. */
export function heldError(sandboxId: string, held: TapHold[]): TapError {
  const which = held
    .map(
      (h) =>
        `"${h.tap}" has ${h.attached + h.disabled} queue file(s) attached${h.disabled ? ` (${h.disabled} parked)` : ''}`,
    )
    .join(', ');
  return new TapError(
    'EBUSY',
    `sandbox "${sandboxId}": its taps are still held by the previous fds holder (${which}); ` +
      'they can be fetched again once that holder has closed them (its emulator exited) or the runtime revoked them (op "revoke")',
    'key',
  );
}

/** Deletes and remakes each NIC's tap, detaching every file attached to it. */
export async function revokeTaps(netnsPath: string, nics: readonly NicRecord[], mark: string): Promise<TapHold[]> {
  const nl = NetlinkHandle.open(netnsPath);
  try {
    return await remakeTaps(nl, netnsPath, nics, mark);
  } finally {
    nl.close();
  }
}

/** Files attached to a NIC's tap: the kernel's counts (multiqueue), or a probe attach (single-queue). */
async function holdOf(nl: NetlinkHandle, netnsPath: string, nic: NicRecord): Promise<TapHold> {
  if (nic.queues > 1) {
    const q = await nl.tunQueues(nic.tap);
    if (!q) throw new TapError('EIO', `cannot read the queue count of tap "${nic.tap}" (needs Linux 4.15 or later)`);
    return { tap: nic.tap, ...q };
  }
  const attached = withNetns(netnsPath, () => {
    try {
      openTap(nic.tap, tapOptions(1)).forEach((fd) => closeFd(fd)); // attaches only when nobody is
      return 0;
    } catch (e) {
      if (isNativeError(e) && e.code === 'EBUSY') return 1;
      throw e;
    }
  });
  return { tap: nic.tap, attached, disabled: 0 };
}

async function remakeTaps(
  nl: NetlinkHandle,
  netnsPath: string,
  nics: readonly NicRecord[],
  mark: string,
): Promise<TapHold[]> {
  const revoked: TapHold[] = [];
  for (const nic of nics) {
    const links = await nl.links();
    const tap = links.find((l) => l.name === nic.tap);
    const br = links.find((l) => l.name === nic.bridge);
    if (!tap || !br) throw new TapError('EIO', `tap "${nic.tap}" or bridge "${nic.bridge}" is missing`);
    const own =
      ownLink(tap, { name: nic.tap, index: nic.tapIndex, kind: 'tun', mark }) &&
      ownLink(br, { name: nic.bridge, index: nic.bridgeIndex, kind: 'bridge', mark }) &&
      tap.alias === mark &&
      br.alias === mark;
    if (!own) throw new TapError('EIO', `"${nic.tap}" or "${nic.bridge}" is not this sandbox's (mark ${mark})`);
    const hold = await holdOf(nl, netnsPath, nic);
    if (hold.attached + hold.disabled === 0) continue; // nobody to detach
    await nl.deleteLink(tap.index, nic.tap);
    // made again as setup made it: its recorded index too, so teardown still knows it
    const index = withNetns(netnsPath, () => {
      makeTap(nic);
      return ifIndex(nic.tap);
    });
    await nl.setLink(index, nic.tap, { mtu: nic.mtu, group: LINK_GROUP, master: br.index, alias: mark, up: true });
    revoked.push(hold);
  }
  return revoked;
}
