// The server's state machine (RFC 2131 4.3), free of sockets: a decoded request in, a
// reply (or nothing) out, with the per-MAC binding state updated. Expiry is never timed:
// a binding is "bound" until expiresAt, computed when read.
import { formatIpv4 } from '../net/ipv4';
import { MessageType, Opt } from './constants';
import type { DhcpCounters } from './counters';
import type { LeaseMap, ResolvedLease } from './lease';
import { IpOption, TextOption } from './options';
import type { DhcpPacket } from './packet';
import { Answer, buildReply, type Decision } from './reply';
import type { Logger } from '../util/log';
import type { RateLimiter } from '../util/rate-limit';

export type LeaseState = 'none' | 'offered' | 'bound' | 'released' | 'declined';

export interface Binding {
  state: LeaseState;
  /** ms since the epoch */
  boundAt?: number;
  expiresAt?: number;
  /** last DECLINE; the state stays 'declined' through DISCOVERs until an ACK */
  declinedAt?: number;
}

export interface HandlerContext {
  /** our address, option 54, as text */
  serverId: string;
  /** the same as 4 bytes: what replies carry and what requests' option 54 is compared with */
  serverIdBytes: Buffer;
  leases: LeaseMap;
  bindings: Map<string, Binding>;
  counters: DhcpCounters;
  log: Logger;
  /** limits the lines a guest can make the server write (none when absent) */
  logLimit?: RateLimiter;
  now: () => number;
}

const ZERO = '0.0.0.0';

/**
 * A line a guest can make us write as often as it sends: at most a burst and then one per
 * interval of each kind; the rest are counted (logLinesSuppressed), and the next line of
 * that kind that is written says how many were left out before it (`suppressed`).
 */
export function guestLog(
  ctx: Pick<HandlerContext, 'log' | 'logLimit' | 'counters'>,
  kind: string,
  level: 'info' | 'warn' | 'error',
  msg: string,
  fields: Record<string, unknown>,
): void {
  const suppressed = ctx.logLimit ? ctx.logLimit.take(kind) : 0;
  if (suppressed === undefined) {
    ctx.counters.logLinesSuppressed++;
    return;
  }
  ctx.log[level](msg, suppressed > 0 ? { ...fields, suppressed } : fields);
}

function binding(ctx: HandlerContext, mac: string): Binding {
  let b = ctx.bindings.get(mac);
  if (!b) ctx.bindings.set(mac, (b = { state: 'none' }));
  return b;
}

function ack(ctx: HandlerContext, req: DhcpPacket, lease: ResolvedLease, kind: string): Decision {
  const b = binding(ctx, lease.mac);
  const now = ctx.now();
  const first = b.state !== 'bound' || (b.expiresAt !== undefined && b.expiresAt <= now);
  b.state = 'bound';
  b.boundAt = now;
  b.expiresAt = lease.leaseTime === 0xffffffff ? undefined : now + lease.leaseTime * 1000;
  ctx.counters.ack++;
  const fields = { mac: lease.mac, ip: lease.ip, kind, xid: req.xid };
  if (first) guestLog(ctx, 'bound', 'info', 'lease bound', fields);
  else ctx.log.debug('lease bound', fields);
  return Answer.ACK;
}

function nak(ctx: HandlerContext, req: DhcpPacket, why: string): Decision {
  ctx.counters.nak++;
  guestLog(ctx, 'nak', 'info', 'NAK', { mac: req.mac, why, xid: req.xid });
  return why;
}

/**
 * An address option (50, 54) as a number, or undefined when absent or malformed (not 4
 * bytes), as getOr(code, IpOption) reads it but without making its text for every REQUEST.
 */
function addressOption(req: DhcpPacket, code: number): number | undefined {
  const v = req.options.get(code);
  return v?.length === 4 ? v.readUInt32BE(0) : undefined;
}

/** Whether option 54 names another server. */
function otherServer(ctx: HandlerContext, sid: number | undefined): boolean {
  return sid !== undefined && sid !== ctx.serverIdBytes.readUInt32BE(0);
}

/** Handles one decoded message; returns the reply to send, if any. */
export function handleRequest(ctx: HandlerContext, req: DhcpPacket): DhcpPacket | undefined {
  const lease = leaseFor(ctx, req);
  if (lease === undefined) return undefined;
  const answer = decide(ctx, req, lease);
  return answer === Answer.NONE ? undefined : buildReply(ctx, req, lease, answer);
}

/** The lease of a DHCP request's client, or undefined (counted) when it is none or has none. */
export function leaseFor(ctx: HandlerContext, req: DhcpPacket): ResolvedLease | undefined {
  const type = req.messageType;
  if (req.op !== 1 || type === undefined) {
    ctx.counters.notDhcpRequest++;
    return undefined;
  }
  const lease = req.htype === 1 && req.hlen === 6 ? ctx.leases.byBytes(req.chaddr) : undefined;
  if (!lease) {
    ctx.counters.unknownMac++;
    ctx.log.debug('no lease for this client', { mac: req.mac, type });
  }
  return lease;
}

