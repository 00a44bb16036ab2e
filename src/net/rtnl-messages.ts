// rtnetlink route and address messages encoded here, byte for byte (the payload after
// the nlmsghdr: struct rtmsg or struct ifaddrmsg and its attributes), so a change can go
// to the kernel in a batch of many (NetlinkHandle.batch) as well as one by one.
import { ipToBuffer, parseCidr, type Cidr } from './addr-text';
import { nlattr, u32 } from './nlattr';
import { AF_INET, AF_INET6, IFA, RT_TABLE_MAIN, RTA, RTAX, RTNH_F_ONLINK } from './rtnl-constants';

export { RTM_DELADDR, RTM_DELROUTE, RTM_NEWROUTE } from './rtnl-constants';

export interface RouteSpec {
  dst: string; // 'a.b.c.d/len'
  gateway?: string;
  oif: number;
  scope?: number;
  protocol?: number;
  type?: number;
  table?: number;
  metric?: number;
  prefsrc?: string;
  /** source prefix 'a.b.c.d/len' (a source-routed route) */
  src?: string;
  tos?: number;
  onlink?: boolean;
  /** RTAX.MTU / RTAX.ADVMSS */
  mtu?: number;
  advmss?: number;
}

function prefixOf(text: string, field: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw new TypeError(`route ${field} ${JSON.stringify(text)} is not an address/prefix-length`);
  return c;
}

function family(ip: string): number {
  return ip.includes(':') ? AF_INET6 : AF_INET;
}

/**
 * struct rtmsg and attributes of a route, as `ip route` sends them: the table in
 * rtm_table when below 256, else RT_TABLE_UNSPEC and RTA.TABLE; protocol static, scope
 * link without a gateway (universe with one), type unicast and the main table unless
 * given.
 */
export function routePayload(r: RouteSpec): Buffer {
  const { ip: dst, len: dstLen } = prefixOf(r.dst, 'dst');
  const table = r.table ?? RT_TABLE_MAIN;
  const head = Buffer.alloc(12);
  head.writeUInt8(family(dst), 0);
  head.writeUInt8(dstLen, 1);
  head.writeUInt8(r.tos ?? 0, 3);
  head.writeUInt8(table < 256 ? table : 0, 4);
  head.writeUInt8(r.protocol ?? 4, 5);
  head.writeUInt8(r.scope ?? (r.gateway ? 0 : 253), 6);
  head.writeUInt8(r.type ?? 1, 7);
  head.writeUInt32LE(r.onlink ? RTNH_F_ONLINK : 0, 8);
  const attrs: Buffer[] = [];
  if (table >= 256) attrs.push(nlattr(RTA.TABLE, u32(table)));
  if (dstLen > 0) attrs.push(nlattr(RTA.DST, ipToBuffer(dst)));
  if (r.src) {
    const { ip: src, len: srcLen } = prefixOf(r.src, 'src');
    head.writeUInt8(srcLen, 2);
    attrs.push(nlattr(RTA.SRC, ipToBuffer(src)));
  }
  attrs.push(nlattr(RTA.OIF, u32(r.oif)));
  if (r.gateway) attrs.push(nlattr(RTA.GATEWAY, ipToBuffer(r.gateway)));
  if (r.metric !== undefined) attrs.push(nlattr(RTA.PRIORITY, u32(r.metric)));
  if (r.prefsrc) attrs.push(nlattr(RTA.PREFSRC, ipToBuffer(r.prefsrc)));
  if (r.mtu || r.advmss) {
    const metrics = [
      ...(r.mtu ? [nlattr(RTAX.MTU, u32(r.mtu))] : []),
      ...(r.advmss ? [nlattr(RTAX.ADVMSS, u32(r.advmss))] : []),
    ];
    attrs.push(nlattr(RTA.METRICS, Buffer.concat(metrics))); // not flagged nested, as iproute2 sends it
  }
  return Buffer.concat([head, ...attrs]);
}

/** struct ifaddrmsg and attributes naming one address of a link (for RTM_DELADDR). */
export function addressPayload(index: number, ip: string, prefixLen: number): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt8(family(ip), 0);
  head.writeUInt8(prefixLen, 1);
  head.writeUInt32LE(index, 4);
  const addr = ipToBuffer(ip);
  return Buffer.concat([head, nlattr(IFA.LOCAL, addr), nlattr(IFA.ADDRESS, addr)]);
}

/** "route 10.1.0.0/16 via 10.0.0.1 metric 5", as errors name a route. */
export function routeLabel(r: RouteSpec): string {
  return `route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.metric !== undefined ? ` metric ${r.metric}` : ''}`;
}
