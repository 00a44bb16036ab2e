// The passt binding, pod side: no link, no bridge, no NAT table, no DHCP server of
// tapwire's. passt (Debian's) runs in the pod netns as an unprivileged user, copies the
// pod interface's addresses and routes to the guest through its own ARP/DHCP/NDP/DHCPv6,
// and forwards the listed ports (-t/-u) to it; the emulator reaches passt over a
// connected Unix stream pair whose other end tapwire hands over like a tap fd
// (supervisor.ts). Plan reads the pod interface (it must have an address to copy) and
// records how passt runs; apply starts passt; undo stops it; check (after a restart)
// adopts the passt that still runs or starts a new one. The pod is never changed.
import { readFileSync } from 'node:fs';
import { withNetns } from '../../../native';
import { badInput } from '../../errors';
import { planDns } from '../../plan/dns';
import { readVethSnapshot } from '../../plan/read-veth';
import type { GuestNic } from '../../protocol';
import { noDhcpNoFence, portForwards, routelessStatus, userModeGuestNic, userModeNic } from '../common';
import { UndoError } from '../errors';
import { fdsEntry } from '../tap-hand-out';
import type { NicRecord } from '../../record';
import type { PodBinding } from '../types';
import { adoptPasst, passtLive, startPasst, stopPasst, takeEmulatorEnd } from './supervisor';
import { closeFd } from '../../../native';

/** The user passt runs as: nobody (passt itself refuses to keep root). */
export const PASST_UID = 65534;
export const PASST_GID = 65534;

/**
 * passt answers the guest's pings through ICMP echo sockets, which the pod's
 * net.ipv4.ping_group_range must allow for passt's group; a warning when it does not.
 */
export function pingWarnings(nsPath: string, gid: number): string[] {
  let text: string;
  try {
    text = withNetns(nsPath, () => readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8')).trim();
  } catch {
    return [];
  }
  const [lo, hi] = text.split(/\s+/).map(Number);
  if (lo !== undefined && hi !== undefined && lo <= gid && gid <= hi) return [];
  return [
    `the guest's pings get no answer: the pod's net.ipv4.ping_group_range (${text}) leaves out passt's group ${gid} (set it in the pod spec, a safe sysctl; TCP and UDP are not affected)`,
  ];
}

/** The NIC's passt stopped (its supervision dropped); never throws. */
async function stopNic(nic: NicRecord): Promise<UndoError[]> {
  try {
    await stopPasst(nic);
    return [];
  } catch (e) {
    return [UndoError.of('stop passt', nic.passt?.pid !== undefined ? `pid ${nic.passt.pid}` : undefined, e)];
  }
}

export const passtPod: PodBinding = {
  name: 'passt',

  async plan(ctx, spec) {
    if (spec.queues > 1)
      throw badInput(spec.field.replace(/podInterface$/, 'queues'), spec.queues, 'passt serves one queue');
    if (!spec.cniResult)
      throw badInput(spec.field, spec.podInterface, 'needs a cniResult: passt copies the pod network’s addresses');
    const snap = await readVethSnapshot(ctx.nsPath, spec.podInterface).catch((e: unknown) => {
      throw badInput(spec.field, spec.podInterface, `not found in netns ${ctx.netnsPath} (${(e as Error).message})`);
    });
    const ips = snap.addrs.filter((a) => a.family === 4 || (a.scope === 0 && !a.address.startsWith('fe80:')));
    if (ips.length === 0)
      throw badInput(
        spec.field,
        spec.podInterface,
        'has no IPv4 or global IPv6 address for passt to copy to the guest',
      );
    const dns = planDns(spec.cniResult, ctx.dns);
    return {
      ...userModeNic(spec, snap),
      binding: 'passt',
      passt: {
        uid: PASST_UID,
        gid: PASST_GID,
        podIps: ips.map((a) => `${a.address}/${a.prefixLen}`),
        dns: dns.dns,
        search: dns.search,
        ...(() => {
          const w = pingWarnings(ctx.nsPath, PASST_GID);
          return w.length ? { warnings: w } : {};
        })(),
      },
      ...(spec.ports ? { ports: spec.ports } : {}),
    };
  },

  async apply(ctx, nic) {
    if (!ctx.supervise) throw new Error('passt needs supervision (the sandbox layer gives it)');
    await startPasst(nic, ctx.supervise, ctx.nsPath);
  },

  undo: (_ctx, nic) => stopNic(nic),

  // passt keeps the namespace (and its bound ports) alive after its path is gone: stopped
  // by its recorded pid and start time, which needs no namespace
  undoWithoutNetns: stopNic,

  async check(ctx, nic) {
    const drift = ctx.links.some((l) => l.name === nic.veth.ifname) ? [] : [`pod interface ${nic.veth.ifname} missing`];
    if (ctx.supervise && ctx.nsPath) drift.push(...(await adoptPasst(nic, ctx.supervise, ctx.nsPath)));
    return drift;
  },

  describe(n): GuestNic {
    const p = n.passt!;
    const v4 = n.veth.addrs.find((a) => a.family === 4);
    const gw = n.veth.routes.find((r) => r.family === 4 && r.dst === '0.0.0.0/0' && r.gateway)?.gateway;
    const v6 = p.podIps.filter((a) => a.includes(':')).map((a) => a.split('/')[0]!);
    const live = passtLive(n);
    return {
      ...userModeGuestNic(n, 'passt'),
      ...(v4 ? { ip: v4.address, prefixLen: v4.prefixLen } : {}),
      ...(gw ? { gateway: gw } : {}),
      ...(!v4 && v6.length ? { ipv6: v6 } : {}),
      passt: {
        podIps: p.podIps,
        // from every pod address (passt binds the wildcard)
        forwards: portForwards(n.ports, '*'),
        uid: p.uid,
        ...(p.pid !== undefined ? { pid: p.pid } : {}),
        ...(p.socket !== undefined ? { socket: `socket:[${p.socket}]` } : {}),
        ...(live ?? {}),
      },
    };
  },

  status(n) {
    return routelessStatus(this.describe(n), n.passt?.warnings ?? []);
  },

  ...noDhcpNoFence, // passt is the guest's DHCP server and nothing is bridged to fence

  madeLinks() {
    return [];
  },

  // one fd per NIC: the emulator's end of passt's socket pair; a fetch after an earlier
  // one gets a fresh pair (the emulator restarted), so nothing is held against it
  handOut: {
    checkNotHeld: async () => undefined,
    async open(sandboxId, nsPath, nics) {
      const fds: number[] = [];
      try {
        for (const nic of nics) fds.push(await takeEmulatorEnd(sandboxId, nic, nsPath));
      } catch (e) {
        fds.forEach((fd) => closeFd(fd));
        throw e;
      }
      return fds;
    },
    revoke: async () => [],
    entry: (n) => ({ ...fdsEntry(n), vnetHdr: false }),
  },
};
