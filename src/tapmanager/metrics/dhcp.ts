// A DHCP server's counters (src/dhcp/counters.ts) as metric label sets: what the guest
// sent (by message type), what the server answered (by reply type), and what it ignored
// (by reason). Every label value is from these fixed lists: the cardinality is bounded.
import type { DhcpCounters } from '../../dhcp/counters';

export const DHCP_RECEIVED: [type: string, key: keyof DhcpCounters][] = [
  ['discover', 'discover'],
  ['request_selecting', 'requestSelecting'],
  ['request_init_reboot', 'requestInitReboot'],
  ['request_renew_rebind', 'requestRenewOrRebind'],
  ['decline', 'decline'],
  ['release', 'release'],
  ['inform', 'inform'],
];

export const DHCP_REPLIES: [type: string, key: keyof DhcpCounters][] = [
  ['offer', 'offer'],
  ['ack', 'ack'],
  ['nak', 'nak'],
];

export const DHCP_IGNORED: [reason: string, key: keyof DhcpCounters][] = [
  ['malformed', 'decodeErrors'],
  ['not_dhcp', 'notDhcpRequest'],
  ['unknown_mac', 'unknownMac'],
  ['other_server', 'otherServer'],
  ['unexpected', 'unexpected'],
];

export const DHCP_FAULTS: [kind: string, key: keyof DhcpCounters][] = [
  ['send_error', 'sendErrors'],
  ['internal_error', 'internalErrors'],
];

/** The per-sandbox summary: a handful of series per sandbox, whatever the guest sends. */
export function dhcpSummary(c: DhcpCounters): Record<'received' | 'offer' | 'ack' | 'nak' | 'ignored', number> {
  const sum = (list: [string, keyof DhcpCounters][]) => list.reduce((n, [, k]) => n + c[k], 0);
  return { received: c.received, offer: c.offer, ack: c.ack, nak: c.nak, ignored: sum(DHCP_IGNORED) };
}
