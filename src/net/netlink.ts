// The one gate to rtnetlink. A NetlinkHandle is a route socket created inside a
// network namespace (synchronously, in a withNetns window) and used asynchronously
// afterwards: a socket stays in the namespace it was made in. Every failure becomes a
// NetError carrying the kernel's errno code, the verb and the object.
//
// The socket is the netlink package's, and it must never overflow. rtnetlink answers a
// change in the sender's own syscall, so requests sent without reading pile their acks
// up in the socket's receive buffer; once it is full the kernel drops acks and flags the
// socket (ENOBUFS), poll reports POLLERR, and the package's native poll callback, which
// libuv then calls with UV_EBADF, throws a C++ exception while building its error (a
// NULL syscall name): std::terminate, SIGABRT ("Error in native callback"), whatever JS
// does. 300 route deletions sent at once did that. So a handle keeps at most
// `maxInFlight` requests on its socket (what its receive buffer holds at the worst ack
// size), queueing the rest; changes that come in numbers (a veth's routes and
// addresses) do not go through it at all: `batch` sends them as tapwire's own messages
// (rtnl-messages.ts) in bounded chunks from a pool thread (netlinkBatchIn). Should the
// socket fail anyway, its 'error' fails the handle's requests instead of leaving them
// waiting for replies that were lost.
import { createRtNetlink, FlagsGet, FlagsNew, NetlinkMessage, RtNetlinkSocket } from 'netlink';
import { errnoName, closeFd, netlinkBatchIn, netlinkDump, netlinkSocketHere, withNetns } from '../native';
import { ipToBuffer } from './addr-text';
import { macFromBuffer, macToBuffer } from './mac';
import { nlattr, nlattrs, u32 } from './nlattr';
import { IFLA_INFO, RTM_DELLINK } from './rtnl-constants';
import {
  addressPayload,
  routeLabel,
  routePayload,
  RTM_DELADDR,
  RTM_DELROUTE,
  RTM_NEWROUTE,
  type RouteSpec,
} from './rtnl-messages';
import {
  linkKindOf,
  parseAddrMessage,
  parseLinkMessage,
  parseRouteMessage,
  RTM_GETLINK,
  RTM_NEWLINK,
  routeOif,
  RTM_GETADDR,
  RTM_GETROUTE,
  RTM_NEWADDR,
  type RtnlAddress,
  type RtnlLink,
  type RtnlRoute,
  parseNeighMessage,
  RTM_GETNEIGH,
  RTM_NEWNEIGH,
  type RtnlNeighbour,
} from './rtnl-parse';

export { ipFromBuffer, ipToBuffer } from './addr-text';
export { macFromBuffer, macToBuffer } from './mac';
export type { RouteSpec } from './rtnl-messages';
export type { RtnlAddress, RtnlNeighbour, RtnlRoute } from './rtnl-parse';

/** A failed netlink operation: "failed to <verb> <object> in netns <path>: <CODE>". */
export class NetError extends Error {
  constructor(
    readonly code: string,
    readonly verb: string,
    readonly object: string,
    readonly netns: string,
  ) {
    super(`failed to ${verb} ${object} in netns ${netns}: ${code}`);
    this.name = 'NetError';
  }
}

export function isNetError(e: unknown, code?: string): e is NetError {
  return e instanceof NetError && (code === undefined || e.code === code);
}

function errCode(e: unknown): string {
  const m = /Request rejected: (\w+)/.exec(String((e as Error)?.message ?? e));
  if (m) return m[1]!;
  const c = (e as NodeJS.ErrnoException)?.code;
  return typeof c === 'string' ? c : 'EIO';
}

const IFLA_BR_FORWARD_DELAY = 1;
const IFLA_BR_STP_STATE = 5;
const NUD_PERMANENT = 0x80;

/** IFLA_LINKINFO for a bridge with STP off and no forward delay. */
function bridgeLinkInfo(): Buffer {
  const data = Buffer.concat([nlattr(IFLA_BR_STP_STATE, u32(0)), nlattr(IFLA_BR_FORWARD_DELAY, u32(0))]);
  return Buffer.concat([nlattr(IFLA_INFO.KIND, Buffer.from('bridge\0')), nlattr(IFLA_INFO.DATA | 0x8000, data)]);
}

/** IFLA_MACVLAN_MODE values (if_link.h) of the modes a macvtap NIC may take. */
export const MACVTAP_MODES = { bridge: 4, passthru: 8 } as const;

