// The masquerade binding, pod side (issue #18): the pod keeps its interface and its IP
// (eth0 untouched, so CNI CHECK and a mesh sidecar keep working) and the guest sits
// behind NAT on a bridge of its own: the bridge takes the first address of the guest
// CIDR (default 10.0.2.0/24: bridge 10.0.2.1, guest 10.0.2.2), the tap is its port,
// forwarding is on in the pod netns, route_localnet on the bridge, and the NIC's NAT
// table (nat.ts) goes in as one nf_tables batch. The guest gets its address, the bridge
// as router and the pod's DNS by DHCP from a server on the bridge.
// IPv6 (a pod interface with a global IPv6 address): the same for the IPv6 guest CIDR
// (default fd10:0:2::/120: bridge fd10:0:2::1, guest fd10:0:2::2), an ip6 NAT table in
// the same batch, IPv6 forwarding on, and the guest gets fd10:0:2::2 by DHCPv6 (IA_NA,
// DNS, search) and its default route from router advertisements sent from the bridge's
// own link-local address (plan6: served by sandbox/dhcp-servers.ts as for the bridge
// binding). The bridge's addresses go in without DAD (nothing else is on its link but
// the guest); the tap, a port, gets no IPv6. Dual-stack pods get both families, an
// IPv6-only pod only IPv6 (no DHCPv4 server), an IPv4-only pod only IPv4.
// Undo: the tables deleted, the tap and bridge deleted (ownLink), forwarding of each
// family put back as it was found. Each table's comment says what setup found of
// forwarding (nat.ts), so that an orphaned sandbox's forwarding is put back too (orphans.ts).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { isIpv4, networkOf, parseCidr4, type Prefix4 } from '../../../net/ipv4';
import { randomMac } from '../../../net/mac';
import { ifIndex, withNetns } from '../../../native';
import { badInput } from '../../errors';
import { LINK_GROUP } from '../../link-mark';
import { planDns } from '../../plan/dns';
import { readVethSnapshot } from '../../plan/read-veth';
import type { GuestNic } from '../../protocol';
import type { NicRecord } from '../../record';
import { makeTap, nicLinks, ownLink } from '../../topology';
import { UndoError } from '../errors';
import { tapHandOut } from '../tap-hand-out';
import { hasPlannedLease, planLease, routelessStatus, tapNicFields } from '../common';
import type { NicSpec, PodBinding } from '../types';
import type { VethSnapshot } from '../../snapshot';
import { ipFromBuffer, parseCidr } from '../../../net/addr-text';
import { isNetError } from '../../../net/netlink';
import { getIpv6Conf, setIpv6Conf, setIpv6Confs } from '../../../net/sysctl';
import { eui64LinkLocal } from '../../plan/guest-ipv6';
import {
  DEFAULT_GUEST_CIDR,
  DEFAULT_GUEST_CIDR6,
  guestAddresses,
  guestAddresses6,
  masqTable,
  network6,
  prefixesOverlap,
  prefixesOverlap6,
  type Prefix6,
} from './cidr';
import { applyNat, natFamilies, natRules, natRuleText, removeNat, type MasqNat } from './nat';
import { forwarding6Comment, ipForwardComment, readForwarding6, restoreForwarding6 } from './forwarding';

/** What a masquerade NIC records beyond the common NIC fields. */
export interface MasqRecord {
  /** the guest CIDR, e.g. 10.0.2.0/24 */
  cidr: string;
  bridgeIp: string;
  guestIp: string;
  prefixLen: number;
  /** the NIC's NAT table (family ip) in the pod netns */
  table: string;
  /** net.ipv4.ip_forward as the setup found it, put back by the undo */
  ipForward: string;
  /** the pod interface's IPv4 addresses (they stay; describe shows them) */
  podIps: string[];
  /** false: the pod interface has no IPv4 (an IPv6-only pod): no IPv4 address, NAT or DHCP */
  ipv4?: false;
  /** the IPv6 side, when the pod interface has a global IPv6 address */
  v6?: Masq6Record;
}

