// The counters of every ready sandbox, read for a metrics scrape without a status() each:
// the DHCP, DHCPv6 and RA counters from memory, the fence drop counters of all of them in one
// native call (one nf_tables dump per namespace, on one pool thread, bounded in time), no
// link dumps. A sandbox whose namespace is gone or replaced is `gone`; one not read in
// time has no fence counters this time (the caller keeps its last ones).
import type { DhcpCounters } from '../../dhcp/counters';
import { readFenceCountersEach, type FenceCounter } from '../fence';
import type { Dhcp6Counters } from '../../dhcp6/counters';
import type { AdvertiserStats } from '../../ndp/advertiser';
import type { ManagerContext } from './context';

export interface SandboxCounters {
  /** per NIC with DHCP: its server's counters */
  dhcp: Partial<DhcpCounters>[];
  /** per NIC with IPv6: its DHCPv6 server's and router advertiser's counters */
  ipv6: { dhcp6: Partial<Dhcp6Counters>; ra: Partial<AdvertiserStats> }[];
  /** undefined when the fence could not be read this time */
  fence?: FenceCounter[];
  /** recovery found drift, or the namespace is gone (tapctl describe says which) */
  drifted: boolean;
}

/** Errno codes that say the namespace at the record's path is not the sandbox's any more. */
const GONE = new Set(['ENOENT', 'ESTALE', 'EINVAL', 'ENOTDIR', 'ELOOP']);

export async function sandboxCounters(ctx: ManagerContext, timeoutMs: number): Promise<Map<string, SandboxCounters>> {
  const ready = [...ctx.registry.records.values()].filter((r) => r.state === 'ready');
  const fences = await readFenceCountersEach(
    ready.map((r) => ({
      netnsPath: r.netnsPath,
      table: r.fenceTable,
      ...(r.netnsCookie !== undefined ? { cookie: r.netnsCookie } : {}),
    })),
    timeoutMs,
  );
  const out = new Map<string, SandboxCounters>();
  ready.forEach((r, i) => {
    const f = fences[i];
    const gone = f instanceof Error && GONE.has(String((f as { code?: unknown }).code));
    out.set(r.sandboxId, {
      dhcp: ctx.dhcp.stats(r.sandboxId),
      ipv6: ctx.dhcp.stats6(r.sandboxId),
      ...(Array.isArray(f) ? { fence: f } : {}),
      drifted: gone || (ctx.drift.get(r.sandboxId)?.length ?? 0) > 0,
    });
  });
  return out;
}
