// The bridge binding, pod side: the pod interface loses its IPv4 addresses and routes
// (kept in the record), is bridged with a persistent tap, and the guest gets the
// interface's address by DHCP from a server on the bridge, with the interface's MAC (or
// the spec's). An L2-only NIC (no CNI result) is bridged as it is: nothing stripped, no
// bridge address, no DHCP server, no fence. The links are built and undone by
// topology.ts (buildNic, unbuildNic); this module plans, describes and checks.
// IPv6 (ipv6-nic.ts): a NIC with a CNI result whose interface has global IPv6 addresses
// also gets plan6 (DHCPv6 + RAs, served by sandbox/dhcp-servers.ts); apply takes IPv6 off
// the veth (and keeps it off the bridge and tap), undoLast puts it back.
import { randomBytes } from 'node:crypto';
import { randomMac } from '../../../net/mac';
import { TapError, badInput } from '../../errors';
import { ipv6IsOn, planNicIpv6, restoreVethIpv6, stripVethIpv6, stripVethIpv6Here, vethHasIpv6 } from '../../ipv6-nic';
import type { CniResult } from '../../../cni/result';
import { planDns } from '../../plan/dns';
import { planGuestNetwork, PlanError } from '../../plan/guest-network';
import { readVethSnapshot } from '../../plan/read-veth';
import { planRouteRestore, routeKey } from '../../plan/restore-routes';
import type { GuestNic } from '../../protocol';
import type { NicRecord } from '../../record';
import { BRIDGE_IP, buildNic, nicLinks, ownLink, unbuildNic } from '../../topology';
import { tapHandOut } from '../tap-hand-out';
import { hasPlannedLease, planLease, tapNicFields } from '../common';
import type { PodBinding } from '../types';

/** Whether the CNI result gives interface `index` (or every interface) an IPv4 address. */
function cniHasIpv4(cni: CniResult, index: number): boolean {
  return (cni.ips ?? []).some(
    (e) =>
      (e.version === '4' || (typeof e.address === 'string' && !e.address.includes(':'))) &&
      (e.interface === undefined || e.interface === index),
  );
}

/** A NIC that hands the guest an address (IPv4, IPv6 or both); the others are L2-only. */
export function hasIp(nic: NicRecord): boolean {
  return nic.plan !== undefined || nic.plan6 !== undefined;
}

/** A plan's field or message about `cniResult...` as about the NIC's CNI result at `cniField`. */
function inCni(text: string, cniField: string): string {
  return cniField === 'cniResult' ? text : text.replaceAll('cniResult', cniField);
}

