// What the pod bindings share when they describe a NIC and hand out its DHCP lease: the
// tap-side fields of a GuestNic, the status of a NIC that keeps no pod routes, and the
// lease built from the NIC's IPv4 plan and DHCP options; the record fields and the GuestNic
// of a user-mode NIC.
import { randomBytes } from 'node:crypto';
import type { StaticLease } from '../../dhcp/server';
import { randomMac } from '../../net/mac';
import type { VethSnapshot } from '../snapshot';
import type { GuestNic } from '../protocol';
import type { NicRecord } from '../record';
import type { NicSpec, NicStatus } from './types';

/** The fields of a GuestNic every tap-backed binding fills the same way (vnet headers on). */
export function tapNicFields(
  n: NicRecord,
  bridge: string,
): Pick<GuestNic, 'index' | 'veth' | 'bridge' | 'tap' | 'mac' | 'mtu' | 'model' | 'queues' | 'vnetHdr'> {
  return {
    index: n.cniIndex,
    veth: n.veth.ifname,
    bridge,
    tap: n.tap,
    mac: n.guestMac,
    mtu: n.mtu,
    model: n.model,
    queues: n.queues,
    vnetHdr: true,
  };
}

/** The status of a NIC that takes over no pod routes: what describe says, plus its warnings. */
export function routelessStatus(described: GuestNic, warnings: string[]): NicStatus {
  return { ...described, routes: [], unexpressible: [], unrestorable: [], warnings };
}

/**
 * The lease a NIC's DHCP server hands out, from its IPv4 plan (none without one) and its
 * DHCP options; `classlessRoutes` says whether the plan's classless routes go with it.
 */
/** The pod side of a binding whose NICs get no DHCP server of tapwire's and no fence (slirp, macvtap). */
export const noDhcpNoFence = {
  servesDhcp: () => false,
  lease: () => undefined,
  fence: () => undefined,
  dhcpInterface: () => '',
};

/** A NIC with an IPv4 plan gets a DHCP server (bridge, masquerade): planLease gives its lease. */
export function hasPlannedLease(nic: NicRecord): boolean {
  return nic.plan !== undefined;
}

export function planLease(
  nic: NicRecord,
  common: Pick<StaticLease, 'hostname' | 'leaseTime'>,
  classlessRoutes: boolean,
): StaticLease | undefined {
  const p = nic.plan;
  if (!p) return undefined;
  const o = nic.dhcpOptions;
  return {
    mac: nic.guestMac,
    ip: p.ip,
    prefixLen: p.prefixLen,
    routers: p.routers,
    classlessRoutes: classlessRoutes ? p.classlessRoutes : [],
    dns: p.dns,
    search: p.search,
    ...(p.domain ? { domain: p.domain } : {}),
    ...(common.hostname ? { hostname: common.hostname } : {}),
    mtu: p.mtu,
    ...(common.leaseTime ? { leaseTime: common.leaseTime } : {}),
    ...(o?.bootFileName !== undefined ? { bootFileName: o.bootFileName } : {}),
    ...(o?.tftpServerName !== undefined ? { tftpServerName: o.tftpServerName } : {}),
    ...(o?.ntpServers?.length ? { ntpServers: o.ntpServers } : {}),
    ...(o?.privateOptions?.length ? { privateOptions: o.privateOptions } : {}),
  };
}

/**
 * The record fields of a NIC whose networking runs in a process of its own (slirp in the
 * emulator, passt beside it): the pod interface left as it is, no bridge or tap, one queue.
 */
export function userModeNic(
  spec: NicSpec,
  snap: VethSnapshot,
): Pick<
  NicRecord,
  'name' | 'cniIndex' | 'veth' | 'vethNewMac' | 'bridge' | 'bridgeMac' | 'tap' | 'guestMac' | 'mtu' | 'model' | 'queues'
> {
  return {
    name: spec.name!,
    cniIndex: spec.cniIndex,
    veth: snap,
    vethNewMac: snap.mac,
    bridge: '',
    bridgeMac: '',
    tap: '',
    guestMac: spec.mac ?? randomMac(() => randomBytes(6)),
    mtu: snap.mtu,
    model: spec.model,
    queues: 1,
  };
}

/**
 * The GuestNic fields of a user-mode NIC (userModeNic's record: no bridge, no tap, one
 * queue), vnet headers off; the binding adds the guest's addresses and its own part.
 */
export function userModeGuestNic(
  n: NicRecord,
  binding: 'slirp' | 'passt',
): ReturnType<typeof tapNicFields> & Pick<GuestNic, 'name' | 'binding'> {
  return { name: n.name!, binding, ...tapNicFields(n, ''), vnetHdr: false };
}

/** A user-mode NIC's listed ports as describe shows them: `tcp <from>:80-90 -> guest`. */
export function portForwards(ports: NicRecord['ports'], from: string): string[] {
  return (ports ?? []).map(
    (p) => `${p.protocol.toLowerCase()} ${from}:${p.port}${p.endPort ? `-${p.endPort}` : ''} -> guest`,
  );
}