/** IFLA_LINKINFO for a macvtap in `mode`. */
function macvtapLinkInfo(mode: keyof typeof MACVTAP_MODES): Buffer {
  const data = nlattr(1 /* IFLA_MACVLAN_MODE */, u32(MACVTAP_MODES[mode]));
  return Buffer.concat([nlattr(IFLA_INFO.KIND, Buffer.from('macvtap\0')), nlattr(IFLA_INFO.DATA | 0x8000, data)]);
}

/** A link as the kernel reports it (RTM_GETLINK); decoded by rtnl-parse.ts. */
export type LinkState = RtnlLink;

export interface LinkChange {
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** ifindex of the new master; 0 releases the link from its master */
  master?: number;
  name?: string;
  /** IFLA_IFALIAS ("" clears it) */
  alias?: string;
  /** IFLA_GROUP */
  group?: number;
}

/** One change for NetlinkHandle.batch: a message of its own, and how a failure names it. */
export interface RtChange {
  type: number;
  /** NLM_F_* besides REQUEST and ACK (CREATE, REPLACE, APPEND, EXCL) */
  flags: number;
  payload: Buffer;
  verb: string;
  object: string;
}

/** Route changes: add (before the routes with its key), replace (the first with its key), append (after them), delete. */
export function routeChange(op: 'add' | 'replace' | 'append' | 'delete', r: RouteSpec): RtChange {
  const payload = routePayload(r);
  const object = routeLabel(r);
  if (op === 'delete') return { type: RTM_DELROUTE, flags: 0, payload, verb: 'delete', object };
  // add: create, before the routes another interface has with the same key (as `ip route prepend`)
  const mode = { add: 0, append: FlagsNew.APPEND, replace: FlagsNew.REPLACE }[op];
  return { type: RTM_NEWROUTE, flags: FlagsNew.CREATE | mode, payload, verb: op, object };
}

export function addressDelete(index: number, label: string, ip: string, prefixLen: number): RtChange {
  return {
    type: RTM_DELADDR,
    flags: 0,
    payload: addressPayload(index, ip, prefixLen),
    verb: 'delete address',
    object: `${ip}/${prefixLen} from "${label}"`,
  };
}

/**
 * Messages per netlinkBatchIn call: its socket must hold every ack of a chunk at once
 * (under 1 KB of receive buffer each, of the 1 MB it asks for) and its send buffer the
 * chunk itself (a route message is under 100 bytes).
 */
const BATCH_CHUNK = 256;
/** Changes NetlinkHandle.batch sends on the handle's own socket rather than from a pool thread. */
const SMALL_BATCH = 8;
const NETLINK_ROUTE = 0;
const NLM_F_REQUEST_ACK = 0x5;
const NLM_F_DUMP_INTR = 0x10;

/** One netlink message: nlmsghdr (port 0: the kernel fills it in) and a 4-aligned payload. */
function nlmsg(type: number, flags: number, seq: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32LE(16 + payload.length, 0);
  head.writeUInt16LE(type, 4);
  head.writeUInt16LE(flags, 6);
  head.writeUInt32LE(seq, 8);
  return Buffer.concat([head, payload]);
}

const kindOf = linkKindOf;

const IFLA_TUN_NUM_QUEUES = 8;
const IFLA_TUN_NUM_DISABLED_QUEUES = 9;

/** Queue files attached to a tun/tap (IFLA_TUN_NUM_QUEUES, IFLA_TUN_NUM_DISABLED_QUEUES). */
export interface TunQueues {
  /** files attached and enabled */
  attached: number;
  /** files attached but detached from the queue set (TUNSETQUEUE IFF_DETACH_QUEUE) */
  disabled: number;
}

function tunQueuesOf(linkinfo: Buffer | undefined): TunQueues | undefined {
  if (!linkinfo || kindOf(linkinfo) !== 'tun') return undefined;
  const q: TunQueues = { attached: 0, disabled: 0 };
  let seen = false;
  for (const [type, data] of nlattrs(linkinfo)) {
    if (type !== IFLA_INFO.DATA) continue;
    for (const [t, v] of nlattrs(data)) {
      if (v.length < 4) continue;
      if (t === IFLA_TUN_NUM_QUEUES) [q.attached, seen] = [v.readUInt32LE(0), true];
      if (t === IFLA_TUN_NUM_DISABLED_QUEUES) q.disabled = v.readUInt32LE(0);
    }
  }
  return seen ? q : undefined;
}

