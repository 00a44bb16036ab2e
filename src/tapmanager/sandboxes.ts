// The sandbox manager: setup, teardown, status, fd hand-out, and recovery after a
// restart, each in its own module under sandbox/ (setup.ts, teardown.ts, unbuild.ts,
// fd-handout.ts, status.ts, recovery.ts), over one registry of records and locks
// (registry.ts) and the DHCP servers (dhcp-servers.ts). Operations on one sandbox are
// serialized; different sandboxes proceed in parallel.
import { NetlinkHandle, NetlinkReader } from '../net/netlink';
import { releasePasst } from './bindings/passt/supervisor';
import { badInput } from './errors';
import { markScope } from './link-mark';
import { refuseHostNetns } from './netns-claims';
import { NetnsPinError, pinNetns, unpinned, type PinnedNetns } from './netns-pin';
import type { FdsResult, ListEntry, SetupResult } from './protocol';
import { stepping, type ManagerContext, type ManagerOptions } from './sandbox/context';
import { DhcpServers } from './sandbox/dhcp-servers';
import { handOutFds, revokeFds } from './sandbox/fd-handout';
import { recoverAll } from './sandbox/recovery';
import { SandboxRegistry } from './sandbox/registry';
import { doSetup } from './sandbox/setup';
import { sandboxCounters, type SandboxCounters } from './sandbox/counters';
import { listSandboxes, sandboxStatus, type SandboxStatus } from './sandbox/status';
import { doTeardown } from './sandbox/teardown';
import type { TapHold } from './tap-holders';
import { checkSandboxId, validateSetup } from './validate';

export type { ManagerOptions } from './sandbox/context';
export type { SandboxCounters } from './sandbox/counters';
export type { SandboxStatus } from './sandbox/status';

export class SandboxManager {
  private readonly ctx: ManagerContext;

  constructor(o: ManagerOptions) {
    this.ctx = {
      o,
      registry: new SandboxRegistry(o.store),
      dhcp: new DhcpServers({ log: o.log, ...(o.leaseTime ? { leaseTime: o.leaseTime } : {}) }),
      drift: new Map(),
      scope: markScope(o.store.dir),
    };
  }

  async setup(raw: unknown): Promise<SetupResult> {
    const { req, nics } = validateSetup(raw, this.ctx.o.nicModel);
    // opened once: every step works in the namespace that was there now (netns-pin.ts)
    // and the setup's route sockets made in the same namespace window
    let ns: PinnedNetns & { value: { nl: NetlinkHandle; reader: NetlinkReader } };
    try {
      ns = pinNetns(req.netnsPath, (path) => {
        const reader = NetlinkReader.inWindow(path);
        try {
          return { nl: stepping(this.ctx, NetlinkHandle.inWindow(path), 'setup', req.sandboxId), reader };
        } catch (e) {
          reader.close();
          throw e;
        }
      });
    } catch (e) {
      if (e instanceof NetnsPinError) throw badInput('netnsPath', req.netnsPath, e.reason);
      throw e;
    }
    try {
      refuseHostNetns(req.netnsPath, ns.path);
      return await this.ctx.registry.serialize(req.sandboxId, () =>
        doSetup(this.ctx, req, nics, ns, ns.value.nl, ns.value.reader),
      );
    } catch (e) {
      if (e instanceof Error) e.message = unpinned(e.message, ns, req.netnsPath);
      throw e;
    } finally {
      ns.value.nl.close();
      ns.value.reader.close();
      ns.close();
    }
  }

  async teardown(id: unknown): Promise<{ errors: string[] }> {
    const sandboxId = checkSandboxId(id);
    return this.ctx.registry.serialize(sandboxId, () => doTeardown(this.ctx, sandboxId));
  }

  fds(key: unknown): Promise<{ result: FdsResult; fds: number[] }> {
    return handOutFds(this.ctx, key);
  }

  revoke(id: unknown): Promise<{ sandboxId: string; revoked: TapHold[] }> {
    return revokeFds(this.ctx, id);
  }

  status(id: unknown): Promise<SandboxStatus> {
    return sandboxStatus(this.ctx, id);
  }

  /** Every ready sandbox's DHCP and fence counters, without a status() each (metrics). */
  counters(timeoutMs: number): Promise<Map<string, SandboxCounters>> {
    return sandboxCounters(this.ctx, timeoutMs);
  }

  list(): ListEntry[] {
    return listSandboxes(this.ctx);
  }

  recover(): Promise<void> {
    return recoverAll(this.ctx);
  }

  async close(): Promise<void> {
    // passts keep serving their emulators (a restarted daemon adopts them); only the watching stops
    releasePasst(this.ctx.registry.records.keys());
    await this.ctx.dhcp.close();
  }

  has(id: string): boolean {
    return this.ctx.registry.records.has(id);
  }
}
