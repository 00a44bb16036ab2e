// VM pods behind the proxy: the calls the proxy takes part in (every other call, and these
// calls for ordinary pods, are forwarded untouched).
//  - RunPodSandbox of a VM pod (vm-requests.ts): the backend makes the sandbox with its own
//    handler (netns, CNI, pause); then its verbose status gives the sandbox process and the
//    CNI result (backend-sandbox.ts), the netns is pinned where tapwire owns it
//    (pin-netns.ts) and tapmanager sets the pod up with the kernel's prefix lengths. Any
//    failure after the backend made the sandbox rolls back: tapmanager teardown, unpin, and
//    the backend's StopPodSandbox and RemovePodSandbox.
//  - CreateContainer in a VM pod: the network key, the fd socket and its directory.
//  - StopPodSandbox: tapmanager teardown first (the veth is restored before CNI DEL), then the
//    backend; a teardown that fails fails the call (the kubelet retries; teardown is
//    idempotent), so CNI does not run on a half-restored veth while tapmanager may come back.
//    Once teardown has failed for stopTeardownAttempts calls over stopTeardownGraceMs, the
//    stop is forwarded anyway, with an error logged (a pod must be able to stop with tapmanager
//    gone for good); the record and pin stay, and reconciliation tears tapwire down once
//    tapmanager answers again.
//  - RemovePodSandbox: the backend, then teardown again (idempotent) and the record and pin;
//    a teardown that fails leaves the record to reconciliation and the call succeeds.
//  - PodSandboxStatus (verbose) adds tapwire's view under info["tapwire"]; a VM pod whose
//    repair failed has it with `error` in every status.
//  - A VM network spec (annotation tapwire.io/network-spec, ../vm-network.ts) is checked, and
//    its NADs found, before the backend is called; the backend runs CNI for the pod network
//    only, and the proxy adds the spec's multus networks (net1, net2, ...) to the netns the
//    backend made, as Multus would, and deletes them (in reverse) after tapmanager's teardown
//    and before the backend's StopPodSandbox/RemovePodSandbox, and on rollback. tapmanager gets
//    one NIC per interface of the spec. An ordinary pod's annotation is forwarded untouched.
//  - Reconciliation (reconcile.ts), at start and periodically: what the backend stopped or
//    lost is torn down, a tapmanager record of no sandbox is torn down, a running VM pod
//    tapmanager lost is set up again, a running sandbox with the proxy's mark and no record
//    (tapwire-cri stopped right after the backend made it) is adopted and set up; each with a
//    log line.
// Calls on one sandbox are serialized.
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SetupRequest } from '../../tapmanager/protocol';
import { crashHookFromEnv } from '../../tapmanager/crash-points';
import { isNoSuchSandbox, type TapmanagerApi } from '../../tapmanager/client';
import type { CniRunner } from '../../cni/network';
import { defaultNetwork } from '../../cni/config';
import type { Logger } from '../../util/log';
import { silentLogger } from '../../util/log';
import { CriError, toGrpcStatus } from '../errors';
import {
  attachExtras,
  buildNics,
  detachExtras,
  NETWORK_STATUS_KEY,
  networkStatus,
  planVmNetwork,
  readSpec,
  type VmNetworkPlan,
  type VmNetworkState,
} from '../vm-network';
import { podHostname } from '../hostname';
import { KeyedLock } from '../../util/keyed-lock';
import { podInterfaces, readBackendSandbox, toCniResult } from './backend-sandbox';
import { endToEnd } from './metadata';
import { BackendStatusError, backendUnary, forwardUnary, type UnaryHandler } from './passthrough';
import {
  backendRunRequest,
  createRequestSandbox,
  isMarkedVmPod,
  readRunRequest,
  refuseReservedAnnotations,
  vmContainerRequest,
  withTapwireInfo,
  type VmSelector,
} from './vm-requests';
import { planReconcile, type ReconcileAction } from './reconcile';
import type { VmPodIdentity, VmPodRecord, VmPodStore } from './vm-store';
import { withEmbedded } from './wire';