/** Receive buffer a handle's socket asks for (SO_RCVBUF, within net.core.rmem_max). */
const RCVBUF = 256 << 10;
/**
 * Receive buffer per request in flight: the worst ack, an error echoing a request of
 * about a kilobyte (these are smaller), takes some 2.3 KB of it (its skb's truesize).
 */
const RCVBUF_PER_REQUEST = 4096;
const MAX_IN_FLIGHT = 16;

/** The routes through one link and every route with the link it goes out through (routesAround). */
export interface RoutesAround {
  through: RtnlRoute[];
  all: { ifindex: number; route: RtnlRoute }[];
}

/** RoutesAround from the payloads of a route dump, in the kernel's order. */
function routesAroundOf(payloads: readonly Buffer[], ifindex: number): RoutesAround {
  const through: RtnlRoute[] = [];
  const all: { ifindex: number; route: RtnlRoute }[] = [];
  for (const d of payloads) {
    const mine = parseRouteMessage(d, ifindex);
    if (mine) through.push(mine);
    const oif = routeOif(d);
    const route = oif === ifindex ? mine : oif === undefined ? undefined : parseRouteMessage(d, oif);
    if (route) all.push({ ifindex: oif!, route });
  }
  return { through, all };
}

export class NetlinkHandle {
  /** rejects once the socket failed (never resolves); every request races it */
  private readonly broken: Promise<never>;
  private failure: unknown;
  /** requests on the socket at once at most: their acks fit its receive buffer */
  readonly maxInFlight: number;
  private inFlight = 0;
  private readonly queued: (() => void)[] = [];
  /** settles when the last dump asked for is done (dump() queues behind it) */
  private dumping: Promise<void> = Promise.resolve();
  /** set while a dump has the socket to itself; other requests wait for it */
  private dumpGate: Promise<void> | undefined;
  /** called when no request is on the socket any more */
  private idleWaiters: (() => void)[] = [];

  private constructor(
    private readonly sock: RtNetlinkSocket,
    readonly netns: string,
  ) {
    let rcvbuf = sock.socket.getRecvBufferSize();
    if (rcvbuf < RCVBUF) {
      try {
        sock.socket.setRecvBufferSize(RCVBUF);
        rcvbuf = sock.socket.getRecvBufferSize();
      } catch {
        /* keep the default; fewer requests in flight then */
      }
    }
    this.maxInFlight = Math.max(1, Math.min(MAX_IN_FLIGHT, Math.floor(rcvbuf / RCVBUF_PER_REQUEST)));
    this.broken = new Promise<never>((_resolve, reject) => {
      sock.socket.on('error', (e: unknown) => {
        // replies may have been lost: nothing this socket waits for can be trusted to come
        this.failure ??= e;
        reject(e);
        // not from inside the package's native callback, which goes on using the socket
        setImmediate(() => this.close());
      });
    });
    this.broken.catch(() => undefined); // settled through run(); never an unhandled rejection
  }

  /** Opens a route socket inside netns (a path); the socket stays there. */
  static open(netns: string): NetlinkHandle {
    try {
      return new NetlinkHandle(
        withNetns(netns, () => createRtNetlink()),
        netns,
      );
    } catch (e) {
      throw new NetError(errCode(e), 'open netlink socket', 'rtnetlink', netns);
    }
  }

  /**
   * Opens a route socket in the calling thread's namespace, which must be the one at
   * `netns` (called inside a withNetns window for it: a caller that enters it anyway
   * for something else makes the socket there rather than entering again).
   */
  static inWindow(netns: string): NetlinkHandle {
    try {
      return new NetlinkHandle(createRtNetlink(), netns);
    } catch (e) {
      throw new NetError(errCode(e), 'open netlink socket', 'rtnetlink', netns);
    }
  }

  close(): void {
    try {
      this.sock.socket.close();
    } catch {
      /* already closed */
    }
  }

