// Builds and unbuilds one guest NIC inside the pod netns: strip the veth, bridge it
// with a persistent tap, and the reverse. Each undo step stands alone ("not found"
// counts as done) so a teardown of a half-built or already-removed sandbox succeeds.
// An undo deletes only links this sandbox made (ownLink): a link that merely has the
// name it planned is left alone, and so is a veth that is gone.
import {
  addressDelete,
  deleteLinkGroup,
  isNetError,
  LinkState,
  NetlinkHandle,
  routeChange,
  RouteSpec,
  type NetError,
} from '../net/netlink';
import { openTap, closeFd, ifIndex, withNetns, type TapOptions } from '../native';
import { planRouteRestore } from './plan/restore-routes';
import { describeRoute } from './plan/routes';
import { UndoError } from './bindings/errors';
import { LINK_GROUP } from './link-mark';
import type { NicRecord } from './record';
import type { RouteSnapshot, VethSnapshot } from './snapshot';

export const BRIDGE_IP = '169.254.254.2';
export const BRIDGE_PREFIX = 24;

const SCOPES: Record<string, number> = { universe: 0, site: 200, link: 253, host: 254, nowhere: 255 };
const PROTOCOLS: Record<string, number> = { redirect: 1, kernel: 2, boot: 3, static: 4, dhcp: 16 };
const TYPES: Record<string, number> = {
  unicast: 1,
  local: 2,
  broadcast: 3,
  anycast: 4,
  multicast: 5,
  blackhole: 6,
  unreachable: 7,
  prohibit: 8,
  throw: 9,
};

function num(map: Record<string, number>, v: string): number {
  return map[v] ?? Number(v);
}

export function routeSpec(r: RouteSnapshot, oif: number): RouteSpec {
  return {
    dst: r.dst,
    oif,
    scope: num(SCOPES, r.scope),
    protocol: num(PROTOCOLS, r.protocol),
    type: num(TYPES, r.type),
    table: r.table,
    ...(r.gateway ? { gateway: r.gateway } : {}),
    ...(r.metric !== undefined ? { metric: r.metric } : {}),
    ...(r.prefsrc ? { prefsrc: r.prefsrc } : {}),
    ...(r.src ? { src: r.src } : {}),
    ...(r.tos ? { tos: r.tos } : {}),
    ...(r.onlink ? { onlink: true } : {}),
    ...(r.mtu ? { mtu: r.mtu } : {}),
    ...(r.advmss ? { advmss: r.advmss } : {}),
  };
}

/** IFA_F_NOPREFIXROUTE: the only address flag that is the creator's choice and changes the route table. */
const IFA_F_NOPREFIXROUTE = 0x200;

function ignore(code: string | string[]) {
  const codes = Array.isArray(code) ? code : [code];
  return (e: unknown): void => {
    if (codes.some((c) => isNetError(e, c))) return;
    throw e;
  };
}

/**
 * Whether `l` is the link a NIC's bridge or tap was made as. The setup picks a name no
 * link has and an interface index no link has, records both before it creates the link
 * with both (createBridge index, openTap ifindex: the kernel refuses a taken name or
 * index), so a link with that name and index is the one it made; once marked it carries
 * this sandbox's mark (linkMark), never another; with that index and the mark it is
 * still the one it made under another name (someone renamed it). A record written before indexes were
 * recorded has none: then the link must carry the mark, or be unmarked in tapwire's link
 * group (a bridge is put in it as it is created).
 */
export function ownLink(
  l: LinkState,
  want: { name: string; index: number | undefined; kind: 'bridge' | 'tun' | 'macvtap'; mark: string },
): boolean {
  if (l.kind !== want.kind) return false;
  if (want.index !== undefined && l.index === want.index) {
    // renamed by someone since: still the one it made while it carries the mark
    return l.name === want.name ? l.alias === undefined || l.alias === want.mark : l.alias === want.mark;
  }
  if (l.name !== want.name || want.index !== undefined) return false;
  return l.alias === want.mark || (l.alias === undefined && l.group === LINK_GROUP);
}

/** A NIC's bridge and tap as a setup will create them. */
export interface NicLinks {
  bridge: string;
  bridgeIndex: number;
  tap: string;
  tapIndex: number;
}