const RT = '/runtime.v1.RuntimeService/';
/** How long the proxy's own calls to the backend may take (status, rollback). */
const OWN_CALL_MS = 30_000;
/** tests only (crash-points.ts): the hook TAPWIRE_TEST_CRASH_AFTER names, none in production */
const crashHook = crashHookFromEnv();

export interface NetnsPinner {
  pin(sandboxId: string, pid: number): Promise<string>;
  unpin(sandboxId: string): Promise<void>;
}

export interface VmPodsOptions {
  backend: grpc.Client;
  /** the decoding runtime.v1 RuntimeService definition (proto.ts) */
  runtime: grpc.ServiceDefinition;
  tapmanager: TapmanagerApi;
  selector: VmSelector;
  /** tapmanager's fd socket, as VM containers see it (its directory is mounted there) */
  fdSocket: string;
  pins: NetnsPinner;
  store: VmPodStore;
  /** prefix lengths of ifname's addresses in the netns, by address */
  prefixes(netnsPath: string, ifname: string): Promise<Map<string, number>>;
  /** how often to reconcile after the pass at start (ms; 0: at start only; default 60 s) */
  reconcileMs?: number;
  /** runs the CNI of a network spec's multus networks (its cache under the state dir) */
  cni?: CniRunner;
  /** NetworkAttachmentDefinition files (cni/nad.ts) */
  networkAttachmentsDir?: string;
  /** the CNI configs the backend uses: the first one's name names the pod network in network-status */
  cniConfDir?: string;
  /** StopPodSandbox calls a failing teardown fails before the stop is forwarded anyway (default 5) */
  stopTeardownAttempts?: number;
  /** ... and for at least this long since the first failure (ms, default 120 s) */
  stopTeardownGraceMs?: number;
  logger?: Logger;
}

interface PodConfig {
  metadata?: { name?: string; namespace?: string } | null;
  annotations?: Record<string, string> | null;
  hostname?: string;
  dns_config?: { servers?: string[]; searches?: string[]; options?: string[] } | null;
}

export class VmPods {
  private readonly pods = new Map<string, VmPodRecord>();
  private readonly lock = new KeyedLock();
  private readonly log: Logger;
  /** VM pods whose repair failed, with why (reported in their PodSandboxStatus) */
  private readonly broken = new Map<string, string>();
  private reconciling: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** VM pods whose StopPodSandbox failed on tapmanager teardown: since when, how often */
  private readonly stopFailures = new Map<string, { since: number; count: number }>();
  /** RunPodSandbox calls of VM pods: started so far, and in flight (adoption waits for none) */
  private runsStarted = 0;
  private runsInFlight = 0;

  constructor(private readonly o: VmPodsOptions) {
    this.log = o.logger ?? silentLogger;
  }

  /** Loads the records a previous run left. */
  async start(): Promise<void> {
    const { records, errors } = await this.o.store.loadAll();
    for (const e of errors) this.log.warn('skipping VM pod record', { error: e });
    for (const r of records) this.pods.set(r.id, r);
    this.log.info('loaded VM pods', { count: records.length });
  }

  /**
   * Brings the proxy's records, the backend's sandboxes and tapmanager's records together
   * (reconcile.ts): at start and then periodically. One pass at a time; a pass that cannot list
   * either side changes nothing.
   */
  reconcile(): Promise<void> {
    this.reconciling ??= this.reconcileOnce().finally(() => (this.reconciling = undefined));
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    const records = [...this.pods.keys()]; // before the lists: each had its setup done
    const runsBefore = this.runsStarted;
    let tapmanager: Set<string>;
    let backend: Map<string, { ready: boolean; marked: boolean }>;
    try {
      tapmanager = new Set(
        (await this.o.tapmanager.list()).map((e) => String((e as { sandboxId?: unknown }).sandboxId)),
      );
      const list = await this.call('ListPodSandbox', this.o.runtime.ListPodSandbox!.requestSerialize({}));
      const items = (
        this.o.runtime.ListPodSandbox!.responseDeserialize(list.response) as {
          items?: { id: string; state: string; annotations?: Record<string, string> }[];
        }
      ).items;
      backend = new Map(
        (items ?? []).map((i) => [i.id, { ready: i.state === 'SANDBOX_READY', marked: isMarkedVmPod(i.annotations) }]),
      );
    } catch (e) {
      this.log.warn('reconciliation skipped: cannot list both sides', { error: e });
      return;
    }
    const actions = planReconcile({ records, backend, tapmanager });
    for (const a of actions) {
      await this.lock
        .run(a.id, () => this.carryOut(a, runsBefore))
        .catch((e: unknown) => {
          this.log.error('reconciliation step failed', { id: a.id, kind: a.kind, error: e });
        });
    }
    this.log.info('reconciled', { vmPods: records.length, actions: actions.length });
  }

