// The masquerade binding, pod side (issue #18): the pod keeps its interface and its IP
// (eth0 untouched, so CNI CHECK and a mesh sidecar keep working) and the guest sits
// behind NAT on a bridge of its own: the bridge takes the first address of the guest
// CIDR (default 10.0.2.0/24: bridge 10.0.2.1, guest 10.0.2.2), the tap is its port,
// forwarding is on in the pod netns, route_localnet on the bridge, and the NIC's NAT
// table (nat.ts) goes in as one nf_tables batch. The guest gets its address, the bridge
// as router and the pod's DNS by DHCP from a server on the bridge. IPv4 only for now
// (IPv6 masquerade, DHCPv6 and RA, comes with the ipv6 work).
// Undo: the table deleted, the tap and bridge deleted (ownLink), forwarding put back
// as it was found.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
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
import type { PodBinding } from '../types';
import { DEFAULT_GUEST_CIDR, guestAddresses, masqTable, prefixesOverlap } from './cidr';
import { applyNat, natExists, natRules, natRuleText, removeNat, type MasqNat } from './nat';

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
}

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

function natOf(nic: NicRecord, m: MasqRecord): MasqNat {
  return {
    podInterface: nic.veth.ifname,
    bridge: nic.bridge,
    guestIp: m.guestIp,
    gatewayIp: m.bridgeIp,
    ports: (nic.ports ?? []).map((p) => ({
      protocol: p.protocol,
      port: p.port,
      ...(p.endPort !== undefined ? { endPort: p.endPort } : {}),
    })),
  };
}

function masqOf(nic: NicRecord): MasqRecord {
  if (!nic.masq) throw new Error(`NIC ${nic.name ?? nic.tap} has no masquerade record`);
  return nic.masq;
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
    if (v4.length === 0) throw badInput(spec.field, spec.podInterface, 'has no IPv4 address in the pod netns');
    const cidrField = spec.field.replace(/podInterface$/, 'guestCidr');
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
    const dns = planDns(spec.cniResult, ctx.dns);
    const ipForward = sysctl(ctx.nsPath, 'ip_forward');
    return {
      name: spec.name!,
      binding: 'masquerade',
      cniIndex: spec.cniIndex,
      veth: snap,
      vethNewMac: snap.mac, // untouched
      ...ctx.links,
      bridgeMac: randomMac(() => randomBytes(6)),
      guestMac: spec.mac ?? randomMac(() => randomBytes(6)),
      mtu: snap.mtu,
      model: spec.model,
      queues: spec.queues,
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
      },
      ...(spec.dhcpOptions ? { dhcpOptions: spec.dhcpOptions } : {}),
      ...(spec.ports ? { ports: spec.ports } : {}),
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
    await Promise.all([
      ctx.nl.setLink(br, nic.bridge, { alias: ctx.mark }),
      ctx.nl.addAddress(br, nic.bridge, m.bridgeIp, m.prefixLen),
      ctx.nl.setLink(tap, nic.tap, { mtu: nic.mtu, group: LINK_GROUP, master: br, alias: ctx.mark, up: true }),
      // the DHCP server unicasts its OFFER to a client with no address yet (RFC 2131 4.1)
      ctx.nl.setNeighbor(br, nic.bridge, m.guestIp, nic.guestMac),
    ]);
    sysctl(ctx.nsPath, `conf/${nic.bridge}/route_localnet`, '1');
    sysctl(ctx.nsPath, 'ip_forward', '1');
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
    try {
      if (sysctl(ctx.nsPath, 'ip_forward') !== m.ipForward) sysctl(ctx.nsPath, 'ip_forward', m.ipForward);
    } catch (e) {
      errors.push(UndoError.of('restore ip_forward', m.ipForward, e));
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
    if (links.some((l) => l.name === nic.bridge) && sysctl(ns, `conf/${nic.bridge}/route_localnet`) !== '1') {
      sysctl(ns, `conf/${nic.bridge}/route_localnet`, '1');
      drift.push(`route_localnet was off on ${nic.bridge}: turned on`);
    }
    if (sysctl(ns, 'ip_forward') !== '1') {
      sysctl(ns, 'ip_forward', '1');
      drift.push('ip_forward was off: turned on');
    }
    if (!(await natExists(ns, m.table))) {
      await applyNat(ns, m.table, natOf(nic, m));
      drift.push(`NAT table ${m.table} missing: re-applied`);
    }
    return drift;
  },

  describe(n): GuestNic {
    const m = masqOf(n);
    return {
      name: n.name!,
      binding: 'masquerade',
      ...tapNicFields(n, n.bridge),
      ip: m.guestIp,
      prefixLen: m.prefixLen,
      gateway: m.bridgeIp,
      masquerade: {
        guestCidr: m.cidr,
        podIps: m.podIps,
        table: m.table,
        rules: natRules(natOf(n, m)).map(natRuleText),
      },
    };
  },

  status(n) {
    return routelessStatus(this.describe(n), n.plan?.warnings ?? []);
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
