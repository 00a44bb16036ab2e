// A NIC's DHCPv6 server counters (src/dhcp6/counters.ts) and router advertiser counters
// (src/ndp/advertiser.ts) as metric label sets, beside the DHCPv4 ones (dhcp.ts): what the
// guest sent (by message type), what the server answered (by reply type, and the IA
// status codes it put in them), what it ignored (by reason); router solicitations by
// outcome and advertisements sent. Every label value is from these fixed lists.
import type { Dhcp6Counters } from '../../dhcp6/counters';
import { newCounters6 } from '../../dhcp6/counters';
import { newAdvertiserStats, type AdvertiserStats } from '../../ndp/advertiser';

export type RaCounters = AdvertiserStats;

export const newRaCounters: () => RaCounters = newAdvertiserStats;

export { newCounters6 };

export const DHCP6_RECEIVED: [type: string, key: keyof Dhcp6Counters][] = [
  ['solicit', 'solicit'],
  ['request', 'request'],
  ['confirm', 'confirm'],
  ['renew', 'renew'],
  ['rebind', 'rebind'],
  ['release', 'release'],
  ['decline', 'decline'],
  ['information_request', 'informationRequest'],
];

export const DHCP6_REPLIES: [type: string, key: keyof Dhcp6Counters][] = [
  ['advertise', 'advertise'],
  ['reply', 'reply'],
];

/** the status codes (RFC 8415 21.13) the replies carried, per IA or message (no_addrs_avail counts NoPrefixAvail too) */
export const DHCP6_STATUS: [status: string, key: keyof Dhcp6Counters][] = [
  ['no_binding', 'noBinding'],
  ['no_addrs_avail', 'noAddrsAvail'],
  ['not_on_link', 'notOnLink'],
];

export const DHCP6_IGNORED: [reason: string, key: keyof Dhcp6Counters][] = [
  ['malformed', 'decodeErrors'],
  ['relay', 'relay'],
  ['unexpected', 'unexpected'],
  ['invalid', 'invalid'],
  ['other_server', 'otherServer'],
];

export const DHCP6_FAULTS: [kind: string, key: keyof Dhcp6Counters][] = [
  ['send_error', 'sendErrors'],
  ['internal_error', 'internalErrors'],
];

export const RS_OUTCOMES: [outcome: string, key: keyof RaCounters][] = [
  ['answered', 'answered'],
  ['rate_limited', 'rateLimited'],
  ['invalid', 'invalid'],
];

export const RA_SENT: [outcome: string, key: keyof RaCounters][] = [
  ['sent', 'sent'],
  ['send_error', 'sendErrors'],
];

/** The per-sandbox summary: a handful of series per sandbox, whatever the guest sends. */
export function dhcp6Summary(
  c: Dhcp6Counters,
  ra: RaCounters,
): Record<'received' | 'advertise' | 'reply' | 'ignored' | 'router_solicitations' | 'router_advertisements', number> {
  const ignored = DHCP6_IGNORED.reduce((n, [, k]) => n + c[k], 0);
  return {
    received: c.received,
    advertise: c.advertise,
    reply: c.reply,
    ignored,
    router_solicitations: ra.solicitations + ra.invalid,
    router_advertisements: ra.sent,
  };
}
