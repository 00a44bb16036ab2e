// The pod-sandbox lifecycle behind the CRI RuntimeService: run (netns, CNI ADD, the network
// spec's extra networks (vm-network.ts), tapmanager setup, rolled back in reverse on any
// failure), stop (network down, record kept), remove, status and list. Operations on one
// sandbox are serialized; records persist on disk.
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { Attachment, CniRunner } from '../cni/network';
import { defaultNetwork, loadNetworks, NetworkConfigList, parseConfList } from '../cni/config';
import { findPlugin } from '../cni/exec';
import { forTapwire } from '../cni/version';
import { isNoSuchSandbox, isUnreachable, TapmanagerApi } from '../tapmanager/client';
import type { Logger } from '../util/log';
import { silentLogger } from '../util/log';
import { quote } from '../util/quote';
import {
  matchesFilter,
  PodSandboxConfigMsg,
  PodSandboxFilterMsg,
  toPodSandbox,
  toPodSandboxStatus,
  validateConfig,
} from './convert';
import { CriError, invalidArgument, notFound } from './errors';
import { KeyedLock } from '../util/keyed-lock';
import { NameIndex } from './names';
import { createPersistentNetns, ensureNetnsDir, removePersistentNetns } from './netns';
import { RecordStore, SandboxRecord } from './record';
import {
  attachExtras,
  buildNics,
  detachExtras,
  NETWORK_STATUS_KEY,
  networkStatus,
  planVmNetwork,
  readSpec,
  type VmNetworkPlan,
} from './vm-network';
import { status as Status } from '@grpc/grpc-js';

export const DEFAULT_STATE_DIR = '/var/lib/tapwire/cri';
export const DEFAULT_NETNS_DIR = '/run/tapwire/netns';
export const POD_IFNAME = 'eth0';

/** The parts of a sandbox's network, in the order RunPodSandbox builds them. */
type Step = 'netns' | 'loopback' | 'cni' | 'extra' | 'tapmanager';

export interface SandboxServiceOptions {
  cniConfDir: string;
  cniBinDirs: string[];
  stateDir: string;
  netnsDir: string;
  tapmanager: TapmanagerApi;
  /** File name of a sandbox's netns under netnsDir (default: the sandbox id). */
  netnsName?: (id: string) => string;
  /** Run CNI plugins in this netns instead of our own (tests keep the root netns clean). */
  cniHostNetns?: string;
  /** NetworkAttachmentDefinition files for the spec's multus networks (cni/nad.ts) */
  networkAttachmentsDir?: string;
  logger?: Logger;
}

const LOOPBACK: NetworkConfigList = parseConfList(
  JSON.stringify({ cniVersion: '1.0.0', name: 'cni-loopback', plugins: [{ type: 'loopback' }] }),
  '(built in)',
);

function nowNanos(): string {
  const ms = BigInt(Date.now());
  return (ms * 1_000_000n + (process.hrtime.bigint() % 1_000_000n)).toString();
}

export class SandboxService {
  private readonly records = new Map<string, SandboxRecord>();
  private readonly store: RecordStore;
  private readonly cni: CniRunner;
  private readonly lock = new KeyedLock();
  private readonly names = new NameIndex();
  private readonly log: Logger;
  private netnsDirReady: Promise<void> | undefined;

  constructor(readonly opts: SandboxServiceOptions) {
    this.log = opts.logger ?? silentLogger;
    this.store = new RecordStore(opts.stateDir);
    this.cni = new CniRunner({
      binDirs: opts.cniBinDirs,
      cacheDir: path.join(opts.stateDir, 'cni-cache'),
      ...(opts.cniHostNetns ? { hostNetns: opts.cniHostNetns } : {}),
      logger: this.log.child('cni'),
    });
  }

  /** Loads the records a previous run left. */
  async start(): Promise<void> {
    const { records, errors } = await this.store.loadAll();
    for (const e of errors) this.log.warn('skipping sandbox record', { error: e.message });
    records.sort(byCreation);
    for (const r of records) {
      this.records.set(r.id, r);
      try {
        this.names.reserve(r.metadata, r.id);
      } catch (e) {
        // Two records for one name (left by a version that reserved none): both stay listed
        // so they can be removed; the older keeps the name.
        this.log.warn('sandbox name held twice', { id: r.id, error: (e as Error).message });
      }
    }
    this.log.info('loaded sandboxes', { count: records.length });
  }

