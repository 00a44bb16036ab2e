// IPv6 on a bridge-bound guest NIC, beside the IPv4 path and built to be called from it
// in a few lines (plan, build, serve, restore), so the binding code that calls it can move.
//   planNicIpv6:    the IPv6 plan (plan/guest-ipv6.ts), reading the pod's neighbours when
//                   the gateway is global (and nudging the kernel to resolve it first).
//   stripVethIpv6:  the veth stops being an IPv6 host: disable_ipv6=1 takes every IPv6
//                   address and route off it (its link-local was made from the MAC the guest
//                   now has: left, the veth's own NDP and MLD would speak for the guest's
//                   link-local from another MAC) and stops its DAD, MLD and solicitations.
//                   The bridge takes no router advertisements (the fence drops the guest's
//                   anyway): the pod netns keeps the routes it has. The tap, a port too,
//                   gets no IPv6 either: its RS, MLD and DAD would go to the guest.
//   restoreVethIpv6: the undo, after the veth has its MAC back: IPv6 on again (the kernel
//                   makes the same link-local from the same MAC), then the snapshot's other
//                   addresses and its non-kernel routes, as they were.
//   GuestIpv6:      the DHCPv6 server and the router advertiser on the NIC's bridge.
import { Dhcp6Server, type Dhcp6ServerStats } from '../dhcp6/server';
import { sock6Close, sock6Send, udp6SocketBoundToDevice, withNetns } from '../native';
import { isNetError, routeChange, type NetlinkHandle, type NetlinkReader, type RtnlNeighbour } from '../net/netlink';
import { getIpv6Conf, setIpv6Conf, setIpv6ConfsHere } from '../net/sysctl';
import { DEFAULT_ROUTER_LIFETIME, RouterAdvertiser, type AdvertiserStats } from '../ndp/advertiser';
import type { Logger } from '../util/log';
import type { RateLimiter } from '../util/rate-limit';
import { UndoError } from './bindings/errors';
import { ipv6Gateway, planGuestIpv6, type GuestIpv6Plan } from './plan/guest-ipv6';
import type { VethSnapshot } from './snapshot';
import { routeSpec } from './topology';

export type { GuestIpv6Plan } from './plan/guest-ipv6';

const IFA_F_NODAD = 0x02;
const IFA_F_NOPREFIXROUTE = 0x200;
const IFA_F_TENTATIVE = 0x40;
/**
 * How long the plan waits for the gateway's MAC: past one DAD (1 s, RFC 4862's default
 * RetransTimer), since a gateway whose address is still tentative (the ptp plugin's
 * host side, just made) answers no solicitation until it is done, and then the kernel's
 * second solicitation (1 s after the first) is the one answered.
 */
const NEIGHBOUR_WAIT_MS = 3000;
const DAD_WAIT_MS = 2000;

/** Sends one empty datagram to [ip]:9 from the veth, so that the kernel resolves ip's MAC. */
function nudge(netns: string, ifname: string, ip: string): void {
  const fd = withNetns(netns, () => udp6SocketBoundToDevice(ifname, 0));
  try {
    sock6Send(fd, ip, 9, '::', Buffer.alloc(0));
  } finally {
    sock6Close(fd);
  }
}

/** What planNicIpv6 reads the pod's neighbours with: the setup's reader, or a handle. */
export type NeighbourReader = Pick<NetlinkHandle | NetlinkReader, 'neighboursOf' | 'netns'>;

export async function planNicIpv6(
  nl: NeighbourReader,
  veth: VethSnapshot,
  dnsServers: unknown,
  search: readonly string[],
): Promise<GuestIpv6Plan | undefined> {
  const dns = Array.isArray(dnsServers) ? dnsServers.filter((s): s is string => typeof s === 'string') : [];
  const gw = ipv6Gateway(veth);
  let neighbours: RtnlNeighbour[] = [];
  if (gw && !gw.toLowerCase().startsWith('fe8') && veth.addrs.some((a) => a.family === 6 && a.scope === 0)) {
    neighbours = await nl.neighboursOf(veth.ifindex);
    if (!neighbours.some((n) => n.address === gw && n.mac)) {
      try {
        nudge(nl.netns, veth.ifname, gw);
      } catch {
        /* no route to it: the plan says so */
      }
      for (const end = Date.now() + NEIGHBOUR_WAIT_MS; Date.now() < end;) {
        await new Promise((r) => setTimeout(r, 50));
        neighbours = await nl.neighboursOf(veth.ifindex);
        if (neighbours.some((n) => n.address === gw && n.mac)) break;
      }
    }
  }
  return planGuestIpv6({ veth, neighbours, dns, search });
}