/**
 * Names and interface indexes for `count` NICs' bridges and taps that no link in the
 * netns has (so a pod interface called tap0 or someone's br0 is never taken for one):
 * br<k> and tap<k> with the lowest k whose two names are free. The indexes are drawn at
 * random from the top half of the index space, where the kernel's own allocation (the
 * next index after the last it gave, which creating a link with a chosen index does not
 * advance) does not go: a link someone else creates meanwhile does not get one of them.
 */
export function planNicLinks(
  links: readonly LinkState[],
  count: number,
  random: () => number = Math.random,
): NicLinks[] {
  const names = new Set(links.map((l) => l.name));
  const used = new Set(links.map((l) => l.index));
  const index = (): number => {
    for (;;) {
      const i = HIGH_INDEXES + Math.floor(random() * HIGH_INDEXES);
      if (!used.has(i) && i <= 0x7fffffff) {
        used.add(i);
        return i;
      }
    }
  };
  const out: NicLinks[] = [];
  for (let k = 0; out.length < count; k++) {
    if (names.has(`br${k}`) || names.has(`tap${k}`)) continue;
    out.push({ bridge: `br${k}`, bridgeIndex: index(), tap: `tap${k}`, tapIndex: index() });
  }
  return out;
}

const HIGH_INDEXES = 0x40000000;

export function nicLinks(nic: NicRecord, mark: string) {
  return [
    { name: nic.tap, index: nic.tapIndex, kind: 'tun' as const, mark },
    { name: nic.bridge, index: nic.bridgeIndex, kind: 'bridge' as const, mark },
  ];
}

/**
 * Waits for every operation of a flight, then throws the first failure (in send order):
 * nothing of a flight is still in the air when the caller moves on or rolls back.
 */