  /** NetworkReady: false with a reason while no CNI config is loadable. */
  networkReady(): { ready: boolean; reason: string; message: string } {
    const { networks, invalid } = loadNetworks(this.opts.cniConfDir);
    if (networks.length) return { ready: true, reason: '', message: '' };
    const why = invalid.length ? invalid.map((e) => e.message).join('; ') : 'no .conflist, .conf or .json files';
    return {
      ready: false,
      reason: 'NetworkPluginNotReady',
      message: `no valid CNI network config in ${this.opts.cniConfDir}: ${why}`,
    };
  }

  async run(config: PodSandboxConfigMsg | null | undefined, runtimeHandler: string): Promise<string> {
    const c = validateConfig(config);
    let net: NetworkConfigList;
    try {
      net = defaultNetwork(this.opts.cniConfDir);
    } catch (e) {
      throw new CriError(Status.FAILED_PRECONDITION, `network not ready: ${(e as Error).message}`);
    }
    // the VM network spec, checked and its NADs found before anything is built
    const spec = readSpec(c.annotations);
    const plan = spec && planVmNetwork(spec, c.metadata.namespace, this.opts.networkAttachmentsDir);
    const id = randomBytes(32).toString('hex');
    // Reserved before the first await, so a concurrent duplicate is refused, not queued.
    this.names.reserve(c.metadata, id);
    const rec: SandboxRecord = {
      v: 1,
      id,
      ...c,
      runtimeHandler,
      createdAt: nowNanos(),
      state: 'SANDBOX_NOTREADY',
      netnsPath: path.join(this.opts.netnsDir, (this.opts.netnsName ?? ((x: string) => x))(id)),
      network: { name: net.name, ifName: POD_IFNAME, loopback: this.hasLoopbackPlugin() },
      networkDown: false,
      ...(plan ? { vmNetwork: plan.state } : {}),
    };
    try {
      return await this.lock.run(id, () => this.runLocked(rec, net, plan));
    } catch (e) {
      // Rolled back: the name is free again. A record left for Stop/Remove keeps it.
      if (!this.records.has(id)) this.names.release(c.metadata, id);
      throw e;
    }
  }

  private async runLocked(rec: SandboxRecord, net: NetworkConfigList, plan?: VmNetworkPlan): Promise<string> {
    const { id, metadata } = rec;
    this.log.info('RunPodSandbox', { id, pod: `${metadata.namespace}/${metadata.name}`, network: net.name });
    const attempted = new Set<Step>();
    try {
      // The record goes first, so a crash at any later point leaves something Stop/Remove can clean.
      await this.save(rec);
      this.netnsDirReady ??= ensureNetnsDir(this.opts.netnsDir).catch((e: unknown) => {
        this.netnsDirReady = undefined;
        throw e;
      });
      await this.netnsDirReady;
      await createPersistentNetns(rec.netnsPath); // cleans up after itself when it fails
      attempted.add('netns');
      attempted.add('loopback');
      if (rec.network.loopback) await this.cni.add(LOOPBACK, this.attachment(rec, 'lo'));
      attempted.add('cni');
      rec.cniResult = await this.cni.add(net, this.attachment(rec, POD_IFNAME));
      attempted.add('extra');
      if (plan) {
        await attachExtras(this.cni, plan, this.extraAttachment(rec));
        await this.save(rec);
      }
      attempted.add('tapmanager');
      const pod = {
        sandboxId: id,
        netnsPath: rec.netnsPath,
        hostname: rec.hostname,
        podName: metadata.name,
        podNamespace: metadata.namespace,
        ...(rec.dns ? { dns: rec.dns } : {}),
      };
      rec.tap = await this.tapmanagerSetup(
        attempted,
        rec.vmNetwork
          ? // the per-NIC request (docs/protocol.md); the top-level cniResult is absent with it
            { ...pod, nics: buildNics(rec.vmNetwork, POD_IFNAME, rec.cniResult) }
          : { ...pod, cniResult: forTapwire(rec.cniResult) },
      );
      rec.state = 'SANDBOX_READY';
      await this.save(rec);
      return id;
    } catch (e) {
      await this.rollback(rec, e, attempted);
      throw e;
    }
  }