  private async carryOut(a: ReconcileAction, runsBefore: number): Promise<void> {
    const { id } = a;
    switch (a.kind) {
      case 'adopt': {
        if (this.pods.has(id)) return; // its RunPodSandbox recorded it meanwhile
        if (this.runsInFlight > 0 || this.runsStarted !== runsBefore) {
          // it may be one a RunPodSandbox in flight is about to record: the next pass decides
          this.log.info('VM pod without a record left to the next reconciliation: a RunPodSandbox is in flight', {
            id,
          });
          return;
        }
        if (await this.tapmanagerHas(id)) {
          this.log.error(
            'a sandbox marked as a VM pod has no record of tapwire-cri but a tapmanager record: left alone',
            {
              id,
            },
          );
          return;
        }
        this.log.warn(
          'sandbox marked as a VM pod without a record (tapwire-cri stopped during its RunPodSandbox): adopting it',
          {
            id,
          },
        );
        const pod = await this.identityOf(id);
        const pending: VmPodRecord = { v: 1, id, netKey: '', netnsPath: '', createdAt: new Date().toISOString(), pod };
        await this.o.store.write(pending);
        this.pods.set(id, pending);
        try {
          await this.setUp(id, pod);
          this.log.info('VM pod adopted and set up', { id });
        } catch (e) {
          const st = toGrpcStatus(e);
          this.broken.set(id, `tapwire could not set this VM pod up: ${st.details}`);
          this.log.error('adopting the VM pod failed: its PodSandboxStatus reports it', { id, error: st.details });
        }
        return;
      }
      case 'orphan':
        if (this.pods.has(id)) return; // made meanwhile
        await this.teardown(id);
        await this.o.pins.unpin(id); // a pin by that id is stale too
        this.log.warn('tore down a tapmanager record of no sandbox the backend has', { id });
        return;
      case 'gone':
        if (!this.pods.has(id)) return; // removed meanwhile
        await this.teardown(id);
        await this.detach(id);
        await this.o.pins.unpin(id);
        await this.o.store.remove(id);
        this.pods.delete(id);
        this.broken.delete(id);
        this.log.warn('VM pod gone from the backend: tore tapwire down and forgot it', { id });
        return;
      case 'stopped':
        if (!this.pods.has(id) || !(await this.tapmanagerHas(id))) return; // stopped meanwhile
        await this.teardown(id);
        await this.detach(id);
        await this.o.pins.unpin(id);
        this.log.warn('VM pod stopped in the backend with tapwire still set up: tore tapwire down', { id });
        return;
      case 'repair': {
        const rec = this.pods.get(id);
        if (!rec || !(await this.needsRepair(id))) return;
        this.log.warn('VM pod running without a tapmanager record: setting it up again', { id });
        try {
          await this.o.pins.unpin(id);
          await this.setUp(id, rec.pod ?? {}, rec.vmNetwork);
          this.broken.delete(id);
          this.log.info('VM pod repaired', { id });
        } catch (e) {
          const st = toGrpcStatus(e);
          this.broken.set(id, `tapwire could not set this VM pod up again: ${st.details}`);
          this.log.error('VM pod repair failed: its PodSandboxStatus reports it', { id, error: st.details });
        }
        return;
      }
    }
  }