  private async run<T>(verb: string, object: string, op: () => Promise<T>, dump = false): Promise<T> {
    // nothing else goes on the socket while a dump is read (dump())
    if (!dump) while (this.dumpGate) await this.dumpGate;
    // a slot is taken here, or handed over by the request that frees it
    if (this.inFlight < this.maxInFlight) this.inFlight++;
    else await new Promise<void>((go) => this.queued.push(go));
    try {
      if (this.failure !== undefined) throw this.failure;
      return await Promise.race([op(), this.broken]);
    } catch (e) {
      throw new NetError(errCode(e), verb, object, this.netns);
    } finally {
      const next = this.queued.shift();
      if (next) next();
      else if (--this.inFlight === 0) for (const idle of this.idleWaiters.splice(0)) idle();
    }
  }

  /** Settles when no request is on the socket. */
  private idle(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise<void>((r) => this.idleWaiters.push(r));
  }

  /**
   * A dump request of `type` (payload: the request's struct), retried while the kernel
   * flags it interrupted (the tables changed meanwhile, NLM_F_DUMP_INTR); the messages.
   */
  async dump(type: number, payload: Buffer, what: string, tries = 5): Promise<NetlinkMessage[]> {
    return this.alone(async () => {
      for (let i = 1; ; i++) {
        const [msgs] = await this.run(
          'dump',
          what,
          () => this.sock.socket.request(type, payload, { flags: FlagsGet.DUMP }),
          true,
        );
        if (!msgs.some((m) => m.flags & NLM_F_DUMP_INTR)) return msgs;
        if (i >= tries) throw new NetError('EINTR', 'dump', `${what} (interrupted ${tries} times)`, this.netns);
      }
    });
  }

  /**
   * Runs `read` (a dump) alone on the socket. One dump at a time: the kernel runs one dump
   * per socket and answers a second with EBUSY (callers that share the handle, as a
   * setup's NICs planned at once, need not know). And no other request meanwhile: the
   * kernel makes a dump's parts as the socket is read, so the acks of requests sent
   * meanwhile land between them, and the netlink package takes a reply of another
   * sequence number inside a multipart reply as its unterminated end (EIO).
   */
  private async alone<T>(read: () => Promise<T>): Promise<T> {
    const before = this.dumping;
    let done!: () => void;
    this.dumping = new Promise<void>((r) => (done = r));
    await before;
    let open!: () => void;
    this.dumpGate = new Promise<void>((r) => (open = r));
    try {
      await this.idle();
      return await read();
    } finally {
      this.dumpGate = undefined;
      open();
      done();
    }
  }

  /**
   * Sends `changes` in order: up to SMALL_BATCH as pipelined requests on this handle's
   * socket (within maxInFlight; rtnetlink handles a socket's requests in the order sent),
   * more as tapwire's own messages in chunks of BATCH_CHUNK from a pool thread inside the
   * netns (netlinkBatchIn: each chunk in one sendto(), which the kernel handles in order
   * before it returns), never piled up on this handle's socket. Resolves with each
   * change's failure (a NetError) or undefined, in order; rejects when a chunk could not
   * be sent or its acks were lost, or the socket failed (the changes sent so far are made).
   */
  async batch(changes: readonly RtChange[]): Promise<(NetError | undefined)[]> {
    // a few: pipelined on this socket (in order, within maxInFlight), cheaper than a pool
    // thread's namespace window
    if (changes.length <= SMALL_BATCH) {
      return Promise.all(
        changes.map((c) =>
          this.run(c.verb, c.object, () => this.sock.socket.request(c.type, c.payload, { flags: c.flags })).then(
            () => undefined,
            (e: unknown) => {
              if (e instanceof NetError && this.failure === undefined) return e;
              throw e; // the socket failed: its acks are lost
            },
          ),
        ),
      );
    }
    const out: (NetError | undefined)[] = [];
    for (let at = 0; at < changes.length; at += BATCH_CHUNK) {
      const chunk = changes.slice(at, at + BATCH_CHUNK);
      const buf = Buffer.concat(chunk.map((c, i) => nlmsg(c.type, c.flags | NLM_F_REQUEST_ACK, i + 1, c.payload)));
      let replies;
      try {
        replies = await netlinkBatchIn(this.netns, NETLINK_ROUTE, buf);
      } catch (e) {
        const what = `${chunk.length} changes (${chunk[0]!.verb} ${chunk[0]!.object}, ...)`;
        throw new NetError(errCode(e), 'send', what, this.netns);
      }
      const bySeq = new Map(replies.map((r) => [r.seq, r]));
      chunk.forEach((c, i) => {
        const r = bySeq.get(i + 1);
        const code = r === undefined ? 'EIO' : r.error === 0 ? undefined : errnoName(r.error).code;
        out.push(code === undefined ? undefined : new NetError(code, c.verb, c.object, this.netns));
      });
    }
    return out;
  }