  /** tapmanager setup; a request that never reached it (no socket, refused) needs no teardown. */
  private async tapmanagerSetup(attempted: Set<Step>, req: SetupArgs) {
    try {
      return await this.opts.tapmanager.setup(req);
    } catch (e) {
      if (isUnreachable(e)) attempted.delete('tapmanager');
      throw e;
    }
  }

  private async rollback(rec: SandboxRecord, cause: unknown, attempted: Set<Step>): Promise<void> {
    this.log.warn('RunPodSandbox failed, rolling back', { id: rec.id, error: cause, attempted: [...attempted] });
    const errors = await this.teardownNetwork(rec, net(rec), attempted);
    if (errors.length === 0) {
      this.records.delete(rec.id);
      await this.store.remove(rec.id);
      return;
    }
    // Keep it NOTREADY: the kubelet garbage-collects NOTREADY sandboxes (Stop, Remove) and retries.
    rec.error = `run failed: ${(cause as Error).message}; rollback incomplete: ${errors.join('; ')}`;
    this.log.error('rollback incomplete', { id: rec.id, errors });
    await this.save(rec).catch(() => {});
  }

  async stop(id: string): Promise<void> {
    const full = this.resolve(id) ?? id;
    await this.lock.run(full, () => this.stopLocked(this.get(full)));
  }

  private async stopLocked(rec: SandboxRecord): Promise<void> {
    if (rec.networkDown && rec.state === 'SANDBOX_NOTREADY') return;
    this.log.info('StopPodSandbox', { id: rec.id });
    rec.state = 'SANDBOX_NOTREADY';
    const errors = await this.teardownNetwork(rec, net(rec));
    if (errors.length) {
      await this.save(rec);
      throw new CriError(Status.UNKNOWN, `failed to stop sandbox ${rec.id}: ${errors.join('; ')}`);
    }
    rec.networkDown = true;
    await this.save(rec);
  }

  async remove(given: string): Promise<void> {
    const id = this.resolve(given);
    if (id === undefined) return; // already removed: not an error
    await this.lock.run(id, async () => {
      const rec = this.records.get(id);
      if (!rec) return; // already removed: not an error
      await this.stopLocked(rec);
      this.log.info('RemovePodSandbox', { id });
      this.records.delete(id);
      await this.store.remove(id);
      this.names.release(rec.metadata, id);
    });
  }

  async status(
    id: string,
    verbose: boolean,
  ): Promise<{ status: Record<string, unknown>; info: Record<string, string> }> {
    const rec = this.get(this.resolve(id) ?? id);
    const info: Record<string, string> = {};
    if (verbose) {
      let topology: unknown = rec.tap?.nics ?? null;
      if (!rec.networkDown && rec.tap) {
        topology = await this.opts.tapmanager
          .status(id)
          .catch((e: unknown) => ({ error: (e as Error).message, nics: rec.tap?.nics }));
      }
      info.info = JSON.stringify({
        netnsPath: rec.netnsPath,
        network: rec.network,
        cniResult: rec.cniResult ?? null,
        hostname: rec.hostname,
        portMappings: rec.portMappings,
        ...(rec.error ? { error: rec.error } : {}),
      });
      info.topology = JSON.stringify(topology);
      // Multus's network-status shape, for every network of the pod (the pod network alone without a spec)
      const down = rec.networkDown || rec.state !== 'SANDBOX_READY';
      info[NETWORK_STATUS_KEY] = JSON.stringify(
        down ? [] : networkStatus(rec.network.name, rec.network.ifName, rec.cniResult, rec.vmNetwork),
      );
      if (rec.vmNetwork) info.vmNetworkSpec = JSON.stringify(rec.vmNetwork.spec);
      if (rec.tap && !rec.networkDown) info.netKey = rec.tap.netKey;
    }
    return { status: toPodSandboxStatus(rec), info };
  }

  list(filter: PodSandboxFilterMsg | null | undefined): Record<string, unknown>[] {
    return [...this.records.values()]
      .filter((r) => matchesFilter(r, filter))
      .sort(byCreation)
      .map(toPodSandbox);
  }

