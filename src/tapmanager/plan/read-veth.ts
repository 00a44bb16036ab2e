// Reads a veth as CNI left it (link, addresses, routes of every table) into a
// VethSnapshot, through the netlink gate in the pod netns (a NetlinkHandle; the raw
// messages are decoded by src/net/rtnl-parse.ts).
import { NetlinkHandle, type LinkState, type NetlinkReader } from '../../net/netlink';
import type { RtnlRoute } from '../../net/rtnl-parse';
import type { VethSnapshot } from '../snapshot';
import { routeKey } from './restore-routes';

/** A failed read: "failed to read veth "eth0" in netns /run/netns/x: <cause>", with a code. */
export class ReadVethError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ReadVethError';
  }
}

function codeOf(e: unknown): string {
  const c = (e as { code?: unknown })?.code;
  return typeof c === 'string' ? c : 'EIO';
}

/** What reads a namespace's links, addresses and routes: a NetlinkHandle, or a setup's NetlinkReader. */
export type VethReader = Pick<NetlinkHandle | NetlinkReader, 'links' | 'addressesOf' | 'routesAround'>;

export interface ReadVethOptions {
  /**
   * a reader in the namespace already (`nl`), and a link dump made on it just before for
   * other uses too (`links`): read with them instead of a route socket of its own
   */
  within?: { nl: VethReader; links?: readonly LinkState[] };
  /**
   * route keys to report in sharedKeys when another interface holds them even if this one
   * does not (what a restore is about to put back)
   */
  alsoKeys?: string[];
}

/** The veth `ifname` in the namespace at `netnsPath`. */
export async function readVethSnapshot(
  netnsPath: string,
  ifname: string,
  { within, alsoKeys = [] }: ReadVethOptions = {},
): Promise<VethSnapshot> {
  const what = `veth "${ifname}" in netns ${netnsPath}`;
  let nl: VethReader;
  let own: NetlinkHandle | undefined;
  try {
    nl = within?.nl ?? (own = NetlinkHandle.open(netnsPath));
  } catch (e) {
    throw new ReadVethError(codeOf(e), `failed to read ${what}: ${(e as Error).message}`);
  }
  try {
    const link = (within?.links ?? (await nl.links())).find((l) => l.name === ifname);
    if (!link) throw new ReadVethError('ENODEV', `failed to read ${what}: no such interface`);
    const ifindex = link.index;
    const routes = await nl.routesAround(ifindex);
    const sharedKeys = sharedKeysOf(ifindex, routes.all, new Set(alsoKeys));
    return {
      ifname,
      ifindex,
      mac: link.mac,
      mtu: link.mtu,
      up: link.up,
      addrs: await nl.addressesOf(ifindex),
      routes: routes.through,
      ...(sharedKeys ? { sharedKeys } : {}),
    };
  } catch (e) {
    if (e instanceof ReadVethError) throw e;
    throw new ReadVethError(codeOf(e), `failed to read ${what}: ${(e as Error).message}`);
  } finally {
    own?.close();
  }
}

/** The IPv4 keys (ifindex's or `also`) another interface's routes hold, each with its routes' interfaces in order. */
function sharedKeysOf(
  ifindex: number,
  all: { ifindex: number; route: RtnlRoute }[],
  also: Set<string>,
): Record<string, number[]> | undefined {
  const byKey = new Map<string, number[]>();
  for (const { ifindex: i, route } of all) {
    if (route.family !== 4) continue;
    const k = routeKey(route);
    const ix = byKey.get(k);
    if (ix) ix.push(i);
    else byKey.set(k, [i]);
  }
  const shared = [...byKey].filter(([k, ix]) => (also.has(k) || ix.includes(ifindex)) && ix.some((i) => i !== ifindex));
  return shared.length ? Object.fromEntries(shared) : undefined;
}
