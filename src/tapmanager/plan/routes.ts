// The veth's kernel routes turned into DHCP option 121 (RFC 3442) entries, ordered so
// that a client adding them one by one never adds a route before its gateway is
// on-link: the server-id host route, on-link routes (host routes to gateways first),
// then routes via gateways, most specific first, the default route last. Routes option
// 121 cannot carry are returned as unexpressible with the reason, never dropped.
import type { RouteSnapshot } from '../snapshot';
import { contains, ip4ToNum, networkOf, parsePrefix4, Prefix4, prefixText, samePrefix } from '../../net/ipv4';
import { PlanError } from './plan-error';

export interface ClasslessRoute {
  dst: string;
  gw: string;
}

export interface RoutePlan {
  classlessRoutes: ClasslessRoute[];
  /** the chosen default route's gateway, if the default route goes via one */
  defaultGateway?: string;
  /** the routes handed to the guest (one per destination), as the kernel had them */
  handed: RouteSnapshot[];
  unexpressible: { route: RouteSnapshot; reason: string }[];
  warnings: string[];
}

const RT_TABLE_MAIN = 254;
const RT_TABLE_LOCAL = 255;
const ON_LINK = '0.0.0.0';

/** iproute2-like text of a route, for messages: "10.2.0.0/16 via 10.1.0.1 dev eth0 table 254 metric 5". */
export function describeRoute(r: RouteSnapshot, ifname?: string): string {
  const parts = [r.type !== 'unicast' ? `${r.type} ${r.dst}` : r.dst];
  if (r.src) parts.push(`from ${r.src}`);
  if (r.gateway) parts.push(`via ${r.gateway}`);
  if (r.via) parts.push(`via inet${r.via.family === 6 ? '6' : ''} ${r.via.address}`);
  if (ifname) parts.push(`dev ${ifname}`);
  if (r.table !== RT_TABLE_MAIN) parts.push(`table ${r.table}`);
  parts.push(`proto ${r.protocol} scope ${r.scope}`);
  if (r.metric) parts.push(`metric ${r.metric}`);
  if (r.tos) parts.push(`tos ${r.tos}`);
  if (r.onlink) parts.push('onlink');
  if (r.multipath) parts.push('multipath');
  return parts.join(' ');
}

type Verdict = { kind: 'skip' } | { kind: 'unexpressible'; reason: string } | { kind: 'ok'; dst: Prefix4 };

const LOCAL_TABLE_TYPES = new Set(['local', 'broadcast', 'anycast', 'multicast']);
const REJECT_TYPES = new Set(['blackhole', 'unreachable', 'prohibit', 'throw']);

function judge(r: RouteSnapshot, addrNet: Prefix4): Verdict {
  if (r.family !== 4) return { kind: 'skip' }; // IPv6 stays on the veth; not planned
  // local/broadcast entries of the local table belong to the address; the guest's kernel makes its own
  if (r.table === RT_TABLE_LOCAL && LOCAL_TABLE_TYPES.has(r.type)) return { kind: 'skip' };
  if (REJECT_TYPES.has(r.type)) return { kind: 'unexpressible', reason: `a ${r.type} route has no DHCP encoding` };
  if (r.type !== 'unicast') return { kind: 'unexpressible', reason: `route type ${r.type} has no DHCP encoding` };
  if (r.table !== RT_TABLE_MAIN) {
    return {
      kind: 'unexpressible',
      reason: `policy routing: it is in table ${r.table}; option 121 fills only the guest's main table`,
    };
  }
  if (r.src) return { kind: 'unexpressible', reason: `source-routed (from ${r.src}); option 121 has no source prefix` };
  if (r.via) {
    return {
      kind: 'unexpressible',
      reason: `its gateway ${r.via.address} is IPv${r.via.family}; option 121 carries IPv4 gateways only`,
    };
  }
  if (r.multipath)
    return { kind: 'unexpressible', reason: 'multipath; option 121 carries one gateway per destination' };
  if (r.tos) return { kind: 'unexpressible', reason: `TOS ${r.tos}; option 121 has no TOS` };
  if (r.gateway !== undefined && ip4ToNum(r.gateway) === undefined) {
    return { kind: 'unexpressible', reason: `gateway ${r.gateway} is not an IPv4 address` };
  }
  const dst = parsePrefix4(r.dst);
  if (!dst) return { kind: 'unexpressible', reason: `destination ${JSON.stringify(r.dst)} is not an IPv4 prefix` };
  // The route the kernel derives from the address itself: the guest's kernel derives it from the mask.
  if (r.protocol === 'kernel' && !r.gateway && r.scope === 'link' && samePrefix(dst, addrNet)) return { kind: 'skip' };
  return { kind: 'ok', dst };
}

const metricOf = (r: RouteSnapshot): number => r.metric ?? 0;

/** Most specific first, then by network; deterministic whatever order the kernel dumped. */
function bySpecificity(a: { dst: Prefix4 }, b: { dst: Prefix4 }): number {
  return b.dst.len - a.dst.len || a.dst.net - b.dst.net;
}

