// The kernel network state of a netns as `ip -d` prints it, for byte-for-byte
// before/after comparisons, and a wait for IPv6 DAD so that "before" is not taken while
// link-local addresses are still tentative (their flags and local routes change after).
import { waitFor } from '../fixtures/dhcp-net';
import type { TestNetns } from './netns';

/** Every link, address and route (all tables, both families); only address lifetimes are masked. */
export function ipState(ns: TestNetns): string {
  return [
    ns.ip('-d', '-o', 'link', 'show'),
    ns.ip('-d', '-o', 'addr', 'show').replace(/valid_lft \S+ preferred_lft \S+/g, 'LFT'),
    ns.ip('-d', 'route', 'show', 'table', 'all'),
    ns.ip('-d', '-6', 'route', 'show', 'table', 'all'),
  ].join('\n## \n');
}

/** Waits until each device has its IPv6 link-local address and none of its addresses is tentative. */
export async function dadDone(ns: TestNetns, devs: string[]): Promise<void> {
  for (const dev of devs) {
    await waitFor(`IPv6 DAD on ${dev} in ${ns.name}`, () => {
      const a = ns.ip('-6', '-o', 'addr', 'show', 'dev', dev);
      return a.includes('inet6 fe80') && !a.includes('tentative');
    });
  }
}