  /**
   * Who a sandbox's pod is, from the backend's verbose status: its metadata, and the config
   * containerd keeps in info["info"] (hostname, DNS), read leniently.
   */
  private async identityOf(id: string): Promise<VmPodIdentity> {
    const statusReq = this.o.runtime.PodSandboxStatus!.requestSerialize({ pod_sandbox_id: id, verbose: true });
    const st = this.o.runtime.PodSandboxStatus!.responseDeserialize(
      (await this.call('PodSandboxStatus', statusReq)).response,
    ) as { status?: { metadata?: { name?: string; namespace?: string } }; info?: Record<string, string> };
    const podName = st.status?.metadata?.name ?? '';
    let config: { hostname?: unknown; dns_config?: { servers?: unknown; searches?: unknown; options?: unknown } } = {};
    try {
      const parsed = JSON.parse(st.info?.info ?? '{}') as { config?: typeof config };
      config = parsed.config && typeof parsed.config === 'object' ? parsed.config : {};
    } catch {
      /* no config: metadata alone */
    }
    const strings = (v: unknown): string[] =>
      Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
    const dns = config.dns_config;
    return {
      hostname: podHostname(typeof config.hostname === 'string' ? config.hostname : undefined, podName),
      podName,
      podNamespace: st.status?.metadata?.namespace ?? '',
      ...(dns && typeof dns === 'object'
        ? { dns: { servers: strings(dns.servers), searches: strings(dns.searches), options: strings(dns.options) } }
        : {}),
    };
  }

  /** Whether a VM pod is still running in the backend and still unknown to tapmanager. */
  private async needsRepair(id: string): Promise<boolean> {
    const st = await this.call('PodSandboxStatus', this.idRequest('PodSandboxStatus', id));
    const state = (this.o.runtime.PodSandboxStatus!.responseDeserialize(st.response) as { status?: { state?: string } })
      .status?.state;
    if (state !== 'SANDBOX_READY') return false; // stopped meanwhile
    return !(await this.tapmanagerHas(id));
  }

  private tapmanagerHas(id: string): Promise<boolean> {
    return this.o.tapmanager.status(id).then(
      () => true,
      (e: unknown) => {
        if (isNoSuchSandbox(e)) return false;
        throw e;
      },
    );
  }