/**
 * What to answer a request of the lease's client with (RFC 2131 4.3), the binding, the
 * counters and the log lines updated; buildReply (reply.ts) makes the reply. One small
 * function per message type: V8 inlines none over 460 bytes of bytecode, and a large one
 * was still unoptimised when the warm-up ended.
 */
export function decide(ctx: HandlerContext, req: DhcpPacket, lease: ResolvedLease): Decision {
  const type = req.messageType;
  switch (type) {
    case MessageType.DISCOVER:
      return discover(ctx, lease);
    case MessageType.REQUEST:
      return request(ctx, req, lease);
    case MessageType.DECLINE:
      return decline(ctx, req, lease);
    case MessageType.RELEASE:
      return release(ctx, req, lease);
    case MessageType.INFORM:
      // 4.3.5: ACK with the configuration, no yiaddr, no lease time, sent to ciaddr.
      ctx.counters.inform++;
      ctx.counters.ack++;
      return Answer.INFORM_ACK;
    default:
      ctx.counters.unexpected++;
      ctx.log.debug('unexpected message type', { mac: req.mac, type });
      return Answer.NONE;
  }
}

function discover(ctx: HandlerContext, lease: ResolvedLease): Decision {
  ctx.counters.discover++;
  const b = binding(ctx, lease.mac);
  if (b.state !== 'bound' && b.state !== 'declined') b.state = 'offered';
  ctx.counters.offer++;
  return Answer.OFFER;
}

function request(ctx: HandlerContext, req: DhcpPacket, lease: ResolvedLease): Decision {
  const c = ctx.counters;
  const sid = addressOption(req, Opt.SERVER_ID);
  const requested = addressOption(req, Opt.REQUESTED_IP);
  if (sid !== undefined) return selecting(ctx, req, lease, sid, requested);
  if (requested !== undefined) {
    // INIT-REBOOT: verifying a remembered address.
    c.requestInitReboot++;
    if (requested !== lease.ipNumber) {
      return nak(ctx, req, `requested address ${formatIpv4(requested)} is not ${lease.ip}`);
    }
    return ack(ctx, req, lease, 'init-reboot');
  }
  if (req.ciaddr !== ZERO) {
    c.requestRenewOrRebind++;
    if (req.ciaddr !== lease.ip) return nak(ctx, req, `client address ${req.ciaddr} is not ${lease.ip}`);
    return ack(ctx, req, lease, 'renew');
  }
  c.unexpected++;
  ctx.log.debug('REQUEST names no address', { mac: req.mac });
  return Answer.NONE;
}

/**
 * SELECTING (4.3.2): the client chose a server; if not us, forget our offer quietly. The
 * address it wants is option 50, or without one its ciaddr.
 */
function selecting(
  ctx: HandlerContext,
  req: DhcpPacket,
  lease: ResolvedLease,
  sid: number,
  requested: number | undefined,
): Decision {
  if (otherServer(ctx, sid)) {
    ctx.counters.otherServer++;
    const b = ctx.bindings.get(lease.mac);
    if (b?.state === 'offered') b.state = 'none';
    return Answer.NONE;
  }
  ctx.counters.requestSelecting++;
  const right = requested !== undefined ? requested === lease.ipNumber : req.ciaddr !== ZERO && req.ciaddr === lease.ip;
  if (!right) {
    const want = requested !== undefined ? formatIpv4(requested) : req.ciaddr !== ZERO ? req.ciaddr : 'none';
    return nak(ctx, req, `requested address ${want} is not ${lease.ip}`);
  }
  return ack(ctx, req, lease, 'selecting');
}

function decline(ctx: HandlerContext, req: DhcpPacket, lease: ResolvedLease): Decision {
  if (otherServer(ctx, addressOption(req, Opt.SERVER_ID))) {
    ctx.counters.otherServer++;
    return Answer.NONE;
  }
  ctx.counters.decline++;
  const b = binding(ctx, lease.mac);
  b.state = 'declined';
  b.declinedAt = ctx.now();
  b.expiresAt = undefined;
  const ip = req.getOr(Opt.REQUESTED_IP, IpOption, undefined)?.address ?? lease.ip;
  // the guest's report, not the daemon's failure: a warning
  guestLog(ctx, 'decline', 'warn', 'DECLINE: the guest found the pod address already in use on the link', {
    mac: lease.mac,
    ip,
    message: req.getOr(Opt.MESSAGE, TextOption, undefined)?.text,
  });
  return Answer.NONE;
}

function release(ctx: HandlerContext, req: DhcpPacket, lease: ResolvedLease): Decision {
  if (otherServer(ctx, addressOption(req, Opt.SERVER_ID))) {
    ctx.counters.otherServer++;
    return Answer.NONE;
  }
  ctx.counters.release++;
  const b = binding(ctx, lease.mac);
  b.state = 'released';
  b.expiresAt = undefined;
  guestLog(ctx, 'release', 'info', 'lease released', { mac: lease.mac, ip: req.ciaddr });
  return Answer.NONE;
}