export const bridgePod: PodBinding = {
  name: 'bridge',

  async plan(ctx, spec) {
    // what a bridge port cannot be, or should not be taken from under its owner
    const link = ctx.podLinks.find((l) => l.name === spec.podInterface);
    if (link?.name === 'lo') throw badInput(spec.field, spec.podInterface, 'is the loopback device');
    if (link && (link.kind === 'bridge' || link.kind === 'tun'))
      throw badInput(
        spec.field,
        spec.podInterface,
        `is a ${link.kind} device; the bridge binding takes an Ethernet interface`,
      );
    const master = link?.master !== undefined ? ctx.podLinks.find((l) => l.index === link.master) : undefined;
    if (link?.master !== undefined)
      throw badInput(spec.field, spec.podInterface, `is a port of "${master?.name ?? link.master}" already`);
    const snap = await readVethSnapshot(ctx.nsPath, spec.podInterface, {
      within: { nl: ctx.reader, links: ctx.podLinks },
    }).catch((e: unknown) => {
      throw badInput(spec.field, spec.podInterface, `not found in netns ${ctx.netnsPath} (${(e as Error).message})`);
    });
    let plan;
    let plan6;
    if (spec.cniResult) {
      const cni = spec.cniResult;
      // IPv6-only: neither the pod interface nor its CNI result has IPv4 (no DHCPv4 server then)
      const v6Only = snap.addrs.every((a) => a.family !== 4) && !cniHasIpv4(cni, spec.cniIndex);
      let search: readonly string[];
      try {
        plan = v6Only
          ? undefined
          : planGuestNetwork({
              veth: snap,
              cni,
              cniInterfaceIndex: spec.cniIndex,
              ...(ctx.dns ? { dns: ctx.dns } : {}),
              serverId: BRIDGE_IP,
            });
        search = plan?.search ?? planDns(cni, ctx.dns).search;
      } catch (e) {
        // the plan names fields from the CNI result's root: from the request's, here
        if (e instanceof PlanError)
          throw new TapError('EINVAL', inCni(e.message, spec.cniField), inCni(e.field, spec.cniField));
        throw e;
      }
      plan6 = await planNicIpv6(ctx.reader, snap, ctx.dns?.servers ?? cni.dns?.nameservers, search);
      if (!plan && !plan6)
        throw badInput(spec.field, spec.podInterface, 'has neither an IPv4 nor a global IPv6 address in the pod netns');
      if (plan && snap.addrs.every((a) => a.family !== 4)) {
        throw badInput(spec.field, spec.podInterface, 'has no IPv4 address in the pod netns');
      }
      for (const u of plan?.unexpressible ?? [])
        ctx.log.warn('route cannot be handed to the guest', {
          sandboxId: ctx.sandboxId,
          route: u.route,
          reason: u.reason,
        });
      for (const w of plan6?.warnings ?? []) ctx.log.warn(w, { sandboxId: ctx.sandboxId });
    }
    return {
      ...(spec.name !== undefined ? { name: spec.name, binding: 'bridge' as const } : {}),
      cniIndex: spec.cniIndex,
      veth: snap,
      vethNewMac: randomMac(() => randomBytes(6)),
      ...ctx.links,
      bridgeMac: randomMac(() => randomBytes(6)),
      guestMac: spec.mac ?? snap.mac,
      mtu: snap.mtu,
      model: spec.model,
      queues: spec.queues,
      ...(plan ? { plan } : {}),
      ...(plan6 ? { plan6 } : {}),
      ...(spec.dhcpOptions ? { dhcpOptions: spec.dhcpOptions } : {}),
      ...(spec.ports ? { ports: spec.ports } : {}),
    };
  },

  async apply(ctx, nic) {
    await buildNic(ctx.nl, ctx.nsPath, nic, ctx.mark, () => {
      // a NIC with IP: the veth stops being an IPv6 host, the bridge and tap never are
      // (ipv6-nic.ts); in the build's window, with the tap not up yet
      if (hasIp(nic)) stripVethIpv6Here(nic.veth, nic.bridge, nic.tap);
      ctx.inWindow?.(nic);
    });
  },

  undo(ctx, nic) {
    const current = (ifname: string) =>
      readVethSnapshot(ctx.nsPath, ifname, { alsoKeys: nic.veth.routes.map(routeKey) });
    return unbuildNic(ctx.nl, nic, ctx.mark, current, ctx.warn, ctx.leftAlone);
  },

  // IPv6 back (after every NIC's undo, in the pod interfaces' order: each veth has its MAC
  // again). An L2-only NIC never lost it, but cycles it once an interface before it got
  // IPv6 back, so that the kernel lists every fe80::/64 and ff00::/8 as before.
  async undoLast(ctx, nic) {
    if (!hasIp(nic) && !ctx.ipv6Reenabled) return [];
    const r = await restoreVethIpv6(ctx.nl, nic.veth, ctx.ipv6Reenabled === true);
    if (r.reenabled) ctx.ipv6Reenabled = true;
    return r.errors;
  },

  async check(ctx, nic) {
    const { links, mark } = ctx;
    const drift: string[] = [];
    // only the links this sandbox made count (and get marked): not others with their names
    const find = (name: string, index: number | undefined, kind: 'bridge' | 'tun') => {
      const l = links.find((x) => x.name === name);
      if (l && !ownLink(l, { name, index, kind, mark })) drift.push(`${name} is not the link this sandbox made`);
      return l && ownLink(l, { name, index, kind, mark }) ? l : undefined;
    };
    const br = find(nic.bridge, nic.bridgeIndex, 'bridge');
    const tap = find(nic.tap, nic.tapIndex, 'tun');
    const veth = links.find((l) => l.name === nic.veth.ifname);
    if (!br) drift.push(`bridge ${nic.bridge} missing`);
    if (!tap) drift.push(`tap ${nic.tap} missing`);
    if (!veth) drift.push(`veth ${nic.veth.ifname} missing`);
    if (br && veth && veth.master !== br.index) drift.push(`veth ${nic.veth.ifname} not enslaved to ${nic.bridge}`);
    if (br && tap && tap.master !== br.index) drift.push(`tap ${nic.tap} not enslaved to ${nic.bridge}`);
    // IPv6 stays off the veth while it is a port (ipv6-nic.ts): off again if it came back
    if (veth && hasIp(nic) && vethHasIpv6(nic.veth) && ipv6IsOn(ctx.nl.netns, nic.veth.ifname)) {
      stripVethIpv6(ctx.nl.netns, nic.veth, nic.bridge, nic.tap);
      drift.push(`veth ${nic.veth.ifname} had IPv6 on: turned off`);
    }
    for (const l of [br, tap]) {
      if (!l || l.alias === mark) continue;
      await ctx.nl.setLink(l.index, l.name, { alias: mark });
      drift.push(`${l.name} was not marked ${mark}: marked`);
    }
    return drift;
  },

  describe(n): GuestNic {
    return {
      ...(n.name !== undefined ? { name: n.name, binding: 'bridge' as const } : {}),
      ...tapNicFields(n, n.bridge),
      ...(n.plan
        ? {
            ip: n.plan.ip,
            prefixLen: n.plan.prefixLen,
            ...(n.plan.routers[0] ? { gateway: n.plan.routers[0] } : {}),
          }
        : n.plan6
          ? { ipv6: n.plan6.addresses }
          : { l2Only: true }),
    };
  },

  status(n) {
    return {
      ...this.describe(n),
      routes: n.plan?.classlessRoutes ?? [],
      unexpressible: n.plan?.unexpressible ?? [],
      unrestorable: planRouteRestore(n.veth, n.veth.routes).unrestorable,
      warnings: [...(n.plan?.warnings ?? []), ...(n.plan6?.warnings ?? [])],
    };
  },

  servesDhcp: hasPlannedLease,

  lease(nic, common) {
    return planLease(nic, common, true);
  },

  fence(n) {
    // L2-only: no DHCP server to fence in, and the segment's own DHCP (if any) must pass
    return hasIp(n) ? { bridge: n.bridge, veth: n.veth.ifname, tap: n.tap, guestMac: n.guestMac } : undefined;
  },

  madeLinks(nic, mark) {
    return nicLinks(nic, mark);
  },

  dhcpInterface(nic) {
    return nic.bridge;
  },

  // the persistent tap, one fd per queue (tap-holders.ts)
  handOut: tapHandOut,
};