  async links(): Promise<LinkState[]> {
    const msgs = await this.alone(() => this.run('list', 'links', () => this.sock.getLinks(), true));
    return msgs.map((m) => ({
      index: m.data.index ?? 0,
      name: m.attrs.ifname ?? '',
      mac: m.attrs.address ? macFromBuffer(m.attrs.address) : '',
      mtu: m.attrs.mtu ?? 0,
      up: !!m.data.flags?.up,
      ...(m.attrs.master !== undefined ? { master: m.attrs.master } : {}),
      ...(kindOf(m.attrs.linkinfo) !== undefined ? { kind: kindOf(m.attrs.linkinfo)! } : {}),
      ...(m.attrs.ifalias ? { alias: m.attrs.ifalias } : {}),
      group: m.attrs.group ?? 0,
    }));
  }

  /** Every address on link `ifindex`, both families. */
  async addressesOf(ifindex: number): Promise<RtnlAddress[]> {
    // struct ifaddrmsg, all zero: both families
    return (await this.dump(RTM_GETADDR, Buffer.alloc(8), 'addresses'))
      .filter((m) => m.type === RTM_NEWADDR)
      .map((m) => parseAddrMessage(m.data, ifindex))
      .filter((x): x is RtnlAddress => x !== undefined);
  }

  /** The neighbour entries of link `ifindex`, both families. */
  async neighboursOf(ifindex: number): Promise<RtnlNeighbour[]> {
    // struct ndmsg, all zero: both families
    return (await this.dump(RTM_GETNEIGH, Buffer.alloc(12), 'neighbours'))
      .filter((m) => m.type === RTM_NEWNEIGH)
      .map((m) => parseNeighMessage(m.data, ifindex))
      .filter((x): x is RtnlNeighbour => x !== undefined);
  }

  /** Every route of every table that goes out through link `ifindex` (its oif or one of its nexthops). */
  async routesThrough(ifindex: number): Promise<RtnlRoute[]> {
    // struct rtmsg, all zero: both families; RT_TABLE_UNSPEC = every table
    return (await this.dump(RTM_GETROUTE, Buffer.alloc(12), 'routes'))
      .filter((m) => m.type === RTM_NEWROUTE)
      .map((m) => parseRouteMessage(m.data, ifindex))
      .filter((x): x is RtnlRoute => x !== undefined);
  }

  /**
   * One dump: the routes through ifindex (as routesThrough) and every route (both
   * families, every table) in the kernel's order with the interface it goes out through.
   */
  async routesAround(ifindex: number): Promise<RoutesAround> {
    const msgs = await this.dump(RTM_GETROUTE, Buffer.alloc(12), 'routes');
    return routesAroundOf(
      msgs.filter((m) => m.type === RTM_NEWROUTE).map((m) => m.data),
      ifindex,
    );
  }

  async link(name: string): Promise<LinkState | undefined> {
    return (await this.links()).find((l) => l.name === name);
  }

  /**
   * How many files are attached to multiqueue tun/tap `name` (each open file of
   * /dev/net/tun attached to it by TUNSETIFF is one; dups and fds passed on share theirs).
   * undefined when the kernel does not say: it reports the counts only for IFF_MULTI_QUEUE
   * devices (and since Linux 4.15), or `name` is no tun/tap. ENODEV when there is none.
   */
  async tunQueues(name: string): Promise<TunQueues | undefined> {
    const msgs = await this.run('read', `link "${name}"`, () => this.sock.getLink({}, { ifname: name }));
    return tunQueuesOf(msgs[0]?.attrs.linkinfo);
  }

  /**
   * Creates a bridge (STP off, forward delay 0), up if `up`, with interface index `index`
   * when given; EEXIST if the name is taken, EBUSY if the index is.
   */
  async createBridge(
    name: string,
    opts: { mtu?: number; mac?: string; group?: number; up?: boolean; index?: number } = {},
  ): Promise<void> {
    await this.run('create bridge', `"${name}"${opts.index ? ` (ifindex ${opts.index})` : ''}`, () =>
      this.sock.newLink(
        {
          ...(opts.index ? { index: opts.index } : {}),
          ...(opts.up ? { change: { up: true }, flags: { up: true } } : {}),
        },
        {
          ifname: name,
          linkinfo: bridgeLinkInfo(),
          ...(opts.mtu ? { mtu: opts.mtu } : {}),
          ...(opts.mac ? { address: macToBuffer(opts.mac) } : {}),
          ...(opts.group ? { group: opts.group } : {}),
        },
        { flags: FlagsNew.CREATE | FlagsNew.EXCL },
      ),
    );
  }