export function planRoutes(
  routes: RouteSnapshot[],
  addr: { ip: string; prefixLen: number },
  serverId: string,
  ifname: string,
): RoutePlan {
  const addrNet = networkOf(addr.ip, addr.prefixLen);
  const sidNet: Prefix4 = { net: ip4ToNum(serverId)!, len: 32 };
  const unexpressible: RoutePlan['unexpressible'] = [];
  const warnings: string[] = [];

  // 1. keep what option 121 can carry
  const groups = new Map<string, { dst: Prefix4; routes: RouteSnapshot[] }>();
  for (const r of routes) {
    const v = judge(r, addrNet);
    if (v.kind === 'skip') continue;
    if (v.kind === 'unexpressible') {
      unexpressible.push({ route: r, reason: v.reason });
      continue;
    }
    if (samePrefix(v.dst, sidNet)) {
      unexpressible.push({ route: r, reason: `it is the DHCP server's own host route ${serverId}/32` });
      continue;
    }
    const key = prefixText(v.dst);
    const g = groups.get(key) ?? { dst: v.dst, routes: [] };
    g.routes.push(r);
    groups.set(key, g);
  }

  // 2. one route per destination: the kernel's choice (lowest metric; on a tie, the first it lists)
  const chosen: { dst: Prefix4; route: RouteSnapshot }[] = [];
  for (const [key, g] of groups) {
    const best = g.routes.reduce((a, b) => (metricOf(b) < metricOf(a) ? b : a));
    chosen.push({ dst: g.dst, route: best });
    for (const r of g.routes) {
      if (r === best) continue;
      const tie = metricOf(r) === metricOf(best);
      if (tie) {
        warnings.push(
          `metric tie for ${key} on "${ifname}": handing "${describeRoute(best)}", not "${describeRoute(r)}" (the kernel lists it first)`,
        );
      }
      unexpressible.push({
        route: r,
        reason: `option 121 carries one route per destination; ${tie ? 'tied with' : 'the kernel prefers'} "${describeRoute(best)}"`,
      });
    }
  }

  // 3. on-link routes first (host routes to gateways before the rest), each making its prefix reachable
  const gateways = new Set(chosen.map((c) => c.route.gateway).filter((g): g is string => !!g));
  const isGwHost = (c: { dst: Prefix4 }) => c.dst.len === 32 && gateways.has(prefixText(c.dst).slice(0, -3));
  const onLink = chosen.filter((c) => !c.route.gateway);
  onLink.sort((a, b) => Number(isGwHost(b)) - Number(isGwHost(a)) || bySpecificity(a, b));
  const viaGw = chosen.filter((c) => !!c.route.gateway).sort(bySpecificity);

  const out: ClasslessRoute[] = [{ dst: `${serverId}/32`, gw: ON_LINK }];
  // the address' own subnet is on-link in the guest unless a route sends that very subnet via a gateway
  const reachable: Prefix4[] = addr.prefixLen < 32 && !viaGw.some((c) => samePrefix(c.dst, addrNet)) ? [addrNet] : [];
  for (const c of onLink) {
    out.push({ dst: prefixText(c.dst), gw: ON_LINK });
    reachable.push(c.dst);
  }
  if (addr.prefixLen < 32 && !chosen.some((c) => samePrefix(c.dst, addrNet))) {
    const had = routes.some(
      (r) =>
        r.family === 4 && r.protocol === 'kernel' && parsePrefix4(r.dst) && samePrefix(parsePrefix4(r.dst)!, addrNet),
    );
    if (!had) {
      warnings.push(
        `"${ifname}" has no route for its own subnet ${prefixText(addrNet)}; the guest's kernel makes it on-link from the mask`,
      );
    }
  }

  // 4. routes via gateways, each after its gateway is on-link
  for (const c of viaGw) {
    const gw = c.route.gateway!;
    if (!reachable.some((p) => contains(p, gw))) {
      if (!c.route.onlink) {
        throw new PlanError(
          'veth.routes',
          `invalid route "${describeRoute(c.route, ifname)}": its gateway ${gw} is not reachable on-link (not in ${
            addr.prefixLen < 32 ? prefixText(addrNet) : `${addr.ip}/32`
          } and no on-link route of "${ifname}" covers it), so a guest could not add it`,
        );
      }
      // "onlink" tells the kernel the gateway is on the link; the guest learns it from a host route
      const host: Prefix4 = { net: ip4ToNum(gw)!, len: 32 };
      out.push({ dst: prefixText(host), gw: ON_LINK });
      reachable.push(host);
      warnings.push(
        `route "${describeRoute(c.route, ifname)}" is onlink; the guest gets the host route ${gw}/32 to reach ${gw}`,
      );
    }
    out.push({ dst: prefixText(c.dst), gw });
  }
  // host routes synthesized for onlink gateways must precede every route via them
  const hosts = out.filter((e, i) => i > 0 && e.gw === ON_LINK);
  const rest = out.filter((e, i) => i > 0 && e.gw !== ON_LINK);
  const classlessRoutes = [out[0]!, ...hosts, ...rest];

  const def = chosen.find((c) => c.dst.len === 0);
  return {
    classlessRoutes,
    ...(def?.route.gateway ? { defaultGateway: def.route.gateway } : {}),
    handed: [...onLink, ...viaGw].map((c) => c.route),
    unexpressible,
    warnings,
  };
}
