// Replies built from their request (RFC 2131 4.3.1 table 3): the reply copies xid, flags,
// giaddr and chaddr, echoes the client identifier (RFC 6842) and the relay agent
// information (RFC 3046 2.2); buildReply adds the rest of what the handler's answer
// (handler.ts decide) calls for.
import { FLAG_BROADCAST, MessageType, OP_BOOTREPLY, Opt } from './constants';
import type { DhcpCounters } from './counters';
import type { ResolvedLease } from './lease';
import { addLeaseOptions } from './lease-options';
import { MessageTypeOption, TextOption } from './options';
import { DhcpPacket, NO_FILE, NO_SNAME } from './packet';

// What every reply shares instead of allocating its own (the server makes one per OFFER
// and ACK): the empty sname and file (packet.ts; a lease's boot file replaces the
// reference, nothing writes into them) and option 53's value per type, an own allocation
// (not a pool slice: it lives as long as the process).
const TYPE_VALUES: readonly Buffer[] = Array.from({ length: 9 }, (_, t) => {
  const b = Buffer.alloc(1);
  b[0] = t;
  return b;
});

/** The reply to req of message type `type` (table 3's copied fields and echoed options), nothing else set. */
export function replyOf(req: DhcpPacket, type: number): DhcpPacket {
  const p = new DhcpPacket({ chaddr: req.chaddr, sname: NO_SNAME, file: NO_FILE });
  p.op = OP_BOOTREPLY;
  p.htype = req.htype;
  p.hlen = req.hlen;
  p.xid = req.xid;
  p.flags = req.flags;
  p.giaddr = req.giaddr;
  p.options.set(Opt.MESSAGE_TYPE, TYPE_VALUES[type] ?? new MessageTypeOption(type).encode());
  const cid = req.options.get(Opt.CLIENT_ID);
  if (cid) p.options.set(Opt.CLIENT_ID, cid);
  const relay = req.options.get(Opt.RELAY_AGENT_INFO);
  if (relay) p.options.set(Opt.RELAY_AGENT_INFO, relay);
  return p;
}

/**
 * What the server answers a request with: nothing, an OFFER of the lease, an ACK of it, the
 * ACK of an INFORM (the configuration without the lease, RFC 2131 4.3.5), or a NAK, which
 * is the text saying why (its option 56).
 */
export const Answer = { NONE: 0, OFFER: 1, ACK: 2, INFORM_ACK: 3 } as const;
/** The answers that carry the lease's configuration; their bytes depend on the lease and the request's shape only. */
export type LeaseAnswer = typeof Answer.OFFER | typeof Answer.ACK | typeof Answer.INFORM_ACK;
export type Decision = typeof Answer.NONE | LeaseAnswer | string;

const ZERO = '0.0.0.0';

/**
 * The reply packet for a decision other than NONE (table 3). Counts the options dropped to
 * fit the client's maximum message size into counters.optionsDropped.
 */
export function buildReply(
  ctx: { serverIdBytes: Buffer; counters: DhcpCounters },
  req: DhcpPacket,
  lease: ResolvedLease,
  answer: LeaseAnswer | string,
): DhcpPacket {
  if (typeof answer === 'string') {
    // NAK: no ciaddr/yiaddr and no lease options. 4.3.2: through a relay (giaddr set) the
    // server MUST set the broadcast bit, so that the relay broadcasts the NAK to a client
    // whose address or mask may be wrong.
    const p = replyOf(req, MessageType.NAK);
    p.set(Opt.MESSAGE, new TextOption(answer));
    p.options.set(Opt.SERVER_ID, ctx.serverIdBytes);
    if (req.giaddr !== ZERO) p.flags |= FLAG_BROADCAST;
    return p;
  }
  const reply = replyOf(req, answer === Answer.OFFER ? MessageType.OFFER : MessageType.ACK);
  if (answer !== Answer.INFORM_ACK) reply.yiaddr = lease.ip;
  if (answer !== Answer.OFFER) reply.ciaddr = req.ciaddr;
  reply.options.set(Opt.SERVER_ID, ctx.serverIdBytes);
  ctx.counters.optionsDropped += addLeaseOptions(reply, req, lease, answer !== Answer.INFORM_ACK).length;
  return reply;
}
