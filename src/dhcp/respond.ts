// The server's way from a decoded request to what it sends and where: the handler's
// decision (handler.ts), the reply's bytes (an OFFER or ACK from the server's ReplyCache,
// a NAK built and encoded) and its destination (destination.ts). Free of sockets, like the
// handler: DhcpServer.onMessage sends what this returns.
import { destinationOf, type Destination } from './destination';
import { decide, leaseFor, type HandlerContext } from './handler';
import type { DhcpPacket } from './packet';
import type { ResolvedLease } from './lease';
import { Answer, buildReply, type LeaseAnswer } from './reply';
import type { ReplyCache } from './reply-cache';

const ZERO = '0.0.0.0';

export interface Response {
  bytes: Buffer;
  to: Destination;
  /** what was answered (undefined: a NAK) and for which lease */
  answer: LeaseAnswer | undefined;
  lease: ResolvedLease;
}

/** The reply to req (decoded from `wire`) and where it goes, or undefined when it gets none. */
export function respond(
  ctx: HandlerContext,
  cache: ReplyCache,
  req: DhcpPacket,
  wire: Buffer,
  serverPort: number,
  clientPort: number,
): Response | undefined {
  const lease = leaseFor(ctx, req);
  if (lease === undefined) return undefined;
  const answer = decide(ctx, req, lease);
  if (answer === Answer.NONE) return undefined;
  if (typeof answer === 'string') {
    const nak = buildReply(ctx, req, lease, answer);
    return {
      bytes: nak.encode(),
      to: destinationOf(req, true, ZERO, serverPort, clientPort),
      answer: undefined,
      lease,
    };
  }
  const yiaddr = answer === Answer.INFORM_ACK ? ZERO : lease.ip;
  return {
    bytes: cache.encode(ctx, req, wire, lease, answer),
    to: destinationOf(req, false, yiaddr, serverPort, clientPort),
    answer,
    lease,
  };
}
