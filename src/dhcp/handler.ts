// The server's state machine (RFC 2131 4.3), free of sockets: a decoded request in, a
// reply (or nothing) out, with the per-MAC binding state updated. Expiry is never timed:
// a binding is "bound" until expiresAt, computed when read.
import { FLAG_BROADCAST, MessageType, Opt } from './constants';
import type { DhcpCounters } from './counters';
import type { ResolvedLease } from './lease';
import { addLeaseOptions } from './lease-options';
import { IpOption, TextOption } from './options';
import type { DhcpPacket } from './packet';
import { replyOf } from './reply';
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
  serverId: string;
  serverIdBytes: Buffer;
  leases: Map<string, ResolvedLease>;
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

function ack(ctx: HandlerContext, req: DhcpPacket, lease: ResolvedLease, kind: string): DhcpPacket {
  const reply = replyOf(req, MessageType.ACK);
  reply.yiaddr = lease.ip;
  reply.ciaddr = req.ciaddr;
  reply.options.set(Opt.SERVER_ID, ctx.serverIdBytes);
  ctx.counters.optionsDropped += addLeaseOptions(reply, req, lease, true).length;
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
  return reply;
}

function nak(ctx: HandlerContext, req: DhcpPacket, why: string): DhcpPacket {
  ctx.counters.nak++;
  guestLog(ctx, 'nak', 'info', 'NAK', { mac: req.mac, why, xid: req.xid });
  // RFC 2131 table 3: NAK carries no ciaddr/yiaddr and no lease options. 4.3.2: through a
  // relay (giaddr set) the server MUST set the broadcast bit, so that the relay broadcasts
  // the NAK to a client whose address or mask may be wrong.
  const p = replyOf(req, MessageType.NAK);
  p.set(Opt.MESSAGE, new TextOption(why));
  p.options.set(Opt.SERVER_ID, ctx.serverIdBytes);
  if (req.giaddr !== ZERO) p.flags |= FLAG_BROADCAST;
  return p;
}

function serverIdOf(req: DhcpPacket): string | undefined {
  return req.getOr(Opt.SERVER_ID, IpOption, undefined)?.address;
}

/** Handles one decoded message; returns the reply to send, if any. */
export function handleRequest(ctx: HandlerContext, req: DhcpPacket): DhcpPacket | undefined {
  const c = ctx.counters;
  const type = req.messageType;
  if (req.op !== 1 || type === undefined) {
    c.notDhcpRequest++;
    return undefined;
  }
  const lease = req.htype === 1 && req.hlen === 6 ? ctx.leases.get(req.mac) : undefined;
  if (!lease) {
    c.unknownMac++;
    ctx.log.debug('no lease for this client', { mac: req.mac, type });
    return undefined;
  }
  switch (type) {
    case MessageType.DISCOVER: {
      c.discover++;
      const reply = replyOf(req, MessageType.OFFER);
      reply.yiaddr = lease.ip;
      reply.options.set(Opt.SERVER_ID, ctx.serverIdBytes);
      c.optionsDropped += addLeaseOptions(reply, req, lease, true).length;
      const b = binding(ctx, lease.mac);
      if (b.state !== 'bound' && b.state !== 'declined') b.state = 'offered';
      c.offer++;
      return reply;
    }
    case MessageType.REQUEST: {
      const sid = serverIdOf(req);
      const requested = req.getOr(Opt.REQUESTED_IP, IpOption, undefined)?.address;
      if (sid !== undefined) {
        // SELECTING (4.3.2): the client chose a server; if not us, forget our offer quietly.
        if (sid !== ctx.serverId) {
          c.otherServer++;
          const b = ctx.bindings.get(lease.mac);
          if (b?.state === 'offered') b.state = 'none';
          return undefined;
        }
        c.requestSelecting++;
        const want = requested ?? (req.ciaddr !== ZERO ? req.ciaddr : undefined);
        if (want !== lease.ip) return nak(ctx, req, `requested address ${want ?? 'none'} is not ${lease.ip}`);
        return ack(ctx, req, lease, 'selecting');
      }
      if (requested !== undefined) {
        // INIT-REBOOT: verifying a remembered address.
        c.requestInitReboot++;
        if (requested !== lease.ip) return nak(ctx, req, `requested address ${requested} is not ${lease.ip}`);
        return ack(ctx, req, lease, 'init-reboot');
      }
      if (req.ciaddr !== ZERO) {
        c.requestRenewOrRebind++;
        if (req.ciaddr !== lease.ip) return nak(ctx, req, `client address ${req.ciaddr} is not ${lease.ip}`);
        return ack(ctx, req, lease, 'renew');
      }
      c.unexpected++;
      ctx.log.debug('REQUEST names no address', { mac: req.mac });
      return undefined;
    }
    case MessageType.DECLINE: {
      const sid = serverIdOf(req);
      if (sid !== undefined && sid !== ctx.serverId) {
        c.otherServer++;
        return undefined;
      }
      c.decline++;
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
      return undefined;
    }
    case MessageType.RELEASE: {
      const sid = serverIdOf(req);
      if (sid !== undefined && sid !== ctx.serverId) {
        c.otherServer++;
        return undefined;
      }
      c.release++;
      const b = binding(ctx, lease.mac);
      b.state = 'released';
      b.expiresAt = undefined;
      guestLog(ctx, 'release', 'info', 'lease released', { mac: lease.mac, ip: req.ciaddr });
      return undefined;
    }
    case MessageType.INFORM: {
      // 4.3.5: ACK with the configuration, no yiaddr, no lease time, sent to ciaddr.
      c.inform++;
      const reply = replyOf(req, MessageType.ACK);
      reply.ciaddr = req.ciaddr;
      reply.options.set(Opt.SERVER_ID, ctx.serverIdBytes);
      c.optionsDropped += addLeaseOptions(reply, req, lease, false).length;
      c.ack++;
      return reply;
    }
    default:
      c.unexpected++;
      ctx.log.debug('unexpected message type', { mac: req.mac, type });
      return undefined;
  }
}
