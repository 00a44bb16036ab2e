// A byte-for-byte view of a netns's links, addresses and routes (`ip -d`), for checking
// that a teardown or a rollback restored exactly what was there before. Only what the
// kernel changes on its own is masked: address lifetimes and link counters are not
// printed by these commands, and nothing else is rewritten.
import { waitFor } from '../fixtures/dhcp-net';
import type { TestNetns } from './netns';

export function ipDump(ns: TestNetns): string {
  const addrs = ns
    .ip('-d', '-o', 'addr', 'show')
    .split('\n')
    .map((l) => l.replace(/valid_lft \S+ preferred_lft \S+/, 'LFT'))
    .join('\n');
  return [
    '## link',
    ns.ip('-d', '-o', 'link', 'show'),
    '## addr',
    addrs,
    '## route',
    ns.ip('-d', 'route', 'show', 'table', 'all'),
    '## route6',
    ns.ip('-d', '-6', 'route', 'show', 'table', 'all'),
    '## rule',
    ns.ip('rule', 'show'),
  ].join('\n');
}

/**
 * Waits until no address in ns is tentative (IPv6 DAD done, so the kernel adds no more
 * local routes on its own), then dumps: a "before" taken earlier would differ by timing.
 */
export async function settledDump(ns: TestNetns, timeoutMs = 30_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  while (ns.ip('-o', 'addr', 'show', 'tentative') !== '') {
    if (Date.now() > end) throw new Error(`addresses in ${ns.name} still tentative after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return ipDump(ns);
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
