// What tapmanager records about a pod's veth before touching it, and restores on
// teardown. Plain JSON (it is written to the sandbox's record on disk).
import type { RtnlAddress, RtnlRoute } from '../net/rtnl-parse';

/** One address on the veth, as the kernel reported it (RTM_GETADDR). */
export type AddrSnapshot = RtnlAddress;

/** One route through the veth, from any table, as the kernel reported it (RTM_GETROUTE). */
export type RouteSnapshot = RtnlRoute;

/** The veth as CNI left it. */
export interface VethSnapshot {
  ifname: string;
  ifindex: number;
  mac: string;
  mtu: number;
  up: boolean;
  addrs: AddrSnapshot[];
  routes: RouteSnapshot[];
  /**
   * The IPv4 route keys (routeKey) this veth shares with another interface's routes, each
   * with the interface indexes of its routes in the kernel's order: a restore puts this
   * veth's routes back before or after the others' as they were. Absent: none shared.
   */
  sharedKeys?: Record<string, number[]>;
}
