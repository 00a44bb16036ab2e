// The binding contract. A binding is one module (bindings/<name>/) with two parts:
//  - pod side (pod.ts, run by tapmanager as root in the pod's netns): plan -> apply ->
//    record, each step with its undo; recover (check and repair) after a restart;
//    describe for status; and what it asks of the sandbox-wide parts (a DHCP lease, fence
//    entries, the links it made).
//  - domain side (domain.ts, run by vmwrapper/tapctl unprivileged, pure): the emulator's
//    arguments for its NIC and the libvirt <interface> element.
// The sandbox code (sandbox/*.ts) knows bindings only through this contract.
import type { CniResult, DnsConfig } from '../../cni/result';
import type { StaticLease } from '../../dhcp/server';
import type { LinkState, NetlinkHandle } from '../../net/netlink';
import type { NeighbourReader } from '../ipv6-nic';
import type { PinnedNetns } from '../netns-pin';
import type { VethReader } from '../plan/read-veth';
import type { Logger } from '../../util/log';
import type { FenceNic } from '../fence/types';
import type { FdsResult, GuestNic } from '../protocol';
import type { TapHold } from '../tap-holders';
import type { NicRecord } from '../record';
import type { NicLinks } from '../topology';
import type { UndoError } from './errors';
import type { ImplementedBinding } from './names';

/** KubeVirt's dhcpOptions: options 67, 66, 42 and private options 224-254. */
export interface NicDhcpOptions {
  bootFileName?: string;
  tftpServerName?: string;
  ntpServers?: string[];
  privateOptions?: { option: number; value: string }[];
}

export interface NicPort {
  name?: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  /** the last port of a range (masquerade forwards port..endPort) */
  endPort?: number;
}

/** One NIC to build, validated and with its defaults filled in (validate.ts). */
export interface NicSpec {
  /** the spec's interface name; absent for a request without `nics` */
  name?: string;
  binding: ImplementedBinding;
  /** the interface in the pod netns the NIC takes over */
  podInterface: string;
  /** the request path that names podInterface, for errors (`nics[1].podInterface`) */
  field: string;
  /** the request path of cniResult, for errors (`cniResult`, `nics[1].cniResult`) */
  cniField: string;
  /** index in the CNI result's interfaces of podInterface (0 when it lists none) */
  cniIndex: number;
  /** the network's CNI result; absent: an L2-only NIC (no IP handed over, no DHCP server) */
  cniResult?: CniResult;
  /** guest MAC; absent: the pod interface's */
  mac?: string;
  /** QEMU device */
  model: string;
  queues: number;
  dhcpOptions?: NicDhcpOptions;
  ports?: NicPort[];
  /** masquerade: the guest's IPv4 network (default 10.0.2.0/24) */
  guestCidr?: string;
  /** masquerade: the guest's IPv6 network (default fd10:0:2::/120), used when the pod has IPv6 */
  guestCidr6?: string;
  /** macvtap: bridge (default) or passthru */
  macvtapMode?: 'bridge' | 'passthru';
}

export interface PlanContext {
  sandboxId: string;
  /** the netns path as the request gave it (for messages) */
  netnsPath: string;
  /** the pinned namespace's path (/proc/self/fd/N) */
  nsPath: string;
  /** free names and indexes for the links this NIC makes */
  links: NicLinks;
  /** the netns's links as the setup found them, before anything changed */
  podLinks: readonly LinkState[];
  /** the setup's reader of the netns (reads go on it, not on sockets of their own) */
  reader: VethReader & NeighbourReader;
  dns?: DnsConfig;
  log: Logger;
}

/** What the sandbox layer gives a binding that supervises a process beside its NIC (passt). */
export interface NicSupervision {
  sandboxId: string;
  /** pins the sandbox's netns anew (undefined: gone, or another namespace at its path) */
  pin(): PinnedNetns | undefined;
  /**
   * The NIC's part of the record changed (its process's pid, start time, socket): resolves
   * once the record is saved with it. Never waits for the sandbox's operations, so the
   * binding may await it under locks of its own and from inside setup, a fetch or check.
   */
  recordChanged(): Promise<void>;
  log: Logger;
}

export interface ApplyContext {
  nl: NetlinkHandle;
  nsPath: string;
  /** this sandbox's link mark (link-mark.ts) */
  mark: string;
  /**
   * Run inside the netns once the NIC's links exist, by a binding that is in the
   * namespace anyway (the setup makes the NIC's DHCP socket there)
   */
  inWindow?: (nic: NicRecord) => void;
  /** for a binding that runs a process beside its NIC (passt): how it is supervised */
  supervise?: NicSupervision;
}

