// The one gate to rtnetlink. A NetlinkHandle is a route socket created inside a
// network namespace (synchronously, in a withNetns window) and used asynchronously
// afterwards: a socket stays in the namespace it was made in. Every failure becomes a
// NetError carrying the kernel's errno code, the verb and the object.
import { createRtNetlink, FlagsNew, RtNetlinkSocket } from 'netlink';
import { errnoName, netlinkBatchIn, withNetns } from '../native';
import { ipToBuffer, macToBuffer } from './addr-text';

export { ipFromBuffer, ipToBuffer, macFromBuffer, macToBuffer } from './addr-text';

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

const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_BR_FORWARD_DELAY = 1;
const IFLA_BR_STP_STATE = 5;
const NUD_PERMANENT = 0x80;

function nlattr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v, 0);
  return b;
}

/** IFLA_LINKINFO for a bridge with STP off and no forward delay. */
function bridgeLinkInfo(): Buffer {
  const data = Buffer.concat([nlattr(IFLA_BR_STP_STATE, u32(0)), nlattr(IFLA_BR_FORWARD_DELAY, u32(0))]);
  return Buffer.concat([nlattr(IFLA_INFO_KIND, Buffer.from('bridge\0')), nlattr(IFLA_INFO_DATA | 0x8000, data)]);
}

export interface LinkState {
  index: number;
  name: string;
  mac: string;
  mtu: number;
  up: boolean;
  master?: number;
  kind?: string;
  /** IFLA_IFALIAS, when set */
  alias?: string;
  /** IFLA_GROUP (0, the default group, when unset) */
  group: number;
}

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

export interface RouteSpec {
  dst: string; // 'a.b.c.d/len'
  gateway?: string;
  oif: number;
  scope?: number;
  protocol?: number;
  type?: number;
  table?: number;
  metric?: number;
  prefsrc?: string;
  /** source prefix 'a.b.c.d/len' (a source-routed route) */
  src?: string;
  tos?: number;
  onlink?: boolean;
  /** RTAX_MTU / RTAX_ADVMSS */
  mtu?: number;
  advmss?: number;
}

function kindOf(linkinfo: Buffer | undefined): string | undefined {
  if (!linkinfo) return undefined;
  for (let off = 0; off + 4 <= linkinfo.length;) {
    const len = linkinfo.readUInt16LE(off);
    const type = linkinfo.readUInt16LE(off + 2) & 0x7fff;
    if (len < 4) break;
    if (type === IFLA_INFO_KIND)
      return linkinfo
        .subarray(off + 4, off + len)
        .toString()
        .replace(/\0+$/, '');
    off += (len + 3) & ~3;
  }
  return undefined;
}

export class NetlinkHandle {
  private constructor(
    private readonly sock: RtNetlinkSocket,
    readonly netns: string,
  ) {}

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

  close(): void {
    try {
      this.sock.socket.close();
    } catch {
      /* already closed */
    }
  }

  private async run<T>(verb: string, object: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      throw new NetError(errCode(e), verb, object, this.netns);
    }
  }

  async links(): Promise<LinkState[]> {
    const msgs = await this.run('list', 'links', () => this.sock.getLinks());
    return msgs.map((m) => ({
      index: m.data.index ?? 0,
      name: m.attrs.ifname ?? '',
      mac: m.attrs.address ? [...m.attrs.address].map((b) => b.toString(16).padStart(2, '0')).join(':') : '',
      mtu: m.attrs.mtu ?? 0,
      up: !!m.data.flags?.up,
      ...(m.attrs.master !== undefined ? { master: m.attrs.master } : {}),
      ...(kindOf(m.attrs.linkinfo) !== undefined ? { kind: kindOf(m.attrs.linkinfo)! } : {}),
      ...(m.attrs.ifalias ? { alias: m.attrs.ifalias } : {}),
      group: m.attrs.group ?? 0,
    }));
  }

  async link(name: string): Promise<LinkState | undefined> {
    return (await this.links()).find((l) => l.name === name);
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

  private routeMessage(r: RouteSpec): [Record<string, unknown>, Record<string, unknown>] {
    const [dst, len] = r.dst.split('/') as [string, string];
    const dstLen = Number(len);
    const family = dst.includes(':') ? 10 : 2;
    const data = {
      family,
      dstLen,
      tos: r.tos ?? 0,
      table: r.table !== undefined && r.table < 256 ? r.table : 254,
      protocol: r.protocol ?? 4,
      scope: r.scope ?? (r.gateway ? 0 : 253),
      type: r.type ?? 1,
      flags: r.onlink ? { __unknown: 4 /* RTNH_F_ONLINK */ } : {},
    };
    const attrs: Record<string, unknown> = { oif: r.oif };
    if (dstLen > 0) attrs.dst = ipToBuffer(dst);
    if (r.gateway) attrs.gateway = ipToBuffer(r.gateway);
    if (r.metric !== undefined) attrs.priority = r.metric;
    if (r.prefsrc) attrs.prefsrc = ipToBuffer(r.prefsrc);
    if (r.table !== undefined && r.table >= 256) attrs.table = r.table;
    if (r.src) {
      const [src, srcLen] = r.src.split('/') as [string, string];
      Object.assign(data, { srcLen: Number(srcLen) });
      attrs.src = ipToBuffer(src);
    }
    if (r.mtu || r.advmss) {
      const u32 = (n: number) => {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(n);
        return b;
      };
      attrs.metrics = { ...(r.mtu ? { mtu: u32(r.mtu) } : {}), ...(r.advmss ? { advmss: u32(r.advmss) } : {}) };
    }
    return [data, attrs];
  }

  private static routeLabel(r: RouteSpec): string {
    return `route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.metric !== undefined ? ` metric ${r.metric}` : ''}`;
  }

  /**
   * Adds a route; `replace` swaps the first route with the same key (dst, tos, metric,
   * table); `append` adds it after the routes with that key (`ip route append`).
   */
  async addRoute(r: RouteSpec, opts: { replace?: boolean; append?: boolean } = {}): Promise<void> {
    const [data, attrs] = this.routeMessage(r);
    const mode = opts.replace ? FlagsNew.REPLACE : opts.append ? FlagsNew.APPEND : FlagsNew.EXCL;
    const verb = opts.replace ? 'replace' : opts.append ? 'append' : 'add';
    await this.run(verb, NetlinkHandle.routeLabel(r), () =>
      this.sock.newRoute(data, attrs, { flags: FlagsNew.CREATE | mode }),
    );
  }

  async delRoute(r: RouteSpec): Promise<void> {
    const [data, attrs] = this.routeMessage(r);
    await this.run('delete', NetlinkHandle.routeLabel(r), () => this.sock.delRoute(data, attrs));
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

const NETLINK_ROUTE = 0;
const RTM_DELLINK = 17;
const IFLA_GROUP = 27;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;

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
