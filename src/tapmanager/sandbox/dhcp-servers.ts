// The DHCP servers of every sandbox: one per NIC, on its bridge, in the sandbox's netns.
import { DhcpServer, StaticLease } from '../../dhcp/server';
import type { Logger } from '../../util/log';
import { RateLimiter } from '../../util/rate-limit';
import type { NicRecord, SandboxRecord } from '../record';
import { BRIDGE_IP } from '../topology';
import { guestHostname } from '../validate';

export class DhcpServers {
  private readonly servers = new Map<string, DhcpServer[]>();

  constructor(private readonly o: { log: Logger; leaseTime?: number }) {}

  private leaseFor(rec: SandboxRecord, nic: NicRecord): StaticLease {
    const p = nic.plan;
    const hostname = guestHostname(rec.request);
    return {
      mac: nic.guestMac,
      ip: p.ip,
      prefixLen: p.prefixLen,
      routers: p.routers,
      classlessRoutes: p.classlessRoutes,
      dns: p.dns,
      search: p.search,
      ...(p.domain ? { domain: p.domain } : {}),
      ...(hostname ? { hostname } : {}),
      mtu: p.mtu,
      ...(this.o.leaseTime ? { leaseTime: this.o.leaseTime } : {}),
    };
  }

  /** DHCP servers for the record's NICs, their sockets made in the namespace at netns. */
  async start(rec: SandboxRecord, netns: string): Promise<void> {
    await this.stop(rec.sandboxId);
    const servers: DhcpServer[] = [];
    this.servers.set(rec.sandboxId, servers);
    const logLimit = new RateLimiter(); // per sandbox: what its guest can make us log
    for (const nic of rec.nics) {
      servers.push(
        await DhcpServer.start({
          ifname: nic.bridge,
          netns,
          serverId: BRIDGE_IP,
          leases: [this.leaseFor(rec, nic)],
          logger: this.o.log.child(`dhcp.${rec.sandboxId.slice(0, 12)}`),
          logLimit,
        }),
      );
    }
  }

  async stop(id: string): Promise<void> {
    const servers = this.servers.get(id) ?? [];
    this.servers.delete(id);
    await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
  }

  /** The servers' stats, one entry per server. */
  stats(id: string): ReturnType<DhcpServer['stats']>[] {
    return (this.servers.get(id) ?? []).map((s) => s.stats());
  }

  async close(): Promise<void> {
    await Promise.all([...this.servers.keys()].map((id) => this.stop(id)));
  }
}
