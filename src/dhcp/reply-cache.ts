// The encoded OFFERs and ACKs of a server's leases, kept and patched per reply. Such a reply
// depends on the lease, the server id, the answer and the request's shape, i.e. its
// parameter request list (55), maximum message size (57), client identifier (61, echoed)
// and relay agent information (82, echoed), and for the rest on fields copied from the
// request (RFC 2131 table 3): xid, flags, ciaddr (ACK), giaddr and chaddr. A client asks in
// the same shape every time, so after its first OFFER and ACK the server copies bytes and
// writes those five fields instead of building and encoding a packet: no option selection,
// no ordering, no sizing. buildReply stays the one way a reply is made (a miss encodes its
// packet, and the cache keeps those bytes); test/unit/dhcp-reply-cache.test.ts holds the
// two byte for byte equal over randomised requests.
//
// Bounded against a guest that varies its requests: SLOTS shapes per lease, a miss
// replacing the oldest, and nothing kept whose bytes (reply and key) exceed MAX_KEPT, so a
// lease holds at most SLOTS * MAX_KEPT bytes. setLeases drops it all (clear()).
import type { ResolvedLease } from './lease';
import { maxReplySize } from './lease-options';
import { Opt } from './constants';
import type { DhcpCounters } from './counters';
import type { DhcpPacket } from './packet';
import { Answer, buildReply, type LeaseAnswer } from './reply';

/** Shapes kept per lease: a client's OFFER and ACK, and room for a second client or list (firmware, then the OS). */
export const SLOTS = 4;
/** Bytes (reply, 55, 61 and 82) above which a shape is not kept: replies are 300-600 bytes. */
export const MAX_KEPT = 2048;
/**
 * Misses in a row, with every slot used, after which a lease's new shapes are answered but
 * not kept (until its next hit): a guest that rotates more shapes than SLOTS would miss every
 * time, and keeping each miss (an allocation of its own and a copy) would make it cost more
 * than no cache.
 */
export const CHURN_LIMIT = 2 * SLOTS;

/** One kept reply: its key and its bytes with xid, flags, ciaddr, giaddr and chaddr zero. */
interface Kept {
  readonly answer: LeaseAnswer;
  readonly maxSize: number;
  readonly prl: Buffer | undefined;
  readonly clientId: Buffer | undefined;
  readonly relay: Buffer | undefined;
  readonly bytes: Buffer;
  /** options buildReply dropped to fit maxSize, counted again for each reply */
  readonly dropped: number;
}

interface LeaseReplies {
  readonly kept: Kept[];
  /** the slot the next miss replaces once all are used */
  next: number;
  /** misses since this lease's last hit */
  churn: number;
}

/** Absent and present differ; present values by their bytes. */
function same(a: Buffer | undefined, b: Buffer | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const n = a.length;
  if (n !== b.length) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

function size(b: Buffer | undefined): number {
  return b === undefined ? 0 : b.length;
}

/** b copied into block at `at` (undefined stays undefined). */
function put(block: Buffer, at: number, b: Buffer | undefined): Buffer | undefined {
  if (b === undefined) return undefined;
  block.set(b, at);
  return block.subarray(at, at + b.length);
}

export class ReplyCache {
  private readonly byLease = new Map<ResolvedLease, LeaseReplies>();
  /** replies copied from a kept one, and replies built */
  hits = 0;
  misses = 0;
  /** misses answered but not kept because their lease churns (CHURN_LIMIT) */
  unkept = 0;

  /** Forgets every kept reply (the leases changed). */
  clear(): void {
    this.byLease.clear();
  }

  /** Shapes kept for a lease (for tests). */
  size(lease: ResolvedLease): number {
    return this.byLease.get(lease)?.kept.length ?? 0;
  }

  /**
   * The encoded reply `answer` to req (decoded from `wire`) from lease, as buildReply(ctx,
   * req, lease, answer) would encode it, options dropped counted alike. ctx is the same
   * server's every time.
   */
  encode(
    ctx: { serverIdBytes: Buffer; counters: DhcpCounters },
    req: DhcpPacket,
    wire: Buffer,
    lease: ResolvedLease,
    answer: LeaseAnswer,
  ): Buffer {
    const prl = req.options.get(Opt.PARAMETER_REQUEST_LIST);
    const clientId = req.options.get(Opt.CLIENT_ID);
    const relay = req.options.get(Opt.RELAY_AGENT_INFO);
    const maxSize = maxReplySize(req);
    const replies = this.byLease.get(lease);
    if (replies !== undefined) {
      const kept = replies.kept;
      for (let i = 0; i < kept.length; i++) {
        const k = kept[i]!;
        if (
          k.answer === answer &&
          k.maxSize === maxSize &&
          same(k.prl, prl) &&
          same(k.clientId, clientId) &&
          same(k.relay, relay)
        ) {
          ctx.counters.optionsDropped += k.dropped;
          this.hits++;
          replies.churn = 0;
          return patched(k.bytes, wire, answer);
        }
      }
    }
    this.misses++;
    const before = ctx.counters.optionsDropped;
    const bytes = buildReply(ctx, req, lease, answer).encode();
    if (replies !== undefined && replies.kept.length === SLOTS && ++replies.churn > CHURN_LIMIT) {
      this.unkept++;
      return bytes;
    }
    const kept = bytes.length + size(prl) + size(clientId) + size(relay);
    if (kept <= MAX_KEPT) {
      // one allocation of its own, not slices of Node's shared pool (one kept slice holds
      // its whole 8 KB pool alive; see lease.ts ownBlock)
      const block = Buffer.alloc(kept);
      block.set(bytes, 0);
      block.fill(0, 4, 8); // xid
      block.fill(0, 10, 16); // flags, ciaddr
      block.fill(0, 24, 44); // giaddr, chaddr
      let at = bytes.length;
      const entry: Kept = {
        answer,
        maxSize,
        prl: put(block, at, prl),
        clientId: put(block, (at += size(prl)), clientId),
        relay: put(block, (at += size(clientId)), relay),
        bytes: block.subarray(0, bytes.length),
        dropped: ctx.counters.optionsDropped - before,
      };
      this.keep(lease, replies, entry);
    }
    return bytes;
  }

  private keep(lease: ResolvedLease, replies: LeaseReplies | undefined, entry: Kept): void {
    if (replies === undefined) {
      this.byLease.set(lease, { kept: [entry], next: 0, churn: 0 });
    } else if (replies.kept.length < SLOTS) {
      replies.kept.push(entry);
    } else {
      replies.kept[replies.next] = entry;
      replies.next = (replies.next + 1) % SLOTS;
    }
  }
}

/**
 * A copy of the kept bytes with what table 3 copies from the request (xid, flags, an ACK's
 * ciaddr, giaddr, chaddr) taken from the bytes the request was decoded from: the same bytes
 * its fields hold, without turning its address text back into numbers.
 */
function patched(bytes: Buffer, wire: Buffer, answer: LeaseAnswer): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  out.set(bytes, 0);
  copyBytes(wire, out, 4, 8); // xid
  copyBytes(wire, out, 10, answer === Answer.OFFER ? 12 : 16); // flags, and ciaddr but in an OFFER
  copyBytes(wire, out, 24, 44); // giaddr, chaddr
  return out;
}

/** to[start, end) = from[start, end): a loop, for a few bytes cheaper than Buffer.copy's view. */
function copyBytes(from: Buffer, to: Buffer, start: number, end: number): void {
  for (let i = start; i < end; i++) to[i] = from[i]!;
}
