// The DHCP servers of every sandbox: one per NIC, on its bridge, in the sandbox's netns;
// and beside it, for a NIC with IPv6 (plan6), its DHCPv6 server and router advertiser
// (ipv6-nic.ts GuestIpv6). Setup and recovery start both, every undo stops both.
import { DhcpServer } from '../../dhcp/server';
import { GuestIpv6, type GuestIpv6Stats } from '../ipv6-nic';
import { bindingOf } from '../bindings';
import type { Logger } from '../../util/log';
import { RateLimiter } from '../../util/rate-limit';
import type { NicRecord, SandboxRecord } from '../record';
import { BRIDGE_IP } from '../topology';
import { guestHostname } from '../validate';

export class DhcpServers {
  private readonly servers = new Map<string, DhcpServer[]>();
  private readonly ipv6 = new Map<string, GuestIpv6[]>();

  constructor(private readonly o: { log: Logger; leaseTime?: number }) {}

  /**
   * DHCP servers for the record's NICs that have a lease (bindings/), their sockets made
   * in the namespace at netns, or taken from `fds` (made there already by the setup; each
   * server owns its own from then on, and takes it out of the map).
   */
  async start(rec: SandboxRecord, netns: string, fds?: Map<NicRecord, number>): Promise<void> {
    await this.stop(rec.sandboxId);
    const servers: DhcpServer[] = [];
    this.servers.set(rec.sandboxId, servers);
    const servers6: GuestIpv6[] = [];
    this.ipv6.set(rec.sandboxId, servers6);
    const logLimit = new RateLimiter(); // per sandbox: what its guest can make us log
    const hostname = guestHostname(rec.request);
    const common = { ...(hostname ? { hostname } : {}), ...(this.o.leaseTime ? { leaseTime: this.o.leaseTime } : {}) };
    // all at once; every one settles before this returns, and those that started are
    // registered (in NIC order) so that a rollback's stop closes them
    const started = await Promise.allSettled(
      rec.nics.flatMap((nic) => {
        const binding = bindingOf(nic);
        const lease = binding.servesDhcp(nic) ? binding.lease(nic, common) : undefined;
        if (!lease) return [];
        const fd = fds?.get(nic);
        fds?.delete(nic);
        return [
          DhcpServer.start({
            ifname: binding.dhcpInterface(nic),
            netns,
            ...(fd !== undefined ? { fd } : {}),
            serverId: binding.dhcpServerId?.(nic) ?? BRIDGE_IP,
            leases: [lease],
            logger: this.o.log.child(`dhcp.${rec.sandboxId.slice(0, 12)}`),
            logLimit,
          }),
        ];
      }),
    );
    const started6 = await Promise.allSettled(
      rec.nics.flatMap((nic) =>
        nic.plan6
          ? [
              GuestIpv6.start({
                bridge: bindingOf(nic).dhcpInterface(nic),
                bridgeMac: nic.bridgeMac,
                netns,
                plan: nic.plan6,
                logger: this.o.log.child(`dhcp6.${rec.sandboxId.slice(0, 12)}`),
                logLimit,
              }),
            ]
          : [],
      ),
    );
    for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
    for (const s of started6) if (s.status === 'fulfilled') servers6.push(s.value);
    const failed = [...started, ...started6].find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async stop(id: string): Promise<void> {
    const servers = [...(this.servers.get(id) ?? []), ...(this.ipv6.get(id) ?? [])];
    this.servers.delete(id);
    this.ipv6.delete(id);
    await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
  }

  /** The servers' stats, one entry per server. */
  stats(id: string): ReturnType<DhcpServer['stats']>[] {
    return (this.servers.get(id) ?? []).map((s) => s.stats());
  }

  /** The DHCPv6 servers' and router advertisers' stats, one entry per NIC with IPv6. */
  stats6(id: string): GuestIpv6Stats[] {
    return (this.ipv6.get(id) ?? []).map((s) => s.stats());
  }

  async close(): Promise<void> {
    await Promise.all([...this.servers.keys()].map((id) => this.stop(id)));
  }
}