export interface UndoContext extends ApplyContext {
  /** what no retry changes (a route that cannot be put back): logged, not an error */
  warn: (message: string) => void;
  /** a link this sandbox did not make, or one that is gone: left alone, logged */
  leftAlone: (message: string) => void;
  /**
   * Shared by the undoLast pass: set once a NIC's IPv6 came back on, so that the pod
   * interfaces after it cycle theirs too (ipv6-nic.ts restoreVethIpv6)
   */
  ipv6Reenabled?: boolean;
}

export interface CheckContext {
  nl: NetlinkHandle;
  links: readonly LinkState[];
  mark: string;
  /** the pinned namespace's path (/proc/self/fd/N) */
  nsPath?: string;
  /** for a binding that runs a process beside its NIC (passt): how it is supervised */
  supervise?: NicSupervision;
}

/** A link a NIC made, as ownLink (topology.ts) recognizes it. */
export interface MadeLink {
  name: string;
  index: number | undefined;
  kind: 'bridge' | 'tun' | 'macvtap';
  mark: string;
}

/** The per-NIC extras of `status`. */
export type NicStatus = GuestNic & {
  routes: { dst: string; gw: string }[];
  unexpressible: NonNullable<NicRecord['plan']>['unexpressible'];
  unrestorable: NonNullable<NicRecord['plan']>['unexpressible'];
  warnings: string[];
};

export interface PodBinding {
  readonly name: ImplementedBinding;
  /** Reads what the NIC takes over and plans it; touches nothing. The result is recorded before apply. */
  plan(ctx: PlanContext, spec: NicSpec): Promise<NicRecord>;
  /** Builds the NIC as planned. A failure leaves what undo removes. */
  apply(ctx: ApplyContext, nic: NicRecord): Promise<void>;
  /** Undoes apply (any part of it, or none), each step on its own; never throws. */
  undo(ctx: UndoContext, nic: NicRecord): Promise<UndoError[]>;
  /**
   * The last part of undo, when a binding has one: called once every NIC's undo is done,
   * in the order of the pod interfaces' indexes (the bridge puts IPv6 back only once every
   * veth has its MAC again, so that the kernel re-makes their link-local routes in the
   * order the interfaces were made, which their indexes follow).
   */
  undoLast?(ctx: UndoContext, nic: NicRecord): Promise<UndoError[]>;
  /**
   * The undo when the namespace is gone (its path unmounted or another namespace there):
   * what the NIC made outside of it, a process of its own that would keep the namespace
   * alive, stopped without entering it; never throws.
   */
  undoWithoutNetns?(nic: NicRecord): Promise<UndoError[]>;
  /** After a restart: how a ready NIC drifted from its record, repairing what it can. */
  check(ctx: CheckContext, nic: NicRecord): Promise<string[]>;
  /** The NIC as setup's reply shows it. */
  describe(nic: NicRecord): GuestNic;
  /** The NIC as status shows it (what it got, what it could not). */
  status(nic: NicRecord): NicStatus;
  /** Whether the NIC gets a DHCP server (then `lease` is its lease). */
  servesDhcp(nic: NicRecord): boolean;
  /** The DHCP lease the NIC's server hands out, if it has a server. */
  lease(nic: NicRecord, common: Pick<StaticLease, 'hostname' | 'leaseTime'>): StaticLease | undefined;
  /** Its entries in the sandbox's fence, if any. */
  fence(nic: NicRecord): FenceNic | undefined;
  /** The links it made (for the one-batch delete and the orphan collector). */
  madeLinks(nic: NicRecord, mark: string): MadeLink[];
  /** The interface its DHCP server listens on. */
  dhcpInterface(nic: NicRecord): string;
  /** The DHCP server's identifier (its address on that interface); absent: BRIDGE_IP. */
  dhcpServerId?(nic: NicRecord): string;
  /** What it hands the emulator over the fd socket, and how an earlier holder is detached. */
  readonly handOut: FdHandOut;
}

/**
 * The fd hand-out of a binding's NICs. The sandbox calls it with each run of consecutive
 * NICs that share the binding, in NIC order, so the reply's fds stay in NIC order.
 */
export interface FdHandOut {
  /** Refuses (EBUSY, naming what is held) while an earlier holder still has any of the NICs' files. */
  checkNotHeld(sandboxId: string, nsPath: string, nics: readonly NicRecord[]): Promise<void>;
  /**
   * The NICs' fds, in order; on failure none stays open. `mark` is the sandbox's link mark,
   * for a binding that checks its device is the one the sandbox made before opening it.
   */
  open(sandboxId: string, nsPath: string, nics: readonly NicRecord[], mark: string): number[] | Promise<number[]>;
  /** Detaches whoever holds the NICs' files, so that a fetch works again. */
  revoke(nsPath: string, nics: readonly NicRecord[], mark: string): Promise<TapHold[]>;
  /** The NIC's entry in the fds reply (its fds: `queues` of them, as its domain side counts). */
  entry(nic: NicRecord): FdsResult['nics'][number];
}
