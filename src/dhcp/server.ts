// One DHCP server per sandbox bridge, serving static leases only. Its socket is made in the
// sandbox's netns by the addon (SO_BINDTODEVICE to the bridge, port 67) and read and
// written by the addon too (sock4Watch/sock4Send), not by dgram: a request's way through
// Node is one poll callback and one sendto, with nothing allocated for the datagram, no
// tick queue and no send request (dgram's share of each exchange was most of what the
// server allocated and what made its tail: docs/dhcp-latency.md). It is listening when
// start() resolves. Idle cost is one socket: no timers, no threads; lease expiry is
// computed when stats() is read. Bad input is counted and debug-logged, never thrown out
// of the socket handler.
import {
  closeFd,
  errnoName,
  sock4Close,
  sock4Send,
  sock4Watch,
  socketPort,
  udpSocketBoundToDevice,
  withNetns,
} from '../native';
import { silentLogger, type Logger } from '../util/log';
import { RateLimiter } from '../util/rate-limit';
import { CLIENT_PORT, SERVER_PORT } from './constants';
import { newCounters, type DhcpCounters } from './counters';
import { BROADCAST } from './destination';
import { DecodeError, DhcpConfigError } from './errors';
import { FastAnswers } from './fast-answers';
import { guestLog, type Binding, type HandlerContext, type LeaseState } from './handler';
import { isIpv4 } from '../net/ipv4';
import { writeIpv4 } from './ipv4';
import { resolveLeases, type LeaseMap, type StaticLease } from './lease';
import { DhcpPacket } from './packet';
import { ReplyCache } from './reply-cache';
import { respond, type Response } from './respond';

export type { StaticLease } from './lease';
export type { DhcpLeaseOptions } from './spec-options';
export type { LeaseState } from './handler';
export type { DhcpCounters } from './counters';

export interface DhcpServerOptions {
  /** the bridge the guest's tap is on, e.g. br0 */
  ifname: string;
  /** netns path, e.g. /run/netns/x; undefined = the current one */
  netns?: string;
  /**
   * the socket, made already by udpSocketBoundToDevice(ifname, port) in the netns (by a
   * caller that was in it anyway); the server owns it from here, closed if start fails
   */
  fd?: number;
  /** our address on ifname, option 54, e.g. 169.254.254.2 */
  serverId: string;
  leases: StaticLease[];
  /** default 67 */
  port?: number;
  /** default 68 */
  clientPort?: number;
  logger?: Logger;
  /** limits the log lines a guest can cause; share one among a sandbox's servers (default: its own) */
  logLimit?: RateLimiter;
  /** whether the addon answers a request seen before by itself (fast-answers.ts); default true */
  fastAnswers?: boolean;
}

export interface DhcpLeaseStats {
  mac: string;
  ip: string;
  state: LeaseState;
  /** ISO time */
  boundAt?: string;
  expiresAt?: string;
  declinedAt?: string;
}

export interface DhcpServerStats extends DhcpCounters {
  ifname: string;
  netns?: string;
  leases: DhcpLeaseStats[];
}

function checkPort(field: string, v: unknown, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) {
    throw new DhcpConfigError(field, v, 'must be a port 0..65535');
  }
  return v;
}

function checkOptions(o: DhcpServerOptions): { port: number; clientPort: number; leases: LeaseMap } {
  if (typeof o.ifname !== 'string' || o.ifname.length === 0 || o.ifname.length > 15) {
    throw new DhcpConfigError('ifname', o.ifname, 'must be an interface name of 1-15 bytes');
  }
  if (o.netns !== undefined && (typeof o.netns !== 'string' || o.netns === '')) {
    throw new DhcpConfigError('netns', o.netns, 'must be a path');
  }
  if (!isIpv4(o.serverId)) throw new DhcpConfigError('serverId', o.serverId, 'not an IPv4 address');
  return {
    port: checkPort('port', o.port, SERVER_PORT),
    clientPort: checkPort('clientPort', o.clientPort, CLIENT_PORT),
    leases: resolveLeases(o.leases),
  };
}

