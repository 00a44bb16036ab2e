// What tapmanager records about a pod's veth before touching it, and restores on
// teardown. Plain JSON (it is written to the sandbox's record on disk).

/** One address on the veth, as the kernel reported it (RTM_GETADDR). */
export interface AddrSnapshot {
  family: 4 | 6;
  /** dotted quad or IPv6 text */
  address: string;
  prefixLen: number;
  /** IFA_ADDRESS when it differs from IFA_LOCAL (point-to-point peer) */
  peer?: string;
  broadcast?: string;
  scope: number;
  /** IFA_F_* flags as a number (permanent, noprefixroute, nodad ...) */
  flags: number;
  label?: string;
  /** remaining lifetimes in seconds; 0xffffffff = forever */
  validLft?: number;
  preferredLft?: number;
}

/**
 * One route whose output interface is the veth (or that uses it via a nexthop), from
 * any table, as the kernel reported it (RTM_GETROUTE). Text fields use iproute2's names.
 */
export interface RouteSnapshot {
  family: 4 | 6;
  /** 'a.b.c.d/len'; the default route is '0.0.0.0/0' */
  dst: string;
  gateway?: string;
  /** 'universe' | 'site' | 'link' | 'host' | 'nowhere' */
  scope: string;
  /** 'kernel' | 'boot' | 'static' | 'dhcp' | ... or the number as text */
  protocol: string;
  /** 'unicast' | 'local' | 'broadcast' | 'blackhole' | 'unreachable' | 'prohibit' | 'throw' | ... */
  type: string;
  table: number;
  metric?: number;
  prefsrc?: string;
  /** source prefix (a source-routed route), 'a.b.c.d/len' */
  src?: string;
  tos?: number;
  /** RTNH_F_ONLINK */
  onlink?: boolean;
  /** RTA_VIA with another family (an IPv4 route via an IPv6 gateway) */
  via?: { family: 4 | 6; address: string };
  /** more than one nexthop */
  multipath?: boolean;
  mtu?: number;
  advmss?: number;
}

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
