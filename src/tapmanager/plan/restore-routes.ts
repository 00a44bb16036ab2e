// The route operations that put a veth's IPv4 route table back exactly as snapshotted,
// computed after its addresses were re-added (the kernel then re-creates an on-link
// subnet route, which the snapshot may lack, as with the ptp plugin and Calico). Pure:
// the caller applies the operations in order. IPv6 routes are never touched.
//
// Order: on-link routes (add or replace), then routes via gateways, so every gateway
// is reachable when its route goes in; deletions of routes the snapshot lacked come
// last (the kernel checks a gateway only when a route is added, so nothing breaks).
// A route whose kernel key (table, dst, tos, metric) this veth already holds is replaced,
// not added: adding it would fail with "File exists". Routes sharing one key (a metric tie,
// made with `ip route append`) go back in the snapshot's order: what this veth holds there
// is deleted, the first is added, the others appended (NLM_F_APPEND). Another interface's
// routes with the key (a second network's default route) are never replaced: this veth's
// go in before them (add: create without replace) or after them (append), where the
// snapshot's sharedKeys had them, whichever interface is restored first. A route whose
// gateway no on-link route reaches (the kernel would refuse it: "Nexthop has invalid
// gateway") is reported as unrestorable, naming the route, instead of failing at apply
// time; so are multipath routes and IPv4 routes via an IPv6 gateway, whose nexthops the
// snapshot does not hold.
import type { RouteSnapshot, VethSnapshot } from '../snapshot';
import { ip4ToNum, maskFromPrefix, parsePrefix4 } from '../../net/ipv4';

export interface RouteOp {
  /** append: add after the routes with the same key (NLM_F_APPEND), as `ip route append` */
  op: 'add' | 'replace' | 'append' | 'delete';
  /** add/replace/append: the snapshot's route; delete: the current route */
  route: RouteSnapshot;
  reason: string;
}

export interface RouteRestorePlan {
  ops: RouteOp[];
  /** snapshot routes that cannot be put back from what the snapshot holds */
  unrestorable: { route: RouteSnapshot; reason: string }[];
}

const RT_TABLE_LOCAL = 255;
const ADDRESS_OWNED = new Set(['local', 'broadcast', 'anycast', 'multicast']);

/** Local-table entries exist because an address does; they come and go with it. */
function addressOwned(r: RouteSnapshot): boolean {
  return r.table === RT_TABLE_LOCAL && ADDRESS_OWNED.has(r.type);
}

/** The kernel's identity of an IPv4 route: adding a second one with this key is EEXIST. */
export function routeKey(r: RouteSnapshot): string {
  return `${r.table}|${r.dst}|${r.tos ?? 0}|${r.metric ?? 0}`;
}

/** Same key and same content (what `ip route show` would print the same way). */
export function sameRoute(a: RouteSnapshot, b: RouteSnapshot): boolean {
  return (
    routeKey(a) === routeKey(b) &&
    (a.gateway ?? '') === (b.gateway ?? '') &&
    a.scope === b.scope &&
    a.protocol === b.protocol &&
    a.type === b.type &&
    (a.prefsrc ?? '') === (b.prefsrc ?? '') &&
    (a.src ?? '') === (b.src ?? '') &&
    !!a.onlink === !!b.onlink &&
    (a.mtu ?? 0) === (b.mtu ?? 0) &&
    (a.advmss ?? 0) === (b.advmss ?? 0)
  );
}

function label(r: RouteSnapshot): string {
  return `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.table !== 254 ? ` table ${r.table}` : ''}${r.metric ? ` metric ${r.metric}` : ''}`;
}

const SCOPE_RANK: Record<string, number> = { universe: 0, site: 200, link: 253, host: 254, nowhere: 255 };
const scopeRank = (s: string): number => SCOPE_RANK[s] ?? Number(s);
const RT_TABLE_DEFAULT = 253;
const RT_TABLE_MAIN = 254;

/**
 * Gateway-less unicast routes by prefix length and network, to tell whether the kernel
 * accepts a route's gateway: it looks the gateway up in the route's table, then through
 * the rules (main, default), among routes of a narrower scope than the route's
 * (fib_check_nh). An onlink route skips the check. 33 lookups a route, however many
 * routes there are.
 */
class OnLink {
  private readonly byLen = new Map<number, Map<number, RouteSnapshot[]>>();

  constructor(routes: RouteSnapshot[]) {
    for (const r of routes) {
      if (r.gateway || r.type !== 'unicast') continue;
      const p = parsePrefix4(r.dst);
      if (!p) continue;
      const nets = this.byLen.get(p.len) ?? new Map<number, RouteSnapshot[]>();
      this.byLen.set(p.len, nets);
      const same = nets.get(p.net);
      if (same) same.push(r);
      else nets.set(p.net, [r]);
    }
  }

  reaches(r: RouteSnapshot): boolean {
    if (!r.gateway || r.onlink) return true;
    const gw = ip4ToNum(r.gateway);
    if (gw === undefined) return false;
    for (const [len, nets] of this.byLen) {
      const hit = nets.get((gw & maskFromPrefix(len)) >>> 0);
      if (
        hit?.some(
          (o) =>
            (o.table === r.table || o.table === RT_TABLE_MAIN || o.table === RT_TABLE_DEFAULT) &&
            scopeRank(o.scope) > scopeRank(r.scope),
        )
      )
        return true;
    }
    return false;
  }
}

