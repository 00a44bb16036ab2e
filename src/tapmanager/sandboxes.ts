// The sandbox manager: setup, teardown, status, fd hand-out, and recovery after a
// restart. Flow per setup: validate -> snapshot -> plan -> record (write-ahead) ->
// apply -> record ready. Operations on one sandbox are serialized; different
// sandboxes proceed in parallel.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { DhcpServer, StaticLease } from '../dhcp/server';
import { NetlinkHandle } from '../net/netlink';
import { randomMac } from '../net/mac';
import type { Logger } from '../util/log';
import { RateLimiter } from '../util/rate-limit';
import { crashCounting, crashPoint } from './crash-points';
import { TapError, badInput } from './errors';
import { linkMark, markScope } from './link-mark';
import { NetnsClaims, refuseHostNetns } from './netns-claims';
import { NetnsPinError, pinNetns, pinRecorded, unpinned, type PinnedNetns } from './netns-pin';
import { collectOrphanLinks } from './orphans';
import { applyFence, fenceExists, readFenceCounters, removeFence } from './fence';
import { planGuestNetwork, PlanError } from './plan/guest-network';
import { readVethSnapshot } from './plan/read-veth';
import { GuestIpv6, planNicIpv6, restoreVethIpv6, stripVethIpv6 } from './ipv6-nic';
import { planRouteRestore } from './plan/restore-routes';
import type { FdsResult, GuestNic, ListEntry, SetupRequest, SetupResult } from './protocol';
import { RECORD_VERSION, NicRecord, SandboxRecord } from './record';
import type { RouteSnapshot } from './snapshot';
import type { RecordStore } from './store';
import { checkNotHeld, openTaps, revokeTaps, type TapHold } from './tap-holders';
import { BRIDGE_IP, buildNic, deleteNicLinks, ownLink, planNicLinks, unbuildNic } from './topology';
import { checkSandboxId, guestHostname, NicInput, validateSetup } from './validate';

export interface ManagerOptions {
  store: RecordStore;
  log: Logger;
  /** default guest NIC model */
  nicModel?: string;
  leaseTime?: number;
  /** dirs of pinned netns files searched for orphan links at recovery (none by default) */
  netnsDirs?: string[];
  /**
   * test hook: awaited at each named step of a setup/teardown (the crash points of
   * crash-points.ts: setup.planned, setup.recorded, ..., teardown.recorded)
   */
  onStep?: (step: string, sandboxId: string) => Promise<void> | void;
  /** test hook: fail after step N of a setup */
  failAfterStep?: number;
}

const FENCE_TABLE = 'tapwire';

export interface SandboxStatus {
  sandboxId: string;
  state: string;
  netnsPath: string;
  createdAt: string;
  nics: (GuestNic & {
    routes: { dst: string; gw: string }[];
    /** routes of the veth that DHCP cannot hand to the guest, with the reason (logged once, at setup) */
    unexpressible: { route: RouteSnapshot; reason: string }[];
    /** routes of the veth that a teardown cannot put back, with the reason (logged at teardown) */
    unrestorable: { route: RouteSnapshot; reason: string }[];
    warnings: string[];
  })[];
  dhcp: unknown[];
  /** per NIC with IPv6: the DHCPv6 server's and the router advertiser's counters */
  ipv6?: unknown[];
  fence?: { name: string; packets: number; bytes: number }[];
  drift: string[];
  /** per NIC: the live state of its veth, bridge and tap */
  live?: { name: string; mac: string; mtu: number; up: boolean; master?: number }[][];
}

function requestHash(req: SetupRequest): string {
  return createHash('sha256').update(JSON.stringify(req)).digest('hex');
}

export class SandboxManager {
  private readonly records = new Map<string, SandboxRecord>();
  private readonly dhcp = new Map<string, DhcpServer[]>();
  private readonly ipv6 = new Map<string, GuestIpv6[]>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly drift = new Map<string, string[]>();
  /** one sandbox per netns, the host's and the daemon's own never */
  private readonly claims = new NetnsClaims();
  /** marks this manager's links apart from those of managers on other state dirs (link-mark.ts) */
  private readonly scope: string;

