// The tapmanager wire protocol, shared by the daemon, tapctl, vmwrapper and the CRI
// service. Documented in docs/protocol.md.
//
// Framing: every message is a 4-byte big-endian length followed by that many bytes of
// UTF-8 JSON. A frame over MAX_FRAME bytes (FD_MAX_FRAME on the fd socket) is refused
// (the connection is closed after an error reply). A reply never exceeds MAX_FRAME: one
// that would becomes a short error (E2BIG); `list` pages (ListRequest) and `status`
// caps its long lists, saying how many entries it left out. Every request carries `v` (PROTOCOL_VERSION) and an `id` that the
// reply echoes. Replies are {v, id, ok: true, result} or {v, id, ok: false, error}.
// On the control socket, requests pipelined on one connection run concurrently and
// their replies may arrive in any order (match them by id).
//
// Two sockets:
//  - control socket (root only, 0600): setup, teardown, status, list, revoke, stats
//  - fd socket (peers checked by SO_PEERCRED + a per-sandbox token): fds only; the reply
//    frame carries one tap fd per queue of every guest NIC, in order, via SCM_RIGHTS.
import type { CniResult, DnsConfig } from '../cni/result';
import { nestsDeeperThan } from '../util/json-depth';

export const PROTOCOL_VERSION = 1;
export const MAX_FRAME = 1 << 20;
/** Deepest nesting of arrays/objects a frame may have (a request needs 5). */
export const MAX_FRAME_DEPTH = 64;
/** Largest request frame the fd socket takes: an `fds` request is a few hundred bytes. */
export const FD_MAX_FRAME = 16 << 10;
export const DEFAULT_STATE_DIR = '/var/lib/tapwire';
export const DEFAULT_CONTROL_SOCKET = '/run/tapwire/control.sock';
/**
 * In a directory of its own: a runtime mounts that directory into the VM's container,
 * which must not reach the control socket beside it.
 */
export const DEFAULT_FD_SOCKET = '/run/tapwire/fd/fd.sock';

export interface SetupRequest {
  op: 'setup';
  sandboxId: string;
  netnsPath: string;
  /**
   * Without `nics`: the pod network's CNI result; one bridge NIC per pod interface that
   * has an IPv4 address. Absent exactly when `nics` is given.
   */
  cniResult?: CniResult;
  /** The guest NICs in spec order, each built by its binding (docs/protocol.md). */
  nics?: NicRequest[];
  dns?: DnsConfig;
  /** Guest hostname (DHCP option 12); defaults to the pod name. */
  hostname?: string;
  podName?: string;
  podNamespace?: string;
  /** Guest NIC model for vmwrapper (default virtio-net-pci); without `nics` only. */
  nicModel?: string;
  /**
   * Queues per guest NIC (default 1). Above 1 the taps are IFF_MULTI_QUEUE and `fds`
   * hands out one fd per queue; at most MAX_QUEUES, and at most MAX_FDS fds per sandbox.
   * Without `nics` only.
   */
  queues?: number;
}

/** One guest NIC of a setup with `nics` (KubeVirt's interface + network, resolved). */
export interface NicRequest {
  /** the spec's interface name (== its network's name); unique in the request */
  name: string;
  /** bridge, masquerade, passt, macvtap or slirp (bindings/) */
  binding: string;
  /** the interface in the pod netns the NIC takes over (eth0, net1, or one a device plugin put there) */
  podInterface: string;
  /** that network's CNI result; absent: L2-only (bridged with no IP handed over and no DHCP server) */
  cniResult?: CniResult;
  /** guest MAC (either case, ':' or '-'); default: the pod interface's */
  macAddress?: string;
  /** virtio (default) | e1000 | e1000e | ne2k_pci | pcnet | rtl8139 */
  model?: string;
  /** 1-MAX_QUEUES (virtio only above 1) */
  queues?: number;
  /** options 67, 66, 42 and 224-254 of the NIC's lease (only with cniResult) */
  dhcpOptions?: {
    bootFileName?: string;
    tftpServerName?: string;
    ntpServers?: string[];
    privateOptions?: { option: number; value: string }[];
  };
  /** recorded; used by later bindings */
  ports?: { name?: string; port: number; endPort?: number; protocol?: 'TCP' | 'UDP' }[];
  /** masquerade: the guest's IPv4 network (default 10.0.2.0/24; must not overlap the pod's) */
  guestCidr?: string;
  /** masquerade: the guest's IPv6 network (default fd10:0:2::/120; must not overlap the pod's) */
  guestCidr6?: string;
  /** macvtap only: bridge (default) or passthru */
  macvtapMode?: 'bridge' | 'passthru';
}