  /**
   * Creates a macvtap on the link `lower` (its /dev/tap<index> appears with it), up if
   * `up`, with interface index `index` when given; EEXIST if the name is taken, EBUSY if
   * the index is.
   */
  async createMacvtap(
    name: string,
    lower: number,
    opts: {
      mode: keyof typeof MACVTAP_MODES;
      mtu?: number;
      mac?: string;
      group?: number;
      up?: boolean;
      index?: number;
    },
  ): Promise<void> {
    await this.run('create macvtap', `"${name}"${opts.index ? ` (ifindex ${opts.index})` : ''}`, () =>
      this.sock.newLink(
        {
          ...(opts.index ? { index: opts.index } : {}),
          ...(opts.up ? { change: { up: true }, flags: { up: true } } : {}),
        },
        {
          ifname: name,
          link: u32(lower),
          linkinfo: macvtapLinkInfo(opts.mode),
          ...(opts.mtu ? { mtu: opts.mtu } : {}),
          ...(opts.mac ? { address: macToBuffer(opts.mac) } : {}),
          ...(opts.group ? { group: opts.group } : {}),
        },
        { flags: FlagsNew.CREATE | FlagsNew.EXCL },
      ),
    );
  }

  async setLink(index: number, label: string, change: LinkChange): Promise<void> {
    const attrs: Record<string, unknown> = {};
    if (change.mtu !== undefined) attrs.mtu = change.mtu;
    if (change.mac !== undefined) attrs.address = macToBuffer(change.mac);
    if (change.master !== undefined) attrs.master = change.master;
    if (change.name !== undefined) attrs.ifname = change.name;
    if (change.alias !== undefined) attrs.ifalias = change.alias;
    if (change.group !== undefined) attrs.group = change.group;
    const data =
      change.up === undefined
        ? { index }
        : { index, change: { up: true as const }, flags: change.up ? { up: true as const } : {} };
    await this.run(`set ${Object.keys(change).join(',')} of`, `"${label}"`, () => this.sock.setLink(data, attrs));
  }

  async deleteLink(index: number, label: string): Promise<void> {
    await this.run('delete link', `"${label}"`, () => this.sock.delLink({ index }));
  }

  /** `flags`: IFA_F_* bits to set (e.g. 0x200 noprefixroute), sent as IFA_FLAGS. */
  async addAddress(
    index: number,
    label: string,
    ip: string,
    prefixLen: number,
    broadcast?: string,
    flags?: number,
  ): Promise<void> {
    const family = ip.includes(':') ? 10 : 2;
    const addr = ipToBuffer(ip);
    await this.run('add address', `${ip}/${prefixLen} to "${label}"`, () =>
      this.sock.newAddress(
        { family, prefixlen: prefixLen, index },
        {
          local: addr,
          address: addr,
          ...(broadcast ? { broadcast: ipToBuffer(broadcast) } : {}),
          ...(flags ? { flags: { __unknown: flags } } : {}),
        },
        { flags: FlagsNew.CREATE | FlagsNew.EXCL },
      ),
    );
  }

  async delAddress(index: number, label: string, ip: string, prefixLen: number): Promise<void> {
    const family = ip.includes(':') ? 10 : 2;
    const addr = ipToBuffer(ip);
    await this.run('delete address', `${ip}/${prefixLen} from "${label}"`, () =>
      this.sock.delAddress({ family, prefixlen: prefixLen, index }, { local: addr, address: addr }),
    );
  }

  /**
   * Adds a route; `replace` swaps the first route with the same key (dst, tos, metric,
   * table); `append` adds it after the routes with that key (`ip route append`).
   */
  async addRoute(r: RouteSpec, opts: { replace?: boolean; append?: boolean } = {}): Promise<void> {
    const mode = opts.replace ? FlagsNew.REPLACE : opts.append ? FlagsNew.APPEND : FlagsNew.EXCL;
    const verb = opts.replace ? 'replace' : opts.append ? 'append' : 'add';
    await this.run(verb, routeLabel(r), () =>
      this.sock.socket.request(RTM_NEWROUTE, routePayload(r), { flags: FlagsNew.CREATE | mode }),
    );
  }