/**
 * Where every server's datagrams are received: the callback runs synchronously on the one
 * JS thread, and nothing of a request outlives its handling but copies (decode copies
 * chaddr/sname/file; the reply cache copies the option values it keeps), so one buffer
 * serves them all. 64 KiB: no IPv4 UDP datagram is cut.
 */
const RECEIVE = Buffer.alloc(65536);

/** Views of RECEIVE by length, so that a datagram of a length seen before allocates nothing. */
const views = new Map<number, Buffer>();
const MAX_VIEWS = 64;

function received(length: number): Buffer {
  let v = views.get(length);
  if (v === undefined) {
    v = RECEIVE.subarray(0, length);
    if (views.size < MAX_VIEWS) views.set(length, v);
  }
  return v;
}

function addressText(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

export class DhcpServer {
  private readonly ctx: HandlerContext;
  /** the OFFERs and ACKs of the leases, kept per request shape (reply-cache.ts) */
  private readonly replies = new ReplyCache();
  /** what the addon answers by itself, or undefined when it does not */
  private readonly fast: FastAnswers | undefined;
  private open = true;
  private readonly boundPort: number;

  /** Takes fd over: watches it from here, closes it on close(). */
  private constructor(
    private readonly fd: number,
    private readonly o: DhcpServerOptions,
    private readonly port: number,
    private readonly clientPort: number,
    ctx: HandlerContext,
  ) {
    this.ctx = ctx;
    this.boundPort = socketPort(fd);
    this.fast = o.fastAnswers === false ? undefined : new FastAnswers(fd);
    sock4Watch(fd, RECEIVE, (length, from, fromPort) => this.onDatagram(length, from, fromPort));
  }

  static async start(o: DhcpServerOptions): Promise<DhcpServer> {
    if (typeof o !== 'object' || o === null) throw new TypeError('DhcpServer.start needs an options object');
    let checked;
    try {
      checked = checkOptions(o);
    } catch (e) {
      if (typeof o.fd === 'number') closeFd(o.fd); // ours from the call on
      throw e;
    }
    const { port, clientPort, leases } = checked;
    const log = o.logger ?? silentLogger;

    const open = (): number => udpSocketBoundToDevice(o.ifname, port);
    let fd: number;
    try {
      fd = o.fd ?? (o.netns === undefined ? open() : withNetns(o.netns, open));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const wrapped = new Error(
        `failed to open DHCP socket on "${o.ifname}" port ${port}${o.netns ? ` in netns ${o.netns}` : ''}: ${err.message}`,
      ) as NodeJS.ErrnoException;
      wrapped.code = err.code;
      throw wrapped;
    }
    const ctx: HandlerContext = {
      serverId: o.serverId,
      serverIdBytes: writeIpv4(Buffer.alloc(4), 0, o.serverId), // unpooled: it lives as long as the server
      leases,
      bindings: new Map<string, Binding>(),
      counters: newCounters(),
      log,
      logLimit: o.logLimit ?? new RateLimiter(),
      now: Date.now,
    };
    let server: DhcpServer;
    try {
      server = new DhcpServer(fd, o, port, clientPort, ctx);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
    log.debug('listening', { ifname: o.ifname, netns: o.netns, port, leases: leases.size });
    return server;
  }

  /** Replaces the leases; a MAC whose address is unchanged keeps its binding. */
  setLeases(leases: StaticLease[]): void {
    const next = resolveLeases(leases);
    for (const [mac] of this.ctx.bindings) {
      if (next.get(mac)?.ip !== this.ctx.leases.get(mac)?.ip) this.ctx.bindings.delete(mac);
    }
    this.ctx.leases = next;
    this.replies.clear();
    this.fast?.sync(this.ctx);
    this.fast?.forget();
  }

  /** The port the socket is bound to (the configured one, or the kernel's pick for port 0). */
  localPort(): number {
    return this.boundPort;
  }

  /** Stops serving and closes the socket (at once; a promise for the callers that await it). */
  close(): Promise<void> {
    if (this.open) {
      this.open = false;
      this.fast?.sync(this.ctx); // closing drops the addon's answers, and their count
      this.fast?.closed();
      try {
        sock4Close(this.fd);
      } catch (e) {
        this.ctx.log.warn('closing the DHCP socket failed', { error: e });
      }
    }
    return Promise.resolve();
  }

  stats(): DhcpServerStats {
    if (this.open) this.fast?.sync(this.ctx);
    const now = this.ctx.now();
    const leases: DhcpLeaseStats[] = [...this.ctx.leases.values()].map((l) => {
      const b = this.ctx.bindings.get(l.mac);
      let state: LeaseState = b?.state ?? 'none';
      if (state === 'bound' && b?.expiresAt !== undefined && b.expiresAt <= now) state = 'none'; // expired
      return {
        mac: l.mac,
        ip: l.ip,
        state,
        ...(b?.boundAt !== undefined ? { boundAt: new Date(b.boundAt).toISOString() } : {}),
        ...(b?.expiresAt !== undefined ? { expiresAt: new Date(b.expiresAt).toISOString() } : {}),
        ...(b?.declinedAt !== undefined ? { declinedAt: new Date(b.declinedAt).toISOString() } : {}),
      };
    });
    return {
      ifname: this.o.ifname,
      ...(this.o.netns !== undefined ? { netns: this.o.netns } : {}),
      ...this.ctx.counters,
      leases,
    };
  }

  private onDatagram(length: number, from: number, fromPort: number): void {
    const fast = this.fast;
    if (fast === undefined) {
      this.handle(length, from, fromPort);
      return;
    }
    try {
      fast.sync(this.ctx); // the state as the addon's answers left it
      fast.before(this.ctx.counters);
      let r: Response | undefined;
      try {
        r = this.handle(length, from, fromPort);
      } finally {
        fast.check(); // also when handling threw after changing a binding
      }
      if (r !== undefined) fast.learn(this.ctx, received(length), r);
    } catch (e) {
      // a bug: nothing may leave the socket's callback (it would reach 'uncaughtException')
      this.ctx.counters.internalErrors++;
      guestLog(this.ctx, 'internal-error', 'error', "failed to keep the addon's DHCP answers", { error: e });
    }
  }

  /** Handles a datagram of `length` bytes in RECEIVE; returns the reply when it was sent where it was meant to go. */
  private handle(length: number, from: number, fromPort: number): Response | undefined {
    const c = this.ctx.counters;
    if (length < 0) {
      c.internalErrors++;
      guestLog(this.ctx, 'socket-error', 'error', 'socket error', { code: errnoName(-length).code });
      return undefined;
    }
    c.received++;
    try {
      if (length > RECEIVE.length) {
        c.decodeErrors++;
        this.ctx.log.debug('dropped malformed message', {
          from: `${addressText(from)}:${fromPort}`,
          bytes: length,
          reason: 'oversized',
        });
        return undefined;
      }
      const msg = received(length);
      let req: DhcpPacket;
      try {
        req = DhcpPacket.decode(msg);
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
        c.decodeErrors++;
        this.ctx.log.debug('dropped malformed message', {
          from: `${addressText(from)}:${fromPort}`,
          bytes: length,
          reason: e.reason,
          option: e.option,
          error: e.message,
        });
        return undefined;
      }
      const r = respond(this.ctx, this.replies, req, msg, this.port, this.clientPort);
      if (r === undefined || !this.send(r.bytes, r.to.address, r.to.port, r.to.fallbackToBroadcast)) return undefined;
      return r;
    } catch (e) {
      c.internalErrors++;
      guestLog(this.ctx, 'internal-error', 'error', 'failed to handle DHCP message', { error: e, bytes: length });
      return undefined;
    }
  }

  /** Sends a reply; true when it went where it was meant to go (not by the broadcast fallback). */
  private send(buf: Buffer, address: string, port: number, fallback: boolean): boolean {
    if (!this.open) return false;
    const err = sock4Send(this.fd, address, port, buf);
    if (err === 0) return true;
    this.ctx.counters.sendErrors++;
    const code = errnoName(err).code;
    if (fallback) {
      this.ctx.counters.broadcastFallbacks++;
      this.ctx.log.debug('unicast reply failed, broadcasting', { to: address, code });
      this.send(buf, BROADCAST, port, false);
    } else {
      guestLog(this.ctx, 'send-failed', 'warn', 'failed to send DHCP reply', { to: `${address}:${port}`, code });
    }
    return false;
  }
}
