// The fd hand-out of a binding whose NIC is a persistent tun/tap the sandbox made (bridge,
// masquerade): one fd per queue, one holder at a time (tap-holders.ts), and the NIC's entry
// in the fds reply.
import type { FdsResult } from '../protocol';
import type { NicRecord } from '../record';
import { checkNotHeld, openTaps, revokeTaps } from '../tap-holders';
import type { FdHandOut } from './types';

/** A NIC's entry in the fds reply, as vmwrapper reads it. */
export function fdsEntry(n: NicRecord): FdsResult['nics'][number] {
  return {
    // a request without `nics` gets today's reply (no name, and bridge by default)
    ...(n.name !== undefined ? { name: n.name } : {}),
    ...(n.binding !== undefined ? { binding: n.binding } : {}),
    mac: n.guestMac,
    model: n.model,
    queues: n.queues,
    vnetHdr: true,
    tap: n.tap,
    vhost: false,
  };
}

export const tapHandOut: FdHandOut = {
  checkNotHeld,
  open: openTaps,
  revoke: revokeTaps,
  entry: fdsEntry,
};
