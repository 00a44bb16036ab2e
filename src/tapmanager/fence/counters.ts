// The fence counters of many sandboxes at once, for a metrics scrape: one nf_tables
// netlink dump per namespace (the table's counter objects, filtered in the kernel), all of
// them on one pool thread in one native call (netlinkDumpEach), no nft process or library,
// bounded in time. `tapctl describe` keeps readFenceCounters (apply.ts), which says why a
// table cannot be read.
import { counterDumpRequest, parseCounterObjects } from '../../net/nft-objects';
import { NETLINK_NETFILTER, NFPROTO_BRIDGE } from '../../net/nfnl';
import { netlinkDumpEach } from '../../native';
import type { FenceCounter } from './types';
import { checkTable } from './validate';

/** A fence to read: its table in the namespace at netnsPath, which must still have `cookie`. */
export interface FenceToRead {
  netnsPath: string;
  /** SO_NETNS_COOKIE the namespace had at setup (decimal): another namespace at the path is not read */
  cookie?: string;
  table: string;
}

/** A fence is ~60 counters of ~120 bytes each: far below this. */
const MAX_ANSWER = 256 << 10;

/**
 * Every named counter of each fence, in rule order, or the error that kept it from being
 * read (its namespace gone or replaced, ETIMEDOUT past `timeoutMs` for all of them).
 */
export async function readFenceCountersEach(
  fences: FenceToRead[],
  timeoutMs: number,
): Promise<(FenceCounter[] | Error)[]> {
  if (fences.length === 0) return [];
  const items = fences.map((f, i) => ({
    netns: f.netnsPath,
    ...(f.cookie !== undefined ? { cookie: f.cookie } : {}),
    request: counterDumpRequest(NFPROTO_BRIDGE, checkTable(f.table), i + 1),
  }));
  const answers = await netlinkDumpEach(items, NETLINK_NETFILTER, MAX_ANSWER, timeoutMs);
  return answers.map((a) => {
    if (a instanceof Error) return a;
    return parseCounterObjects(a)
      .sort((x, y) => x.handle - y.handle) // handles grow in creation order, which is rule order
      .map(({ name, packets, bytes }) => ({ name, packets, bytes }));
  });
}