async function flight(ops: Promise<void>[]): Promise<void> {
  const settled = await Promise.allSettled(ops);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Strips the veth's IPv4 addresses and routes (IPv6 is left as it is) in one batch of
 * however many (NetlinkHandle.batch: bounded chunks, in order). Deleting the last
 * address flushes the device's routes; the routes of other tables go explicitly, after
 * it. A change whose object is gone already counts as done.
 */
async function stripVeth(nl: NetlinkHandle, veth: VethSnapshot): Promise<void> {
  const changes = [
    ...veth.addrs
      .filter((x) => x.family === 4)
      .map((a) => ({
        change: addressDelete(veth.ifindex, veth.ifname, a.address, a.prefixLen),
        gone: ['EADDRNOTAVAIL'],
      })),
    ...veth.routes
      .filter((x) => x.family === 4 && x.protocol !== 'kernel')
      .map((r) => ({ change: routeChange('delete', routeSpec(r, veth.ifindex)), gone: ['ESRCH', 'ENOENT'] })),
  ];
  if (changes.length === 0) return;
  const failed = (await nl.batch(changes.map((c) => c.change))).find(
    (e, i): e is NetError => e !== undefined && !changes[i]!.gone.includes(e.code),
  );
  if (failed) throw failed;
}

/**
 * How a NIC's tap is opened: vnet_hdr always; IFF_MULTI_QUEUE when it has more than one
 * queue (a tap's multiqueue flag is fixed at creation and every attach must match it),
 * one fd per queue.
 */
export function tapOptions(queues: number, multiQueue = queues > 1): TapOptions {
  return { vnetHdr: true, ...(multiQueue ? { multiQueue: true, queues } : {}) };
}

/**
 * Makes a NIC's tap, persistent, with its recorded interface index; called inside the
 * NIC's netns. A new tap only (EBUSY if any link took the name meanwhile), never someone
 * else's.
 */
export function makeTap(nic: NicRecord): void {
  const opts = { ...tapOptions(1, nic.queues > 1), persist: true, create: true };
  openTap(nic.tap, { ...opts, ...(nic.tapIndex ? { ifindex: nic.tapIndex } : {}) }).forEach((fd) => closeFd(fd));
}

/**
 * Steps 2-3 of a setup for one NIC; the caller records the NIC before calling. The
 * changes go out in two flights of pipelined requests on one route socket (rtnetlink
 * handles a socket's requests in the order sent, each in the sender's own syscall), with
 * the tap made and both new links' indexes read in one namespace window between them:
 * two round trips and one request per link instead of one per change, and no link dumps.
 * `inWindow` runs in that window after the tap is made.
 */
export async function buildNic(
  nl: NetlinkHandle,
  netnsPath: string,
  nic: NicRecord,
  mark: string,
  inWindow?: () => void,
): Promise<void> {
  const v = nic.veth;
  const plan = nic.plan; // none: an L2-only NIC, bridged as it is
  await flight([
    ...(plan ? [stripVeth(nl, v)] : []),
    // up from the start: a bridge without a port that is up has no carrier anyway
    nl.createBridge(nic.bridge, {
      mtu: nic.mtu,
      mac: nic.bridgeMac,
      group: LINK_GROUP,
      up: true,
      ...(nic.bridgeIndex ? { index: nic.bridgeIndex } : {}),
    }),
  ]);
  const [br, tap] = withNetns(netnsPath, () => {
    makeTap(nic);
    const indexes = [ifIndex(nic.bridge), ifIndex(nic.tap)];
    inWindow?.(); // the caller's work in the namespace with the bridge made (the DHCP socket)
    return indexes;
  }) as [number, number];
  for (const [name, got, want] of [
    [nic.bridge, br, nic.bridgeIndex],
    [nic.tap, tap, nic.tapIndex],
  ] as const) {
    if (want !== undefined && got !== want)
      throw new Error(`"${name}" in netns ${netnsPath} has ifindex ${got}, not the ${want} it was made with`);
  }
  // One request per link: do_setlink applies a request's MAC, MTU and group first, then
  // its master and its flags (which of those two first depends on the kernel: flags
  // first since 6.8). Either order is fine here: the tap has no carrier until QEMU
  // attaches, and the veth is up already.
  await flight([
    nl.setLink(br, nic.bridge, { alias: mark }), // ours, for the orphan GC (link-mark.ts)
    ...(plan ? [nl.addAddress(br, nic.bridge, BRIDGE_IP, BRIDGE_PREFIX)] : []),
    nl.setLink(tap, nic.tap, { mtu: nic.mtu, group: LINK_GROUP, master: br, alias: mark, up: true }),
    // the veth changes its MAC while up: taking it down would drop its IPv6 addresses
    nl.setLink(v.ifindex, v.ifname, { mac: nic.vethNewMac, master: br, up: true }),
    // The guest's address resolves to its MAC without ARP, so the DHCP server can
    // unicast an OFFER to a client that has no address yet (RFC 2131 4.1).
    ...(plan ? [nl.setNeighbor(br, nic.bridge, plan.ip, nic.guestMac)] : []),
  ]);
}

/**
 * Deletes the links NICs made (`wanted`, as nicLinks gives them) in one kernel batch when the link group holds
 * exactly links they made (ownLink; and at least one): returns false, having done
 * nothing, when anything else is in the group, so unbuildNic deletes them one by one.
 */
export async function deleteNicLinks(
  nl: NetlinkHandle,
  wanted: readonly Parameters<typeof ownLink>[1][],
): Promise<boolean> {
  const grouped = (await nl.links()).filter((l) => l.group === LINK_GROUP);
  if (grouped.length === 0 || grouped.some((l) => !wanted.some((w) => ownLink(l, w)))) return false;
  try {
    await deleteLinkGroup(nl.netns, LINK_GROUP); // off the event loop: tens of ms of RCU waits
  } catch (e) {
    const names = grouped.map((l) => `"${l.name}"`).join(', ');
    throw new Error(`delete links ${names} in netns ${nl.netns}: ${(e as Error).message}`);
  }
  return true;
}

/**
 * Undoes buildNic, each step on its own: removes tap and bridge (those this sandbox
 * made: ownLink, `mark` being its linkMark), then puts the veth back exactly as
 * snapshotted (MAC, MTU, state, addresses, route table). Returns the errors of the
 * steps that failed; never throws. What no retry would change is not an error: snapshot
 * routes that cannot be put back (planRouteRestore's unrestorable) go to `warn`, one line
 * per route; a link with a planned name that this sandbox did not make, and a veth that
 * is gone, go to `warnLink` and are left alone.
 */
export async function unbuildNic(
  nl: NetlinkHandle,
  nic: NicRecord,
  mark: string,
  currentRoutes: (ifname: string) => Promise<Pick<VethSnapshot, 'routes' | 'sharedKeys'>>,
  warn: (message: string) => void = () => undefined,
  warnLink: (message: string) => void = () => undefined,
): Promise<UndoError[]> {
  const errors: UndoError[] = [];
  const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      errors.push(UndoError.of(name, undefined, e));
    }
  };
  const links = await nl.links().catch(() => undefined);
  if (!links) return [new UndoError('list links', nl.netns, 'EIO', `list links: cannot read links in ${nl.netns}`)];
  const v = nic.veth;
  for (const want of nicLinks(nic, mark)) {
    // by its recorded index first: someone may have renamed it
    const l = links.find((x) => x.index === want.index && ownLink(x, want)) ?? links.find((x) => x.name === want.name);
    if (!l) continue;
    if (!ownLink(l, want)) {
      warnLink(
        `${want.kind === 'tun' ? 'tap' : 'bridge'} "${want.name}" in ${nl.netns} is not the link this sandbox made ` +
          `(${describeLink(l)}; made: ${want.index !== undefined ? `ifindex ${want.index}` : `marked ${want.mark}`}): left alone`,
      );
      continue;
    }
    const what = want.kind === 'tun' ? 'tap' : 'bridge';
    await step(`delete ${what} "${l.name}"`, () => nl.deleteLink(l.index, l.name).catch(ignore('ENODEV')));
  }
  // the veth by its index and name: another link that took its name is not it
  const veth = links.find((l) => l.index === v.ifindex && l.name === v.ifname);
  if (!veth) {
    warnLink(`veth "${v.ifname}" (ifindex ${v.ifindex}) is gone from ${nl.netns}: nothing to restore`);
    return errors;
  }
  const idx = veth.index;
  if (veth.master !== undefined) await step('release veth', () => nl.setLink(idx, v.ifname, { master: 0 }));
  if (veth.mac !== v.mac || veth.mtu !== v.mtu) {
    await step('restore veth MAC', () => nl.setLink(idx, v.ifname, { mac: v.mac }));
    await step('restore veth MTU', () => nl.setLink(idx, v.ifname, { mtu: v.mtu }));
  }
  await step('restore veth state', () => nl.setLink(idx, v.ifname, { up: v.up }));
  for (const a of v.addrs.filter((x) => x.family === 4)) {
    await step(`restore address ${a.address}/${a.prefixLen}`, () =>
      nl
        .addAddress(idx, v.ifname, a.address, a.prefixLen, a.broadcast, a.flags & IFA_F_NOPREFIXROUTE)
        .catch(ignore('EEXIST')),
    );
  }
  await step('restore routes', async () => {
    const now = await currentRoutes(v.ifname);
    const r = await restoreRoutes(nl, idx, v, now.routes, now.sharedKeys);
    errors.push(...r.errors);
    r.warnings.forEach(warn);
  });
  return errors;
}