  constructor(private readonly o: ManagerOptions) {
    this.scope = markScope(o.store.dir);
  }

  /** A named step of a setup/teardown: a crash point, and the onStep test hook. */
  private async step(name: string, sandboxId: string): Promise<void> {
    crashPoint(name);
    await this.o.onStep?.(name, sandboxId);
  }

  /** Serializes fn behind every earlier operation on the same sandbox. */
  private serialize<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(id, tail);
    void tail.then(() => {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    });
    return next;
  }

  async setup(raw: unknown): Promise<SetupResult> {
    const { req, nics } = validateSetup(raw);
    // opened once: every step works in the namespace that was there now (netns-pin.ts)
    let ns: PinnedNetns;
    try {
      ns = pinNetns(req.netnsPath);
    } catch (e) {
      if (e instanceof NetnsPinError) throw badInput('netnsPath', req.netnsPath, e.reason);
      throw e;
    }
    try {
      refuseHostNetns(req.netnsPath, ns.path);
      return await this.serialize(req.sandboxId, () => this.doSetup(req, nics, ns));
    } catch (e) {
      if (e instanceof Error) e.message = unpinned(e.message, ns, req.netnsPath);
      throw e;
    } finally {
      ns.close();
    }
  }

  /**
   * The namespace of a record, pinned; undefined, with a warning, when its path leads to
   * none now or to another one (a namespace made later under the same name is not this
   * sandbox's: nothing in it is touched).
   */
  private pinRecorded(rec: SandboxRecord, log: Logger = this.o.log): PinnedNetns | undefined {
    const ns = pinRecorded(rec.netnsPath, rec.netnsCookie);
    if (ns === 'replaced') {
      log.warn('the netns path leads to another namespace than the sandbox had: left alone', {
        sandboxId: rec.sandboxId,
        netnsPath: rec.netnsPath,
      });
    }
    return typeof ns === 'string' ? undefined : ns;
  }

  async teardown(id: unknown): Promise<{ errors: string[] }> {
    const sandboxId = checkSandboxId(id);
    return this.serialize(sandboxId, () => this.doTeardown(sandboxId));
  }

  private result(rec: SandboxRecord): SetupResult {
    return {
      sandboxId: rec.sandboxId,
      netKey: `${rec.sandboxId}:${rec.token}`,
      nics: rec.nics.map((n) => this.guestNic(n)),
    };
  }

  private guestNic(n: NicRecord): GuestNic {
    return {
      index: n.cniIndex,
      veth: n.veth.ifname,
      bridge: n.bridge,
      tap: n.tap,
      mac: n.guestMac,
      mtu: n.mtu,
      model: n.model,
      queues: n.queues,
      vnetHdr: true,
      ip: n.plan.ip,
      prefixLen: n.plan.prefixLen,
      ...(n.plan.routers[0] ? { gateway: n.plan.routers[0] } : {}),
    };
  }

  private async doSetup(req: SetupRequest, inputs: NicInput[], ns: PinnedNetns): Promise<SetupResult> {
    const existing = this.records.get(req.sandboxId);
    if (existing) {
      if (requestHash(existing.request) === requestHash(req) && existing.state === 'ready')
        return this.result(existing);
      throw new TapError(
        'EEXIST',
        `sandbox ${JSON.stringify(req.sandboxId)} already exists with a different request (state ${existing.state})`,
        'sandboxId',
      );
    }
    const log = this.o.log.child('setup');
    // before anything is read or built: a second setup in this netns is refused from here on
    this.claims.claim(req.sandboxId, req.netnsPath, ns.path);
    let nl: NetlinkHandle;
    try {
      nl = crashCounting(NetlinkHandle.open(ns.path), 'setup');
    } catch (e) {
      this.claims.release(req.sandboxId);
      throw e;
    }
    let rec: SandboxRecord | undefined;
    try {
      // 1. snapshot every veth before touching anything, and plan what the guest gets
      // and the links it builds: names and indexes no link in the netns has
      const made = planNicLinks(await nl.links(), inputs.length);
      const nicRecs: NicRecord[] = [];
      for (const [i, input] of inputs.entries()) {
        const snap = await readVethSnapshot(ns.path, input.ifname).catch((e: unknown) => {
          throw badInput(
            `cniResult.interfaces[${input.cniIndex}].name`,
            input.ifname,
            `not found in netns ${req.netnsPath} (${(e as Error).message})`,
          );
        });
        let plan;
        try {
          plan = planGuestNetwork({
            veth: snap,
            cni: req.cniResult,
            cniInterfaceIndex: input.cniIndex,
            ...(req.dns ? { dns: req.dns } : {}),
            serverId: BRIDGE_IP,
          });
        } catch (e) {
          if (e instanceof PlanError) throw new TapError('EINVAL', e.message, e.field);
          throw e;
        }
        const plan6 = await planNicIpv6(nl, snap, req.dns?.servers ?? req.cniResult.dns?.nameservers, plan.search);
        if (snap.addrs.every((a) => a.family !== 4)) {
          throw badInput(
            `cniResult.interfaces[${input.cniIndex}].name`,
            input.ifname,
            'has no IPv4 address in the pod netns',
          );
        }
        for (const u of plan.unexpressible)
          log.warn('route cannot be handed to the guest', {
            sandboxId: req.sandboxId,
            route: u.route,
            reason: u.reason,
          });
        nicRecs.push({
          cniIndex: input.cniIndex,
          veth: snap,
          vethNewMac: randomMac(() => randomBytes(6)),
          ...made[i]!,
          bridgeMac: randomMac(() => randomBytes(6)),
          guestMac: snap.mac,
          mtu: snap.mtu,
          model: req.nicModel ?? this.o.nicModel ?? 'virtio-net-pci',
          queues: req.queues ?? 1,
          plan,
          ...(plan6 ? { plan6 } : {}),
        });
      }
      await this.step('setup.planned', req.sandboxId);
      const now = new Date().toISOString();
      rec = {
        version: RECORD_VERSION,
        sandboxId: req.sandboxId,
        netnsPath: req.netnsPath,
        netnsCookie: ns.cookie,
        state: 'setting-up',
        createdAt: now,
        updatedAt: now,
        request: req,
        token: randomBytes(24).toString('base64url'),
        fenceTable: FENCE_TABLE,
        nics: nicRecs,
      };
      // 2. write-ahead: the plan with every undo's data is on disk before the first change
      await this.o.store.save(rec);
      this.records.set(rec.sandboxId, rec);
      await this.step('setup.recorded', req.sandboxId);
      let step = 0;
      const hook = (): void => {
        step++;
        if (this.o.failAfterStep !== undefined && step > this.o.failAfterStep) {
          throw new TapError('EIO', `injected failure after step ${this.o.failAfterStep}`);
        }
      };
      // 3 and 4. build the links while the fence goes in on a pool thread: its rules
      // match interface names, so they need no link to exist, and both are done (or both
      // settled, for the rollback) before anything else happens
      const fencing = applyFence(
        ns.path,
        rec.fenceTable,
        rec.nics.map((n) => ({ bridge: n.bridge, veth: n.veth.ifname, tap: n.tap, guestMac: n.guestMac })),
      );
      fencing.catch(() => undefined); // handled below; not an unhandled rejection meanwhile
      try {
        for (const nic of rec.nics) {
          await buildNic(nl, ns.path, nic, linkMark(this.scope, req.sandboxId));
          stripVethIpv6(ns.path, nic.veth, nic.bridge, nic.tap);
          hook();
        }
      } catch (e) {
        await fencing.catch(() => undefined);
        throw e;
      }
      await fencing;
      await this.step('setup.fenced', req.sandboxId);
      hook();
      // 5. DHCP, listening before we answer
      await this.startDhcp(rec, ns.path);
      await this.step('setup.dhcp', req.sandboxId);
      hook();
      rec.state = 'ready';
      await this.o.store.save(rec);
      await this.step('setup.ready', req.sandboxId);
      log.info('sandbox ready', {
        sandboxId: rec.sandboxId,
        nics: rec.nics.map((n) => `${n.veth.ifname}->${n.tap} ${n.guestMac} ${n.plan.ip}/${n.plan.prefixLen}`),
      });
      return this.result(rec);
    } catch (e) {
      if (!rec) this.claims.release(req.sandboxId);
      else {
        const errors = await this.unbuild(rec, { nl, path: ns.path });
        if (errors.length === 0) {
          this.records.delete(rec.sandboxId);
          await this.o.store.remove(rec.sandboxId);
          this.claims.release(rec.sandboxId);
        } else {
          log.error('rollback of a failed setup left errors; record kept for a later teardown', {
            sandboxId: rec.sandboxId,
            errors,
          });
        }
        log.warn('setup failed and was rolled back', { sandboxId: rec.sandboxId, error: (e as Error).message });
      }
      throw e;
    } finally {
      nl.close();
    }
  }

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
  private async startDhcp(rec: SandboxRecord, netns: string): Promise<void> {
    await this.stopDhcp(rec.sandboxId);
    const servers: DhcpServer[] = [];
    this.dhcp.set(rec.sandboxId, servers);
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
      if (nic.plan6) {
        const v6 = this.ipv6.get(rec.sandboxId) ?? [];
        this.ipv6.set(rec.sandboxId, v6);
        v6.push(
          await GuestIpv6.start({
            bridge: nic.bridge,
            bridgeMac: nic.bridgeMac,
            netns,
            plan: nic.plan6,
            logger: this.o.log.child(`dhcp6.${rec.sandboxId.slice(0, 12)}`),
            logLimit,
          }),
        );
      }
    }
  }

  private async stopDhcp(id: string): Promise<void> {
    const servers = [...(this.dhcp.get(id) ?? []), ...(this.ipv6.get(id) ?? [])];
    this.dhcp.delete(id);
    this.ipv6.delete(id);
    await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
  }

  /**
   * Undo of everything a setup may have done, each step independent. In the namespace
   * `within` (a setup's own, pinned), else in the record's, pinned here: none when it is
   * gone or another one is at its path.
   */
  private async unbuild(
    rec: SandboxRecord,
    within?: { nl: NetlinkHandle; path: string },
    op = 'rollback',
  ): Promise<string[]> {
    await this.stopDhcp(rec.sandboxId);
    const ns = within ? undefined : this.pinRecorded(rec);
    const path = within?.path ?? ns?.path;
    if (path === undefined) return []; // the namespace and all in it are gone: nothing to restore
    try {
      const errors = await this.unbuildIn(rec, path, within?.nl, op);
      return errors.map((m) => unpinned(m, { path }, rec.netnsPath));
    } finally {
      ns?.close();
    }
  }

  private async unbuildIn(rec: SandboxRecord, path: string, nlIn: NetlinkHandle | undefined, op: string) {
    const errors: string[] = [];
    const warnings: string[] = [];
    const leftAlone: string[] = [];
    let nl = nlIn;
    try {
      nl ??= crashCounting(NetlinkHandle.open(path), op);
    } catch (e) {
      return [`open netns ${rec.netnsPath}: ${(e as Error).message}`];
    }
    try {
      await removeFence(path, rec.fenceTable).catch((e: unknown) =>
        errors.push(`remove fence: ${(e as Error).message}`),
      );
      crashPoint(`${op}.unfenced`);
      // one batch for all taps and bridges; whatever it leaves, unbuildNic deletes singly
      const mark = linkMark(this.scope, rec.sandboxId);
      const batched = await deleteNicLinks(nl, rec.nics, mark).catch((e: unknown) => {
        this.o.log.warn('batch link delete failed; deleting one by one', { error: (e as Error).message });
        return false;
      });
      if (batched) crashPoint(`${op}.links-deleted`);
      for (const nic of [...rec.nics].reverse()) {
        const current = async (ifname: string) => (await readVethSnapshot(path, ifname)).routes;
        errors.push(
          ...(await unbuildNic(
            nl,
            nic,
            mark,
            current,
            (w) => warnings.push(w),
            (w) => leftAlone.push(w),
          )),
        );
      }
      // IPv6 back in NIC order, after every veth has its MAC: the kernel lists routes of
      // one prefix (each veth's fe80::/64) in the order they were made
      for (const nic of rec.nics) errors.push(...(await restoreVethIpv6(nl, nic.veth)));
    } finally {
      if (!nlIn) nl.close();
    }
    // no retry brings these back, so they are not errors (the record would never go)
    const shown = (list: string[]) => list.map((m) => unpinned(m, { path }, rec.netnsPath));
    if (warnings.length) this.o.log.warn('routes not restored', { sandboxId: rec.sandboxId, routes: shown(warnings) });
    if (leftAlone.length)
      this.o.log.warn('links not made by this sandbox left alone', {
        sandboxId: rec.sandboxId,
        links: shown(leftAlone),
      });
    return errors;
  }

  private async doTeardown(sandboxId: string): Promise<{ errors: string[] }> {
    const rec = this.records.get(sandboxId);
    if (!rec) return { errors: [] }; // idempotent: never set up, or already torn down
    rec.state = 'tearing-down';
    await this.o.store.save(rec);
    await this.step('teardown.recorded', sandboxId);
    const errors = await this.unbuild(rec, undefined, 'teardown');
    if (errors.length === 0) {
      this.records.delete(sandboxId);
      await this.o.store.remove(sandboxId);
      this.claims.release(sandboxId);
      this.drift.delete(sandboxId);
      this.o.log.info('sandbox torn down', { sandboxId });
    } else {
      this.o.log.error('teardown finished with errors; record kept', { sandboxId, errors });
    }
    return { errors };
  }

  /**
   * fds for vmwrapper: the key is "<sandboxId>:<token>". One holder at a time: refused
   * (EBUSY) while files of an earlier fetch are still attached (tap-holders.ts).
   */
  async fds(key: unknown): Promise<{ result: FdsResult; fds: number[] }> {
    if (typeof key !== 'string' || key.length > 512)
      throw badInput('key', typeof key === 'string' ? key.slice(0, 40) : key, 'must be a network key string');
    const sep = key.lastIndexOf(':');
    const id = key.slice(0, sep);
    const token = Buffer.from(key.slice(sep + 1));
    const found = sep > 0 ? this.records.get(id) : undefined;
    const want = Buffer.from(found?.token ?? '');
    if (!found || token.length !== want.length || !timingSafeEqual(token, want)) {
      throw new TapError('EACCES', `network key for sandbox ${JSON.stringify(id)} refused`, 'key');
    }
    if (found.state !== 'ready') throw new TapError('EAGAIN', `sandbox ${JSON.stringify(id)} is ${found.state}`, 'key');
    return this.serialize(id, async () => {
      const rec = this.records.get(id);
      if (rec !== found || rec.state !== 'ready')
        throw new TapError('EAGAIN', `sandbox ${JSON.stringify(id)} is ${rec?.state ?? 'gone'}`, 'key');
      const ns = this.pinRecorded(rec);
      if (!ns) throw new TapError('ENOENT', goneMessage(rec), 'key');
      let fds: number[];
      try {
        await checkNotHeld(id, ns.path, rec.nics);
        fds = openTaps(id, ns.path, rec.nics);
      } finally {
        ns.close();
      }
      return {
        fds,
        result: {
          sandboxId: rec.sandboxId,
          nics: rec.nics.map((n) => ({
            mac: n.guestMac,
            model: n.model,
            queues: n.queues,
            vnetHdr: true,
            tap: n.tap,
            vhost: false,
          })),
        },
      };
    });
  }

  /** Detaches whoever holds the sandbox's taps (tap-holders.ts), so that `fds` works again. */
  async revoke(id: unknown): Promise<{ sandboxId: string; revoked: TapHold[] }> {
    const sandboxId = checkSandboxId(id);
    return this.serialize(sandboxId, async () => {
      const rec = this.records.get(sandboxId);
      if (!rec) throw new TapError('ENOENT', `no sandbox ${JSON.stringify(sandboxId)}`, 'sandboxId');
      if (rec.state !== 'ready') throw new TapError('EAGAIN', `sandbox ${JSON.stringify(sandboxId)} is ${rec.state}`);
      const ns = this.pinRecorded(rec);
      if (!ns) throw new TapError('ENOENT', goneMessage(rec), 'sandboxId');
      let revoked: TapHold[];
      try {
        revoked = await revokeTaps(ns.path, rec.nics, linkMark(this.scope, sandboxId));
      } finally {
        ns.close();
      }
      this.o.log.info('tap holders revoked', { sandboxId, revoked });
      return { sandboxId, revoked };
    });
  }

  async status(id: unknown): Promise<SandboxStatus> {
    const sandboxId = checkSandboxId(id);
    const rec = this.records.get(sandboxId);
    if (!rec) throw new TapError('ENOENT', `no sandbox ${JSON.stringify(sandboxId)}`, 'sandboxId');
    const servers = this.dhcp.get(sandboxId) ?? [];
    let fence;
    let live;
    const ns = this.pinRecorded(rec);
    if (ns) {
      fence = await readFenceCounters(ns.path, rec.fenceTable).catch(() => undefined);
      try {
        const nl = NetlinkHandle.open(ns.path);
        try {
          const links = await nl.links();
          live = rec.nics.map((n) => links.filter((l) => [n.veth.ifname, n.bridge, n.tap].includes(l.name)));
        } finally {
          nl.close();
        }
      } catch {
        live = undefined;
      } finally {
        ns.close();
      }
    }
    return {
      sandboxId,
      state: rec.state,
      netnsPath: rec.netnsPath,
      createdAt: rec.createdAt,
      nics: rec.nics.map((n) => ({
        ...this.guestNic(n),
        routes: n.plan.classlessRoutes,
        unexpressible: n.plan.unexpressible,
        unrestorable: planRouteRestore(n.veth, n.veth.routes).unrestorable,
        warnings: n.plan.warnings,
      })),
      dhcp: servers.map((s) => ({ ...s.stats(), netns: rec.netnsPath })), // opened as /proc/self/fd/N
      ...(this.ipv6.get(sandboxId)?.length ? { ipv6: this.ipv6.get(sandboxId)!.map((s) => s.stats()) } : {}),
      ...(fence ? { fence } : {}),
      ...(live ? { live } : {}),
      drift: [...(this.drift.get(sandboxId) ?? []), ...(ns ? [] : [goneMessage(rec)])],
    };
  }

  list(): ListEntry[] {
    return [...this.records.values()].map((r) => ({
      sandboxId: r.sandboxId,
      state: r.state,
      netnsPath: r.netnsPath,
      createdAt: r.createdAt,
      ips: r.nics.map((n) => `${n.plan.ip}/${n.plan.prefixLen}`),
    }));
  }

  /**
   * After a restart: finish interrupted teardowns, roll back interrupted setups,
   * collect records whose netns is gone, check the topology of the rest (repairing
   * the fence and DHCP), and restart their DHCP servers.
   */
  async recover(): Promise<void> {
    const log = this.o.log.child('recover');
    for (const rec of await this.o.store.loadAll(log)) {
      this.records.set(rec.sandboxId, rec);
      const ns = this.pinRecorded(rec, log);
      if (!ns) {
        log.warn('orphan record: netns is gone; removing it', {
          sandboxId: rec.sandboxId,
          netnsPath: rec.netnsPath,
          state: rec.state,
        });
        this.records.delete(rec.sandboxId);
        await this.o.store.remove(rec.sandboxId);
        continue;
      }
      try {
        await this.recoverIn(rec, ns, log);
      } finally {
        ns.close();
      }
    }
    await collectOrphanLinks({
      netnsDirs: this.o.netnsDirs ?? [],
      records: [...this.records.values()],
      fenceTable: FENCE_TABLE,
      scope: this.scope,
      log,
    });
  }

  /** Recovery of one record whose namespace is there (pinned as ns). */
  private async recoverIn(rec: SandboxRecord, ns: PinnedNetns, log: Logger): Promise<void> {
    try {
      this.claims.claim(rec.sandboxId, rec.netnsPath, ns.path);
    } catch (e) {
      log.warn('two records share a netns', { sandboxId: rec.sandboxId, error: (e as Error).message });
    }
    if (rec.state !== 'ready') {
      log.warn(`interrupted ${rec.state === 'setting-up' ? 'setup: rolling back' : 'teardown: finishing'}`, {
        sandboxId: rec.sandboxId,
      });
      const errors = await this.unbuild(rec);
      if (errors.length === 0) {
        this.records.delete(rec.sandboxId);
        await this.o.store.remove(rec.sandboxId);
        this.claims.release(rec.sandboxId);
      } else {
        log.error('recovery left errors; record kept', { sandboxId: rec.sandboxId, errors });
      }
      return;
    }
    try {
      const drift = await this.checkTopology(rec, ns.path);
      this.drift.set(rec.sandboxId, drift);
      if (drift.length) log.warn('topology drift', { sandboxId: rec.sandboxId, drift });
      await this.startDhcp(rec, ns.path);
      log.info('sandbox recovered', { sandboxId: rec.sandboxId });
    } catch (e) {
      const error = unpinned((e as Error).message, ns, rec.netnsPath);
      log.error('cannot recover sandbox', { sandboxId: rec.sandboxId, error });
      this.drift.set(rec.sandboxId, [`recovery failed: ${error}`]);
    }
  }

  /** The drift of a ready record's links and fence from what setup made, in its namespace (at path). */
  private async checkTopology(rec: SandboxRecord, path: string): Promise<string[]> {
    const drift: string[] = [];
    const nl = NetlinkHandle.open(path);
    try {
      const links = await nl.links();
      const mark = linkMark(this.scope, rec.sandboxId);
      for (const nic of rec.nics) {
        // only the links this sandbox made count (and get marked): not others with their names
        const find = (name: string, index: number | undefined, kind: 'bridge' | 'tun') => {
          const l = links.find((x) => x.name === name);
          if (l && !ownLink(l, { name, index, kind, mark })) drift.push(`${name} is not the link this sandbox made`);
          return l && ownLink(l, { name, index, kind, mark }) ? l : undefined;
        };
        const br = find(nic.bridge, nic.bridgeIndex, 'bridge');
        const tap = find(nic.tap, nic.tapIndex, 'tun');
        const veth = links.find((l) => l.name === nic.veth.ifname);
        if (!br) drift.push(`bridge ${nic.bridge} missing`);
        if (!tap) drift.push(`tap ${nic.tap} missing`);
        if (!veth) drift.push(`veth ${nic.veth.ifname} missing`);
        if (br && veth && veth.master !== br.index) drift.push(`veth ${nic.veth.ifname} not enslaved to ${nic.bridge}`);
        if (br && tap && tap.master !== br.index) drift.push(`tap ${nic.tap} not enslaved to ${nic.bridge}`);
        for (const l of [br, tap]) {
          if (!l || l.alias === mark) continue;
          await nl.setLink(l.index, l.name, { alias: mark });
          drift.push(`${l.name} was not marked ${mark}: marked`);
        }
      }
    } finally {
      nl.close();
    }
    if (!(await fenceExists(path, rec.fenceTable))) {
      drift.push('fence table missing: re-applied');
      await applyFence(
        path,
        rec.fenceTable,
        rec.nics.map((n) => ({ bridge: n.bridge, veth: n.veth.ifname, tap: n.tap, guestMac: n.guestMac })),
      );
    }
    return drift;
  }

  async close(): Promise<void> {
    await Promise.all([...this.dhcp.keys()].map((id) => this.stopDhcp(id)));
  }

  has(id: string): boolean {
    return this.records.has(id);
  }
}

/** Why a record's namespace cannot be used: gone, or another namespace at its path. */
function goneMessage(rec: SandboxRecord): string {
  return `sandbox ${JSON.stringify(rec.sandboxId)}: its network namespace is gone (${rec.netnsPath} leads to none, or to another namespace)`;
}