  async delRoute(r: RouteSpec): Promise<void> {
    await this.run('delete', routeLabel(r), () => this.sock.socket.request(RTM_DELROUTE, routePayload(r)));
  }

  /** A permanent neighbour entry (ip -> mac) on a link. */
  async setNeighbor(index: number, label: string, ip: string, mac: string): Promise<void> {
    await this.run('set neighbour', `${ip} lladdr ${mac} on "${label}"`, () =>
      this.sock.newNeighbor(
        { family: ip.includes(':') ? 10 : 2, ifindex: index, state: { permanent: true } },
        { dst: ipToBuffer(ip), lladdr: macToBuffer(mac) },
        { flags: FlagsNew.CREATE | FlagsNew.REPLACE },
      ),
    );
  }
}

export const NUD = { PERMANENT: NUD_PERMANENT };

const IFLA_GROUP = 27;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_DUMP = 0x300;

/**
 * Deletes every link of IFLA_GROUP `group` in the namespace at path `netns` with one
 * RTM_DELLINK (ifindex 0 + IFLA_GROUP: one kernel unregister batch), sent from a pool
 * thread (netlinkBatchIn): unregistering waits for RCU grace periods, tens of ms the
 * event loop does not spend blocked. Rejects like a failed syscall (code, errno,
 * syscall "RTM_DELLINK", netns): ENODEV when the group is empty, ENOTSUP (errno 95)
 * when a link in it cannot be deleted that way; as netlinkBatchIn when the namespace
 * cannot be entered.
 */
export function deleteLinkGroup(netns: string, group: number): Promise<void> {
  if (!Number.isInteger(group) || group < 1 || group > 0xffffffff) {
    throw new RangeError(`group must be an integer 1..4294967295, got ${String(group)}`);
  }
  const msg = Buffer.alloc(40); // nlmsghdr, ifinfomsg (all zero: AF_UNSPEC, any ifindex), IFLA_GROUP
  msg.writeUInt32LE(msg.length, 0);
  msg.writeUInt16LE(RTM_DELLINK, 4);
  msg.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK, 6);
  msg.writeUInt32LE(1, 8); // seq
  msg.writeUInt16LE(8, 32);
  msg.writeUInt16LE(IFLA_GROUP, 34);
  msg.writeUInt32LE(group, 36);
  return netlinkBatchIn(netns, NETLINK_ROUTE, msg).then((replies) => {
    const r = replies.find((x) => x.seq === 1);
    if (r?.error === 0) return;
    const { code, text } = r ? errnoName(r.error) : { code: 'EIO', text: 'no answer from the kernel' };
    const why = r?.message ? `${text}: ${r.message}` : text;
    throw Object.assign(new Error(`RTM_DELLINK(group ${group}) failed: ${why} (${code})`), {
      code,
      errno: r?.error ?? 5,
      syscall: 'RTM_DELLINK',
      netns,
    });
  });
}

/**
 * The reads a setup makes before it changes anything (links, a link's addresses and
 * routes), answered synchronously on a route socket of tapwire's own (native netlinkDump:
 * the kernel makes a dump as it is read, in the reader's syscall): no event-loop round
 * trip per dump, nothing else in flight on the socket. Made in a namespace window; the
 * socket stays in that namespace. Failures are NetErrors like a NetlinkHandle's. A dump
 * past READER_MAX_BYTES (a namespace with thousands of routes, addresses or links, which
 * its owner can make) is not read here, where it would hold up the event loop in one
 * piece: that read, and every one after it, goes to a NetlinkHandle (a promise then).
 */
/** Bytes a NetlinkReader reads of one dump (some 2500 routes); past it the code TOO_LARGE. */
export const READER_MAX_BYTES = 256 << 10;
const TOO_LARGE = 'E2BIG';

export class NetlinkReader {
  private seq = 0;
  private open = true;

  private constructor(
    private readonly fd: number,
    readonly netns: string,
  ) {}

  /** Opens the socket in the calling thread's namespace, which must be the one at `netns` (in a withNetns window for it). */
  static inWindow(netns: string): NetlinkReader {
    try {
      return new NetlinkReader(netlinkSocketHere(NETLINK_ROUTE), netns);
    } catch (e) {
      throw new NetError(errCode(e), 'open netlink socket', 'rtnetlink', netns);
    }
  }