export interface Masq6Record {
  /** the guest's IPv6 CIDR, e.g. fd10:0:2::/120 */
  cidr: string;
  bridgeIp: string;
  guestIp: string;
  prefixLen: number;
  /** the bridge's link-local address: the router the advertisements name */
  linkLocal: string;
  /** net.ipv6.conf.{all,default,<each pod interface>}.forwarding as setup found them */
  forwarding: Record<string, string>;
  /** the pod interface's global IPv6 addresses (they stay) */
  podIps: string[];
  /**
   * '1': the pod interface learnt routes or addresses from router advertisements and took
   * them with accept_ra=1, which stops once forwarding is on: it gets accept_ra=2 while
   * the NIC exists, and 1 back after
   */
  podAcceptRa?: '1';
}

const IFA_F_PERMANENT = 0x80;
const RTPROT_RA = '9';

const IFA_F_NODAD = 0x02;

function sysctlPath(key: string): string {
  return `/proc/sys/net/ipv4/${key}`;
}

/** Reads/writes an IPv4 sysctl of the namespace at nsPath (/proc/sys/net is the caller's netns's). */
function sysctl(nsPath: string, key: string, value?: string): string {
  return withNetns(nsPath, () => {
    if (value !== undefined) writeFileSync(sysctlPath(key), value);
    return readFileSync(sysctlPath(key), 'utf8').trim();
  });
}

/** The NIC's NAT tables: ip (unless IPv6-only), ip6 (with IPv6). */
function natOf(nic: NicRecord, m: MasqRecord): MasqNat[] {
  const common = {
    podInterface: nic.veth.ifname,
    bridge: nic.bridge,
    ports: (nic.ports ?? []).map((p) => ({
      protocol: p.protocol,
      port: p.port,
      ...(p.endPort !== undefined ? { endPort: p.endPort } : {}),
    })),
  };
  return [
    ...(m.ipv4 === false
      ? []
      : [{ ...common, guestIp: m.guestIp, gatewayIp: m.bridgeIp, comment: ipForwardComment(m.ipForward) }]),
    ...(m.v6
      ? [
          {
            ...common,
            family: 6 as const,
            guestIp: m.v6.guestIp,
            gatewayIp: m.v6.bridgeIp,
            comment: forwarding6Comment(m.v6.forwarding),
          },
        ]
      : []),
  ];
}

function masqOf(nic: NicRecord): MasqRecord {
  if (!nic.masq) throw new Error(`NIC ${nic.name ?? nic.tap} has no masquerade record`);
  return nic.masq;
}

/**
 * The IPv6 side of the plan: the guest CIDR (spec's guestCidr6 or fd10:0:2::/120), refused
 * when it overlaps the pod's IPv6 networks (its addresses' subnets, its routes', the CNI
 * result's), and forwarding as found.
 */
