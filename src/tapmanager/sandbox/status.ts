// What a sandbox looks like now: its record, its DHCP leases, its fence's counters and
// the live state of its links; and the list of all sandboxes.
import { NetlinkHandle } from '../../net/netlink';
import { TapError } from '../errors';
import { readFenceCounters } from '../fence';
import { planRouteRestore } from '../plan/restore-routes';
import type { GuestNic, ListEntry } from '../protocol';
import type { RouteSnapshot } from '../snapshot';
import { checkSandboxId } from '../validate';
import { goneMessage, pinRecord, type ManagerContext } from './context';
import { guestNic } from './setup';

export interface SandboxStatus {
  sandboxId: string;
  state: string;
  netnsPath: string;
  createdAt: string;
  nics: (GuestNic & {
    routes: { dst: string; gw: string }[];
    /** routes of the veth that DHCP cannot hand to the guest, with the reason (logged once, at setup) */
    unexpressible: { route: RouteSnapshot; reason: string }[];
    /** routes of the veth that a teardown cannot put back, with the reason (logged at teardown) */
    unrestorable: { route: RouteSnapshot; reason: string }[];
    warnings: string[];
  })[];
  dhcp: unknown[];
  fence?: { name: string; packets: number; bytes: number }[];
  drift: string[];
  /** per NIC: the live state of its veth, bridge and tap */
  live?: { name: string; mac: string; mtu: number; up: boolean; master?: number }[][];
}

export async function sandboxStatus(ctx: ManagerContext, id: unknown): Promise<SandboxStatus> {
  const sandboxId = checkSandboxId(id);
  const rec = ctx.registry.records.get(sandboxId);
  if (!rec) throw new TapError('ENOENT', `no sandbox ${JSON.stringify(sandboxId)}`, 'sandboxId');
  const dhcp = ctx.dhcp.stats(sandboxId);
  let fence;
  let live;
  const ns = pinRecord(ctx, rec);
  if (ns) {
    fence = await readFenceCounters(ns.path, rec.fenceTable).catch(() => undefined);
    try {
      const nl = NetlinkHandle.open(ns.path);
      try {
        const links = await nl.links();
        live = rec.nics.map((n) => links.filter((l) => [n.veth.ifname, n.bridge, n.tap].includes(l.name)));
      } finally {
        nl.close();
      }
    } catch {
      live = undefined;
    } finally {
      ns.close();
    }
  }
  return {
    sandboxId,
    state: rec.state,
    netnsPath: rec.netnsPath,
    createdAt: rec.createdAt,
    nics: rec.nics.map((n) => ({
      ...guestNic(n),
      routes: n.plan.classlessRoutes,
      unexpressible: n.plan.unexpressible,
      unrestorable: planRouteRestore(n.veth, n.veth.routes).unrestorable,
      warnings: n.plan.warnings,
    })),
    dhcp: dhcp.map((s) => ({ ...s, netns: rec.netnsPath })), // opened as /proc/self/fd/N
    ...(fence ? { fence } : {}),
    ...(live ? { live } : {}),
    drift: [...(ctx.drift.get(sandboxId) ?? []), ...(ns ? [] : [goneMessage(rec)])],
  };
}

export function listSandboxes(ctx: ManagerContext): ListEntry[] {
  return [...ctx.registry.records.values()].map((r) => ({
    sandboxId: r.sandboxId,
    state: r.state,
    netnsPath: r.netnsPath,
    createdAt: r.createdAt,
    ips: r.nics.map((n) => `${n.plan.ip}/${n.plan.prefixLen}`),
  }));
}