/** Whether the veth had IPv6 at all (and so is stripped of it, and restored). */
export function vethHasIpv6(veth: VethSnapshot): boolean {
  return veth.addrs.some((a) => a.family === 6);
}

export function stripVethIpv6(netns: string, veth: VethSnapshot, bridge: string, tap: string): void {
  withNetns(netns, () => stripVethIpv6Here(veth, bridge, tap));
}

/**
 * stripVethIpv6 in the namespace the calling thread is in: setup does it in the build's
 * namespace window, before the tap comes up (so it never makes a link-local, joins
 * groups or starts DAD) and before the veth takes its new MAC.
 */
export function stripVethIpv6Here(veth: VethSnapshot, bridge: string, tap: string): void {
  // a missing file: the kernel has no IPv6 at all (ipv6.disable=1), so there is nothing to turn off
  setIpv6ConfsHere(
    [
      { ifname: bridge, key: 'accept_ra', value: '0' },
      { ifname: tap, key: 'disable_ipv6', value: '1' }, // a port: its own solicitations and reports would reach the guest
      ...(vethHasIpv6(veth) ? [{ ifname: veth.ifname, key: 'disable_ipv6', value: '1' }] : []),
    ],
    { skipMissing: true },
  );
}

/** Whether IPv6 is on for ifname (false in a kernel without IPv6). */
export function ipv6IsOn(netns: string, ifname: string): boolean {
  try {
    return getIpv6Conf(netns, ifname, 'disable_ipv6') === '0';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/**
 * IPv6 back on the veth as the snapshot had it; never throws. Only a veth whose IPv6 is
 * off (stripVethIpv6 ran) is touched, unless `cycle`: then IPv6 goes off and on again here
 * too, so that the kernel re-makes its fe80::/64 and ff00::/8 after those of the
 * interfaces re-enabled before it (it lists the routes of one prefix in the order they
 * were made). `reenabled`: whether IPv6 was turned back on here.
 */
export async function restoreVethIpv6(
  nl: NetlinkHandle,
  v: VethSnapshot,
  cycle = false,
): Promise<{ errors: UndoError[]; reenabled: boolean }> {
  const none = { errors: [], reenabled: false };
  if (!vethHasIpv6(v)) return none;
  // the veth by its index and name, as unbuildNic finds it: gone (or another link) is left alone
  const ifindex = v.ifindex;
  const links = await nl.links().catch(() => undefined);
  if (!links?.some((l) => l.index === ifindex && l.name === v.ifname)) return none;
  try {
    if (getIpv6Conf(nl.netns, v.ifname, 'disable_ipv6') !== '1') {
      if (!cycle) return none; // never stripped (a setup that failed before): as it was
      setIpv6Conf(nl.netns, v.ifname, 'disable_ipv6', '1');
    }
  } catch (e) {
    // no IPv6 in this kernel: nothing was stripped
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return none;
    return { errors: [UndoError.of('read disable_ipv6 of', v.ifname, e)], reenabled: false };
  }
  return { errors: await reenable(nl, v), reenabled: true };
}

async function reenable(nl: NetlinkHandle, v: VethSnapshot): Promise<UndoError[]> {
  const ifindex = v.ifindex;
  const errors: UndoError[] = [];
  // The addresses come back at once, not tentative for a second of DAD: they were the
  // veth's before and nothing else on the link has them now (the guest's NIC is gone).
  // accept_dad goes back to what it was afterwards; the addresses' flags are the same.
  let acceptDad: string;
  try {
    acceptDad = getIpv6Conf(nl.netns, v.ifname, 'accept_dad');
    setIpv6Conf(nl.netns, v.ifname, 'accept_dad', '0');
    setIpv6Conf(nl.netns, v.ifname, 'disable_ipv6', '0');
  } catch (e) {
    return [UndoError.of('enable IPv6 on', v.ifname, e)];
  }
  for (const a of v.addrs.filter((x) => x.family === 6 && x.scope !== 253)) {
    try {
      await nl.addAddress(
        ifindex,
        v.ifname,
        a.address,
        a.prefixLen,
        undefined,
        a.flags & (IFA_F_NODAD | IFA_F_NOPREFIXROUTE),
      );
    } catch (e) {
      if (!isNetError(e, 'EEXIST')) errors.push(UndoError.of('restore address', `${a.address}/${a.prefixLen}`, e));
    }
  }
  // without DAD the kernel still finishes each address on its workqueue: wait for that (ms)
  for (const end = Date.now() + DAD_WAIT_MS; Date.now() < end;) {
    const pending = await nl.addressesOf(ifindex).catch(() => []);
    if (!pending.some((a) => a.family === 6 && a.flags & IFA_F_TENTATIVE)) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  try {
    setIpv6Conf(nl.netns, v.ifname, 'accept_dad', acceptDad);
  } catch (e) {
    errors.push(UndoError.of('restore accept_dad of', v.ifname, e));
  }
  // a prefix route the kernel made again for a re-added address, that the snapshot did not
  // have (the ptp plugin deletes it): deleted again, as the IPv4 restore does
  const now = await nl.routesThrough(ifindex).catch(() => []);
  const extra = now.filter(
    (r) =>
      r.family === 6 &&
      r.protocol === 'kernel' &&
      r.table === 254 &&
      !v.routes.some((o) => o.family === 6 && o.dst === r.dst && o.table === r.table && o.metric === r.metric),
  );
  for (const r of extra) {
    try {
      await nl.delRoute(routeSpec(r, ifindex));
    } catch (e) {
      if (!isNetError(e, 'ESRCH') && !isNetError(e, 'ENOENT')) errors.push(UndoError.of('delete route', r.dst, e));
    }
  }
  // added, not replaced: an IPv6 replace takes another interface's route with the same
  // prefix and metric; this veth has none of its own now (IPv6 was off), and the others'
  // stay ahead of it, as when the pod was made in this order
  const routes = v.routes.filter((r) => r.family === 6 && r.protocol !== 'kernel' && !r.multipath);
  const results = routes.length ? await nl.batch(routes.map((r) => routeChange('add', routeSpec(r, ifindex)))) : [];
  results.forEach((e, i) => {
    const r = routes[i]!;
    if (e && !isNetError(e, 'EEXIST'))
      errors.push(UndoError.of('restore route', `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}`, e));
  });
  return errors;
}

export interface GuestIpv6Stats {
  dhcp6: Dhcp6ServerStats;
  /** the advertiser's counters and what it advertises: the router (absent: none), MTU, on-link prefixes */
  ra: AdvertiserStats & { router?: string; mtu: number; onLink: string[] };
}

/** The DHCPv6 server and router advertiser of one NIC's bridge. */
export class GuestIpv6 {
  private constructor(
    private readonly server: Dhcp6Server,
    private readonly ra: RouterAdvertiser,
    private readonly plan: GuestIpv6Plan,
  ) {}

  static async start(o: {
    bridge: string;
    bridgeMac: string;
    netns: string;
    plan: GuestIpv6Plan;
    leaseTime?: number;
    logger?: Logger;
    logLimit?: RateLimiter;
  }): Promise<GuestIpv6> {
    const { plan } = o;
    const server = await Dhcp6Server.start({
      ifname: o.bridge,
      netns: o.netns,
      serverMac: o.bridgeMac,
      lease: {
        addresses: plan.addresses,
        dns: plan.dns,
        search: plan.search,
        ...(o.leaseTime ? { leaseTime: o.leaseTime } : {}),
      },
      ...(o.logger ? { logger: o.logger } : {}),
      ...(o.logLimit ? { logLimit: o.logLimit } : {}),
    });
    let ra: RouterAdvertiser;
    try {
      ra = RouterAdvertiser.start({
        ifname: o.bridge,
        netns: o.netns,
        // without a router the advertisements still carry M, the MTU and DNS, with router
        // lifetime 0 ("not a default router"): no route is made from their source
        source: plan.router ?? 'fe80::1',
        advert: {
          routerLifetime: plan.router ? DEFAULT_ROUTER_LIFETIME : 0,
          managed: true,
          other: true,
          mtu: plan.mtu,
          onLink: plan.onLink,
          optionLifetime: DEFAULT_ROUTER_LIFETIME,
          dns: plan.dns,
          search: plan.search,
        },
        ...(o.logger ? { logger: o.logger } : {}),
      });
    } catch (e) {
      await server.close();
      throw e;
    }
    return new GuestIpv6(server, ra, plan);
  }

  stats(): GuestIpv6Stats {
    return {
      dhcp6: this.server.stats(),
      ra: {
        ...this.ra.stats(),
        ...(this.plan.router ? { router: this.plan.router } : {}),
        mtu: this.plan.mtu,
        onLink: this.plan.onLink.map((p) => `${p.prefix}/${p.prefixLen}`),
      },
    };
  }

  async close(): Promise<void> {
    this.ra.close();
    await this.server.close();
  }
}