function planV6(
  nsPath: string,
  spec: NicSpec,
  snap: VethSnapshot,
  podLinks: readonly string[],
): Omit<Masq6Record, 'linkLocal'> {
  const field = spec.field.replace(/podInterface$/, 'guestCidr6');
  const cidr = spec.guestCidr6 ?? DEFAULT_GUEST_CIDR6;
  const { prefix, bridgeIp, guestIp } = guestAddresses6(cidr, field);
  const pod: { what: string; p: Prefix6 }[] = [];
  const global = snap.addrs.filter((a) => a.family === 6 && a.scope === 0);
  for (const a of global)
    pod.push({ what: `address ${a.address}/${a.prefixLen}`, p: network6(a.address, a.prefixLen) });
  for (const r of snap.routes.filter((x) => x.family === 6 && x.dst !== '::/0' && x.dst !== 'default')) {
    const c = parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/128`);
    if (
      c &&
      c.family === 6 &&
      c.len > 0 &&
      !c.ip.toLowerCase().startsWith('fe8') &&
      !c.ip.toLowerCase().startsWith('ff')
    )
      pod.push({ what: `route ${r.dst}`, p: network6(c.ip, c.len) });
  }
  for (const ip of spec.cniResult?.ips ?? []) {
    const c = parseCidr(ip.address);
    if (c && c.family === 6) pod.push({ what: `CNI address ${ip.address}`, p: network6(c.ip, c.len) });
  }
  const clash = pod.find((x) => prefixesOverlap6(x.p, prefix));
  if (clash) throw badInput(field, cidr, `overlaps the pod's network (${clash.what} on ${spec.podInterface})`);
  return {
    cidr,
    bridgeIp,
    guestIp,
    prefixLen: prefix.len,
    forwarding: readForwarding6(nsPath, podLinks),
    podIps: global.map((a) => a.address),
    ...(fromRa(snap) && podAcceptRa(nsPath, spec.podInterface) === '1' ? { podAcceptRa: '1' as const } : {}),
  };
}

/** Whether the pod interface holds IPv6 routes or addresses that router advertisements gave it. */
function fromRa(snap: VethSnapshot): boolean {
  return (
    snap.routes.some((r) => r.family === 6 && (r.protocol === RTPROT_RA || r.protocol === 'ra')) ||
    snap.addrs.some((a) => a.family === 6 && a.scope === 0 && !(a.flags & IFA_F_PERMANENT))
  );
}

function podAcceptRa(nsPath: string, ifname: string): string | undefined {
  try {
    return getIpv6Conf(nsPath, ifname, 'accept_ra');
  } catch {
    return undefined;
  }
}

export const masqueradePod: PodBinding = {
  name: 'masquerade',

  async plan(ctx, spec) {
    const link = ctx.podLinks.find((l) => l.name === spec.podInterface);
    if (link?.name === 'lo') throw badInput(spec.field, spec.podInterface, 'is the loopback device');
    if (!spec.cniResult)
      throw badInput(spec.cniField, undefined, 'is required: masquerade NATs the pod network it describes');
    const snap = await readVethSnapshot(ctx.nsPath, spec.podInterface).catch((e: unknown) => {
      throw badInput(spec.field, spec.podInterface, `not found in netns ${ctx.netnsPath} (${(e as Error).message})`);
    });
    const v4 = snap.addrs.filter((a) => a.family === 4);
    const v6 = snap.addrs.filter((a) => a.family === 6 && a.scope === 0 && !a.address.toLowerCase().startsWith('fe8'));
    if (v4.length === 0 && v6.length === 0)
      throw badInput(spec.field, spec.podInterface, 'has neither an IPv4 nor a global IPv6 address in the pod netns');
    const cidrField = spec.field.replace(/podInterface$/, 'guestCidr');
    const dns = planDns(spec.cniResult, ctx.dns);
    const bridgeMac = randomMac(() => randomBytes(6));
    const linkLocal = eui64LinkLocal(bridgeMac);
    const masq6: Masq6Record | undefined = v6.length
      ? {
          ...planV6(
            ctx.nsPath,
            spec,
            snap,
            ctx.podLinks.map((l) => l.name),
          ),
          linkLocal,
        }
      : undefined;
    const plan6 = masq6 && {
      addresses: [masq6.guestIp],
      onLink: [{ prefix: ipFromBuffer(network6(masq6.guestIp, masq6.prefixLen).net), prefixLen: masq6.prefixLen }],
      router: linkLocal,
      dns: (Array.isArray(ctx.dns?.servers ?? spec.cniResult.dns?.nameservers)
        ? ((ctx.dns?.servers ?? spec.cniResult.dns?.nameservers) as unknown[])
        : []
      ).filter((d): d is string => typeof d === 'string' && isIPv6(d)),
      search: [...dns.search],
      mtu: snap.mtu,
      warnings: [],
    };
    const common = {
      name: spec.name!,
      binding: 'masquerade' as const,
      cniIndex: spec.cniIndex,
      veth: snap,
      vethNewMac: snap.mac, // untouched
      ...ctx.links,
      bridgeMac,
      guestMac: spec.mac ?? randomMac(() => randomBytes(6)),
      mtu: snap.mtu,
      model: spec.model,
      queues: spec.queues,
      ...(spec.dhcpOptions ? { dhcpOptions: spec.dhcpOptions } : {}),
      ...(spec.ports ? { ports: spec.ports } : {}),
    };
    if (v4.length === 0) {
      // IPv6-only: the IPv4 fields name the network it would have had (describe shows none);
      // a guestCidr given goes unused (the request cannot know the interface's families)
      const cidr4 = spec.guestCidr ?? DEFAULT_GUEST_CIDR;
      const { prefix, bridgeIp, guestIp } = guestAddresses(cidr4, cidrField);
      return {
        ...common,
        plan6: plan6!,
        masq: {
          cidr: cidr4,
          bridgeIp,
          guestIp,
          prefixLen: prefix.len,
          table: masqTable(ctx.links.bridge),
          ipForward: '',
          podIps: [],
          ipv4: false,
          v6: masq6!,
        },
      };
    }
    const cidr = spec.guestCidr ?? DEFAULT_GUEST_CIDR;
    const { prefix, bridgeIp, guestIp } = guestAddresses(cidr, cidrField);
    // the pod's networks: its addresses' subnets, its routes' destinations, the CNI result's
    const pod: { what: string; p: Prefix4 }[] = [];
    for (const a of v4) pod.push({ what: `address ${a.address}/${a.prefixLen}`, p: networkOf(a.address, a.prefixLen) });
    for (const r of snap.routes.filter((x) => x.family === 4 && x.dst !== 'default')) {
      const c = parseCidr4(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
      if (c && c.len > 0) pod.push({ what: `route ${r.dst}`, p: networkOf(c.ip, c.len) });
    }
    for (const ip of spec.cniResult.ips ?? []) {
      const c = parseCidr4(ip.address);
      if (c && isIpv4(c.ip)) pod.push({ what: `CNI address ${ip.address}`, p: networkOf(c.ip, c.len) });
    }
    const clash = pod.find((x) => prefixesOverlap(x.p, prefix));
    if (clash) throw badInput(cidrField, cidr, `overlaps the pod's network (${clash.what} on ${spec.podInterface})`);
    const ipForward = sysctl(ctx.nsPath, 'ip_forward');
    return {
      ...common,
      ...(plan6 ? { plan6 } : {}),
      plan: {
        ip: guestIp,
        prefixLen: prefix.len,
        routers: [bridgeIp],
        classlessRoutes: [],
        dns: dns.dns,
        search: dns.search,
        ...(dns.domain !== undefined ? { domain: dns.domain } : {}),
        mtu: snap.mtu,
        unexpressible: [],
        warnings: dns.warnings,
      },
      masq: {
        cidr,
        bridgeIp,
        guestIp,
        prefixLen: prefix.len,
        table: masqTable(ctx.links.bridge),
        ipForward,
        podIps: v4.map((a) => a.address),
        ...(masq6 ? { v6: masq6 } : {}),
      },
    };
  },

  async apply(ctx, nic) {
    const m = masqOf(nic);
    await ctx.nl.createBridge(nic.bridge, {
      mtu: nic.mtu,
      mac: nic.bridgeMac,
      group: LINK_GROUP,
      up: true,
      ...(nic.bridgeIndex ? { index: nic.bridgeIndex } : {}),
    });
    const [br, tap] = withNetns(ctx.nsPath, () => {
      makeTap(nic);
      return [ifIndex(nic.bridge), ifIndex(nic.tap)];
    }) as [number, number];
    if ((nic.bridgeIndex && br !== nic.bridgeIndex) || (nic.tapIndex && tap !== nic.tapIndex))
      throw new Error(
        `"${nic.bridge}"/"${nic.tap}" in netns ${ctx.nsPath} do not have the ifindexes they were made with`,
      );
    const v4 = m.ipv4 !== false;
    const v6 = m.v6;
    if (v6) {
      // the tap is a port: its own solicitations, reports and DAD would reach the guest;
      // the bridge routes, so it takes no advertisements, and needs no DAD: nothing but
      // the guest is on its link (its own link-local, made by the kernel from the MAC as
      // planned when it came up, would wait for one otherwise)
      setIpv6Confs(ctx.nsPath, [
        { ifname: nic.tap, key: 'disable_ipv6', value: '1' },
        { ifname: nic.bridge, key: 'accept_ra', value: '0' },
        { ifname: nic.bridge, key: 'accept_dad', value: '0' },
      ]);
    }
    // one round of changes (a second round, while other NICs build, once made a
    // concurrent link dump fail in the netlink library: "Multipart message not terminated")
    await Promise.all([
      ctx.nl.setLink(br, nic.bridge, { alias: ctx.mark }),
      ...(v4 ? [ctx.nl.addAddress(br, nic.bridge, m.bridgeIp, m.prefixLen)] : []),
      ...(v6
        ? [
            ctx.nl.addAddress(br, nic.bridge, v6.linkLocal, 64, undefined, IFA_F_NODAD).catch((e: unknown) => {
              if (!isNetError(e, 'EEXIST')) throw e;
            }),
            ctx.nl.addAddress(br, nic.bridge, v6.bridgeIp, v6.prefixLen, undefined, IFA_F_NODAD),
          ]
        : []),
      ctx.nl.setLink(tap, nic.tap, { mtu: nic.mtu, group: LINK_GROUP, master: br, alias: ctx.mark, up: true }),
      // the DHCP server unicasts its OFFER to a client with no address yet (RFC 2131 4.1)
      ...(v4 ? [ctx.nl.setNeighbor(br, nic.bridge, m.guestIp, nic.guestMac)] : []),
    ]);
    if (v6) {
      // forwarding on would make the pod interface ignore the advertisements it lives on
      if (v6.podAcceptRa) setIpv6Conf(ctx.nsPath, nic.veth.ifname, 'accept_ra', '2');
      setIpv6Conf(ctx.nsPath, 'all', 'forwarding', '1');
    }
    if (v4) {
      sysctl(ctx.nsPath, `conf/${nic.bridge}/route_localnet`, '1');
      sysctl(ctx.nsPath, 'ip_forward', '1');
    }
    await applyNat(ctx.nsPath, m.table, natOf(nic, m));
  },

  async undo(ctx, nic) {
    const errors: UndoError[] = [];
    const m = nic.masq;
    if (!m) return errors;
    await removeNat(ctx.nsPath, m.table).catch((e: unknown) =>
      errors.push(UndoError.of('remove NAT table', m.table, e)),
    );
    const links = await ctx.nl.links().catch(() => undefined);
    if (!links) return [...errors, new UndoError('list links', ctx.nsPath, 'EIO', `list links: cannot read links`)];
    for (const want of nicLinks(nic, ctx.mark)) {
      const l =
        links.find((x) => x.index === want.index && ownLink(x, want)) ?? links.find((x) => x.name === want.name);
      if (!l) continue;
      if (!ownLink(l, want)) {
        ctx.leftAlone(`"${want.name}" in ${ctx.nsPath} is not the link this sandbox made: left alone`);
        continue;
      }
      await ctx.nl
        .deleteLink(l.index, l.name)
        .catch(
          (e: unknown) =>
            (e as { code?: string }).code === 'ENODEV' ||
            errors.push(UndoError.of(`delete ${want.kind === 'tun' ? 'tap' : 'bridge'}`, `"${l.name}"`, e)),
        );
    }
    if (m.ipv4 !== false) {
      try {
        if (sysctl(ctx.nsPath, 'ip_forward') !== m.ipForward) sysctl(ctx.nsPath, 'ip_forward', m.ipForward);
      } catch (e) {
        errors.push(UndoError.of('restore ip_forward', m.ipForward, e));
      }
    }
    if (m.v6) errors.push(...restoreForwarding6(ctx.nsPath, m.v6.forwarding));
    if (m.v6?.podAcceptRa && podAcceptRa(ctx.nsPath, nic.veth.ifname) === '2') {
      try {
        setIpv6Conf(ctx.nsPath, nic.veth.ifname, 'accept_ra', m.v6.podAcceptRa);
      } catch (e) {
        errors.push(UndoError.of(`restore accept_ra of ${nic.veth.ifname} to`, m.v6.podAcceptRa, e));
      }
    }
    return errors;
  },

  async check(ctx, nic) {
    const { links, mark } = ctx;
    const m = masqOf(nic);
    const drift: string[] = [];
    for (const want of nicLinks(nic, mark)) {
      const l = links.find((x) => x.name === want.name);
      if (!l || !ownLink(l, want)) {
        drift.push(
          `${want.kind === 'tun' ? 'tap' : 'bridge'} ${want.name} ${l ? 'is not the link this sandbox made' : 'missing'}`,
        );
        continue;
      }
      if (l.alias !== mark) {
        await ctx.nl.setLink(l.index, l.name, { alias: mark });
        drift.push(`${l.name} was not marked ${mark}: marked`);
      }
    }
    if (!links.some((l) => l.name === nic.veth.ifname)) drift.push(`pod interface ${nic.veth.ifname} missing`);
    const ns = ctx.nl.netns;
    if (
      m.ipv4 !== false &&
      links.some((l) => l.name === nic.bridge) &&
      sysctl(ns, `conf/${nic.bridge}/route_localnet`) !== '1'
    ) {
      sysctl(ns, `conf/${nic.bridge}/route_localnet`, '1');
      drift.push(`route_localnet was off on ${nic.bridge}: turned on`);
    }
    if (m.ipv4 !== false && sysctl(ns, 'ip_forward') !== '1') {
      sysctl(ns, 'ip_forward', '1');
      drift.push('ip_forward was off: turned on');
    }
    if (m.v6 && getIpv6Conf(ns, 'all', 'forwarding') !== '1') {
      setIpv6Conf(ns, 'all', 'forwarding', '1');
      drift.push('IPv6 forwarding was off: turned on');
    }
    const have = await natFamilies(ns, m.table);
    const want = natOf(nic, m).map((n) => n.family ?? 4);
    if (want.some((f) => !have.includes(f))) {
      await applyNat(ns, m.table, natOf(nic, m));
      drift.push(
        `NAT table ${want
          .filter((f) => !have.includes(f))
          .map((f) => (f === 6 ? 'ip6' : 'ip'))
          .join('+')} ${m.table} missing: re-applied`,
      );
    }
    return drift;
  },

  describe(n): GuestNic {
    const m = masqOf(n);
    return {
      name: n.name!,
      binding: 'masquerade',
      ...tapNicFields(n, n.bridge),
      ...(m.ipv4 === false ? {} : { ip: m.guestIp, prefixLen: m.prefixLen, gateway: m.bridgeIp }),
      ...(m.ipv4 === false && m.v6 ? { ipv6: [m.v6.guestIp] } : {}),
      masquerade: {
        guestCidr: m.ipv4 === false ? '' : m.cidr,
        podIps: [...m.podIps, ...(m.v6?.podIps ?? [])],
        table: m.table,
        rules: natOf(n, m).flatMap((x) => natRules(x).map(natRuleText)),
        ...(m.v6
          ? {
              ipv6: {
                guestCidr: m.v6.cidr,
                guestIp: m.v6.guestIp,
                bridgeIp: m.v6.bridgeIp,
                router: m.v6.linkLocal,
              },
            }
          : {}),
      },
    };
  },

  status(n) {
    return routelessStatus(this.describe(n), [...(n.plan?.warnings ?? []), ...(n.plan6?.warnings ?? [])]);
  },

  servesDhcp: hasPlannedLease,

  lease(nic, common) {
    return planLease(nic, common, false);
  },

  fence() {
    // routed, not bridged: the guest's frames never reach the pod network as they are
    return undefined;
  },

  madeLinks(nic, mark) {
    return nicLinks(nic, mark);
  },

  dhcpInterface(nic) {
    return nic.bridge;
  },

  dhcpServerId(nic) {
    return masqOf(nic).bridgeIp;
  },
  // the persistent tap, one fd per queue (tap-holders.ts)
  handOut: tapHandOut,
};

/**
 * Refuses two masquerade NICs of one sandbox whose IPv6 guest networks overlap (both on
 * the default fd10:0:2::/120, say): known only once each has planned IPv6 (its pod
 * interface has a global IPv6 address), so checked after the plans, before anything is built.
 */
export function checkGuestNetworks6(nics: readonly NicRecord[]): void {
  const seen: { at: number; cidr: string; p: Prefix6 }[] = [];
  nics.forEach((nic, at) => {
    const v6 = nic.masq?.v6;
    if (!v6) return;
    const p = network6(v6.bridgeIp, v6.prefixLen);
    const other = seen.find((s) => prefixesOverlap6(s.p, p));
    if (other)
      throw badInput(
        `nics[${at}].guestCidr6`,
        v6.cidr,
        `overlaps nics[${other.at}]'s IPv6 guest network ${other.cidr} (give each masquerade NIC its own)`,
      );
    seen.push({ at, cidr: v6.cidr, p });
  });
}