/**
 * Most requests the daemon takes unanswered on one control connection: past it the
 * connection is closed (client.ts keeps well below).
 */
export const MAX_CONTROL_QUEUED = 1024;

/** Most guest NICs per sandbox. */
export const MAX_NICS = 16;

/** Most queues per NIC a setup accepts. */
export const MAX_QUEUES = 16;
/** Most fds one `fds` reply carries: SCM_MAX_FD, the kernel's limit for one sendmsg. */
export const MAX_FDS = 253;

export interface TeardownRequest {
  op: 'teardown';
  sandboxId: string;
}

export interface StatusRequest {
  op: 'status';
  sandboxId: string;
}

/**
 * Without `limit` the reply is every sandbox as one array (E2BIG when they do not fit
 * one frame). With `limit` it is a ListPage of at most `limit` sandboxes (fewer when the
 * frame fills), in sandboxId order, those after the id `after`.
 */
export interface ListRequest {
  op: 'list';
  limit?: number;
  after?: string;
}

/** Most sandboxes one list page asks for. */
export const MAX_LIST_LIMIT = 10_000;

export interface ListEntry {
  sandboxId: string;
  state: string;
  netnsPath: string;
  ips: string[];
  createdAt: string;
}

export interface ListPage {
  sandboxes: ListEntry[];
  /** set when more follow: pass it as `after` for the next page */
  next?: string;
}

/**
 * Detaches every holder of the sandbox's taps: each tap is deleted and made again (same
 * name, bridge, MTU, mark), so fds handed out earlier no longer reach the guest network
 * and the next `fds` succeeds. For a runtime that restarts a guest whose old emulator
 * cannot be made to close its fds.
 */
export interface RevokeRequest {
  op: 'revoke';
  sandboxId: string;
}

/** The node-wide metrics (as the Prometheus endpoint has them), as prom-client JSON. */
export interface StatsRequest {
  op: 'stats';
}

/** fd socket only. key = TAPWIRE_NET_KEY as the runtime got it from setup. */
export interface FdsRequest {
  op: 'fds';
  key: string;
}

export type Request =
  SetupRequest | TeardownRequest | StatusRequest | ListRequest | RevokeRequest | StatsRequest | FdsRequest;

/** What the guest is handed for one NIC. */
export interface GuestNic {
  /** the spec's interface name (a request with `nics`) */
  name?: string;
  binding?: string;
  /** index of the CNI interface this NIC stands in for (a request without `nics`) */
  index: number;
  veth: string;
  bridge: string;
  tap: string;
  mac: string;
  mtu: number;
  model: string;
  queues: number;
  vnetHdr: boolean;
  /** absent on an L2-only NIC (l2Only) and an IPv6-only one (ipv6) */
  ip?: string;
  prefixLen?: number;
  gateway?: string;
  /** on an IPv6-only NIC: the addresses the guest gets by DHCPv6 (no IPv4, no DHCPv4 server) */
  ipv6?: string[];
  /** no IP handed over and no DHCP server: the pod interface bridged as it is */
  l2Only?: boolean;
  /** a masquerade NIC: the guest network, the pod's own addresses (kept) and the NAT rules */
  masquerade?: {
    /** the IPv4 guest network ('' on an IPv6-only pod) */
    guestCidr: string;
    podIps: string[];
    table: string;
    rules: string[];
    /** with IPv6: the guest network, the guest's and bridge's addresses, the advertised router */
    ipv6?: { guestCidr: string; guestIp: string; bridgeIp: string; router: string };
  };
  /** a slirp NIC: the pod IP its ports are forwarded from, and the forwards */
  slirp?: { podIp: string; forwards: string[] };
  /** a macvtap NIC: its mode and the character device its fds are opened from */
  macvtap?: { mode: string; device: string };
  /** a passt NIC: the pod addresses passt copies to the guest, its forwards, and the passt process */
  passt?: {
    podIps: string[];
    forwards: string[];
    uid: number;
    pid?: number;
    socket?: string;
    running?: boolean;
    adopted?: boolean;
    restarts?: number;
    lastExit?: string;
    emulatorEnd?: string;
  };
}