function describeLink(l: LinkState): string {
  return `ifindex ${l.index}, ${l.kind ?? 'no kind'}${l.alias ? `, marked ${l.alias}` : ''}`;
}

/**
 * Makes the veth's IPv4 route table equal the snapshot's by applying planRouteRestore's
 * operations in order: the kernel's re-created subnet route is replaced or deleted, so
 * an add never meets "File exists" (if one does, a route appeared meanwhile: an error);
 * another interface's routes with a key this veth's share are kept, this veth's go beside them.
 * Rejects only when the batch itself fails (a chunk not sent, its acks lost).
 */
export async function restoreRoutes(
  nl: NetlinkHandle,
  ifindex: number,
  snap: VethSnapshot,
  current: RouteSnapshot[],
  currentShared?: Record<string, number[]>,
): Promise<{ errors: UndoError[]; warnings: string[] }> {
  const plan = planRouteRestore(snap, current, currentShared);
  const errors: UndoError[] = [];
  // in order, in one batch of however many
  const results = plan.ops.length
    ? await nl.batch(plan.ops.map((o) => routeChange(o.op, routeSpec(o.route, ifindex))))
    : [];
  plan.ops.forEach((o, i) => {
    const e = results[i];
    if (!e || (o.op === 'delete' && ['ESRCH', 'ENOENT'].includes(e.code))) return;
    const route = `"${describeRoute(o.route, snap.ifname)}"`;
    errors.push(new UndoError(`${o.op} route`, route, e.code, `${o.op} route ${route} (${o.reason}): ${e.message}`));
  });
  const warnings = plan.unrestorable.map(
    (u) => `route "${describeRoute(u.route, snap.ifname)}" not restored: ${u.reason}`,
  );
  return { errors, warnings };
}
