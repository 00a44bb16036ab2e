// What a sandbox looks like now: its record, its DHCP leases, its fence's counters and
// the live state of its links; and the list of all sandboxes.
import { NetlinkHandle } from '../../net/netlink';
import { TapError } from '../errors';
import { readFenceCounters } from '../fence';
import { linkMark } from '../link-mark';
import { bindingOf } from '../bindings';
import type { NicStatus } from '../bindings/types';
import type { ListEntry } from '../protocol';
import { checkSandboxId } from '../validate';
import { goneMessage, pinRecord, type ManagerContext } from './context';

export interface SandboxStatus {
  sandboxId: string;
  state: string;
  netnsPath: string;
  createdAt: string;
  /** per NIC, in order: what it got, and the routes it could not hand over or put back (NicStatus) */
  nics: NicStatus[];
  dhcp: unknown[];
  /** per NIC with IPv6: the DHCPv6 server's and the router advertiser's counters */
  ipv6?: unknown[];
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
  const ipv6 = ctx.dhcp.stats6(sandboxId);
  let fence;
  let live;
  const ns = pinRecord(ctx, rec);
  if (ns) {
    fence = await readFenceCounters(ns.path, rec.fenceTable).catch(() => undefined);
    try {
      const nl = NetlinkHandle.open(ns.path);
      try {
        const links = await nl.links();
        const mark = linkMark(ctx.scope, rec.sandboxId);
        live = rec.nics.map((n) => {
          // the pod interface first, then the links the binding made (the bridge's: bridge, tap)
          const names = [
            n.veth.ifname,
            ...bindingOf(n)
              .madeLinks(n, mark)
              .map((m) => m.name)
              .reverse(),
          ];
          return links.filter((l) => names.includes(l.name));
        });
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
    nics: rec.nics.map((n) => bindingOf(n).status(n)),
    dhcp: dhcp.map((s) => ({ ...s, netns: rec.netnsPath })), // opened as /proc/self/fd/N
    ...(ipv6.length ? { ipv6 } : {}),
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
    ips: r.nics.flatMap((n) => (n.plan ? [`${n.plan.ip}/${n.plan.prefixLen}`] : [])),
  }));
}