/** The routes grouped by kernel key, each group in the given order. */
function byKey(routes: RouteSnapshot[]): Map<string, RouteSnapshot[]> {
  const out = new Map<string, RouteSnapshot[]>();
  for (const r of routes) {
    const k = routeKey(r);
    const g = out.get(k);
    if (g) g.push(r);
    else out.set(k, [r]);
  }
  return out;
}

/**
 * This veth's routes `w` at a key another interface's routes (`others`, their indexes in
 * the kernel's order now) also hold: this veth's current ones there (`c`) are deleted
 * (a delete names the veth, so it takes none of the others'), then `w` goes in before
 * the others (each added in reverse order: an add goes first) when every one of them was
 * after this veth's in the snapshot's order `was`, else after them (appended in order).
 */
function besideOthers(
  w: RouteSnapshot[],
  c: RouteSnapshot[],
  others: number[],
  was: number[],
  ifindex: number,
): RouteOp[] {
  const why = `"${label(w[0]!)}" shares its key with another interface's routes, which are left as they are`;
  const mine = was.indexOf(ifindex);
  const left = [...was];
  const before = others.every((o) => {
    const at = left.indexOf(o);
    if (at >= 0) left[at] = -1;
    return at > mine;
  });
  return [
    ...c.map((x): RouteOp => ({ op: 'delete', route: x, reason: why })),
    ...(before
      ? [...w].reverse().map((r): RouteOp => ({ op: 'add', route: r, reason: `${why}; it goes before them` }))
      : w.map((r): RouteOp => ({ op: 'append', route: r, reason: `${why}; it goes after them` }))),
  ];
}

/**
 * Linear in the routes: a table of thousands plans in milliseconds (status() plans on
 * every call, on the event loop).
 */
export function planRouteRestore(
  snapshot: VethSnapshot,
  current: RouteSnapshot[],
  currentShared: Record<string, number[]> = {},
): RouteRestorePlan {
  const unrestorable: RouteRestorePlan['unrestorable'] = [];
  let want: RouteSnapshot[] = [];
  for (const r of snapshot.routes) {
    if (r.family !== 4 || addressOwned(r)) continue;
    if (r.multipath) unrestorable.push({ route: r, reason: 'multipath: the snapshot does not hold its nexthops' });
    else if (r.via)
      unrestorable.push({ route: r, reason: `its gateway ${r.via.address} is IPv${r.via.family} (RTA_VIA)` });
    else want.push(r);
  }
  const cur = current.filter((r) => r.family === 4 && !addressOwned(r));

  // a gateway must be on-link when its route goes in: through a route being restored or one already there
  const onLink = new OnLink([...want, ...cur]);
  const unreachable = new Set(want.filter((x) => !onLink.reaches(x)));
  want = want.filter((r) => !unreachable.has(r));
  for (const r of unreachable) {
    unrestorable.push({
      route: r,
      reason: `its gateway ${r.gateway} is not reachable on-link (no route without a gateway on "${snapshot.ifname}" covers it), so the kernel refuses it (Nexthop has invalid gateway)`,
    });
  }

  // one group per kernel key, in the snapshot's (= the kernel's list) order
  const groups = byKey(want);
  const curGroups = byKey(cur);
  const needsGateway = (r: RouteSnapshot): boolean => !!r.gateway && !r.onlink;
  const ordered = [...groups.values()];
  // on-link first (onlink-flagged gateway routes need nothing on-link), then via gateways
  ordered.sort((a, b) => Number(a.some(needsGateway)) - Number(b.some(needsGateway)));

  const ops: RouteOp[] = [];
  for (const w of ordered) {
    const key = routeKey(w[0]!);
    const c = curGroups.get(key) ?? [];
    if (c.length === w.length && c.every((x, i) => sameRoute(x, w[i]!))) continue;
    const others = (currentShared[key] ?? []).filter((i) => i !== snapshot.ifindex);
    if (others.length) {
      ops.push(...besideOthers(w, c, others, snapshot.sharedKeys?.[key] ?? [], snapshot.ifindex));
      continue;
    }
    if (w.length === 1 && c.length <= 1) {
      const r = w[0]!;
      const taken = c[0];
      ops.push(
        taken
          ? { op: 'replace', route: r, reason: `the kernel has "${label(taken)}" (${taken.protocol}) in its place` }
          : { op: 'add', route: r, reason: 'missing' },
      );
      continue;
    }
    // several routes share the key: rebuild its list in the snapshot's order
    const why = `${w.length} routes share the key of "${label(w[0]!)}"; its list is rebuilt in the snapshot's order`;
    for (const x of c) ops.push({ op: 'delete', route: x, reason: why });
    ops.push({ op: 'add', route: w[0]!, reason: why });
    for (const r of w.slice(1)) ops.push({ op: 'append', route: r, reason: why });
  }
  // routes the snapshot lacked (the kernel's re-created subnet route), unless replaced above
  const keys = new Set(want.map(routeKey));
  const unkept = new Set(unrestorable.map((u) => routeKey(u.route)));
  for (const c of cur) {
    if (keys.has(routeKey(c)) || unkept.has(routeKey(c))) continue;
    ops.push({
      op: 'delete',
      route: c,
      reason: `not in the snapshot (${c.protocol === 'kernel' ? 'made by the kernel on address add' : c.protocol})`,
    });
  }
  return { ops, unrestorable };
}
