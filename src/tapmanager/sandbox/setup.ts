// A setup: validate -> snapshot -> plan -> record (write-ahead) -> apply -> record
// ready; a failure rolls back what it made. Runs under the sandbox's lock. Each NIC is
// planned, built and undone by its binding (bindings/); the NICs of one sandbox are
// planned and built concurrently, and one NIC's failure rolls back the whole sandbox.
import { createHash, randomBytes } from 'node:crypto';
import { SERVER_PORT } from '../../dhcp/constants';
import { closeFd, udpSocketBoundToDevice } from '../../native';
import type { NetlinkHandle, NetlinkReader } from '../../net/netlink';
import { bindingOf, podBinding, type NicSpec } from '../bindings';
import { TapError, badInput } from '../errors';
import { applyFence } from '../fence';
import type { FenceNic } from '../fence/types';
import { linkMark } from '../link-mark';
import type { PinnedNetns } from '../netns-pin';
import type { SetupRequest, SetupResult } from '../protocol';
import { RECORD_VERSION, NicRecord, SandboxRecord } from '../record';
import { planNicLinks } from '../topology';
import { FENCE_TABLE, step, supervision, type ManagerContext } from './context';
import { unbuild } from './unbuild';
import { checkGuestNetworks6 } from '../bindings/masquerade/pod';

function requestHash(req: SetupRequest): string {
  return createHash('sha256').update(JSON.stringify(req)).digest('hex');
}

export function setupResult(rec: SandboxRecord): SetupResult {
  return {
    sandboxId: rec.sandboxId,
    netKey: `${rec.sandboxId}:${rec.token}`,
    nics: rec.nics.map((n) => bindingOf(n).describe(n)),
  };
}

/** The fence entries of a record's NICs (those whose binding fences). */
export function fenceNics(rec: SandboxRecord): FenceNic[] {
  return rec.nics.flatMap((n) => bindingOf(n).fence(n) ?? []);
}

/**
 * Waits for every one of ops, then throws the first failure in their order: nothing is
 * still in flight when the caller rolls back.
 */
async function all<T>(ops: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(ops);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** Two NICs of one guest never share a MAC: a spec's macAddress may be another NIC's pod interface MAC. */
function checkGuestMacs(req: SetupRequest, nics: NicRecord[]): void {
  if (!req.nics) return; // without nics every MAC is a pod interface's own
  const seen = new Map<string, number>();
  for (const [i, n] of nics.entries()) {
    const j = seen.get(n.guestMac);
    if (j !== undefined) {
      const own = req.nics[i]?.macAddress !== undefined;
      throw badInput(
        own ? `nics[${i}].macAddress` : `nics[${i}].podInterface`,
        own ? req.nics[i]!.macAddress : n.veth.ifname,
        `gives the guest MAC ${n.guestMac}, which nics[${j}] has too`,
      );
    }
    seen.set(n.guestMac, i);
  }
}

function nicSummary(n: NicRecord): string {
  const addr = n.plan ? `${n.plan.ip}/${n.plan.prefixLen}` : n.plan6 ? n.plan6.addresses.join(',') : 'L2 only';
  return `${n.name ? `${n.name}: ` : ''}${n.veth.ifname}->${n.tap} ${n.model} ${n.guestMac} ${addr}`;
}

export async function doSetup(
  ctx: ManagerContext,
  req: SetupRequest,
  specs: NicSpec[],
  ns: PinnedNetns,
  nl: NetlinkHandle,
  reader: NetlinkReader,
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
  // the DHCP sockets, made in the build's namespace windows, until the servers own them
  const dhcpFds = new Map<NicRecord, number>();
  let rec: SandboxRecord | undefined;
  try {
    // 1. snapshot every pod interface before touching anything, and plan what the guest
    // gets and the links it builds: names and indexes no link in the netns has
    const podLinks = await reader.links();
    const made = planNicLinks(podLinks, specs.length);
    const nicRecs = await all(
      specs.map((spec, i) =>
        podBinding(spec.binding).plan(
          {
            sandboxId: req.sandboxId,
            netnsPath: req.netnsPath,
            nsPath: ns.path,
            links: made[i]!,
            podLinks,
            reader,
            ...(req.dns ? { dns: req.dns } : {}),
            log,
          },
          spec,
        ),
      ),
    );
    checkGuestMacs(req, nicRecs);
    checkGuestNetworks6(nicRecs);
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
    // 3 and 4. build the NICs, all at once, while the fence goes in on a pool thread:
    // its rules match interface names, so they need no link to exist, and all are done
    // (or all settled, for the rollback) before anything else happens
    const fencing = applyFence(ns.path, rec.fenceTable, fenceNics(rec));
    fencing.catch(() => undefined); // handled below; not an unhandled rejection meanwhile
    const mark = linkMark(ctx.scope, req.sandboxId);
    try {
      const inWindow = (nic: NicRecord) => {
        const binding = bindingOf(nic);
        if (binding.servesDhcp(nic)) dhcpFds.set(nic, udpSocketBoundToDevice(binding.dhcpInterface(nic), SERVER_PORT));
      };
      const supervise = supervision(ctx, rec);
      await all(rec.nics.map((nic) => bindingOf(nic).apply({ nl, nsPath: ns.path, mark, inWindow, supervise }, nic)));
    } catch (e) {
      await fencing.catch(() => undefined);
      throw e;
    }
    await step(ctx, 'setup.built', req.sandboxId);
    await fencing;
    await step(ctx, 'setup.fenced', req.sandboxId);
    // 5. DHCP, listening before we answer
    await ctx.dhcp.start(rec, ns.path, dhcpFds);
    await step(ctx, 'setup.dhcp', req.sandboxId);
    rec.state = 'ready';
    await ctx.o.store.save(rec);
    await step(ctx, 'setup.ready', req.sandboxId);
    // logged once the reply is out (the reply is written in this turn of the event loop):
    // its JSON and the write to stderr are no part of the setup's latency
    const result = setupResult(rec);
    const line = { sandboxId: rec.sandboxId, nics: rec.nics.map(nicSummary) };
    setImmediate(() => log.info('sandbox ready', line));
    return result;
  } catch (e) {
    for (const fd of dhcpFds.values()) closeFd(fd);
    dhcpFds.clear();
    if (!rec) registry.claims.release(req.sandboxId);
    else {
      const errors = await unbuild(ctx, rec, { nl, path: ns.path });
      if (errors.length === 0) await registry.forget(rec.sandboxId);
      else {
        log.error('rollback of a failed setup left errors; record kept for a later teardown', {
          sandboxId: rec.sandboxId,
          errors: errors.map((x) => x.message),
        });
      }
      log.warn('setup failed and was rolled back', { sandboxId: rec.sandboxId, error: (e as Error).message });
    }
    throw e;
  }
}