  close(): void {
    if (this.open) closeFd(this.fd);
    this.open = false;
    this.handle?.close();
  }

  /** Where reads go once one was too large for this socket. */
  private handle: NetlinkHandle | undefined;

  /** `read` here, or `slow` on a NetlinkHandle once a dump was too large to read here. */
  private read<T>(read: () => T, slow: (nl: NetlinkHandle) => Promise<T>): T | Promise<T> {
    if (!this.handle) {
      try {
        return read();
      } catch (e) {
        if (!isNetError(e, TOO_LARGE)) throw e;
        this.close(); // the rest of that dump is still on the socket
        this.handle = NetlinkHandle.open(this.netns);
      }
    }
    return slow(this.handle);
  }

  /** The payloads of a dump of `type`, retried while the kernel flags it interrupted. */
  private dump(type: number, payload: Buffer, want: number, what: string, tries = 5): Buffer[] {
    for (let i = 1; ; i++) {
      let raw: Buffer;
      try {
        raw = netlinkDump(this.fd, nlmsg(type, NLM_F_REQUEST | NLM_F_DUMP, ++this.seq, payload), READER_MAX_BYTES);
      } catch (e) {
        throw new NetError(errCode(e), 'dump', what, this.netns);
      }
      const out: Buffer[] = [];
      let intr = false;
      for (let at = 0; at + 16 <= raw.length;) {
        const len = raw.readUInt32LE(at);
        if (len < 16 || at + len > raw.length) break;
        if (raw.readUInt16LE(at + 6) & NLM_F_DUMP_INTR) intr = true;
        if (raw.readUInt16LE(at + 4) === want) out.push(raw.subarray(at + 16, at + len));
        at += (len + 3) & ~3;
      }
      if (!intr) return out;
      if (i >= tries) throw new NetError('EINTR', 'dump', `${what} (interrupted ${tries} times)`, this.netns);
    }
  }

  links(): LinkState[] | Promise<LinkState[]> {
    return this.read(
      () =>
        // struct ifinfomsg, all zero: every link
        this.dump(RTM_GETLINK, Buffer.alloc(16), RTM_NEWLINK, 'links')
          .map(parseLinkMessage)
          .filter((l): l is LinkState => l !== undefined),
      (nl) => nl.links(),
    );
  }

  /** Every address on link `ifindex`, both families. */
  addressesOf(ifindex: number): RtnlAddress[] | Promise<RtnlAddress[]> {
    return this.read(
      () =>
        this.dump(RTM_GETADDR, Buffer.alloc(8), RTM_NEWADDR, 'addresses')
          .map((d) => parseAddrMessage(d, ifindex))
          .filter((x): x is RtnlAddress => x !== undefined),
      (nl) => nl.addressesOf(ifindex),
    );
  }

  /** Every route of every table that goes out through link `ifindex` (its oif or one of its nexthops). */
  routesThrough(ifindex: number): RtnlRoute[] | Promise<RtnlRoute[]> {
    return this.read(
      () =>
        this.dump(RTM_GETROUTE, Buffer.alloc(12), RTM_NEWROUTE, 'routes')
          .map((d) => parseRouteMessage(d, ifindex))
          .filter((x): x is RtnlRoute => x !== undefined),
      (nl) => nl.routesThrough(ifindex),
    );
  }

  /** The neighbour entries of link `ifindex`, both families. */
  neighboursOf(ifindex: number): RtnlNeighbour[] | Promise<RtnlNeighbour[]> {
    return this.read(
      () =>
        // struct ndmsg, all zero: both families
        this.dump(RTM_GETNEIGH, Buffer.alloc(12), RTM_NEWNEIGH, 'neighbours')
          .map((d) => parseNeighMessage(d, ifindex))
          .filter((x): x is RtnlNeighbour => x !== undefined),
      (nl) => nl.neighboursOf(ifindex),
    );
  }

  /** One dump: the routes through ifindex and every route with its link (NetlinkHandle.routesAround). */
  routesAround(ifindex: number): RoutesAround | Promise<RoutesAround> {
    return this.read(
      () => routesAroundOf(this.dump(RTM_GETROUTE, Buffer.alloc(12), RTM_NEWROUTE, 'routes'), ifindex),
      (nl) => nl.routesAround(ifindex),
    );
  }
}
