// `tapctl describe`'s lines for what a bridge NIC's guest gets over IPv6 (ipv6-nic.ts
// GuestIpv6, found by its bridge): the addresses DHCPv6 hands out and the server's
// exchange, and the router advertisements (router, MTU, on-link prefixes) and what they
// answered. A NIC without IPv6 has none.
import type { Dhcp6Counters } from '../../../dhcp6/counters';
import type { GuestIpv6Stats } from '../../ipv6-nic';
import { DHCP6_IGNORED, DHCP6_RECEIVED, DHCP6_STATUS } from '../../metrics/dhcp6';

/** The NIC's IPv6 stats among a status's `ipv6` entries (the DHCPv6 server on `bridge`). */
export function ipv6Of(all: unknown[] | undefined, bridge: string): GuestIpv6Stats | undefined {
  return (all as Partial<GuestIpv6Stats>[] | undefined)?.find(
    (x): x is GuestIpv6Stats => x.dhcp6?.ifname === bridge && x.ra !== undefined,
  );
}

const listed = (c: Dhcp6Counters, list: [string, keyof Dhcp6Counters][]): string =>
  list
    .filter(([, k]) => c[k] > 0)
    .map(([name, k]) => `${c[k]} ${name.replace(/_/g, '-')}`)
    .join(', ');

export function renderIpv6(v6: GuestIpv6Stats): string[] {
  const c = v6.dhcp6;
  const ra = v6.ra;
  const bound = c.bindings.find((b) => b.state === 'bound');
  const got = listed(c, DHCP6_RECEIVED);
  const codes = listed(c, DHCP6_STATUS);
  const ignored = DHCP6_IGNORED.reduce((n, [, k]) => n + c[k], 0);
  return [
    `  DHCPv6: ${c.addresses.join(', ')} (IA_NA), server DUID ${v6.dhcp6.serverDuid}; binding: ${
      bound ? `bound since ${bound.boundAt}, expires ${bound.expiresAt}` : 'none yet'
    }`,
    `  DHCPv6: received ${c.received}${got ? ` (${got})` : ''}, sent ${c.advertise} advertise ${c.reply} reply${
      codes ? ` (status ${codes})` : ''
    }, ignored ${ignored}`,
    `  RA: ${ra.router ? `router ${ra.router}` : 'no default router (lifetime 0)'}, managed (M+O), mtu ${ra.mtu}, ${
      ra.onLink.length ? `on-link ${ra.onLink.join(', ')}` : 'no on-link prefix'
    }`,
    `  RA: sent ${ra.sent}${ra.sendErrors ? ` (${ra.sendErrors} failed)` : ''}; router solicitations ${
      ra.solicitations + ra.invalid
    }: ${ra.answered} answered, ${ra.rateLimited} rate-limited, ${ra.invalid} invalid`,
  ];
}
