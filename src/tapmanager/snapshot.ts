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
}
