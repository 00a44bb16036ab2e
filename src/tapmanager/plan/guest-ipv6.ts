// What one guest NIC is handed over IPv6, planned from the veth's kernel state as it was
// snapshotted before stripping (the source of truth, as for IPv4): its global (and ULA)
// addresses go to the guest by DHCPv6 in one IA_NA; the prefixes the pod's table has on
// the link (not /128s) are advertised on-link (L set, A clear); the router the
// advertisements come from is the pod's own IPv6 gateway. Pure: no I/O (neighbours are read by the caller).
//
// The router: the advertisements' source address becomes the guest's default route, so it
// must be the link-local address of the router that really forwards the pod's traffic
// (RFC 4861 4.2: an RA's source is link-local). The next hop of the pod's IPv6 default
// route is that router: when it is link-local (Calico's fe80::ecee:eeff:feee:eeee or
// fe80::1, the ptp and bridge plugins with RAs) it is taken as it is; when it is global
// (the bridge plugin's gateway, e.g. fd00:10::1), the router's link-local is the pod's
// neighbour entry with the same MAC, else the modified EUI-64 address of that MAC (RFC 4291
// 2.5.1: what Linux and most routers give their interfaces by default). The guest then
// resolves that address by NDP through the bridge and the veth, and the router answers:
// no routing, proxy NDP or forwarding in the pod netns. Without a default route, or a
// global gateway whose MAC the pod never learnt, the advertisements say "not a router"
// (lifetime 0) and the plan carries a warning.
import { isIPv6 } from 'node:net';
import { ipFromBuffer, ipToBuffer } from '../../net/addr-text';
import type { RtnlNeighbour } from '../../net/netlink';
import type { VethSnapshot } from '../snapshot';

export interface GuestIpv6Plan {
  /** the guest's addresses (RFC 5952 text), handed out by DHCPv6 */
  addresses: string[];
  /** prefixes advertised on-link: those of the addresses shorter than /128 */
  onLink: { prefix: string; prefixLen: number }[];
  /** the link-local address the router advertisements come from; absent: no default router */
  router?: string;
  dns: string[];
  search: string[];
  mtu: number;
  warnings: string[];
}

const isLinkLocal = (a: string): boolean => {
  const b = ipToBuffer(a);
  return b[0] === 0xfe && (b[1]! & 0xc0) === 0x80;
};

/** RFC 4291 2.5.1 / appendix A: fe80:: and the MAC with ff:fe inserted and the U/L bit flipped. */
export function eui64LinkLocal(mac: string): string {
  const m = mac.split(':').map((h) => parseInt(h, 16));
  const b = Buffer.alloc(16);
  b[0] = 0xfe;
  b[1] = 0x80;
  Buffer.from([m[0]! ^ 2, m[1]!, m[2]!, 0xff, 0xfe, m[3]!, m[4]!, m[5]!]).copy(b, 8);
  return ipFromBuffer(b);
}

/** The pod's IPv6 default gateway (main table, lowest metric), if any. */
export function ipv6Gateway(veth: VethSnapshot): string | undefined {
  return veth.routes
    .filter((r) => r.family === 6 && r.dst === '::/0' && r.gateway && r.type === 'unicast' && r.table === 254)
    .sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))[0]?.gateway;
}

/** Undefined when the veth has no global IPv6 address: the guest gets no IPv6 from tapwire. */
export function planGuestIpv6(input: {
  veth: VethSnapshot;
  /** the pod's IPv6 neighbour entries on the veth (needed only when the gateway is global) */
  neighbours: readonly RtnlNeighbour[];
  /** from the IPv4 plan: DNS servers (the IPv6 ones are used) and the search list */
  dns: readonly string[];
  search: readonly string[];
}): GuestIpv6Plan | undefined {
  const { veth } = input;
  const own = veth.addrs.filter((a) => a.family === 6 && a.scope === 0 && !isLinkLocal(a.address));
  if (own.length === 0) return undefined;
  const warnings: string[] = [];
  const addresses = own.map((a) => ipFromBuffer(ipToBuffer(a.address)));
  // on-link: what the pod's own table says is on the link (its device routes without a
  // gateway, main table), not the address's prefix length: the ptp plugin gives a /64 and
  // deletes its route, and the neighbours in it are not on the link. /128s are left out.
  const onLink = veth.routes
    .filter((r) => r.family === 6 && !r.gateway && r.type === 'unicast' && r.table === 254)
    .map((r) => {
      const [prefix, len] = r.dst.split('/');
      return { prefix: prefix!, prefixLen: Number(len) };
    })
    .filter((p) => p.prefixLen > 0 && p.prefixLen < 128 && !isLinkLocal(p.prefix) && ipToBuffer(p.prefix)[0] !== 0xff)
    .filter((p, i, all) => all.findIndex((q) => q.prefix === p.prefix && q.prefixLen === p.prefixLen) === i);
  const gw = ipv6Gateway(veth);
  let router: string | undefined;
  if (!gw) warnings.push(`"${veth.ifname}" has no IPv6 default route: the guest gets no IPv6 default router`);
  else if (isLinkLocal(gw)) router = ipFromBuffer(ipToBuffer(gw));
  else {
    const mac = input.neighbours.find(
      (n) => n.family === 6 && n.address === ipFromBuffer(ipToBuffer(gw)) && n.mac,
    )?.mac;
    if (!mac) {
      warnings.push(
        `the IPv6 gateway ${gw} of "${veth.ifname}" has no neighbour entry: the guest gets no IPv6 default router`,
      );
    } else {
      router =
        input.neighbours.find((n) => n.family === 6 && n.mac === mac && isLinkLocal(n.address))?.address ??
        eui64LinkLocal(mac);
    }
  }
  return {
    addresses,
    onLink,
    ...(router ? { router } : {}),
    dns: input.dns.filter((d) => isIPv6(d)),
    search: [...input.search],
    mtu: veth.mtu,
    warnings,
  };
}
