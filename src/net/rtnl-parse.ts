// rtnetlink route and address messages decoded here, byte for byte (the payload after the
// nlmsghdr: struct rtmsg or struct ifaddrmsg and its attributes), the reading half of
// rtnl-messages.ts. The netlink package's own decoder rejects some attributes a pod can
// have (an 18-byte RTA_VIA of an IPv4-via-IPv6 route fails the whole dump) and reduces
// address flags to an object, so NetlinkHandle dumps these raw and parses them here.
import { ipFromBuffer } from './addr-text';
import { nlattrs } from './nlattr';
import { macFromBuffer } from './mac';
import {
  AF_INET,
  AF_INET6,
  IFA,
  IFF_UP,
  IFLA,
  IFLA_INFO,
  RTA,
  RTAX,
  RTM_F_CLONED,
  RTNH_F_ONLINK,
} from './rtnl-constants';

/** One address of a link, as the kernel reports it (RTM_GETADDR). */
export interface RtnlAddress {
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
 * One route whose output interface is a link (or that uses it via a nexthop), from any
 * table, as the kernel reports it (RTM_GETROUTE). Text fields use iproute2's names.
 */
export interface RtnlRoute {
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

export { RTM_GETADDR, RTM_GETLINK, RTM_GETROUTE, RTM_NEWADDR, RTM_NEWLINK } from './rtnl-constants';

const SCOPES: Record<number, string> = { 0: 'universe', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' };
// named as src/tapmanager/topology.ts maps them back; any other protocol stays a number
const PROTOCOLS: Record<number, string> = { 1: 'redirect', 2: 'kernel', 3: 'boot', 4: 'static', 16: 'dhcp' };
const TYPES: Record<number, string> = {
  1: 'unicast',
  2: 'local',
  3: 'broadcast',
  4: 'anycast',
  5: 'multicast',
  6: 'blackhole',
  7: 'unreachable',
  8: 'prohibit',
  9: 'throw',
};

function attrs(buf: Buffer): Map<number, Buffer> {
  return new Map(nlattrs(buf));
}

function familyOf(af: number): 4 | 6 | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

interface NextHop {
  ifindex: number;
  gateway?: string;
  via?: { family: 4 | 6; address: string };
  onlink: boolean;
}

function parseVia(b: Buffer): { family: 4 | 6; address: string } | undefined {
  const family = b.length >= 2 ? familyOf(b.readUInt16LE(0)) : undefined;
  return family ? { family, address: ipFromBuffer(b.subarray(2, family === 4 ? 6 : 18)) } : undefined;
}

/** RTA_MULTIPATH: a list of struct rtnexthop {len u16, flags u8, hops u8, ifindex i32} + attributes. */
function parseNextHops(b: Buffer): NextHop[] {
  const out: NextHop[] = [];
  for (let off = 0; off + 8 <= b.length;) {
    const len = b.readUInt16LE(off);
    if (len < 8 || off + len > b.length) break;
    const a = attrs(b.subarray(off + 8, off + len));
    const gw = a.get(RTA.GATEWAY);
    const via = a.get(RTA.VIA) && parseVia(a.get(RTA.VIA)!);
    out.push({
      ifindex: b.readInt32LE(off + 4),
      onlink: (b.readUInt8(off + 2) & RTNH_F_ONLINK) !== 0,
      ...(gw ? { gateway: ipFromBuffer(gw) } : {}),
      ...(via ? { via } : {}),
    });
    off += (len + 3) & ~3;
  }
  return out;
}

/** The interface an RTM_NEWROUTE payload goes out through: RTA_OIF, or a multipath route's first hop's. */
export function routeOif(data: Buffer): number | undefined {
  if (data.length < 12) return undefined;
  const a = attrs(data.subarray(12));
  const hops = a.get(RTA.MULTIPATH) ? parseNextHops(a.get(RTA.MULTIPATH)!) : [];
  return a.get(RTA.OIF)?.readUInt32LE(0) ?? hops[0]?.ifindex;
}

/** One RTM_NEWROUTE payload (struct rtmsg + attributes) if it goes out through ifindex. */
export function parseRouteMessage(data: Buffer, ifindex: number): RtnlRoute | undefined {
  if (data.length < 12) return undefined;
  const family = familyOf(data.readUInt8(0));
  const flags = data.readUInt32LE(8);
  if (!family || flags & RTM_F_CLONED) return undefined;
  const [dstLen, srcLen, tos, table8, proto, scope, type] = [1, 2, 3, 4, 5, 6, 7].map((i) => data.readUInt8(i)) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const a = attrs(data.subarray(12));
  const hops = a.get(RTA.MULTIPATH) ? parseNextHops(a.get(RTA.MULTIPATH)!) : [];
  const oif = a.get(RTA.OIF)?.readUInt32LE(0);
  if (oif !== ifindex && !hops.some((h) => h.ifindex === ifindex)) return undefined;
  const one = hops.length === 1 ? hops[0] : undefined;
  const gwBuf = a.get(RTA.GATEWAY);
  const gateway = gwBuf ? ipFromBuffer(gwBuf) : one?.gateway;
  const via = (a.get(RTA.VIA) && parseVia(a.get(RTA.VIA)!)) || one?.via;
  const zero = family === 4 ? '0.0.0.0' : '::';
  const metrics = a.get(RTA.METRICS) ? attrs(a.get(RTA.METRICS)!) : new Map<number, Buffer>();
  const r: RtnlRoute = {
    family,
    dst: `${a.get(RTA.DST) ? ipFromBuffer(a.get(RTA.DST)!) : zero}/${dstLen}`,
    scope: SCOPES[scope] ?? String(scope),
    protocol: PROTOCOLS[proto] ?? String(proto),
    type: TYPES[type] ?? String(type),
    table: a.get(RTA.TABLE)?.readUInt32LE(0) ?? table8,
  };
  if (gateway) r.gateway = gateway;
  const prio = a.get(RTA.PRIORITY);
  if (prio) r.metric = prio.readUInt32LE(0);
  const prefsrc = a.get(RTA.PREFSRC);
  if (prefsrc) r.prefsrc = ipFromBuffer(prefsrc);
  const src = a.get(RTA.SRC);
  if (src && srcLen > 0) r.src = `${ipFromBuffer(src)}/${srcLen}`;
  if (tos) r.tos = tos;
  if (flags & RTNH_F_ONLINK || one?.onlink) r.onlink = true;
  if (via) r.via = via;
  if (hops.length > 1) r.multipath = true;
  const mtu = metrics.get(RTAX.MTU);
  if (mtu) r.mtu = mtu.readUInt32LE(0);
  const advmss = metrics.get(RTAX.ADVMSS);
  if (advmss) r.advmss = advmss.readUInt32LE(0);
  return r;
}

/** One RTM_NEWADDR payload (struct ifaddrmsg + attributes) if it is on ifindex. */
export function parseAddrMessage(data: Buffer, ifindex: number): RtnlAddress | undefined {
  if (data.length < 8) return undefined;
  const family = familyOf(data.readUInt8(0));
  if (!family || data.readUInt32LE(4) !== ifindex) return undefined;
  const a = attrs(data.subarray(8));
  const local = a.get(IFA.LOCAL) ?? a.get(IFA.ADDRESS);
  if (!local) return undefined;
  const address = ipFromBuffer(local);
  const out: RtnlAddress = {
    family,
    address,
    prefixLen: data.readUInt8(1),
    scope: data.readUInt8(3),
    // IFA_FLAGS holds all 32 bits (noprefixroute and up); ifa_flags only the low 8
    flags: a.get(IFA.FLAGS)?.readUInt32LE(0) ?? data.readUInt8(2),
  };
  const peer = a.get(IFA.LOCAL) && a.get(IFA.ADDRESS);
  if (peer && ipFromBuffer(peer) !== address) out.peer = ipFromBuffer(peer);
  const brd = a.get(IFA.BROADCAST);
  if (brd) out.broadcast = ipFromBuffer(brd);
  const lbl = a.get(IFA.LABEL);
  if (lbl) out.label = lbl.toString('utf8').replace(/\0+$/, '');
  const ci = a.get(IFA.CACHEINFO);
  if (ci && ci.length >= 8) {
    out.preferredLft = ci.readUInt32LE(0);
    out.validLft = ci.readUInt32LE(4);
  }
  return out;
}

/** One link, as the kernel reports it (RTM_GETLINK); netlink.ts's LinkState. */
export interface RtnlLink {
  index: number;
  name: string;
  mac: string;
  mtu: number;
  up: boolean;
  master?: number;
  kind?: string;
  /** IFLA_IFALIAS, when set */
  alias?: string;
  /** IFLA_GROUP (0, the default group, when unset) */
  group: number;
}

/** IFLA_INFO_KIND inside an IFLA_LINKINFO: "bridge", "veth", "tun", ... */
export function linkKindOf(linkinfo: Buffer | undefined): string | undefined {
  if (!linkinfo) return undefined;
  for (const [type, data] of nlattrs(linkinfo)) if (type === IFLA_INFO.KIND) return data.toString().replace(/\0+$/, '');
  return undefined;
}

function cString(b: Buffer | undefined): string {
  if (!b) return '';
  const end = b.indexOf(0);
  return b.toString('utf8', 0, end < 0 ? b.length : end);
}

/** One RTM_NEWLINK payload (struct ifinfomsg + attributes). */
export function parseLinkMessage(data: Buffer): RtnlLink | undefined {
  if (data.length < 16) return undefined;
  const a = attrs(data.subarray(16));
  const mac = a.get(IFLA.ADDRESS);
  const mtu = a.get(IFLA.MTU);
  const master = a.get(IFLA.MASTER);
  const kind = linkKindOf(a.get(IFLA.LINKINFO));
  const alias = cString(a.get(IFLA.IFALIAS));
  const group = a.get(IFLA.GROUP);
  return {
    index: data.readInt32LE(4),
    name: cString(a.get(IFLA.IFNAME)),
    mac: mac ? macFromBuffer(mac) : '',
    mtu: mtu && mtu.length >= 4 ? mtu.readUInt32LE(0) : 0,
    up: (data.readUInt32LE(8) & IFF_UP) !== 0,
    ...(master && master.length >= 4 ? { master: master.readUInt32LE(0) } : {}),
    ...(kind !== undefined ? { kind } : {}),
    ...(alias ? { alias } : {}),
    group: group && group.length >= 4 ? group.readUInt32LE(0) : 0,
  };
}

export const RTM_NEWNEIGH = 28;
export const RTM_GETNEIGH = 30;
const NDA_DST = 1;
const NDA_LLADDR = 2;

/** One neighbour entry of a link, as the kernel reports it (RTM_GETNEIGH). */
export interface RtnlNeighbour {
  family: 4 | 6;
  address: string;
  /** lower-case aa:bb:..; absent while unresolved */
  mac?: string;
  /** NUD_* state bits */
  state: number;
}

/** One RTM_NEWNEIGH payload (struct ndmsg + attributes) if it is on ifindex. */
export function parseNeighMessage(data: Buffer, ifindex: number): RtnlNeighbour | undefined {
  if (data.length < 12) return undefined;
  const family = familyOf(data.readUInt8(0));
  if (!family || data.readInt32LE(4) !== ifindex) return undefined;
  const a = attrs(data.subarray(12));
  const dst = a.get(NDA_DST);
  if (!dst || (dst.length !== 4 && dst.length !== 16)) return undefined;
  const ll = a.get(NDA_LLADDR);
  return {
    family,
    address: ipFromBuffer(dst),
    ...(ll?.length === 6 ? { mac: [...ll].map((b) => b.toString(16).padStart(2, '0')).join(':') } : {}),
    state: data.readUInt16LE(8),
  };
}
