// The DHCP servers of every sandbox: one per NIC, on its bridge, in the sandbox's netns.
import { DhcpServer } from '../../dhcp/server';
import { bindingOf } from '../bindings';
import type { Logger } from '../../util/log';
import { RateLimiter } from '../../util/rate-limit';
import type { NicRecord, SandboxRecord } from '../record';
import { BRIDGE_IP } from '../topology';
import { guestHostname } from '../validate';

export class DhcpServers {
  private readonly servers = new Map<string, DhcpServer[]>();

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
    const logLimit = new RateLimiter(); // per sandbox: what its guest can make us log
    const hostname = guestHostname(rec.request);
    const common = { ...(hostname ? { hostname } : {}), ...(this.o.leaseTime ? { leaseTime: this.o.leaseTime } : {}) };
    // all at once; every one settles before this returns, and those that started are
    // registered (in NIC order) so that a rollback's stop closes them
    const started = await Promise.allSettled(
      rec.nics.flatMap((nic) => {
        const binding = bindingOf(nic);
        const lease = binding.lease(nic, common);
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
    for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
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