  /** Reconciles now and then every intervalMs (0: only now) until close(). */
  startReconciling(intervalMs: number): void {
    void this.reconcile();
    if (intervalMs > 0) {
      this.timer = setInterval(() => void this.reconcile(), intervalMs);
      this.timer.unref();
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  isVmPod(id: string): boolean {
    return this.pods.has(id);
  }

  /** The handlers the proxy uses instead of plain forwarding. */
  handlers(): Record<string, UnaryHandler> {
    const answer =
      (name: string, fn: (call: grpc.ServerUnaryCall<Buffer, Buffer>) => Promise<Reply | 'forward'>): UnaryHandler =>
      (call, cb) => {
        fn(call).then(
          (r) => {
            if (r === 'forward') forwardUnary(this.o.backend, `${RT}${name}`, call, call.request, cb);
            else cb(null, r.response, endToEnd(r.trailers));
          },
          (e: unknown) => {
            if (e instanceof BackendStatusError) return cb(e.toServerError());
            const st = toGrpcStatus(e);
            this.log.warn('call failed', { method: name, code: grpc.status[st.code], error: st.details });
            cb({ code: st.code, details: st.details });
          },
        );
      };
    return {
      RunPodSandbox: answer('RunPodSandbox', (c) => this.run(c)),
      StopPodSandbox: answer('StopPodSandbox', (c) => this.stop(c)),
      RemovePodSandbox: answer('RemovePodSandbox', (c) => this.remove(c)),
      PodSandboxStatus: answer('PodSandboxStatus', (c) => this.status(c)),
      CreateContainer: answer('CreateContainer', (c) => this.createContainer(c)),
    };
  }

  private call(name: string, req: Buffer, parent?: grpc.ServerUnaryCall<Buffer, Buffer>): Promise<Reply> {
    return backendUnary(
      this.o.backend,
      `${RT}${name}`,
      req,
      parent ? { metadata: endToEnd(parent.metadata), parent } : { deadline: Date.now() + OWN_CALL_MS },
    );
  }

  private sandboxIdOf(name: string, req: Buffer): string {
    try {
      return (this.o.runtime[name]!.requestDeserialize(req) as { pod_sandbox_id?: string }).pod_sandbox_id ?? '';
    } catch (e) {
      throw new CriError(grpc.status.INVALID_ARGUMENT, `malformed ${name}Request: ${(e as Error).message}`);
    }
  }

  /**
   * The fd socket's directory is mounted into VM containers: anything else in it (tapmanager's
   * control socket, tapwire-cri's own) would be reachable from the container, so it must hold
   * the fd socket alone.
   */
  private checkFdSocketDir(): void {
    const dir = path.dirname(this.o.fdSocket);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch (e) {
      throw new CriError(
        grpc.status.FAILED_PRECONDITION,
        `cannot read the fd socket's directory "${dir}" (is tapmanager running?): ${(e as Error).message}`,
      );
    }
    const others = names.filter((n) => n !== path.basename(this.o.fdSocket));
    if (others.length) {
      throw new CriError(
        grpc.status.FAILED_PRECONDITION,
        `the fd socket's directory "${dir}" (mounted into VM containers) also holds ${others
          .slice(0, 5)
          .map((n) => JSON.stringify(n))
          .join(', ')}: give tapmanager --fd-socket in a directory of its own, e.g. /run/tapwire/fd/fd.sock`,
      );
    }
  }

  private async run(call: grpc.ServerUnaryCall<Buffer, Buffer>): Promise<Reply | 'forward'> {
    const view = readRunRequest(call.request, this.o.selector);
    refuseReservedAnnotations(view); // ordinary pods too: the backend's mark is the proxy's alone
    if (!view.vm) return 'forward';
    // decoded from the merged config (a config sent in parts is one message)
    const req = this.o.runtime.RunPodSandbox!.requestDeserialize(withEmbedded(call.request, 1, (p) => p)) as {
      config?: PodConfig | null;
    };
    const config = req.config ?? {};
    const podName = config.metadata?.name ?? '';
    // checked, and its NADs found, before the backend makes anything
    const spec = readSpec(config.annotations ?? undefined);
    const plan = spec && planVmNetwork(spec, config.metadata?.namespace ?? '', this.o.networkAttachmentsDir);
    const dns = config.dns_config;
    const pod: VmPodIdentity = {
      hostname: podHostname(config.hostname, podName),
      podName,
      podNamespace: config.metadata?.namespace ?? '',
      ...(dns ? { dns: { servers: dns.servers ?? [], searches: dns.searches ?? [], options: dns.options ?? [] } } : {}),
    };
    this.runsStarted++;
    this.runsInFlight++;
    try {
      return await this.runVm(call, pod, plan);
    } finally {
      this.runsInFlight--;
    }
  }

  private async runVm(
    call: grpc.ServerUnaryCall<Buffer, Buffer>,
    pod: VmPodIdentity,
    plan: ReturnType<typeof planVmNetwork> | undefined,
  ): Promise<Reply> {
    const created = await this.call('RunPodSandbox', backendRunRequest(call.request, this.o.selector), call);
    const id = (this.o.runtime.RunPodSandbox!.responseDeserialize(created.response) as { pod_sandbox_id: string })
      .pod_sandbox_id;
    await crashHook?.('proxy.run.created', id); // tests: a crash before the record is written (adopted at restart)
    await this.lock.run(id, async () => {
      try {
        // known from now on (a crash before setup ends leaves a VM pod that stop still tears
        // down and reconciliation sets up); its key comes with setup
        const pending: VmPodRecord = {
          v: 1,
          id,
          netKey: '',
          netnsPath: '',
          createdAt: new Date().toISOString(),
          pod,
          ...(plan ? { vmNetwork: plan.state } : {}),
        };
        await this.o.store.write(pending);
        this.pods.set(id, pending);
        await this.setUp(id, pod, plan);
      } catch (e) {
        await this.rollBack(id, e);
        throw e;
      }
    });
    return created;
  }

  /**
   * Sets a VM pod up in tapmanager; with a network spec, its extra networks first. `vm` is a
   * plan (a new pod) or the state a record kept (a repair: networks attached stay; a pod whose
   * attach never finished has them deleted and attached again).
   */
  private async setUp(id: string, pod: VmPodIdentity, vm?: VmNetworkPlan | VmNetworkState): Promise<void> {
    const statusReq = this.o.runtime.PodSandboxStatus!.requestSerialize({ pod_sandbox_id: id, verbose: true });
    const st = await this.call('PodSandboxStatus', statusReq);
    const info = (
      this.o.runtime.PodSandboxStatus!.responseDeserialize(st.response) as { info?: Record<string, string> }
    ).info;
    const net = readBackendSandbox(id, info ?? {});
    const netnsPath = await this.o.pins.pin(id, net.pid);
    const prefixes = new Map<string, Map<string, number>>();
    for (const i of podInterfaces(net)) {
      prefixes.set(i.name, await this.o.prefixes(netnsPath, i.name).catch(() => new Map<string, number>()));
    }
    const cniResult = toCniResult({ ...net, netnsPath }, (ifname, ip) => {
      const len = prefixes.get(ifname)?.get(ip);
      if (len === undefined) {
        throw new CriError(
          grpc.status.FAILED_PRECONDITION,
          `sandbox ${id}: the runtime reports ${ip} on ${ifname}, which the pod's network namespace does not have`,
        );
      }
      return len;
    });
    let state: VmNetworkState | undefined;
    if (vm) {
      let plan = 'lists' in vm ? vm : undefined;
      state = plan?.state ?? (vm as VmNetworkState);
      if (!plan && state.extras.some((x) => !x.result)) {
        await this.detachOrThrow(id, state, netnsPath);
        plan = planVmNetwork(state.spec, pod.podNamespace ?? '', this.o.networkAttachmentsDir);
        state = plan.state;
      }
      if (plan) {
        // the netns is known before the first ADD, so a crash from here on can be undone
        const pending = { ...this.pods.get(id)!, netnsPath, vmNetwork: plan.state };
        await this.o.store.write(pending);
        this.pods.set(id, pending);
        await attachExtras(this.cniRunner(), plan, this.extraAttachment(id, netnsPath, pod));
      }
    }
    const podIfName = podInterfaces(net)[0]?.name ?? 'eth0';
    const setupReq: Omit<SetupRequest, 'op'> = state
      ? // the per-NIC request (docs/protocol.md); the top-level cniResult is absent with it
        { sandboxId: id, netnsPath, ...pod, nics: buildNics(state, podIfName, cniResult) }
      : { sandboxId: id, netnsPath, cniResult, ...pod };
    const setup = await this.o.tapmanager.setup(setupReq);
    const rec: VmPodRecord = {
      v: 1,
      id,
      netKey: setup.netKey,
      netnsPath,
      createdAt: new Date().toISOString(),
      pod,
      ...(state ? { vmNetwork: state } : {}),
    };
    await this.o.store.write(rec);
    this.pods.set(id, rec);
    this.log.info('VM pod set up', { id, netnsPath });
  }

  /** Undoes a VM pod whose setup failed: every step is attempted, each failure logged. */
  private async rollBack(id: string, cause: unknown): Promise<void> {
    this.log.warn('RunPodSandbox of a VM pod failed, rolling back', { id, error: cause });
    const rec = this.pods.get(id);
    const steps: [string, () => Promise<unknown>][] = [
      ['tapmanager teardown', () => this.o.tapmanager.teardown(id)],
      ['extra networks', () => this.detachOrThrow(id, rec?.vmNetwork, rec?.netnsPath ?? '')],
      ['record', () => this.o.store.remove(id)],
      ['netns pin', () => this.o.pins.unpin(id)],
      ['StopPodSandbox', () => this.call('StopPodSandbox', this.idRequest('StopPodSandbox', id))],
      ['RemovePodSandbox', () => this.call('RemovePodSandbox', this.idRequest('RemovePodSandbox', id))],
    ];
    this.pods.delete(id);
    for (const [step, fn] of steps) {
      await fn().catch((e: unknown) => {
        if (step === 'tapmanager teardown' && isNoSuchSandbox(e)) return;
        this.log.error('rollback step failed', { id, step, error: e });
      });
    }
  }

  private cniRunner(): CniRunner {
    if (!this.o.cni)
      throw new CriError(grpc.status.FAILED_PRECONDITION, 'tapwire-cri has no CNI runner for extra networks');
    return this.o.cni;
  }

  private extraAttachment(id: string, netnsPath: string, pod: VmPodIdentity) {
    return {
      containerId: id,
      netns: netnsPath,
      pod: { podNamespace: pod.podNamespace ?? '', podName: pod.podName ?? '', infraContainerId: id },
    };
  }

  /** CNI DEL of a VM pod's extra networks, in reverse; throws when one fails. */
  private async detachOrThrow(id: string, state: VmNetworkState | undefined, netnsPath: string): Promise<void> {
    if (!state?.extras.length) return;
    const rec = this.pods.get(id);
    const errors = await detachExtras(this.cniRunner(), state, this.extraAttachment(id, netnsPath, rec?.pod ?? {}));
    if (errors.length) throw new Error(`extra networks: ${errors.map((e) => e.message).join('; ')}`);
  }

  /** detachOrThrow for a recorded VM pod. */
  private detach(id: string): Promise<void> {
    const rec = this.pods.get(id);
    return this.detachOrThrow(id, rec?.vmNetwork, rec?.netnsPath ?? '');
  }

  private idRequest(name: string, id: string): Buffer {
    return this.o.runtime[name]!.requestSerialize({ pod_sandbox_id: id });
  }

  private async teardown(id: string): Promise<void> {
    try {
      const { errors } = await this.o.tapmanager.teardown(id);
      if (errors.length) this.log.warn('tapmanager teardown reported problems', { id, errors });
    } catch (e) {
      if (!isNoSuchSandbox(e)) throw e; // else gone already
    }
  }

  /** Counts a failed teardown in StopPodSandbox; true once the stop should go ahead anyway. */
  private giveUpOnTeardown(id: string): boolean {
    const f = this.stopFailures.get(id) ?? { since: Date.now(), count: 0 };
    f.count++;
    this.stopFailures.set(id, f);
    const attempts = this.o.stopTeardownAttempts ?? 5;
    const graceMs = this.o.stopTeardownGraceMs ?? 120_000;
    if (f.count < attempts || Date.now() - f.since < graceMs) return false;
    this.stopFailures.delete(id);
    return true;
  }

  private async stop(call: grpc.ServerUnaryCall<Buffer, Buffer>): Promise<Reply | 'forward'> {
    const id = this.sandboxIdOf('StopPodSandbox', call.request);
    if (!this.pods.has(id)) return 'forward';
    return this.lock.run(id, async () => {
      try {
        await this.teardown(id);
        await this.detach(id); // before the backend's CNI DEL of the pod network
      } catch (e) {
        if (!this.giveUpOnTeardown(id)) throw e;
        this.log.error(
          'tapmanager teardown keeps failing: stopping the VM pod in the backend anyway; ' +
            "tapwire's topology stays in its netns until reconciliation tears it down",
          { id, error: e },
        );
        return this.call('StopPodSandbox', call.request, call);
      }
      this.stopFailures.delete(id);
      await this.o.pins.unpin(id);
      return this.call('StopPodSandbox', call.request, call);
    });
  }

  private async remove(call: grpc.ServerUnaryCall<Buffer, Buffer>): Promise<Reply | 'forward'> {
    const id = this.sandboxIdOf('RemovePodSandbox', call.request);
    if (!this.pods.has(id)) return 'forward';
    return this.lock.run(id, async () => {
      // a pod removed without a stop: its extra networks go before the backend's teardown
      if (this.pods.get(id)?.vmNetwork?.extras.length) {
        await this.teardown(id)
          .then(() => this.detach(id))
          .catch((e: unknown) =>
            this.log.error('removing the extra networks failed: left to reconciliation', { id, error: e }),
          );
      }
      const reply = await this.call('RemovePodSandbox', call.request, call);
      this.stopFailures.delete(id);
      try {
        await this.teardown(id);
      } catch (e) {
        this.log.error('tapmanager teardown failed after the backend removed the VM pod: left to reconciliation', {
          id,
          error: e,
        });
        return reply;
      }
      await this.o.pins.unpin(id);
      await this.o.store.remove(id);
      this.pods.delete(id);
      this.broken.delete(id);
      return reply;
    });
  }

  private async status(call: grpc.ServerUnaryCall<Buffer, Buffer>): Promise<Reply | 'forward'> {
    const req = this.o.runtime.PodSandboxStatus!.requestDeserialize(call.request) as {
      pod_sandbox_id?: string;
      verbose?: boolean;
    };
    const rec = this.pods.get(req.pod_sandbox_id ?? '');
    const broken = rec && this.broken.get(rec.id);
    if (!rec || (!req.verbose && !broken)) return 'forward';
    const reply = await this.call('PodSandboxStatus', call.request, call);
    const topology = req.verbose
      ? await this.o.tapmanager.status(rec.id).catch((e: unknown) => ({ error: (e as Error).message }))
      : undefined;
    const info = {
      netKey: rec.netKey,
      netnsPath: rec.netnsPath,
      topology,
      ...(req.verbose ? { [NETWORK_STATUS_KEY]: this.networkStatusOf(rec, reply.response) } : {}),
      ...(rec.vmNetwork ? { vmNetworkSpec: rec.vmNetwork.spec } : {}),
      ...(broken ? { error: broken } : {}),
    };
    return { ...reply, response: withTapwireInfo(reply.response, info) };
  }

  /** Every network of the pod in Multus's network-status shape; the pod network from the backend's status. */
  private networkStatusOf(rec: VmPodRecord, response: Buffer): unknown {
    try {
      const st = this.o.runtime.PodSandboxStatus!.responseDeserialize(response) as {
        status?: { state?: string };
        info?: Record<string, string>;
      };
      if (st.status?.state !== 'SANDBOX_READY') return [];
      const net = readBackendSandbox(rec.id, st.info ?? {});
      const podResult = toCniResult(net, () => 32); // only the addresses are reported
      let name = 'pod-network';
      try {
        if (this.o.cniConfDir) name = defaultNetwork(this.o.cniConfDir).name;
      } catch {
        /* the backend's configs are not readable here: a generic name */
      }
      return networkStatus(name, podInterfaces(net)[0]?.name ?? 'eth0', podResult, rec.vmNetwork);
    } catch (e) {
      return { error: (e as Error).message };
    }
  }

  private async createContainer(call: grpc.ServerUnaryCall<Buffer, Buffer>): Promise<Reply | 'forward'> {
    const rec = this.pods.get(createRequestSandbox(call.request));
    if (!rec) return 'forward';
    const broken = this.broken.get(rec.id);
    if (broken || rec.netKey === '') {
      throw new CriError(
        grpc.status.FAILED_PRECONDITION,
        `VM pod ${rec.id}: ${broken ?? 'tapwire has not set it up (tapwire-cri stopped during its RunPodSandbox)'}`,
      );
    }
    this.checkFdSocketDir();
    return this.call('CreateContainer', vmContainerRequest(call.request, rec.netKey, this.o.fdSocket), call);
  }
}

interface Reply {
  response: Buffer;
  trailers: grpc.Metadata;
}
