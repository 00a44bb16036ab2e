// A setup: validate -> snapshot -> plan -> record (write-ahead) -> apply -> record
// ready; a failure rolls back what it made. Runs under the sandbox's lock.
import { createHash, randomBytes } from 'node:crypto';
import { NetlinkHandle } from '../../net/netlink';
import { randomMac } from '../../net/mac';
import { crashCounting } from '../crash-points';
import { TapError, badInput } from '../errors';
import { applyFence } from '../fence';
import { linkMark } from '../link-mark';
import type { PinnedNetns } from '../netns-pin';
import { planGuestNetwork, PlanError } from '../plan/guest-network';
import { readVethSnapshot } from '../plan/read-veth';
import type { GuestNic, SetupRequest, SetupResult } from '../protocol';
import { RECORD_VERSION, NicRecord, SandboxRecord } from '../record';
import { BRIDGE_IP, buildNic, planNicLinks } from '../topology';
import type { NicInput } from '../validate';
import { FENCE_TABLE, step, type ManagerContext } from './context';
import { unbuild } from './unbuild';

function requestHash(req: SetupRequest): string {
  return createHash('sha256').update(JSON.stringify(req)).digest('hex');
}

export function setupResult(rec: SandboxRecord): SetupResult {
  return {
    sandboxId: rec.sandboxId,
    netKey: `${rec.sandboxId}:${rec.token}`,
    nics: rec.nics.map((n) => guestNic(n)),
  };
}

export function guestNic(n: NicRecord): GuestNic {
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

export async function doSetup(
  ctx: ManagerContext,
  req: SetupRequest,
  inputs: NicInput[],
  ns: PinnedNetns,
): Promise<SetupResult> {
  const { registry } = ctx;
  const existing = registry.records.get(req.sandboxId);
  if (existing) {
    if (requestHash(existing.request) === requestHash(req) && existing.state === 'ready') return setupResult(existing);
    throw new TapError(
      'EEXIST',
      `sandbox ${JSON.stringify(req.sandboxId)} already exists with a different request (state ${existing.state})`,
      'sandboxId',
    );
  }
  const log = ctx.o.log.child('setup');
  // before anything is read or built: a second setup in this netns is refused from here on
  registry.claims.claim(req.sandboxId, req.netnsPath, ns.path);
  let nl: NetlinkHandle;
  try {
    nl = crashCounting(NetlinkHandle.open(ns.path), 'setup');
  } catch (e) {
    registry.claims.release(req.sandboxId);
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
        model: req.nicModel ?? ctx.o.nicModel ?? 'virtio-net-pci',
        queues: req.queues ?? 1,
        plan,
      });
    }
    await step(ctx, 'setup.planned', req.sandboxId);
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
    await ctx.o.store.save(rec);
    registry.records.set(rec.sandboxId, rec);
    await step(ctx, 'setup.recorded', req.sandboxId);
    let n = 0;
    const hook = (): void => {
      n++;
      if (ctx.o.failAfterStep !== undefined && n > ctx.o.failAfterStep) {
        throw new TapError('EIO', `injected failure after step ${ctx.o.failAfterStep}`);
      }
    };
    // 3 and 4. build the links while the fence goes in on a pool thread: its rules
    // match interface names, so they need no link to exist, and both are done (or both
    // settled, for the rollback) before anything else happens
    const fencing = applyFence(
      ns.path,
      rec.fenceTable,
      rec.nics.map((x) => ({ bridge: x.bridge, veth: x.veth.ifname, tap: x.tap, guestMac: x.guestMac })),
    );
    fencing.catch(() => undefined); // handled below; not an unhandled rejection meanwhile
    try {
      for (const nic of rec.nics) {
        await buildNic(nl, ns.path, nic, linkMark(ctx.scope, req.sandboxId));
        hook();
      }
    } catch (e) {
      await fencing.catch(() => undefined);
      throw e;
    }
    await fencing;
    await step(ctx, 'setup.fenced', req.sandboxId);
    hook();
    // 5. DHCP, listening before we answer
    await ctx.dhcp.start(rec, ns.path);
    await step(ctx, 'setup.dhcp', req.sandboxId);
    hook();
    rec.state = 'ready';
    await ctx.o.store.save(rec);
    await step(ctx, 'setup.ready', req.sandboxId);
    log.info('sandbox ready', {
      sandboxId: rec.sandboxId,
      nics: rec.nics.map((x) => `${x.veth.ifname}->${x.tap} ${x.guestMac} ${x.plan.ip}/${x.plan.prefixLen}`),
    });
    return setupResult(rec);
  } catch (e) {
    if (!rec) registry.claims.release(req.sandboxId);
    else {
      const errors = await unbuild(ctx, rec, { nl, path: ns.path });
      if (errors.length === 0) await registry.forget(rec.sandboxId);
      else {
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