export interface SetupResult {
  sandboxId: string;
  /** Pass to vmwrapper as TAPWIRE_NET_KEY. */
  netKey: string;
  nics: GuestNic[];
}

/** fds reply: one entry per NIC; fds arrive in the same order, `queues` per NIC. */
export interface FdsResult {
  sandboxId: string;
  nics: {
    /** the spec's interface name (a request with `nics`) */
    name?: string;
    /** the binding whose domain side (bindings/domain.ts) writes its emulator arguments; absent: bridge */
    binding?: string;
    mac: string;
    model: string;
    queues: number;
    vnetHdr: boolean;
    tap: string;
    vhost: boolean;
    /** slirp: ports vmwrapper forwards from the pod IP to the guest (no fd for this NIC) */
    hostfwd?: { ip: string; ports: { protocol: 'TCP' | 'UDP'; port: number; endPort?: number }[] };
  }[];
}

export interface ErrorBody {
  /** Stable machine code: EINVAL (bad input), ENOENT (no such sandbox), EACCES, EEXIST, EIO ... */
  code: string;
  message: string;
  /** The request field the error is about, when there is one. */
  field?: string;
}

export type Reply<T = unknown> =
  { v: number; id: number; ok: true; result: T } | { v: number; id: number; ok: false; error: ErrorBody };

export function encodeFrame(msg: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(msg), 'utf8');
  if (body.length > MAX_FRAME) throw new RangeError(`frame of ${body.length} bytes exceeds ${MAX_FRAME}`);
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

/**
 * Incremental decoder: push() bytes as they arrive (partial reads are fine), get back
 * every complete frame's parsed JSON. Throws FrameError on a frame over `maxFrame` (as
 * soon as its length header is in) or bad JSON. The bytes of an incomplete frame are
 * kept as the chunks that brought them, nothing is allocated for the length a header
 * announces, and they are joined once, when the frame is whole: a peer that announces
 * 1 MB and sends 10 bytes costs 10 bytes.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxFrame = MAX_FRAME) {}

  push(chunk: Buffer): unknown[] {
    if (chunk.length) {
      this.chunks.push(chunk);
      this.size += chunk.length;
    }
    const out: unknown[] = [];
    while (this.size >= 4) {
      if (this.chunks[0]!.length < 4) this.join();
      const len = this.chunks[0]!.readUInt32BE(0);
      if (len > this.maxFrame) throw new FrameError(`frame length ${len} exceeds ${this.maxFrame}`);
      if (this.size < 4 + len) break;
      if (this.chunks[0]!.length < 4 + len) this.join();
      const head = this.chunks[0]!;
      const body = head.subarray(4, 4 + len);
      const rest = head.subarray(4 + len);
      this.size -= 4 + len;
      if (rest.length) this.chunks[0] = rest;
      else this.chunks.shift();
      if (nestsDeeperThan(body, MAX_FRAME_DEPTH)) throw new FrameError(`frame nests deeper than ${MAX_FRAME_DEPTH}`);
      try {
        out.push(JSON.parse(body.toString('utf8')));
      } catch (e) {
        throw new FrameError(`frame is not JSON: ${(e as Error).message.slice(0, 200)}`);
      }
    }
    return out;
  }

  private join(): void {
    this.chunks = [Buffer.concat(this.chunks, this.size)];
  }

  /** Bytes of an incomplete frame still buffered. */
  get pending(): number {
    return this.size;
  }
}

export class FrameError extends Error {}