  private get(id: string): SandboxRecord {
    const rec = this.records.get(id);
    if (!rec) throw notFound(`pod sandbox ${quote(id)} not found`);
    return rec;
  }

  /**
   * The id of the sandbox `id` names: its full id, or a prefix only one sandbox's id starts
   * with (crictl prints 13 characters; containerd takes any unique prefix). Undefined when
   * none matches; INVALID_ARGUMENT when several do.
   */
  private resolve(id: string): string | undefined {
    if (this.records.has(id)) return id;
    if (id === '') return undefined;
    const matches = [...this.records.keys()].filter((k) => k.startsWith(id));
    if (matches.length > 1) {
      throw invalidArgument(`pod sandbox id ${quote(id)} is ambiguous: ${matches.length} sandboxes' ids start with it`);
    }
    return matches[0];
  }

  private async save(rec: SandboxRecord): Promise<void> {
    this.records.set(rec.id, rec);
    await this.store.save(rec);
  }

  private hasLoopbackPlugin(): boolean {
    try {
      findPlugin('loopback', this.opts.cniBinDirs);
      return true;
    } catch {
      return false;
    }
  }

  private attachment(rec: SandboxRecord, ifName: string): Attachment {
    return {
      containerId: rec.id,
      netns: rec.netnsPath,
      ifName,
      pod: {
        podNamespace: rec.metadata.namespace,
        podName: rec.metadata.name,
        infraContainerId: rec.id,
        podUid: rec.metadata.uid,
      },
      capabilities: { portMappings: rec.portMappings, ...(rec.dns ? { dns: rec.dns } : {}) },
    };
  }

  /** An extra network's attachment: the pod's identity, no capabilities (Multus gives port mappings and DNS to the pod network only). */
  private extraAttachment(rec: SandboxRecord): Omit<Attachment, 'ifName'> {
    const { ifName: _, ...a } = this.attachment(rec, '');
    return { ...a, capabilities: {} };
  }

  /**
   * Undoes a sandbox's network in reverse, every step attempted whatever the others did:
   * tapmanager teardown (restores the veth), CNI DEL of the pod network and of loopback,
   * netns removal. Each step is idempotent. Returns the errors. With `only` (a rollback),
   * just the steps that were attempted.
   */
  private async teardownNetwork(
    rec: SandboxRecord,
    current: NetworkConfigList | string,
    only?: Set<Step>,
  ): Promise<string[]> {
    const errors: string[] = [];
    const step = async (which: Step, name: string, fn: () => Promise<void>): Promise<void> => {
      if (only && !only.has(which)) return;
      try {
        await fn();
      } catch (e) {
        errors.push(`${name}: ${(e as Error).message}`);
      }
    };
    await step('tapmanager', 'tapmanager teardown', async () => {
      try {
        const r = await this.opts.tapmanager.teardown(rec.id);
        if (r.errors.length) throw new Error(r.errors.join('; '));
      } catch (e) {
        if (isNoSuchSandbox(e)) return;
        throw e;
      }
    });
    await step('extra', 'extra networks', async () => {
      const errors = await detachExtras(this.cni, rec.vmNetwork, this.extraAttachment(rec));
      if (errors.length) throw new Error(errors.map((e) => e.message).join('; '));
    });
    await step('cni', `CNI DEL "${rec.network.name}"`, () =>
      this.cni.del(current, this.attachment(rec, rec.network.ifName)),
    );
    if (rec.network.loopback)
      await step('loopback', 'CNI DEL loopback', () => this.cni.del(LOOPBACK, this.attachment(rec, 'lo')));
    await step('netns', 'remove netns', () => removePersistentNetns(rec.netnsPath));
    if (errors.length) this.log.warn('network teardown incomplete', { id: rec.id, errors });
    return errors;
  }
}

type SetupArgs = Parameters<TapmanagerApi['setup']>[0];

/** Oldest first by createdAt (decimal nanoseconds); never throws, whatever a record holds. */
function byCreation(a: SandboxRecord, b: SandboxRecord): number {
  const x = String(a.createdAt);
  const y = String(b.createdAt);
  return x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
}

/** The network to DEL with: the cache holds the config ADD used; by name is enough. */
function net(rec: SandboxRecord): string {
  return rec.network.name;
}
