// Reads a veth as CNI left it (link, addresses, routes of every table) into a
// VethSnapshot, through the netlink gate in the pod netns (a NetlinkHandle; the raw
// messages are decoded by src/net/rtnl-parse.ts).
import { NetlinkHandle, type LinkState, type NetlinkReader } from '../../net/netlink';
import type { VethSnapshot } from '../snapshot';

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
export type VethReader = Pick<NetlinkHandle | NetlinkReader, 'links' | 'addressesOf' | 'routesThrough'>;

/**
 * The veth `ifname` in the namespace at `netnsPath`, read on a route socket of its own, or
 * with `within.nl` (a reader there already) and from `within.links` (a link dump made on
 * it just before, for other uses too) instead of dumping the links again.
 */
export async function readVethSnapshot(
  netnsPath: string,
  ifname: string,
  within?: { nl: VethReader; links?: readonly LinkState[] },
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
    return {
      ifname,
      ifindex,
      mac: link.mac,
      mtu: link.mtu,
      up: link.up,
      addrs: await nl.addressesOf(ifindex),
      routes: await nl.routesThrough(ifindex),
    };
  } catch (e) {
    if (e instanceof ReadVethError) throw e;
    throw new ReadVethError(codeOf(e), `failed to read ${what}: ${(e as Error).message}`);
  } finally {
    own?.close();
  }
}
